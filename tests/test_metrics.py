"""Quality metrics: the shipped classifier, the Fréchet distance, `--eval`, shipped checkpoints."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, SHARED_DATA, read_idx, train_tiny

from wgan_app.checkpoint import load_checkpoint
from wgan_app.config import ModelConfig
from wgan_app.data import load_dataset, to_unit_range
from wgan_app.errors import UserError
from wgan_app.metrics import (
    CLASSIFIER_DIR,
    evaluate_checkpoint,
    evaluate_generator,
    floor_at,
    frechet_distance,
    image_metrics,
    load_classifier,
)
from wgan_app.models import Generator
from wgan_app.sampler import Sampler

KEYS_COND = {"fid", "fid_floor", "class_accuracy", "class_entropy", "num"}
KEYS_UNCOND = KEYS_COND - {"class_accuracy"}


def real_test_slice(data_dir: Path, n: int = 2000) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """x (n, 1, 28, 28) in [-1, 1], labels, and whether they are real MNIST test digits."""
    raw = SHARED_DATA / "MNIST" / "raw"
    if (raw / "t10k-images-idx3-ubyte").exists():
        # A random subset: the test file is ordered by writer group, so a contiguous slice is not
        # distributed like the whole split (the first 1,000 score an FID twice the floor).
        idx = np.random.default_rng(0).choice(10000, size=n, replace=False)
        x = torch.from_numpy(read_idx(raw / "t10k-images-idx3-ubyte")[idx])
        y = torch.from_numpy(read_idx(raw / "t10k-labels-idx1-ubyte")[idx].astype(np.int64))
        return to_unit_range(x).unsqueeze(1), y, True
    data = load_dataset("mnist", str(data_dir), train=False, download=False)  # rendered digits
    return to_unit_range(data.x[:n]).unsqueeze(1), data.y[:n], False


# --- the classifier -------------------------------------------------------------------------


def test_classifier_accuracy_on_test_slice(data_dir):
    model, _ = load_classifier()
    x, y, real = real_test_slice(data_dir)
    with torch.inference_mode():
        acc = (model(x).argmax(1) == y).float().mean().item()
    # 99.0 % on the full test split; a 2,000-image slice leaves about +-0.25 % of noise.
    assert acc >= (0.985 if real else 0.7), acc  # rendered font digits: 90 % when last measured


def test_classifier_folder_is_small_and_documented():
    files = {p.name: p.stat().st_size for p in CLASSIFIER_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "test_stats.safetensors", "README.md"} <= set(files)
    assert sum(files.values()) < 2_000_000
    config = json.loads((CLASSIFIER_DIR / "config.json").read_text())
    assert config["test_accuracy"] >= 0.99
    assert config["command"].startswith("python -m wgan_app.classifier")


def test_missing_classifier_is_a_one_line_user_error(tmp_path):
    with pytest.raises(UserError) as e:
        load_classifier(tmp_path / "nowhere")
    assert "\n" not in str(e.value) and "python -m wgan_app.classifier" in str(e.value)


# --- the Fréchet distance ---------------------------------------------------------------------


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
    # Diagonal covariances commute: d^2 = |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2.
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)
    # The distance is invariant under a common rotation of both Gaussians.
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    rotated = frechet_distance(Q @ mu1, Q @ np.diag(s1) @ Q.T, Q @ mu2, Q @ np.diag(s2) @ Q.T)
    assert rotated == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_is_zero_for_identical_and_survives_singular_covariances():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 8))
    sigma = np.cov(a, rowvar=False)
    assert frechet_distance(a.mean(0), sigma, a.mean(0), sigma) == pytest.approx(0, abs=1e-6)
    low_rank = np.cov(a[:4], rowvar=False)  # rank 3 in 8 dimensions
    d = frechet_distance(np.zeros(8), low_rank, np.zeros(8), sigma)
    assert math.isfinite(d) and d > 0


def test_floor_interpolates_in_one_over_n():
    _, stats = load_classifier()
    sizes, fids = stats["floor_n"].tolist(), stats["floor_fid"].tolist()
    assert floor_at(stats, sizes[1]) == pytest.approx(fids[1])
    assert fids == sorted(fids, reverse=True)  # more samples, less bias
    assert fids[-1] < floor_at(stats, 3000) < fids[0]


# --- the metric on real data and on noise -----------------------------------------------------


def test_real_digits_score_near_the_floor_and_noise_scores_badly(data_dir):
    _, stats = load_classifier()
    x, y, real = real_test_slice(data_dir, n=1000)
    floor = floor_at(stats, 1000)
    noise = torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    m_noise = image_metrics(noise)
    assert m_noise["fid"] > 50 * floor, (m_noise, floor)
    m_real = image_metrics(x, y)
    if real:
        assert m_real["fid"] < 1.5 * floor, (m_real, floor)  # a subset of the test split itself
        assert m_real["class_accuracy"] > 0.98
        assert m_real["class_entropy"] == pytest.approx(math.log(10), abs=0.02)
    assert m_real["fid"] < m_noise["fid"] / 3


# --- generators and checkpoints ----------------------------------------------------------------


def test_evaluate_tiny_checkpoints_returns_documented_keys(acgan_ckpt, wgan_gp_ckpt):
    cond = evaluate_checkpoint(acgan_ckpt, num=100, seed=3)
    assert set(cond) == KEYS_COND and cond["num"] == 100
    assert 0 <= cond["class_accuracy"] <= 1 and 0 <= cond["class_entropy"] <= math.log(10) + 1e-9
    assert cond["fid"] >= 0 and cond["fid_floor"] > 0
    assert evaluate_checkpoint(acgan_ckpt, num=100, seed=3) == cond  # fixed seed: deterministic
    uncond = evaluate_checkpoint(wgan_gp_ckpt, num=100)
    assert set(uncond) == KEYS_UNCOND


def test_fashion_mnist_gets_no_mnist_scores():
    cfg = ModelConfig(variant="wgan-gp", dataset="fashion-mnist", n_classes=0, g_width=8, z_dim=16)
    assert evaluate_generator(Generator(cfg).eval(), cfg, num=20) == {"num": 20}


def test_training_logs_metrics_every_eval_every_steps(tmp_path, data_dir):
    ckpt = train_tiny(tmp_path / "run", data_dir, "acgan", iters=4, eval_every=2, eval_num=50)
    lines = [json.loads(line) for line in (ckpt.parents[1] / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in lines if "eval/fid" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert {"eval/class_accuracy", "eval/class_entropy", "eval/fid_floor"} <= set(evals[0])


def _app(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *argv], capture_output=True, text=True,
                          cwd=ROOT.parent, timeout=300)  # another CWD: the classifier path must not depend on it


def test_eval_cli_prints_one_json_object(acgan_ckpt):
    r = _app("--eval", "--checkpoint", str(acgan_ckpt), "--num", "100")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert KEYS_COND | {"checkpoint", "variant", "dataset", "step", "seed", "seconds"} <= set(out)
    assert out["num"] == 100 and out["variant"] == "acgan"


def test_eval_cli_rejects_bad_num_in_one_line(acgan_ckpt):
    r = _app("--eval", "--checkpoint", str(acgan_ckpt), "--num", "5")
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "--num" in r.stderr


def test_every_shipped_checkpoint_loads_and_samples_every_class():
    # Generators: folders with a config.json (checkpoints/ also holds the classifier, the Lab's
    # recordings and the Compare tab's evidence)
    shipped = [p for p in sorted((ROOT / "checkpoints").iterdir())
               if (p / "config.json").is_file() and p.name != "mnist-classifier"]
    assert len(shipped) >= 4
    for path in shipped:
        ckpt = load_checkpoint(path)
        sampler = Sampler(ckpt)
        classes = range(ckpt.model.n_classes) if sampler.conditional else [None]
        for label in classes:
            images = sampler.sample(label, seed=0, n=4)
            # grey digits, or three stacked digits as colour channels (Stacked MNIST)
            want = (4, 28, 28) if ckpt.model.channels == 1 else (4, 28, 28, 3)
            assert images.shape == want and images.dtype == np.uint8, path.name
            assert images.std() > 10, f"{path.name}, class {label}: blank samples"
        if ckpt.model.dataset == "mnist":  # "good digits at once": the shipped ones must read well
            m = evaluate_generator(sampler.G, ckpt.model, num=200, seed=0)
            if sampler.conditional:
                assert m["class_accuracy"] >= 0.8, (path.name, m)
            assert m["class_entropy"] >= 1.9, (path.name, m)


def test_export_ships_a_loadable_folder_with_its_training_curve(tmp_path, data_dir):
    from wgan_app.export import export, training_curve

    ckpt = train_tiny(tmp_path / "run", data_dir, "acgan", iters=4, eval_every=1, eval_num=50)
    curve = training_curve(ckpt.parents[1] / "metrics.jsonl", window=1)
    logged = {json.loads(line)["step"]: json.loads(line) for line in
              (ckpt.parents[1] / "metrics.jsonl").read_text().splitlines() if "wasserstein" in line}
    assert [c["step"] for c in curve] == [1, 2, 3, 4]
    assert all(c["wasserstein"] == logged[c["step"]]["wasserstein"] for c in curve)  # window 1: that step's
    dest = export(str(ckpt.parents[1]), str(tmp_path / "shipped" / "tiny"), "python app.py --train ...",
                  num=100, note="one thread")
    card = (dest / "README.md").read_text()
    assert "## Training curve" in card and "Spearman correlation" in card and "(one thread)" in card
    assert card.count("\n| 4 |") == 1  # the last evaluation is always shown
    assert not (dest / "training_state.pt").exists()  # the resume state stays behind
    shipped = load_checkpoint(dest)
    assert shipped.step == 4 and set(shipped.meta["metrics"]) == KEYS_COND
