"""Stacked MNIST: the dataset (three digits in three channels, 1,000 modes), the mode metric, short
trainings of each unconditional method on it, the evidence table and the shipped generator."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from wgan_app.config import ModelConfig, TrainConfig
from wgan_app.data import load_dataset, mode_of
from wgan_app.errors import UserError
from wgan_app.paths import EVIDENCE_DIR, SHIPPED

SHIPPED_STACKED = SHIPPED / "wgan-gp-stacked-mnist"


def test_mode_ids_read_the_channels_first_to_last():
    assert mode_of(torch.tensor([[3, 0, 7], [0, 0, 0], [9, 9, 9], [0, 1, 0]])).tolist() == [307, 0, 999, 10]


def test_the_dataset_stacks_three_mnist_images_deterministically_per_seed(data_dir):
    data = load_dataset("stacked-mnist", str(data_dir))
    grey = load_dataset("mnist", str(data_dir))
    x1, y1 = data.batch(32, torch.Generator().manual_seed(5))
    x2, y2 = data.batch(32, torch.Generator().manual_seed(5))
    x3, _ = data.batch(32, torch.Generator().manual_seed(6))
    assert x1.shape == (32, 3, 28, 28) and y1.shape == (32,)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)  # a seed fixes every stack
    assert not torch.equal(x1, x3)
    assert float(x1.min()) >= -1 and float(x1.max()) <= 1
    # each channel is one MNIST image, and the label is the mode its three digits make
    pool = (grey.x.float() / 127.5 - 1).flatten(1)  # (N, 784)
    for img, label in zip(x1[:8], y1[:8]):
        digits = []
        for channel in img:
            idx = int(torch.cdist(channel.flatten()[None], pool).argmin())
            assert torch.equal(pool[idx], channel.flatten())
            digits.append(int(grey.y[idx]))
        assert int(label) == digits[0] * 100 + digits[1] * 10 + digits[2]


def test_the_grey_datasets_still_draw_one_channel(data_dir):
    x, y = load_dataset("mnist", str(data_dir)).batch(8, torch.Generator().manual_seed(0))
    assert x.shape == (8, 1, 28, 28)


def _exemplars(data_dir) -> dict[int, torch.Tensor]:
    """{digit the classifier reads: one (28, 28) image it reads so}: known readings, whatever the data."""
    from wgan_app.classifier import embed
    from wgan_app.metrics import load_classifier

    test = load_dataset("mnist", str(data_dir), train=False)
    x = test.x[:300].float() / 127.5 - 1
    pred = embed(load_classifier()[0], x[:, None])[1].argmax(1)
    out = {}
    for img, p in zip(x, pred.tolist()):
        out.setdefault(p, img)
    return out


def test_the_metric_counts_modes_and_kl_of_hand_made_stacks(data_dir):
    from wgan_app.metrics import stacked_metrics

    ex = _exemplars(data_dir)
    digits = sorted(ex)[:3]
    assert len(digits) >= 2, "the classifier should read at least two different digits in 300 test images"

    def stack(*ds):
        return torch.stack([ex[d] for d in ds])  # (3, 28, 28)

    # every combination of the digits once, twice: len(digits)**3 modes, evenly
    combos = [(a, b, c) for a in digits for b in digits for c in digits]
    x = torch.stack([stack(*c) for c in combos] * 2)
    got = stacked_metrics(x, counts=True)
    k = len(combos)
    assert got["modes"] == k
    assert got["kl"] == pytest.approx(math.log(1000 / k), abs=1e-3)  # uniform over k of 1,000
    counts = got["mode_counts"]
    assert len(counts) == 1000 and sum(counts) == 2 * k
    a, b, c = combos[-1]
    assert counts[100 * a + 10 * b + c] == 2

    # three of one mode, one of another: p = (3/4, 1/4)
    x = torch.stack([stack(digits[0], digits[1], digits[0])] * 3 + [stack(digits[1], digits[1], digits[1])])
    got = stacked_metrics(x)
    assert got["modes"] == 2
    assert got["kl"] == pytest.approx(0.75 * math.log(750) + 0.25 * math.log(250), abs=1e-3)


def test_real_stacked_images_are_the_metrics_floor():
    """The shipped floor: real stacked images cover (nearly) all 1,000 modes, evenly."""
    from wgan_app.evidence.stacked import read_real_floor

    real = read_real_floor(EVIDENCE_DIR / "stacked-mnist")
    assert real is not None, "checkpoints/evidence/stacked-mnist/real.json is shipped"
    assert real["num"] == 26_000 and min(real["modes"]) >= 990 and max(real["kl"]) <= 0.05


def test_stacked_mnist_is_for_the_unconditional_methods():
    with pytest.raises(UserError, match="gan, wgan or wgan-gp") as e:
        TrainConfig(variant="acgan", dataset="stacked-mnist")
    assert "\n" not in str(e.value)
    cfg = TrainConfig(variant="wgan-gp", dataset="stacked-mnist")
    assert cfg.model.channels == 3
    assert TrainConfig(variant="wgan-gp").model.channels == 1
    with pytest.raises(UserError, match="3 channel"):
        ModelConfig(variant="gan", dataset="stacked-mnist", n_classes=0, channels=1)
    # a config.json written before Stacked MNIST existed says channels 1: still MNIST
    assert ModelConfig.from_dict({**TrainConfig(variant="gan").model.to_dict(), "channels": 1}).channels == 1


@pytest.mark.parametrize("variant", ["gan", "wgan", "wgan-gp"])
def test_each_method_trains_on_stacked_mnist_and_samples_colour(variant, data_dir, tmp_path):
    from conftest import train_tiny

    from wgan_app.sampler import Sampler

    ckpt = train_tiny(tmp_path / variant, data_dir, variant, iters=3, dataset="stacked-mnist", eval_every=3,
                      eval_num=50)
    assert json.loads((ckpt / "config.json").read_text())["channels"] == 3
    rows = [json.loads(line) for line in (tmp_path / variant / "metrics.jsonl").read_text().splitlines()]
    ev = [r for r in rows if "eval/modes" in r]
    assert ev and 1 <= ev[-1]["eval/modes"] <= 50 and ev[-1]["eval/kl"] >= math.log(1000 / 50) - 1e-6
    images = Sampler.load(ckpt).sample(None, seed=1, n=4)
    assert images.shape == (4, 28, 28, 3) and images.dtype == np.uint8
    from PIL import Image

    grids = list((tmp_path / variant / "samples").glob("*.png"))  # the grid at the end
    assert grids and Image.open(grids[0]).mode == "RGB"


def test_eval_and_sample_of_a_stacked_checkpoint(data_dir, tmp_path, capsys):
    from conftest import train_tiny

    from wgan_app.cli import main

    ckpt = train_tiny(tmp_path / "run", data_dir, "wgan-gp", iters=2, dataset="stacked-mnist")
    assert main(["--eval", "--checkpoint", str(ckpt), "--num", "300"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["dataset"] == "stacked-mnist" and out["num"] == 300 and 1 <= out["modes"] <= 300 and "kl" in out
    assert "fid" not in out
    assert main(["--sample", "--checkpoint", str(ckpt), "--num", "6", "--out", str(tmp_path / "x.npz")]) == 0
    with np.load(tmp_path / "x.npz") as f:
        assert f["images"].shape == (6, 28, 28, 3)


def test_the_evidence_table_puts_ours_beside_the_published_rows():
    from wgan_app.evidence import load_evidence
    from wgan_app.evidence.stacked import PUBLISHED, by_method, sentence, stacked_markdown

    runs = load_evidence(EVIDENCE_DIR / "stacked-mnist")
    groups = by_method(runs)
    assert set(groups) == {"gan paper", "wgan fast", "wgan-gp fast"}
    assert all(len(rs) == 3 for rs in groups.values())
    assert all(r.final["num"] == 26_000 and len(r.final["mode_counts"]) == 1000 for r in runs)
    table = stacked_markdown(runs)
    for p in PUBLISHED:
        assert f"| {p.method} | {p.modes} |" in table
    assert "real stacked images" in table and table.count("| this app, seeds 0,1,2 |") == 3
    text = sentence(runs)
    gan_max = max(r.final["modes"] for r in groups["gan paper"])
    w_min = min(r.final["modes"] for m in ("wgan fast", "wgan-gp fast") for r in groups[m])
    assert ("fewer modes than both Wasserstein critics on every seed" in text) == (gan_max < w_min)


def test_the_shipped_stacked_generator_covers_most_modes():
    from wgan_app.checkpoint import load_checkpoint

    ckpt = load_checkpoint(SHIPPED_STACKED)
    assert ckpt.model.dataset == "stacked-mnist" and ckpt.model.channels == 3
    metrics = json.loads((SHIPPED_STACKED / "config.json").read_text())["metrics"]
    assert metrics["num"] == 26_000 and metrics["modes"] >= 900


def test_generate_draws_the_shipped_stacked_generator_in_colour(tmp_path):
    from wgan_app.ui.services import Services, Settings, draw_digits

    svc = Services(Settings(checkpoints_dir=SHIPPED, runs_dir=tmp_path / "runs", data_dir=tmp_path / "data"))
    assert "wgan-gp-stacked-mnist" in [m.ref for m in svc.registry.list_models()]
    picture, name = draw_digits(svc, "wgan-gp-stacked-mnist", -1, 3, 20)
    arr = np.asarray(picture)
    assert arr.ndim == 3 and arr.shape[2] == 3
    assert (arr[..., 0] != arr[..., 1]).any()  # colour, not grey in three channels
