"""The server's training job: one background thread consuming `train()` events.

Training belongs to the server, not to a page: the thread keeps running when the tab that
started it is closed or reloaded, and every visitor sees the same live history, because the
UI only *reads* a `Job` (polled by a `gr.Timer`). Stopping is cooperative: `stop()` sets a
`threading.Event` that the trainer checks between generator steps, so the run ends within a
step and writes its final checkpoint. One job at a time per server (a CPU has no room for two),
and iterations are capped so a public deployment cannot be held forever.

A job's state changes only in `Job._move`, under the job's lock, along these edges:

    starting -> running -> stopping -> (finished | stopped | time limit | diverged | failed)
    starting/running ---------------->  any final state
    starting/running -> stopping       (a stop request; a second one changes nothing)

A final state is never left, so a stop that races with the end of a run cannot wedge it.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .admission import Foreground, use_threads
from .config import TrainConfig
from .data import DataUnavailable
from .errors import UserError
from .form import config_from_form
from .validation import DEFAULT_MAX_ITERS, MAX_UI_BATCH, SPACE_MAX_ITERS, as_int  # noqa: F401

log = logging.getLogger(__name__)

MAX_BATCH = MAX_UI_BATCH
HISTORY_POINTS = 2000  # plot points kept per run; older ones are thinned, never the newest
FINAL_STATES = ("finished", "stopped", "time limit", "diverged", "failed")
_EDGES = {"starting": {"running", "stopping", *FINAL_STATES}, "running": {"stopping", *FINAL_STATES},
          "stopping": set(FINAL_STATES)}
# What the live plot draws, in the order of its legend (train.StepEvent metric keys).
PLOT_SERIES = {"loss_d": "critic loss", "wasserstein": "Wasserstein estimate",
               "gp": "gradient penalty", "loss_g": "generator loss"}
ACC_SERIES = {"class_acc": "on real digits", "class_acc_fake": "on generated digits"}
# Quality metrics (metrics.py, MetricEvent), drawn when the run evaluates (--eval-every).
QUALITY_SERIES = {"fid": "MNIST-FID of samples", "fid_floor": "real-vs-real floor"}
QUALITY_ACC_SERIES = {"class_accuracy": "samples read as their class (classifier)"}


def measured_rates(path=None) -> dict[tuple[str, str], dict]:
    """{(variant, recipe): bench row} from the shipped speed file (bench/bench_train.py --write):
    what the form's time estimate assumes until this server has run that kind. {} without it."""
    import json

    from .paths import SPEED_FILE

    try:
        rows = json.loads(Path(path or SPEED_FILE).read_text())["rows"]
        return {(r["variant"], r["recipe"]): r for r in rows}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@dataclass
