"""Faults around the server and the disk: SIGTERM keeps the running job, kills leave no litter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, wait_until_serving
from gradio_client import Client

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]




def test_sigterm_stops_the_servers_job_with_a_checkpoint_then_exits(tmp_path, data_dir, acgan_ckpt):
    """docker stop / a Space restart send SIGTERM: the run must keep a checkpoint (UI runs save
    only every 500 steps otherwise), and the server must then exit promptly and cleanly."""
    import shutil

    shutil.copytree(acgan_ckpt, tmp_path / "checkpoints" / "acgan-mnist")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "WGAN_APP_"))}
    env.update(GRADIO_ANALYTICS_ENABLED="False", GRADIO_SERVER_PORT=str(port), PYTHONPATH=str(ROOT),
               WGAN_APP_CHECKPOINTS=str(tmp_path / "checkpoints"), WGAN_APP_RUNS_DIR=str(tmp_path / "runs"),
               WGAN_APP_DATA_DIR=str(data_dir))
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = wait_until_serving(proc, port)
        client = Client(url, verbose=False)
        client.predict(iters=4000, batch_size=16, api_name="/train_start")
        deadline = time.time() + 120
        while client.predict(api_name="/train_status")["step"] < 3 and time.time() < deadline:
            time.sleep(0.2)
        client.close()
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
        took = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took < 15, f"the server took {took:.1f} s to stop"
    (run,) = (tmp_path / "runs").iterdir()
    ckpts = sorted((run / "checkpoints").glob("step_*"))
    assert ckpts, "SIGTERM lost the run: no checkpoint"
    last = ckpts[-1]
    assert (last / "training_state.pt").is_file()
    step = json.loads((last / "config.json").read_text())["step"]
    assert 3 <= step < 500  # written by the stop, not by the every-500-steps save
    logged = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert 0 <= step - logged[-1] < 4  # the last step trained (a 4000-step UI run logs every 4 steps)


def test_temporary_checkpoint_folders_left_by_a_kill_are_removed(tmp_path, data_dir):
    from wgan_app.config import TrainConfig
    from wgan_app.train import train
    from wgan_app.ui.services import Services, Settings

    run = tmp_path / "runs" / "r"
    cfg = TrainConfig(variant="gan", data_dir=str(data_dir), iters=2, run_dir=str(run), batch_size=16,
                      g_width=8, d_width=8, z_dim=16, log_every=1, sample_every=0, save_every=0)
    list(train(cfg))
    litter = [run / "checkpoints" / ".step_0000003.tmp-k1ll3d", run / "checkpoints" / ".step_0000002.old-4242"]
    for d in litter:
        d.mkdir()
        (d / "training_state.pt").write_bytes(b"\0" * 1024)
    keep = run / "checkpoints" / "notes"  # not ours: left alone
    keep.mkdir()
    Services(Settings(checkpoints_dir=tmp_path / "none", runs_dir=tmp_path / "runs", data_dir=data_dir))
    assert not any(d.exists() for d in litter) and keep.is_dir()  # at server start

    for d in litter:
        d.mkdir()
    done = list(train(cfg.replace(iters=3), resume=True))[-1]  # and on resume
    assert done.reason == "finished" and done.step == 3
    assert not any(d.exists() for d in litter)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["notes", "step_0000002", "step_0000003"]


def test_kill_9_at_random_moments_then_resume_five_times(tmp_path, data_dir):
    """SIGKILL gives no chance to clean up: after each of five kills at random moments (some
    inside a checkpoint write, since every step saves), the newest complete checkpoint loads,
    `--resume` goes on from it, at most --save-every steps are lost, and the finished run holds
    no temporary folder and a contiguous metrics log."""
    import random

    from wgan_app.checkpoint import load_checkpoint
    from wgan_app.rundir import list_step_dirs

    rng = random.Random(1234)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "app.py", "--train", "--variant", "wgan-gp", "--data-dir", str(data_dir),
            "--run-dir", str(run), "--g-width", "8", "--d-width", "8", "--z-dim", "16", "--batch-size", "16",
            "--save-every", "1", "--keep-checkpoints", "2", "--log-every", "1", "--sample-every", "0"]
    resumed_from = []
    for kill in range(5):
        start = [] if kill == 0 else ["--resume"]
        before = len(list_step_dirs(run))
        proc = subprocess.Popen([*base, "--iters", "100000", *start], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120  # wait until this process has saved at least once
            newest = lambda: list_step_dirs(run)[-1].name if list_step_dirs(run) else None  # noqa: E731
            first = newest()
            while newest() == first and time.time() < deadline:
                assert proc.poll() is None, "training exited before it was killed"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.6))
        finally:
            proc.kill()
            proc.wait()
        assert before == 0 or list_step_dirs(run), "a kill lost every checkpoint"
        ckpt = load_checkpoint(run)  # the newest complete one loads
        logged = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
        assert 0 <= logged[-1] - ckpt.step <= 1 + 1  # lost: at most --save-every plus the step being written
        resumed_from.append(ckpt.step)

    final = resumed_from[-1] + 2
    r = subprocess.run([*base, "--iters", str(final), "--resume"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(run).step == final
    assert resumed_from == sorted(resumed_from) and resumed_from[-1] > resumed_from[0]
    names = [p.name for p in (run / "checkpoints").iterdir()]
    assert all(n.startswith("step_") for n in names), names  # no .tmp- / .old- folder is left
    steps = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
    assert steps == list(range(1, final + 1))  # resume rewrote the log from the checkpoint: no gap, no repeat
