"""Typed run configuration: the single source for CLI flags, the UI form and config.json files.

`ModelConfig` is what is needed to *build* the networks (it travels with every checkpoint);
`TrainConfig` composes one and adds the optimisation recipe. Both are frozen and always
complete: a setting left at None takes its value from the run's recipe (`recipe`: "fast", the
best quality per CPU-minute measured here, or "paper", each method's published recipe; see
objectives.py) when the config is constructed. The config remembers which fields the recipe
filled, so `replace(variant=..., recipe=...)` re-derives them instead of carrying the old
variant's recipe over, while whatever the person set explicitly stays. Validation raises
`UserError` naming the field the way the CLI spells it. Each
field's help text sits beside it (`metadata["help"]`); the CLI and the UI read it from there.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from .errors import UserError
from .objectives import CONSTRAINTS, RECIPE_KEYS, RECIPES, VARIANTS, objective_class
from .validation import MAX_SEED, N_DIGITS

DATASETS = ("mnist", "fashion-mnist", "stacked-mnist")
# Stacked MNIST (data.py) puts three MNIST digits in the three channels of one image: 1,000 modes,
# the literature's mode-collapse test on digits. The others are grey.
CHANNELS = {"mnist": 1, "fashion-mnist": 1, "stacked-mnist": 3}
UNCONDITIONAL_ONLY = ("stacked-mnist",)  # its "class" is one of 1,000 modes, not a digit to ask for
UNTIL_TIME_LIMIT = 10**9  # iters of a run that only --max-minutes ends (the CLI's default then)
DEVICES = ("auto", "cpu", "cuda")
NORMS = ("none", "batch")
# Generator architectures (models.py): the three settings of the WGAN paper's section 4.3.
G_ARCHS = {"dcgan": "DCGAN generator with batch norm",
           "dcgan-nobn": "DCGAN generator without batch norm, constant filters",
           "mlp": "MLP generator, 4 x 512 ReLU"}
MAX_GRID_MARKS = 100  # --grid-minutes: a grid is ~50 kB, so a run's minute grids stay a few MB at most


def flag(name: str) -> str:
    """The CLI spelling of a config field: `n_critic` -> `--n-critic`."""
    return "--" + name.replace("_", "-")


def _f(default: Any, help: str, **kw) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the generator (and critic) of a checkpoint."""

    variant: str = _f("acgan", "what to train: " + "; ".join(f"{c.variant} = {c.title.split(': ', 1)[-1]}"
                                                              for c in VARIANTS.values()), choices=tuple(VARIANTS))
    dataset: str = _f("mnist", "the training images", choices=DATASETS)
    z_dim: int = _f(64, "latent size")
    n_classes: int = _f(10, "0 = unconditional (only acgan is class-conditional)", cli=False)
    g_arch: str = _f("dcgan", "generator architecture: dcgan = batch norm, channels doubling; dcgan-nobn = no batch "
                              "norm, constant channels; mlp = 4 x 512 ReLU", choices=tuple(G_ARCHS))
    g_width: int = _f(64, "generator width (channels at 14x14; 2x that at 7x7 for dcgan; unused by mlp)")
    d_width: int = _f(64, "critic width (channels at 14x14; 2x that at 7x7)")
    d_norm: str = _f("none", "critic normalisation (batch is refused with the gradient penalty)", choices=NORMS)
    g_refine: int = _f(32, "channels of an extra 28x28 generator stage before the pixels (0 = none)")
    d_layers: int = _f(3, "strided critic convolutions: 2 (to 7x7) or 3 (to 4x4 at 4x the width)")
    image_size: int = _f(28, "image side", cli=False)
    channels: Optional[int] = _f(None, "image channels (follows from the dataset)", cli=False)

    def __post_init__(self):
        _check_choice("variant", self.variant, tuple(VARIANTS))
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("d_norm", self.d_norm, NORMS)
        _check_choice("g_arch", self.g_arch, tuple(G_ARCHS))
        for name in ("z_dim", "g_width", "d_width"):
            _check_int(name, getattr(self, name), lo=1, hi=4096)
        _check_int("n_classes", self.n_classes, lo=0, hi=1000)
        _check_int("g_refine", self.g_refine, lo=0, hi=4096)
        _check_int("d_layers", self.d_layers, lo=2, hi=3)
        if objective_class(self.variant).conditional != (self.n_classes > 0):
            raise UserError(
                f"variant {self.variant!r} with n_classes={self.n_classes}: only 'acgan' is "
                "class-conditional (n_classes > 0); the other variants need n_classes = 0"
            )
        if self.channels is None:
            object.__setattr__(self, "channels", CHANNELS[self.dataset])  # frozen: filled once, here
        if (self.image_size, self.channels) != (28, CHANNELS[self.dataset]):
            raise UserError(
                f"image_size={self.image_size}, channels={self.channels}: {self.dataset} images are 28x28 with "
                f"{CHANNELS[self.dataset]} channel(s)"
            )
        if self.dataset in UNCONDITIONAL_ONLY and self.n_classes:
            raise UserError(f"--dataset {self.dataset} has 1,000 modes rather than 10 classes to ask for: train it "
                            "with --variant gan, wgan or wgan-gp")

    @property
    def conditional(self) -> bool:
        return self.n_classes > 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return _from_dict(cls, d, "model config")


