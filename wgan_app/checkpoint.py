"""Checkpoints: self-describing folders, written atomically, validated on load.

A checkpoint folder (Hugging Face layout, enough to sample):
    config.json          model config (flat) + {"format_version", "step", "ema", "train_config"}
    model.safetensors    generator weights (the averaged generator when EMA is on)
    training_state.pt    optional: critic, raw generator, optimizers, step, RNG states (resume)
A run directory keeps its checkpoints in `checkpoints/step_NNNNNNN/` and a path to a run directory
means its latest complete checkpoint: that layout is rundir.py's. Folders are written under a
temporary name and swapped into place (atomic.py), so a crash never leaves a half-written
checkpoint where a reader looks.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import as_if_created, replace_dir
from .config import ModelConfig, TrainConfig
from .errors import UserError, first_line

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
STATE_NAME = "training_state.pt"


@dataclass
class Checkpoint:
    """A loaded, validated checkpoint: enough to rebuild and run the generator."""

    path: Path
    model: ModelConfig
    generator_state: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)  # step, ema, train_config, metrics...

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))

    def build_generator(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        from .models import Generator

        G = Generator(self.model)
        G.load_state_dict(self.generator_state, strict=True)
        return G.to(device).eval().requires_grad_(False)


# --- writing ------------------------------------------------------------------------------


def checkpoint_config(model: ModelConfig, step: int, ema: bool, train: TrainConfig | None = None,
                      **extra: Any) -> dict:
    cfg = {"model_type": "wgan_app", "format_version": FORMAT_VERSION, **model.to_dict(),
           "step": int(step), "ema": bool(ema)}
    if train is not None:
        cfg["train_config"] = train.to_dict()
    cfg.update(extra)
    return cfg


def write_checkpoint_dir(dest: str | os.PathLike, config: dict, generator_state: dict[str, torch.Tensor],
                         training_state: dict | None = None, extra_files: dict[str, bytes] | None = None,
                         overwrite: bool = False) -> Path:
    """Write a whole checkpoint folder under a temp name, then rename it into place."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and not overwrite:
        raise UserError(f"{dest} already exists; choose another destination or remove it first")
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
    try:
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        state = {k: v.detach().to("cpu").contiguous() for k, v in generator_state.items()}
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        if training_state is not None:
            torch.save(training_state, tmp / STATE_NAME)
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        for p in tmp.iterdir():  # durability before the rename makes it visible
            with open(p, "rb") as f:
                os.fsync(f.fileno())
            as_if_created(p)
        as_if_created(tmp, directory=True)
        if dest.exists():
            replace_dir(tmp, dest)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


# --- reading ------------------------------------------------------------------------------


def read_checkpoint_config(ckpt_dir: Path) -> tuple[ModelConfig, dict]:
    try:
        raw = json.loads((ckpt_dir / CONFIG_NAME).read_text())
    except FileNotFoundError:
        raise UserError(f"{ckpt_dir} has no {CONFIG_NAME}; it is not a wgan_app checkpoint") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{ckpt_dir / CONFIG_NAME} is not valid JSON ({e}); the file is damaged") from None
    if not isinstance(raw, dict) or raw.get("model_type") != "wgan_app":
        raise UserError(f"{ckpt_dir / CONFIG_NAME} does not describe a wgan_app model "
                        "(model_type is not 'wgan_app'); it belongs to another program")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(f"{ckpt_dir} has checkpoint format {version!r}; this wgan_app reads up to "
                        f"{FORMAT_VERSION}: upgrade wgan_app")
    names = {f.name for f in fields(ModelConfig)}
    try:
        model = ModelConfig.from_dict({k: v for k, v in raw.items() if k in names})
    except UserError as e:
        raise UserError(f"{ckpt_dir / CONFIG_NAME}: {e}") from None
    meta = {k: v for k, v in raw.items() if k not in names}
    return model, meta


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load and validate a checkpoint; every problem becomes a one-line UserError."""
    from .models import Generator
    from .rundir import resolve_checkpoint_dir  # rundir builds on this module: imported on use

    ckpt_dir = resolve_checkpoint_dir(path)
    model, meta = read_checkpoint_config(ckpt_dir)
    weights = ckpt_dir / WEIGHTS_NAME
    try:
        state = load_file(str(weights))
    except FileNotFoundError:
        raise UserError(f"{ckpt_dir} has no {WEIGHTS_NAME}") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{weights} is not a readable safetensors file ({first_line(e)}); "
                        "it is truncated or damaged: re-download or re-train it") from None
    expected = Generator(model).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise UserError(f"{weights} does not match its {CONFIG_NAME}: missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]}; the files come from different models")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise UserError(f"{weights}: tensor {k} has shape {tuple(state[k].shape)}, config.json "
                            f"implies {tuple(v.shape)}; the files come from different models")
        if v.is_floating_point() and not torch.isfinite(state[k]).all():
            raise UserError(f"{weights}: tensor {k} holds NaN or inf; this checkpoint is unusable")
    return Checkpoint(path=ckpt_dir, model=model, generator_state=state, meta=meta)


def load_training_state(ckpt_dir: str | os.PathLike) -> dict:
    """The resume state of one of *our* runs. weights_only=True: never unpickle code."""
    import warnings

    p = Path(ckpt_dir) / STATE_NAME
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before refusing them
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{ckpt_dir} has no {STATE_NAME}, so it cannot be resumed "
                        "(it is a sampling-only checkpoint)") from None
    except Exception as e:
        if "Weights only load failed" in str(e):
            raise UserError(f"{p} holds more than tensors (a pickle wgan_app did not write), and loading it could "
                            "run code: refused. Resume from an older checkpoint by deleting this folder") from None
        raise UserError(f"{p} is unreadable ({first_line(e)}); resume from an older checkpoint "
                        "by deleting this folder") from None


def export_zip(ckpt_dir: Path, dest: Path, name: str) -> Path:
    """Zip a checkpoint for sharing: config.json, model.safetensors, samples. Not the resume
    state (critic and optimisers), which is three times larger and only useful on this server."""
    from .rundir import resolve_checkpoint_dir

    ckpt_dir = resolve_checkpoint_dir(ckpt_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(ckpt_dir.iterdir()):
            if p.is_file() and p.name != STATE_NAME and not p.name.startswith("."):
                zf.write(p, f"{name}/{p.name}")
    os.replace(tmp, dest)
    return dest
