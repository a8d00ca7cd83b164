"""The Compare tab: the shipped MNIST evidence, method against method (layout and wiring; the data
comes from wgan_app.compare). Nothing trains: every handler reads shipped files, so each answer is
instant. Every handler is UI-only (private)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .. import compare
from ..evidence import load_evidence
from .common import PRIVATE

INTRO = ("Each method trained on MNIST on the same CPU for the same training time (evaluations do not "
         "count), with each method's own recipe. Pick methods, recipes and seeds; everything below is read from "
         "the shipped run logs (`checkpoints/evidence/`), nothing trains.")


def build_compare_tab(demo: gr.Blocks, evidence_dir: Path) -> None:
    """Lay out the Compare tab for the evidence under `evidence_dir`, and wire it."""
    runs = load_evidence(evidence_dir)
    with gr.Tab("Compare", id="compare"):
        if not runs:  # said plainly, with the command that makes the evidence
            gr.Markdown(compare.empty_message(evidence_dir), elem_id="compare-empty")
            return
        variants, recipes, seeds = compare.options(runs)
        gr.Markdown(INTRO)
        with gr.Row():
            pick_variant = gr.CheckboxGroup(variants, value=variants, label="Methods", elem_id="compare-variants")
            pick_recipe = gr.CheckboxGroup(recipes, value=recipes, label="Recipes", elem_id="compare-recipes")
            pick_seed = gr.CheckboxGroup(seeds, value=seeds[:1], label="Seeds", elem_id="compare-seeds")
        with gr.Row():
            fid_time = gr.LinePlot(x="minutes", y="fid", color="run", title="MNIST-FID against training time "
                                   "(lower is better)", x_title="minutes of training", y_title="MNIST-FID",
                                   height=300, elem_id="compare-fid-time")
            fid_steps = gr.LinePlot(x="step", y="fid", color="run", title="MNIST-FID against generator steps",
                                    x_title="generator step", y_title="MNIST-FID", height=300,
                                    elem_id="compare-fid-steps")
        with gr.Row():
            with gr.Column():
                loss_pick = gr.Radio(list(compare.LOSS_SERIES), value=next(iter(compare.LOSS_SERIES)),
                                     label="Loss curve", elem_id="compare-loss-pick")
                losses = gr.LinePlot(x="minutes", y="value", color="run", title="Losses during training",
                                     x_title="minutes of training", y_title="value", height=300,
                                     elem_id="compare-losses")
            with gr.Column():
                classes = gr.BarPlot(x="run", y="share", color="digit", title="Digits in the final samples (even parts: "
                                     "no mode dropped)", y_lim=[0, 1],
                                     height=340, elem_id="compare-classes")
        marks = compare.minute_marks(runs)
        minute = gr.Slider(0, max(len(marks) - 1, 1), value=len(marks) - 1 if marks else 0, step=1,
                           label=_mark_label(marks, len(marks) - 1), elem_id="compare-minute",
                           info="the same minute of training for every run")
        gallery = gr.Gallery(label="Samples from each run's fixed noise", columns=4, height="auto",
                             object_fit="contain", elem_id="compare-grids", elem_classes=["pixelated"])
        with gr.Row():
            with gr.Column():
                estimate = gr.Radio(list(compare.ESTIMATES), value=next(iter(compare.ESTIMATES)),
                                    label="Critic's estimate", elem_id="compare-estimate")
                scatter = gr.ScatterPlot(x="estimate", y="fid", color="run", title="Does the critic's estimate "
                                         "track quality? One point per evaluation", x_title="W estimate",
                                         y_title="MNIST-FID", height=320, elem_id="compare-scatter")
            correlation = gr.Markdown(elem_id="compare-correlation")

    # --- handlers (UI-only): plain functions of the choices ----------------------------------

    def chosen(v, r, s):
        return compare.select(runs, v, r, s)

    def refresh(v, r, s, loss_series, mark_index, est):
        picked = chosen(v, r, s)
        by_time, by_step = compare.fid_frames(picked)
        return (by_time, by_step, compare.loss_frame(picked, loss_series), compare.class_frame(picked),
                show_grids(v, r, s, mark_index), compare.scatter_frame(picked, est),
                compare.correlation_markdown(picked))

    def show_grids(v, r, s, mark_index):
        if not marks:
            return gr.update(value=[], label="No grids at fixed minutes in these runs")
        i = min(max(int(mark_index), 0), len(marks) - 1)
        return gr.update(value=compare.grids_at(chosen(v, r, s), marks[i]),
                         label=f"Samples from each run's fixed noise after {marks[i]:g} minutes of training")

    def slide(v, r, s, mark_index):
        return show_grids(v, r, s, mark_index), gr.update(label=_mark_label(marks, int(mark_index)))

    picks = [pick_variant, pick_recipe, pick_seed]
    everything = [fid_time, fid_steps, losses, classes, gallery, scatter, correlation]
    inputs = [*picks, loss_pick, minute, estimate]
    demo.load(refresh, inputs, everything, **PRIVATE, concurrency_limit=None, show_progress="hidden")
    for p in picks:
        p.change(refresh, inputs, everything, **PRIVATE, concurrency_limit=None, show_progress="hidden")
    loss_pick.change(lambda v, r, s, k: compare.loss_frame(chosen(v, r, s), k), [*picks, loss_pick], losses,
                     **PRIVATE, concurrency_limit=None)
    estimate.change(lambda v, r, s, e: compare.scatter_frame(chosen(v, r, s), e), [*picks, estimate], scatter,
                    **PRIVATE, concurrency_limit=None)
    # .input, not .change: the handler relabels the slider, which must not fire it again
    minute.input(slide, [*picks, minute], [gallery, minute], **PRIVATE, concurrency_limit=None,
                 show_progress="hidden")


def _mark_label(marks: list[float], i: int) -> str:
    if not marks:
        return "Minute of training"
    return f"Minute of training: {marks[max(0, min(i, len(marks) - 1))]:g} (marks: {', '.join(f'{m:g}' for m in marks)})"
