# wgan_app in a container: the Gradio UI on 0.0.0.0:7860, serving the shipped checkpoints
# (no network needed to start).
#
#   docker build -t wgan-app .
#   docker run --rm -p 7860:7860 wgan-app                       # then open http://localhost:7860
#   docker run --rm -p 7860:7860 -e WGAN_APP_MODEL=hf://USER/REPO wgan-app
#
# The default build installs CPU-only torch wheels (a few hundred MB instead of several GB of
# CUDA libraries). For a GPU image pick a CUDA wheel index and run with the GPU:
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 -t wgan-app:cuda .
#   docker run --rm --gpus all -p 7860:7860 wgan-app:cuda
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Run as an unprivileged user with uid 1000 (the uid Hugging Face Docker Spaces use).
RUN useradd --create-home --uid 1000 --shell /bin/bash user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    HF_HOME=/home/user/.cache/huggingface \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False
WORKDIR /home/user/app

# Dependencies before the code: this layer is rebuilt only when requirements.txt changes.
# torch==X matches the index's X+cpu wheel; every other package comes from PyPI.
COPY --chown=user:user requirements.txt ./
RUN pip install --user --extra-index-url "$TORCH_INDEX_URL" -r requirements.txt

COPY --chown=user:user . .

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/' % os.environ.get('GRADIO_SERVER_PORT', '7860'), timeout=4)"
CMD ["python", "app.py"]
