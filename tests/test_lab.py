"""The Lab (wgan_app.lab): its measures against known answers, claim 1 trained for real, the
run's controls, rendering, the shipped recordings, and one-line errors for bad input."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from wgan_app.admission import PROCESS_THREADS, use_threads
from wgan_app.errors import UserError
from wgan_app.lab import lines, measures, render, toy
from wgan_app.lab.recorded import load_recordings
from wgan_app.lab.session import MEASURE_EVERY, PRESETS, LabRun, LabSettings, panel_data, run_title
from wgan_app.lab.workspace import LAB_THREADS, Workspace, Workspaces, apply_settings, download_gif

FAST = dict(width=16, batch_size=64)  # small runs: these tests check behaviour, not quality


# --- measures -----------------------------------------------------------------------------------

def test_exact_w1_of_a_shifted_set_is_the_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(64, 2))
    shift = np.array([0.3, -0.4])  # |shift| = 0.5; translation's optimal plan is the identity
    assert measures.exact_w1(a, a + shift) == pytest.approx(0.5, abs=1e-9)
    b = a[rng.permutation(64)]  # same set, other order: the assignment must undo the shuffle
    assert measures.exact_w1(a, b) == pytest.approx(0.0, abs=1e-12)


def test_exact_w1_prefers_the_cheaper_pairing():
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    b = np.array([[1.1, 0.0], [0.1, 0.0]])  # index pairing costs 1.1 + 0.9; the optimum 0.1 + 0.1
    assert measures.exact_w1(a, b) == pytest.approx(0.1)


def test_parallel_lines_w1_is_theta_numerically_and_js_stays_log2():
    u = (np.arange(200) + 0.5) / 200  # the same stratified heights on both lines
    for theta in (-1.5, -0.2, 0.05, 0.7):
        p0 = np.stack([np.zeros_like(u), u], 1)
        p1 = np.stack([np.full_like(u, theta), u], 1)
        assert measures.exact_w1(p0, p1) == pytest.approx(abs(theta), abs=1e-9)
        closed = measures.parallel_lines_distances(theta)
        assert closed["W1"] == abs(theta) and closed["TV"] == 1.0 and math.isinf(closed["KL"])
        # JS from histograms on a grid finer than |theta|: disjoint supports -> log 2, however close
        bins = (np.linspace(-2, 2, 801), np.linspace(0, 1, 11))
        h0, _, _ = np.histogram2d(p0[:, 0], p0[:, 1], bins)
        h1, _, _ = np.histogram2d(p1[:, 0], p1[:, 1], bins)
        assert measures.js_divergence(h0, h1) == pytest.approx(math.log(2)) == closed["JS"]
    assert measures.parallel_lines_distances(0.0) == {"W1": 0.0, "JS": 0.0, "KL": 0.0, "TV": 0.0}


def test_mode_coverage_counts_hand_made_samples():
    data = toy.get_dataset("8gaussians")
    c, s = data.centres, data.sigma
    on_three = np.concatenate([np.repeat(c[:3], 30, 0), np.repeat(c[:3] + [2.9 * s, 0], 10, 0)])  # 2.9 sigma off: still in
    far = np.zeros((40, 2))  # the ring's centre: 2 away from every mode
    cov = measures.mode_coverage(np.concatenate([on_three, far]), c, s)
    assert cov["modes"] == 3 and cov["of"] == 8
    assert cov["high_quality"] == pytest.approx(120 / 160)
    assert list(cov["per_mode"][:3]) == [40, 40, 40] and cov["per_mode"][3:].sum() == 0
    # a mode with fewer high-quality samples than PacGAN's 20-in-2,500 share is not covered
    sparse = np.concatenate([np.repeat(c[:1], 2490, 0), c[1:2] + 0.01, np.full((9, 2), 9.0)])
    assert measures.mode_coverage(sparse, c, s)["modes"] == 1
    assert measures.mode_coverage(np.full((8, 2), np.nan), c, s)["modes"] == 0


def test_tracking_ranks_windows_of_the_curve_against_the_measurements():
    at = [10, 20, 30, 40, 50, 60]
    w1 = [3.0, 2.5, 2.0, 1.2, 1.1, 0.9]
    steps = np.arange(1, 61)
    # a noisy estimate whose window means fall with W1 (each window: its W1 plus +-1 noise that averages out)
    est = np.repeat(np.array(w1) * 10, 10) + np.tile([1.0, -1.0], 30)
    assert measures.tracking(steps, est, at, w1) == pytest.approx(1.0)
    assert measures.tracking(steps, -est, at, w1) == pytest.approx(-1.0)
    # NaN steps (the GAN logs no estimate) are skipped; too few windows or a flat side is no answer
    assert measures.tracking(steps, np.full(60, np.nan), at, w1) is None
    assert measures.tracking(steps[:20], est[:20], at[:2], w1[:2]) is None
    assert measures.tracking(steps, np.ones(60), at, w1) is None
    assert measures.tracking(steps, est, at, [math.inf] * 6) is None


def test_toy_samplers_are_seeded_and_the_mixtures_sit_on_their_modes():
    for name, data in toy.DATASETS.items():
        a, b = toy.sample_np(data, 500, 3), toy.sample_np(data, 500, 3)
        assert a.shape == (500, 2) and np.array_equal(a, b), name
        assert np.abs(a).max() < toy.EXTENT, name
    grid = toy.get_dataset("25gaussians")
    cov = measures.mode_coverage(toy.sample_np(grid, 2500, 0), grid.centres, grid.sigma)
    assert cov["modes"] == 25 and cov["high_quality"] > 0.98  # 3 sigma in 2-D holds 98.9 %


# --- claim 1: the parallel lines, trained -----------------------------------------------------

def test_wgan_critic_moves_theta_to_zero_where_the_minimax_gan_stalls():
    traj = lines.compare(lines.LineSettings(steps=40))
    gan, wgan = traj["GAN, minimax loss"], traj["WGAN-GP critic"]
    assert gan.theta[0] == wgan.theta[0] == 1.0
    assert abs(wgan.theta[-1]) < 0.4, wgan.theta  # 40 steps of ~0.02 each
    assert abs(gan.theta[-1] - 1.0) < 0.1, gan.theta  # barely moved
    assert abs(gan.grad[-1]) < 1e-3  # ... because its gradient vanished
    assert np.median(np.abs(wgan.grad)) == pytest.approx(1.0, abs=0.2)  # dW1/dtheta = 1


# --- a run: controls ---------------------------------------------------------------------------

def test_clipping_keeps_every_critic_weight_in_bounds():
    run = LabRun(PRESETS["wgan"].replace(clip_value=0.05, **FAST))
    run.steps(3)
    for p in run.trainer.state.D.parameters():
        assert p.abs().max() <= 0.05 + 1e-7
    assert np.abs(run.weights()).max() <= 0.05 + 1e-7


def test_batch_norm_switch_adds_batch_norm_to_the_critic_and_changes_the_penalty():
    plain = LabRun(PRESETS["wgan-gp"].replace(**FAST))
    bn = LabRun(PRESETS["wgan-gp"].replace(batch_norm=True, **FAST))
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.trainer.state.D.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in bn.trainer.state.D.modules()) == bn.settings.depth
    bn.steps(2)  # it still trains (the point is that the penalty it computes is not per sample)
    assert np.isfinite(bn.penalty_grad_norms()).all()


def test_settings_change_applies_at_the_next_step_not_before():
    run = LabRun(PRESETS["wgan"].replace(**FAST))
    run.steps(2)
    assert "next step" in run.update(run.settings.replace(clip_value=0.002, lr=5e-4))
    assert np.abs(run.weights()).max() > 0.002  # still the old c until a step runs
    run.critic_step()
    assert np.abs(run.weights()).max() <= 0.002 + 1e-9
    assert run.trainer.state.opt_d.param_groups[0]["lr"] == 5e-4
    # a network change restarts the run at the next step
    assert "restarts" in run.update(run.settings.replace(width=8))
    assert run.step == 2
    run.generator_step()
    assert run.step == 1 and run.trainer.state.D.linear_layers()[0].out_features == 8


def test_one_critic_step_leaves_the_generator_and_one_generator_step_leaves_the_critic():
    run = LabRun(PRESETS["wgan-gp"].replace(**FAST))
    g0 = [p.clone() for p in run.trainer.state.G.parameters()]
    d0 = [p.clone() for p in run.trainer.state.D.parameters()]
    run.critic_step()
    assert run.step == 0 and all(torch.equal(a, b) for a, b in zip(g0, run.trainer.state.G.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d0, run.trainer.state.D.parameters()))
    d1 = [p.clone() for p in run.trainer.state.D.parameters()]
    run.generator_step()
    assert run.step == 1 and all(torch.equal(a, b) for a, b in zip(d1, run.trainer.state.D.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(g0, run.trainer.state.G.parameters()))


def test_same_seed_same_run_and_the_global_rng_is_left_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = LabRun(PRESETS["gan"].replace(**FAST)), LabRun(PRESETS["gan"].replace(**FAST))
    assert torch.equal(torch.rand(1), before)
    a.steps(3), b.steps(3)
    assert np.array_equal(a.fake_points(), b.fake_points())


# --- pictures and replays -------------------------------------------------------------------------

def test_a_charts_axis_labels_fit_left_of_its_frame_and_still_read_as_the_value():
    from wgan_app.lab.render import _axis_label, text_length

    for v in (-0.000419, 1.81e-05, -1.35, 0.749, 1234.5, 0.0):  # a clipped critic's losses are ~1e-4
        label = _axis_label(v, 42)
        assert text_length(label) <= 42 and float(label) == pytest.approx(v, rel=0.03, abs=1e-12), label
    assert _axis_label(-1.35, 42) == "-1.35"  # short labels keep their 3 digits


def test_panel_renders_an_image_of_the_right_shape_that_shows_training():
    run = LabRun(PRESETS["wgan-gp"].replace(**FAST))
    first = render.panel(panel_data(run.view(copy=False), run_title(run.settings)))
    assert first.dtype == np.uint8 and first.shape == (render.HEAD_H + render.PANEL_W + render.CURVES_H + render.HIST_H,
                                                       render.PANEL_W, 3)
    run.steps(5)
    second = render.panel(panel_data(run.view(copy=False), run_title(run.settings)))
    assert second.shape == first.shape and not np.array_equal(first, second)
    assert len(run.measured) == 1  # 5 < MEASURE_EVERY steps: the exact W1 is not recomputed ...
    panel_data(run.view(fresh=True, copy=False), run_title(run.settings))  # ... unless asked (a button's single step)
    assert len(run.measured) == 2 and run.measured[-1].step == 5 and run.measured[-1].modes is not None
    run.steps(MEASURE_EVERY)
    assert run.measure().step == 5 + MEASURE_EVERY and len(run.measured) == 3
    assert run.tracking() is None  # 3 measurements: too few to rank
    for _ in range(4):
        run.steps(MEASURE_EVERY)
        run.measure()
    rho = run.tracking()
    assert rho is not None and -1 <= rho <= 1
    assert panel_data(run.view(copy=False), run_title(run.settings)).note == f"rho(W estimate, W1) {rho:+.2f}"


def test_shipped_recordings_load_replay_and_stay_small():
    recs = load_recordings()
    assert [r.meta["preset"] for r in recs] == list(PRESETS)
    total = sum((load_recordings.__globals__["DEFAULT_DIR"] / f"{p}.npz").stat().st_size for p in PRESETS)
    assert total < 2_000_000
    for r in recs:
        assert r.n_frames >= 10
        a, b = r.panel(0), r.panel(r.n_frames - 1)
        assert a.shape == b.shape and not np.array_equal(a, b)
    assert recs[1].arrays["weights"][-1].astype(np.float32).max() <= recs[1].meta["settings"]["clip_value"] + 1e-3


def test_workspace_trains_three_runs_and_keeps_gif_frames(tmp_path):
    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()])
    steps = ws.train(budget_s=0.05)
    assert len(steps) == 3 and all(k >= 1 for k in steps)
    assert len(ws.panels()) == 3 and len(ws.frames) == 1
    assert download_gif(ws, tmp_path / "lab.gif").endswith("lab.gif") and (tmp_path / "lab.gif").stat().st_size > 0
    table = Workspaces(max_size=2)
    first = table.get("a")
    table.get("b"), table.get("c")
    assert len(table) == 2 and table.get("a", create=False) is None and first is not None


def test_the_lab_thread_trains_on_one_torch_thread_and_a_thread_that_asks_gets_the_process_count():
    """The Lab's training thread asks torch for LAB_THREADS; the caller's count is untouched, and a
    thread that asks for the default (a training job, a drawing request) gets PROCESS_THREADS back
    even after the Lab's request changed what torch hands threads that never asked."""
    before = torch.get_num_threads()
    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()])
    seen, train = [], ws.train

    def recording(*a, **kw):
        seen.append(torch.get_num_threads())
        return train(*a, **kw)

    ws.train = recording
    ws.keep_training(0.3, resume=True)
    ws._thread.join()
    assert seen and set(seen) == {LAB_THREADS} and sum(r.step for r in ws.runs) > 0
    assert torch.get_num_threads() == before
    got = []
    job = threading.Thread(target=lambda: (use_threads(), got.append(torch.get_num_threads())))
    job.start()
    job.join()
    assert got == [PROCESS_THREADS]


