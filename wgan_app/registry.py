"""Which generators the web UI can show, each loaded once (the pictures drawn from them are in
pictures.py).

A model *reference* is what the picker holds and what the API's `model` parameter takes:
    "acgan-mnist"             a folder shipped in checkpoints/
    "runs/<name>"             a run of this server under the runs root (its latest checkpoint)
    "hf://USER/REPO[@REV]"    a Hub repo, fetched by `wgan_app.hub`
    the default's own path    when WGAN_APP_MODEL / --checkpoint names a folder elsewhere
Anything else is refused, so an API caller cannot make the server open arbitrary paths.

Loaded `Sampler`s live in one process-wide LRU cache behind a lock (never in `gr.State`, which
Gradio deep-copies per session). The cache key includes the weights' mtime, so a run that is
resumed or a checkpoint that is replaced is reloaded rather than served stale.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from .checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_checkpoint
from .errors import UserError, first_line
from .rundir import resolve_checkpoint_dir
from .sampler import Sampler

SHIPPED_DEFAULT = "acgan-mnist"
HUB_PREFIX = "hf://"
RUN_PREFIX = "runs/"
MAX_ENTRIES = 256  # validated folders remembered (one per checkpoint version)
MAX_HUB_PATHS = 64  # hf:// refs resolved to local snapshot folders
TRAIN_HINT = ("No trained model is shipped yet. Train one in the **Train** tab, or run "
              "`python app.py --train --variant acgan --iters 2000` and pick its run here.")


@dataclass(frozen=True)
class ModelEntry:
    """One pickable model: `ref` is its stable key, `label` the text a person reads."""

    ref: str
    path: Optional[Path]  # None for hf:// refs until resolved
    label: str
    kind: str  # "shipped" | "run" | "custom" | "hub"
    conditional: Optional[bool] = None  # None: not known before loading (hub)
    step: int = 0


class Registry:
    """Lists the models on disk and hands out cached Samplers by reference. Thread-safe."""

    def __init__(self, checkpoints_dir: str | os.PathLike, runs_dir: str | os.PathLike,
                 default_ref: Optional[str] = None, max_cached: int = 8,
                 active_runs: Callable[[], Iterable[Path]] = lambda: (), hub_policy=None):
        self.checkpoints_dir = Path(checkpoints_dir)
        self.hub_policy = hub_policy  # hub.PullPolicy: which repos visitors may pull, and how large
        self.runs_dir = Path(runs_dir)
        self._explicit_default = default_ref or None
        self._active_runs = active_runs  # runs still training are not offered yet
        self._max_cached = max_cached
        self._lock = threading.Lock()
        self._samplers: OrderedDict[tuple, Sampler] = OrderedDict()
        # Bounded, newest kept: a public server sees endless refs and checkpoint versions.
        self._entries: OrderedDict[tuple, ModelEntry | str] = OrderedDict()  # key -> entry, or why unusable
        self._hub_paths: OrderedDict[str, Path] = OrderedDict()

    # --- listing ----------------------------------------------------------------------------

    def list_models(self) -> list[ModelEntry]:
        """Shipped checkpoints, then this server's runs (newest first), then the default if custom.

        Folders that fail `load_checkpoint` (a classifier, a half-copied folder) are skipped quietly.
        """
        out = [e for p in subdirs(self.checkpoints_dir) if (e := self._entry(p.name, p, "shipped"))]
        active = {Path(p).resolve() for p in self._active_runs()}
        runs = [p for p in subdirs(self.runs_dir) if p.resolve() not in active]
        runs.sort(key=lambda p: p.name, reverse=True)  # names start with a timestamp
        out += [e for p in runs if (e := self._entry(RUN_PREFIX + p.name, p, "run"))]
        d = self._explicit_default
        if d and d not in {e.ref for e in out}:
            if d.startswith(HUB_PREFIX):
                out.append(ModelEntry(d, None, f"{d} (Hub)", "hub"))
            elif (e := self._entry(d, Path(d), "custom")):
                out.append(e)
        return out

    def default_ref(self) -> Optional[str]:
        """WGAN_APP_MODEL / --checkpoint, else the shipped conditional model, else any shipped one."""
        if self._explicit_default:
            return self._explicit_default
        shipped = [p.name for p in subdirs(self.checkpoints_dir) if self._entry(p.name, p, "shipped")]
        if SHIPPED_DEFAULT in shipped:
            return SHIPPED_DEFAULT
        return shipped[0] if shipped else None

    def has_shipped_model(self) -> bool:
        return any(self._entry(p.name, p, "shipped") for p in subdirs(self.checkpoints_dir))

    def _entry(self, ref: str, path: Path, kind: str) -> Optional[ModelEntry]:
        try:
            return self._load_entry(ref, path, kind)
        except UserError:
            return None

    def _load_entry(self, ref: str, path: Path, kind: str) -> ModelEntry:
        """The entry for a folder, validated by `load_checkpoint` once per version of its files."""
        try:
            ckpt_dir = resolve_checkpoint_dir(path)
            key = (ref, _file_key(ckpt_dir))
        except OSError as e:
            raise UserError(f"model {ref!r} cannot be read: {first_line(e)}") from None
        with self._lock:
            cached = self._entries.get(key)
        if cached is None:
            try:
                ckpt = load_checkpoint(ckpt_dir)
            except OSError as e:
                cached = f"model {ref!r} cannot be read: {first_line(e)}"
            except UserError as e:
                cached = str(e)
            else:
                m = ckpt.model
                what = f"{m.variant} on {m.dataset}, step {ckpt.step}"
                label = f"{ref} · your run: {what}" if kind == "run" else f"{ref} · {what}"
                cached = ModelEntry(ref, path, label, kind, m.conditional, ckpt.step)
            with self._lock:
                remember(self._entries, key, cached, MAX_ENTRIES)
        if isinstance(cached, str):
            raise UserError(cached)
        return cached

    # --- loading ----------------------------------------------------------------------------

    def entry(self, ref: Optional[str]) -> ModelEntry:
        """The model behind `ref` (None or "" = the default); UserError saying why if unusable."""
        ref = (ref or "").strip() or self.default_ref()
        if ref is None:
            raise UserError("no model is available yet: " + TRAIN_HINT.replace("**", ""))
        if ref.startswith(HUB_PREFIX):
            return ModelEntry(ref, None, f"{ref} (Hub)", "hub")
        if ref == self._explicit_default:
            return self._load_entry(ref, Path(ref), "custom")
        name = ref[len(RUN_PREFIX):] if ref.startswith(RUN_PREFIX) else ref
        if _plain_name(name):  # never a path: "../x" or "/etc" are not model names
            root, kind = (self.runs_dir, "run") if ref.startswith(RUN_PREFIX) else (self.checkpoints_dir, "shipped")
            folder = root / name
            active = {Path(p).resolve() for p in self._active_runs()}
            if folder.is_dir() and folder.resolve() in active:
                raise UserError(f"{ref} is still training; pick it once it has finished or been stopped")
            if folder.is_dir():
                return self._load_entry(ref, folder, kind)
        names = ", ".join(e.ref for e in self.list_models()[:8]) or "none yet"
        raise UserError(f"unknown model {ref!r}; choose one of: {names} (or hf://USER/REPO)")

    def sampler(self, ref: Optional[str]) -> tuple[Sampler, ModelEntry]:
        """A loaded, cached Sampler for `ref`. Loading twice the same weights never happens."""
        entry = self.entry(ref)
        path = entry.path if entry.path is not None else self._resolve_hub(entry.ref)
        ckpt_dir = resolve_checkpoint_dir(path)
        key = (str(ckpt_dir.resolve()), _file_key(ckpt_dir))
        with self._lock:
            if key in self._samplers:
                self._samplers.move_to_end(key)
                s = self._samplers[key]
                return s, _with_model(entry, s)
            s = Sampler.load(ckpt_dir)  # under the lock: two first requests load it once
            self._samplers[key] = s
            while len(self._samplers) > self._max_cached:
                self._samplers.popitem(last=False)
        return s, _with_model(entry, s)

    def _resolve_hub(self, ref: str) -> Path:
        with self._lock:
            if ref in self._hub_paths:
                return self._hub_paths[ref]
        try:
            from .hub import resolve_hub_checkpoint
        except ImportError:
            raise UserError("Hub models are not available in this build (wgan_app.hub is missing)") from None
        try:
            # The operator's own default model is theirs to choose; the policy is for visitors' refs.
            visitor = self.hub_policy is not None and ref != self._explicit_default
            path = Path(resolve_hub_checkpoint(ref, policy=self.hub_policy) if visitor
                        else resolve_hub_checkpoint(ref))
        except UserError:
            raise
        except Exception as e:  # network, auth, missing repo: all one line for the person
            raise UserError(f"could not fetch {ref}: {first_line(e)}") from None
        with self._lock:
            remember(self._hub_paths, ref, path, MAX_HUB_PATHS)
        return path


def remember(cache: OrderedDict, key, value, limit: int) -> list:
    """cache[key] = value as the newest entry, dropping the oldest beyond `limit`; returns the dropped values."""
    cache[key] = value
    cache.move_to_end(key)
    dropped = []
    while len(cache) > limit:
        dropped.append(cache.popitem(last=False)[1])
    return dropped


def subdirs(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name \
        and not name.startswith(".")


def _file_key(ckpt_dir: Path) -> tuple:
    """Changes whenever the checkpoint's files are replaced."""
    return tuple((ckpt_dir / n).stat().st_mtime_ns for n in (CONFIG_NAME, WEIGHTS_NAME))


def _with_model(entry: ModelEntry, s: Sampler) -> ModelEntry:
    if entry.conditional is not None:
        return entry
    return ModelEntry(entry.ref, entry.path, entry.label, entry.kind, s.conditional, s.ckpt.step)