class Job:
    """One training run and everything the UI shows about it. Read it through `snapshot()`."""

    cfg: TrainConfig
    owner: str
    started: float = field(default_factory=time.time)
    state: str = "starting"  # starting | running | stopping | one of FINAL_STATES
    step: int = 0
    steps_per_s: float = 0.0
    history: list[dict] = field(default_factory=list)  # {"step", metric: value...}
    quality: list[dict] = field(default_factory=list)  # {"step", fid, fid_floor, class_accuracy...}
    sample: Optional[np.ndarray] = None  # (H, W) uint8 grid from the run's fixed noise
    sample_step: int = 0
    ended: Optional[float] = None
    checkpoint: Optional[Path] = None
    message: str = ""
    version: int = 0  # bumped on every change the plot or picture would show

    def __post_init__(self):
        # (step, monotonic time) at the first and the latest logged window: the measured rate
        self._first: Optional[tuple[int, float]] = None
        self._last: Optional[tuple[int, float]] = None
        self.stop_flag = threading.Event()
        self.done = threading.Event()
        self._lock = threading.Lock()

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg.run_dir)

    @property
    def running(self) -> bool:
        with self._lock:
            return self.state not in FINAL_STATES

    def _move(self, new: str, message: Optional[str] = None) -> bool:
        """The only state change: along `_EDGES`, under the lock held by the caller. False if refused."""
        if new not in _EDGES.get(self.state, ()):
            return False
        self.state = new
        if message is not None:
            self.message = message
        if new in FINAL_STATES:
            self.ended = time.time()
        self.version += 1
        return True

    def request_stop(self) -> bool:
        """Ask the run to stop after its current generator step; True if it was still running."""
        with self._lock:
            if self.state in FINAL_STATES:
                return False
            self.stop_flag.set()
            self._move("stopping")
            return True

    def measured_rate(self) -> float:
        """Generator steps per wall-clock second between the first and the latest logged window:
        what this server actually delivers, pauses for visitors, evaluations and the page's own
        requests included. Before there are two windows, the trainer's rate over the first one."""
        if self._first is not None and self._last is not None and self._last[0] > self._first[0]:
            return (self._last[0] - self._first[0]) / max(self._last[1] - self._first[1], 1e-9)
        return self.steps_per_s

    def eta_s(self) -> Optional[float]:
        """Seconds to the end at the measured rate; the caller holds the lock or reads a snapshot."""
        rate = self.measured_rate()
        if self.state in FINAL_STATES or rate <= 0:
            return None
        return (self.cfg.iters - self.step) / rate

    def snapshot(self) -> dict:
        """A consistent, JSON-friendly copy (the API's /train_status returns it)."""
        with self._lock:
            eta = self.eta_s()
            return {
                "state": self.state, "owner": self.owner, "variant": self.cfg.variant,
                "dataset": self.cfg.dataset, "step": self.step, "iters": self.cfg.iters,
                "steps_per_s": round(self.measured_rate(), 3), "eta_s": None if eta is None else round(eta, 1),
                "started": self.started, "ended": self.ended, "run_dir": str(self.run_dir),
                "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
                "message": self.message, "version": self.version,
                "history": [dict(h) for h in self.history],
                "quality": [dict(q) for q in self.quality],
            }

    # --- the thread ---------------------------------------------------------------------------

    def run(self, events) -> None:
        """The job's thread: consume the trainer's events until its DoneEvent."""
        from .trainer import CheckpointEvent, DoneEvent, MetricEvent, SampleEvent, StepEvent

        use_threads()  # all of the process's torch threads, whatever a Lab thread asked for
        try:
            for ev in events:
                with self._lock:
                    if isinstance(ev, StepEvent):
                        self._move("running")
                        self.step, self.steps_per_s = ev.step, ev.steps_per_s
                        self._last = (ev.step, time.monotonic())
                        self._first = self._first or self._last
                        self.history.append({"step": ev.step, **ev.metrics})
                        if len(self.history) > HISTORY_POINTS:
                            self.history = self.history[:-1:2] + self.history[-1:]
                    elif isinstance(ev, SampleEvent):
                        self.sample, self.sample_step = ev.image, ev.step
                    elif isinstance(ev, MetricEvent):
                        self.quality.append({"step": ev.step, **ev.metrics})
                    elif isinstance(ev, CheckpointEvent):
                        self.checkpoint = ev.path
                    elif isinstance(ev, DoneEvent):
                        self.step = ev.step
                        self.checkpoint = ev.checkpoint or self.checkpoint
                        self._move(ev.reason, ev.message)
                    self.version += 1
        except UserError as e:
            self.fail(str(e))
        except Exception as e:  # a bug: keep the server up, say so, log the traceback
            log.error("training job crashed:\n%s", traceback.format_exc())
            self.fail(f"training crashed: {type(e).__name__}: {e}")
        finally:
            self.fail("training ended without saying why")  # refused unless no final state was reached
            self.done.set()

    def fail(self, message: str) -> None:
        with self._lock:
            self._move("failed", message)


