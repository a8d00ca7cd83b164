"""The Lab's pictures, drawn with numpy and PIL (no plotting library per frame: a panel costs a
few milliseconds, so three of them redraw several times a second).

A panel is one RGB image (PANEL_W wide): the field view (critic heatmap with iso-lines, real and
generated points, generator-gradient arrows), then curves (critic loss, W estimate, exact W1),
then histograms (critic weights; per-layer gradient norms; the penalty's gradient norms).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .toy import EXTENT

PANEL_W = 320  # px; the field view is square
CURVES_H, HIST_H = 140, 110
FONT_PX = 13  # at 11 px the charts' text read as about 8 px on screen
LINE = FONT_PX + 3  # one line of text
HEAD_H = 2 * LINE + 2  # the title and status lines above the field view
BG = (255, 255, 255)
REAL = (20, 110, 60)
FAKE = (200, 40, 140)
ARROW = (30, 30, 30)
COLORS = {"critic loss": (90, 90, 90), "W estimate": (220, 120, 0), "W estimate (right axis, K x W1)": (220, 120, 0),
          "exact W1": (30, 90, 200),
          "W1 floor": (150, 170, 210), "W1": (30, 90, 200), "JS": (200, 40, 40), "TV": (130, 60, 170),
          "GAN, minimax loss": (200, 40, 40), "GAN, non-saturating loss": (220, 120, 0),
          "WGAN-GP critic": (30, 90, 200)}


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=FONT_PX)
    except TypeError:  # Pillow without sized default fonts
        return ImageFont.load_default()


FONT = _font()
_STAMPS: dict[str, tuple[Image.Image, int, int]] = {}  # text -> (its "L" coverage mask, left, top)


def text(im: Image.Image, xy: tuple[float, float], s: str, fill) -> None:
    """Write `s` at xy (top-left, as ImageDraw.text) in colour `fill`, from a cached stamp.

    FreeType rasterises each string on every ImageDraw.text call (~0.2 ms): 50 labels made a
    third of the panels' drawing time, and most (titles, legends, axis names) never change. Here
    each distinct string is rasterised once, as a coverage mask, and pasted with that mask, which
    blends the colour over the background as ImageDraw does."""
    hit = _STAMPS.get(s)
    if hit is None:
        left, top, right, bottom = FONT.getbbox(s)
        mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
        ImageDraw.Draw(mask).text((-left, -top), s, fill=255, font=FONT)
        if len(_STAMPS) > 4096:  # numbers on the axes change: keep the cache bounded
            _STAMPS.clear()
        hit = _STAMPS[s] = (mask, left, top)
    mask, left, top = hit
    im.paste(fill, (int(round(xy[0])) + left, int(round(xy[1])) + top), mask)


_LENGTHS: dict[str, float] = {}


def text_length(s: str) -> float:
    if s not in _LENGTHS:
        _LENGTHS[s] = FONT.getlength(s)
    return _LENGTHS[s]


def _colormap(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 diverging map: blue (critic low, "fake") - near-white - orange (high, "real")."""
    anchors = np.array([[40, 80, 170], [150, 180, 225], [246, 246, 246], [245, 190, 130], [200, 90, 20]], float)
    pos = np.linspace(0, 1, len(anchors))
    t = np.linspace(0, 1, n)
    return np.stack([np.interp(t, pos, anchors[:, c]) for c in range(3)], 1).astype(np.uint8)


CMAP = _colormap()


def to_pixels(x: np.ndarray, size: int = PANEL_W, extent: float = EXTENT) -> np.ndarray:
    """(n, 2) data coordinates -> (n, 2) int pixel (col, row); y up on screen."""
    col = (x[:, 0] + extent) / (2 * extent) * (size - 1)
    row = (extent - x[:, 1]) / (2 * extent) * (size - 1)
    return np.stack([col, row], 1).round().astype(np.int64)


