"""What the web UI and its API do, without Gradio: plain functions of one `Services` object.

`Services` owns the app's state (the training `JobManager`, the model `Registry`, the `Outbox`
of files handed out, the model-zip cache); the functions below take it first, raise `UserError`
for anything a person or client got wrong, and return plain data (uint8 arrays, dicts, paths).
The Gradio tabs and endpoints are thin wrappers around them, and tests call them directly.
Importing this module loads nothing and never imports Gradio.
"""

from __future__ import annotations

import functools
import html
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..admission import use_threads
from ..checkpoint import export_zip
from ..config import fast_changes
from ..data import DOWNLOAD_MB, dataset_on_disk
from ..errors import UserError
from ..jobs import JobManager, human_duration
from ..paths import SHIPPED
from ..pictures import class_grid, digits, latent_walk
from ..registry import RUN_PREFIX, ModelEntry, Registry, remember, subdirs
from ..rundir import remove_partial_checkpoints
from ..sampler import Sampler
from ..validation import DEFAULT_MAX_ITERS, SPACE_MAX_ITERS, as_int, check_num, check_seed, parse_label

MAX_ZIPS = 16  # exported model zips kept for download (each about the size of its weights)
MAX_MODEL_REF = 512  # longer than any file name plus "runs/" or a Hub repo id: refused before any lookup


@dataclass(frozen=True)
class Settings:
    """Where the app finds models and data, from flags, then env vars, then defaults."""

    checkpoints_dir: Path = SHIPPED
    runs_dir: Path = Path("runs")
    data_dir: Path = Path("data")
    default_model: Optional[str] = None
    max_train_iters: int = DEFAULT_MAX_ITERS
    hub_allow: tuple[str, ...] = ()  # fnmatch patterns of repo ids visitors may load; () = any
    hub_max_mb: float = 100.0  # largest Hub download a visitor can cause
    push_namespace: Optional[str] = None  # the Train tab's "Push to Hub" only when set, only into it

    @classmethod
    def from_env(cls, args=None) -> "Settings":
        env = os.environ
        arg = lambda name: getattr(args, name, None) if args is not None else None  # noqa: E731
        # On a Hugging Face Space (SPACE_ID is set there) visitors share one small CPU: a lower cap.
        default_cap = SPACE_MAX_ITERS if env.get("SPACE_ID") else DEFAULT_MAX_ITERS
        max_iters = next((v for v in (arg("max_train_iters"), env.get("WGAN_APP_MAX_ITERS")) if v is not None),
                         default_cap)  # an explicit 0 is refused below, not read as "unset"
        try:
            max_iters = int(max_iters)
        except ValueError:
            raise UserError(f"WGAN_APP_MAX_ITERS={max_iters!r} must be a whole number") from None
        if max_iters < 1:
            raise UserError(f"--max-train-iters must be at least 1, got {max_iters}")
        try:
            hub_max_mb = float(env.get("WGAN_APP_HUB_MAX_MB") or 100)
        except ValueError:
            raise UserError(f"WGAN_APP_HUB_MAX_MB={env['WGAN_APP_HUB_MAX_MB']!r} must be a number of MB") from None
        if not hub_max_mb > 0:
            raise UserError(f"WGAN_APP_HUB_MAX_MB must be above 0, got {hub_max_mb:g}")
        namespace = (env.get("WGAN_APP_PUSH_NAMESPACE") or "").strip() or None
        if namespace is not None and not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?", namespace):
            raise UserError(f"WGAN_APP_PUSH_NAMESPACE={namespace!r} must be one Hub user or organisation name")
        return cls(
            hub_allow=tuple(p.strip() for p in (env.get("WGAN_APP_HUB_ALLOW") or "").split(",") if p.strip()),
            hub_max_mb=hub_max_mb, push_namespace=namespace,
            checkpoints_dir=Path(env.get("WGAN_APP_CHECKPOINTS") or SHIPPED),
            runs_dir=Path(env.get("WGAN_APP_RUNS_DIR") or "runs"),
            data_dir=Path(arg("data_dir") or env.get("WGAN_APP_DATA_DIR") or "data"),
            default_model=arg("checkpoint") or env.get("WGAN_APP_MODEL") or None,
            max_train_iters=max_iters,
        )


