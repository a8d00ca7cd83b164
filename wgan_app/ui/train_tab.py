"""The Train tab: a form to start the server's one training run, and a live view of it.

The run belongs to the server (`jobs`), not to the page: a `gr.Timer` polls it every POLL_S, so
a reloaded or newly opened page shows the same run, and plots are re-sent only when it changed.
"""

from __future__ import annotations

import html
import time

import gradio as gr

from ..config import DATASETS, G_ARCHS, TrainConfig
from ..errors import UserError
from ..figures import meaning_figure
from ..jobs import ACC_SERIES, MAX_BATCH, PLOT_SERIES, QUALITY_ACC_SERIES, status_line
from ..objectives import RECIPES, VARIANTS
from . import services
from .common import PRIVATE, _owner, _view, friendly
from .services import Services

VARIANT_CHOICES = [(cls.title, name) for name, cls in VARIANTS.items()]  # (what people read, --variant)


# The form measures quality by default: an evaluation of 500 samples costs about 1 s (the training
# clock pauses for it), so every 250 steps (15 s of the fast recipe) it adds a few per cent of wall time.
UI_EVAL_EVERY = 250
# The live loss and accuracy plots are re-sent at most this often (the status line at every poll): with the page
# open in Chromium on the server's two cores, each redraw of the chart took CPU from the run.
LOSS_PLOT_S = 5.0
# The page polls the server's run this often: the status line, the ETA and the pictures when they changed.
# Every 2 s rather than 1: Chromium on the server's two cores then took 17 CPU s in 90 s instead of 25,
# and the run made 6.3 steps/s instead of 5.9 (bench/bench_train_page.py, docs/benchmarks.md).
POLL_S = 2.0


