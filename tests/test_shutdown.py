"""Faults around the server and the disk: SIGTERM keeps the running job, kills leave no litter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import wait_until_serving
from gradio_client import Client

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_stops_the_servers_job_with_a_checkpoint_then_exits(tmp_path, data_dir, acgan_ckpt):
    """docker stop / a Space restart send SIGTERM: the run must keep a checkpoint (UI runs save
    only every 500 steps otherwise), and the server must then exit promptly and cleanly."""
    import shutil

    shutil.copytree(acgan_ckpt, tmp_path / "checkpoints" / "acgan-mnist")
    port = _free_port()
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
