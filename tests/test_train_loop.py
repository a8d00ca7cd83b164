"""The training generator as a library: events, cooperative stop, divergence, time limit."""

import json

import pytest
import torch

from wgan_app import losses
from wgan_app.config import TrainConfig
from wgan_app.train import (CheckpointEvent, DoneEvent, SampleEvent, StepEvent, n_critic_at, train)

TINY = dict(batch_size=16, g_width=8, d_width=8, z_dim=16, log_every=1, sample_every=2, save_every=2)


def test_events_and_stop_flag(tmp_path, data_dir):
    cfg = TrainConfig(variant="wgan-gp", data_dir=str(data_dir), iters=100, run_dir=str(tmp_path / "r"), **TINY)
    seen = []
    for ev in train(cfg, should_stop=lambda: sum(isinstance(e, StepEvent) for e in seen) >= 3):
        seen.append(ev)
    kinds = {type(e) for e in seen}
    assert {StepEvent, SampleEvent, CheckpointEvent, DoneEvent} <= kinds
    done = seen[-1]
    assert isinstance(done, DoneEvent) and done.reason == "stopped" and done.step == 3
    assert done.checkpoint.name == "step_0000003" and (done.checkpoint / "model.safetensors").exists()
    step = [e for e in seen if isinstance(e, StepEvent)][0]
    assert {"loss_d", "loss_g", "wasserstein", "gp", "grad_norm"} <= set(step.metrics)
    assert step.metrics["wasserstein"] == pytest.approx(-step.metrics["loss_d"] + 10 * step.metrics["gp"], rel=1e-4)


def test_checkpoint_rotation_keeps_the_newest(tmp_path, data_dir):
    cfg = TrainConfig(variant="gan", data_dir=str(data_dir), iters=8, run_dir=str(tmp_path / "r"),
                      keep_checkpoints=2, **TINY)
    list(train(cfg))
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == ["step_0000006", "step_0000008"]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, data_dir, monkeypatch):
    cfg = TrainConfig(variant="wgan-gp", data_dir=str(data_dir), iters=10, run_dir=str(tmp_path / "r"), **TINY)
    real = losses.generator_loss_wgan
    calls = {"n": 0}

    def poisoned(d_fake):
        calls["n"] += 1
        return real(d_fake) * (float("nan") if calls["n"] >= 3 else 1.0)

    monkeypatch.setattr(losses, "generator_loss_wgan", poisoned)
    events = list(train(cfg))
    done = events[-1]
    assert done.reason == "diverged" and "step 3" in done.message and "loss_g" in done.message
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == ["step_0000002"]
    last = [json.loads(l) for l in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["step"] == 2


def test_time_limit_stops_with_checkpoint(tmp_path, data_dir):
    cfg = TrainConfig(variant="wgan-gp", data_dir=str(data_dir), iters=10**6, max_minutes=0.02,
                      run_dir=str(tmp_path / "r"), **{**TINY, "save_every": 0})
    done = list(train(cfg))[-1]
    assert done.reason == "time limit" and done.step > 0
    assert (done.checkpoint / "training_state.pt").exists()


def test_wgan_critic_schedule():
    cfg = TrainConfig(variant="wgan")
    assert [n_critic_at(cfg, s) for s in (0, 24, 25, 26, 499, 500, 501, 1000)] == [100, 100, 5, 5, 5, 100, 5, 100]
    assert n_critic_at(cfg.replace(critic_warmup=False), 0) == 5
    assert n_critic_at(TrainConfig(variant="wgan-gp", recipe="paper"), 0) == 5


def test_fashion_mnist_code_path(tmp_path, data_dir):
    cfg = TrainConfig(variant="acgan", dataset="fashion-mnist", data_dir=str(data_dir), iters=2,
                      run_dir=str(tmp_path / "f"), **TINY)
    done = list(train(cfg))[-1]
    assert done.reason == "finished"
    assert json.loads((done.checkpoint / "config.json").read_text())["dataset"] == "fashion-mnist"


def test_default_run_dirs_never_collide(tmp_path, data_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(variant="gan", data_dir=str(data_dir), iters=1, **TINY)
    d1 = list(train(cfg))[-1].run_dir
    d2 = list(train(cfg))[-1].run_dir
    assert d1 != d2 and d1.parent.name == "runs" and d1.name.split("-", 2)[-1].endswith("gan-mnist")


def test_linear_lr_decay_schedule():
    from wgan_app.train import lr_at

    cfg = TrainConfig(variant="wgan-gp", iters=100, lr=1e-3, lr_decay_from=0.6)
    assert [round(lr_at(cfg, s), 8) for s in (0, 59, 60, 80, 99, 100)] == [1e-3, 1e-3, 1e-3, 5e-4, 2.5e-5, 0.0]
    assert lr_at(cfg.replace(lr_decay_from=1.0), 99) == 1e-3
    timed = cfg.replace(iters=10**9, max_minutes=10.0)  # only the clock ends it: decay by time
    assert [round(lr_at(timed, 5, s), 8) for s in (0, 359, 360, 480, 600, 700)] == [1e-3, 1e-3, 1e-3, 5e-4, 0.0, 0.0]
    assert lr_at(cfg.replace(max_minutes=10.0), 80, seconds=1.0) == lr_at(cfg, 80)  # steps further along


def test_shipped_generator_has_recalibrated_batch_norm(tmp_path, data_dir):
    """model.safetensors holds the EMA weights with BN statistics measured on the EMA net itself."""
    from wgan_app.checkpoint import load_checkpoint, load_training_state
    from wgan_app.train import recalibrated, resolve_device

    cfg = TrainConfig(variant="acgan", data_dir=str(data_dir), iters=3, run_dir=str(tmp_path / "r"), **TINY)
    done = list(train(cfg))[-1]
    ck, st = load_checkpoint(done.checkpoint), load_training_state(done.checkpoint)
    for k, v in st["G_ema"].items():
        if "running_" not in k and "num_batches" not in k:
            assert torch.equal(ck.generator_state[k], v), k  # the weights are the averaged ones
    assert not torch.allclose(ck.generator_state["net.1.running_mean"], st["G_ema"]["net.1.running_mean"])
    from wgan_app.models import Generator

    device = resolve_device(cfg.device)  # the run's: CUDA where there is a GPU
    G = Generator(cfg.model).to(device)
    G.load_state_dict(st["G_ema"])
    again = recalibrated(G, cfg, device).state_dict()
    assert torch.equal(again["net.1.running_mean"].cpu(), ck.generator_state["net.1.running_mean"])  # deterministic


def test_written_files_get_the_modes_a_plain_open_would(tmp_path, data_dir):
    """Temp-then-rename must not leave owner-only (0600/0700) checkpoints behind."""
    import os
    import stat

    cfg = TrainConfig(variant="wgan-gp", data_dir=str(data_dir), iters=2, run_dir=str(tmp_path / "r"), **TINY)
    list(train(cfg))
    (tmp_path / "plain").write_bytes(b"")
    (tmp_path / "plain_dir").mkdir()
    file_mode = stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
    dir_mode = stat.S_IMODE(os.stat(tmp_path / "plain_dir").st_mode)
    ckpt = tmp_path / "r" / "checkpoints" / "step_0000002"
    assert stat.S_IMODE(os.stat(ckpt).st_mode) == dir_mode
    for p in [*ckpt.iterdir(), tmp_path / "r" / "config.json", tmp_path / "r" / "samples" / "step_0000002.png"]:
        assert stat.S_IMODE(os.stat(p).st_mode) == file_mode, p
