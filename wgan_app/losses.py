"""Objectives of the four variants, one function each. Every loss is *minimised*.

Notation: D is the critic's linear score, x_real ~ data, x_fake = G(z).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def critic_loss_wgan(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """L_D = E[D(x_fake)] - E[D(x_real)]  (Arjovsky et al. 2017, Alg. 1).

    The critic maximises E[D(x_real)] - E[D(x_fake)]; -L_D estimates the Wasserstein-1 distance
    (up to the Lipschitz constant), which is why this loss is meaningful to plot.
    """
    return d_fake.mean() - d_real.mean()


def generator_loss_wgan(d_fake: torch.Tensor) -> torch.Tensor:
    """L_G = -E[D(G(z))]."""
    return -d_fake.mean()


def gradient_penalty(critic: nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor,
                     generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """GP = E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat = eps*x_real + (1-eps)*x_fake, eps ~ U[0,1].

    Gulrajani et al. 2017, Alg. 1: eps is drawn once per sample (not per pixel) and the norm is
    taken per sample over all pixels. Always computed in fp32. Returns (penalty, mean grad norm);
    multiply the penalty by lambda (= 10 in the paper) yourself.
    """
    B = x_real.shape[0]
    # One eps per sample, broadcast over the rest: (B, 1, 1, 1) for images, (B, 1) for 2-D points
    # (a fixed (B, 1, 1, 1) would broadcast (B, 2) points into a (B, 1, B, 2) cross product).
    eps = uniform((B,) + (1,) * (x_real.dim() - 1), x_real.device, generator)
    x_hat = (eps * x_real.float() + (1 - eps) * x_fake.detach().float()).requires_grad_(True)
    with torch.autocast(device_type=x_real.device.type, enabled=False):
        d_hat, _ = critic(x_hat)
    (grad,) = torch.autograd.grad(d_hat.sum(), x_hat, create_graph=True)  # like x: (B, 1, 28, 28) or (B, 2)
    # ||g||_2 computed as sqrt(sum g^2 + tiny): the plain sqrt has an infinite derivative at 0,
    # which turns a dead critic's zero gradient into NaNs.
    norm = torch.sqrt(grad.flatten(1).pow(2).sum(1) + 1e-12)  # (B,)
    return ((norm - 1) ** 2).mean(), norm.mean().detach()


def uniform(size: tuple[int, ...], device, generator=None) -> torch.Tensor:
    """U[0, 1) of `size` from `generator`: a torch.Generator (or None), or, under torchrun, a
    `dist.RankRows` that draws for the global batch and keeps this rank's rows."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.rand(size, device=device, generator=generator)
    return generator.rand(size, device)


@torch.no_grad()
def clip_weights(critic: nn.Module, c: float) -> None:
    """w <- clip(w, -c, c) for every critic parameter (Arjovsky et al. 2017, c = 0.01).

    Applied after every critic update. Batch-norm affine parameters are clipped too, as in the
    paper's reference code.
    """
    for p in critic.parameters():
        p.clamp_(-c, c)


def critic_loss_gan(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator BCE: -E[log sigmoid(D(x_real))] - E[log(1 - sigmoid(D(x_fake)))], on logits."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def generator_loss_gan(d_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -E[log sigmoid(D(G(z)))]  (Goodfellow et al. 2014)."""
    return F.softplus(-d_fake).mean()


def class_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ACGAN class loss: cross-entropy on raw logits (log-softmax is inside; no softmax before)."""
    return F.cross_entropy(logits.float(), y)


def generator_loss_gan_minimax(d_fake: torch.Tensor) -> torch.Tensor:
    """The original minimax generator loss: E[log(1 - sigmoid(D(G(z))))] = -E[softplus(D(G(z)))].

    Against an optimal discriminator this is 2 JS - log 4 (Goodfellow et al. 2014), and its
    gradient vanishes as D grows confident: the Lab's parallel-lines panel shows it. The
    project's GAN trains with the non-saturating loss above instead."""
    return -F.softplus(d_fake).mean()
