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
from .validation import MAX_SAMPLE_NUM, MAX_SEED, check_num, check_seed, parse_label

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
        n = check_num(n, hi=MAX_SAMPLE_NUM)
        z = latents(seed, n, self.cfg.z_dim, offset)
        return self.generate(z, self.labels_tensor(labels, n))

    def labels_tensor(self, labels, n: int) -> Optional[torch.Tensor]:
        """(n,) class labels, or None for an unconditional model. A conditional model given no
        label cycles 0..9; an unconditional one refuses any label but None / -1."""
        if labels is None or isinstance(labels, (int, np.integer)):
            label = parse_label(labels, self.conditional, n_classes=self.cfg.n_classes)
            if not self.conditional:
                return None
            labels = [i % self.cfg.n_classes for i in range(n)] if label is None else [label] * n
        else:
            labels = [parse_label(int(lab), True, n_classes=self.cfg.n_classes) for lab in labels]
            if not self.conditional:
                raise UserError("this model is unconditional: it takes no class labels")
            if None in labels:
                raise UserError("a list of labels must hold digits only (no -1)")
            if len(labels) != n:
                raise UserError(f"got {len(labels)} labels for {n} images")
        return torch.tensor(labels, dtype=torch.long)

    def generate(self, z: torch.Tensor, y: Optional[torch.Tensor]) -> np.ndarray:
        with self._lock, torch.inference_mode():
            x = self.G(z.to(self.device), None if y is None else y.to(self.device))
        return to_uint8(x)
