"""Static pictures for the Compare tab, drawn with PIL: line charts with a log axis and a legend
that is never cut, and captioned mosaics of sample grids.

Gradio's plots have no log scale, truncate long legend entries and box galleries at a fixed
height; these pictures are drawn at the size they are shown, so nothing is hidden or squashed.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BG, INK, MUTED, GRIDLINE = (255, 255, 255), (30, 30, 30), (110, 110, 110), (232, 232, 232)
PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without sized default fonts
        return ImageFont.load_default()


FONT, SMALL = font(14), font(12)


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        for mults in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):  # a narrow range gets every multiple
            out = [m * 10 ** d for d in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                   for m in mults]
            out = [v for v in out if lo <= v <= hi]
            if len(out) >= 2:
                return out
        return out
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-12)))
    for mult in (1, 2, 5, 10):
        if (hi - lo) / (step * mult) <= 6:
            step *= mult
            break
    start = math.ceil(lo / step) * step
    return [start + k * step for k in range(int((hi - start) / step) + 1)]


def _fmt_tick(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:g}"


def line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float], tuple]], w: int, h: int,
               title: str = "", x_label: str = "", log_y: bool = False, marker_x: Optional[float] = None,
               legend: bool = True) -> Image.Image:
    """A line chart: series of (label, xs, ys, rgb). Non-finite (and, on a log axis, non-positive)
    values are skipped. The legend sits under the plot, wrapping, every label in full."""
    im = Image.new("RGB", (w, h), BG)
    dr = ImageDraw.Draw(im)
    clean = []
    for label, xs, ys, color in series:
        pts = [(float(x), float(y)) for x, y in zip(xs, ys)
               if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) and (y > 0 or not log_y)]
        clean.append((label, pts, color))
    # legend rows first, so the plot takes what is left
    rows, line, x, seen = [], [], 0, set()
    for label, _, color in clean if legend else []:
        if label in seen:  # seeds of one method share a label and colour: one legend entry
            continue
        seen.add(label)
        need = 22 + dr.textlength(label, font=SMALL) + 12
        if line and x + need > w - 10:
            rows.append(line)
            line, x = [], 0
        line.append((label, color))
        x += need
    if line:
        rows.append(line)
    left, top, right = 58, 22 if title else 8, w - 12
    bottom = h - 40 - 16 * len(rows)
    if title:
        dr.text((left, 2), title, fill=INK, font=FONT)
    dr.rectangle([left, top, right, bottom], outline=(190, 190, 190))
    allpts = [p for _, pts, _ in clean for p in pts]
    if not allpts:
        dr.text((left + 8, top + 8), "no data", fill=MUTED, font=SMALL)
        return im
    x0, x1 = min(p[0] for p in allpts), max(p[0] for p in allpts)
    y0, y1 = min(p[1] for p in allpts), max(p[1] for p in allpts)
    if log_y:
        y0, y1 = y0 / 1.15, y1 * 1.15
        f = math.log10
    else:
        pad = (y1 - y0) * 0.05 or 0.5
        y0, y1 = y0 - pad, y1 + pad
        f = float
    x1 = x1 if x1 > x0 else x0 + 1
    fy0, fy1 = f(y0), f(y1)

    def px(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (right - left), bottom - (f(y) - fy0) / (fy1 - fy0) * (bottom - top))

    for v in _ticks(y0, y1, log_y):
        _, yy = px(x0, v)
        dr.line([(left + 1, yy), (right - 1, yy)], fill=GRIDLINE)
        dr.text((left - 4, yy), _fmt_tick(v), fill=MUTED, font=SMALL, anchor="rm")
    xt = _ticks(x0, x1, False)
    for v in xt:
        xx, _ = px(v, y0)
        dr.line([(xx, bottom), (xx, bottom + 3)], fill=MUTED)
        dr.text((xx, bottom + 4), _fmt_tick(v), fill=MUTED, font=SMALL, anchor="ma")
    if x_label:
        dr.text(((left + right) / 2, bottom + 18), x_label, fill=MUTED, font=SMALL, anchor="ma")
    if marker_x is not None and x0 <= marker_x <= x1:
        mx, _ = px(marker_x, y0)
        dr.line([(mx, top), (mx, bottom)], fill=(160, 160, 160), width=1)
    for _, pts, color in clean:
        xy = [px(x, y) for x, y in pts]
        if len(xy) > 1:
            dr.line(xy, fill=color, width=2)
        elif xy:
            dr.ellipse([xy[0][0] - 3, xy[0][1] - 3, xy[0][0] + 3, xy[0][1] + 3], fill=color)
    y = h - 16 * len(rows) - 2
    for row in rows:
        x = 8
        for label, color in row:
            dr.line([(x, y + 7), (x + 16, y + 7)], fill=color, width=3)
            dr.text((x + 20, y), label, fill=INK, font=SMALL)
            x += 22 + dr.textlength(label, font=SMALL) + 12
        y += 16
    return im


def mosaic(tiles: Sequence[tuple[Image.Image, str]], columns: int, tile_px: int, gap: int = 10) -> np.ndarray:
    """Grids side by side, `columns` a row, each resized to tile_px (nearest: pixels stay crisp)
    with its caption, wrapped, underneath. (H, W, 3) uint8."""
    if not tiles:
        return np.full((40, 200, 3), 255, np.uint8)
    cols = max(1, min(columns, len(tiles)))
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    captions = []
    for _, caption in tiles:
        words, lines, line = caption.split(), [], ""
        for word in words:
            if line and scratch.textlength(f"{line} {word}", font=SMALL) > tile_px:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        captions.append([*lines, line])
    cap_h = 15 * max(len(c) for c in captions) + 6
    rows = -(-len(tiles) // cols)
    im = Image.new("RGB", (cols * (tile_px + gap) - gap, rows * (tile_px + cap_h + gap)), BG)
    dr = ImageDraw.Draw(im)
    for i, ((tile, _), lines) in enumerate(zip(tiles, captions)):
        x, y = (i % cols) * (tile_px + gap), (i // cols) * (tile_px + cap_h + gap)
        im.paste(tile.convert("RGB").resize((tile_px, tile_px), Image.NEAREST), (x, y))
        for k, text in enumerate(lines):
            dr.text((x + tile_px / 2, y + tile_px + 3 + 15 * k), text, fill=INK, font=SMALL, anchor="ma")
    return np.asarray(im)


def meaning_figure(history: Sequence[dict], quality: Sequence[dict], w: int = 640, h: int = 250
                   ) -> tuple[np.ndarray, str]:
    """The Train tab's "does the loss follow quality?" view: the critic's Wasserstein estimates
    (the held-out one at each evaluation, and the training-time one smoothed) beside MNIST-FID,
    each on a log axis, against generator steps. Returns the picture (H, W, 3) and a caption
    with Spearman's rho between the held-out estimate and the FID over the evaluations."""
    from .evidence import spearman

    # MNIST is judged by its FID; Stacked MNIST by the KL of its 1,000 modes from uniform (both: lower is better)
    key = "fid" if any("fid" in q for q in quality) else "kl"
    name = {"fid": "MNIST-FID", "kl": "mode KL"}[key]
    evals = [q for q in quality if key in q]
    steps = [q["step"] for q in evals]
    held = [q.get("w_heldout") for q in evals]
    train = _rolling_median([(r["step"], r["wasserstein"]) for r in history if "wasserstein" in r])
    left = line_chart([("training-time estimate (median of 25 logs)", [s for s, _ in train], [v for _, v in train],
                        (255, 160, 60)),
                       ("held-out estimate", steps, held, (30, 90, 200))],
                      w // 2 - 4, h, title="Wasserstein estimate (log)", x_label="generator step", log_y=True)
    num = evals[-1].get("num", 500) if evals else 500
    right = line_chart([(f"{name} of {num} samples", steps, [q[key] for q in evals], (200, 40, 40))],
                       w // 2 - 4, h, title="Sample quality (log, lower is better)", x_label="generator step",
                       log_y=True)
    out = Image.new("RGB", (w, h), BG)
    out.paste(left, (0, 0))
    out.paste(right, (w // 2 + 4, 0))
    rho = spearman(held, [q[key] for q in evals])
    if rho is None:
        caption = (f"The held-out estimate (the critic on unseen digits against fresh samples) and {name} are "
                   "measured at each quality evaluation; after three, their agreement is shown here.")
    else:
        caption = (f"Spearman's ρ between the held-out estimate and {name} over {len(evals)} evaluations: "
                   f"**{rho:+.2f}** (+1: the estimate falls exactly when the samples get better).")
    return np.asarray(out), caption


def _rolling_median(points: list[tuple[float, float]], k: int = 25) -> list[tuple[float, float]]:
    """(x, median of the last k values) for each point: the WGAN paper's median-filtered curve."""
    out = []
    for i, (x, _) in enumerate(points):
        window = sorted(v for _, v in points[max(0, i - k + 1):i + 1])
        out.append((x, window[len(window) // 2]))
    return out
