"""Network shapes and structure for conditional and unconditional configs."""

import pytest
import torch
import torch.nn as nn

from wgan_app.config import ModelConfig, TrainConfig
from wgan_app.models import Critic, Generator, build_models, count_parameters


@pytest.mark.parametrize("variant", ["acgan", "wgan-gp", "wgan", "gan"])
def test_shapes(variant):
    mcfg = TrainConfig(variant=variant).model
    G, D = build_models(mcfg)
    z = torch.randn(5, mcfg.z_dim)
    y = torch.randint(10, (5,)) if mcfg.conditional else None
    x = G(z, y)
    assert x.shape == (5, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1
    score, logits = D(x)
    assert score.shape == (5,)
    if mcfg.conditional:
        assert logits.shape == (5, 10)
    else:
        assert logits is None and D.classify is None and G.embed is None


def test_default_networks_are_small_enough_for_a_cpu():
    G, D = build_models(TrainConfig().model)
    assert 0.3e6 < count_parameters(G) < 2.5e6
    assert 0.03e6 < count_parameters(D) < 2.5e6


def test_gradient_penalty_critic_has_no_batch_norm():
    for variant in ("acgan", "wgan-gp"):
        D = Critic(TrainConfig(variant=variant).model)
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())


def test_critic_output_is_linear_not_sigmoid():
    D = Critic(TrainConfig(variant="wgan-gp").model)
    with torch.no_grad():
        D.score.bias.fill_(50.0)
    score, _ = D(torch.zeros(2, 1, 28, 28))
    assert (score > 1.0).all()


def test_class_embedding_multiplies_z():
    G = Generator(ModelConfig()).eval()
    z = torch.randn(1, 64)
    with torch.no_grad():
        G.embed.weight.fill_(1.0)
        a = G(z, torch.tensor([3]))
        G.embed.weight[3].fill_(0.0)
        b = G(z, torch.tensor([3]))
        c = G(torch.zeros(1, 64), torch.tensor([3]))
    assert not torch.allclose(a, b)
    assert torch.allclose(b, c)  # z * 0 == 0: the class scales z elementwise


def test_conditional_generator_needs_labels():
    with pytest.raises(ValueError):
        Generator(ModelConfig())(torch.randn(2, 64))
