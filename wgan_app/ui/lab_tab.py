"""The Lab tab: three 2-D runs side by side (layout and wiring; the logic is wgan_app.lab).

Each visitor gets their own workspace of runs (wgan_app.lab.workspace), trained by its own thread
while Run is on and the page keeps refreshing (a `gr.Timer`, which only draws), capped in time,
and dropped when the page unloads. Every handler here is UI-only (private).
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from ..errors import UserError
from ..lab import published
from ..lab import workspace as lab
from ..lab.session import OBJECTIVES, OPTIMIZERS, PRESETS
from ..lab.toy import DATASETS
from .common import PRIVATE, friendly

INTRO = ("Three GANs learn the same 2-D data from the same seed. **Background**: the critic's value "
         "(orange = \"looks real\"), with iso-lines; **green**: real points; **pink**: generated; **arrows**: where "
         "the generator is pushed. Under each: the critic's loss, its W estimate and the **exact W1** "
         "(optimal assignment on 256 points; the pale line is what two real samples score), then the "
         "critic's weights, its gradient norm per layer and, for WGAN-GP, ‖∇D(x̂)‖. **rho** under a panel's "
         "curves: how well the critic's curve ranks the run's moments as the exact W1 does, over the whole "
         "run (Spearman; +1 = it tracks the distance, near 0 = it says nothing about it).")
EXPLAIN = {
    "gan": "**GAN (BCE)** - its loss does not track quality: watch the curve wander while points move. "
           "Count the modes it covers against WGAN-GP's.",
    "wgan": "**WGAN, clipping** - weights pile up at ±c (red marks): a crude constraint. Its W estimate is "
            "W1 times an unknown constant K (about 1/100 here), so it is drawn on an axis of its own (right, in "
            "orange). Raise c and watch capacity change.",
    "wgan-gp": "**WGAN-GP** - ‖∇D(x̂)‖ sits near 1 (red mark) and the W estimate follows the exact W1. "
               "Switch on batch norm in the critic to see the penalty go wrong.",
}
# What was measured on each mixture (bench/lab_modes.py, 5 seeds, 2,000 steps, the defaults): the
# Lab says where claim 3 shows and where it does not, rather than presets tuned until it does.
DATA_NOTES = {
    "8gaussians": "*Measured over 5 seeds at 2,000 steps: the GAN covers 5.6 of 8 modes on average "
                  "(all 8 on seeds 0 and 2), clipping 1.6, WGAN-GP 7.6; seeds 1 and 3 show the GAN dropping most. "
                  "On a 2-core machine with the browser on it, Run reaches 600-1,200 steps in its first "
                  "minute: on seed 4 clipping's slowness and WGAN-GP's estimate following the exact W1 show "
                  "by then. **Skip ahead** 1,500 steps (40-55 s there) shows the GAN's dropped modes too "
                  "(4 of 8 on seed 4, WGAN-GP 8).*",
    "25gaussians": "*Here claim 3 does **not** show at 2,000 steps with these settings (5 seeds): the GAN "
                   "covers 8.4 of 25 modes, WGAN-GP 2.0, clipping 1.2. WGAN-GP spreads its points over the "
                   "grid, but only 4-7 % land within 3σ of a mode, so few count as covered. At the papers' "
                   "spacing and 25,000 steps it covers 16, as many as the GAN (below the panels).*",
}
LINES_TEXT = ("**Claim 1, the parallel lines.** Real data: the segment {0}×[0,1]; the generator: the same "
              "segment moved to x = θ. For any θ ≠ 0 JS is stuck at log 2 and TV at 1, but W1 = |θ| shrinks as the "
              "lines meet. Trained from the same θ and critic (θ by plain SGD): the minimax GAN's gradient vanishes "
              "and θ stalls; the non-saturating GAN's gradient jumps and θ overshoots; the WGAN-GP gradient "
              "stays near 1 and θ walks to 0. (From starts closer than 1 the minimax GAN may still move: its "
              "discriminator is not yet confident.)")


def build_lab_tab(demo: gr.Blocks, outbox, yield_to=None) -> None:
    """Lay out the Lab tab and wire it. Downloads go through `outbox` (services.Outbox: bounded,
    pruned); `yield_to()` is called between training slices (the server's drawing requests go
    first: admission.Foreground.wait_idle)."""
    spaces = lab.Workspaces(yield_to=yield_to)

    def ws_for(request: gr.Request) -> lab.Workspace:
        return spaces.get(getattr(request, "session_hash", None) or "")

    def show(ws: lab.Workspace, fresh: bool = False):
        with ws.held():  # copy under the lock; measure and draw after it, while the runs train on
            data = ws.snapshot(fresh=fresh)
            line = ws.note or ("training time used up: press Reset to start again" if ws.out_of_time else "")
        return (*map(_png_in_cache, ws.draw(data)), line)

    # --- handlers (UI-only) ---------------------------------------------------------------

    @friendly
    def tick(mode: str, frame: int, request: gr.Request):
        if mode == "recorded":
            from ..lab.recorded import load_recordings

            recs = _recordings(load_recordings)
            line = f"replaying shipped runs, frame {frame % recs[0].n_frames + 1} of {recs[0].n_frames}"
            return (*[_png_in_cache(r.panel(frame)) for r in recs], line, frame + 1, gr.skip())
        ws = ws_for(request)
        ws.keep_training()  # the thread trains while the page keeps asking; this only draws
        if ws.skipping:  # fast-forward: the CPU trains; the panels keep their picture, the line says how far
            return (*[gr.skip()] * len(ws.runs), ws.progress(), frame, gr.skip())
        # Paused (Pause, or a fast-forward that arrived): draw where the runs are, once, and stop
        # the timer; redrawing still runs would cost the server and the browser a core for nothing.
        return (*show(ws), frame, gr.Timer(active=False) if ws.paused else gr.skip())

    @friendly
    def skip(steps, request: gr.Request):
        ws = ws_for(request)
        with ws.held():
            line = lab.fast_forward(ws, steps)
        # Only the progress line changes meanwhile: tick at SKIP_TICK_S, not TICK_S, and leave the
        # cores to the runs (docs/lab.md#fast-forward-the-claims-in-a-minute-or-so)
        return line, gr.Timer(lab.SKIP_TICK_S, active=True)

    def run(request: gr.Request):
        lab.run(ws_for(request))
        return gr.Timer(lab.TICK_S, active=True)  # the panels' pace again after a fast-forward

    def pause(request: gr.Request):
        ws = spaces.get(getattr(request, "session_hash", None) or "", create=False)
        if ws is not None:
            ws.pause()
        return gr.Timer(active=False)

    @friendly
    def on_button(action: str, request: gr.Request):
        ws = ws_for(request)
        with ws.held():
            {"critic": lab.critic_step_all, "generator": lab.generator_step_all, "reset": lab.reset_all}[action](ws)
        return show(ws, fresh=True)

    @friendly
    def apply(index: int, dataset, seed, objective, optimizer, lr, n_critic, clip_value, lambda_gp, depth, width,
              batch_size, z_dim, batch_norm, request: gr.Request):
        ws = ws_for(request)
        with ws.held():
            status = lab.apply_settings(ws, index, dataset, seed, objective=objective, optimizer=optimizer, lr=lr,
                                        n_critic=n_critic, clip_value=clip_value, lambda_gp=lambda_gp,
                                        depth=depth, width=width, batch_size=batch_size, z_dim=z_dim,
                                        batch_norm=batch_norm)
        return status

    @friendly
    def follow_objective(objective):
        """The form follows the objective: its recipe's optimiser, lr and n_critic, only the
        constraint knob it has (c or lambda), and the explanation beside the panel."""
        f = lab.form_for(objective)
        return (gr.update(value=f["optimizer"]), gr.update(value=f["lr"]), gr.update(value=f["n_critic"]),
                gr.update(value=f["clip_value"], visible=f["show"] == "clip_value"),
                gr.update(value=f["lambda_gp"], visible=f["show"] == "lambda_gp"), EXPLAIN[objective])

    @friendly
    def set_data(dataset, seed, request: gr.Request):
        ws = ws_for(request)
        with ws.held():
            return lab.set_data(ws, dataset, seed)

    @friendly
    def download(kind: str, request: gr.Request):
        ws = ws_for(request)
        path = outbox.path(f"lab.{kind}")
        with ws.held():
            made = (lab.download_png if kind == "png" else lab.download_gif)(ws, path)
        return gr.update(value=made, visible=True, label=f"⬇ the Lab as {kind.upper()}")

    @friendly
    def train_lines(theta0):
        from ..lab import lines, render
        from ..validation import as_float

        t = as_float(theta0, "start theta")
        if not 0.1 <= abs(t) <= 2:
            raise UserError(f"start theta must be between 0.1 and 2 in size (either sign), got {t}")
        traj = lines.compare(lines.LineSettings(theta0=t))
        summary = " · ".join(f"{name}: θ {tr.theta[0]:+.2f} → {tr.theta[-1]:+.2f}, last |grad| {abs(tr.grad[-1]):.3g}"
                             for name, tr in traj.items())
        return render.lines_chart(lines.distance_curves(), traj), summary

    def on_unload(request: gr.Request):
        spaces.drop(getattr(request, "session_hash", None) or "")

    # --- layout ---------------------------------------------------------------------------
    with gr.Tab("Lab", id="lab"):
        gr.Markdown(INTRO)
        with gr.Row():
            dataset = gr.Dropdown([(d.title, k) for k, d in DATASETS.items()], value="8gaussians", label="data",
                                  info="shared by all runs: changing it restarts them", scale=3)
            seed = gr.Number(value=PRESETS["gan"].seed, precision=0, label="seed", info="changing it restarts all runs",
                             scale=1, elem_id="lab-seed")
            mode = gr.Radio(["live", "recorded"], value="live", label="mode", scale=2)
        data_note = gr.Markdown(DATA_NOTES["8gaussians"], elem_id="lab-data-note")
        with gr.Row():  # the buttons in a row of their own: beside the form they wrapped and hid Reset
            run_btn = gr.Button("Run", variant="primary", scale=1, elem_id="lab-run")
            pause_btn = gr.Button("Pause", scale=1, elem_id="lab-pause")
            critic_btn = gr.Button("1 critic step", scale=1, elem_id="lab-critic")
            gen_btn = gr.Button("1 generator step", scale=1, elem_id="lab-generator")
            reset_btn = gr.Button("Reset", scale=1)
            skip_steps = gr.Number(value=lab.SKIP_STEPS, precision=0, minimum=1, maximum=lab.MAX_SKIP, show_label=False,
                                   scale=1, min_width=90, elem_id="lab-skip-steps")
            skip_btn = gr.Button("Skip ahead N steps (no drawing)", scale=2, elem_id="lab-skip")
        status = gr.Markdown("", elem_id="lab-status")
        images, forms = [], []
        with gr.Row(equal_height=False):
            for i, (name, preset) in enumerate(PRESETS.items()):
                with gr.Column(min_width=330):
                    images.append(gr.Image(type="numpy", format="png", show_label=False, interactive=False,
                                           elem_id=f"lab-panel-{i}", buttons=[]))
                    explain = gr.Markdown(EXPLAIN[name])
                    with gr.Accordion(f"run {i + 1} settings", open=False):
                        objective = gr.Dropdown([(v, k) for k, v in OBJECTIVES.items()], value=preset.objective,
                                                label="objective")
                        optimizer = gr.Dropdown(list(OPTIMIZERS), value=preset.optimizer, label="optimiser")
                        with gr.Row():
                            lr = gr.Number(value=preset.lr, label="learning rate")
                            n_critic = gr.Number(value=preset.n_critic, precision=0, label="n_critic")
                        with gr.Row():  # only the objective's own constraint knob is shown
                            clip_value = gr.Number(value=preset.clip_value, label="clip c",
                                                   visible=preset.objective == "wgan")
                            lambda_gp = gr.Number(value=preset.lambda_gp, label="λ (penalty)",
                                                  visible=preset.objective == "wgan-gp")
                        with gr.Row():
                            depth = gr.Number(value=preset.depth, precision=0, label="depth")
                            width = gr.Number(value=preset.width, precision=0, label="width")
                        with gr.Row():
                            batch_size = gr.Number(value=preset.batch_size, precision=0, label="batch size")
                            z_dim = gr.Number(value=preset.z_dim, precision=0, label="noise dim")
                        batch_norm = gr.Checkbox(value=preset.batch_norm, label="batch norm in the critic")
                        gr.Markdown("*depth, width, noise dim and batch norm rebuild the nets: the run restarts*")
                        apply_btn = gr.Button("Apply (at the next step)")
                    forms.append((apply_btn, [objective, optimizer, lr, n_critic, clip_value, lambda_gp, depth, width,
                                              batch_size, z_dim, batch_norm]))
                    objective.change(follow_objective, objective, [optimizer, lr, n_critic, clip_value, lambda_gp,
                                                                   explain], **PRIVATE)
        with gr.Row():
            png_btn = gr.Button("Download PNG")
            gif_btn = gr.Button("Download GIF")
            file_out = gr.File(label="download", interactive=False, visible=False,  # shown once it holds a file
                               elem_id="lab-download-file")
        with gr.Accordion("Claim 1: the parallel lines (W1 is continuous where JS is not)", open=False):
            gr.Markdown(LINES_TEXT)
            with gr.Row():
                theta0 = gr.Number(value=1.0, label="start θ", scale=1)
                lines_btn = gr.Button("Train θ three ways (a few seconds)", scale=2)
            lines_img = gr.Image(type="numpy", format="png", show_label=False, interactive=False, buttons=[])
            lines_text = gr.Markdown("")
        shipped = published.load()
        if shipped is not None:  # claim 3 at the published horizon, trained offline (bench/lab_published.py)
            with gr.Accordion("Claim 3 at the papers' horizon: 25,000 steps on their mixtures", open=False,
                              elem_id="lab-published"):
                gr.Markdown(published.intro(shipped))
                gr.Markdown(published.table_markdown(shipped))
                picture = published.figure(shipped)
                if picture is not None:
                    gr.Image(picture, type="numpy", format="png", show_label=False, interactive=False, buttons=[])
        timer = gr.Timer(lab.TICK_S, active=False)
        frame = gr.State(0)

    # --- wiring ---------------------------------------------------------------------------
    lab_pool = dict(concurrency_id="lab", concurrency_limit=4, **PRIVATE)  # never blocks Generate / Train
    outputs = [*images, status]
    run_btn.click(run, None, timer, **PRIVATE)
    skip_btn.click(skip, skip_steps, [status, timer], **lab_pool)
    pause_btn.click(pause, None, timer, **PRIVATE)
    timer.tick(tick, [mode, frame], [*outputs, frame, timer], show_progress="hidden", trigger_mode="once", **lab_pool)
    # Gradio injects gr.Request by annotation: one small named function per button, not a lambda.
    for btn, action in ((critic_btn, "critic"), (gen_btn, "generator"), (reset_btn, "reset")):
        btn.click(_bind(on_button, action), None, outputs, **lab_pool)
    for i, (btn, fields) in enumerate(forms):
        btn.click(_bind_apply(apply, i), [dataset, seed, *fields], status, **lab_pool)
    for box in (dataset, seed):
        box.change(set_data, [dataset, seed], status, **lab_pool)
    dataset.change(lambda d: DATA_NOTES.get(d, ""), dataset, data_note, **PRIVATE)
    png_btn.click(_bind(download, "png"), None, file_out, **lab_pool)
    gif_btn.click(_bind(download, "gif"), None, file_out, **lab_pool)
    lines_btn.click(train_lines, theta0, [lines_img, lines_text], **lab_pool)
    demo.unload(on_unload)


def _png_in_cache(rgb) -> str:
    """A panel as a PNG file in Gradio's cache, which Gradio serves as it is (no copy).
    Gradio would encode a numpy image itself at PIL's default zlib level, ~35 ms for the three
    panels on the 2-core machine; render.png_bytes takes ~15 ms. Named by content like Gradio's
    own, so an unchanged panel is one file. Only the newest MAX_PANEL_FILES are kept: at five
    refreshes a second a visitor's panels would otherwise add ~1 MB/s until the hourly clean-up."""
    from ..lab.render import png_bytes

    data = png_bytes(rgb)
    folder = Path(get_upload_folder()) / hashlib.sha256(data).hexdigest()
    path = folder / "lab-panel.png"
    with _PANELS_LOCK:
        if path in _PANELS:
            _PANELS.remove(path)  # written again: it moves to the newest end instead of being dropped
        if not path.exists():  # (Gradio's hourly clean-up may have removed a file still listed)
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        _PANELS.append(path)
        while len(_PANELS) > MAX_PANEL_FILES:
            old = _PANELS.popleft()
            old.unlink(missing_ok=True)
            try:
                old.parent.rmdir()
            except OSError:
                pass  # Gradio's clean-up got there first, or the folder holds another file
    return str(path)


