"""The MNIST evidence's needs of the Trainer: the critic's held-out Wasserstein estimate at every
evaluation (without changing training by one bit), the training clock that evaluations pause,
and fixed-noise grids at fixed minutes of training."""

import json

import pytest
import torch
import torch.nn as nn

from wgan_app.config import TrainConfig
from wgan_app.critic_estimate import heldout_estimate
from wgan_app.errors import UserError
from wgan_app.train import DoneEvent, train

TINY = dict(batch_size=16, g_width=8, d_width=8, z_dim=16, log_every=1, sample_every=0, save_every=0)


def _rows(run_dir):
    return [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _run(cfg) -> DoneEvent:
    done = list(train(cfg))[-1]
    assert done.reason == "finished", done
    return done


# wgan: a batch-norm critic (its running statistics are training state); acgan: a conditional
# gradient-penalty critic with a class head; gan: the BCE discriminator gets the same number.
@pytest.mark.parametrize("variant", ["wgan", "acgan", "gan"])
def test_heldout_estimate_is_logged_and_changes_no_training_bit(tmp_path, data_dir, variant):
    extra = {"critic_warmup": False} if variant == "wgan" else {}
    base = TrainConfig(variant=variant, data_dir=str(data_dir), iters=6, **TINY, **extra)
    plain = _run(base.replace(run_dir=str(tmp_path / "plain")))
    watched = _run(base.replace(run_dir=str(tmp_path / "watched"), eval_every=2, eval_num=100))

    a = torch.load(plain.checkpoint / "training_state.pt", weights_only=True)
    b = torch.load(watched.checkpoint / "training_state.pt", weights_only=True)
    for net in ("G", "D", "G_ema"):  # weights, and batch-norm running statistics
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    assert torch.equal(a["rng_data"], b["rng_data"]) and torch.equal(a["rng_noise"], b["rng_noise"])
    assert str(a["opt_d"]) == str(b["opt_d"]) and str(a["opt_g"]) == str(b["opt_g"])

    evals = [r for r in _rows(tmp_path / "watched") if "eval/fid" in r]
    assert [r["step"] for r in evals] == [2, 4, 6]
    for r in evals:
        assert isinstance(r["eval/w_heldout"], float) and r["eval/w_heldout_se"] > 0
        assert r["eval/w_heldout_num"] == 32 * 16  # HELDOUT_BATCHES pairs of the run's batch size
        assert r["eval/seconds"] > 0 and "time" in r


class _MeanPixel(nn.Module):
    """A critic whose score is the mean pixel, with a batch norm whose statistics must not move."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(1)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        self.bn(x)  # only to update running statistics (in train mode)
        return self.scale * x.flatten(1).mean(1), None


class _Black(nn.Module):
    z_dim, n_classes = 4, 0

    def forward(self, z, y=None):
        return -torch.ones(z.shape[0], 1, 28, 28)


class _White:
    def batch(self, n, generator):
        torch.rand(1, generator=generator)  # draws from its generator, as the real data does
        return torch.ones(n, 1, 28, 28), torch.zeros(n, dtype=torch.long)


def test_heldout_estimate_known_answer_touches_nothing():
    D = _MeanPixel().eval()
    before = {k: v.clone() for k, v in D.state_dict().items()}
    rng = torch.get_rng_state()
    out = heldout_estimate(D, _Black(), _White(), batch_size=8, seed=0, batches=5)
    assert out == {"w_heldout": 2.0, "w_heldout_se": 0.0, "w_heldout_num": 40}  # E[+1] - E[-1], no noise
    assert not D.training, "the critic's mode is left as it was"
    assert all(torch.equal(before[k], v) for k, v in D.state_dict().items()), "running stats moved"
    assert torch.equal(rng, torch.get_rng_state()), "the global RNG was used"


def test_evaluation_pauses_the_training_clock(tmp_path, data_dir):
    cfg = TrainConfig(variant="wgan-gp", data_dir=str(data_dir), iters=5, run_dir=str(tmp_path / "r"),
                      eval_every=1, eval_num=100, **TINY)
    _run(cfg)
    rows = _rows(tmp_path / "r")
    paused = sum(r["eval/seconds"] for r in rows if "eval/seconds" in r)
    trained = [r["time"] for r in rows if "loss_d" in r]
    assert trained == sorted(trained)
    assert trained[-1] < 0.5 * paused, "evaluation time was counted as training time"


def test_minute_grids_are_saved_at_their_marks(tmp_path, data_dir):
    marks = (0.0005, 0.001, 0.002)  # 30, 60, 120 ms of training: a tiny run passes them all
    cfg = TrainConfig(variant="gan", data_dir=str(data_dir), iters=60, run_dir=str(tmp_path / "r"),
                      grid_minutes=",".join(map(str, marks)), **TINY)
    _run(cfg)
    rows = _rows(tmp_path / "r")
    grids = [r for r in rows if "grid_minute" in r]
    assert [g["grid_minute"] for g in grids] == list(marks)
    steps = {r["step"]: r["time"] for r in rows if "loss_d" in r}
    for g in grids:
        assert (tmp_path / "r" / g["grid"]).is_file()
        assert g["time"] >= g["grid_minute"] * 60, "a grid saved before its mark"
        before = steps.get(g["step"] - 1)
        # (the log rounds times to the millisecond: 0.0298 s is logged as 0.03, a 0.03 s mark)
        assert before is None or before < g["grid_minute"] * 60 + 0.0005, "a grid saved a step late"
    assert sorted(p.name for p in (tmp_path / "r" / "samples").glob("minute_*")) == [
        "minute_0.0005.png", "minute_0.001.png", "minute_0.002.png"]


@pytest.mark.parametrize("text", ["2,1", "0,1", "a,b", "1,1", "-1", ","])
def test_bad_grid_minutes_are_one_line_errors(text):
    with pytest.raises(UserError, match="--grid-minutes"):
        TrainConfig(grid_minutes=text)
    assert TrainConfig(grid_minutes="1,2,5,10,20").grid_marks == (1, 2, 5, 10, 20)


def test_eval_minutes_evaluates_once_after_each_mark_of_training_time(tmp_path, data_dir):
    period = 0.001 * 60  # --eval-minutes 0.001: every 60 ms of training (the clock skips evaluations)
    cfg = TrainConfig(variant="gan", data_dir=str(data_dir), iters=80, run_dir=str(tmp_path / "r"),
                      eval_minutes=0.001, eval_num=50, **TINY)
    _run(cfg)
    rows = _rows(tmp_path / "r")
    evals = [r for r in rows if "eval/fid" in r or "eval/w_heldout" in r]
    assert evals, "no evaluation although training passed its marks"
    last = max(r["time"] for r in rows if "loss_d" in r)
    # An evaluation is decided between its step's start and end, and each step logs its end time
    # (log_every 1), so the mark that triggered it lies between the marks of the previous step's
    # time and its own. Each evaluation must get a mark of its own, in order: a slow step may end
    # past the next mark, so the row's own time alone cannot say which mark it answered.
    # Round first: a logged 0.18 s / 0.06 s is 2.9999999999999996 in floating point, not mark 3.
    mark = lambda t: int(round(t / period, 6))  # noqa: E731
    ends = {r["step"]: r["time"] for r in rows if "loss_d" in r}
    taken = 0
    for r in evals:
        lo, hi = mark(ends.get(r["step"] - 1, 0.0)), mark(ends[r["step"]])
        assert hi > taken, f"an evaluation before its mark, or two after one mark (step {r['step']})"
        taken = max(lo, taken + 1)
    assert len(evals) >= int(last // period) - 1, "marks passed without an evaluation"
    with pytest.raises(UserError, match="--eval-minutes"):
        TrainConfig(eval_minutes=-1)