def test_a_snapshot_is_measured_and_drawn_after_the_lock_as_it_was_when_taken():
    """A refresh copies the runs under the lock and measures and draws after it: training in
    between must not change what it draws (networks and curves are copies), the picture is the
    same as drawing at once, and the exact W1 it measured joins the run's curve."""
    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()])
    ws.train(budget_s=0.05)
    with ws.held():
        views = ws.snapshot()
    steps = [r.step for r in ws.runs]
    ws.train(budget_s=0.05)  # the training thread's next slice, before this refresh measures and draws
    assert all(r.step > s for r, s in zip(ws.runs, steps))
    at_once = [p.copy() for p in ws.draw(views, keep_frame=False)]
    assert [r.measured[-1].step for r in ws.runs] == steps  # measured at the snapshot's step, kept by the run
    assert all(len(v.history["step"]) == len(v.history["loss_d"]) == v.step for v in views)
    assert all(np.array_equal(a, b) for a, b in zip(at_once, ws.draw(views, keep_frame=False)))
    assert [len(r.measured) for r in ws.runs] == [1, 1, 1]  # drawing the same snapshot again measures nothing new
    with ws.held():
        fresh = ws.snapshot(fresh=True)
    ws.draw(fresh, keep_frame=False)
    assert [r.measured[-1].step for r in ws.runs] == [r.step for r in ws.runs]


