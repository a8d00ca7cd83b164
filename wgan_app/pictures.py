"""Pictures drawn from a Sampler: digits by class and seed, the class grid, the latent walk.
The UI, the API and the CLI draw through these; the Sampler owns the network and its lock."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .errors import UserError
from .images import grid
from .sampler import Sampler, latents
from .validation import MAX_GRID_COLUMNS, MAX_WALK_FRAMES, as_int, in_range


def digits(sampler: Sampler, label: Optional[int], seed: int, num: int) -> np.ndarray:
    """(H, W) uint8: one 28x28 digit for num=1 (no padding), else a grid of 10 per row."""
    images = sampler.sample(label, seed=seed, n=num)
    return images[0] if num == 1 else grid(images, nrow=10)


def class_grid(sampler: Sampler, seed: int, columns: int) -> np.ndarray:
    """A 10 x `columns` grid, one row per class, the same latent down each column.

    Column j uses latent j of `seed`, so row c equals `digits(label=c, seed, num=columns)`:
    what changes down a column is only the class, and the style (slant, stroke) stays.
    """
    if not sampler.conditional:
        raise UserError("this model is unconditional: it has no classes to lay out; pick a conditional "
                        "(acgan) model")
    columns = in_range(as_int(columns, "columns"), "columns", 1, MAX_GRID_COLUMNS)
    n_classes = sampler.cfg.n_classes
    z = latents(seed, columns, sampler.cfg.z_dim).repeat(n_classes, 1)  # (10*columns, z_dim)
    y = torch.arange(n_classes).repeat_interleave(columns)  # row r: class r
    return grid(sampler.generate(z, y), nrow=columns)


def latent_walk(sampler: Sampler, seed_a: int, seed_b: int, label_a: Optional[int], label_b: Optional[int],
                frames: int) -> list[np.ndarray]:
    """28x28 frames walking from (seed_a, label_a) to (seed_b, label_b) and back, for a looping GIF.

    Latents move along the great circle (slerp): Gaussian latents live near a sphere, and a
    straight line between two of them passes through low-norm points the generator never saw.
    The class moves by blending the two class embeddings, which the generator multiplies into z.
    """
    frames = in_range(as_int(frames, "frames"), "frames", 2, MAX_WALK_FRAMES)
    z_dim = sampler.cfg.z_dim
    za, zb = latents(seed_a, 1, z_dim)[0], latents(seed_b, 1, z_dim)[0]
    t = torch.linspace(0, 1, frames)
    z = _slerp(za, zb, t)  # (frames, z_dim)
    G = sampler.G
    if sampler.conditional:
        ya = torch.tensor(label_a if label_a is not None else 0)
        yb = torch.tensor(label_b if label_b is not None else int(ya))
        # Generator.forward takes whole labels only, so the walk builds the code z * embed(y)
        # itself with a blended embedding.
        with torch.inference_mode():
            e = torch.lerp(G.embed(ya), G.embed(yb), t[:, None])  # (frames, z_dim)
        out = list(sampler.synthesize(z * e))
    else:
        out = list(sampler.generate(z, None))
    return out + out[-2:0:-1]  # there and back: the GIF loops without a jump


def _slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:  # nearly parallel: slerp degenerates to lerp
        return torch.lerp(a[None], b[None], t[:, None])
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * a + torch.sin(t * omega)[:, None] * b) / so
