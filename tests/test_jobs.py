"""The server's training job: every state change under the job's lock, so a stop that races the
end of a run (or a second stop) can never leave the server answering "busy" forever."""

import threading

import pytest

from wgan_app.config import TrainConfig
from wgan_app.errors import UserError
from wgan_app.jobs import FINAL_STATES, Job, JobManager
from wgan_app.trainer import DoneEvent, StepEvent


class GatedTrainer:
    """Yields one StepEvent, then waits for `gate` before ending (stopped if asked, else finished)."""

    def __init__(self, gate: threading.Event):
        self.gate = gate

    def run(self, should_stop):
        yield StepEvent(1, 2, {"loss_d": 0.0}, 0.1, 10.0)
        assert self.gate.wait(10), "the test never opened the gate"
        reason = "stopped" if should_stop() else "finished"
        yield DoneEvent(1 if reason == "stopped" else 2, reason, None, None)


@pytest.fixture
def manager(tmp_path):
    gates = []

    def build(cfg):
        gates.append(threading.Event())
        return GatedTrainer(gates[-1])

    mgr = JobManager(tmp_path / "runs", tmp_path / "data", max_iters=10, build_trainer=build)
    mgr.gates = gates
    yield mgr
    for g in gates:
        g.set()


def _start(mgr, owner="alice"):
    return mgr.start(TrainConfig(variant="gan", iters=2, run_dir=str(mgr.runs_dir / owner)), owner)


def test_finish_then_stop_keeps_the_final_state(manager):
    job = _start(manager)
    manager.gates[-1].set()
    assert job.done.wait(5) and job.state == "finished"
    v = job.version
    assert manager.stop() is job and job.state == "finished" and job.version == v
    assert not job.stop_flag.is_set()
    assert _start(manager, "bob").owner == "bob"  # the server is free again


def test_stop_then_finish_ends_stopped(manager):
    job = _start(manager)
    with pytest.raises(UserError, match="busy"):
        _start(manager, "bob")
    manager.stop(wait_s=0)
    assert job.state == "stopping" and job.running
    manager.gates[-1].set()
    assert job.done.wait(5) and job.state == "stopped" and not job.running
    assert _start(manager, "bob").state in ("starting", "running")


def test_double_stop_is_harmless(manager):
    job = _start(manager)
    assert job.request_stop() is True
    assert job.request_stop() is False or job.state == "stopping"
    manager.stop(wait_s=0)
    manager.gates[-1].set()
    assert job.done.wait(5) and job.state == "stopped"
    manager.stop()
    assert job.state == "stopped"


def test_a_run_ending_between_the_check_and_the_stop_never_wedges(manager, monkeypatch):
    """Force the interleaving: the run finishes right after stop() has looked at it."""
    job = _start(manager)
    real_running = Job.running

    def stale_read(self):
        was_running = real_running.fget(self)
        manager.gates[-1].set()  # the run ends now...
        self.done.wait(5)
        return was_running  # ...but the caller acts on what it saw before

    monkeypatch.setattr(Job, "running", property(stale_read))
    manager.stop(wait_s=0)
    monkeypatch.undo()
    manager.gates[-1].set()
    assert job.done.wait(5)
    assert job.state in FINAL_STATES, job.state
    assert _start(manager, "bob").owner == "bob"


def test_many_racing_stops_always_leave_a_final_state(tmp_path):
    class Instant:
        def run(self, should_stop):
            yield DoneEvent(1, "stopped" if should_stop() else "finished", None, None)

    mgr = JobManager(tmp_path / "runs", tmp_path / "data", build_trainer=lambda cfg: Instant())
    for i in range(200):
        job = mgr.start(TrainConfig(variant="gan", iters=1, run_dir=str(tmp_path / f"r{i}")), f"u{i}")
        mgr.stop(wait_s=0)
        assert job.done.wait(5) and job.state in ("finished", "stopped"), (i, job.state)


def test_a_failing_build_reports_at_start_and_frees_the_server(tmp_path):
    def broken(cfg):
        raise UserError("mnist not found under --data-dir 'x'")

    mgr = JobManager(tmp_path / "runs", tmp_path / "data", build_trainer=broken)
    with pytest.raises(UserError, match="could not start: mnist not found"):
        mgr.start(TrainConfig(variant="gan", iters=1, run_dir=str(tmp_path / "r")), "alice")
    assert mgr.job.state == "failed" and not mgr.job.running
    with pytest.raises(UserError, match="could not start"):  # not "busy"
        mgr.start(TrainConfig(variant="gan", iters=1, run_dir=str(tmp_path / "r2")), "bob")


def test_training_yields_to_requests_in_flight_and_a_flood_is_refused():
    import threading
    import time

    from wgan_app.admission import Foreground

    fg = Foreground(limit=2, max_wait_s=5.0, grace_s=0.0)
    with fg.request():
        t0 = time.perf_counter()
        waited = []
        waiter = threading.Thread(target=lambda: (fg.wait_idle(), waited.append(time.perf_counter() - t0)))
        waiter.start()
        time.sleep(0.3)
        assert not waited  # the trainer waits while a visitor's request runs...
        with fg.request():
            with pytest.raises(UserError, match="busy drawing 2 other requests"):
                with fg.request():  # ...and a third request at once is one too many
                    pass
    waiter.join(2)
    assert waited and 0.25 < waited[0] < 2  # released when the last request left, not at the 5 s cap
    fg.max_wait_s = 0.1
    with fg.request():
        t = time.perf_counter()
        fg.wait_idle()  # a request that never ends delays a step by max_wait_s only
        assert 0.09 < time.perf_counter() - t < 1
    assert fg.in_flight == 0
    fg.grace_s, fg.max_wait_s = 0.2, 5.0
    with fg.request():
        pass
    t = time.perf_counter()
    fg.wait_idle()  # the answer is still being encoded and sent for a moment after the call returns
    assert 0.15 < time.perf_counter() - t < 1


def test_the_eta_comes_from_the_rate_the_server_actually_delivers(monkeypatch):
    """The trainer reports 100 steps/s over each log window, but the windows arrive 1 s apart for
    10 steps: the server delivers 10 steps/s (visitors, evaluations, the page's own requests), and
    the ETA and the reported rate say so. Once the run has ended the rate no longer changes."""
    from wgan_app import jobs

    clock = iter([0.0, 1.0, 2.0, 3.0])
    monkeypatch.setattr(jobs.time, "monotonic", lambda: next(clock))
    job = Job(TrainConfig(variant="gan", iters=100, run_dir="runs/x"), "test")
    events = [StepEvent(s, 100, {"loss_d": 0.0}, 0.1 * s, 100.0) for s in (10, 20, 30)]
    job.run(iter(events))  # ends without a DoneEvent: "failed", but the rate is measured by then
    assert job.measured_rate() == pytest.approx(10.0)
    job.state = "running"
    assert job.eta_s() == pytest.approx(7.0) and job.snapshot()["steps_per_s"] == pytest.approx(10.0)
