"""wgan_app entry point: `python app.py` starts the web UI; --train / --sample / --eval /
--push-to-hub run headless. Importing this module does nothing heavy."""

import os
import sys

from wgan_app.cli import main

if __name__ == "__main__":
    # Deterministic cuBLAS (training's default on CUDA) needs this before any thread first uses
    # cuBLAS, and the web server may draw digits on the GPU before its first training job.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    sys.exit(main())
