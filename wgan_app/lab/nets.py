"""Small MLPs for 2-D points with the Trainer's interface: G(z, y) -> x, D(x) -> (score, None).

Tiny on purpose (the Lab uses 3 hidden layers of 64, LabSettings.depth): a step costs about a
millisecond on one CPU core, so three runs can train side by side at tens to hundreds of steps a
second.
"""

from __future__ import annotations

import contextlib
import threading

import torch
import torch.nn as nn

# A seeded network init draws from torch's global RNG inside fork_rng: two runs restarting at once
# in the server's threads would interleave their seeds. One at a time.
_INIT_LOCK = threading.Lock()


@contextlib.contextmanager
def seeded_init(seed: int):
    """Build networks inside: their initial weights follow `seed`, and the process's global RNG
    (which other requests use) is left as it was."""
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# "tanh" for the published mixture set-up (VEEGAN / GDPP: 2 x 128 tanh units; bench/lab_published.py)
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _mlp(d_in: int, d_out: int, width: int, depth: int, batch_norm: bool = False,
         activation: str = "relu") -> nn.Sequential:
    """d_in -> `depth` x (Linear(width) [-> BatchNorm1d] -> activation) -> Linear(d_out)."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(d_in if i == 0 else width, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATIONS[activation]())
    layers.append(nn.Linear(width if depth else d_in, d_out))
    return nn.Sequential(*layers)


class PointGenerator(nn.Module):
    """z (B, z_dim) ~ N(0, I) -> points (B, 2). Unconditional: `n_classes` = 0, `y` is ignored."""

    n_classes = 0

    def __init__(self, z_dim: int = 2, width: int = 64, depth: int = 2, activation: str = "relu"):
        super().__init__()
        self.z_dim = z_dim
        self.net = _mlp(z_dim, 2, width, depth, activation=activation)

    def forward(self, z: torch.Tensor, y=None) -> torch.Tensor:
        return self.net(z)  # (B, 2)


class PointCritic(nn.Module):
    """points (B, 2) -> linear score (B,) and no class logits. `batch_norm` adds BatchNorm1d after
    every hidden linear layer: the Lab's switch for showing why a gradient-penalty critic must
    not have it (the penalty is per sample, batch norm makes each score depend on the batch)."""

    def __init__(self, width: int = 64, depth: int = 2, batch_norm: bool = False, activation: str = "relu"):
        super().__init__()
        self.net = _mlp(2, 1, width, depth, batch_norm, activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.net(x).squeeze(1), None  # (B,)

    def linear_layers(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]
