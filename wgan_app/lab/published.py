"""Claim 3 at the papers' horizon: the Lab's three objectives trained on the published mixtures for
25,000 steps (bench/lab_published.py), beside the published rows. The Lab tab shows the table and
the final samples; nothing here trains.

Files (checkpoints/lab/): published.json (settings, per-run modes, high-quality share and
curve) and published.npz (each run's final 2,500 samples, float16, keyed "<dataset>/<method>/<seed>").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw

from ..paths import LAB_RECORDINGS_DIR
from . import toy

JSON_PATH = LAB_RECORDINGS_DIR / "published.json"
POINTS_PATH = LAB_RECORDINGS_DIR / "published.npz"
COMMAND = "OMP_NUM_THREADS=1 python bench/lab_published.py --out checkpoints/lab"
METHODS = {"gan": "GAN (BCE)", "wgan": "WGAN, clipping", "wgan-gp": "WGAN-GP"}

# (label, modes, share of samples within 3 sigma of a mode) after 25,000 iterations. GDPP (Elfeki et
# al., ICML 2019) table 1, whose GAN row is VEEGAN's; PacGAN (Lin et al., NeurIPS 2018) table 1
# re-ran the GAN on the grid (and on the ring: 6.3 modes, no share given).
PUBLISHED: dict[str, list[tuple[str, float, Optional[float]]]] = {
    "ring-published": [("GAN (VEEGAN's run, in GDPP)", 1.0, 0.993), ("GAN (PacGAN's re-run)", 6.3, None),
                       ("WGAN-GP (GDPP)", 6.8, 0.596)],
    "grid-published": [("GAN (VEEGAN's run, in GDPP)", 3.3, 0.005), ("GAN (PacGAN's re-run)", 17.3, 0.948),
                       ("WGAN-GP (GDPP)", 24.2, 0.287)],
}


def load(path: Path = JSON_PATH) -> Optional[dict]:
    """The shipped results, or None when they were not shipped (the Lab then leaves the view out)."""
    return json.loads(path.read_text()) if path.is_file() else None


def intro(results: dict) -> str:
    """What was trained, in a sentence a visitor reads above the table."""
    seeds = sorted({r["seed"] for r in results["runs"]})
    every = results["runs"][0]["curve"][0][0]  # the first report's step: the reports' interval
    minutes = sum(r.get("seconds", 0) for r in results["runs"]) / 60
    return (f"The panels above train for a minute on the Lab's own mixtures (σ 0.05, the grid at spacing 1). "
            f"Here the same three objectives, with the Lab's optimisers and learning rates, trained offline on the "
            f"papers' set-up (the ring σ 0.01 at radius 1, the grid σ 0.05 at spacing 2): "
            f"{results['steps']:,} generator steps, batch {results['batch_size']}, generator and critic "
            f"{results['networks']} units, scored on {results['samples']:,} samples (a mode is covered when at "
            f"least 20 of them lie within 3σ of it; *modes along the run* counts them every {every:,} steps). "
            f"Seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} only: the runs took "
            f"{minutes:.0f} min of one CPU core in all. "
            f"Regenerate with `{COMMAND}`.")


def table_markdown(results: dict) -> str:
    """Ours beside the published rows, one table per mixture (mean over the seeds we ran), with the
    modes covered at each report along the run (every 5,000 steps by default)."""
    out = []
    for name, rows in PUBLISHED.items():
        mine = [r for r in results["runs"] if r["dataset"] == name]
        if not mine:
            continue
        data = toy.PUBLISHED[name]
        out += [f"**{data.title}**, {results['steps']:,} generator steps, {len(data.centres)} modes", "",
                "| method | modes covered | samples within 3σ | modes along the run | source |",
                "|---|---|---|---|---|"]
        out += [f"| {label} | {modes:g} | {'—' if hq is None else f'{hq:.1%}'} | | published |"
                for label, modes, hq in rows]
        for m, title in METHODS.items():
            runs = [r for r in mine if r["method"] == m]
            if runs:
                seeds = ", ".join(str(r["seed"]) for r in runs)
                # modes come and go: the curve of the first seed, so one final count is not read as the story
                along = " → ".join(str(c[1]) for c in runs[0].get("curve", []))
                out.append(f"| **{title}** | **{np.mean([r['modes'] for r in runs]):g}** | "
                           f"{np.mean([r['high_quality'] for r in runs]):.1%} | {along} | ours (seed {seeds}) |")
        out.append("")
    return "\n".join(out)


def figure(results: dict, points_path: Path = POINTS_PATH, tile: int = 230) -> Optional[np.ndarray]:
    """Each run's final samples on its mixture, one row per mixture, one column per method:
    grey circles are 3 sigma around each mode, blue dots the 2,500 samples. (H, W, 3) uint8."""
    if not points_path.is_file():
        return None
    from ..figures import mosaic

    with np.load(points_path) as z:
        points = {k: z[k].astype(np.float32) for k in z.files}
    tiles = []
    seed = min(r["seed"] for r in results["runs"])  # one seed's samples: the first one run
    for name in PUBLISHED:
        data = toy.PUBLISHED[name]
        for m in METHODS:  # one row per mixture, the methods in the panels' order
            r = next((r for r in results["runs"] if (r["dataset"], r["method"], r["seed"]) == (name, m, seed)), None)
            key = f"{name}/{m}/{seed}"
            if r is None or key not in points:
                continue
            tiles.append((_scatter(points[key], data, tile),
                          f"{METHODS[m]}: {r['modes']}/{r['of']} modes, {r['high_quality']:.0%} within 3 sigma"))
    return mosaic(tiles, columns=3, tile_px=tile) if tiles else None


def _scatter(x: np.ndarray, data: toy.ToyData, size: int) -> Image.Image:
    """One tile: the mixture's 3-sigma circles and the samples x (n, 2), on a view 1.5 x the
    mixture's extent so that samples between and around the modes show."""
    half = 1.5 * float(np.abs(data.centres).max()) + 6 * data.sigma
    im = Image.new("RGB", (size, size), (255, 255, 255))
    dr = ImageDraw.Draw(im)
    px = lambda v: (v + half) / (2 * half) * (size - 1)  # data -> pixels, y up
    r3 = max(2.0, 3 * data.sigma / (2 * half) * size)
    for cx, cy in data.centres:
        dr.ellipse([px(cx) - r3, px(-cy) - r3, px(cx) + r3, px(-cy) + r3], outline=(150, 150, 150))
    ok = np.isfinite(x).all(1) & (np.abs(x) < half).all(1)
    for a, b in x[ok]:  # 2x2 px dots: single pixels vanish on a laptop screen
        dr.rectangle([px(a) - 1, px(-b) - 1, px(a), px(-b)], fill=(30, 90, 200))
    dr.rectangle([0, 0, size - 1, size - 1], outline=(200, 200, 200))
    return im
