"""The Compare tab: the shipped MNIST evidence, method against method (layout and wiring; the data
comes from wgan_app.compare and wgan_app.story). Nothing trains: every handler reads shipped
files, so each answer is instant. Every handler is UI-only (private).

Its first view is the story: for each generator architecture, the GAN, the clipped WGAN and
WGAN-GP at the same minute, their FID curves on a log axis and one computed sentence each. The
second, mode collapse on Stacked MNIST: our runs' modes of 1,000 beside the papers' tables. The
third explores every MNIST run of a set (curves, losses, class histograms, critic estimates).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .. import compare, story
from ..evidence import load_sets
from ..evidence import stacked as stacked_mnist
from .common import PRIVATE

STORY_INTRO = ("Three methods, each with its best 5-minute recipe, on one CPU core each, from three generators: the "
               "DCGAN with batch norm, where the papers say both work, and two where they say the GAN fails. Read "
               "from the shipped runs (`checkpoints/evidence/architectures/`); nothing trains.")
PICTURE = dict(format="png", show_label=False, interactive=False, container=False)  # drawn at its shown size
STACKED_INTRO = ("**Mode collapse, measured as the papers measure it.** Each Stacked-MNIST image holds three MNIST "
                 "digits in its three colour channels, so the data has 1,000 modes. The MNIST classifier reads each "
                 "channel of 26,000 samples; a model scores the modes it covers and the KL divergence of their "
                 "histogram from uniform (0 is perfectly even). Read from `checkpoints/evidence/stacked-mnist/`; "
                 "nothing trains. Counts mean something only within one set-up, so each row names its own.")
EXPLORE_INTRO = ("Every shipped run of a set: pick methods, recipes, generators and seeds. Lower MNIST-FID is "
                 "better; the FID axes are logarithmic.")


def build_compare_tab(demo: gr.Blocks, evidence_dir: Path) -> None:
    """Lay out the Compare tab for the evidence sets under `evidence_dir`, and wire it."""
    sets = load_sets(evidence_dir)
    with gr.Tab("Compare", id="compare"):
        if not sets:  # said plainly, with the command that makes the evidence
            gr.Markdown(compare.empty_message(evidence_dir), elem_id="compare-empty")
            return
        with gr.Tabs():
            if "architectures" in sets:
                _story_view(demo, sets["architectures"])
            if "stacked-mnist" in sets:
                _stacked_view(demo, sets["stacked-mnist"])
            mnist = {name: runs for name, runs in sets.items() if not any(r.stacked for r in runs)}
            if mnist:
                _explore_view(demo, mnist)


def _story_view(demo: gr.Blocks, runs) -> None:
    marks = compare.minute_marks(runs)
    seeds = sorted({r.seed for r in runs})
    last = marks[-1] if marks else 0.0
    with gr.Tab("The story: three generators", id="compare-story"):
        gr.Markdown(STORY_INTRO)
        with gr.Row(equal_height=False):
            figure = gr.Image(story.figure(runs, last, seeds[0]), format="png", show_label=False, interactive=False,
                              container=False, elem_id="compare-story-figure", scale=3, min_width=760,
                              buttons=["download"])
            with gr.Column(scale=2, min_width=420):
                with gr.Row():
                    minute = gr.Radio([(f"{m:g} min", m) for m in marks], value=last, label="Minute of training",
                                      elem_id="compare-story-minute", min_width=120)
                    seed = gr.Radio(seeds, value=seeds[0], label="Grids of seed", elem_id="compare-story-seed",
                                    min_width=120)
                gr.Markdown("\n\n".join([story.preamble(runs), *(story.sentence(a, g)
                                                                 for a, g in story.by_arch(runs).items())]),
                            elem_id="compare-story-text")

    def redraw(m, s):
        return story.figure(runs, float(m), int(s))

    for c in (minute, seed):
        c.change(redraw, [minute, seed], figure, **PRIVATE, concurrency_limit=None, show_progress="hidden")


def _stacked_view(demo: gr.Blocks, runs) -> None:
    marks = compare.minute_marks(runs)
    seeds = sorted({r.seed for r in runs})
    last = marks[-1] if marks else None
    by_method = stacked_mnist.by_method(runs)
    with gr.Tab("Mode collapse: Stacked MNIST", id="compare-stacked"):
        gr.Markdown(STACKED_INTRO)
        gr.Markdown(stacked_mnist.sentence(runs), elem_id="compare-stacked-sentence")
        with gr.Row(equal_height=False):
            gr.Image(compare.modes_chart(runs), **PICTURE, elem_id="compare-stacked-modes", scale=1)
            with gr.Column(scale=1):
                with gr.Row():
                    minute = gr.Radio([(f"{m:g} min", m) for m in marks], value=last, label="Minute of training",
                                      elem_id="compare-stacked-minute", min_width=120)
                    seed = gr.Radio(seeds, value=seeds[0], label="Grids of seed", elem_id="compare-stacked-seed",
                                    min_width=120)
                grids = gr.Image(_stacked_grids(by_method, last, seeds[0]), **PICTURE, elem_id="compare-stacked-grids",
                                 elem_classes=["pixelated"])
        gr.Markdown(stacked_mnist.stacked_markdown(runs), elem_id="compare-stacked-table")

    def redraw(m, s):
        return _stacked_grids(by_method, m, s)

    for c in (minute, seed):
        c.change(redraw, [minute, seed], grids, **PRIVATE, concurrency_limit=None, show_progress="hidden")


def _stacked_grids(by_method: dict, minute, seed):
    picked = [r for rs in by_method.values() for r in rs if r.seed == int(seed)]
    return compare.grids_figure(picked, minute, tile_px=200)


def _explore_view(demo: gr.Blocks, sets: dict) -> None:
    first = next(iter(sets))
    with gr.Tab("All runs", id="compare-explore"):
        gr.Markdown(EXPLORE_INTRO)
        with gr.Row():
            pick_set = gr.Radio(list(sets), value=first, label="Evidence set", elem_id="compare-set")
            variants, recipes, archs, seeds = compare.options(sets[first])
            pick_variant = gr.CheckboxGroup(variants, value=variants, label="Methods", elem_id="compare-variants")
            pick_recipe = gr.CheckboxGroup(recipes, value=recipes, label="Recipes", elem_id="compare-recipes")
            pick_arch = gr.CheckboxGroup(archs, value=archs[:1], label="Generators", elem_id="compare-archs")
            pick_seed = gr.CheckboxGroup(seeds, value=seeds[:1], label="Seeds", elem_id="compare-seeds")
        with gr.Row():
            fid_time = gr.Image(**PICTURE, elem_id="compare-fid-time")
            fid_steps = gr.Image(**PICTURE, elem_id="compare-fid-steps")
        marks = compare.minute_marks(sets[first])
        minute = gr.Radio([(f"{m:g} min", m) for m in marks], value=marks[-1] if marks else None,
                          label="Samples from each run's fixed noise after", elem_id="compare-minute")
        grids = gr.Image(**PICTURE, elem_id="compare-grids", elem_classes=["pixelated"])
        with gr.Row():
            with gr.Column():
                loss_pick = gr.Radio(list(compare.LOSS_SERIES), value=next(iter(compare.LOSS_SERIES)),
                                     label="Loss curve", elem_id="compare-loss-pick")
                losses = gr.Image(**PICTURE, elem_id="compare-losses")
            with gr.Column():
                classes = gr.BarPlot(x="run", y="share", color="digit", title="Digits in the final samples (even "
                                     "parts: no mode dropped)", y_lim=[0, 1], height=340, elem_id="compare-classes")
        with gr.Row():
            with gr.Column():
                estimate = gr.Radio(list(compare.ESTIMATES), value=next(iter(compare.ESTIMATES)),
                                    label="Critic's estimate", elem_id="compare-estimate")
                scatter = gr.ScatterPlot(x="estimate", y="fid", color="run", title="Does the critic's estimate "
                                         "track quality? One point per evaluation", x_title="W estimate",
                                         y_title="MNIST-FID", height=320, elem_id="compare-scatter")
            correlation = gr.Markdown(elem_id="compare-correlation")

    # --- handlers (UI-only): plain functions of the choices ----------------------------------

    def chosen(name, v, r, a, s):
        return compare.select(sets.get(name, []), v, r, a, s)

    def refresh(name, v, r, a, s, loss_series, m, est):
        picked = chosen(name, v, r, a, s)
        return (compare.fid_chart(picked, "minutes"), compare.fid_chart(picked, "step"),
                compare.grids_figure(picked, m), compare.loss_chart(picked, loss_series), compare.class_frame(picked),
                compare.scatter_frame(picked, est), compare.correlation_markdown(picked))

    def set_changed(name):
        runs = sets.get(name, [])
        v, r, a, s = compare.options(runs)
        m = compare.minute_marks(runs)
        return (gr.update(choices=v, value=v), gr.update(choices=r, value=r), gr.update(choices=a, value=a[:1]),
                gr.update(choices=s, value=s[:1]),
                gr.update(choices=[(f"{x:g} min", x) for x in m], value=m[-1] if m else None))

    picks = [pick_set, pick_variant, pick_recipe, pick_arch, pick_seed]
    everything = [fid_time, fid_steps, grids, losses, classes, scatter, correlation]
    inputs = [*picks, loss_pick, minute, estimate]
    demo.load(refresh, inputs, everything, **PRIVATE, concurrency_limit=None, show_progress="hidden")
    pick_set.input(set_changed, pick_set, [pick_variant, pick_recipe, pick_arch, pick_seed, minute], **PRIVATE,
                   concurrency_limit=None, show_progress="hidden").then(
        refresh, inputs, everything, **PRIVATE, concurrency_limit=None, show_progress="hidden")
    for p in picks[1:]:
        p.input(refresh, inputs, everything, **PRIVATE, concurrency_limit=None, show_progress="hidden")
    loss_pick.input(lambda *a: compare.loss_chart(chosen(*a[:5]), a[5]), [*picks, loss_pick], losses,
                    **PRIVATE, concurrency_limit=None)
    estimate.input(lambda *a: compare.scatter_frame(chosen(*a[:5]), a[5]), [*picks, estimate], scatter,
                   **PRIVATE, concurrency_limit=None)
    minute.input(lambda *a: compare.grids_figure(chosen(*a[:5]), a[5]), [*picks, minute], grids, **PRIVATE,
                 concurrency_limit=None, show_progress="hidden")