def test_a_refresh_measures_on_one_torch_thread_and_gives_the_servers_thread_its_count_back(monkeypatch):
    """The server thread that runs a refresh serves other handlers next: it measures on
    LAB_THREADS and leaves with the count it came with."""
    from wgan_app.lab import session

    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()])
    ws.train(budget_s=0.05)
    seen, measure = [], session.RunView.measure

    def recording(self):
        seen.append(torch.get_num_threads())
        return measure(self)

    monkeypatch.setattr(session.RunView, "measure", recording)
    torch.set_num_threads(2)
    try:
        with ws.held():
            views = ws.snapshot()
        ws.draw(views)
        assert seen == [LAB_THREADS] * 3 and torch.get_num_threads() == 2
    finally:
        use_threads()


def test_a_measurement_of_a_run_restarted_since_its_snapshot_is_dropped():
    run = LabRun(PRESETS["wgan-gp"].replace(**FAST))
    run.steps(3)
    stale = run.view()
    run.reset()  # a settings change restarted the run while the refresh measured
    stale.measure()
    assert run.measured == [] and run.step == 0
    run.steps(2)
    run.record(stale.measured[-1], stale.epoch)  # a late copy of the stale measurement: still dropped
    assert run.measured == []
    assert run.measure().step == 2 and len(run.measured) == 1


