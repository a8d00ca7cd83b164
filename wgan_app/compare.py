"""What the Compare tab shows, as plain data: pandas frames for the plots, grids for the gallery,
sentences. No Gradio here (ui/compare_tab.py lays it out), no training: everything comes from the
shipped evidence (evidence.py), so every call is instant.

Frames are long-format (one row per point, a `run` column for the colour) as gr.LinePlot,
gr.ScatterPlot and gr.BarPlot take them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from .config import G_ARCHS
from .evidence import RunEvidence, is_number, spearman, training_estimate
from .figures import PALETTE, line_chart, mosaic

MAX_POINTS_PER_RUN = 150  # loss curves: the plots slow down past ~1,000 points in all
LOSS_SERIES = {  # what the loss plot can show: label -> how to read it from a step row
    "critic's training-time W estimate": training_estimate,
    "critic loss": lambda r: r.get("loss_d"),
    "generator loss": lambda r: r.get("loss_g"),
}
ESTIMATES = {"held-out W estimate": "w_heldout", "training-time W estimate": "w_train"}
EXPORT_COMMAND = ("python bench/bench_compare.py --minutes 5 --export-to checkpoints/evidence/recipes   "
                  "# or, per run: python app.py --train ... --eval-every N --grid-minutes 1,2,5,10,20, "
                  "then python -m wgan_app.evidence RUN_DIR")


def empty_message(root: str | Path) -> str:
    return (f"No evidence is shipped yet (nothing under `{root}`): the long comparison runs are still to be "
            f"measured. This makes it, one training run after another:\n\n```bash\n{EXPORT_COMMAND}\n```")


def options(runs: list[RunEvidence]) -> tuple[list[str], list[str], list[str], list[int]]:
    """(variants, recipes, generator architectures, seeds) present in the evidence, each sorted
    (architectures in G_ARCHS order, the DCGAN first)."""
    archs = [a for a in G_ARCHS if any(r.arch == a for r in runs)]
    archs += sorted({r.arch for r in runs} - set(archs))
    return (sorted({r.variant for r in runs}), sorted({r.recipe for r in runs}), archs, sorted({r.seed for r in runs}))


def select(runs: list[RunEvidence], variants, recipes, archs, seeds) -> list[RunEvidence]:
    seeds = {int(s) for s in seeds or ()}
    return [r for r in runs if r.variant in (variants or ()) and r.recipe in (recipes or ())
            and r.arch in (archs or ()) and r.seed in seeds]


def _colors(runs: list[RunEvidence]) -> dict[str, tuple]:
    return {r.label: PALETTE[i % len(PALETTE)] for i, r in enumerate(runs)}


def fid_chart(runs: list[RunEvidence], x: str = "minutes", w: int = 640, h: int = 360) -> np.ndarray:
    """MNIST-FID of each run's evaluations against `x` ("minutes" of training or generator
    "step"), on a log axis so the good runs are not squashed under the bad ones' thousands."""
    colors = _colors(runs)
    series = [(r.label, [e[x] for e in r.evals()], [e["fid"] for e in r.evals()], colors[r.label]) for r in runs]
    against = "training time" if x == "minutes" else "generator steps"
    title = f"MNIST-FID against {against} (log, lower is better)"
    return np.asarray(line_chart(series, w, h, title=title, log_y=True,
                                 x_label="minutes of training" if x == "minutes" else "generator step"))


def modes_chart(runs: list[RunEvidence], w: int = 640, h: int = 300) -> np.ndarray:
    """Stacked MNIST: modes covered (of 1,000, on 26,000 samples) at each evaluation against minutes
    of training, one colour per method, every seed drawn."""
    from .evidence.stacked import METHOD_ORDER

    methods = sorted({r.method for r in runs}, key=lambda m: METHOD_ORDER.index(m.split()[0])
                     if m.split()[0] in METHOD_ORDER else 9)
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}
    series = [(r.method, [e["minutes"] for e in r.evals()], [e["modes"] for e in r.evals()], colors[r.method])
              for r in runs]
    return np.asarray(line_chart(series, w, h, title="Modes covered of 1,000 (higher is better)",
                                 x_label="minutes of training"))


def loss_chart(runs: list[RunEvidence], series: str, w: int = 640, h: int = 340) -> np.ndarray:
    """One LOSS_SERIES of each run against minutes of training, averaged to MAX_POINTS_PER_RUN points."""
    frame = loss_frame(runs, series)
    colors = _colors(runs)
    lines = [(r.label, frame[frame.run == r.label].minutes.tolist(), frame[frame.run == r.label].value.tolist(),
              colors[r.label]) for r in runs]
    return np.asarray(line_chart(lines, w, h, title=f"{series} during training", x_label="minutes of training"))


