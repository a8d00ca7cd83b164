"""One sampler for the CLI, the UI and the tests: (checkpoint, labels, seed, n) -> uint8 digits
(grey, or three channels for Stacked MNIST).

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
        self._lock = threading.Lock()  # one forward pass at a time: CPU kernels already use every core
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []  # requests waiting for the next pass

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "Sampler":
        return cls(load_checkpoint(path), device)

    @property
    def conditional(self) -> bool:
        return self.cfg.conditional

    def sample(self, labels: Optional[Sequence[int] | int], seed: int, n: int, offset: int = 0) -> np.ndarray:
        """(n, 28, 28) uint8 ((n, 28, 28, 3) for Stacked MNIST). `labels`: one int for all, a sequence
        of n, or None (unconditional)."""
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
        """(n, 28, 28[, 3]) uint8 for latents z (n, z_dim) and labels y (n,) or None.

        Calls from concurrent threads are batched: one forward pass runs at a time, and the
        calls that arrived while it ran go through the network together in the next one. Sixteen
        clients asking for one digit each cost about one pass of 16 rather than 16 passes of one,
        with no waiting added when the server is quiet. The generator is in eval mode, so a
        sample does not depend on what it is batched with."""
        mine = _Pending(z, y)
        with self._queue_lock:
            self._queue.append(mine)
        with self._lock:
            while not mine.done.is_set():  # nobody took it into their pass: lead until it is done
                with self._queue_lock:
                    batch, self._queue = _take(self._queue, MAX_BATCH_IMAGES)
                self._forward(batch)
        if mine.error is not None:
            raise mine.error
        return mine.result

    def synthesize(self, codes: torch.Tensor) -> np.ndarray:
        """(n, 28, 28) uint8 from generator codes (n, z_dim), e.g. z times a blend of two class
        embeddings (pictures.latent_walk). One pass, under the same lock as `generate`."""
        with self._lock, torch.inference_mode():
            return to_uint8(self.G.synthesize(codes.to(self.device)))

    def _forward(self, batch: list["_Pending"]) -> None:
        try:
            z = torch.cat([p.z for p in batch])  # (sum n_i, z_dim)
            y = None if batch[0].y is None else torch.cat([p.y for p in batch])
            with torch.inference_mode():
                x = self.G(z.to(self.device), None if y is None else y.to(self.device))
            images = to_uint8(x)
            for p, chunk in zip(batch, np.split(images, np.cumsum([len(p.z) for p in batch])[:-1])):
                p.result = chunk
        except Exception as e:  # every caller in the pass gets the error (out of memory, a bad label)
            for p in batch:
                p.error = e
        finally:
            for p in batch:
                p.done.set()


MAX_BATCH_IMAGES = 2048  # images per batched forward pass (each request holds at most MAX_SAMPLE_NUM)


class _Pending:
    """One caller's request in `Sampler.generate`'s queue."""

    def __init__(self, z: torch.Tensor, y: Optional[torch.Tensor]):
        self.z, self.y = z, y
        self.result: Optional[np.ndarray] = None
        self.error: Optional[Exception] = None
        self.done = threading.Event()


def _take(queue: list[_Pending], cap: int) -> tuple[list[_Pending], list[_Pending]]:
    """Split the queue into the next pass (oldest first, at most `cap` images, never empty) and
    the rest. Every request in a pass must agree on having labels (they come from one model)."""
    total, n = 0, 0
    for p in queue:
        if n and (total + len(p.z) > cap or (p.y is None) != (queue[0].y is None)):
            break
        total, n = total + len(p.z), n + 1
    return queue[:n], queue[n:]