def test_the_training_thread_trains_while_refreshed_yields_the_lock_and_stops_when_left():
    import time

    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()])
    ws.keep_training(for_s=10.0)
    deadline = time.monotonic() + 8
    while not all(r.step > 0 for r in ws.runs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ws.training and all(r.step > 0 for r in ws.runs)
    slices = []  # a refresh gets the workspace while the thread trains: after the slice under way
    train = ws.train
    ws.train = lambda budget_s=None: (slices.append(1), train(budget_s))[1]
    for _ in range(5):
        started = len(slices)
        with ws.held():
            assert len(slices) - started <= 1, "the thread took another slice ahead of a waiting refresh"
            before = [r.step for r in ws.runs]
            time.sleep(0.05)
            assert [r.step for r in ws.runs] == before  # nothing trains under a holder's feet
    ws.pause(wait=True)
    assert not ws.training
    stopped = [r.step for r in ws.runs]
    ws.keep_training()  # a refresh that was in flight when Pause was pressed: no restart
    time.sleep(0.1)
    assert [r.step for r in ws.runs] == stopped and not ws.training
    ws.keep_training(for_s=0.2, resume=True)  # Run; then no refresh keeps it alive (a closed page)
    # ... and it stops on its own
    ws._thread.join(30)
    assert not ws.training and not ws._thread.is_alive()
    table = Workspaces(max_size=1)
    table.get("a").keep_training(for_s=5.0)
    gone = table.get("a")
    table.drop("a")  # the page unloaded
    gone._thread.join(30)
    assert not gone._thread.is_alive()
    yielded = []
    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()], yield_to=lambda: yielded.append(1))
    ws.trained_s = 10**9  # out of training time: the thread ends at once
    ws.keep_training(for_s=5.0)
    ws._thread.join(2)
    assert not ws._thread.is_alive() and all(r.step == 0 for r in ws.runs) and yielded


