"""Typed run configuration: the single source for CLI flags, the UI form, config.json files.

`ModelConfig` is what is needed to *build* the networks (it travels with every checkpoint);
`TrainConfig` adds the optimisation recipe. Both are frozen; a `None` hyperparameter means
"the variant's paper default" and is filled in by `__post_init__`, so a constructed config is
always complete and valid. Validation raises `UserError` with a message that names the field
the way the CLI spells it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from .errors import UserError

VARIANTS = ("acgan", "wgan-gp", "wgan", "gan")
DATASETS = ("mnist", "fashion-mnist")
CONSTRAINTS = ("gp", "clip", "none")
DEVICES = ("auto", "cpu", "cuda")
NORMS = ("none", "batch")

# Per-variant recipe defaults, straight from the papers:
#  - WGAN-GP (Gulrajani et al. 2017, Alg. 1 + MNIST code): lambda=10, n_critic=5,
#    Adam lr 1e-4, betas (0.5, 0.9), no batch norm in the critic.
#  - WGAN (Arjovsky et al. 2017, Alg. 1): c=0.01, n_critic=5, RMSprop lr 5e-5, and 100 critic
#    steps for the first 25 generator steps and every 500th (their reference code).
#  - GAN: the non-saturating BCE GAN with the DCGAN recipe (Adam 2e-4, beta1 0.5).
_GP = dict(optimizer="adam", lr=1e-4, beta1=0.5, beta2=0.9, n_critic=5, d_norm="none", critic_warmup=False)
_CLIP = dict(optimizer="rmsprop", lr=5e-5, beta1=0.0, beta2=0.0, n_critic=5, d_norm="batch", critic_warmup=True)
_BCE = dict(optimizer="adam", lr=2e-4, beta1=0.5, beta2=0.999, n_critic=1, d_norm="batch", critic_warmup=False)


def flag(name: str) -> str:
    """The CLI spelling of a config field: `n_critic` -> `--n-critic`."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the generator (and critic) of a checkpoint."""

    variant: str = "acgan"
    dataset: str = "mnist"
    z_dim: int = 64
    n_classes: int = 10  # 0 = unconditional (only acgan is conditional)
    g_width: int = 64  # generator channels at 14x14; 2x that at 7x7
    d_width: int = 64  # critic channels at 14x14; 2x that at 7x7
    d_norm: str = "none"  # "batch" is only allowed without a gradient penalty
    g_refine: int = 32  # channels of an extra 28x28 generator stage; 0 = deconvolve straight to pixels
    d_layers: int = 3  # strided critic convolutions: 2 (ends at 7x7) or 3 (ends at 4x4, 4x width)
    image_size: int = 28
    channels: int = 1

    def __post_init__(self):
        _check_choice("variant", self.variant, VARIANTS)
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("d_norm", self.d_norm, NORMS)
        for name in ("z_dim", "g_width", "d_width"):
            _check_int(name, getattr(self, name), lo=1, hi=4096)
        _check_int("n_classes", self.n_classes, lo=0, hi=1000)
        _check_int("g_refine", self.g_refine, lo=0, hi=4096)
        _check_int("d_layers", self.d_layers, lo=2, hi=3)
        if (self.variant == "acgan") != (self.n_classes > 0):
            raise UserError(
                f"variant {self.variant!r} with n_classes={self.n_classes}: only 'acgan' is "
                "class-conditional (n_classes > 0); the other variants need n_classes = 0"
            )
        if (self.image_size, self.channels) != (28, 1):
            raise UserError(
                f"image_size={self.image_size}, channels={self.channels}: only 28x28 grey "
                "images (MNIST, Fashion-MNIST) are supported"
            )

    @property
    def conditional(self) -> bool:
        return self.n_classes > 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return _from_dict(cls, d, "model config")


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Fields left at None take the variant's paper default."""

    variant: str = "acgan"
    dataset: str = "mnist"
    data_dir: str = "data"
    constraint: Optional[str] = None  # gp | clip | none; acgan may choose gp or clip
    iters: int = 2000  # generator steps
    batch_size: int = 64
    optimizer: Optional[str] = None  # adam | rmsprop
    lr: Optional[float] = None  # both players
    beta1: Optional[float] = None
    beta2: Optional[float] = None
    n_critic: Optional[int] = None
    critic_warmup: Optional[bool] = None  # 100 critic steps for G steps < 25 and every 500th
    lambda_gp: float = 10.0
    clip_value: float = 0.01
    class_weight_d: float = 1.0  # weight of the critic's class loss on real images (acgan)
    class_weight_g: float = 1.0  # weight of the generator's class loss on its samples (acgan)
    lr_decay_from: float = 1.0  # fraction of iters after which both lrs fall linearly to 0; 1 = constant
    ema: float = 0.999  # decay of the averaged generator used for sampling; 0 turns it off
    z_dim: int = 64
    g_width: int = 64
    d_width: int = 64
    d_norm: Optional[str] = None
    g_refine: int = 32
    d_layers: int = 3
    seed: int = 0
    device: str = "auto"
    amp: bool = False  # bf16 autocast on CUDA (the penalty stays fp32)
    max_minutes: Optional[float] = None
    log_every: int = 10
    sample_every: int = 250
    save_every: int = 500
    keep_checkpoints: int = 2
    eval_every: int = 0  # quality metrics every N generator steps; 0 = off
    eval_num: int = 1000  # samples per metric evaluation
    tensorboard: bool = False
    run_dir: Optional[str] = None

    def __post_init__(self):
        _check_choice("variant", self.variant, VARIANTS)
        _check_choice("dataset", self.dataset, DATASETS)
        default_constraint = {"acgan": "gp", "wgan-gp": "gp", "wgan": "clip", "gan": "none"}[self.variant]
        constraint = self.constraint or default_constraint
        _check_choice("constraint", constraint, CONSTRAINTS)
        allowed = {"acgan": ("gp", "clip"), "wgan-gp": ("gp",), "wgan": ("clip",), "gan": ("none",)}[self.variant]
        if constraint not in allowed:
            raise UserError(
                f"--constraint {constraint} does not apply to --variant {self.variant}; "
                f"use {' or '.join(allowed)}"
            )
        recipe = {"gp": _GP, "clip": _CLIP, "none": _BCE}[constraint]
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("constraint", constraint)
        for key, value in recipe.items():
            if getattr(self, key) is None:
                set_(key, value)

        _check_choice("optimizer", self.optimizer, ("adam", "rmsprop"))
        _check_choice("d_norm", self.d_norm, NORMS)
        _check_choice("device", self.device, DEVICES)
        if self.constraint == "gp" and self.d_norm == "batch":
            raise UserError(
                "--d-norm batch cannot be used with the gradient penalty (it makes the critic's "
                "gradient depend on the whole batch); use --d-norm none"
            )
        _check_int("iters", self.iters, lo=1)
        _check_int("batch_size", self.batch_size, lo=1, hi=65536)
        _check_int("n_critic", self.n_critic, lo=1, hi=1000)
        _check_int("seed", self.seed, lo=0, hi=2**63 - 1)
        for name in ("log_every", "sample_every", "save_every", "eval_every"):
            _check_int(name, getattr(self, name), lo=0)
        _check_int("keep_checkpoints", self.keep_checkpoints, lo=1, hi=1000)
        _check_int("eval_num", self.eval_num, lo=10, hi=100000)
        _check_float("lr", self.lr, lo=0, hi=1, lo_open=True)
        _check_float("beta1", self.beta1, lo=0, hi=1, hi_open=True)
        _check_float("beta2", self.beta2, lo=0, hi=1, hi_open=True)
        _check_float("lambda_gp", self.lambda_gp, lo=0, hi=1e6)
        _check_float("clip_value", self.clip_value, lo=0, hi=10, lo_open=True)
        _check_float("class_weight_d", self.class_weight_d, lo=0, hi=1e3)
        _check_float("class_weight_g", self.class_weight_g, lo=0, hi=1e3)
        _check_float("ema", self.ema, lo=0, hi=1, hi_open=True)
        _check_float("lr_decay_from", self.lr_decay_from, lo=0, hi=1)
        if self.max_minutes is not None:
            _check_float("max_minutes", self.max_minutes, lo=0, hi=1e6, lo_open=True)
        if not isinstance(self.critic_warmup, bool):
            raise UserError(f"{flag('critic_warmup')} must be true or false, got {self.critic_warmup!r}")
        self.model  # builds and validates the ModelConfig

    @property
    def model(self) -> ModelConfig:
        return ModelConfig(
            variant=self.variant,
            dataset=self.dataset,
            z_dim=self.z_dim,
            n_classes=10 if self.variant == "acgan" else 0,
            g_width=self.g_width,
            d_width=self.d_width,
            d_norm=self.d_norm,
            g_refine=self.g_refine,
            d_layers=self.d_layers,
        )

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return _from_dict(cls, d, "training config")


