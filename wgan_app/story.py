"""Compare's first view: for each generator architecture, the GAN, the clipped WGAN and WGAN-GP
side by side at the same minute of training, their MNIST-FID curves on a log axis, and one
sentence per architecture saying what the measurements show.

Everything comes from the shipped "architectures" evidence (evidence.py); the sentences are
computed from it, never written by hand, so they say whatever the runs show (a GAN that does not
fail is reported as such). One picture, drawn with PIL, so the whole story fits one screen without
a plotting library's legends and boxes.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw

from .config import G_ARCHS
from .evidence import RunEvidence
from .figures import BG, FONT, INK, MUTED, SMALL, line_chart

METHODS = ("gan", "wgan", "wgan-gp")  # the three objectives the WGAN papers compare
METHOD_NAMES = {"gan": "GAN (BCE)", "wgan": "WGAN (clipping)", "wgan-gp": "WGAN-GP"}
COLORS = {"gan": (200, 40, 40), "wgan": (220, 120, 0), "wgan-gp": (30, 90, 200)}
ARCH_NAMES = {"dcgan": "DCGAN with batch norm", "dcgan-nobn": "DCGAN, no batch norm, constant filters",
              "mlp": "MLP generator (4 x 512 ReLU)"}
GRID_PX, CHART_W, ROW_H, HEAD_H, GAP = 150, 280, 196, 20, 8


def by_arch(runs: list[RunEvidence]) -> dict[str, dict[str, list[RunEvidence]]]:
    """{arch: {variant: runs over seeds}} for the story's methods, architectures in G_ARCHS order."""
    out: dict[str, dict[str, list[RunEvidence]]] = {}
    for arch in G_ARCHS:
        group = {v: sorted((r for r in runs if r.arch == arch and r.variant == v), key=lambda r: r.seed)
                 for v in METHODS}
        group = {v: rs for v, rs in group.items() if rs}
        if group:
            out[arch] = group
    return out


def final_fid(r: RunEvidence) -> Optional[float]:
    """The run's last checkpoint judged on 10,000 samples (final.json), else its last evaluation."""
    if isinstance(r.final.get("fid"), (int, float)):
        return float(r.final["fid"])
    ev = r.evals()
    return float(ev[-1]["fid"]) if ev else None


def rarest_share(r: RunEvidence) -> Optional[float]:
    """The least drawn digit's share of its expected tenth in the final samples (1 = uniform, 0 = a
    dropped digit), as the project's classifier reads them: the collapse the MNIST claims are about."""
    counts = r.final.get("classes")
    if not counts or not sum(counts):
        return None
    return min(counts) / (sum(counts) / len(counts))


def _stats(vals: list[float]) -> Optional[tuple[float, float, float]]:
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    return (sum(vals) / len(vals), min(vals), max(vals)) if vals else None


def _fmt(s: Optional[tuple[float, float, float]], n: int) -> str:
    if s is None:
        return "—"
    return f"{s[0]:,.0f}" if n == 1 else f"{s[0]:,.0f} [{s[1]:,.0f}–{s[2]:,.0f}]"


def preamble(runs: list[RunEvidence]) -> str:
    """What the numbers in the sentences are: one line above them."""
    groups = by_arch(runs)
    every = [r for g in groups.values() for rs in g.values() for r in rs]
    if not every:
        return ""
    n = max(len(rs) for g in groups.values() for rs in g.values())
    minutes = max(r.final.get("minutes") or max((e["minutes"] for e in r.evals()), default=0) for r in every)
    judged = ("the final checkpoints on 10,000 samples" if all(r.final for r in every)
              else "the last evaluations on 1,000 samples")
    seeds = f"mean [min–max] over {n} seeds" if n > 1 else "one seed"
    return f"MNIST-FID after {minutes:.0f} minutes of training, {judged}, {seeds}; lower is better."


