"""The web UI (Gradio Blocks): layout and wiring only.

The work lives elsewhere: `registry` lists and loads generators and draws pictures from them,
`jobs` runs the one server-side training job, `train`/`sampler` are the engine. Handlers here
turn form values into calls and `UserError`s into `gr.Error`s. Importing this module builds
nothing and loads nothing; `build_demo()` builds the app and `launch(args)` serves it.

Named API endpoints (see README "## API"): /generate, /models, /train_start, /train_status,
/train_stop. UI-only handlers are `api_visibility="private"`.
"""

from __future__ import annotations

import functools
import html
import os
import random
import re
import tempfile
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional

import gradio as gr
import numpy as np
from PIL import Image

from .config import TrainConfig
from .errors import UserError
from .images import gif_bytes, png_bytes, upscale
from .jobs import (ACC_SERIES, DEFAULT_MAX_ITERS, MAX_BATCH, PLOT_SERIES, QUALITY_ACC_SERIES, QUALITY_SERIES,
                   SPACE_MAX_ITERS, JobManager, status_line)
from .registry import (MAX_NUM, MAX_WALK_FRAMES, RUN_PREFIX, TRAIN_HINT, Registry, check_num, class_grid, digits,
                       export_zip, latent_walk, parse_label, parse_seed)

ROOT = Path(__file__).resolve().parents[1]
_TC = {f.name: f.default for f in fields(TrainConfig)}  # the engine's defaults, shown in the form
RANDOM_SEED_MAX = 2**31 - 1  # browsers hold integers exactly only up to 2**53; keep seeds short
VARIANT_CHOICES = [("ACGAN: class-conditional WGAN-GP", "acgan"), ("WGAN-GP: gradient penalty", "wgan-gp"),
                   ("WGAN: weight clipping", "wgan"), ("GAN: BCE baseline", "gan")]
CSS = """
.pixelated img { image-rendering: pixelated; image-rendering: crisp-edges; }
#status-line { min-height: 2.5em; }
footer { display: none !important; }
"""


@dataclass(frozen=True)
class Settings:
    """Where the app finds models and data, from flags, then env vars, then defaults."""

    checkpoints_dir: Path = ROOT / "checkpoints"
    runs_dir: Path = Path("runs")
    data_dir: Path = Path("data")
    default_model: Optional[str] = None
    max_train_iters: int = DEFAULT_MAX_ITERS

    @classmethod
    def from_env(cls, args=None) -> "Settings":
        env = os.environ
        arg = lambda name: getattr(args, name, None) if args is not None else None  # noqa: E731
        # On a Hugging Face Space (SPACE_ID is set there) visitors share one small CPU: a lower cap.
        default_cap = SPACE_MAX_ITERS if env.get("SPACE_ID") else DEFAULT_MAX_ITERS
        max_iters = arg("max_train_iters") or env.get("WGAN_APP_MAX_ITERS") or default_cap
        try:
            max_iters = int(max_iters)
        except ValueError:
            raise UserError(f"WGAN_APP_MAX_ITERS={max_iters!r} must be a whole number") from None
        if max_iters < 1:
            raise UserError(f"--max-train-iters must be at least 1, got {max_iters}")
        return cls(
            checkpoints_dir=Path(env.get("WGAN_APP_CHECKPOINTS") or ROOT / "checkpoints"),
            runs_dir=Path(env.get("WGAN_APP_RUNS_DIR") or "runs"),
            data_dir=Path(arg("data_dir") or env.get("WGAN_APP_DATA_DIR") or "data"),
            default_model=arg("checkpoint") or env.get("WGAN_APP_MODEL") or None,
            max_train_iters=max_iters,
        )


