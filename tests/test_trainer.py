"""The Trainer and the training generator (trainer.py, train.py): whole generator steps, events,
cooperative stop, exact resume after a stop at any critic iteration, divergence, the time limit,
checkpoint rotation, the schedules (warm-up, lr decay), and a Trainer that knows no dataset."""

import json
import os
import random

import pytest
import torch
import torch.nn as nn

from wgan_app import losses
from wgan_app.checkpoint import load_training_state
from wgan_app.config import TrainConfig
from wgan_app.errors import UserError
from wgan_app.objectives import VARIANTS, WGANGP, build_objective
from wgan_app.train import (
    CheckpointEvent,
    DoneEvent,
    SampleEvent,
    StepEvent,
    build_trainer,
    n_critic_at,
    resolve_device,
    train,
    use_deterministic_kernels,
)
from wgan_app.trainer import Trainer

TINY = dict(batch_size=16, g_width=8, d_width=8, z_dim=16, log_every=1, sample_every=0, save_every=0)


def _final_state(run_dir, step):
    ck = run_dir / "checkpoints" / f"step_{step:07d}"
    return torch.load(ck / "training_state.pt", weights_only=True)


def _assert_same_weights(a: dict, b: dict):
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


# The UI's Stop and Ctrl-C land at a random moment, usually inside a critic phase. The run must
# finish that generator step before it stops, so resuming replays nothing and skips nothing.
@pytest.mark.parametrize("variant, extra, counted", [
    ("acgan", {"n_critic": 5}, "gradient_penalty"),  # 5 critic updates per generator step
    ("wgan", {"n_critic": 5, "critic_warmup": True}, "clip_weights"),  # 100 per step in the warm-up
])
def test_stop_at_a_random_critic_iteration_then_resume_equals_uninterrupted(
        tmp_path, data_dir, monkeypatch, variant, extra, counted):
    per_step = 100 if extra.get("critic_warmup") else 5
    calls = {"n": 0}
    real = getattr(losses, counted)

    def counting(*a, **kw):
        calls["n"] += 1
        return real(*a, **kw)

    monkeypatch.setattr(losses, counted, counting)
    stop_after = random.Random(variant).randrange(per_step + 1, 2 * per_step)  # inside step 2's critic phase
    base = TrainConfig(variant=variant, data_dir=str(data_dir), iters=4, **TINY, **extra)

    straight = tmp_path / "straight"
    assert list(train(base.replace(run_dir=str(straight))))[-1].reason == "finished"

    calls["n"] = 0
    stopped = tmp_path / "stopped"
    done = list(train(base.replace(run_dir=str(stopped)), should_stop=lambda: calls["n"] >= stop_after))[-1]
    assert done.reason == "stopped" and done.step == 2, "the step in flight finishes before the stop"
    assert calls["n"] == 2 * per_step, "no critic update of step 3 ran"
    done = list(train(base.replace(run_dir=str(stopped)), resume=True))[-1]
    assert done.reason == "finished" and done.step == 4
    _assert_same_weights(_final_state(straight, 4), _final_state(stopped, 4))
    steps = [json.loads(l)["step"] for l in (stopped / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_logged_critic_stats_are_the_mean_over_the_critic_phase(tmp_path, data_dir, monkeypatch):
    """The clipping warm-up runs 100 critic updates per generator step: log all 100, not the last."""
    seen = []
    real = losses.critic_loss_wgan

    def recording(d_real, d_fake):
        loss = real(d_real, d_fake)
        seen.append(loss.item())
        return loss

    monkeypatch.setattr(losses, "critic_loss_wgan", recording)
    cfg = TrainConfig(variant="wgan", data_dir=str(data_dir), iters=1, run_dir=str(tmp_path / "r"),
                      critic_warmup=True, **TINY)
    step = next(e for e in train(cfg) if isinstance(e, StepEvent))
    assert len(seen) == 100
    mean = sum(seen) / len(seen)
    assert abs(mean - seen[-1]) > 1e-6  # the test can tell the mean from the last value
    assert step.metrics["loss_d"] == pytest.approx(mean, rel=1e-5, abs=1e-7)
    assert step.metrics["wasserstein"] == pytest.approx(-mean, rel=1e-5, abs=1e-7)


def test_setup_is_eager_bad_input_raises_before_any_event(tmp_path, data_dir):
    cfg = TrainConfig(variant="gan", data_dir=str(tmp_path / "no-data"), iters=2, run_dir=str(tmp_path / "r"), **TINY)
    with pytest.raises(UserError, match="--data-dir"):
        train(cfg)  # not iterated: the error comes from the call itself
    with pytest.raises(UserError, match="--batch-size"):
        train(TrainConfig(variant="gan", data_dir=str(data_dir), run_dir=str(tmp_path / "r2"),
                          **{**TINY, "batch_size": 10**5}))
    assert not (tmp_path / "r").exists() and not (tmp_path / "r2").exists()
    events = train(TrainConfig(variant="gan", data_dir=str(data_dir), iters=1, run_dir=str(tmp_path / "r3"), **TINY))
    assert (tmp_path / "r3" / "config.json").is_file()  # written before the first event is asked for
    assert isinstance(list(events)[-1], DoneEvent)


def test_checkpoints_record_hardware_and_training_time(tmp_path, data_dir):
    done = list(train(TrainConfig(variant="wgan-gp", data_dir=str(data_dir), iters=2,
                                  run_dir=str(tmp_path / "r"), **TINY)))[-1]
    meta = json.loads((done.checkpoint / "config.json").read_text())
    assert meta["hardware"]["device"] == resolve_device("auto").type  # CUDA where there is a GPU
    assert meta["hardware"]["threads"] == torch.get_num_threads()
    assert meta["train_seconds"] > 0 and meta["train_config"]["lr"] == TrainConfig(variant="wgan-gp").lr


def test_a_checkpoint_from_another_kind_of_device_resumes_with_a_noise_seed_drawn_from_it(tmp_path, data_dir):
    """A CPU generator's state cannot be restored into a CUDA one (5,056 bytes against 16), and back."""
    cfg = TrainConfig(variant="wgan-gp", data_dir=str(data_dir), iters=2, run_dir=str(tmp_path / "r"), **TINY)
    st = load_training_state(list(train(cfg))[-1].checkpoint)
    same = build_trainer(cfg.replace(run_dir=str(tmp_path / "same")))
    same.state.load_state_dict(st)
    assert not same.state.noise_reseeded
    # the state of the other kind of generator: a CUDA one's 16 bytes here, a CPU one's on a GPU machine
    other = torch.Generator().get_state() if same.device.type == "cuda" else torch.arange(16, dtype=torch.uint8)
    other_kind = {**st, "rng_noise": other}
    a, b = (build_trainer(cfg.replace(run_dir=str(tmp_path / n))) for n in ("a", "b"))
    for t in (a, b):
        t.state.load_state_dict(other_kind)
        assert t.state.noise_reseeded and t.state.step == 2
    assert torch.equal(a.noise(8)[0], b.noise(8)[0])  # the same checkpoint resumes the same way
    assert not torch.equal(a.noise(8)[0], same.noise(8)[0])
    assert set(a.step()) >= {"loss_d", "loss_g"}


def test_deterministic_kernels_switch_on_and_off(monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")  # recorded, so the test's value goes again afterwards
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    try:
        use_deterministic_kernels(True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.utils.deterministic.fill_uninitialized_memory  # no NaN fill of every empty()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8" and not torch.backends.cudnn.benchmark
        use_deterministic_kernels(False)
        assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    finally:
        use_deterministic_kernels(False)
    with pytest.raises(UserError, match="deterministic"):
        TrainConfig(variant="gan", deterministic="yes")


# --- the Trainer knows no dataset: the same code fits a 2-D mixture with MLPs ------------------


class PointG(nn.Module):
    z_dim, n_classes = 2, 0

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, z, y=None):
        return self.net(z)


class PointD(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        return self.net(x).squeeze(1), None


class TwoBlobs:
    """Points at (+-2, 0) with a little noise: (B, 2) and no labels."""

    def __len__(self):
        return 10**6

    def batch(self, batch_size, generator):
        sign = torch.randint(2, (batch_size, 1), generator=generator) * 2 - 1
        x = torch.cat([2.0 * sign, torch.zeros(batch_size, 1)], 1)
        return x + 0.05 * torch.randn(batch_size, 2, generator=generator), None


def test_trainer_fits_2d_points_with_mlps_and_no_run_directory():
    torch.manual_seed(0)
    G, D = PointG(), PointD()
    # 300 steps: with the penalty taken per point (it used to broadcast (B, 2) points into a (B, B)
    # cross product) the generator is still crossing over at step 150 and sits on the blobs by 300.
    cfg = TrainConfig(variant="wgan-gp", iters=300, batch_size=64, lr=2e-3, n_critic=3, ema=0, log_every=25,
                      sample_every=0, save_every=0)
    trainer = Trainer(cfg, G, D, build_objective(cfg), TwoBlobs())
    z = torch.randn(512, 2, generator=torch.Generator().manual_seed(1))

    def mean_distance_to_data():
        with torch.no_grad():
            x = G(z)
        return (torch.stack([(x - torch.tensor([2.0, 0])).norm(dim=1), (x + torch.tensor([2.0, 0])).norm(dim=1)])
                .min(0).values.mean().item())

    before = mean_distance_to_data()
    stats = trainer.step()  # one whole generator step
    assert trainer.state.step == 1 and {"loss_d", "loss_g", "wasserstein", "gp", "grad_norm"} <= set(stats)
    events = list(trainer.run())
    assert isinstance(events[-1], DoneEvent) and events[-1].reason == "finished" and events[-1].run_dir is None
    assert sum(isinstance(e, StepEvent) for e in events) == 12
    assert mean_distance_to_data() < 0.5 * before


def test_every_variant_is_one_objective_class_that_config_and_cli_read():
    from wgan_app.cli import build_parser

    help_text = build_parser().format_help()
    for name, cls in VARIANTS.items():
        assert cls.variant == name and cls.title and cls.summary and cls.constraint in cls.constraints()
        assert name in help_text
        cfg = TrainConfig(variant=name)
        assert isinstance(build_objective(cfg), cls)
        for k, v in cls.recipe_for(cfg.constraint, cfg.recipe).items():
            assert getattr(cfg, k) == v, (name, k)
    acgan_clip = build_objective(TrainConfig(variant="acgan", constraint="clip"))
    assert type(acgan_clip.inner).__name__ == "WGANClip"
    assert isinstance(build_objective(TrainConfig(variant="acgan")).inner, WGANGP)


TINY_RUN = dict(batch_size=16, g_width=8, d_width=8, z_dim=16, log_every=1, sample_every=2, save_every=2)


def test_events_and_stop_flag(tmp_path, data_dir):
    cfg = TrainConfig(variant="wgan-gp", data_dir=str(data_dir), iters=100, run_dir=str(tmp_path / "r"), **TINY_RUN)
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
                      keep_checkpoints=2, **TINY_RUN)
    list(train(cfg))
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == ["step_0000006", "step_0000008"]


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, data_dir, monkeypatch):
    cfg = TrainConfig(variant="wgan-gp", data_dir=str(data_dir), iters=10, run_dir=str(tmp_path / "r"), **TINY_RUN)
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
                      run_dir=str(tmp_path / "r"), **{**TINY_RUN, "save_every": 0})
    done = list(train(cfg))[-1]
    assert done.reason == "time limit" and done.step > 0
    assert (done.checkpoint / "training_state.pt").exists()


def test_wgan_critic_schedule():
    cfg = TrainConfig(variant="wgan", recipe="paper")  # the paper's: n_critic 5 with the warm-up
    assert [n_critic_at(cfg, s) for s in (0, 24, 25, 26, 499, 500, 501, 1000)] == [100, 100, 5, 5, 5, 100, 5, 100]
    assert n_critic_at(cfg.replace(critic_warmup=False), 0) == 5
    fast = TrainConfig(variant="wgan")  # the fast recipe: one critic step, no warm-up, still clipping
    assert [n_critic_at(fast, s) for s in (0, 500)] == [1, 1] and fast.constraint == "clip"
    assert n_critic_at(TrainConfig(variant="wgan-gp", recipe="paper"), 0) == 5


def test_fashion_mnist_code_path(tmp_path, data_dir):
    cfg = TrainConfig(variant="acgan", dataset="fashion-mnist", data_dir=str(data_dir), iters=2,
                      run_dir=str(tmp_path / "f"), **TINY_RUN)
    done = list(train(cfg))[-1]
    assert done.reason == "finished"
    assert json.loads((done.checkpoint / "config.json").read_text())["dataset"] == "fashion-mnist"


def test_default_run_dirs_never_collide(tmp_path, data_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(variant="gan", data_dir=str(data_dir), iters=1, **TINY_RUN)
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

    cfg = TrainConfig(variant="acgan", data_dir=str(data_dir), iters=3, run_dir=str(tmp_path / "r"), **TINY_RUN)
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

    cfg = TrainConfig(variant="wgan-gp", data_dir=str(data_dir), iters=2, run_dir=str(tmp_path / "r"), **TINY_RUN)
    list(train(cfg))
    (tmp_path / "plain").write_bytes(b"")
    (tmp_path / "plain_dir").mkdir()
    file_mode = stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
    dir_mode = stat.S_IMODE(os.stat(tmp_path / "plain_dir").st_mode)
    ckpt = tmp_path / "r" / "checkpoints" / "step_0000002"
    assert stat.S_IMODE(os.stat(ckpt).st_mode) == dir_mode
    for p in [*ckpt.iterdir(), tmp_path / "r" / "config.json", tmp_path / "r" / "samples" / "step_0000002.png"]:
        assert stat.S_IMODE(os.stat(p).st_mode) == file_mode, p