def sentence(arch: str, group: dict[str, list[RunEvidence]]) -> str:
    """One plain sentence (two at most) about one architecture, from the runs' final checkpoints
    (what the numbers are: `preamble`)."""
    fids = {v: _stats([final_fid(r) for r in rs]) for v, rs in group.items()}
    fids = {v: s for v, s in fids.items() if s is not None}
    if not fids:
        return f"**{ARCH_NAMES.get(arch, arch)}**: no finished runs yet."
    n = max(len(rs) for rs in group.values())
    ranked = sorted(fids, key=lambda v: fids[v][0])
    parts = ", ".join(f"{METHOD_NAMES[v]} {_fmt(fids[v], len(group[v]))}" for v in ranked)
    head = f"**{ARCH_NAMES.get(arch, arch)}**: {parts}."
    if "gan" not in fids or len(fids) < 2:
        return head
    others = [v for v in fids if v != "gan"]
    gan_worst, gan_best = fids["gan"][2], fids["gan"][1]
    beaten_by = [v for v in others if fids[v][2] < gan_best]  # every seed of v ahead of every GAN seed
    beats = [v for v in others if gan_worst < fids[v][1]]
    every = " on every seed" if n > 1 else ""
    if beaten_by and len(beaten_by) == len(others):
        verdict = f"The GAN falls behind both Wasserstein methods{every}."
    elif beaten_by:
        verdict = (f"The GAN falls behind {' and '.join(METHOD_NAMES[v] for v in beaten_by)}{every}"
                   f"{', but not behind ' + ' and '.join(METHOD_NAMES[v] for v in others if v not in beaten_by)}.")
    elif beats and len(beats) == len(others):
        verdict = f"The GAN does not fail here: it is ahead of both Wasserstein methods{every}."
    else:
        verdict = "The seeds overlap: no method is ahead of the GAN on every seed."
    best = fids[ranked[0]][0]
    far = [METHOD_NAMES[v] for v in ranked[1:] if fids[v][0] > 3 * best]
    if far:
        verdict += f" {' and '.join(far)} {'is' if len(far) == 1 else 'are'} over three times the best FID here."
    rare = {v: _stats([rarest_share(r) for r in group[v]]) for v in ranked}
    shares = ", ".join(f"{METHOD_NAMES[v]} {rare[v][1]:.2f}" for v in ranked if rare[v] is not None)
    if shares:
        verdict += f" Rarest digit (share of a fair tenth, worst seed): {shares}."
    return f"{head} {verdict}"


def _fid_at(r: RunEvidence, minute: float) -> Optional[float]:
    """The last evaluation at or before `minute` of training (the grid's moment)."""
    ev = [e for e in r.evals() if e["minutes"] <= minute + 1e-6]
    return ev[-1]["fid"] if ev else None


def figure(runs: list[RunEvidence], minute: float, seed: int = 0) -> np.ndarray:
    """The story as one RGB image (H, W, 3): a row per architecture, titled; in each, the three
    methods' fixed-noise grids after `minute` minutes of training (seed `seed`), each captioned
    with its MNIST-FID then, and the FID curves of every seed on a log axis."""
    groups = by_arch(runs)
    chart_x = len(METHODS) * (GRID_PX + GAP)
    width, height = chart_x + CHART_W, HEAD_H + max(1, len(groups)) * ROW_H
    im = Image.new("RGB", (width, height), BG)
    dr = ImageDraw.Draw(im)
    for j, v in enumerate(METHODS):
        dr.text((j * (GRID_PX + GAP) + GRID_PX / 2, 2), METHOD_NAMES[v], fill=COLORS[v], font=FONT, anchor="ma")
    for i, (arch, group) in enumerate(groups.items()):
        y = HEAD_H + i * ROW_H
        dr.text((0, y), ARCH_NAMES.get(arch, arch), fill=INK, font=FONT)
        for j, v in enumerate(METHODS):
            x = j * (GRID_PX + GAP)
            pick = [r for r in group.get(v, []) if r.seed == seed] or group.get(v, [])[:1]
            if not pick:
                dr.text((x + 8, y + 100), "not trained", fill=MUTED, font=FONT)
                continue
            path, shown = pick[0].grid_at(minute)
            if path is not None:
                im.paste(Image.open(path).convert("RGB").resize((GRID_PX, GRID_PX), Image.NEAREST), (x, y + 20))
            fid = _fid_at(pick[0], minute)
            cap = (f"seed {pick[0].seed} · {shown:g} min · FID {fid:,.0f}" if fid is not None
                   and shown is not None else "no grid")
            dr.text((x + GRID_PX / 2, y + 22 + GRID_PX), cap, fill=INK, font=SMALL, anchor="ma")
        series = [(f"{v} s{r.seed}", [e["minutes"] for e in r.evals()], [e["fid"] for e in r.evals()], COLORS[v])
                  for v, rs in group.items() for r in rs]
        chart = line_chart(series, CHART_W, GRID_PX + 22, title="MNIST-FID (1k samples, log)",
                           x_label="minutes of training", log_y=True, marker_x=minute, legend=False)
        im.paste(chart, (chart_x, y + 18))
    return np.asarray(im)