def build_train_tab(demo: gr.Blocks, svc: Services, picker: gr.Dropdown) -> None:
    """Lay out the tab and its timer, and wire them; `picker` (the Generate tab's model list)
    is offered a run once it has finished."""
    form = TrainConfig()  # the engine's defaults, shown in the form
    default_constraint, default_recipe = _recipe(form.variant, form.recipe)  # what blank lr / n_critic mean
    cap = svc.settings.max_train_iters

    # --- handlers -------------------------------------------------------------------------

    @friendly
    def start_training(variant, dataset, iters, batch_size, lr, n_critic, lambda_gp, clip_value, seed, eval_every,
                       recipe, g_arch, request: gr.Request):
        owner = _owner(request)
        job = svc.jobs.job
        if job is not None and job.running and job.owner == owner:
            raise UserError("your run is still training: press Stop first, or wait for it to finish")
        services.train_start(svc, owner, variant, dataset, iters, batch_size, lr, n_critic, lambda_gp, clip_value,
                             seed, eval_every, recipe, g_arch)
        return status_line(svc.jobs.job), gr.update(interactive=False), gr.update(interactive=True)

    def stop_training():
        job = svc.jobs.stop(wait_s=2.0)
        running = job is not None and job.running
        return status_line(job), gr.update(interactive=not running), gr.update(interactive=running)

    def tick(seen_version: int, seen_run: str, drawn: dict) -> dict:
        """Timer poll (every POLL_S): status always; plots only when the run changed, and the
        pictures (sample grid, quality view) only when theirs did: re-encoding and re-sending them
        at every poll took CPU from the run the page shows. Components left out of the returned
        dict keep what they show."""
        job = svc.jobs.job
        running = job is not None and job.running
        drawn = dict(drawn or {})
        out = {status: status_line(job)}
        if running != drawn.get("running"):  # the buttons only when they change: each update re-renders them
            out.update({start_btn: gr.update(interactive=not running), stop_btn: gr.update(interactive=running)})
            drawn["running"] = running
        if job is None:
            return {**out, version_state: 0, run_state: "", drawn_state: {"running": running}}
        snap = job.snapshot()
        run_id = snap["run_dir"]
        if snap["version"] == seen_version and run_id == seen_run:
            return {**out, drawn_state: drawn}
        new_run = run_id != seen_run
        if new_run:
            drawn = {"running": running}
        finished = not running and snap["checkpoint"] is not None
        out[run_state] = run_id
        if finished != drawn.get("finished"):
            zip_path = services.zip_for_run(svc, job) if finished else None
            out.update({run_zip: gr.update(value=zip_path, visible=zip_path is not None),
                        push_box: gr.update(visible=finished and services.push_enabled(svc))})
            drawn["finished"] = finished
            if finished:
                out[picker] = gr.update(choices=svc.model_choices())
        if len(snap["quality"]) != drawn.get("quality", -1):  # does the loss follow quality? (figures.meaning_figure)
            if snap["quality"]:
                picture, caption = meaning_figure(snap["history"], snap["quality"])
                out[quality_plot], out[quality_text] = gr.update(value=picture, visible=True), caption
            else:
                out[quality_plot], out[quality_text] = gr.update(visible=False), ""
            drawn["quality"] = len(snap["quality"])
        # The loss plot at most every LOSS_PLOT_S (and whenever the run ends): each new frame makes the
        # browser redraw a Vega chart, CPU taken from the run on a 2-core machine (bench_train_page.py)
        # (the frames are built only then: a tick that sends no plot should cost the run nothing)
        now = time.monotonic()
        if snap["history"] and (new_run or not running or now - drawn.get("loss_t", 0.0) >= LOSS_PLOT_S):
            loss_df, acc_df = _plot_frames(snap["history"], snap["quality"])
            out[loss_plot] = loss_df  # an empty frame would fix the axes as categorical for good: none until data
            out[acc_plot] = gr.update(value=acc_df, visible=True) if len(acc_df) else gr.update(visible=False)
            drawn["loss_t"] = now
            out[version_state] = snap["version"]  # held back while the plots wait: the next tick sends them
        if job.sample is not None and job.sample_step != drawn.get("sample"):
            out[sample] = _view(job.sample)
            out[sample_caption] = (f"**Samples from fixed noise at step {job.sample_step}**"
                                   + (" (one row per class)" if job.cfg.model.conditional else ""))
            drawn["sample"] = job.sample_step
        out[drawn_state] = drawn
        return out

    @friendly
    def push_to_hub(repo_id):
        return services.push_to_hub(svc, repo_id)

    def variant_changed(variant, recipe_name):
        constraint, recipe = _recipe(variant, recipe_name)
        return (gr.update(placeholder=f"{recipe['lr']:g}"), gr.update(placeholder=f"{recipe['n_critic']}"),
                gr.update(visible=constraint == "gp"), gr.update(visible=constraint == "clip"))

    def recipe_settings(variant, recipe_name):
        """A person's pick of variant or recipe brings that recipe's settings: lr and n_critic back
        to blank (the recipe's), and, as a slider cannot be blank, its batch (acgan fast: 32, the
        others 64). A page mirroring a running job keeps that job's values until then."""
        return "", "", _recipe(variant, recipe_name)[1]["batch_size"]

    def estimate(*values):
        """Before Start: what the form will run and how long it should take (or why it cannot)."""
        try:
            return services.estimate(svc, *values)
        except UserError as e:
            return f"⚠️ {html.escape(str(e))}"

    def mirror_running_job():
        """A page opened while a run trains shows that run's settings, not the defaults."""
        job = svc.jobs.job
        if job is None or not job.running:
            return {field: gr.update() for field in train_inputs}  # Gradio wants every output named
        c = job.cfg
        return {variant: c.variant, dataset: c.dataset, iters: c.iters, batch: c.batch_size, lr: f"{c.lr:g}",
                n_critic: str(c.n_critic), lam: c.lambda_gp, clip: c.clip_value, train_seed: c.seed,
                eval_every: c.eval_every, recipe: c.recipe, g_arch: c.g_arch}

    # --- layout ---------------------------------------------------------------------------

    with gr.Tab("Train", id="train"):
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                variant = gr.Dropdown(VARIANT_CHOICES, value=form.variant, label="Variant", elem_id="variant")
                recipe = gr.Radio([("fast: best quality per CPU-minute", "fast"), ("paper: as published", "paper")],
                                  value=form.recipe, label="Recipe", elem_id="recipe",
                                  info="fast: smaller networks, one critic step per generator step; "
                                       "paper: the method's published settings (slower, a tighter W estimate)")
                g_arch = gr.Radio([(name, key) for key, name in G_ARCHS.items()], value=form.g_arch,
                                  label="Generator", elem_id="g-arch",
                                  info="without batch norm, or as an MLP, the papers say the GAN fails and WGAN "
                                       "still trains (Compare shows what was measured)")
                dataset = gr.Radio(list(DATASETS), value=form.dataset, label="Dataset", elem_id="dataset",
                                   info="stacked-mnist: three digits in the colour channels, 1,000 modes, the "
                                        "mode-collapse test (gan, wgan or wgan-gp)")
                iters = gr.Slider(1, cap, value=min(form.iters, cap), step=1, label="Iterations (generator steps)",
                                  elem_id="iters", info=f"this server allows up to {cap}")
                # Start stays above the fold at 1400x1000: the settings most runs leave alone fold away
                with gr.Accordion("More settings: batch, learning rate, n_critic, λ / c, seed, quality checks",
                                  open=False, elem_id="train-more"):
                    batch = gr.Slider(1, MAX_BATCH, value=form.batch_size, step=1, label="Batch size", elem_id="batch")
                    with gr.Row():
                        # text boxes, because a gr.Number cannot be blank (blank = the recipe's value)
                        lr = gr.Textbox(label="Learning rate", placeholder=f"{default_recipe['lr']:g}",
                                        info="blank = the recipe's", elem_id="lr")
                        n_critic = gr.Textbox(label="n_critic", placeholder=f"{default_recipe['n_critic']}",
                                              info="blank = the recipe's; 1 costs about a third of 5 a step",
                                              elem_id="n-critic")
                    with gr.Row():
                        lam = gr.Number(value=form.lambda_gp, label="λ (gradient penalty)",
                                        visible=default_constraint == "gp")
                        clip = gr.Number(value=form.clip_value, label="Clip value c",
                                         visible=default_constraint == "clip")
                        train_seed = gr.Number(value=form.seed, precision=0, minimum=0, label="Seed")
                    eval_every = gr.Number(value=UI_EVAL_EVERY, precision=0, minimum=0,
                                           label="Measure quality every N steps",
                                           info="0 = off; otherwise MNIST-FID of 500 samples (Stacked MNIST: modes "
                                                "and KL of 2,600) and the critic's held-out estimate (1-3 s each, the "
                                                "clock paused), drawn below",
                                           elem_id="eval-every")
                with gr.Row():
                    start_btn = gr.Button("▶ Start", variant="primary", elem_id="train-start")
                    stop_btn = gr.Button("■ Stop", variant="stop", interactive=False, elem_id="train-stop")
                plan = gr.Markdown(elem_id="train-plan")  # under the buttons: its lines would push Start down
            with gr.Column(scale=3, min_width=320):
                status = gr.Markdown(status_line(None), elem_id="status-line")
                loss_plot = gr.LinePlot(x="step", y="value", color="series",
                                        title="Losses and the Wasserstein estimate",
                                        height=280, x_title="generator step", y_title="loss / estimate",
                                        elem_id="loss-plot",
                                        color_map=dict(zip(PLOT_SERIES.values(),
                                                           ["#d62728", "#1f77b4", "#9467bd", "#2ca02c"])))
                gr.Markdown("<small>Wasserstein estimate = E[D(real)] − E[D(fake)]: the critic loss with its "
                            "sign flipped, before the penalty and class terms. It first <b>rises</b> from 0: the "
                            "critic starts knowing nothing and learns to tell the generator's noise from digits. "
                            "Then it <b>falls</b> as the generator catches up: the fall, not the peak, is what "
                            "follows sample quality. With the fast recipe the critic takes one step per generator "
                            "step, so the estimate is a looser, noisier bound than the paper recipe's.</small>")
                acc_plot = gr.LinePlot(x="step", y="value", color="series", title="Critic class accuracy",
                                       height=200, y_lim=[0, 1], x_title="generator step", y_title="accuracy",
                                       visible=False,
                                       elem_id="acc-plot")
                quality_plot = gr.Image(format="png", show_label=False, interactive=False, container=False,
                                        visible=False, elem_id="quality-plot")
                quality_text = gr.Markdown(elem_id="quality-rho")
                # the caption sits above the picture, not on it: an image label is a badge over its first row
                sample_caption = gr.Markdown("", elem_id="train-sample-caption")
                sample = gr.Image(type="pil", interactive=False, height=420, show_label=False, container=False,
                                  elem_id="train-sample", elem_classes=["pixelated"])
                run_zip = gr.DownloadButton("⬇ Download checkpoint (.zip)", visible=False, elem_id="run-zip")
                with gr.Accordion("Push to Hub", open=False, visible=False) as push_box:
                    repo = gr.Textbox(label=f"Repo id (this server pushes only to {svc.settings.push_namespace}/...)",
                                      placeholder=f"{svc.settings.push_namespace or 'your-name'}/wgan-mnist")
                    push_btn = gr.Button("Push to Hub")
                    push_out = gr.Markdown()
    # outside the tab: the poll runs whichever tab is showing
    timer = gr.Timer(POLL_S)
    # what this page last drew: the job's version, its run, and which sample grid / how many evaluations
    version_state, run_state, drawn_state = gr.State(-1), gr.State(""), gr.State({})

    # --- wiring ---------------------------------------------------------------------------

    train_inputs = [variant, dataset, iters, batch, lr, n_critic, lam, clip, train_seed, eval_every, recipe, g_arch]
    for field in (variant, recipe):
        field.change(variant_changed, [variant, recipe], [lr, n_critic, lam, clip], **PRIVATE)
        field.input(recipe_settings, [variant, recipe], [lr, n_critic, batch], **PRIVATE)
    for field in train_inputs:
        field.change(estimate, train_inputs, plan, **PRIVATE, concurrency_limit=None, show_progress="hidden")
    demo.load(mirror_running_job, None, train_inputs, **PRIVATE).then(
        estimate, train_inputs, plan, **PRIVATE, concurrency_limit=None, show_progress="hidden")
    start_btn.click(start_training, train_inputs, [status, start_btn, stop_btn], **PRIVATE, concurrency_limit=None)
    stop_btn.click(stop_training, None, [status, start_btn, stop_btn], **PRIVATE, concurrency_limit=None)
    timer.tick(tick, [version_state, run_state, drawn_state],
               [version_state, run_state, drawn_state, status, start_btn, stop_btn, loss_plot, acc_plot, quality_plot,
                quality_text, sample, sample_caption, run_zip, push_box, picker], **PRIVATE, concurrency_limit=None,
               show_progress="hidden")
    push_btn.click(push_to_hub, repo, push_out, **PRIVATE)


