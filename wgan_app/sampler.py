"""One sampler for the CLI, the UI and the tests: (checkpoint, labels, seed, n) -> uint8 digits.

Deterministic by construction: image i of seed s always gets the same latent z_i, drawn from its
own `torch.Generator` (never the process-global RNG, which concurrent requests would race on),
and the generator runs in eval mode under `torch.inference_mode()`. So the same checkpoint,
label and seed give the same image whatever the batch size and whatever else runs.
"""

from __future__ import annotations

import os
import threading
from typing import Optional, Sequence

import numpy as np
import torch

from .checkpoint import Checkpoint, load_checkpoint
from .errors import UserError
from .images import to_uint8

MAX_SEED = 2**63 - 1


def latents(seed: int, n: int, z_dim: int, offset: int = 0) -> torch.Tensor:
    """(n, z_dim) latents; row i depends only on (seed, offset + i), not on n."""
    check_seed(seed)
    out = torch.empty(n, z_dim)
    g = torch.Generator()
    for i in range(n):
        # An independent stream per image: Philox-like mixing of (seed, index) into one 63-bit seed.
        g.manual_seed(_mix(seed, offset + i))
        out[i] = torch.randn(z_dim, generator=g)
    return out


def _mix(seed: int, index: int) -> int:
    x = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 31
    x = (x * 0xD6E8FEB86659FD93) & (2**64 - 1)
    x ^= x >> 32
    return x & MAX_SEED


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise UserError(f"seed must be a whole number, got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise UserError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    return int(seed)


def check_label(label, conditional: bool, n_classes: int = 10) -> Optional[int]:
    if label is None or label == -1:
        return None
    if not conditional:
        raise UserError("this model is unconditional: it takes no class label (leave the label empty)")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) < n_classes:
        raise UserError(f"label must be a digit 0-{n_classes - 1}, got {label!r}")
    return int(label)


class Sampler:
    """Wraps one generator in eval mode. Thread-safe: it holds no RNG state of its own."""

    def __init__(self, ckpt: Checkpoint, device: str | torch.device = "cpu"):
        self.ckpt = ckpt
        self.cfg = ckpt.model
        self.device = torch.device(device)
        self.G = ckpt.build_generator(self.device)
        self._lock = threading.Lock()  # CPU kernels already use every core; don't oversubscribe

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "Sampler":
        return cls(load_checkpoint(path), device)

    @property
    def conditional(self) -> bool:
        return self.cfg.conditional

    def sample(self, labels: Optional[Sequence[int] | int], seed: int, n: int, offset: int = 0) -> np.ndarray:
        """(n, 28, 28) uint8. `labels`: one int for all, a sequence of n, or None (unconditional)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 10000:
            raise UserError(f"number of images must be between 1 and 10000, got {n!r}")
        z = latents(seed, n, self.cfg.z_dim, offset)
        return self.generate(z, self.labels_tensor(labels, n))

    def labels_tensor(self, labels, n: int) -> Optional[torch.Tensor]:
        if not self.conditional:
            if labels is None or (isinstance(labels, (int, np.integer)) and labels == -1):
                return None
            check_label(labels if isinstance(labels, (int, np.integer)) else labels[0], False)
        if labels is None:
            labels = [i % self.cfg.n_classes for i in range(n)]  # conditional, no label: cycle 0..9
        elif isinstance(labels, (int, np.integer)):
            labels = [check_label(labels, True, self.cfg.n_classes)] * n
        else:
            labels = [check_label(int(lab), True, self.cfg.n_classes) for lab in labels]
            if len(labels) != n:
                raise UserError(f"got {len(labels)} labels for {n} images")
        return torch.tensor(labels, dtype=torch.long)

    def generate(self, z: torch.Tensor, y: Optional[torch.Tensor]) -> np.ndarray:
        with self._lock, torch.inference_mode():
            x = self.G(z.to(self.device), None if y is None else y.to(self.device))
        return to_uint8(x)