class Outbox:
    """Files handed to Gradio (downloads, GIFs), unique per request: pruned after an hour, and
    beyond `max_files` the oldest go first (a flood of requests cannot fill the disk)."""

    def __init__(self, max_age_s: float = 3600, max_files: int = 512):
        self.dir = Path(tempfile.mkdtemp(prefix="wgan_app-ui-"))
        self.max_age_s = max_age_s
        self.max_files = max_files
        self._n = 0
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        with self._lock:
            self._n += 1
            sub = self.dir / f"{time.time_ns()}-{self._n}"
        self._prune()
        sub.mkdir()
        return sub / name

    def write(self, name: str, data: bytes) -> str:
        p = self.path(name)
        p.write_bytes(data)
        return str(p)

    def _prune(self) -> None:
        cutoff = time.time() - self.max_age_s
        dirs = sorted(self.dir.iterdir(), key=_made_at)  # oldest first
        surplus = len(dirs) - (self.max_files - 1)  # room for the one being made
        for i, d in enumerate(dirs):
            try:
                if i < surplus or d.stat().st_mtime < cutoff:
                    for f in d.iterdir():
                        f.unlink()
                    d.rmdir()
            except OSError:
                pass  # another request pruned it first


def _made_at(d: Path) -> tuple[int, int]:
    """(time_ns, counter) from an Outbox folder's name "<time_ns>-<counter>"."""
    made, _, n = d.name.partition("-")
    return (int(made), int(n)) if made.isdigit() and n.isdigit() else (0, 0)


class Services:
    """The app's state, built once per `build_demo`. Nothing is loaded until a request asks."""

    def __init__(self, settings: Settings, build_trainer=None):
        self.settings = settings
        self.jobs = JobManager(settings.runs_dir, settings.data_dir, settings.max_train_iters,
                               build_trainer=build_trainer)
        self.registry = Registry(settings.checkpoints_dir, settings.runs_dir, settings.default_model,
                                 active_runs=self.jobs.active_run_dirs, hub_policy=_pull_policy(settings))
        self.outbox = Outbox()
        self.zips: OrderedDict[tuple, str] = OrderedDict()  # (checkpoint folder, mtime) -> its .zip, newest last
        # No job runs yet: whatever temporary checkpoint folder a run dir holds was left by a kill.
        for run in subdirs(settings.runs_dir):
            remove_partial_checkpoints(run)

    def sampler(self, model: Optional[str]) -> tuple[Sampler, ModelEntry]:
        """The registry's cached Sampler for `model`; every failure is a one-line UserError."""
        if isinstance(model, str) and len(model) > MAX_MODEL_REF:
            raise UserError(f"unknown model {_short(model)!r}: a model name has at most {MAX_MODEL_REF} "
                            f"characters, this one has {len(model)}")
        try:
            return self.registry.sampler(model)
        except OSError as e:  # a name the file system refuses (too long, bad bytes), a folder gone mid-read
            raise UserError(f"model {_short(model)!r} cannot be read: {e.strerror or type(e).__name__}") from None

    def model_choices(self) -> list[tuple[str, str]]:
        """(label, ref) pairs for the model picker."""
        return [(e.label, e.ref) for e in self.registry.list_models()]


# --- the API: /generate, /models, /train_start, /train_status, /train_stop ---------------------


def foreground(fn):
    """A visitor waits for this call: it goes ahead of the training thread (admission.Foreground) and
    is refused with a one-line "busy" error when too many are already in flight."""
    @functools.wraps(fn)
    def wrapper(svc: Services, *args, **kwargs):
        with svc.jobs.foreground.request():
            use_threads()  # the process's torch threads, whatever this worker thread last had
            return fn(svc, *args, **kwargs)

    return wrapper


@foreground
def generate(svc: Services, model: Optional[str], label, seed, num) -> np.ndarray:
    """(H, W) uint8: a single 28x28 digit for num=1, else a grid of 10 per row."""
    sampler, entry = svc.sampler(model)
    lab = parse_label(label, bool(entry.conditional))  # a digit for an unconditional model is refused
    return digits(sampler, lab, check_seed(seed), check_num(num))


