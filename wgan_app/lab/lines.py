"""Claim 1, the WGAN paper's parallel lines (Arjovsky et al. 2017, Example 1), trained for real.

P0 is uniform on {0} x [0, 1]; the "generator" is the single parameter theta: G(z) = (theta, u)
with u = Phi(z) uniform on [0, 1]. A BCE discriminator and a Wasserstein critic (the project's
objectives, through the same Trainer) each train theta from the same start with the same
critic, data and noise. The BCE discriminator comes with two generator losses: the original
minimax one, whose game is the JS divergence of the example (its gradient vanishes), and the
non-saturating one the app's GAN uses (its gradient does not vanish, it is erratic). theta
moves by plain SGD, so its step *is* its gradient times the lr: an
adaptive optimiser (Adam, RMSprop) would rescale a vanishing gradient back to a full step and
hide exactly what this panel is about.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from .. import losses
from ..objectives import BCEGAN, WGANGP, Objective
from ..trainer import Trainer
from .measures import parallel_lines_distances
from .nets import PointCritic, seeded_init


class LineGenerator(nn.Module):
    """z (B, 1) ~ N(0, 1) -> (theta, Phi(z)) (B, 2): the whole generator is one number."""

    z_dim, n_classes = 1, 0

    def __init__(self, theta: float):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(float(theta)))

    def forward(self, z: torch.Tensor, y=None) -> torch.Tensor:
        u = 0.5 * (1 + torch.erf(z / math.sqrt(2)))  # (B, 1) uniform on [0, 1]
        return torch.cat([self.theta.expand(len(z), 1), u], 1)  # (B, 2)


class LineData:
    """Batches of P0: (B, 2) points (0, u), u ~ U[0, 1]."""

    def __len__(self) -> int:
        return 10**9

    def batch(self, batch_size: int, generator: torch.Generator):
        u = torch.rand(batch_size, 1, generator=generator)
        return torch.cat([torch.zeros(batch_size, 1), u], 1), None


class MinimaxGAN(BCEGAN):
    """The BCE discriminator with the original minimax generator loss (the JS game of Example 1).
    Not a training variant of the app: only the parallel-lines panel uses it."""

    def generator_terms(self, fake, s_fake):
        loss = losses.generator_loss_gan_minimax(s_fake.score)
        return loss, {"loss_g": loss.detach()}


@dataclass(frozen=True)
class LineSettings:
    """The experiment's knobs, and the fields the Trainer reads from a config."""

    theta0: float = 1.0
    steps: int = 100
    # Example 1 is about the gradient *at the optimal critic*: train the critic well before the
    # first theta step (warm-up), then n_critic updates before every later one.
    critic_warmup_steps: int = 100
    n_critic: int = 10
    lr: float = 1e-3  # the critic's Adam lr
    lr_theta: float = 0.02  # theta's plain-SGD lr: the step is exactly lr_theta * gradient
    batch_size: int = 128
    seed: int = 0
    # fixed fields the Trainer reads
    optimizer: str = "adam"
    beta1: float = 0.5
    beta2: float = 0.9
    critic_warmup: bool = False
    lr_decay_from: float = 1.0
    iters: int = 10**9
    max_minutes: None = None
    ema: float = 0.0
    amp: bool = False


@dataclass
class LineTrajectory:
    """theta before every generator step and after the last (steps + 1,), and the gradient
    dL_G/dtheta each step applied (steps,)."""

    name: str
    theta: list[float] = field(default_factory=list)
    grad: list[float] = field(default_factory=list)


def train_theta(objective: Objective, name: str, s: LineSettings) -> LineTrajectory:
    """Train theta from s.theta0 under `objective`. The critic is a small MLP built after
    seeding with s.seed, so every objective starts from the same critic, data and noise."""
    with seeded_init(s.seed):  # the critic's initial weights; the Trainer's own RNGs do the rest
        G, D = LineGenerator(s.theta0), PointCritic(width=32, depth=2)
    trainer = Trainer(s, G, D, objective, LineData())
    trainer.replace_optimizers(opt_g=torch.optim.SGD(G.parameters(), lr=s.lr_theta))
    out = LineTrajectory(name, [s.theta0], [])
    for i in range(s.steps):
        # critic_step / generator_step rather than step(): step() would give theta the critic's
        # lr through the schedule, and has no warm-up of this length
        for _ in range(s.critic_warmup_steps if i == 0 else s.n_critic):
            trainer.critic_step()
        trainer.generator_step()
        out.theta.append(float(G.theta.detach()))
        out.grad.append(float(G.theta.grad))
    return out


OBJECTIVES = {  # name -> (objective, what to look for)
    "GAN, minimax loss": (MinimaxGAN, "JS game: the confident discriminator's gradient vanishes, theta stalls"),
    "GAN, non-saturating loss": (BCEGAN, "the usual fix: gradients no longer vanish but jump around, theta overshoots"),
    "WGAN-GP critic": (lambda: WGANGP(lambda_gp=10.0), "gradient stays near dW1/dtheta = 1, theta walks to 0"),
}


@functools.lru_cache(maxsize=8)
def compare(s: LineSettings = LineSettings()) -> dict[str, LineTrajectory]:
    """Every objective of OBJECTIVES from the same start: {name: trajectory}. Deterministic, so
    cached (a few seconds of CPU at the defaults)."""
    return {name: train_theta(make(), name, s) for name, (make, _) in OBJECTIVES.items()}


def distance_curves(theta_max: float = 2.0, n: int = 201) -> dict[str, np.ndarray]:
    """theta on [-theta_max, theta_max] (n,) and W1, JS, KL, TV at each (n,): the closed forms."""
    theta = np.linspace(-theta_max, theta_max, n)
    rows = [parallel_lines_distances(float(t)) for t in theta]
    return {"theta": theta, **{k: np.array([r[k] for r in rows]) for k in ("W1", "JS", "KL", "TV")}}
