"""The objectives against cases with known answers."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from wgan_app import losses


class LinearCritic(nn.Module):
    """D(x) = w . x: its gradient is w everywhere, so ||grad D|| = ||w|| exactly."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return x.flatten(1) @ self.w.flatten(), None


@pytest.mark.parametrize("norm", [0.0, 0.5, 1.0, 3.0])
def test_gradient_penalty_linear_critic_known_answer(norm):
    torch.manual_seed(0)
    w = torch.randn(1, 28, 28)
    w = w / w.norm() * norm
    D = LinearCritic(w)
    x_real, x_fake = torch.randn(8, 1, 28, 28), torch.randn(8, 1, 28, 28)
    gp, grad_norm = losses.gradient_penalty(D, x_real, x_fake)
    assert gp.item() == pytest.approx((norm - 1) ** 2, abs=1e-5)
    assert grad_norm.item() == pytest.approx(norm, abs=1e-5)
    assert torch.isfinite(gp)


def test_gradient_penalty_norm_is_per_sample_not_per_pixel():
    # ||w|| = 1 over the whole image: the paper's penalty is 0. A per-pixel norm would see
    # |w_i| << 1 at every pixel and report a large penalty.
    w = torch.full((1, 28, 28), 1 / 28.0)
    gp, _ = losses.gradient_penalty(LinearCritic(w), torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28))
    assert gp.item() == pytest.approx(0.0, abs=1e-6)


def test_gradient_penalty_eps_drawn_once_per_sample_in_unit_interval():
    seen = {}

    class Spy(nn.Module):
        def forward(self, x):
            seen["x_hat"] = x.detach().clone()
            return (x ** 2).flatten(1).sum(1) / 2, None

    x_real, x_fake = torch.ones(64, 1, 28, 28), torch.zeros(64, 1, 28, 28)
    losses.gradient_penalty(Spy(), x_real, x_fake, generator=torch.Generator().manual_seed(0))
    eps = seen["x_hat"].flatten(1)  # x_hat = eps * 1 + (1 - eps) * 0
    assert torch.allclose(eps, eps[:, :1].expand_as(eps)), "eps must be constant within a sample"
    assert eps.min() >= 0 and eps.max() <= 1
    assert eps[:, 0].std() > 0.2, "eps must vary between samples (uniform on [0, 1])"


def test_gradient_penalty_gradients_flow_to_critic_and_stay_finite_at_zero_grad():
    D = LinearCritic(torch.zeros(1, 28, 28))  # a dead critic: grad norm 0
    gp, _ = losses.gradient_penalty(D, torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28))
    gp.backward()
    assert gp.item() == pytest.approx(1.0, abs=1e-5)
    assert torch.isfinite(D.w.grad).all()


def test_clip_weights_bounds_every_parameter():
    net = nn.Sequential(nn.Linear(10, 10), nn.BatchNorm1d(10), nn.Linear(10, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-1, 1)
    losses.clip_weights(net, 0.01)
    for p in net.parameters():
        assert p.abs().max() <= 0.01 + 1e-9
    assert any((p.abs() == 0.01).any() for p in net.parameters())


def test_wgan_losses_are_the_papers():
    d_real, d_fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert losses.critic_loss_wgan(d_real, d_fake).item() == pytest.approx(-0.5 - 2.0)
    assert losses.generator_loss_wgan(d_fake).item() == pytest.approx(0.5)


def test_gan_losses_are_bce_on_logits():
    d_real, d_fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    expect_d = F.binary_cross_entropy_with_logits(d_real, torch.ones(2)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros(2))
    assert losses.critic_loss_gan(d_real, d_fake).item() == pytest.approx(expect_d.item(), rel=1e-6)
    expect_g = F.binary_cross_entropy_with_logits(d_fake, torch.ones(2))
    assert losses.generator_loss_gan(d_fake).item() == pytest.approx(expect_g.item(), rel=1e-6)
    # stable where log(sigmoid) would underflow
    assert math.isfinite(losses.critic_loss_gan(torch.tensor([-200.0]), torch.tensor([200.0])).item())


def test_class_loss_takes_logits_not_probabilities():
    logits = torch.tensor([[4.0, 0.0, -2.0], [0.0, 5.0, 1.0]])
    y = torch.tensor([0, 1])
    assert losses.class_loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item())
    softmax_then_ce = F.cross_entropy(logits.softmax(1), y).item()
    assert losses.class_loss(logits, y).item() < softmax_then_ce - 0.3
    assert math.isfinite(losses.class_loss(torch.tensor([[1000.0, -1000.0]]), torch.tensor([1])).item())


def test_gradient_penalty_on_2d_points_is_per_point():
    """The Lab's critics see (B, 2) points: eps must be one per point, not a (B, B) cross product.
    A linear critic D(x) = w.x has gradient w everywhere, so GP = (|w| - 1)^2 exactly."""
    w = torch.tensor([3.0, 4.0])

    class Linear2d(nn.Module):
        def forward(self, x):
            assert x.shape == (8, 2), x.shape
            return x @ w, None

    gp, grad_norm = losses.gradient_penalty(Linear2d(), torch.randn(8, 2), torch.randn(8, 2))
    assert grad_norm.item() == pytest.approx(5.0) and gp.item() == pytest.approx(16.0)