def list_models(svc: Services) -> list[dict]:
    """The models /generate accepts: shipped ones, finished runs of this server, the default."""
    default = svc.registry.default_ref()
    return [{"model": e.ref, "label": e.label, "conditional": e.conditional, "step": e.step,
             "default": e.ref == default} for e in svc.registry.list_models()]


def train_start(svc: Services, owner: str, variant, dataset, iters, batch_size, lr, n_critic, lambda_gp,
                clip_value, seed, eval_every, recipe="fast", g_arch="dcgan") -> dict:
    """Start a run (one at a time per server); /train_status's answer for it."""
    cfg = svc.jobs.build_config(variant, dataset, iters, batch_size, lr, n_critic, lambda_gp, clip_value, seed,
                                eval_every, recipe, g_arch)
    return public_status(svc.jobs.start(cfg, owner).snapshot())


def estimate(svc: Services, variant, dataset, iters, batch_size, lr, n_critic, lambda_gp, clip_value, seed,
             eval_every, recipe="fast", g_arch="dcgan") -> str:
    """One line for the form, before Start: what the run will be and how long it should take."""
    cfg = svc.jobs.build_config(variant, dataset, iters, batch_size, lr, n_critic, lambda_gp, clip_value, seed,
                                eval_every, recipe, g_arch)
    rate, source = svc.jobs.expected_rate(cfg)
    text = (f"{cfg.iters} steps of {cfg.variant} with the {cfg.g_arch} generator ({cfg.recipe} recipe: "
            f"lr {cfg.lr:g}, n_critic {cfg.n_critic}, "
            f"batch {cfg.batch_size}): about **{human_duration(cfg.iters / rate)}** at {rate:.1f} steps/s ({source}).")
    if cfg.recipe == "fast":
        text += f" `fast` changes from the paper's recipe: {fast_changes(cfg.variant, cfg.constraint)}."
    if not dataset_on_disk(cfg.dataset, str(svc.settings.data_dir)):
        text += (f" The {cfg.dataset} training data is not on this server yet: Start first downloads it "
                 f"(about {DOWNLOAD_MB[cfg.dataset]} MB, once).")
    return text


def train_status(svc: Services, since_step=0) -> dict:
    """The current (or last) run, with the history of steps after `since_step` only."""
    since = 0 if since_step is None or since_step == "" else as_int(since_step, "since_step")
    job = svc.jobs.job
    if job is None:
        return {"state": "idle", "history": []}
    snap = job.snapshot()
    snap["history"] = [h for h in snap["history"] if h["step"] > since]
    return public_status(snap)


def train_stop(svc: Services) -> dict:
    """Ask the run to stop (it saves a checkpoint); wait briefly, then /train_status's answer."""
    job = svc.jobs.stop(wait_s=2.0)
    return train_status(svc) if job is not None else {"state": "idle", "history": []}


def public_status(snap: dict) -> dict:
    """A status dict for API clients, with the model ref /generate accepts once the run is done."""
    snap = dict(snap)
    snap.pop("owner", None)
    done = snap["state"] not in ("starting", "running", "stopping")
    snap["model"] = RUN_PREFIX + Path(snap["run_dir"]).name if done and snap.get("checkpoint") else None
    return snap


# --- the Generate tab's pictures: (uint8 image, download file name) --------------------------------


@foreground
def draw_digits(svc: Services, model, label, seed, num) -> tuple[np.ndarray, str]:
    """The page's picture. Its class radio is disabled (not cleared) for an unconditional model,
    so the class is ignored there rather than refused."""
    sampler, entry = svc.sampler(model)
    lab = parse_label(label, True) if entry.conditional else None
    seed, num = check_seed(seed), check_num(num)
    what = "mixed" if lab is None else f"digit{lab}"
    return digits(sampler, lab, seed, num), f"{_slug(entry.ref)}-{what}-seed{seed}-n{num}.png"


