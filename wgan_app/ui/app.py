"""The Blocks app: the four tabs (Generate, Train, Lab, Compare), the named API endpoints, the
queue; and `launch(args)`.

Named API endpoints (see docs/ui.md, "API"): /generate, /models, /train_start, /train_status,
/train_stop. Their names, parameters, defaults and docstrings are what clients see: keep them.
UI-only handlers are `api_visibility="private"`.
"""

from __future__ import annotations

import os
import weakref
from typing import Optional

import gradio as gr
from PIL import Image

from ..config import TrainConfig
from ..form import form_number
from ..validation import as_int, in_range
from . import services
from .common import _owner, friendly, launch_options
from .compare_tab import build_compare_tab
from .generate_tab import build_generate_tab
from .lab_tab import build_lab_tab
from .services import Services, Settings
from .train_tab import build_train_tab


def build_demo(settings: Optional[Settings] = None) -> gr.Blocks:
    """Build the Blocks app. Nothing is loaded until a page or API call asks for it."""
    s = settings or Settings.from_env()
    svc = Services(s)
    form = TrainConfig()  # the engine's defaults, as /train_start's defaults

    # --- handlers: API-only ---------------------------------------------------------------

    @friendly
    def generate(model: Optional[str], label, seed, num) -> Image.Image:
        """One PNG: a single 28x28 digit for num=1, else a grid of 10 per row."""
        return Image.fromarray(services.generate(svc, model, label, seed, num))

    def models() -> list[dict]:
        """The models /generate accepts: shipped ones, finished runs of this server, the default."""
        return services.list_models(svc)

    @friendly
    def train_start(variant: str = form.variant, dataset: str = form.dataset,
                    iters: int = min(form.iters, s.max_train_iters), batch_size: int = form.batch_size,
                    lr: Optional[float] = None, n_critic: Optional[int] = None,
                    lambda_gp: float = form.lambda_gp, clip_value: float = form.clip_value,
                    seed: int = form.seed, eval_every: int = 0, recipe: str = form.recipe,
                    g_arch: str = form.g_arch, request: gr.Request = None) -> dict:
        """Start a training run on the server (one at a time). Returns /train_status's answer.

        `eval_every` > 0 measures sample quality (MNIST-FID, class accuracy) every that many steps.
        `recipe` is "fast" (best quality per CPU-minute) or "paper"; lr / n_critic given override it.
        `g_arch` is the generator: "dcgan" (batch norm), "dcgan-nobn" or "mlp" (4 x 512 ReLU)."""
        return services.train_start(svc, _owner(request), variant, dataset, iters, batch_size, lr, n_critic,
                                    lambda_gp, clip_value, seed, eval_every, recipe, g_arch)

    @friendly
    def train_status(since_step: int = 0) -> dict:
        """The current (or last) run: state, step, iters, steps_per_s, eta_s, model, history.

        `history` holds the logged metrics of steps after `since_step`, so a client can poll cheaply."""
        return services.train_status(svc, since_step)

    def train_stop() -> dict:
        """Stop the running job; it saves a checkpoint and is then usable as /generate's model."""
        return services.train_stop(svc)

    # --- layout and wiring ----------------------------------------------------------------

    with gr.Blocks(title="WGAN digits", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# WGAN digits\nDraw handwritten digits with Wasserstein GANs, or train one and watch it learn.")
        picker = build_generate_tab(demo, svc)
        build_train_tab(demo, svc, picker)
        build_lab_tab(demo, svc.outbox, yield_to=svc.jobs.foreground.wait_idle)
        build_compare_tab(demo, s.checkpoints_dir / "evidence")

        # hidden components behind /generate: its parameters are (model, label, seed, num)
        with gr.Row(visible=False):
            api_model = gr.Textbox(value="", label="model")
            api_label = gr.Number(value=-1, label="label")
            api_seed = gr.Number(value=0, label="seed")
            api_num = gr.Number(value=1, label="num")
            api_out = gr.Image(type="pil", format="png", label="PNG")
            api_btn = gr.Button()

        # Concurrent calls run side by side so the sampler can batch their forward passes (one pass
        # for all that arrived meanwhile); admission.Foreground bounds how many are in flight.
        api_btn.click(generate, [api_model, api_label, api_seed, api_num], api_out, api_name="generate", queue=False,
                      concurrency_limit=GENERATE_CONCURRENCY)
        gr.api(models, api_name="models", concurrency_limit=None)
        gr.api(train_start, api_name="train_start", concurrency_limit=None)
        gr.api(train_status, api_name="train_status", concurrency_limit=None)
        gr.api(train_stop, api_name="train_stop", concurrency_limit=None)

    demo.queue(default_concurrency_limit=2, max_size=256)
    _SERVICES[demo] = svc
    return demo


# Each built app's Services (jobs, registry, settings), for launch() and tests: kept beside the
# Blocks rather than as attributes set on Gradio's object.
_SERVICES: "weakref.WeakKeyDictionary[gr.Blocks, Services]" = weakref.WeakKeyDictionary()


def services_of(demo: gr.Blocks) -> Services:
    """The Services of an app `build_demo` made."""
    return _SERVICES[demo]


def launch(args) -> int:
    """`python app.py`: serve the UI until interrupted. Host/port: flags, then GRADIO_SERVER_* env."""
    settings = Settings.from_env(args)
    # A Space's proxy (SPACE_ID set) and a container reach the app from outside: bind 0.0.0.0 there.
    local = "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"
    host = getattr(args, "host", None) or os.environ.get("GRADIO_SERVER_NAME") or local
    port = getattr(args, "port", None)
    if port is None:
        port = os.environ.get("GRADIO_SERVER_PORT") or 7860
    port = in_range(as_int(form_number(port), "--port"), "--port", 1, 65535)
    demo = build_demo(settings)  # after every setting is known good: a bad one costs no start-up
    restore = _stop_cleanly_on_sigterm()
    try:
        demo.launch(server_name=host, server_port=port, **launch_options())
    finally:
        # A running job stops after its current step and writes its checkpoint before the process
        # exits: within SHUTDOWN_WAIT_S plus one step, inside `docker stop`'s 10 s grace.
        services_of(demo).jobs.close(wait_s=SHUTDOWN_WAIT_S)
        restore()
    return 0


SHUTDOWN_WAIT_S = 8.0
GENERATE_CONCURRENCY = 16  # /generate calls running at once; more wait in the queue (max_size below)


def _stop_cleanly_on_sigterm():
    """SIGTERM (docker stop, a Space restart) behaves like Ctrl-C: Gradio's blocking loop closes
    the server on KeyboardInterrupt, then `launch`'s `finally` saves the job. Returns the undo."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signal handlers can only be set from the main thread

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    return lambda: signal.signal(signal.SIGTERM, previous)
