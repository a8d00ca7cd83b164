"""The Lab's fast-forward in worker processes: each run trains towards its target in a process of
its own, in chunks of CHUNK_S, so a fast-forward uses every core the machine has.

Why processes: a fast-forward draws nothing, so on a 2-core machine the second core is free,
but threads cannot use it. A Lab step is a few hundred small torch operations, each of which
lets go of the GIL and takes it back; three runs in threads of one process spend that on the
GIL's hand-overs and made 2,000 steps of the three 1.0-1.2x faster than in turn (docs/lab.md).
In two processes each run has its interpreter to itself.

A chunk ships the whole run both ways, pickled (~250 kB, ~8 ms: networks, optimisers, random
generators, curves): the worker gets a copy, trains it until CHUNK_S have passed or it reaches
its target, and sends the copy back, which the run then adopts (LabRun.adopt). The pickles
travel only between this server and the workers it started; nothing a visitor or the Hub
supplied is ever unpickled. Same steps, same numbers: a run trained in a worker is bit for bit
the run trained in the server's thread (tests/test_lab.py).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Optional

CHUNK_S = 1.0  # seconds a worker trains a run before sending it back: a shipment costs ~17 ms of the server
log = logging.getLogger(__name__)


def _workers() -> int:
    """Worker processes: one a core, at most one a run (3); none on a one-core machine, where
    processes would only take turns. WGAN_LAB_WORKERS=N sets N (0: every fast-forward trains in
    the server's thread); a value that is not a whole number is reported and ignored."""
    n = os.cpu_count() or 1
    given = os.environ.get("WGAN_LAB_WORKERS")
    if given is not None:
        try:
            n = int(given)
        except ValueError:
            log.warning("WGAN_LAB_WORKERS must be a whole number (0 turns the Lab's workers off), got %r; "
                        "using one a core", given)
    n = min(3, n)
    return n if n >= 2 else 0


WORKERS = _workers()
_POOL: Optional[ProcessPoolExecutor] = None
_POOL_LOCK = threading.Lock()
_BROKEN = False  # a worker died or could not start: fast-forwards train in the server's thread


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one core a worker: its tiny operations gain nothing from more
    # Ctrl-C in the terminal reaches the whole process group: the server shuts its workers
    # down as it exits, and a worker's own KeyboardInterrupt would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A server killed outright (SIGKILL, OOM) cannot shut its workers down, and a worker waiting
    # for its next chunk would wait forever: it leaves when its parent does.
    parent = os.getppid()

    def leave_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=leave_with_parent, daemon=True, name="lab-worker-watch").start()


def _ready() -> bool:
    return True


def pool() -> Optional[ProcessPoolExecutor]:
    """The process-wide worker pool, started on first use ("spawn": a fork of a server with
    threads and torch's OpenMP pool is not safe); None when workers are off or broke."""
    global _POOL
    if WORKERS == 0 or _BROKEN:
        return None
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker)
        return _POOL


def warm() -> list[Future]:
    """Start the workers now (each imports torch, ~4 s on the 2-core EPYC), so the first
    fast-forward does not wait for them: the Lab's Run button calls this. Returns a future a
    worker, done when it is up (none when workers are off)."""
    p = pool()
    if p is None:
        return []
    ready = [p.submit(_ready) for _ in range(WORKERS)]
    for f in ready:
        f.add_done_callback(_note_failure)
    return ready


def _note_failure(f: Future) -> None:
    if f.exception() is not None:
        broke(f.exception())


def broke(reason: BaseException) -> None:
    """Stop using workers for the life of the process (a worker died, or processes cannot start
    here): fast-forwards train in the server's thread, as slowly as before, but they train."""
    global _BROKEN, _POOL
    log.warning("Lab fast-forward workers off (%s: %s); fast-forwards train in the server's thread",
                type(reason).__name__, reason)
    _BROKEN = True
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=False, cancel_futures=True)
            _POOL = None


def submit(run: bytes, target: int, seconds: float = CHUNK_S) -> Future:
    """Train a run (LabRun.for_worker's pickle) in a worker towards step `target` for about
    `seconds`. The future's result is (the trained run, pickled, for LabRun.adopt; the worker's
    CPU seconds). Raises RuntimeError when there are no workers."""
    p = pool()
    if p is None:
        raise RuntimeError("no fast-forward workers")
    return p.submit(_advance, run, target, seconds)


def _advance(blob: bytes, target: int, seconds: float) -> tuple[bytes, float]:
    """In a worker: whole steps until `seconds` have passed or the run reaches `target`, measured
    as a fast-forward measures (session.SKIP_MEASURE_EVERY)."""
    from .session import SKIP_MEASURE_EVERY

    run = pickle.loads(blob)  # a run this server pickled in submit()
    cpu, deadline = time.process_time(), time.perf_counter() + seconds
    while run.step < target and time.perf_counter() < deadline:
        if not run.steps(1, measure_every=SKIP_MEASURE_EVERY):  # 0: MAX_STEPS reached
            break
    return pickle.dumps(run), time.process_time() - cpu