def _recipe(variant: str, recipe: str) -> tuple[str, dict]:
    """A variant's default constraint and a recipe's settings (lr, n_critic...): what a blank field means."""
    obj = VARIANTS[variant]
    return obj.constraint, obj.recipe_for(obj.constraint, recipe if recipe in RECIPES else "fast")


PLOT_POINTS = 300  # points per series the live plots draw: about one per pixel column


def _plot_frames(history: list[dict], quality: list[dict] = ()):
    """Long-format frames (step, value, series) for the loss and accuracy plots; the history
    evenly thinned to PLOT_POINTS (the newest point always kept): the browser redraws the plot at
    every tick, and 2,000 points a series cost it more than they show."""
    import pandas as pd

    if len(history) > PLOT_POINTS:
        stride = -(-len(history) // PLOT_POINTS)
        history = history[-1::-stride][::-1]

    def rows(points, series: dict[str, str]) -> list[tuple]:
        return [(h["step"], h[k], name) for h in points for k, name in series.items() if k in h]

    def frame(r: list[tuple]) -> "pd.DataFrame":
        return pd.DataFrame(r, columns=["step", "value", "series"])

    return (frame(rows(history, PLOT_SERIES)),
            frame(rows(history, ACC_SERIES) + rows(quality, QUALITY_ACC_SERIES)))