def test_fast_forward_trains_every_run_to_its_target_without_a_refresh_and_pause_stops_it():
    import time

    from wgan_app.lab.workspace import MAX_SKIP, fast_forward

    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()])
    ws.runs[0].steps(7)  # runs at different steps each go `steps` further
    with ws.held():
        assert "fast-forward" in fast_forward(ws, 40.0)  # gr.Number may send a float
    assert ws.skipping and ws.progress().startswith("fast-forward (panels paused): ")
    ws._thread.join(60)  # no refresh keeps it alive: the targets do
    assert not ws.skipping and ws.progress() == ""
    assert [r.step for r in ws.runs] == [47, 40, 40]  # exactly there: an arrived run sits out
    with ws.held():
        fast_forward(ws, MAX_SKIP)
    time.sleep(0.2)
    ws.pause(wait=True)  # Pause ends a fast-forward too
    assert not ws.skipping and not ws.training and all(r.step < 40 + MAX_SKIP for r in ws.runs)
    for bad in (0, "many", MAX_SKIP + 1):
        with pytest.raises(UserError) as e:
            fast_forward(ws, bad)
        assert "steps to skip" in str(e.value) and "\n" not in str(e.value)


def _same_weights(a: LabRun, b: LabRun) -> bool:
    pairs = [(a.trainer.state.G, b.trainer.state.G), (a.trainer.state.D, b.trainer.state.D)]
    return all(torch.equal(p, q) for m, n in pairs for p, q in zip(m.state_dict().values(), n.state_dict().values()))


def test_a_run_trained_in_a_fast_forward_worker_is_the_run_trained_here_bit_for_bit():
    from wgan_app.lab import fastforward

    here, there = (LabRun(PRESETS["wgan-gp"].replace(**FAST)) for _ in range(2))
    here.steps(25)
    while there.step < 25:  # short chunks: the run goes to the worker and back several times
        epoch, step = there.epoch, there.step
        trained, cpu = fastforward.submit(there.for_worker(), 25, seconds=0.02).result(timeout=120)
        assert there.adopt(trained, epoch, step) and cpu > 0
    assert there.step == 25 and there.history == here.history and _same_weights(here, there)
    assert [m.step for m in there.measured] == [25]  # it measured itself there, as a fast-forward does
    here.steps(3)  # the optimisers' state and the random generators came back too
    there.steps(3)
    assert _same_weights(here, there)
    # A copy trained while the run itself moved on is not adopted: restarted, or stepped here
    epoch, step = there.epoch, there.step
    trained, _ = fastforward.submit(there.for_worker(), 30).result(timeout=120)
    there.reset()
    assert not there.adopt(trained, epoch, step) and there.step == 0
    epoch, step = there.epoch, there.step
    trained, _ = fastforward.submit(there.for_worker(), 5).result(timeout=120)
    there.steps(1)
    assert not there.adopt(trained, epoch, step) and there.step == 1


