"""Network shapes and structure for conditional and unconditional configs."""

import numpy as np
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
    G, D = build_models(TrainConfig(recipe="paper").model)  # the largest a recipe builds
    assert 0.3e6 < count_parameters(G) < 2.5e6
    assert 0.03e6 < count_parameters(D) < 2.5e6
    g, d = build_models(TrainConfig(recipe="fast").model)  # fast: a fraction of that
    assert count_parameters(g) < 0.6 * count_parameters(G) and count_parameters(d) < 0.6 * count_parameters(D)


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


@pytest.mark.parametrize("g_refine,d_layers", [(0, 2), (16, 2), (0, 3), (16, 3)])
def test_optional_stages_keep_shapes_and_heads(g_refine, d_layers):
    cfg = ModelConfig(g_width=16, d_width=8, g_refine=g_refine, d_layers=d_layers)
    G, D = build_models(cfg)
    z, y = torch.randn(3, 64), torch.tensor([0, 4, 9])
    x = G(z, y)
    score, logits = D(x)
    assert x.shape == (3, 1, 28, 28) and score.shape == (3,) and logits.shape == (3, 10)
    convs = [m for m in D.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == d_layers
    assert D.score.in_features == (2 * 8 * 7 * 7 if d_layers == 2 else 4 * 8 * 4 * 4)
    last_convs = [m for m in G.net if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(last_convs) == (3 if g_refine else 2)


def test_bad_stage_settings_are_user_errors():
    from wgan_app.errors import UserError

    with pytest.raises(UserError, match="--d-layers"):
        ModelConfig(d_layers=4)
    with pytest.raises(UserError, match="--g-refine"):
        TrainConfig(g_refine=-1)


def test_synthesize_from_code_equals_forward():
    G = Generator(ModelConfig(g_width=16, g_refine=8)).eval()
    z, y = torch.randn(4, 64), torch.tensor([1, 2, 3, 4])
    with torch.no_grad():
        assert torch.equal(G(z, y), G.synthesize(G.code(z, y)))


def test_concurrent_sampling_is_batched_and_gives_each_caller_its_own_digits(acgan_ckpt):
    """16 threads asking at once share forward passes, and each gets what it would get alone."""
    import threading
    import time

    from wgan_app.sampler import Sampler

    sampler = Sampler.load(acgan_ckpt)
    alone = {seed: sampler.sample(seed % 10, seed=seed, n=1 + seed % 3) for seed in range(16)}
    passes, forward = [], sampler.G.forward
    start = threading.Barrier(16)

    def counted(z, y=None):
        passes.append(len(z))
        if len(passes) == 1:
            time.sleep(0.5)  # a slow first pass: the other callers arrive while it runs
        return forward(z, y)

    sampler.G.forward = counted
    got, lock = {}, threading.Lock()

    def ask(seed):
        start.wait()
        out = sampler.sample(seed % 10, seed=seed, n=1 + seed % 3)
        with lock:
            got[seed] = out

    threads = [threading.Thread(target=ask, args=(s,)) for s in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got) == list(range(16))
    for seed in range(16):
        assert got[seed].shape == alone[seed].shape
        # eval-mode networks treat samples independently; kernels may round differently by batch size
        assert np.abs(got[seed].astype(int) - alone[seed].astype(int)).max() <= 1
    assert sum(passes) == sum(1 + s % 3 for s in range(16))  # every image drawn exactly once
    assert len(passes) <= 4  # the 15 callers who waited shared the next pass or two


def test_a_failing_batched_pass_fails_its_callers_only(acgan_ckpt):
    from wgan_app.sampler import Sampler

    sampler = Sampler.load(acgan_ckpt)
    forward = sampler.G.forward
    sampler.G.forward = lambda z, y=None: (_ for _ in ()).throw(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        sampler.sample(3, seed=0, n=2)
    sampler.G.forward = forward
    assert sampler.sample(3, seed=0, n=2).shape == (2, 28, 28)  # the next call is not stuck


@pytest.mark.parametrize("arch", ["dcgan", "dcgan-nobn", "mlp"])
@pytest.mark.parametrize("variant", ["acgan", "gan"])
def test_every_generator_architecture_draws_28x28_images(arch, variant):
    mcfg = TrainConfig(variant=variant, g_arch=arch).model
    G, D = build_models(mcfg)
    z = torch.randn(5, mcfg.z_dim)
    y = torch.randint(10, (5,)) if mcfg.conditional else None
    x = G(z, y)
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert D(x)[0].shape == (5,)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in G.modules())
    assert has_bn == (arch == "dcgan")  # the two settings where the papers say the GAN fails have none
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    if arch == "mlp":  # the WGAN paper's: 4 hidden layers of 512 ReLU units, no convolution
        linears = [m for m in G.modules() if isinstance(m, nn.Linear)]
        assert not convs and [m.out_features for m in linears] == [512] * 4 + [784]
    elif arch == "dcgan-nobn":  # constant filters: every hidden layer has g_width channels
        assert {m.out_channels for m in convs[:-1]} == {mcfg.g_width} and convs[0].in_channels == mcfg.g_width
    else:  # DCGAN doubles towards 7x7
        assert convs[0].in_channels == 2 * mcfg.g_width


def test_generator_architecture_is_validated_and_old_configs_mean_dcgan():
    from wgan_app.errors import UserError

    with pytest.raises(UserError, match="--g-arch 'resnet' is not one of: dcgan, dcgan-nobn, mlp"):
        ModelConfig(g_arch="resnet")
    old = {k: v for k, v in ModelConfig().to_dict().items() if k != "g_arch"}  # written before g_arch existed
    assert ModelConfig.from_dict(old).g_arch == "dcgan"
