"""Checks of what people type or send: labels, seeds, counts, iterations, batch sizes.

Every limit the app enforces has one name here, and every check raises a one-line `UserError`
that names the field the way the caller spelled it (`--num` on the CLI, `num` in the API).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .errors import UserError

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit seed
N_DIGITS = 10
MAX_IMAGES_PER_REQUEST = 100  # UI and API: a 10x10 grid is the largest that stays legible
MAX_SAMPLE_NUM = 10_000  # --sample and Sampler.sample: one .npz of that size is 7.8 MB
MIN_EVAL_NUM, MAX_EVAL_NUM = 10, 100_000  # --num for --eval, --eval-num
MAX_WALK_FRAMES = 60
MAX_GRID_COLUMNS = 10
DEFAULT_MAX_ITERS = 5000  # what a UI/API visitor may ask for, unless the server says otherwise
# On a Hugging Face Space (SPACE_ID set): the fast acgan recipe trains about 3,000 steps in five
# minutes on 2 cores (docs/method.md#the-five-minute-default), so a capped run ends at least there.
SPACE_MAX_ITERS = 4000
MAX_UI_BATCH = 512  # a bigger batch only makes the server's one CPU job slower for everyone


def as_int(value: Any, name: str) -> int:
    """A whole number from a flag, form or JSON value (JSON may carry 7.0); refuses bools, text, 7.5."""
    if isinstance(value, bool) or value is None:
        raise UserError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise UserError(f"{name} must be a whole number, got {value!r}")


def as_float(value: Any, name: str) -> float:
    """A finite number from a flag, form or JSON value; refuses bools and text."""
    if isinstance(value, bool):
        raise UserError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise UserError(f"{name} must be a finite number, got {value!r}")
    return out


def in_range(value: int, name: str, lo: int, hi: int) -> int:
    if not lo <= value <= hi:
        raise UserError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def check_seed(seed: Any, name: str = "seed") -> int:
    if seed is None or seed == "":
        raise UserError(f"{name} is required: a whole number from 0 up")
    return in_range(as_int(seed, name), name, 0, MAX_SEED)


def check_num(num: Any, name: str = "number of images", hi: int = MAX_IMAGES_PER_REQUEST) -> int:
    return in_range(as_int(num, name), name, 1, hi)


def check_eval_num(num: Any, name: str = "number of samples (--num, --eval-num)") -> int:
    return in_range(as_int(num, name), name, MIN_EVAL_NUM, MAX_EVAL_NUM)


def parse_label(label: Any, conditional: bool, name: str = "label", n_classes: int = N_DIGITS) -> Optional[int]:
    """A class label from any edge. None, "", "all" and -1 mean "no class" (mixed digits).

    A digit is refused for an unconditional model, which has no class input.
    """
    if label is None or (isinstance(label, str) and label.strip().lower() in ("", "all")):
        return None
    if isinstance(label, str):
        try:
            label = int(label.strip())
        except ValueError:
            raise UserError(f"{name} {label!r} must be a digit 0-{n_classes - 1} or 'all'") from None
    if not isinstance(label, bool) and isinstance(label, (int, float, np.integer, np.floating)) and label == -1:
        return None
    value = as_int(label, name) if not isinstance(label, bool) else None
    if value is None or not 0 <= value < n_classes:
        raise UserError(f"{name} must be a digit 0-{n_classes - 1}, got {label!r}")
    if not conditional:
        raise UserError(f"this model is unconditional: it takes no class label; leave {name} out (or pass -1)")
    return value
