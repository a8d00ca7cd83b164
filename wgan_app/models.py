"""Generator and critic for 28x28x1 images, built from a ModelConfig. No I/O, no devices.

The critic is a small DCGAN-style net sized for a 2-core CPU: two stride-2 convolutions from
28x28 to 7x7, plus an optional third (`d_layers`). The generator has three architectures
(`g_arch`), the settings in which the WGAN paper (section 4.3, figures 5-7) compares WGAN with
the plain GAN:
- `dcgan`: DCGAN with batch norm, channels doubling towards 7x7 (both methods should work);
- `dcgan-nobn`: the same without batch norm and with a constant number of filters (the paper's
  figure 6: WGAN still draws digits, the GAN should fail);
- `mlp`: 4 hidden layers of 512 ReLU units, no convolutions and no batch norm (figure 7: WGAN
  draws reasonable samples, the GAN should collapse).
`n_classes = 0` is the unconditional model; otherwise (ACGAN-WGAN) the class is embedded to z's
size and multiplied into z, and the critic grows a 10-way class head beside its linear
Wasserstein output.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .config import ModelConfig

MLP_UNITS, MLP_LAYERS = 512, 4  # the WGAN paper's MLP generator: 4 hidden layers of 512 ReLU units


def _dcgan_body(cfg: ModelConfig, batch_norm: bool, w7: int) -> tuple[nn.Module, nn.Module]:
    """(fc, net) of the convolutional generators: fc maps the code to (B, w7, 7, 7) and net
    upsamples it twice to (B, 1, 28, 28). With batch norm the biases before it are redundant."""
    w, bias = cfg.g_width, not batch_norm
    norm1d = (lambda c: nn.BatchNorm1d(c)) if batch_norm else (lambda c: nn.Identity())
    norm2d = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
    fc = nn.Sequential(nn.Linear(cfg.z_dim, w7 * 7 * 7, bias=bias), norm1d(w7 * 7 * 7), nn.ReLU(inplace=True))
    if cfg.g_refine:
        # The last upsampling keeps r channels and a 3x3 conv mixes them into the pixel: a
        # single deconvolution straight to one channel draws strokes with visible seams.
        r = cfg.g_refine
        top = [nn.ConvTranspose2d(w, r, 4, 2, 1, bias=bias),  # (B, r, 28, 28)
               norm2d(r),
               nn.ReLU(inplace=True),
               nn.Conv2d(r, cfg.channels, 3, 1, 1)]  # (B, 1, 28, 28)
    else:
        top = [nn.ConvTranspose2d(w, cfg.channels, 4, 2, 1)]  # (B, 1, 28, 28)
    # The top is built before the body, as it always was: a seed initialises the same weights.
    body = [nn.ConvTranspose2d(w7, w, 4, 2, 1, bias=bias),  # (B, w, 14, 14)
            norm2d(w),
            nn.ReLU(inplace=True)]
    net = nn.Sequential(*body, *top, nn.Tanh())
    return fc, net


class Generator(nn.Module):
    """G(z, y) -> x in [-1, 1], shape (B, 1, 28, 28); the architecture is `cfg.g_arch`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_classes, cfg.z_dim) if cfg.n_classes else None
        if cfg.g_arch == "mlp":
            pixels = cfg.channels * cfg.image_size * cfg.image_size
            hidden = []
            for i in range(MLP_LAYERS):
                hidden += [nn.Linear(cfg.z_dim if i == 0 else MLP_UNITS, MLP_UNITS), nn.ReLU(inplace=True)]
            self.fc = nn.Sequential(*hidden)  # (B, 512)
            self.net = nn.Sequential(nn.Linear(MLP_UNITS, pixels), nn.Tanh(),  # (B, 784)
                                     nn.Unflatten(1, (cfg.channels, cfg.image_size, cfg.image_size)))
        else:
            # dcgan: 2w channels at 7x7, w at 14x14, batch norm after every hidden layer (DCGAN's
            # doubling); dcgan-nobn: w channels at every layer and no batch norm (WGAN fig. 6).
            nobn = cfg.g_arch == "dcgan-nobn"
            self.fc, self.net = _dcgan_body(cfg, batch_norm=not nobn, w7=cfg.g_width if nobn else 2 * cfg.g_width)

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
        h = self.fc(c)  # (B, 512) for the MLP, (B, w7*7*7) otherwise
        if self.cfg.g_arch != "mlp":
            h = h.view(c.shape[0], -1, 7, 7)  # (B, w7, 7, 7)
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