def config_fields(cls) -> list[dataclasses.Field]:
    return list(fields(cls))


# --- validation helpers: each raises a UserError naming the CLI flag -----------------------


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise UserError(f"{flag(name)} {value!r} is not one of: {', '.join(choices)}")


def _check_int(name: str, value: Any, lo: Optional[int] = None, hi: Optional[int] = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{flag(name)} must be an integer, got {value!r}")
    if lo is not None and value < lo:
        raise UserError(f"{flag(name)} must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise UserError(f"{flag(name)} must be at most {hi}, got {value}")


def _check_float(name, value, lo, hi, lo_open=False, hi_open=False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{flag(name)} must be a finite number, got {value!r}")
    too_low = value <= lo if lo_open else value < lo
    too_high = value >= hi if hi_open else value > hi
    if too_low or too_high:
        lb, hb = ("(" if lo_open else "["), (")" if hi_open else "]")
        raise UserError(f"{flag(name)} must be in {lb}{lo}, {hi}{hb}, got {value}")


# Fields added to format 1 after it first shipped. A file without them was written when the
# networks had no such stage, so their absence means that older architecture, not today's default.
LEGACY_DEFAULTS = {"g_refine": 0, "d_layers": 2}


def _from_dict(cls, d: dict, what: str):
    if not isinstance(d, dict):
        raise UserError(f"{what} must be a JSON object, got {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    d = {**{k: v for k, v in LEGACY_DEFAULTS.items() if k in names}, **d}
    unknown = sorted(set(d) - names)
    if unknown:
        raise UserError(f"{what} has unknown keys {unknown}; was it written by a newer wgan_app?")
    try:
        return cls(**d)
    except TypeError as e:  # wrong types that slipped past validation
        raise UserError(f"{what} is invalid: {e}") from None
