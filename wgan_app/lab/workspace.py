"""A visitor's Lab: up to three runs side by side, their training thread, caps and saved frames;
and the process-wide table of workspaces, bounded, keyed by the visitor's session.

Models live here, not in `gr.State` (Gradio deep-copies state per event). While Run is on, a
workspace trains in a thread of its own, in slices of SLICE_S between which a refresh or a
button takes the workspace; the page's refresh timer only draws, so the panels refresh at the
timer's rate however slow the runs are, and training uses all the time drawing leaves (a refresh
holds the workspace only to copy the runs; it measures and draws the copies after letting go,
while the runs train on). Each
refresh keeps the thread going for KEEPALIVE_S more: a closed, hidden or disconnected page stops
training within seconds even when no unload event arrives. A fast-forward (Skip ahead) draws
nothing and trains in worker processes instead (fastforward.py), each run on a core of its own.
A workspace is dropped when its page
unloads, when it has been idle for IDLE_S, or when the table is full and it is the least
recently used.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional

import numpy as np

from ..admission import threads_for_a_while, use_threads
from ..errors import UserError
from . import fastforward, render
from .session import MAX_STEPS, PRESETS, SKIP_MEASURE_EVERY, LabRun, LabSettings, panel_data, run_title

if TYPE_CHECKING:
    from .session import RunView

N_RUNS = 3
MAX_WORKSPACES = 8  # visitors with live Lab runs at once; the least recently used goes first
IDLE_S = 15 * 60  # a workspace nobody has ticked for this long is dropped
MAX_TRAIN_S = 10 * 60  # training seconds a workspace may spend in all (three runs together)
TICK_S = 0.2  # the UI's timer: 5 refreshes a second (the floor)
# The timer while fast-forwarding, when a tick only updates the progress line. In Chromium on the
# 2-core machine ticks at TICK_S took the browser ~55 % of a core and the server ~30 % while the
# skip's workers wanted both cores.
SKIP_TICK_S = 1.0
# Workspace.train() called directly, without a budget (not the Lab's own path since training moved to
# the thread, which trains in SLICE_S slices) trains for
# what is left of TICK_S after the last refresh's render and the PNG encoding + queue (about
# OVERHEAD_S); never less than MIN_TRAIN_S (runs must still move).
OVERHEAD_S, MIN_TRAIN_S = 0.03, 0.03
# The training thread holds the workspace for SLICE_S at a time: a refresh waits at most that
# long for it (the three runs' slices are ~10 ms each).
SLICE_S = 0.03
KEEPALIVE_S = 2.0  # the thread stops this long after the last refresh or Run: a gone page stops it
# Train a workspace's three runs in three threads at once instead of in turn (WGAN_LAB_PARALLEL=1).
# torch releases the GIL inside its kernels and the autograd engine: py-spy --gil found a Lab
# run's thread holding the GIL in ~30 % of its training samples, so on a quiet 2-core machine
# the runs could use both cores. Off by default until measured there (bench_lab.py --parallel):
# the development machine's second core is taken by other jobs, where it can only steal.
PARALLEL = os.environ.get("WGAN_LAB_PARALLEL", "0") == "1"
# torch threads of a Lab training thread: one (admission.use_threads says why)
LAB_THREADS = 1
MAX_FRAMES = 60  # frames kept for the GIF download
NOTE_S = 5.0  # a button's or a form's message stays in the status line this long (ticks redraw it)


class Workspace:
    """Three LabRuns on the same data, seed and budget. Callers hold `lock` around every call."""

    def __init__(self, settings: Optional[list[LabSettings]] = None, parallel: Optional[bool] = None,
                 yield_to: Optional[Callable[[], None]] = None):
        self.lock = threading.Lock()
        self.parallel = PARALLEL if parallel is None else parallel
        # Called between slices: the server's drawing requests go first (admission.Foreground.wait_idle).
        self.yield_to = yield_to
        self._thread: Optional[threading.Thread] = None
        self._starting = threading.Lock()  # guards starting _thread
        self._train_until = 0.0  # time.monotonic() after which the thread stops
        self._waiting = 0  # callers queued for the lock: the thread steps aside for them
        self.paused = False  # Pause was pressed: refreshes no longer keep it training until Run
        self.runs = [LabRun(s) for s in (settings or list(PRESETS.values()))]
        self.trained_s = 0.0
        self.last_seen = time.time()
        self.frames: deque[np.ndarray] = deque(maxlen=MAX_FRAMES)
        self._ticks = 0
        self._rate = [200.0] * len(self.runs)  # measured steps/s of each run: sizes the next chunk
        # Fast-forward: each run's target step, trained towards without drawing (None: not skipping)
        self.skip_to: Optional[list[int]] = None
        self.render_s = 0.05  # seconds the last refreshes took to measure and draw the panels
        self._note, self._note_until = "", 0.0

    def say(self, note: str) -> str:
        """Keep `note` in the status line for NOTE_S seconds: the timer redraws the status 5 times a
        second, and a message that vanished at the next tick would never be read."""
        self._note, self._note_until = note, time.time() + NOTE_S
        return note

    @property
    def note(self) -> str:
        return self._note if time.time() < self._note_until else ""

    @property
    def out_of_time(self) -> bool:
        return self.trained_s >= MAX_TRAIN_S

    @contextmanager
    def held(self) -> Iterator["Workspace"]:
        """The workspace's lock, taken ahead of the training thread (a plain Lock is not fair:
        a thread that releases and re-takes it at once could starve a refresh)."""
        with _WAITING_LOCK:
            self._waiting += 1
        try:
            self.lock.acquire()
        finally:
            with _WAITING_LOCK:
                self._waiting -= 1
        try:
            yield self
        finally:
            self.lock.release()

    # --- the training thread (Run / Pause) ----------------------------------------------------
    @property
    def training(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and time.monotonic() < self._train_until

    def keep_training(self, for_s: float = KEEPALIVE_S, resume: bool = False) -> None:
        """Train in the background for the next `for_s` seconds (started if it is not running).
        Each refresh calls this: training goes on while the page keeps asking for pictures. After
        pause() only `resume` (the Run button) restarts it: a refresh still in flight when Pause
        was pressed must not."""
        if self.paused and not resume:
            return
        self.paused = False
        self._train_until = time.monotonic() + for_s
        self.last_seen = time.time()
        with self._starting:  # a tick and a button at once must not start two threads
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._train_loop, daemon=True, name="lab-workspace")
                self._thread.start()

    def pause(self, wait: bool = False) -> None:
        """Stop the training thread after its current slice (and wait for that with `wait`)."""
        self.paused = True
        self._train_until = 0.0
        self.skip_to = None
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    def _train_loop(self) -> None:
        use_threads(LAB_THREADS)
        while time.monotonic() < self._train_until or self.skipping:
            if self.skipping and self._skip_in_workers():
                continue
            if self.yield_to is not None:
                self.yield_to()
            with self.lock:
                if self.out_of_time or all(r.finished for r in self.runs):
                    self.skip_to = None
                    break
                self.train(SLICE_S)
                if self.skipping and all(r.step >= t for r, t in zip(self.runs, self.skip_to)):
                    # arrived: the panels draw again and the runs stay there until Run
                    self.skip_to, self.paused, self._train_until = None, True, 0.0
            if self._waiting:  # let the refresh or button that waits take the lock first
                time.sleep(0.002)

    # --- fast-forward ---------------------------------------------------------------------------
    def _skip_in_workers(self) -> bool:
        """The fast-forward in worker processes (fastforward.py): every run short of its target
        trains there in chunks, each adopted under the lock when it comes back, until every run
        has arrived or Pause (the chunks in flight are awaited, CHUNK_S at most). False when
        there are no workers: the caller trains here, from wherever the runs got."""
        if fastforward.pool() is None:
            return False
        flying: dict[int, tuple[Future, int, int]] = {}  # run index -> (chunk, its epoch, its step)
        try:
            while True:
                if self.yield_to is not None:
                    self.yield_to()
                with self.lock:
                    if self.skipping and (self.out_of_time or all(r.finished for r in self.runs)):
                        self.skip_to = None
                    if self.skipping:
                        # One chunk a worker, the run with the most seconds left first: the
                        # slowest run (WGAN-GP's double backward) sets when the skip ends.
                        left = {i: (t - r.step) / self._rate[i] for i, (r, t) in enumerate(zip(self.runs, self.skip_to))
                                if i not in flying and r.step < t and not r.finished}
                        for i in sorted(left, key=left.get, reverse=True)[:fastforward.WORKERS - len(flying)]:
                            run = self.runs[i]
                            blob = run.for_worker()
                            flying[i] = (fastforward.submit(blob, self.skip_to[i]), run.epoch, run.step)
                        if not flying:  # arrived: the panels draw again and the runs stay there until Run
                            self.skip_to, self.paused, self._train_until = None, True, 0.0
                if not flying:
                    return True
                wait([f for f, _, _ in flying.values()], return_when=FIRST_COMPLETED)
                with self.lock:
                    for i, (f, epoch, step) in list(flying.items()):
                        if f.done():
                            del flying[i]
                            trained, cpu = f.result()
                            self.trained_s += cpu
                            if self.runs[i].adopt(trained, epoch, step) and cpu > 0:
                                self._rate[i] = (self.runs[i].step - step) / cpu
        except Exception as e:  # a worker died or processes cannot start here: train in this thread
            fastforward.broke(e)
            return False

    @property
    def skipping(self) -> bool:
        return self.skip_to is not None and not self.paused

    def fast_forward(self, steps: int) -> str:
        """Train every run `steps` more generator steps without drawing (the refreshes only report
        progress), so a claim that needs thousands of steps shows in the time the CPU takes for
        them rather than at the panels' pace. Pause stops it; when every run has arrived the
        panels draw again and the runs wait there (paused) for Run."""
        self.skip_to = [min(MAX_STEPS, r.step + steps) for r in self.runs]
        self.keep_training(resume=True)
        return self.say(f"fast-forward: {steps:,} steps without drawing, then the panels show where each run got")

    def progress(self) -> str:
        """The fast-forward's progress line: each run's step and target."""
        if not self.skipping:
            return ""
        parts = [f"{run_title(r.settings).split(' |')[0]} {r.step:,}/{t:,}" for r, t in zip(self.runs, self.skip_to)]
        return "fast-forward (panels paused): " + " · ".join(parts)

    def tick_budget(self) -> float:
        """Training seconds for one tick: what the refresh leaves of TICK_S."""
        return max(MIN_TRAIN_S, TICK_S - OVERHEAD_S - self.render_s)

    def train(self, budget_s: Optional[float] = None) -> list[int]:
        """Train every run for about budget_s / N seconds in turn, or, with `parallel`, all for
        about budget_s at once in threads (default: tick_budget()); the steps each took."""
        budget_s = self.tick_budget() if budget_s is None else budget_s
        if self.out_of_time:
            return [0] * len(self.runs)
        if self.parallel:  # each run for the whole slice, sharing the cores; charged its thread's CPU time
            chunks = [max(1, int(r * budget_s)) for r in self._rate]
            if self.skipping:  # arrived runs sit out
                chunks = [max(0, min(c, t - run.step)) for c, t, run in zip(chunks, self.skip_to, self.runs)]
            every = SKIP_MEASURE_EVERY if self.skipping else None
            results = list(_pool().map(lambda i: _timed_steps(self.runs[i], chunks[i], every), range(len(self.runs))))
            self.trained_s += sum(cpu for _, _, cpu in results)
        else:
            results = []
            # while fast-forwarding, a run that has arrived sits out and the others share its time
            going = [i for i, r in enumerate(self.runs) if not self.skipping or r.step < self.skip_to[i]]
            for i, run in enumerate(self.runs):
                if self.out_of_time or i not in going:
                    results.append((0, 0.0, 0.0))
                    continue
                n = max(1, int(self._rate[i] * budget_s / len(going)))
                if self.skipping:
                    n = min(n, self.skip_to[i] - run.step)
                results.append(_timed_steps(run, n, SKIP_MEASURE_EVERY if self.skipping else None))
                self.trained_s += results[-1][1]
        for i, (k, dt, _) in enumerate(results):
            if k:
                self._rate[i] = 0.5 * self._rate[i] + 0.5 * k / max(dt, 1e-6)
        return [k for k, _, _ in results]

    def snapshot(self, fresh: bool = False) -> list["RunView"]:
        """Each run as its panel will show it (callers hold the lock: this copies the networks and
        curves, ~8 ms for the three). `fresh` measures every run (after a button's single step)
        instead of every MEASURE_EVERY steps. draw() measures and draws the copies without the lock."""
        self.last_seen = time.time()
        return [r.view(fresh) for r in self.runs]

    def draw(self, views: list["RunView"], keep_frame: bool = True) -> list[np.ndarray]:
        """The panels of a snapshot, measured (the exact W1's assignment, the critic's field, the
        arrows; each W1 recorded back into its run's curve) and drawn with no lock held, while the
        training thread trains; every 4th call keeps the composite for the GIF. Measured on one
        torch thread, as the training thread: small operations spread over a second core that the
        training keeps busy only wait for it (bench_lab.py's live phase: ~185 ms a refresh and 4.4-4.6
        refreshes/s on two threads, ~141 ms and 5.0 on one)."""
        t = time.time()
        with threads_for_a_while(LAB_THREADS):
            data = [panel_data(v, run_title(v.settings)) for v in views]
        out = [render.panel(d) for d in data]
        self.render_s = 0.5 * self.render_s + 0.5 * (time.time() - t)
        self._ticks += 1
        if keep_frame and self._ticks % 4 == 1:
            self.frames.append(render.side_by_side(out))
        return out

    def panels(self, keep_frame: bool = True, fresh: bool = False) -> list[np.ndarray]:
        """snapshot() and draw() in one call, for callers that hold the lock anyway."""
        return self.draw(self.snapshot(fresh), keep_frame)


def _timed_steps(run: LabRun, n: int, measure_every: Optional[int] = None) -> tuple[int, float, float]:
    """Up to n steps of `run`: (steps taken, wall seconds, this thread's CPU seconds)."""
    t, cpu = time.perf_counter(), time.thread_time()
    k = run.steps(n, measure_every)
    return k, time.perf_counter() - t, time.thread_time() - cpu


_WAITING_LOCK = threading.Lock()  # guards Workspace._waiting (held for a counter's update)
_POOL: Optional[ThreadPoolExecutor] = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The process's Lab training threads (N_RUNS x MAX_WORKSPACES at most, idle ones cost nothing)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=N_RUNS * MAX_WORKSPACES, thread_name_prefix="lab-train",
                                       initializer=use_threads, initargs=(LAB_THREADS,))
        return _POOL


class Workspaces:
    """The bounded table of workspaces: session key -> Workspace. A workspace that leaves the
    table (unload, idle, evicted) stops training."""

    def __init__(self, max_size: int = MAX_WORKSPACES, yield_to: Optional[Callable[[], None]] = None):
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Workspace] = OrderedDict()
        self.max_size = max_size
        self.yield_to = yield_to  # given to every workspace: see Workspace.yield_to

    def get(self, key: str, create: bool = True) -> Optional[Workspace]:
        if not key:
            raise UserError("the Lab needs a browser session (open the page, not the API)")
        now = time.time()
        with self._lock:
            for k in [k for k, w in self._items.items() if now - w.last_seen > IDLE_S]:
                self._items.pop(k).pause()
            ws = self._items.get(key)
            if ws is None and create:
                while len(self._items) >= self.max_size:
                    self._items.popitem(last=False)[1].pause()
                ws = self._items[key] = Workspace(yield_to=self.yield_to)
            if ws is not None:
                self._items.move_to_end(key)
                ws.last_seen = now
            return ws

    def drop(self, key: str) -> None:
        with self._lock:
            ws = self._items.pop(key, None)
        if ws is not None:
            ws.pause()

    def __len__(self) -> int:
        return len(self._items)


# --- what the Lab's buttons do (plain functions of a workspace: the UI only wires them) ----------

SETTING_FIELDS = ("objective", "optimizer", "lr", "n_critic", "clip_value", "lambda_gp", "depth", "width",
                  "batch_size", "z_dim", "batch_norm")


def form_for(objective: str) -> dict:
    """What a run's settings form shows for `objective`: its recipe (the preset's optimiser, lr,
    n_critic, c, lambda) and which constraint knob applies ("clip_value" for clipping, "lambda_gp"
    for the penalty, none for the BCE GAN). The form fills these in when the objective changes, so
    switching a run to clipping does not keep Adam at the GAN's lr."""
    if objective not in PRESETS:
        raise UserError(f"objective must be one of: {', '.join(PRESETS)}, got {objective!r}")
    p = PRESETS[objective]
    return {"optimizer": p.optimizer, "lr": p.lr, "n_critic": p.n_critic, "clip_value": p.clip_value,
            "lambda_gp": p.lambda_gp, "show": {"wgan": "clip_value", "wgan-gp": "lambda_gp"}.get(objective)}


def apply_settings(ws: Workspace, index: int, dataset: str, seed, **fields) -> str:
    """Queue new settings for run `index` (shared dataset and seed for all runs); applied at the
    next step. Returns a line for the status bar. Bad values raise a one-line UserError."""
    if not 0 <= index < len(ws.runs):
        raise UserError(f"run must be between 1 and {len(ws.runs)}, got {index + 1}")
    unknown = set(fields) - set(SETTING_FIELDS)
    if unknown:
        raise UserError(f"unknown Lab settings: {', '.join(sorted(unknown))}")
    new = ws.runs[index].settings.replace(**fields)
    notes = []
    for i, run in enumerate(ws.runs):  # data and seed are shared: the comparison stays fair
        target = (new if i == index else run.settings).replace(dataset=dataset, seed=seed)
        note = run.update(target)
        if note and (i == index or "restarts" in note):
            notes.append(f"run {i + 1}: {note}")
    return ws.say("; ".join(notes) or "nothing changed")


def set_data(ws: Workspace, dataset: str, seed) -> str:
    """Move every run to new data / seed (they restart at their next step)."""
    notes = {run.update(run.settings.replace(dataset=dataset, seed=seed)) for run in ws.runs}
    return ws.say("data or seed changed: all three runs restart from step 0 at the next step"
                  if any(notes) else "nothing changed")


def run(ws: Workspace) -> None:
    """The Lab's Run button: train until Pause or the page goes. The fast-forward's worker
    processes start now (~4 s each on the 2-core EPYC), so Skip ahead does not wait for them."""
    ws.keep_training(resume=True)
    fastforward.warm()


def critic_step_all(ws: Workspace) -> str:
    for run in ws.runs:
        run.critic_step()
    return ws.say("one critic update in every run (generator unchanged)")


def generator_step_all(ws: Workspace) -> str:
    for run in ws.runs:
        run.generator_step()
    return ws.say("one generator update in every run (against the current critic)")


def reset_all(ws: Workspace) -> str:
    for run in ws.runs:
        run.reset()
    ws.skip_to = None
    ws.frames.clear()
    ws.trained_s = 0.0
    return ws.say("all runs restarted from the seed")


MAX_SKIP = 10_000  # steps one fast-forward may ask for (MAX_STEPS caps a run in all)
# Skip ahead's default: where claim 3 shows on the default seed (GAN 6 of 8 modes, WGAN-GP 8 of 8;
# over 5 seeds 6.4 against 8.0, bench/lab_modes.py), in ~40 s of the 2-core machine with the
# browser on it. 2,000 shows a little more (5.6 against 7.6) in a third more time.
SKIP_STEPS = 1500


def fast_forward(ws: Workspace, steps) -> str:
    """The Lab's fast-forward button: `steps` (1..MAX_SKIP) more steps of every run, undrawn."""
    from ..validation import as_int, in_range

    return ws.fast_forward(in_range(as_int(steps, "steps to skip"), "steps to skip", 1, MAX_SKIP))


def download_png(ws: Workspace, path) -> str:
    """The three panels side by side as a PNG at `path`."""
    from PIL import Image

    Image.fromarray(render.side_by_side(ws.panels(keep_frame=False))).save(path)
    return str(path)


def download_gif(ws: Workspace, path) -> str:
    """The kept frames (one every 4th refresh, the newest MAX_FRAMES) as an animated GIF at `path`."""
    from ..images import gif_bytes

    if not ws.frames:
        raise UserError("no frames yet: press Run first")
    Path(path).write_bytes(gif_bytes(list(ws.frames), duration_ms=120))
    return str(path)