def test_fast_forward_in_workers_gives_each_run_the_weights_of_a_fast_forward_here(monkeypatch):
    from wgan_app.lab import fastforward

    settings = [s.replace(**FAST) for s in PRESETS.values()]
    spaces = [Workspace(settings), Workspace(settings)]
    for ws in spaces:
        ws.runs[0].steps(3)
    monkeypatch.setattr(fastforward, "WORKERS", 0)  # the first trains in the server's thread
    with spaces[0].held():
        spaces[0].fast_forward(30)
    spaces[0]._thread.join(120)
    monkeypatch.undo()
    with spaces[1].held():
        spaces[1].fast_forward(30)
    spaces[1]._thread.join(120)
    assert [r.step for r in spaces[1].runs] == [r.step for r in spaces[0].runs] == [33, 30, 30]
    assert all(_same_weights(a, b) for a, b in zip(*[ws.runs for ws in spaces]))
    # both measured themselves on the way, so the exact-W1 curve and rho are whole when they draw
    for a, b in zip(*[ws.runs for ws in spaces]):
        assert [(m.step, m.w1) for m in a.measured] == [(m.step, m.w1) for m in b.measured]
        assert [m.step for m in a.measured] == [25]
    assert spaces[1].paused and not spaces[1].skipping and spaces[1].trained_s > 0


def test_a_fast_forward_whose_worker_dies_finishes_in_the_servers_thread(monkeypatch):
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from wgan_app.lab import fastforward

    def dead(run, target, seconds=fastforward.CHUNK_S):
        f = Future()
        f.set_exception(BrokenProcessPool("a worker was killed"))
        return f

    monkeypatch.setattr(fastforward, "submit", dead)
    monkeypatch.setattr(fastforward, "_BROKEN", False)
    monkeypatch.setattr(fastforward, "_POOL", None)
    monkeypatch.setattr(fastforward, "WORKERS", 2)
    monkeypatch.setattr(fastforward, "pool", lambda: None if fastforward._BROKEN else object())
    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()])
    with ws.held():
        ws.fast_forward(12)
    ws._thread.join(60)
    assert fastforward._BROKEN and [r.step for r in ws.runs] == [12, 12, 12] and not ws.skipping


def test_ticks_and_buttons_at_once_start_one_training_thread(monkeypatch):
    import time

    entered = []
    monkeypatch.setattr(Workspace, "_train_loop", lambda self: (entered.append(1), time.sleep(0.5)))
    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()])
    barrier = threading.Barrier(8)

    def press():
        barrier.wait()  # eight refreshes and Run land together
        ws.keep_training()

    callers = [threading.Thread(target=press) for _ in range(8)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    ws._thread.join()
    assert entered == [1]


def test_parallel_training_gives_each_run_the_weights_it_would_have_trained_alone():
    settings = [s.replace(**FAST) for s in PRESETS.values()]
    ws = Workspace(settings, parallel=True)
    steps = ws.train(budget_s=0.05)
    ws.runs[0].update(settings[0].replace(seed=5))  # a restart inside a training thread: seeded init under a lock
    steps = [a + b for a, b in zip(steps, ws.train(budget_s=0.05))]
    assert all(k >= 1 for k in steps) and ws.trained_s > 0
    for run, s in zip(ws.runs, settings):
        alone = LabRun(run.settings)
        alone.steps(run.step)
        for a, b in zip(run.trainer.state.G.parameters(), alone.trainer.state.G.parameters()):
            assert torch.equal(a, b)


# --- bad input: one line, named -------------------------------------------------------------------

@pytest.mark.parametrize("change, field", [
    (dict(objective="lsgan"), "objective"), (dict(optimizer="adagrad"), "optimiser"),
    (dict(lr=0), "learning rate"), (dict(lr="fast"), "learning rate"), (dict(n_critic=0), "n_critic"),
    (dict(n_critic=2.5), "n_critic"), (dict(clip_value=-1), "clip value"), (dict(lambda_gp=float("nan")), "lambda"),
    (dict(depth=9), "depth"), (dict(width=None), "width"), (dict(batch_size=10**6), "batch size"),
    (dict(z_dim=0), "noise dimension"), (dict(dataset="swissroll"), "dataset"), (dict(seed=-1), "seed"),
])
def test_bad_settings_raise_one_line_user_errors(change, field):
    with pytest.raises(UserError) as e:
        LabSettings(**{**PRESETS["gan"].__dict__, **change}).checked()
    assert field in str(e.value) and "\n" not in str(e.value)


def test_bad_input_through_the_workspace_and_measures_is_one_line():
    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()])
    for call in (lambda: apply_settings(ws, 5, "8gaussians", 0), lambda: apply_settings(ws, 0, "8gaussians", 0, lr=-1),
                 lambda: apply_settings(ws, 0, "8gaussians", 0, colour="red"),
                 lambda: measures.exact_w1(np.zeros((3, 2)), np.zeros((4, 2))),
                 lambda: Workspaces().get("")):
        with pytest.raises(UserError) as e:
            call()
        assert "\n" not in str(e.value)
    assert "next step" in apply_settings(ws, 2, "8gaussians", PRESETS["gan"].seed, lambda_gp=1.0)


