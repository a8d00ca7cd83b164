"""`torchrun --standalone --nproc-per-node 2 app.py --train` on CPU (gloo), end to end.

Each rank checksums its own whole training state (weights, optimiser moments, RNG states, step)
at every checkpoint and rank 0 records the checksums in the checkpoint's config.json; the tests
recompute the checksum of what rank 0 saved, so equal entries mean every rank held exactly the
saved state. Ranks are told apart by the RANK variable torchrun puts in each worker's environment.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from wgan_app.checkpoint import load_checkpoint, load_training_state
from wgan_app.dist import state_checksum

pytestmark = pytest.mark.dist

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--g-width", 8, "--d-width", 8, "--d-layers", 2, "--g-refine", 0, "--z-dim", 16, "--batch-size", 16,
        # the tolerances below were measured at this lr and beta1; at the default acgan's 2e-3 without
        # momentum, each rank's own batch-norm statistics move the weights apart faster
        "--lr", 5e-4, "--beta1", 0.5]
# On CPU even where there is a GPU: two ranks on a one-GPU machine would be refused (one GPU per rank).
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False",
       "CUDA_VISIBLE_DEVICES": ""}
# torchrun by module: the venv's `torchrun` script beside sys.executable runs the same code.
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def torchrun(*args, timeout=120):
    return subprocess.run([*TORCHRUN, str(ROOT / "app.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=timeout)


def single(*args, timeout=120):
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=ENV, timeout=timeout)


def train_args(data_dir, run, iters, *extra):
    return ["--train", "--data-dir", data_dir, "--run-dir", run, "--iters", iters, "--log-every", 1, *TINY, *extra]


def our_lines(stderr: str) -> list[str]:
    """app.py's own error lines (torchrun adds its failure report after them)."""
    return [line for line in stderr.splitlines() if line.startswith("app.py: error:")]


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_ranks_agree(ckpt: Path) -> None:
    """The checkpoint records two equal rank checksums, and they are the checksum of what it holds."""
    dist = json.loads((ckpt / "config.json").read_text())["distributed"]
    assert dist["world_size"] == 2
    saved = state_checksum(load_training_state(ckpt))
    assert dist["rank_checksums"] == [saved, saved], "a rank held other weights than rank 0 saved"


def rank_pids(launcher: subprocess.Popen, deadline: float) -> dict[int, int]:
    """{rank: pid} of the workers the torchrun agent started (its children, by their RANK)."""
    while time.time() < deadline:
        found = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                if ppid != launcher.pid:
                    continue
                env = (stat.parent / "environ").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            ranks = [int(e[5:]) for e in env if e.startswith(b"RANK=")]
            if ranks:
                found[ranks[0]] = int(stat.parent.name)
        if len(found) == 2:
            return found
        time.sleep(0.1)
    raise AssertionError("torchrun's two workers did not appear")


def wait_for(predicate, deadline: float, launcher: subprocess.Popen, what: str) -> None:
    while not predicate():
        assert launcher.poll() is None, f"torchrun exited before {what}: {launcher.communicate()[1][-2000:]}"
        assert time.time() < deadline, f"no {what} in time"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, data_dir):
    """One uninterrupted 2-process run: 8 steps, a grid and a checkpoint every 4."""
    run = tmp_path_factory.mktemp("dist") / "straight"
    r = torchrun(*train_args(data_dir, run, 8, "--save-every", 4, "--sample-every", 4))
    assert r.returncode == 0, r.stderr[-3000:]
    return run, r