# Panel files kept: 3 panels x ~30 refreshes x MAX_WORKSPACES visitors, so a page still fetching a
# picture seconds after it was sent finds it (~60 kB each: at most ~45 MB).
MAX_PANEL_FILES = 90 * lab.MAX_WORKSPACES
_PANELS: deque[Path] = deque()
_PANELS_LOCK = threading.Lock()


_RECORDINGS: list = []


def _recordings(loader) -> list:
    """The shipped recordings, loaded once per process (a few hundred kB)."""
    if not _RECORDINGS:
        _RECORDINGS.extend(loader())
    return _RECORDINGS


def _bind(fn, arg):
    """fn(arg, request) as a handler of no inputs that Gradio gives the request to."""
    def handler(request: gr.Request):
        return fn(arg, request)
    return handler


def _bind_apply(apply, index: int):
    """The Apply button of run `index`: the shared data and seed, then that run's eleven fields."""
    def handler(dataset, seed, objective, optimizer, lr, n_critic, clip_value, lambda_gp, depth, width, batch_size,
                z_dim, batch_norm, request: gr.Request):
        return apply(index, dataset, seed, objective, optimizer, lr, n_critic, clip_value, lambda_gp, depth, width,
                     batch_size, z_dim, batch_norm, request)
    return handler