def friendly(fn):
    """Turn a UserError into a gr.Error: shown in the page, returned through the API, server unharmed."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:  # the message may echo user input, and gr.Error renders HTML
            raise gr.Error(html.escape(str(e), quote=False), print_exception=False) from None
    return wrapper


class Outbox:
    """Files handed to Gradio (downloads, GIFs), unique per request, pruned after an hour."""

    def __init__(self, max_age_s: float = 3600):
        self.dir = Path(tempfile.mkdtemp(prefix="wgan_app-ui-"))
        self.max_age_s = max_age_s
        self._n = 0
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        with self._lock:
            self._n += 1
            sub = self.dir / f"{time.time_ns()}-{self._n}"
        self._prune()
        sub.mkdir()
        return sub / name

    def write(self, name: str, data: bytes) -> str:
        p = self.path(name)
        p.write_bytes(data)
        return str(p)

    def _prune(self) -> None:
        cutoff = time.time() - self.max_age_s
        for d in self.dir.iterdir():
            try:
                if d.stat().st_mtime < cutoff:
                    for f in d.iterdir():
                        f.unlink()
                    d.rmdir()
            except OSError:
                pass  # another request pruned it first


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "model"


def _view(image: np.ndarray) -> Image.Image:
    """Nearest-neighbour upscale to about 600 px, so 28-pixel digits are visible and crisp."""
    return upscale(image, max(2, round(600 / max(image.shape))))


def _owner(request: Optional[gr.Request]) -> str:
    if request is not None and getattr(request, "username", None):
        return str(request.username)
    session = getattr(request, "session_hash", None) if request is not None else None
    return f"visitor {session[:6]}" if session else "an API client"


def _hf_token_configured() -> bool:
    """Offer "Push to Hub" only when a token exists (wgan_app.hub decides what counts)."""
    try:
        from .hub import configured_token

        return bool(configured_token())
    except Exception:  # no hub module in this build, or an unreadable token file: no push
        return False


# --- the app ------------------------------------------------------------------------------


def build_demo(settings: Optional[Settings] = None) -> gr.Blocks:
    """Build the Blocks app. Nothing is loaded until a page or API call asks for it."""
    s = settings or Settings.from_env()
    jobs = JobManager(s.runs_dir, s.data_dir, s.max_train_iters)
    registry = Registry(s.checkpoints_dir, s.runs_dir, s.default_model, active_runs=jobs.active_run_dirs)
    outbox = Outbox()
    zips: dict[tuple, str] = {}

    # --- handlers: Generate ---------------------------------------------------------------

    def model_choices() -> list[tuple[str, str]]:
        return [(e.label, e.ref) for e in registry.list_models()]

    @friendly
    def generate(model: Optional[str], label, seed, num) -> Image.Image:
        """One PNG: a single 28x28 digit for num=1, else a grid of 10 per row."""
        sampler, entry = registry.sampler(model)
        if not entry.conditional and label not in (None, -1):
            raise UserError(f"model {entry.ref!r} is unconditional: it takes no class label; pass label=-1 "
                            "or leave it out")
        lab = parse_label(label, bool(entry.conditional))
        return Image.fromarray(digits(sampler, lab, parse_seed(seed), check_num(num)))

    @friendly
    def generate_view(model, label, seed, num):
        sampler, entry = registry.sampler(model)
        lab = parse_label(label, True) if entry.conditional else None
        seed, num = parse_seed(seed), check_num(num)
        big = _view(digits(sampler, lab, seed, num))
        what = "mixed" if lab is None else f"digit{lab}"
        path = outbox.write(f"{_slug(entry.ref)}-{what}-seed{seed}-n{num}.png", png_bytes(big))
        return big, gr.update(value=path, visible=True)

    @friendly
    def all_classes_view(model, seed, columns):
        sampler, entry = registry.sampler(model)
        seed = parse_seed(seed)
        big = _view(class_grid(sampler, seed, columns))
        path = outbox.write(f"{_slug(entry.ref)}-all-classes-seed{seed}.png", png_bytes(big))
        return big, gr.update(value=path, visible=True)

    @friendly
    def walk_view(model, seed_a, seed_b, label_a, label_b, frames):
        sampler, entry = registry.sampler(model)
        seed_a, seed_b = parse_seed(seed_a), parse_seed(seed_b)
        la = parse_label(label_a, True) if entry.conditional else None
        lb = parse_label(label_b, True) if entry.conditional else None
        pics = [upscale(f, 8) for f in latent_walk(sampler, seed_a, seed_b, la, lb, frames)]
        return outbox.write(f"{_slug(entry.ref)}-walk-{seed_a}-{seed_b}.gif", gif_bytes(pics, duration_ms=70))

    def select_model(model):
        """Load the picked model; on failure say why and fall back to the default."""
        default = registry.default_ref()
        try:
            sampler, entry = registry.sampler(model)
        except UserError as e:
            if not model or model == default:
                return (gr.update(), *_model_widgets(None, str(e)))
            gr.Warning(html.escape(f"{e}. Showing the default model instead.", quote=False))
            try:
                sampler, entry = registry.sampler(default)
            except UserError as e2:
                return (gr.update(value=default), *_model_widgets(None, str(e2)))
            return (gr.update(value=default), *_model_widgets(entry, None, zip_for(entry)))
        return (gr.update(), *_model_widgets(entry, None, zip_for(entry)))

    def zip_for(entry) -> Optional[str]:
        if entry.path is None:
            return None
        from .checkpoint import resolve_checkpoint_dir

        ckpt = resolve_checkpoint_dir(entry.path)
        key = (str(ckpt), ckpt.stat().st_mtime_ns)
        if key not in zips or not Path(zips[key]).exists():
            name = _slug(entry.ref.replace(RUN_PREFIX, ""))
            zips[key] = str(export_zip(ckpt, outbox.path(f"{name}.zip"), name))
        return zips[key]

    def refresh_models(current):
        choices = model_choices()
        refs = {r for _, r in choices}
        value = current if current in refs or (current or "").startswith("hf://") else registry.default_ref()
        return gr.update(choices=choices, value=value)

    def generate_if_ready(model, label, seed_, num_):
        try:
            return generate_view(model, label, seed_, num_)
        except gr.Error:
            return gr.skip(), gr.skip()  # no usable model yet: the notice already says what to do

    # --- handlers: Train ------------------------------------------------------------------

    @friendly
    def start_training(variant, dataset, iters, batch_size, lr, n_critic, lambda_gp, clip_value, seed, eval_every,
                       request: gr.Request):
        cfg = jobs.build_config(variant, dataset, iters, batch_size, lr, n_critic, lambda_gp, clip_value, seed,
                                eval_every)
        job = jobs.job
        if job is not None and job.running and job.owner == _owner(request):
            raise UserError("your run is still training: press Stop first, or wait for it to finish")
        jobs.start(cfg, _owner(request))
        return status_line(jobs.job), gr.update(interactive=False), gr.update(interactive=True)

    def stop_training():
        job = jobs.stop(wait_s=2.0)
        running = job is not None and job.running
        return status_line(job), gr.update(interactive=not running), gr.update(interactive=running)

    def tick(seen_version: int, seen_run: str):
        """Timer poll (every second): status always; plots and picture only when they changed."""
        job = jobs.job
        running = job is not None and job.running
        buttons = (gr.update(interactive=not running), gr.update(interactive=running))
        if job is None:
            return (0, "", status_line(None), *buttons, *(gr.skip(),) * 7)
        snap = job.snapshot()
        run_id = snap["run_dir"]
        if snap["version"] == seen_version and run_id == seen_run:
            return (seen_version, seen_run, status_line(job), *buttons, *(gr.skip(),) * 7)
        loss_df, acc_df, quality_df = _plot_frames(snap["history"], snap["quality"])
        sample = _view(job.sample) if job.sample is not None else None
        finished = not running and snap["checkpoint"] is not None
        zip_path = None
        if finished:
            zip_path = zip_for_run(job)
        return (snap["version"], run_id, status_line(job), *buttons,
                # an empty frame would fix the axes as categorical for good: send none until data exists
                loss_df if len(loss_df) else gr.skip(),
                gr.update(value=acc_df, visible=True) if len(acc_df) else gr.update(visible=False),
                gr.update(value=quality_df, visible=True) if len(quality_df) else gr.update(visible=False),
                sample if sample is not None else gr.skip(),
                gr.update(value=zip_path, visible=zip_path is not None),
                gr.update(visible=finished and _hf_token_configured()),
                gr.update(choices=model_choices()) if finished else gr.skip())

    def zip_for_run(job) -> Optional[str]:
        try:
            entry = registry.entry(RUN_PREFIX + job.run_dir.name)
        except UserError:
            return None  # the run lies outside the runs root or has no checkpoint
        return zip_for(entry)

    @friendly
    def push_to_hub(repo_id):
        job = jobs.job
        if job is None or job.running or job.checkpoint is None:
            raise UserError("push needs a finished or stopped run with a checkpoint")
        if not (repo_id or "").strip():
            raise UserError("enter a Hub repo id such as your-name/wgan-mnist")
        try:
            from .hub import push_checkpoint
        except ImportError:
            raise UserError("pushing to the Hub is not available in this build") from None
        url = push_checkpoint(job.checkpoint, repo_id.strip())
        return f"Pushed to [{html.escape(str(url))}]({url}). Load it here as `hf://{repo_id.strip()}`."

    def variant_changed(variant):
        cfg = TrainConfig(variant=variant)
        return (gr.update(placeholder=f"{cfg.lr:g}"), gr.update(placeholder=f"{cfg.n_critic}"),
                gr.update(visible=cfg.constraint == "gp"), gr.update(visible=cfg.constraint == "clip"))

    # --- handlers: API-only ---------------------------------------------------------------

    def models() -> list[dict]:
        """The models /generate accepts: shipped ones, finished runs of this server, the default."""
        default = registry.default_ref()
        return [{"model": e.ref, "label": e.label, "conditional": e.conditional, "step": e.step,
                 "default": e.ref == default} for e in registry.list_models()]

    @friendly
    def train_start(variant: str = _TC["variant"], dataset: str = _TC["dataset"],
                    iters: int = min(_TC["iters"], s.max_train_iters), batch_size: int = _TC["batch_size"],
                    lr: Optional[float] = None, n_critic: Optional[int] = None,
                    lambda_gp: float = _TC["lambda_gp"], clip_value: float = _TC["clip_value"],
                    seed: int = _TC["seed"], eval_every: int = 0, request: gr.Request = None) -> dict:
        """Start a training run on the server (one at a time). Returns /train_status's answer.

        `eval_every` > 0 measures sample quality (MNIST-FID, class accuracy) every that many steps."""
        cfg = jobs.build_config(variant, dataset, iters, batch_size, lr, n_critic, lambda_gp, clip_value, seed,
                                eval_every)
        return _public(jobs.start(cfg, _owner(request)).snapshot(), registry)

    def train_status(since_step: int = 0) -> dict:
        """The current (or last) run: state, step, iters, steps_per_s, eta_s, model, history.

        `history` holds the logged metrics of steps after `since_step`, so a client can poll cheaply."""
        job = jobs.job
        if job is None:
            return {"state": "idle", "history": []}
        snap = job.snapshot()
        snap["history"] = [h for h in snap["history"] if h["step"] > (since_step or 0)]
        return _public(snap, registry)

    def train_stop() -> dict:
        """Stop the running job; it saves a checkpoint and is then usable as /generate's model."""
        job = jobs.stop(wait_s=2.0)
        return train_status() if job is not None else {"state": "idle", "history": []}

    # --- layout ---------------------------------------------------------------------------

    with gr.Blocks(title="WGAN digits", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# WGAN digits\nDraw handwritten digits with Wasserstein GANs, or train one and watch it learn.")
        with gr.Tab("Generate", id="generate") as gen_tab:
            notice = gr.Markdown(TRAIN_HINT, visible=not registry.has_shipped_model(), elem_id="no-model-notice")
            with gr.Row(equal_height=True):
                picker = gr.Dropdown(label="Model", choices=[], value=None, allow_custom_value=True, scale=5,
                                     info="shipped checkpoints, runs trained here, or type hf://USER/REPO[@REV]",
                                     elem_id="model-picker")
                with gr.Column(scale=1, min_width=150):
                    refresh_btn = gr.Button("↻ Refresh list", size="sm")
                    model_zip = gr.DownloadButton("⬇ Model .zip", visible=False, size="sm", elem_id="model-zip")
            model_info = gr.Markdown(elem_id="model-info")
            with gr.Row():
                with gr.Column(scale=2, min_width=300):
                    digit = gr.Radio([*((str(d), d) for d in range(10)), ("mixed", -1)], value=-1,
                                     label="Class (digit)", elem_id="digit")
                    with gr.Row(equal_height=True):
                        seed = gr.Number(value=42, precision=0, minimum=0, label="Seed", scale=3, elem_id="seed")
                        dice = gr.Button("⚄ Random", scale=1, min_width=90, elem_id="dice")
                    num = gr.Slider(1, MAX_NUM, value=20, step=1, label="Number of images", elem_id="num")
                    with gr.Tab("Digits"):
                        gen_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                    with gr.Tab("All classes"):
                        gr.Markdown("One row per class, the same noise down each column: the style stays, "
                                    "the class changes.")
                        columns = gr.Slider(1, 10, value=8, step=1, label="Columns")
                        all_btn = gr.Button("Show all classes", variant="primary", elem_id="all-classes-btn")
                    with gr.Tab("Latent walk"):
                        gr.Markdown("From **Seed** (and the class above) to seed B (and class B), there and back.")
                        seed_b = gr.Number(value=7, precision=0, minimum=0, label="Seed B")
                        digit_b = gr.Radio([(str(d), d) for d in range(10)], value=1, label="Class B")
                        frames = gr.Slider(2, MAX_WALK_FRAMES, value=24, step=1, label="Frames")
                        walk_btn = gr.Button("Walk", variant="primary", elem_id="walk-btn")
                with gr.Column(scale=3, min_width=320):
                    image = gr.Image(label="Digits", type="pil", format="png", interactive=False, height=540,
                                     buttons=["download", "fullscreen"], elem_id="gen-image",
                                     elem_classes=["pixelated"])
                    download = gr.DownloadButton("⬇ Download PNG", visible=False, elem_id="gen-download")

        with gr.Tab("Train", id="train"):
            with gr.Row():
                with gr.Column(scale=2, min_width=300):
                    variant = gr.Dropdown(VARIANT_CHOICES, value=_TC["variant"], label="Variant", elem_id="variant")
                    dataset = gr.Radio(["mnist", "fashion-mnist"], value=_TC["dataset"], label="Dataset")
                    iters = gr.Slider(1, s.max_train_iters, value=min(_TC["iters"], s.max_train_iters), step=1,
                                      label="Iterations (generator steps)", elem_id="iters",
                                      info=f"this server allows up to {s.max_train_iters}")
                    batch = gr.Slider(1, MAX_BATCH, value=_TC["batch_size"], step=1, label="Batch size",
                                      elem_id="batch")
                    default = TrainConfig()
                    with gr.Row():
                        # text boxes, because a gr.Number cannot be blank (blank = the variant's default)
                        lr = gr.Textbox(label="Learning rate", placeholder=f"{default.lr:g}",
                                        info="blank = the paper's; 2e-4 with n_critic 1 is the gradient-penalty "
                                             "models' fast CPU recipe", elem_id="lr")
                        n_critic = gr.Textbox(label="n_critic", placeholder=f"{default.n_critic}",
                                              info="blank = the paper's; 1 costs a third of 5 a step",
                                              elem_id="n-critic")
                    with gr.Row():
                        lam = gr.Number(value=_TC["lambda_gp"], label="λ (gradient penalty)")
                        clip = gr.Number(value=_TC["clip_value"], label="Clip value c", visible=False)
                        train_seed = gr.Number(value=_TC["seed"], precision=0, minimum=0, label="Seed")
                    eval_every = gr.Number(value=0, precision=0, minimum=0, label="Measure quality every N steps",
                                           info="0 = off; otherwise MNIST-FID and class accuracy of 500 samples "
                                                "(about 1 s each) plotted beside the Wasserstein estimate",
                                           elem_id="eval-every")
                    with gr.Row():
                        start_btn = gr.Button("▶ Start", variant="primary", elem_id="train-start")
                        stop_btn = gr.Button("■ Stop", variant="stop", interactive=False, elem_id="train-stop")
                with gr.Column(scale=3, min_width=320):
                    status = gr.Markdown(status_line(None), elem_id="status-line")
                    loss_plot = gr.LinePlot(x="step", y="value", color="series", title="Losses", height=280,
                                            x_title="step", y_title="", elem_id="loss-plot",
                                            color_map=dict(zip(PLOT_SERIES.values(),
                                                               ["#d62728", "#1f77b4", "#9467bd", "#2ca02c"])))
                    gr.Markdown("<small>Wasserstein estimate = E[D(real)] − E[D(fake)]: the critic loss with its "
                                "sign flipped, before the penalty and class terms. It shrinks as the generator "
                                "catches up.</small>")
                    acc_plot = gr.LinePlot(x="step", y="value", color="series", title="Critic class accuracy",
                                           height=200, y_lim=[0, 1], x_title="step", y_title="", visible=False,
                                           elem_id="acc-plot")
                    quality_plot = gr.LinePlot(x="step", y="value", color="series", height=200, visible=False,
                                               title="Sample quality (MNIST-FID, lower is better)", x_title="step",
                                               y_title="", elem_id="quality-plot")
                    sample = gr.Image(label="Samples from fixed noise", type="pil", interactive=False, height=420,
                                      elem_id="train-sample", elem_classes=["pixelated"])
                    run_zip = gr.DownloadButton("⬇ Download checkpoint (.zip)", visible=False, elem_id="run-zip")
                    with gr.Accordion("Push to Hub", open=False, visible=False) as push_box:
                        repo = gr.Textbox(label="Repo id", placeholder="your-name/wgan-mnist")
                        push_btn = gr.Button("Push to Hub")
                        push_out = gr.Markdown()
        timer = gr.Timer(1.0)
        seen_version, seen_run = gr.State(-1), gr.State("")

        # hidden components behind /generate: its parameters are (model, label, seed, num)
        with gr.Row(visible=False):
            api_model = gr.Textbox(value="", label="model")
            api_label = gr.Number(value=-1, label="label")
            api_seed = gr.Number(value=0, label="seed")
            api_num = gr.Number(value=1, label="num")
            api_out = gr.Image(type="pil", format="png", label="PNG")
            api_btn = gr.Button()

        # --- wiring ---------------------------------------------------------------------------
        private = dict(api_visibility="private")
        draw = dict(concurrency_id="draw", concurrency_limit=4)
        model_outputs = [picker, digit, digit_b, all_btn, model_info, model_zip]
        gen_inputs = [picker, digit, seed, num]

        demo.load(refresh_models, picker, picker, **private).then(
            select_model, picker, model_outputs, **private).then(
            generate_if_ready, [picker, digit, seed, num], [image, download], **private, **draw)
        picker.input(select_model, picker, model_outputs, **private)
        refresh_btn.click(refresh_models, picker, picker, **private).then(
            select_model, picker, model_outputs, **private)
        gen_tab.select(refresh_models, picker, picker, **private)
        gen_btn.click(generate_view, gen_inputs, [image, download], **private, **draw)
        digit.input(generate_view, gen_inputs, [image, download], **private, **draw)
        dice.click(lambda: random.randint(0, RANDOM_SEED_MAX), None, seed, **private).then(
            generate_view, gen_inputs, [image, download], **private, **draw)
        all_btn.click(all_classes_view, [picker, seed, columns], [image, download], **private, **draw)
        walk_btn.click(walk_view, [picker, seed, seed_b, digit, digit_b, frames], image, **private, **draw)

        train_inputs = [variant, dataset, iters, batch, lr, n_critic, lam, clip, train_seed, eval_every]
        variant.change(variant_changed, variant, [lr, n_critic, lam, clip], **private)
        start_btn.click(start_training, train_inputs, [status, start_btn, stop_btn], **private,
                        concurrency_limit=None)
        stop_btn.click(stop_training, None, [status, start_btn, stop_btn], **private, concurrency_limit=None)
        timer.tick(tick, [seen_version, seen_run],
                   [seen_version, seen_run, status, start_btn, stop_btn, loss_plot, acc_plot, quality_plot, sample,
                    run_zip,
                    push_box, picker], **private, concurrency_limit=None, show_progress="hidden")
        push_btn.click(push_to_hub, repo, push_out, **private)

        api_btn.click(generate, [api_model, api_label, api_seed, api_num], api_out, api_name="generate", queue=False)
        gr.api(models, api_name="models", concurrency_limit=None)
        gr.api(train_start, api_name="train_start", concurrency_limit=None)
        gr.api(train_status, api_name="train_status", concurrency_limit=None)
        gr.api(train_stop, api_name="train_stop", concurrency_limit=None)

    demo.queue(default_concurrency_limit=2, max_size=256)
    demo.wgan_jobs, demo.wgan_registry, demo.wgan_settings = jobs, registry, s  # for launch() and tests
    return demo



def _model_widgets(entry, error: Optional[str], zip_path: Optional[str] = None) -> tuple:
    """(digit, digit B, all-classes button, info, zip) for a loaded model, or for none."""
    if entry is None:
        info = f"⚠️ {html.escape(error)}" if error else ""
        off = gr.update(interactive=False)
        return off, off, off, info, gr.update(visible=False)
    m = f"**{html.escape(entry.ref)}** · step {entry.step}"
    if entry.conditional:
        on = gr.update(interactive=True, info=None)
        return (on, gr.update(interactive=True), gr.update(interactive=True), m + " · class-conditional",
                gr.update(value=zip_path, visible=zip_path is not None))
    why = "This model is unconditional: it draws whichever digit its noise gives, so there is no class to pick."
    return (gr.update(interactive=False, info=why), gr.update(interactive=False),
            gr.update(interactive=False), m + " · unconditional (no class input)",
            gr.update(value=zip_path, visible=zip_path is not None))


def _plot_frames(history: list[dict], quality: list[dict] = ()):
    """Long-format frames (step, value, series) for the loss, accuracy and quality plots."""
    import pandas as pd

    def rows(points, series: dict[str, str]) -> list[tuple]:
        return [(h["step"], h[k], name) for h in points for k, name in series.items() if k in h]

    def frame(r: list[tuple]) -> "pd.DataFrame":
        return pd.DataFrame(r, columns=["step", "value", "series"])

    return (frame(rows(history, PLOT_SERIES)),
            frame(rows(history, ACC_SERIES) + rows(quality, QUALITY_ACC_SERIES)),
            frame(rows(quality, QUALITY_SERIES)))


def _public(snap: dict, registry: Registry) -> dict:
    """A status dict for API clients, with the model ref /generate accepts once the run is done."""
    snap = dict(snap)
    snap.pop("owner", None)
    done = snap["state"] not in ("starting", "running", "stopping")
    snap["model"] = RUN_PREFIX + Path(snap["run_dir"]).name if done and snap.get("checkpoint") else None
    return snap


def launch_options() -> dict:
    """Look-and-feel arguments of `launch()` (Gradio 6 takes theme and css there, not in Blocks)."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web fonts: the app works offline
    return dict(theme=gr.themes.Soft(font=system, font_mono=["ui-monospace", "monospace"]), css=CSS)


def launch(args) -> int:
    """`python app.py`: serve the UI until interrupted. Host/port: flags, then GRADIO_SERVER_* env."""
    settings = Settings.from_env(args)
    demo = build_demo(settings)
    # A Space's proxy (SPACE_ID set) and a container reach the app from outside: bind 0.0.0.0 there.
    local = "0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1"
    host = getattr(args, "host", None) or os.environ.get("GRADIO_SERVER_NAME") or local
    port = getattr(args, "port", None) or int(os.environ.get("GRADIO_SERVER_PORT") or 7860)
    try:
        demo.launch(server_name=host, server_port=port, **launch_options())
    finally:
        demo.wgan_jobs.close()  # a running job writes its checkpoint before the process exits
    return 0