def test_two_ranks_hold_identical_state_and_rank_0_writes_the_run_once(straight):
    run, r = straight
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.json", "metrics.jsonl", "samples"]
    assert [m["step"] for m in metrics(run)] == list(range(1, 9)), "each step logged once, by rank 0"
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000004.png", "step_0000008.png"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000004", "step_0000008"]
    for ckpt in (run / "checkpoints").iterdir():
        assert {p.name for p in ckpt.iterdir()} == {"config.json", "model.safetensors", "training_state.pt",
                                                   "samples.png"}
        assert_ranks_agree(ckpt)
    meta = load_checkpoint(run).meta
    assert meta["step"] == 8 and meta["hardware"]["processes"] == 2
    assert json.loads((run / "config.json").read_text())["batch_size"] == 16  # the global batch, as given
    # One voice: the header, the checkpoints and the final line come from rank 0 only.
    assert r.stderr.count("training acgan on mnist") == 1
    assert "batch 16) on cpu x 2 processes (8 images each)" in r.stderr
    assert r.stderr.count("checkpoint: ") == 2 and r.stderr.count("finished at step 8") == 1


def test_losses_follow_the_single_process_run_with_the_same_global_batch(straight, tmp_path, data_dir):
    """Both runs draw the same data, noise and penalty eps (each rank keeps its half of the global
    batch's draws), and the averaged gradients are the global batch's. What differs is batch
    norm in G: each rank normalises over its own 8 fakes, one process over all 16, so the fakes
    and then the weights drift apart slowly. Measured over these 8 steps: loss_d and loss_g within
    0.4 % of each other, the Wasserstein estimate within 0.008 and the penalty within 0.004;
    another seed moves them by 2-10 % and 0.2-0.8 (the tolerances below sit between)."""
    run, _ = straight
    one = tmp_path / "one"
    r = single(*train_args(data_dir, one, 8, "--save-every", 0, "--sample-every", 0))
    assert r.returncode == 0, r.stderr
    for a, b in zip(metrics(run), metrics(one), strict=True):
        assert a["step"] == b["step"]
        for k in ("loss_d", "loss_g"):
            assert a[k] == pytest.approx(b[k], rel=0.01), (a["step"], k)
        for k in ("wasserstein", "gp"):
            assert a[k] == pytest.approx(b[k], abs=0.02), (a["step"], k)


