"""Every generator architecture trains, checkpoints, loads and samples through the real code
paths (the fixture data, a few steps of each objective), and its model card names it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import train_tiny


@pytest.mark.parametrize("arch", ["dcgan-nobn", "mlp"])
@pytest.mark.parametrize("variant", ["gan", "wgan", "wgan-gp"])
def test_each_architecture_trains_and_round_trips_a_checkpoint(tmp_path, data_dir, variant, arch):
    from wgan_app.cards import model_card
    from wgan_app.checkpoint import load_checkpoint
    from wgan_app.sampler import Sampler

    ckpt_dir = train_tiny(tmp_path / "run", data_dir, variant, iters=3, g_arch=arch)
    ckpt = load_checkpoint(ckpt_dir)
    assert ckpt.model.g_arch == arch and ckpt.step == 3
    a = Sampler(ckpt, "cpu").sample(None, seed=7, n=4)
    b = Sampler(load_checkpoint(ckpt_dir), "cpu").sample(None, seed=7, n=4)
    assert a.shape == (4, 28, 28) and a.dtype == np.uint8 and np.array_equal(a, b)  # same weights, same bytes
    card = model_card(ckpt)
    assert {"dcgan-nobn": "without batch norm", "mlp": "MLP generator"}[arch] in card and f"| g_arch | {arch} |" in card


@pytest.mark.parametrize("arch", ["dcgan", "dcgan-nobn", "mlp"])
def test_the_model_cards_plain_pytorch_snippet_builds_every_architecture(tmp_path, arch):
    """The card's stand-alone code (what a Hub visitor copies) loads each generator kind and draws
    what the app draws; a config.json from before g_arch existed still means the DCGAN."""
    import json

    import torch
    from safetensors.torch import save_file

    from wgan_app.cards import _plain_pytorch_snippet
    from wgan_app.config import TrainConfig
    from wgan_app.models import Generator

    model = TrainConfig(variant="acgan" if arch == "dcgan" else "gan", g_arch=arch).model
    G = Generator(model).eval()
    save_file(G.state_dict(), str(tmp_path / "model.safetensors"))
    config = model.to_dict()
    if arch == "dcgan":
        config.pop("g_arch")
    (tmp_path / "config.json").write_text(json.dumps(config))
    local = f"hf_hub_download = lambda repo, name: {str(tmp_path)!r} + '/' + name"
    snippet = _plain_pytorch_snippet("alice/digits").replace("from huggingface_hub import hf_hub_download", local)
    scope = {"__name__": "card"}
    exec(compile(snippet, "model_card", "exec"), scope)
    z = torch.randn(10, model.z_dim)
    y = torch.arange(10) % model.n_classes if model.n_classes else None
    with torch.no_grad():
        torch.testing.assert_close(scope["G"](z, y), G(z, y))
    assert tuple(scope["images"].shape) == (10, 1, 28, 28)