class JobManager:
    """Owns at most one running Job; remembers the latest one so late visitors see its result."""

    def __init__(self, runs_dir: str | Path, data_dir: str | Path, max_iters: int = DEFAULT_MAX_ITERS,
                 build_trainer=None):
        if as_int(max_iters, "--max-train-iters") < 1:
            raise UserError(f"--max-train-iters must be at least 1, got {max_iters}")
        self.runs_dir = Path(runs_dir)
        self.data_dir = str(data_dir)
        self.max_iters = int(max_iters)
        self._lock = threading.Lock()
        self._job: Optional[Job] = None
        self._build_trainer = build_trainer  # None: train.build_trainer (tests pass a fake)
        self.foreground = Foreground()

    @property
    def job(self) -> Optional[Job]:
        return self._job

    def expected_rate(self, cfg: TrainConfig) -> tuple[float, str]:
        """(generator steps/s, where the figure comes from) for a run of `cfg` on this server."""
        job = self._job
        if job is not None and job.measured_rate() > 0 and _kind(job.cfg) == _kind(cfg):
            return job.measured_rate(), "this server's last run of these settings"
        row = measured_rates().get((cfg.variant, cfg.recipe))
        if row is None:
            return 1.0, "a guess: this recipe has not been benchmarked (bench/bench_train.py --write)"
        base = row["generator_steps_per_s"]
        if _kind(cfg) != _kind(TrainConfig(variant=cfg.variant, recipe=cfg.recipe, eval_every=cfg.eval_every)):
            # Cost grows about linearly with the batch above 32; below, fixed overheads dominate.
            scale = max(row.get("batch_size", 64), 32) / max(cfg.batch_size, 32)
            return base * scale, "a rough guess: these settings were not benchmarked"
        return base, (f"assumed: bench/bench_train.py on {row.get('threads', '?')} threads of an "
                      f"{row.get('cpu', 'unnamed CPU')}; the real rate replaces it once a run starts")

    def active_run_dirs(self) -> list[Path]:
        job = self._job
        return [job.run_dir] if job is not None and job.running else []

    def build_config(self, *form, **named) -> TrainConfig:
        """The UI/API form -> a validated TrainConfig for this server (form.config_from_form)."""
        return config_from_form(*form, **named, max_iters=self.max_iters, data_dir=self.data_dir,
                                runs_dir=self.runs_dir)

    def start(self, cfg: TrainConfig, owner: str) -> Job:
        """Start `cfg` unless a job is running (then say whose and until when).

        The trainer is built here, before the thread starts, so a missing dataset or a batch
        larger than the data reaches the person who pressed Start as an error, not a dead run.
        """
        with self._lock:
            cur = self._job
            if cur is not None and cur.running:
                raise UserError(busy_message(cur))
            job = Job(cfg, owner)  # "starting": later Starts are busy while this one builds
            self._job = job
        build = self._build_trainer
        if build is None:
            from .train import build_trainer as build
        try:
            trainer = build(cfg)
        except DataUnavailable as e:  # the visitor cannot fix the server's data: tell them, log the cause
            log.warning("training could not start: %s", e)
            job.fail(e.visitor)
            raise UserError(e.visitor) from None
        except UserError as e:
            job.fail(str(e))
            raise UserError(f"training could not start: {e}") from None
        except Exception as e:
            log.error("building the trainer failed:\n%s", traceback.format_exc())
            job.fail(f"training could not start: {type(e).__name__}: {e}")
            raise UserError(f"training could not start ({type(e).__name__}: {e}); the server log has details") \
                from None
        def should_stop() -> bool:  # polled between generator steps: let visitors' requests go first
            self.foreground.wait_idle()
            return job.stop_flag.is_set()

        threading.Thread(target=job.run, args=(trainer.run(should_stop),),
                         name=f"train-{job.run_dir.name}", daemon=True).start()
        return job

    def stop(self, wait_s: float = 2.0) -> Optional[Job]:
        """Ask the running job to stop; wait up to `wait_s` for its final checkpoint."""
        job = self._job
        if job is not None and job.request_stop():
            job.done.wait(wait_s)
        return job

    def close(self, wait_s: float = 10.0) -> None:
        """Stop and wait (server shutdown): the run keeps a checkpoint instead of dying mid-write."""
        self.stop(wait_s)


def _kind(cfg: TrainConfig) -> tuple:
    """What sets a run's speed: the same kind runs at the same steps/s on the same machine."""
    return (cfg.variant, cfg.batch_size, cfg.n_critic, cfg.critic_warmup, cfg.constraint, cfg.g_arch, cfg.g_width,
            cfg.d_width, cfg.g_refine, cfg.d_layers, cfg.z_dim, cfg.eval_every)


def busy_message(job: Job) -> str:
    eta = job.eta_s()
    until = (f"expected to finish around {_clock(time.time() + eta)} (in about {human_duration(eta)})"
             if eta is not None else "its finishing time is not known yet")
    return (f"The trainer is busy: {job.owner} started {job.cfg.variant} on {job.cfg.dataset} at "
            f"{_clock(job.started)} (step {job.step}/{job.cfg.iters}); {until}. One run at a time per "
            "server: watch it live here, or start yours when it is done.")


def status_line(job: Optional[Job]) -> str:
    """One line for people: state, step, it/s, ETA."""
    if job is None:
        return "No training yet on this server. Pick settings and press **Start**."
    s = job.snapshot()
    pct = 100 * s["step"] / max(s["iters"], 1)
    head = (f"**{s['state'].capitalize()}** · {s['variant']} on {s['dataset']} · step {s['step']}/{s['iters']} "
            f"({pct:.0f}%)")
    if job.running:
        rate = f"{s['steps_per_s']:.2f} it/s" if s["steps_per_s"] else "measuring speed…"
        eta = f"ETA {human_duration(s['eta_s'])}" if s["eta_s"] is not None else "ETA —"
        return f"{head} · {rate} · {eta} · started by {s['owner']} at {_clock(s['started'])}"
    took = human_duration((s["ended"] or time.time()) - s["started"])
    tail = f" · {s['message']}" if s["message"] else ""
    return f"{head} · took {took}{tail}"


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def human_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
