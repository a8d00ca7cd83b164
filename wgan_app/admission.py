"""Request admission: interactive requests (drawing digits) go ahead of background training,
which yields to them between steps (the server's training job and the Lab's workspaces); and how
many torch threads each of the server's threads asks for."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

import torch

from .errors import UserError


class Foreground:
    """Interactive requests in flight (drawing digits), which the training thread lets go first.

    Two CPU cores cannot run a training step and a visitor's request at full speed at once, and
    most of a request's cost comes after the forward pass (PNG, streaming the answer), on the
    web server's one event-loop thread. So between generator steps the job's thread waits until
    no request has been in flight for `grace_s`, for at most `max_wait_s`: a constant stream of
    requests slows training down without stopping it. A request that arrives mid-step shares the
    cores for the rest of that step (a fast-recipe step is tens of milliseconds). Beyond `limit`
    requests at once, new ones are refused with a "busy" message instead of queueing unboundedly."""

    def __init__(self, limit: int = 64, max_wait_s: float = 0.25, grace_s: float = 0.05):
        self.limit, self.max_wait_s, self.grace_s = limit, max_wait_s, grace_s
        self._n = 0
        self._last_end = float("-inf")
        self._cond = threading.Condition()

    @contextmanager
    def request(self):
        with self._cond:
            if self._n >= self.limit:
                raise UserError(f"the server is busy drawing {self._n} other requests; try again in a few seconds")
            self._n += 1
        try:
            yield
        finally:
            with self._cond:
                self._n -= 1
                self._last_end = time.monotonic()
                self._cond.notify_all()

    @property
    def in_flight(self) -> int:
        return self._n

    def wait_idle(self) -> None:
        """Block until no request is in flight or ended within `grace_s`, or `max_wait_s` passed."""
        deadline = time.monotonic() + self.max_wait_s
        with self._cond:
            while (now := time.monotonic()) < deadline:
                if self._n == 0:
                    quiet_at = self._last_end + self.grace_s
                    if now >= quiet_at:
                        return
                    self._cond.wait(min(quiet_at, deadline) - now)
                else:
                    self._cond.wait(deadline - now)


# --- torch's intra-op threads, per thread of the server --------------------------------------
# torch keeps its thread count (OpenMP's and MKL's) per OS thread. The Lab's training thread asks
# for one: its tiny MLP operations gain nothing from a second core and, with the browser and the
# panels' drawing on that core, waiting for it cost a quarter to a third of the Lab's steps
# (bench/bench_lab.py --first-minute, docs/lab.md). Asking also changes the count torch gives
# threads that never asked, so a training job's thread and the visitors' drawing requests ask for
# the process's count, read here at import (OMP_NUM_THREADS, or one per core).
PROCESS_THREADS = torch.get_num_threads()


def use_threads(n: int | None = None) -> None:
    """Give the calling thread `n` torch threads (default: the process's count at start-up)."""
    want = PROCESS_THREADS if n is None else n
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)


@contextmanager
def threads_for_a_while(n: int) -> Iterator[None]:
    """`n` torch threads inside, the calling thread's count restored after: for work done in a
    server thread that other handlers use next (the Lab's refresh measures on one)."""
    before = torch.get_num_threads()
    use_threads(n)
    try:
        yield
    finally:
        use_threads(before)
