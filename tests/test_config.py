"""Config defaults come from the papers; bad values raise one clear UserError."""

import pytest

from wgan_app.config import ModelConfig, TrainConfig
from wgan_app.errors import UserError


def test_variant_defaults_follow_the_papers():
    gp = TrainConfig(variant="wgan-gp", recipe="paper")
    assert (gp.constraint, gp.optimizer, gp.lr, gp.beta1, gp.beta2, gp.n_critic, gp.lambda_gp) == \
        ("gp", "adam", 1e-4, 0.5, 0.9, 5, 10.0)
    assert gp.d_norm == "none" and not gp.critic_warmup
    assert (gp.g_width, gp.d_width, gp.d_layers, gp.g_refine, gp.class_weight_g) == (64, 64, 3, 32, 1.0)
    w = TrainConfig(variant="wgan", recipe="paper")
    assert (w.constraint, w.optimizer, w.lr, w.n_critic, w.clip_value, w.critic_warmup) == \
        ("clip", "rmsprop", 5e-5, 5, 0.01, True)
    a = TrainConfig()
    assert a.variant == "acgan" and a.constraint == "gp" and a.model.n_classes == 10
    ac = TrainConfig(variant="acgan", constraint="clip", recipe="paper")
    assert ac.optimizer == "rmsprop" and ac.lr == 5e-5
    g = TrainConfig(variant="gan")
    assert g.constraint == "none" and g.n_critic == 1


def test_explicit_values_override_defaults():
    cfg = TrainConfig(variant="wgan-gp", lr=3e-4, n_critic=2)
    assert cfg.lr == 3e-4 and cfg.n_critic == 2 and cfg.beta2 == 0.9


@pytest.mark.parametrize("kw, needle", [
    (dict(variant="dcgan"), "--variant"),
    (dict(dataset="cifar"), "--dataset"),
    (dict(iters=0), "--iters"),
    (dict(batch_size=-1), "--batch-size"),
    (dict(lr=0.0), "--lr"),
    (dict(lr=float("nan")), "--lr"),
    (dict(n_critic=0), "--n-critic"),
    (dict(variant="wgan-gp", constraint="clip"), "--constraint"),
    (dict(variant="wgan-gp", d_norm="batch"), "--d-norm"),
    (dict(ema=1.0), "--ema"),
    (dict(max_minutes=0), "--max-minutes"),
    (dict(seed=-3), "--seed"),
])
def test_bad_values_name_the_flag(kw, needle):
    with pytest.raises(UserError, match=needle) as e:
        TrainConfig(**kw)
    assert "\n" not in str(e.value)


def test_round_trip_and_unknown_keys():
    cfg = TrainConfig(variant="wgan", iters=7)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UserError, match="unknown keys"):
        TrainConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(UserError, match="only 'acgan' is"):
        ModelConfig(variant="wgan", n_classes=10)


def test_files_from_before_the_optional_stages_mean_the_old_networks():
    """config.json files written before g_refine / d_layers existed describe networks without
    those stages; today's defaults (with them) must not be read into such files."""
    new = TrainConfig(recipe="paper")  # the recipe whose networks have both stages
    assert (new.g_refine, new.d_layers) != (0, 2)
    old = {k: v for k, v in new.to_dict().items() if k not in ("g_refine", "d_layers")}
    assert TrainConfig.from_dict(old).model.g_refine == 0
    assert TrainConfig.from_dict(old).d_layers == 2
    m = {k: v for k, v in new.model.to_dict().items() if k not in ("g_refine", "d_layers")}
    assert (ModelConfig.from_dict(m).g_refine, ModelConfig.from_dict(m).d_layers) == (0, 2)
    assert ModelConfig.from_dict(new.model.to_dict()) == new.model


def test_replace_works_across_variants_and_rederives_the_recipe():
    wgan = TrainConfig(variant="wgan", recipe="paper")
    gp = wgan.replace(variant="wgan-gp")
    assert (gp.variant, gp.constraint, gp.optimizer, gp.lr, gp.n_critic, gp.d_norm, gp.critic_warmup) == \
        ("wgan-gp", "gp", "adam", 1e-4, 5, "none", False)
    assert gp == TrainConfig(variant="wgan-gp", recipe="paper")
    back = gp.replace(variant="wgan")
    assert back == wgan and back.d_norm == "batch" and back.optimizer == "rmsprop"
    # what the person set survives a change of variant; what the recipe set does not
    mine = TrainConfig(variant="acgan", lr=3e-4, g_width=16).replace(n_critic=2).replace(variant="wgan-gp")
    assert (mine.lr, mine.n_critic, mine.g_width, mine.beta2, mine.model.n_classes) == (3e-4, 2, 16, 0.9, 0)
    assert TrainConfig(variant="gan").replace(variant="acgan").model.conditional
    assert TrainConfig(variant="acgan").replace(constraint="clip").optimizer == "rmsprop"


def test_train_config_composes_model_config_and_round_trips():
    cfg = TrainConfig(variant="wgan-gp", g_width=16, z_dim=8, lr=2e-4)
    assert isinstance(cfg.model, ModelConfig) and cfg.model.g_width == 16 and cfg.g_width == 16
    assert TrainConfig(model=cfg.model, lr=2e-4) == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig.from_dict({"model": cfg.model.to_dict() | {"n_classes": 0}, "lr": 2e-4}).g_width == 16
    names = {f.name for f in __import__("dataclasses").fields(TrainConfig)}
    assert not names & {"z_dim", "g_width", "d_width", "g_refine", "d_layers"}  # not repeated, composed
    with pytest.raises(UserError, match="--constraint"):
        TrainConfig(variant="wgan", constraint="gp")


def test_fast_is_the_default_recipe_and_explicit_settings_override_it():
    fast, paper = TrainConfig(), TrainConfig(recipe="paper")
    assert fast.recipe == "fast" and paper.recipe == "paper"
    assert fast.n_critic < paper.n_critic and fast.g_width < paper.g_width
    mine = TrainConfig(recipe="fast", n_critic=5, g_width=64, lr=1e-4)
    assert (mine.n_critic, mine.g_width, mine.lr) == (5, 64, 1e-4) and mine.d_width == fast.d_width
    assert mine.replace(recipe="paper").n_critic == 5 and mine.replace(recipe="paper").d_width == paper.d_width
    assert fast.replace(recipe="paper") == paper and paper.replace(recipe="fast") == fast
    with pytest.raises(UserError, match="--recipe"):
        TrainConfig(recipe="turbo")
    # a config.json written before recipes existed was trained with the papers' recipe
    legacy = {k: v for k, v in paper.to_dict().items() if k != "recipe"}
    assert TrainConfig.from_dict(legacy).recipe == "paper"
    assert TrainConfig.from_dict(fast.to_dict()) == fast