@foreground
def draw_classes(svc: Services, model, seed, columns) -> tuple[np.ndarray, str]:
    """One row per class, the same noise down each column."""
    sampler, entry = svc.sampler(model)
    seed = check_seed(seed)
    return class_grid(sampler, seed, columns), f"{_slug(entry.ref)}-all-classes-seed{seed}.png"


@foreground
def draw_walk(svc: Services, model, seed_a, seed_b, label_a, label_b, frames) -> tuple[list[np.ndarray], str]:
    """28x28 frames of a latent walk there and back (a looping GIF)."""
    sampler, entry = svc.sampler(model)
    seed_a, seed_b = check_seed(seed_a), check_seed(seed_b)
    la = parse_label(label_a, True) if entry.conditional else None
    lb = parse_label(label_b, True) if entry.conditional else None
    return latent_walk(sampler, seed_a, seed_b, la, lb, frames), f"{_slug(entry.ref)}-walk-{seed_a}-{seed_b}.gif"


# --- model files: zips to download, the Hub -----------------------------------------------------


def zip_for(svc: Services, entry: ModelEntry) -> Optional[str]:
    """The checkpoint of `entry` as a .zip (exported once per version of its files); None for Hub models."""
    if entry.path is None:
        return None
    from ..rundir import resolve_checkpoint_dir

    ckpt = resolve_checkpoint_dir(entry.path)
    key = (str(ckpt), ckpt.stat().st_mtime_ns)
    if key not in svc.zips or not Path(svc.zips[key]).exists():
        name = _slug(entry.ref.replace(RUN_PREFIX, ""))
        path = str(export_zip(ckpt, svc.outbox.path(f"{name}.zip"), name))
        for old in remember(svc.zips, key, path, MAX_ZIPS):  # the oldest zips' files go too
            Path(old).unlink(missing_ok=True)
    return svc.zips[key]


def zip_for_run(svc: Services, job) -> Optional[str]:
    try:
        entry = svc.registry.entry(RUN_PREFIX + job.run_dir.name)
    except UserError:
        return None  # the run lies outside the runs root or has no checkpoint
    return zip_for(svc, entry)


def _pull_policy(settings: Settings):
    try:
        from ..hub import PullPolicy
    except ImportError:  # no hub module in this build: hf:// refs are refused anyway
        return None
    return PullPolicy(allow=settings.hub_allow, max_bytes=int(settings.hub_max_mb * 2**20))


def push_enabled(svc: Services) -> bool:
    """Offer "Push to Hub" only when the operator opted in (WGAN_APP_PUSH_NAMESPACE) and a token
    exists: on a public server any visitor could otherwise push with the owner's token."""
    if svc.settings.push_namespace is None:
        return False
    try:
        from ..hub import configured_token

        return bool(configured_token())
    except Exception:  # no hub module in this build, or an unreadable token file: no push
        return False


def push_to_hub(svc: Services, repo_id: Optional[str]) -> str:
    """Push the last run's checkpoint into the configured namespace; a Markdown line with its address."""
    namespace = svc.settings.push_namespace
    if namespace is None:
        raise UserError("pushing from the web app is off on this server (the operator enables it by setting "
                        "WGAN_APP_PUSH_NAMESPACE); download the model and push it with `python app.py --push-to-hub`")
    rid = (repo_id or "").strip()
    if not rid:
        raise UserError(f"enter a Hub repo id such as {namespace}/wgan-mnist")
    try:
        from ..hub import check_repo_id, push_checkpoint
    except ImportError:
        raise UserError("pushing to the Hub is not available in this build") from None
    rid = check_repo_id(rid)
    if rid.split("/")[0] != namespace:
        raise UserError(f"this server pushes only to {namespace}/...: name the repo {namespace}/{rid.split('/')[1]}")
    job = svc.jobs.job
    if job is None or job.running or job.checkpoint is None:
        raise UserError("push needs a finished or stopped run with a checkpoint")
    url = push_checkpoint(job.checkpoint, rid)
    return f"Pushed to [{html.escape(str(url))}]({url}). Load it here as `hf://{rid}`."


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "model"


def _short(text, limit: int = 60) -> str:
    """A user-supplied name cut for an error message (a 10,000-character name stays one short line)."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "…"