def heatmap(field: np.ndarray, size: int = PANEL_W, levels: int = 8) -> np.ndarray:
    """Critic values (g, g) -> (size, size, 3) uint8: colour-mapped, bilinearly upscaled, with
    iso-lines where the value crosses one of `levels` evenly spaced levels."""
    f = np.nan_to_num(field.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(f.min()), float(f.max())
    norm = (f - lo) / (hi - lo) if hi - lo > 1e-12 else np.full_like(f, 0.5)
    big = np.asarray(Image.fromarray(norm, mode="F").resize((size, size), Image.BILINEAR))  # (size, size)
    rgb = CMAP[np.clip((big * 255).astype(np.int64), 0, 255)]
    band = np.floor(big * levels)  # iso-lines: pixels whose level differs from the next pixel's
    edge = np.zeros_like(band, bool)
    edge[:, 1:] |= band[:, 1:] != band[:, :-1]
    edge[1:, :] |= band[1:, :] != band[:-1, :]
    rgb[edge] = (rgb[edge] * 0.55).astype(np.uint8)
    return rgb


def draw_points(rgb: np.ndarray, x: np.ndarray, color, radius: int = 1) -> None:
    """Square dots of side 2*radius+1 at points x (n, 2), in place; points off the view are skipped."""
    size = rgb.shape[0]
    finite = np.isfinite(x).all(1)
    px = to_pixels(np.where(finite[:, None], x, 0.0), size)[finite]
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            c, r = px[:, 0] + dc, px[:, 1] + dr
            ok = (c >= 0) & (c < size) & (r >= 0) & (r < size)
            rgb[r[ok], c[ok]] = color


def draw_arrows(draw: ImageDraw.ImageDraw, x: np.ndarray, d: np.ndarray, size: int = PANEL_W,
                max_len: float = 28.0) -> None:
    """Arrows from points x (n, 2) along directions d (n, 2), scaled so the longest is max_len px:
    their relative lengths show where the generator is pushed hardest."""
    if not len(x) or not np.isfinite(d).all():
        return
    norms = np.linalg.norm(d, axis=1)
    scale = max_len / max(float(norms.max()), 1e-12)
    start = to_pixels(x, size).astype(float)
    vec = d * scale * np.array([1.0, -1.0])  # screen y points down
    for (c0, r0), (dc, dr) in zip(start, vec):
        c1, r1 = c0 + dc, r0 + dr
        draw.line([(c0, r0), (c1, r1)], fill=ARROW, width=1)
        n = math.hypot(dc, dr)
        if n > 4:  # a small head
            ux, uy = dc / n, dr / n
            for sx in (-1, 1):
                hx, hy = c1 - 4 * ux + sx * 2.5 * uy, r1 - 4 * uy - sx * 2.5 * ux
                draw.line([(c1, r1), (hx, hy)], fill=ARROW, width=1)


def _robust_range(values: list[np.ndarray]) -> tuple[float, float]:
    """The y range of a chart: min to max, unless a few early points (WGAN-GP's first-steps
    spike of the penalty) would flatten the rest; then the 1st to 99th percentile, and the points
    outside are drawn at the frame's edge."""
    v = np.concatenate([a for a in values if len(a)]) if any(len(a) for a in values) else np.zeros(1)
    lo, hi = float(v.min()), float(v.max())
    if len(v) >= 50:
        plo, phi = (float(q) for q in np.percentile(v, [1, 99]))
        if phi - plo < 0.5 * (hi - lo):
            lo, hi = plo - 0.05 * (phi - plo), phi + 0.05 * (phi - plo)
    return (lo - 0.5, hi + 0.5) if hi - lo < 1e-9 else (lo, hi)


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], w: int = PANEL_W,
               h: int = CURVES_H, title: str = "", own_axis: Sequence[str] = (), note: str = "") -> np.ndarray:
    """Small line chart: {label: (xs, ys)} -> (h, w, 3) uint8, shared autoscaled axes, a legend.
    Series named in `own_axis` are scaled to their own range, labelled on the right in their colour
    (a clipped critic's estimate is a hundredth of W1: on the shared axis it is a flat line).
    `note` goes under the frame, between the first and last step's labels.
    Non-finite values are skipped; series named in COLORS keep their colours."""
    im = Image.new("RGB", (w, h), BG)
    dr = ImageDraw.Draw(im)
    own = [k for k in own_axis if k in series]
    left, top, right, bottom = 46, LINE, w - (56 if own else 4), h - LINE
    arrays = {k: (np.asarray(xs, np.float64), np.asarray(ys, np.float64)) for k, (xs, ys) in series.items()}
    arrays = {k: (xs[np.isfinite(ys)], ys[np.isfinite(ys)]) for k, (xs, ys) in arrays.items()}
    xs_all = [xs for xs, _ in arrays.values() if len(xs)]
    dr.rectangle([left, top, right, bottom], outline=(200, 200, 200))
    if title:
        text(im, (left, 1), title, (60, 60, 60))
    if not xs_all:
        text(im, (left + 6, top + 6), "no data yet", (140, 140, 140))
        return np.asarray(im)
    x0, x1 = min(float(xs.min()) for xs in xs_all), max(float(xs.max()) for xs in xs_all)
    y0, y1 = _robust_range([ys for k, (_, ys) in arrays.items() if k not in own])
    x1 = x1 if x1 > x0 else x0 + 1
    py0 = bottom - (0 - y0) / (y1 - y0) * (bottom - top)
    if y0 < 0 < y1:
        dr.line([(left, py0), (right, py0)], fill=(225, 225, 225))
    for label, (xs, ys) in arrays.items():
        color = COLORS.get(label, (0, 0, 0))
        lo, hi = _robust_range([ys]) if label in own else (y0, y1)
        cols = left + (xs - x0) / (x1 - x0) * (right - left)
        rows = np.clip(bottom - (ys - lo) / (hi - lo) * (bottom - top), top, bottom)
        if len(cols) > 1:
            cols, rows = _decimated(cols, rows)
            dr.line(np.stack([cols, rows], 1).ravel().tolist(), fill=color, width=2 if label == "exact W1" else 1)
        elif len(cols):
            dr.ellipse([cols[0] - 2, rows[0] - 2, cols[0] + 2, rows[0] + 2], fill=color)
        if label in own and len(ys):  # its own scale, on the right, in its colour
            text(im, (right + 3, top - 2), f"{hi:.2g}", color)
            text(im, (right + 3, bottom - LINE + 3), f"{lo:.2g}", color)
    text(im, (2, top - 2), _axis_label(y1, left - 4), (90, 90, 90))
    text(im, (2, bottom - LINE + 3), _axis_label(y0, left - 4), (90, 90, 90))
    text(im, (left, bottom + 1), f"{x0:.0f}", (90, 90, 90))
    text(im, (right - text_length(f"{x1:.0f}"), bottom + 1), f"{x1:.0f}", (90, 90, 90))
    if note:  # centred in the gap between the step labels (a right-hand axis narrows the frame)
        a, b = left + text_length(f"{x0:.0f}") + 6, right - text_length(f"{x1:.0f}") - 6
        text(im, (max(a, (a + b - text_length(note)) / 2), bottom + 1), note, (40, 40, 40))
    lx, ly = left + 4, top + 1
    for label in series:  # legend along the top edge, inside the frame, wrapping when full
        color = COLORS.get(label, (0, 0, 0))
        need = 16 + int(text_length(label))
        if lx + need > right and lx > left + 4:
            lx, ly = left + 4, ly + LINE - 2
        dr.line([(lx, ly + LINE // 2), (lx + 10, ly + LINE // 2)], fill=color, width=2)
        text(im, (lx + 13, ly), label, color)
        lx += need
    return np.asarray(im)


def _axis_label(v: float, room: float) -> str:
    """`v` in 3 significant digits, or shorter ("-4.2e-4" for -0.000419) when that would run past
    `room` pixels into the frame (a clipped critic's losses are ~1e-4)."""
    label = f"{v:.3g}"
    if text_length(label) <= room:
        return label
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _decimated(cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A polyline of n points over ~300 px columns as at most 4 points per column (first, min,
    max, last of the points in it): the same picture (spikes kept) for 4,000-step curves, whose
    per-point drawing had made a panel twice as slow as a fresh run's."""
    col = np.floor(cols).astype(np.int64)
    if len(cols) <= 2 * (col[-1] - col[0] + 1):
        return cols, rows
    start = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])  # first point of each column (xs rise)
    end = np.r_[start[1:], len(col)] - 1
    lo = np.minimum.reduceat(rows, start)
    hi = np.maximum.reduceat(rows, start)
    # per column: enter at the first point, go to the extreme nearer to it, then the other, leave at the last
    first_r, last_r = rows[start], rows[end]
    a = np.where(np.abs(lo - first_r) < np.abs(hi - first_r), lo, hi)
    b = np.where(a == lo, hi, lo)
    c = np.floor(cols[start]) + 0.5
    out_r = np.stack([first_r, a, b, last_r], 1).ravel()
    out_c = np.repeat(c, 4)
    out_c[0::4], out_c[3::4] = cols[start], cols[end]
    return out_c, out_r


def histogram(values: np.ndarray, w: int, h: int, title: str, bins: int = 30,
              lo: Optional[float] = None, hi: Optional[float] = None, marks: Sequence[float] = ()) -> np.ndarray:
    """Bar histogram of values -> (h, w, 3) uint8 with vertical marks (e.g. +-c, or 1)."""
    im = Image.new("RGB", (w, h), BG)
    dr = ImageDraw.Draw(im)
    text(im, (2, 0), title, (60, 60, 60))
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    top, bottom = LINE, h - LINE
    if not len(v):
        return np.asarray(im)
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(np.clip(v, lo, hi), bins=bins, range=(lo, hi))
    bw = (w - 8) / bins
    peak = max(int(counts.max()), 1)
    for i, c in enumerate(counts):
        x0 = 4 + i * bw
        dr.rectangle([x0, bottom - (bottom - top) * c / peak, x0 + bw - 1, bottom], fill=(120, 120, 160))
    for m in marks:
        if lo <= m <= hi:
            x = 4 + (m - lo) / (hi - lo) * (w - 8)
            dr.line([(x, top), (x, bottom)], fill=(220, 40, 40))
    text(im, (2, bottom + 1), f"{lo:.2g}", (90, 90, 90))
    text(im, (w - 2 - text_length(f"{hi:.2g}"), bottom + 1), f"{hi:.2g}", (90, 90, 90))
    return np.asarray(im)


def bars(values: Sequence[float], w: int, h: int, title: str) -> np.ndarray:
    """One bar per value (e.g. per-layer gradient norms), log-scaled heights, labels 1..n."""
    im = Image.new("RGB", (w, h), BG)
    dr = ImageDraw.Draw(im)
    text(im, (2, 0), title, (60, 60, 60))
    top, bottom = LINE, h - LINE
    v = np.log10(np.maximum(np.asarray(values, np.float64), 1e-8))
    if not len(v):
        return np.asarray(im)
    lo, hi = min(v.min(), -4.0), max(v.max(), 0.0)
    bw = (w - 8) / len(v)
    for i, (lv, raw) in enumerate(zip(v, values)):
        y = bottom - (bottom - top) * (lv - lo) / (hi - lo)
        dr.rectangle([4 + i * bw + 2, y, 4 + (i + 1) * bw - 2, bottom], fill=(90, 150, 120))
        label = f"{raw:.0e}"
        if bw >= 40 or i in (0, len(v) - 1):  # a label is ~36 px: with 4+ bars in a third, first and last only
            text(im, (4 + i * bw + 3 if i < len(v) - 1 or bw >= 40 else w - 4 - text_length(label), bottom + 1),
                 label, (90, 90, 90))
    return np.asarray(im)


@dataclass
class PanelData:
    """Everything one panel shows; the session (live) or a recording (replay) fills it."""

    title: str
    real: np.ndarray  # (n, 2)
    fake: np.ndarray  # (n, 2)
    field: np.ndarray  # (g, g) critic values, row 0 at the top
    arrows_from: np.ndarray  # (k, 2)
    arrows_dir: np.ndarray  # (k, 2)
    steps: Sequence[float]
    loss_d: Sequence[float]
    w_estimate: Sequence[float]  # NaN for the BCE GAN (no W estimate)
    w1_steps: Sequence[float]
    w1: Sequence[float]
    w1_floor: float
    status: str  # one line under the title: step, modes, quality
    weights: np.ndarray  # critic weights, flat
    grad_norms: Sequence[float]  # per critic layer
    gp_norms: Optional[np.ndarray]  # ||grad D(x_hat)|| (B,), or None
    clip_value: Optional[float]  # marks on the weight histogram
    note: str = ""  # under the curves, between the step labels: e.g. "rho(W estimate, W1) +0.85"


def panel(p: PanelData) -> np.ndarray:
    """One run's panel: (HEAD_H + PANEL_W + CURVES_H + HIST_H, PANEL_W, 3) uint8."""
    rgb = heatmap(p.field)
    draw_points(rgb, p.real, REAL)
    draw_points(rgb, p.fake, FAKE)
    field_im = Image.fromarray(rgb)
    draw_arrows(ImageDraw.Draw(field_im), p.arrows_from, p.arrows_dir)

    head = Image.new("RGB", (PANEL_W, HEAD_H), BG)
    text(head, (4, 1), p.title, (0, 0, 0))
    text(head, (4, LINE + 1), p.status, (60, 60, 60))

    curves = {"critic loss": (p.steps, p.loss_d), "W estimate": (p.steps, p.w_estimate),
              "exact W1": (p.w1_steps, p.w1)}
    if len(p.w1_steps):
        curves["W1 floor"] = ([p.w1_steps[0], p.w1_steps[-1]], [p.w1_floor, p.w1_floor])
    own = ()
    if not any(math.isfinite(v) for v in p.w_estimate):
        del curves["W estimate"]
    elif p.clip_value is not None:
        # A clipped critic is K-Lipschitz for some unknown K (about 1/100 here): its estimate is
        # K * W1, so it gets an axis of its own, where its shape shows, and says so.
        curves["W estimate (right axis, K x W1)"] = curves.pop("W estimate")
        own = ("W estimate (right axis, K x W1)",)
    chart = line_chart(curves, title="", own_axis=own, note=p.note)

    third = PANEL_W // 3
    c = p.clip_value
    hist_w = histogram(p.weights, third, HIST_H, "critic weights",
                       lo=-1.1 * c if c else None, hi=1.1 * c if c else None,
                       marks=(-c, c) if c else ())
    hist_g = bars(p.grad_norms, third, HIST_H, "grad norm / layer")
    if p.gp_norms is not None:
        hist_p = histogram(p.gp_norms, PANEL_W - 2 * third, HIST_H, "|grad D(x_hat)|", lo=0.0,
                           hi=max(2.0, float(np.nanmax(p.gp_norms)) if len(p.gp_norms) else 2.0), marks=(1.0,))
    else:
        hist_p = np.full((HIST_H, PANEL_W - 2 * third, 3), 255, np.uint8)
    hists = np.concatenate([hist_w, hist_g, hist_p], 1)
    return np.concatenate([np.asarray(head), np.asarray(field_im), chart, hists], 0)


# zlib level 1 instead of PIL's default 6: 3 panels encode in ~15 ms instead of ~35 ms (a fifth of a
# refresh) for ~60 kB a panel instead of ~43 kB. Lossless still; a palette (FASTOCTREE, 6 ms,
# 19 kB) banded the heatmap into terraces, and JPEG (q90 4:4:4, 3 ms, 57 kB) rings around text.
PNG_LEVEL = 1


def png_bytes(rgb: np.ndarray, compress_level: int = PNG_LEVEL) -> bytes:
    """(h, w, 3) uint8 -> PNG bytes, fast zlib (what the Lab sends to the browser 15 times a second)."""
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="png", compress_level=compress_level)
    return out.getvalue()


def side_by_side(panels: Sequence[np.ndarray], gap: int = 8) -> np.ndarray:
    """Panels (h, w, 3) next to each other on white: one picture for the PNG/GIF download."""
    h = max(p.shape[0] for p in panels)
    cols = []
    for i, p in enumerate(panels):
        pad = np.full((h, p.shape[1], 3), 255, np.uint8)
        pad[:p.shape[0]] = p
        cols.append(pad)
        if i < len(panels) - 1:
            cols.append(np.full((h, gap, 3), 255, np.uint8))
    return np.concatenate(cols, 1)


def lines_chart(curves: dict[str, np.ndarray], trajectories: dict, w: int = 960, h: int = 170) -> np.ndarray:
    """The parallel-lines panel, three charts: the distances against theta; theta per generator
    step for each objective; the gradient dL_G/dtheta each step applied (clipped to +-5 to stay
    legible: the non-saturating GAN's spikes go further)."""
    theta = curves["theta"]
    third = w // 3
    dist = {k: (theta, curves[k]) for k in ("W1", "JS", "TV")}  # KL is inf off 0: not drawable
    a = line_chart(dist, third, h, title="distance between the lines vs theta (KL = inf if theta != 0)")
    b = line_chart({n: (np.arange(len(t.theta)), t.theta) for n, t in trajectories.items()}, third, h,
                   title="theta after each generator step")
    c = line_chart({n: (np.arange(1, len(t.grad) + 1), np.clip(t.grad, -5, 5)) for n, t in trajectories.items()},
                   w - 2 * third, h, title="gradient dL_G/dtheta per step")
    return np.concatenate([a, b, c], 1)
