"""Checkpoints: self-describing folders, written atomically, validated on load.

A checkpoint folder (Hugging Face layout, enough to sample):
    config.json          model config (flat) + {"format_version", "step", "ema", "train_config"}
    model.safetensors    generator weights (the averaged generator when EMA is on)
    training_state.pt    optional: critic, raw generator, optimizers, step, RNG states (resume)
A run directory keeps its checkpoints in `checkpoints/step_NNNNNNN/`; a path to a run directory
means its latest complete checkpoint. Folders are written under a temporary name and renamed,
so a crash never leaves a half-written checkpoint where a reader looks.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import ModelConfig, TrainConfig
from .errors import UserError, first_line

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
STATE_NAME = "training_state.pt"
_STEP_DIR = re.compile(r"^step_(\d{7,})$")


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


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; done once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _as_if_created(path: Path, directory: bool = False) -> None:
    """mkstemp/mkdtemp make owner-only 0600/0700 entries; give what we publish the modes a
    plain open()/mkdir() would, so checkpoints stay readable by a container's other users."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_UMASK)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then os.replace: all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _as_if_created(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


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
            _as_if_created(p)
        _as_if_created(tmp, directory=True)
        if dest.exists():
            _replace_dir(tmp, dest)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _replace_dir(new: Path, dest: Path) -> None:
    """Put folder `new` where folder `dest` is, so that a reader always finds one of the two.

    Linux swaps the two names in one step (renameat2 with RENAME_EXCHANGE), then the old folder,
    now under the temporary name, is deleted. Elsewhere (or on a file system that cannot swap)
    it takes two renames, and a reader between them finds no `dest`."""
    if not _exchange(new, dest):
        trash = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, trash)
        os.replace(new, dest)
        new = trash
    shutil.rmtree(new, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False where the platform or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # a libc older than glibc 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False  # this file system does not swap: fall back to two renames
    raise OSError(err, os.strerror(err), str(b))


def step_dir_name(step: int) -> str:
    return f"step_{step:07d}"


def list_step_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


_PARTIAL = re.compile(r"^\.step_\d{7,}\.(tmp|old)-")


def remove_partial_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Delete what a kill during `write_checkpoint_dir` leaves in a run's checkpoints/: temporary
    `.step_N.tmp-*` folders (never renamed into place) and `.step_N.old-*` (replaced ones)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    gone = [p for p in root.iterdir() if _PARTIAL.match(p.name) and p.is_dir()]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return gone


def rotate_checkpoints(run_dir: str | os.PathLike, keep: int) -> None:
    for old in list_step_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


# --- reading ------------------------------------------------------------------------------


def resolve_checkpoint_dir(path: str | os.PathLike) -> Path:
    """A checkpoint folder, a run directory (-> its latest checkpoint) or a config/weights file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"checkpoint {str(path)!r} does not exist; pass a checkpoint folder or a run directory")
    if p.is_file():
        if p.name in (CONFIG_NAME, WEIGHTS_NAME):
            p = p.parent
        else:
            raise UserError(f"{str(path)!r} is a file; pass the checkpoint folder that holds "
                            f"{CONFIG_NAME} and {WEIGHTS_NAME}")
    if (p / CONFIG_NAME).exists() and (p / WEIGHTS_NAME).exists():
        return p
    steps = list_step_dirs(p)
    if steps:
        return steps[-1]
    if (p / "checkpoints").is_dir():
        raise UserError(f"run directory {str(path)!r} has no checkpoint yet; train it longer or resume it")
    raise UserError(f"{str(path)!r} is not a wgan_app checkpoint: it needs {CONFIG_NAME} and {WEIGHTS_NAME}")


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