# --- the settings form follows the objective; messages stay readable ------------------------------

def test_form_follows_the_objective_and_shows_only_its_constraint_knob():
    from wgan_app.lab.workspace import form_for

    clip, gp, gan = form_for("wgan"), form_for("wgan-gp"), form_for("gan")
    assert clip["show"] == "clip_value" and gp["show"] == "lambda_gp" and gan["show"] is None
    assert (clip["optimizer"], clip["n_critic"]) == ("rmsprop", 5) and (gan["optimizer"], gan["n_critic"]) == ("adam", 1)
    assert gp["lr"] == PRESETS["wgan-gp"].lr and clip["clip_value"] == PRESETS["wgan"].clip_value
    with pytest.raises(UserError) as e:
        form_for("lsgan")
    assert "objective" in str(e.value) and "\n" not in str(e.value)


def test_a_data_or_seed_change_says_the_runs_restart_and_the_note_outlives_a_tick(monkeypatch):
    from wgan_app.lab import workspace

    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()])
    ws.runs[0].steps(2)
    other = PRESETS["gan"].seed + 1
    assert "restart" in workspace.set_data(ws, "8gaussians", other)
    assert "restart" in ws.note  # the timer's next redraw still shows it ...
    for run in ws.runs:
        run.steps(1)
    assert ws.runs[0].step == 1 and all(r.settings.seed == other for r in ws.runs)
    monkeypatch.setattr(workspace.time, "time", lambda: 1e12)
    assert ws.note == ""  # ... and a few seconds later it is gone
    assert workspace.set_data(ws, "8gaussians", other) == "nothing changed"


def test_a_tick_trains_for_what_the_refresh_leaves_and_never_for_nothing():
    from wgan_app.lab import workspace

    ws = Workspace([s.replace(**FAST) for s in PRESETS.values()])
    ws.render_s = 0.05
    assert ws.tick_budget() == pytest.approx(workspace.TICK_S - workspace.OVERHEAD_S - 0.05)
    ws.render_s = 1.0  # a slow refresh: runs still move a little each tick
    assert ws.tick_budget() == workspace.MIN_TRAIN_S
    ws.panels()
    assert 0 < ws.render_s < 1.0  # measured, not left at the guess


def test_panel_files_in_gradios_cache_are_bounded(monkeypatch, tmp_path):
    """The Lab writes its panels' PNGs itself; a page left running must not fill the disk."""
    import numpy as np

    from wgan_app.ui import lab_tab

    monkeypatch.setattr(lab_tab, "get_upload_folder", lambda: str(tmp_path))
    monkeypatch.setattr(lab_tab, "MAX_PANEL_FILES", 5)
    monkeypatch.setattr(lab_tab, "_PANELS", lab_tab.deque())
    paths = [lab_tab._png_in_cache(np.full((8, 8, 3), i, np.uint8)) for i in range(12)]
    assert sorted(tmp_path.rglob("*.png")) == sorted(Path(p) for p in paths[-5:])
    again = lab_tab._png_in_cache(np.full((8, 8, 3), 7, np.uint8))  # an unchanged panel: the same file
    assert again == paths[7] and Path(again).exists() and len(list(tmp_path.rglob("*.png"))) == 5


def test_the_lab_says_where_claim_3_was_measured_and_where_it_does_not_show():
    from wgan_app.lab.toy import DATASETS
    from wgan_app.ui.lab_tab import DATA_NOTES

    assert set(DATA_NOTES) <= set(DATASETS) and all(DATASETS[k].is_mixture for k in DATA_NOTES)
    assert "not" in DATA_NOTES["25gaussians"]  # the grid preset: the claim does not reproduce there