def grids_figure(runs: list[RunEvidence], minute, tile_px: int = 220) -> np.ndarray:
    """Every run's fixed-noise grid after `minute` minutes of training, captioned, six a row."""
    from PIL import Image

    if minute is None:
        return mosaic([], 6, tile_px)
    tiles = [(Image.fromarray(img), caption) for img, caption in grids_at(runs, float(minute))]
    return mosaic(tiles, 6, tile_px)


def _frame(rows: list[tuple], columns: list[str]):
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def fid_frames(runs: list[RunEvidence]):
    """(minutes, fid, run) and (step, fid, run): MNIST-FID against training time and against steps."""
    by_time, by_step = [], []
    for r in runs:
        for e in r.evals():
            by_time.append((round(e["minutes"], 3), e["fid"], r.label))
            by_step.append((e["step"], e["fid"], r.label))
    return _frame(by_time, ["minutes", "fid", "run"]), _frame(by_step, ["step", "fid", "run"])


def loss_frame(runs: list[RunEvidence], series: str):
    """(minutes, value, run) of one LOSS_SERIES, each run averaged down to MAX_POINTS_PER_RUN points."""
    read = LOSS_SERIES[series]
    rows = []
    for r in runs:
        pts = [(row["time"] / 60, read(row)) for row in r.step_rows() if row.get("time") is not None]
        pts = [(t, v) for t, v in pts if v is not None and math.isfinite(v)]
        k = max(1, math.ceil(len(pts) / MAX_POINTS_PER_RUN))
        for i in range(0, len(pts), k):
            chunk = pts[i:i + k]
            rows.append((round(chunk[-1][0], 3), round(sum(v for _, v in chunk) / len(chunk), 5), r.label))
    return _frame(rows, ["minutes", "value", "run"])


def minute_marks(runs: list[RunEvidence]) -> list[float]:
    return sorted({m for r in runs for m in r.grids()})


def grids_at(runs: list[RunEvidence], minute: float) -> list[tuple[np.ndarray, str]]:
    """For the gallery: each run's fixed-noise grid after `minute` minutes of training, captioned;
    a run that never got there shows its last grid, and the caption says so."""
    from PIL import Image

    out = []
    for r in runs:
        path, shown = r.grid_at(minute)
        if path is None:
            continue
        caption = f"{r.label}: {_minutes(shown)}"
        if shown != minute:
            caption += f" (its last grid; the run has none at {_minutes(minute)})"
        out.append((np.asarray(Image.open(path).convert("RGB" if r.stacked else "L")), caption))
    return out


def _minutes(m: float) -> str:
    return f"{m:g} min"


def scatter_frame(runs: list[RunEvidence], estimate: str):
    """(estimate, fid, run): one point per evaluation of each run."""
    key = ESTIMATES[estimate]
    rows = [(e[key], e["fid"], r.label) for r in runs for e in r.evals()
            if e.get(key) is not None and math.isfinite(e[key])]
    return _frame(rows, ["estimate", "fid", "run"])


def verdict(rho: Optional[float]) -> str:
    if rho is None:
        return "too few evaluations to tell"
    if rho >= 0.7:
        return "tracks quality"
    if rho >= 0.3:
        return "tracks it loosely"
    if rho > -0.3:
        return "says nothing about quality"
    return "moves against quality"


def correlation_markdown(runs: list[RunEvidence]) -> str:
    """Per run: Spearman(held-out W, FID) and Spearman(training-time W, FID), and what they mean."""
    if not runs:
        return ""
    lines = ["Spearman's ρ between the critic's estimate and MNIST-FID over a run's evaluations: near 1 the "
             "estimate falls exactly when the samples get better, so the loss can be read as quality; near 0 it "
             "says nothing about them (the BCE GAN's discriminator estimates no distance at all).", "",
             "| run | ρ held-out W | what it means | ρ training-time W | what it means | held-out W ± SE (last) |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        ev = r.evals()
        fid = [e["fid"] for e in ev]
        rh, rt = spearman([e["w_heldout"] for e in ev], fid), spearman([e["w_train"] for e in ev], fid)
        fmt = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
        last = ev[-1] if ev else {}
        noise = (f"{last['w_heldout']:.3f} ± {last['w_heldout_se']:.3f}"
                 if is_number(last.get("w_heldout")) and is_number(last.get("w_heldout_se")) else "—")
        lines.append(f"| {r.label} | {fmt(rh)} | {verdict(rh)} | {fmt(rt)} | {verdict(rt)} | {noise} |")
    return "\n".join(lines)


def class_frame(runs: list[RunEvidence]):
    """(run, digit, share): what the classifier reads each unconditional run's final samples as.
    A full bar of ten equal parts means every digit is drawn; a missing colour, a dropped mode."""
    rows = []
    for r in runs:
        counts = r.final.get("classes")
        if r.conditional or not counts or not sum(counts):
            continue
        total = sum(counts)
        rows += [(r.label, str(d), round(c / total, 4)) for d, c in enumerate(counts)]
    return _frame(rows, ["run", "digit", "share"])
