"""The Generate tab: pick a model, a class and a seed; see digits, a class grid or a latent walk.

Layout and wiring only: each handler calls `services` and turns the result into Gradio values.
"""

from __future__ import annotations

import html
import random
from typing import Optional

import gradio as gr

from ..errors import UserError
from ..images import gif_bytes, png_bytes, upscale
from ..registry import TRAIN_HINT
from ..validation import MAX_IMAGES_PER_REQUEST, MAX_WALK_FRAMES
from . import services
from .common import PRIVATE, _view, friendly
from .services import Services

RANDOM_SEED_MAX = 2**31 - 1  # browsers hold integers exactly only up to 2**53; keep seeds short


def build_generate_tab(demo: gr.Blocks, svc: Services) -> gr.Dropdown:
    """Lay out the tab inside `demo` and wire its events; returns the model picker (the Train
    tab refreshes its choices when a run finishes)."""

    # --- handlers -------------------------------------------------------------------------

    @friendly
    def generate_view(model, label, seed, num):
        pic, name = services.draw_digits(svc, model, label, seed, num)
        big = _view(pic)
        return big, gr.update(value=svc.outbox.write(name, png_bytes(big)), visible=True, label="⬇ Download PNG")

    @friendly
    def all_classes_view(model, seed, columns):
        pic, name = services.draw_classes(svc, model, seed, columns)
        big = _view(pic)
        return big, gr.update(value=svc.outbox.write(name, png_bytes(big)), visible=True, label="⬇ Download PNG")

    @friendly
    def walk_view(model, seed_a, seed_b, label_a, label_b, frames):
        pics, name = services.draw_walk(svc, model, seed_a, seed_b, label_a, label_b, frames)
        path = svc.outbox.write(name, gif_bytes([upscale(f, 8) for f in pics], duration_ms=70))
        # the download offers this GIF, not the grid shown before it
        return path, gr.update(value=path, visible=True, label="⬇ Download GIF")

    def select_model(model):
        """Load the picked model; on failure say why and fall back to the default."""
        default = svc.registry.default_ref()
        try:
            _, entry = svc.sampler(model)
        except UserError as e:
            if not model or model == default:
                return (gr.update(), *_model_widgets(None, str(e)))
            gr.Warning(html.escape(f"{e}. Showing the default model instead.", quote=False))
            try:
                _, entry = svc.sampler(default)
            except UserError as e2:
                return (gr.update(value=default), *_model_widgets(None, str(e2)))
            return (gr.update(value=default), *_model_widgets(entry, None, services.zip_for(svc, entry)))
        return (gr.update(), *_model_widgets(entry, None, services.zip_for(svc, entry)))

    def refresh_models(current):
        choices = svc.model_choices()
        refs = {r for _, r in choices}
        value = current if current in refs or (current or "").startswith("hf://") else svc.registry.default_ref()
        return gr.update(choices=choices, value=value)

    def generate_if_ready(model, label, seed_, num_):
        try:
            return generate_view(model, label, seed_, num_)
        except gr.Error:
            return gr.skip(), gr.skip()  # no usable model yet: the notice already says what to do

    # --- layout ---------------------------------------------------------------------------

    with gr.Tab("Generate", id="generate") as gen_tab:
        gr.Markdown(TRAIN_HINT, visible=not svc.registry.has_shipped_model(), elem_id="no-model-notice")
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
                num = gr.Slider(1, MAX_IMAGES_PER_REQUEST, value=20, step=1, label="Number of images",
                                elem_id="num")
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

    # --- wiring ---------------------------------------------------------------------------

    draw = dict(concurrency_id="draw", concurrency_limit=4)  # every picture shares one pool of 4
    model_outputs = [picker, digit, digit_b, all_btn, model_info, model_zip]
    gen_inputs = [picker, digit, seed, num]

    demo.load(refresh_models, picker, picker, **PRIVATE).then(
        select_model, picker, model_outputs, **PRIVATE).then(
        generate_if_ready, gen_inputs, [image, download], **PRIVATE, **draw)
    picker.input(select_model, picker, model_outputs, **PRIVATE)
    refresh_btn.click(refresh_models, picker, picker, **PRIVATE).then(
        select_model, picker, model_outputs, **PRIVATE)
    gen_tab.select(refresh_models, picker, picker, **PRIVATE)
    gen_btn.click(generate_view, gen_inputs, [image, download], **PRIVATE, **draw)
    digit.input(generate_view, gen_inputs, [image, download], **PRIVATE, **draw)
    dice.click(lambda: random.randint(0, RANDOM_SEED_MAX), None, seed, **PRIVATE).then(
        generate_view, gen_inputs, [image, download], **PRIVATE, **draw)
    all_btn.click(all_classes_view, [picker, seed, columns], [image, download], **PRIVATE, **draw)
    walk_btn.click(walk_view, [picker, seed, seed_b, digit, digit_b, frames], [image, download], **PRIVATE, **draw)
    return picker


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
