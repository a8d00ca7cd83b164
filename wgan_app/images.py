"""Turning generator output into pictures: uint8 conversion, grids, PNG/GIF bytes."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 1, H, W) in [-1, 1] -> (N, H, W) uint8, rounded (not truncated); (N, 3, H, W), a
    Stacked-MNIST image, -> (N, H, W, 3), channels last as PIL and numpy pictures have them."""
    x = x.detach().float().cpu()
    x = x.squeeze(1) if x.shape[1] == 1 else x.permute(0, 2, 3, 1)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def to_unit(images: np.ndarray) -> torch.Tensor:
    """The inverse of `to_uint8`: (N, H, W) or (N, H, W, 3) uint8 -> (N, C, H, W) float in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(127.5).sub_(1.0)
    return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()


def grid(images: np.ndarray, nrow: int = 10, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """(N, H, W[, 3]) uint8 -> one (rows*(H+p)+p, nrow*(W+p)+p[, 3]) uint8 image, filled row by row."""
    n, h, w = images.shape[:3]
    nrow = max(1, min(nrow, n))
    rows = math.ceil(n / nrow)
    out = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, *images.shape[3:]), pad_value,
                  np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        out[top:top + h, left:left + w] = images[i]
    return out


def upscale(image: np.ndarray, factor: int) -> Image.Image:
    """Nearest-neighbour upscale so 28-pixel digits stay crisp on screen."""
    im = Image.fromarray(image)
    return im if factor <= 1 else im.resize((im.width * factor, im.height * factor), Image.NEAREST)


def png_bytes(image: np.ndarray | Image.Image) -> bytes:
    im = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(frames: list[np.ndarray | Image.Image], duration_ms: int = 80) -> bytes:
    ims = [f if isinstance(f, Image.Image) else Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=duration_ms, loop=0)
    return buf.getvalue()
