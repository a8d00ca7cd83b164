"""A run's folder on disk, and the only code that reads or writes it (one checkpoint folder's
own format is checkpoint.py's).

    runs/<time>-<variant>-<dataset>/
        config.json                   the TrainConfig, every recipe value filled in
        metrics.jsonl                 one JSON object per logged step or evaluation
        samples/step_NNNNNNN.png      grids from the run's fixed noise
        samples/minute_XX.png         the same grid after XX minutes of training (--grid-minutes)
        checkpoints/step_NNNNNNN/     checkpoint folders (see checkpoint.py), newest kept
        tensorboard/                  optional event files
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Optional

import numpy as np

from .atomic import atomic_write_bytes, atomic_write_json
from .checkpoint import CONFIG_NAME, WEIGHTS_NAME, write_checkpoint_dir
from .errors import UserError
from .images import png_bytes

METRICS_NAME = "metrics.jsonl"
_STEP_DIR = re.compile(r"^step_(\d{7,})$")


# --- the checkpoints/ layout: step folders, rotation, what a kill leaves, run -> checkpoint -----


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



def default_run_dir(variant: str, dataset: str, root: str | Path = "runs") -> Path:
    """runs/<YYYYmmdd-HHMMSS>-<variant>-<dataset>, with -2, -3... if that name is taken."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{stamp}-{variant}-{dataset}"
    path, n = base, 1
    while path.exists():  # two runs started in the same second never share a folder
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def minute_grid_name(minute: float) -> str:
    """minute_05.png for 5 minutes; minute_0.5.png for a fraction (the tests' tiny marks)."""
    return f"minute_{int(minute):02d}.png" if float(minute).is_integer() else f"minute_{minute:g}.png"


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a metrics.jsonl ([] when there is none), skipping a line cut by a hard kill."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_NAME
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


class RunDir:
    """A run directory: `open()` makes a new one or reopens one to resume."""

    def __init__(self, path: str | Path, tensorboard: bool = False):
        self.path = Path(path)
        self._tb_wanted = tensorboard
        self._tb = None

    @classmethod
    def open(cls, path: str | Path, resume: bool, tensorboard: bool = False) -> "RunDir":
        """Refuses to reuse a non-empty folder without `resume`, and to resume a folder that is not a run."""
        path = Path(path)
        if resume:
            if not (path / CONFIG_NAME).is_file():
                raise UserError(f"--resume: {path} is not a run directory (no {CONFIG_NAME}); "
                                "start a new run without --resume")
        elif path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UserError(f"run directory {path} already exists; pass --resume to continue it "
                            "or choose another --run-dir")
        path.mkdir(parents=True, exist_ok=True)
        if resume:
            remove_partial_checkpoints(path)  # a kill mid-write leaves temporary folders behind
        return cls(path, tensorboard)

    # --- config and metrics ---------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        atomic_write_json(self.path / CONFIG_NAME, config)

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_NAME

    def metrics(self) -> list[dict]:
        return read_metrics(self.metrics_path)

    def log(self, row: dict, prefix: str = "") -> None:
        """Append one row {"step": N, ...} to metrics.jsonl (and TensorBoard, when on)."""
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        tb = self._tensorboard()
        if tb is not None:
            for k, v in row.items():
                if k not in ("step", "time") and isinstance(v, (int, float)):
                    tb.add_scalar(k, v, row["step"])

    def truncate_metrics(self, step: int) -> None:
        """On resume, drop rows from steps after the checkpoint (they will be redone)."""
        if not self.metrics_path.exists():
            return
        keep = [json.dumps(r) for r in self.metrics() if r.get("step", 0) <= step]
        atomic_write_bytes(self.metrics_path, ("\n".join(keep) + "\n").encode() if keep else b"")

    # --- samples and checkpoints ----------------------------------------------------------
    def write_sample(self, step: int, image: np.ndarray) -> Path:
        path = self.path / "samples" / f"step_{step:07d}.png"
        atomic_write_bytes(path, png_bytes(image))
        return path

    def write_minute_grid(self, minute: float, image: np.ndarray) -> Path:
        path = self.path / "samples" / minute_grid_name(minute)
        atomic_write_bytes(path, png_bytes(image))
        return path

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint folders, oldest first."""
        return list_step_dirs(self.path)

    def latest_checkpoint(self) -> Optional[Path]:
        found = self.checkpoints()
        return found[-1] if found else None

    def save_checkpoint(self, step: int, config: dict, generator_state: dict, training_state: dict,
                        extra_files: Optional[dict[str, bytes]] = None, keep: int = 2) -> Path:
        dest = self.path / "checkpoints" / step_dir_name(step)
        write_checkpoint_dir(dest, config, generator_state, training_state, extra_files=extra_files, overwrite=True)
        rotate_checkpoints(self.path, keep)
        return dest

    # --- TensorBoard (optional) -----------------------------------------------------------
    def _tensorboard(self):
        if self._tb_wanted and self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the CLI warns; training goes on without it
                self._tb_wanted = False
                return None
            self._tb = SummaryWriter(str(self.path / "tensorboard"))
        return self._tb

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
