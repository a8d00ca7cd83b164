"""The Train form and /train_start: their fields -> a validated TrainConfig. Blank lr / n_critic
mean the recipe's; numbers typed as text are read; TrainConfig's messages name the fields as the
form and the API spell them (`lr`, not `--lr`)."""

from __future__ import annotations

import re

from .config import DATASETS, TrainConfig, flag
from .errors import UserError
from .objectives import RECIPES, VARIANTS
from .rundir import default_run_dir
from .validation import MAX_UI_BATCH, as_float, as_int

EVAL_NUM = 500  # samples per evaluation in UI runs: about 1 s on a 2-core CPU
# Stacked MNIST counts modes of 1,000, which 500 samples cannot show: a tenth of the papers' 26,000
# (each channel classified: about 2 s on a 2-core CPU)
STACKED_EVAL_NUM = 2600
SAMPLE_EVERY = 100  # steps between the live view's sample grids: about 10 s of the fast recipe on 2 cores


def config_from_form(variant="acgan", dataset="mnist", iters=2000, batch_size=64, lr=None, n_critic=None,
                     lambda_gp=10.0, clip_value=0.01, seed=0, eval_every=0, recipe="fast", g_arch="dcgan", *,
                     max_iters: int, data_dir, runs_dir) -> TrainConfig:
    """The UI/API form -> a validated TrainConfig. Blank lr / n_critic = the recipe's."""
    if recipe not in RECIPES:
        raise UserError(f"recipe {recipe!r} is not one of: {', '.join(RECIPES)}")
    if variant not in VARIANTS:
        raise UserError(f"variant {variant!r} is not one of: {', '.join(VARIANTS)}")
    if dataset not in DATASETS:
        raise UserError(f"dataset {dataset!r} is not one of: {', '.join(DATASETS)}")
    iters = as_int(iters, "iterations")
    if not 1 <= iters <= max_iters:
        raise UserError(f"iterations must be between 1 and {max_iters} on this server, got {iters}")
    batch_size = as_int(batch_size, "batch size")
    if not 1 <= batch_size <= MAX_UI_BATCH:
        raise UserError(f"batch size must be between 1 and {MAX_UI_BATCH}, got {batch_size}")
    kw = dict(variant=variant, dataset=dataset, iters=iters, batch_size=batch_size, recipe=recipe, g_arch=g_arch,
              seed=as_int(seed, "seed"), data_dir=str(data_dir),
              # a plot point every step or two; a sample grid at least every SAMPLE_EVERY steps (each one
              # re-measures the averaged generator's batch norm: at every 25 steps that was 12 % of the
              # run's time, bench_train_page.py); a checkpoint every 500 so a hard kill loses little
              log_every=max(1, iters // 1000), sample_every=max(1, min(iters // 25, SAMPLE_EVERY)), save_every=500,
              eval_every=as_int(form_number(_blank_to_none(eval_every) or 0), "quality evaluation interval"),
              eval_num=STACKED_EVAL_NUM if dataset == "stacked-mnist" else EVAL_NUM)
    lr, n_critic = _blank_to_none(lr), _blank_to_none(n_critic)
    if lr is not None:
        kw["lr"] = as_float(lr, "learning rate")
    if n_critic is not None:
        kw["n_critic"] = as_int(form_number(n_critic), "n_critic")
    if lambda_gp not in (None, ""):
        kw["lambda_gp"] = as_float(lambda_gp, "λ (gradient penalty weight)")
    if clip_value not in (None, ""):
        kw["clip_value"] = as_float(clip_value, "clip value")
    try:
        cfg = TrainConfig(**kw)  # validates ranges, raising UserError naming the field...
    except UserError as e:  # ...as the CLI spells it: the form and the API say `lr`, not `--lr`
        raise UserError(api_names(str(e), FORM_FIELDS)) from None
    return cfg.replace(run_dir=str(default_run_dir(cfg.variant, cfg.dataset, root=runs_dir)))


FORM_FIELDS = ("variant", "dataset", "iters", "batch_size", "lr", "n_critic", "lambda_gp", "clip_value", "seed",
               "eval_every", "recipe", "g_arch")  # /train_start's parameters


def api_names(message: str, names: tuple[str, ...]) -> str:
    """'--n-critic must be at least 1' -> 'n_critic must be at least 1' for the given field names."""
    for name in names:
        message = re.sub(rf"{re.escape(flag(name))}(?![\w-])", name, message)
    return message


def _blank_to_none(value):
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def form_number(value):
    """Form text "5" -> 5 (and "5.5" -> 5.5, left for the caller to refuse); numbers unchanged."""
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value