# ModelConfig fields a TrainConfig takes flat (TrainConfig(variant="wgan", g_width=32)); n_classes
# follows from the variant, image_size and channels are fixed.
MODEL_KNOBS = tuple(f.name for f in fields(ModelConfig) if f.metadata.get("cli", True))


@dataclass(frozen=True, init=False)
class TrainConfig:
    """A training run: a ModelConfig (`model`) plus the recipe. Recipe fields left None take the
    value of the run's recipe (fast or paper). Construct it flat: `TrainConfig(variant="wgan",
    g_width=32, lr=1e-4)`; the model's fields are also readable flat (`cfg.variant`, `cfg.z_dim`)."""

    model: ModelConfig
    recipe: str = _f("fast", "fast = best quality per CPU-minute measured here; paper = each method's published "
                             "recipe; a setting you give explicitly overrides the recipe's", choices=RECIPES)
    data_dir: str = _f("data", "folder holding MNIST/raw or FashionMNIST/raw (downloaded there on first use "
                               "when online)")
    constraint: Optional[str] = _f(None, "Lipschitz constraint: gp = gradient penalty, clip = weight clipping, "
                                         "none (gan); acgan takes gp or clip (default gp)", choices=CONSTRAINTS)
    iters: int = _f(4000, "generator steps to train to (with --resume: the new total; with --max-minutes and no "
                          "--iters: no step limit)")
    batch_size: Optional[int] = _f(None, "images per critic and generator step")
    optimizer: Optional[str] = _f(None, "the update rule of both players", choices=("adam", "rmsprop"))
    lr: Optional[float] = _f(None, "learning rate of both players")
    beta1: Optional[float] = _f(None, "Adam beta1")
    beta2: Optional[float] = _f(None, "Adam beta2")
    n_critic: Optional[int] = _f(None, "critic steps per generator step")
    critic_warmup: Optional[bool] = _f(None, "100 critic steps for the first 25 generator steps and every 500th")
    lambda_gp: float = _f(10.0, "gradient penalty weight lambda")
    clip_value: float = _f(0.01, "weight clipping bound c")
    class_weight_d: Optional[float] = _f(None, "weight of the critic's class loss on real images (acgan)")
    class_weight_g: Optional[float] = _f(None, "weight of the generator's class loss on its samples (acgan)")
    lr_decay_from: Optional[float] = _f(None, "fraction of --iters after which the learning rates fall linearly "
                                              "to 0 (1 = constant)")
    ema: Optional[float] = _f(None, "decay of the averaged generator used for samples and checkpoints (0 = off)")
    seed: int = _f(0, "random seed (training: init, data order, noise; sampling: the latents)")
    device: str = _f("auto", "where to train (auto: CUDA when present)", choices=DEVICES)
    amp: bool = _f(False, "bf16 autocast on CUDA (the gradient penalty stays fp32)")
    deterministic: bool = _f(True, "on CUDA, deterministic kernels, so a run and its resumes are bit-exact "
                                   "(--no-deterministic: a little faster, runs differ in the last bits)")
    max_minutes: Optional[float] = _f(None, "stop cleanly, with a checkpoint, after this many minutes")
    log_every: int = _f(10, "log running averages to metrics.jsonl every N steps")
    sample_every: int = _f(250, "save a sample grid from fixed noise every N steps (0 = only at the end)")
    save_every: int = _f(500, "write a checkpoint every N steps (0 = only at the end)")
    keep_checkpoints: int = _f(2, "how many recent checkpoints a run keeps")
    eval_every: int = _f(0, "compute quality metrics every N steps (0 = off)")
    eval_minutes: float = _f(0.0, "also compute them after every N minutes of training (0 = off); runs of "
                                  "different speeds then share one time axis")
    eval_num: int = _f(1000, "samples per quality evaluation")
    grid_minutes: Optional[str] = _f(None, "comma-separated minutes of training (e.g. 1,2,5,10,20) after which "
                                           "the fixed-noise grid is saved as samples/minute_XX.png")
    tensorboard: bool = _f(False, "also write TensorBoard event files (needs the tensorboard package)")
    run_dir: Optional[str] = _f(None, "run directory (default runs/<time>-<variant>-<dataset>)")

    def __init__(self, model: Optional[ModelConfig] = None, **kw):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        base = {k: v for k, v in (model.to_dict() if model else {}).items() if k in MODEL_KNOBS}
        knobs = {**base, **{k: kw.pop(k) for k in MODEL_KNOBS if k in kw}}
        variant = knobs.get("variant", "acgan")
        _check_choice("variant", variant, tuple(VARIANTS))
        obj = objective_class(variant)
        for f in fields(self):
            if f.name != "model":
                set_(f.name, kw.pop(f.name, f.default))
        if kw:
            raise TypeError(f"TrainConfig got unknown settings {sorted(kw)}")
        _check_choice("recipe", self.recipe, RECIPES)
        if self.constraint is not None:
            _check_choice("constraint", self.constraint, CONSTRAINTS)
            if self.constraint not in obj.constraints():
                raise UserError(f"{flag('constraint')} {self.constraint} does not apply to --variant "
                                f"{variant}; use {' or '.join(obj.constraints())}")
        # Fill what was left to the recipe, and remember it (see `replace`).
        filled = set() if self.constraint is not None else {"constraint"}
        set_("constraint", self.constraint or obj.constraint)
        for k, v in obj.recipe_for(self.constraint, self.recipe).items():
            current = knobs.get(k) if k in MODEL_KNOBS else getattr(self, k)
            if current is None:
                filled.add(k)
                if k in MODEL_KNOBS:
                    knobs[k] = v
                else:
                    set_(k, v)
        set_("model", ModelConfig(**knobs, n_classes=N_DIGITS if obj.conditional else 0))
        set_("_recipe_filled", frozenset(filled))
        self._validate()

    def __getattr__(self, name: str) -> Any:  # flat reads of the model's fields: cfg.variant, cfg.z_dim
        if name in MODEL_KNOBS:
            return getattr(self.model, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def objective(self):
        """The objective class of this variant (what it is; `objectives.build_objective` makes one)."""
        return objective_class(self.variant)

    @property
    def grid_marks(self) -> tuple[float, ...]:
        """--grid-minutes as increasing minutes: "1,2,5" -> (1.0, 2.0, 5.0); () when unset."""
        if self.grid_minutes is None:
            return ()
        text = self.grid_minutes
        try:
            marks = tuple(float(m) for m in str(text).split(",") if m.strip())
        except ValueError:
            raise UserError(f"--grid-minutes {text!r} must be minutes separated by commas, e.g. 1,2,5,10,20") from None
        if not marks or any(not math.isfinite(m) or m <= 0 for m in marks) or list(marks) != sorted(set(marks)):
            raise UserError(f"--grid-minutes {text!r} must be positive minutes in increasing order, e.g. 1,2,5,10,20")
        if len(marks) > MAX_GRID_MARKS:
            raise UserError(f"--grid-minutes {text!r} has {len(marks)} marks; at most {MAX_GRID_MARKS}")
        return marks

    def replace(self, **changes) -> "TrainConfig":
        """A copy with `changes`. Changing the variant, constraint or recipe re-derives what came
        from the old recipe, so `TrainConfig(variant="wgan").replace(variant="wgan-gp")` is a
        WGAN-GP config (Adam, no critic batch norm), not the clipping recipe under another name."""
        flat = self.to_flat()
        rederive = any(k in changes and changes[k] != getattr(self, k) for k in ("variant", "constraint", "recipe"))
        if rederive:
            flat.update({k: None for k in self._recipe_filled})
        out = TrainConfig(**{**flat, **changes})
        if not rederive:  # fields still equal to the recipe's defaults stay re-derivable
            object.__setattr__(out, "_recipe_filled", out._recipe_filled | (self._recipe_filled - set(changes)))
        return out

    def to_flat(self) -> dict:
        """Every setting by name, the model's knobs first: TrainConfig(**cfg.to_flat()) == cfg."""
        return {**{k: getattr(self.model, k) for k in MODEL_KNOBS},
                **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}}

    def to_dict(self) -> dict:
        """config.json's form: flat, as wgan_app has always written it."""
        return self.to_flat()

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if isinstance(d, dict) and isinstance(d.get("model"), dict):  # a nested form is accepted too
            d = {**{k: v for k, v in d["model"].items() if k in MODEL_KNOBS}, **{k: v for k, v in d.items()
                                                                               if k != "model"}}
        return _from_dict(cls, d, "training config", names=set(MODEL_KNOBS) | {f.name for f in fields(cls)})

    def _validate(self) -> None:
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("optimizer", self.optimizer, ("adam", "rmsprop"))
        _check_choice("device", self.device, DEVICES)
        if self.constraint == "gp" and self.d_norm == "batch":
            raise UserError(
                "--d-norm batch cannot be used with the gradient penalty (it makes the critic's "
                "gradient depend on the whole batch); use --d-norm none"
            )
        _check_int("iters", self.iters, lo=1)
        _check_int("batch_size", self.batch_size, lo=1, hi=65536)
        _check_int("n_critic", self.n_critic, lo=1, hi=1000)
        _check_int("seed", self.seed, lo=0, hi=MAX_SEED)
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
        _check_float("eval_minutes", self.eval_minutes, lo=0, hi=1e6)
        if self.max_minutes is not None:
            _check_float("max_minutes", self.max_minutes, lo=0, hi=1e6, lo_open=True)
        self.grid_marks  # parses and checks --grid-minutes
        for name in ("critic_warmup", "amp", "deterministic", "tensorboard"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise UserError(f"{flag(name)} must be true or false, got {value!r}")
        for name in ("data_dir", "run_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise UserError(f"{flag(name)} must be a path, got {value!r}")


def config_fields(cls) -> list[dataclasses.Field]:
    return list(fields(cls))


def train_flags() -> list[tuple[str, type, str, Optional[tuple]]]:
    """(field name, value type, help, choices or None) of every TrainConfig setting, model knobs
    first: the CLI's flags.
    The help ends with the default: the field's own, or "the recipe's" for what a recipe decides."""
    import typing

    out = []
    for cls, names in ((ModelConfig, MODEL_KNOBS), (TrainConfig, None)):
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if (names is not None and f.name not in names) or f.name == "model":
                continue
            args = [a for a in typing.get_args(hints[f.name]) if a is not type(None)]
            if f.name in RECIPE_KEYS:
                default = "from --recipe"
            elif f.default is None or f.default is False:
                default = None
            else:
                default = f.default
            text = f.metadata.get("help", "") + (f" (default: {default})" if default is not None else "")
            out.append((f.name, args[0] if args else hints[f.name], text, f.metadata.get("choices")))
    return out


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


# Fields added to format 1 after it first shipped. A file without them was written before they
# existed: without g_refine / d_layers the networks had no such stage, without `recipe` the
# only recipe was the papers', and without `g_arch` the only generator was the DCGAN. Their
# absence means that, not today's default.
LEGACY_DEFAULTS = {"g_refine": 0, "d_layers": 2, "recipe": "paper", "g_arch": "dcgan"}


def _from_dict(cls, d: dict, what: str, names: Optional[set] = None):
    if not isinstance(d, dict):
        raise UserError(f"{what} must be a JSON object, got {type(d).__name__}")
    names = names if names is not None else {f.name for f in fields(cls)}
    d = {**{k: v for k, v in LEGACY_DEFAULTS.items() if k in names}, **d}
    unknown = sorted(set(d) - names)
    if unknown:
        raise UserError(f"{what} has unknown keys {unknown}; was it written by a newer wgan_app?")
    try:
        return cls(**d)
    except TypeError as e:  # wrong types that slipped past validation
        raise UserError(f"{what} is invalid: {e}") from None


def fast_changes(variant: str, constraint: Optional[str] = None) -> str:
    """What --recipe fast changes from the paper's recipe for `variant`, in one line:
    'lr 5e-05 -> 0.001, n_critic 5 -> 1, ...' (read from the recipes, so it cannot drift)."""
    obj = objective_class(variant)
    constraint = constraint or obj.constraint
    paper, fast = obj.recipe_for(constraint, "paper"), obj.recipe_for(constraint, "fast")
    out = [f"{k} {paper.get(k)!s} -> {fast[k]!s}" for k in fast if paper.get(k) != fast[k]]
    return ", ".join(out) if out else "nothing"


def recipes_table(keys: tuple[str, ...] = ("lr", "n_critic", "optimizer", "batch_size", "g_width", "d_width",
                                           "d_layers", "g_refine", "class_weight_g", "ema")) -> str:
    """What --recipe fast and paper resolve to for each variant, one line each (for --help and docs/method.md)."""
    lines = []
    for name in VARIANTS:
        for recipe in RECIPES:
            cfg = TrainConfig(variant=name, recipe=recipe)
            lines.append(f"  {name:8s} {recipe:6s} " + " ".join(f"{k}={getattr(cfg, k)}" for k in keys))
    return "\n".join(lines)