def test_resume_with_two_processes_ends_exactly_as_the_uninterrupted_run(straight, tmp_path, data_dir):
    run, _ = straight
    part = tmp_path / "part"
    r = torchrun(*train_args(data_dir, part, 4, "--save-every", 4, "--sample-every", 4))
    assert r.returncode == 0, r.stderr[-3000:]
    shutil.copytree(part, tmp_path / "part-copy")  # for the one-process resume below
    r = torchrun("--train", "--resume", "--run-dir", part, "--iters", 8, "--data-dir", data_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "from step 4" in r.stderr
    a, b = run / "checkpoints" / "step_0000008", part / "checkpoints" / "step_0000008"
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa, sb = load_training_state(a), load_training_state(b)
    assert state_checksum(sa) == state_checksum(sb), "weights, optimiser moments and RNG states all equal"
    assert_ranks_agree(b)
    assert [m["step"] for m in metrics(part)] == list(range(1, 9))

    # Another number of processes: the checkpoint holds one RNG state for the global batch, so
    # one process continues the same run (close to, not equal to, the 2-process one: batch norm).
    r = single("--train", "--resume", "--run-dir", tmp_path / "part-copy", "--iters", 8, "--data-dir", data_dir)
    assert r.returncode == 0, r.stderr
    for x, y in zip(metrics(run)[4:], metrics(tmp_path / "part-copy")[4:], strict=True):
        assert x["step"] == y["step"] and x["loss_d"] == pytest.approx(y["loss_d"], rel=0.01)


def test_a_stop_signal_to_one_rank_stops_both_on_the_same_step(tmp_path, data_dir):
    run = tmp_path / "stop"
    launcher = subprocess.Popen([*TORCHRUN, str(ROOT / "app.py"),
                                 *map(str, train_args(data_dir, run, 10**6, "--save-every", 0, "--sample-every", 0))],
                                cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        pids = rank_pids(launcher, deadline)
        wait_for(lambda: (run / "metrics.jsonl").exists() and len(metrics(run)) >= 3, deadline, launcher, "steps")
        os.kill(pids[1], signal.SIGTERM)  # only rank 1 is asked; rank 0 must agree at the next step
        _, err = launcher.communicate(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, err[-3000:]
    step = int(err.split("stopped at step ")[1].split(";")[0])
    ckpt = run / "checkpoints" / f"step_{step:07d}"
    assert [p.name for p in (run / "checkpoints").iterdir()] == [ckpt.name]
    assert_ranks_agree(ckpt)  # both ranks ended on this step with the same state


def test_the_time_limit_ends_both_ranks_on_the_same_step(tmp_path, data_dir):
    run = tmp_path / "clock"
    r = torchrun("--train", "--data-dir", data_dir, "--run-dir", run, "--max-minutes", 0.05, "--log-every", 1,
                 "--save-every", 0, "--sample-every", 0, *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    step = int(r.stderr.split("time limit at step ")[1].split(";")[0])
    assert step > 0 and [m["step"] for m in metrics(run)] == list(range(1, step + 1))
    assert_ranks_agree(run / "checkpoints" / f"step_{step:07d}")


def test_a_killed_rank_ends_the_job_with_one_error_line_and_keeps_the_checkpoint(tmp_path, data_dir):
    run = tmp_path / "killed"
    launcher = subprocess.Popen([*TORCHRUN, str(ROOT / "app.py"),
                                 *map(str, train_args(data_dir, run, 10**6, "--save-every", 5, "--sample-every", 0))],
                                cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        pids = rank_pids(launcher, deadline)
        wait_for(lambda: len(list((run / "checkpoints").glob("step_*"))) >= 1 if (run / "checkpoints").exists()
                 else False, deadline, launcher, "checkpoint")
        os.kill(pids[1], signal.SIGKILL)
        t_kill = time.time()
        _, err = launcher.communicate(timeout=60)
        took = time.time() - t_kill
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode != 0
    assert took < 30, f"rank 0 took {took:.0f} s to notice"  # gloo sees the reset at its next collective
    lines = our_lines(err)
    assert len(lines) == 1 and "rank 0 of 2 lost the other processes" in lines[0], err[-3000:]
    assert "--resume --run-dir" in lines[0]
    latest = load_checkpoint(run)  # the newest complete checkpoint: loadable and consistent
    assert latest.step > 0 and latest.step % 5 == 0
    assert_ranks_agree(latest.path)


def test_a_batch_that_does_not_divide_is_refused_in_one_line(tmp_path, data_dir):
    run = tmp_path / "odd"
    r = torchrun(*train_args(data_dir, run, 4), "--batch-size", 15)
    assert r.returncode != 0
    lines = our_lines(r.stderr)
    assert lines == ["app.py: error: --batch-size 15 does not divide among the 2 processes: it is the global batch, "
                     "split evenly across them; use a multiple of 2 (e.g. 14 or 16)"], r.stderr[-3000:]
    assert not run.exists()


def test_rank_0s_refusal_of_a_resume_reaches_every_rank_in_one_line(straight):
    """config_from_args runs on rank 0 (the run's config.json is on its disk); its UserError is
    raised on every rank, so none waits for the others, and rank 0 alone prints it."""
    run, _ = straight
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    r = torchrun("--train", "--resume", "--run-dir", run, "--iters", 10, "--lr", 0.1, timeout=60)
    assert r.returncode != 0
    lines = our_lines(r.stderr)
    assert len(lines) == 1 and "--lr 0.1 differs from the run's" in lines[0], r.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


def test_only_training_runs_under_torchrun(monkeypatch, capsys):
    from wgan_app.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["--sample", "--checkpoint", "x", "--out", "y.png"]) == 2
    assert capsys.readouterr().err.startswith("app.py: error: under torchrun only --train runs")
