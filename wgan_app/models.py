"""Generator and critic for 28x28x1 images, built from a ModelConfig. No I/O, no devices.

Both are small DCGAN-style nets sized for a 2-core CPU: two stride-2 (de)convolutions between
7x7 and 28x28, plus optional extra stages (`g_refine`, `d_layers`) that buy quality per
CPU-minute. `n_classes = 0` is the unconditional model; otherwise (ACGAN-WGAN) the class is
embedded to z's size and multiplied into z, and the critic grows a 10-way class head beside its
linear Wasserstein output.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .config import ModelConfig


class Generator(nn.Module):
    """G(z, y) -> x in [-1, 1], shape (B, 1, 28, 28)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.g_width
        self.embed = nn.Embedding(cfg.n_classes, cfg.z_dim) if cfg.n_classes else None
        self.fc = nn.Sequential(
            nn.Linear(cfg.z_dim, 2 * w * 7 * 7, bias=False),
            nn.BatchNorm1d(2 * w * 7 * 7),
            nn.ReLU(inplace=True),
        )
        if cfg.g_refine:
            # The last upsampling keeps r channels and a 3x3 conv mixes them into the pixel: a
            # single deconvolution straight to one channel draws strokes with visible seams.
            r = cfg.g_refine
            top = [nn.ConvTranspose2d(w, r, 4, 2, 1, bias=False),  # (B, r, 28, 28)
                   nn.BatchNorm2d(r),
                   nn.ReLU(inplace=True),
                   nn.Conv2d(r, cfg.channels, 3, 1, 1)]  # (B, 1, 28, 28)
        else:
            top = [nn.ConvTranspose2d(w, cfg.channels, 4, 2, 1)]  # (B, 1, 28, 28)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False),  # (B, w, 14, 14)
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            *top,
            nn.Tanh(),
        )

    @property
    def z_dim(self) -> int:
        return self.cfg.z_dim

    @property
    def n_classes(self) -> int:
        return self.cfg.n_classes

    def code(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's input code: z, times the class embedding when conditional. (B, z_dim)"""
        if self.embed is None:
            return z
        if y is None:
            raise ValueError("a conditional generator needs class labels y")
        return z * self.embed(y)  # the class scales each latent direction

    def synthesize(self, c: torch.Tensor) -> torch.Tensor:
        """Images from codes c (B, z_dim); a latent walk may blend class embeddings into c."""
        h = self.fc(c).view(c.shape[0], 2 * self.cfg.g_width, 7, 7)
        return self.net(h)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.synthesize(self.code(z, y))


class Critic(nn.Module):
    """D(x) -> (score (B,), class logits (B, n_classes) or None). The score is linear: no sigmoid."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.d_width
        norm = (lambda c: nn.BatchNorm2d(c)) if cfg.d_norm == "batch" else (lambda c: nn.Identity())
        layers = [
            nn.Conv2d(cfg.channels, w, 4, 2, 1),  # (B, w, 14, 14)
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 4, 2, 1),  # (B, 2w, 7, 7)
            norm(2 * w),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        c, side = 2 * w, 7
        if cfg.d_layers == 3:  # the WGAN-GP paper's MNIST critic also ends at 4x4 with 4x its width
            layers += [nn.Conv2d(2 * w, 4 * w, 3, 2, 1), norm(4 * w), nn.LeakyReLU(0.2, inplace=True)]
            c, side = 4 * w, 4  # (B, 4w, 4, 4)
        self.features = nn.Sequential(*layers, nn.Flatten())  # (B, c*side*side)
        self.score = nn.Linear(c * side * side, 1)
        self.classify = nn.Linear(c * side * side, cfg.n_classes) if cfg.n_classes else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.features(x)
        logits = self.classify(h) if self.classify is not None else None
        return self.score(h).squeeze(1), logits


def build_models(cfg: ModelConfig) -> tuple[Generator, Critic]:
    return Generator(cfg), Critic(cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
