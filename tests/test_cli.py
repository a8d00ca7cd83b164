"""The real CLI end to end: a run directory, stop-and-resume equality, deterministic sampling,
and one-line errors (exit 2, nothing written) for every bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from wgan_app.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--g-width", "8", "--d-width", "8", "--z-dim", "16", "--batch-size", "16"]


def app(*args, cwd=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=timeout)


def run_main(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse errors
        code = e.code
    err = capsys.readouterr().err
    return code, err


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, data_dir):
    """One real CLI training run of the default (acgan) variant: 40 generator steps."""
    run = tmp_path_factory.mktemp("cli") / "run"
    r = app("--train", "--data-dir", data_dir, "--iters", 40, "--run-dir", run, "--sample-every", 20,
            "--save-every", 20, "--log-every", 10, *TINY)
    assert r.returncode == 0, r.stderr
    return run, r


def test_train_leaves_the_documented_run_directory(cli_run):
    run, r = cli_run
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["variant"] == "acgan" and cfg["iters"] == 40 and cfg["lambda_gp"] == 10.0
    from wgan_app.config import TrainConfig

    fast = TrainConfig(recipe="fast")
    assert cfg["recipe"] == "fast" and cfg["n_critic"] == 1 and cfg["lr"] == fast.lr  # resolved, in the file
    assert f"training acgan on mnist (fast recipe: lr {fast.lr:g}, n_critic 1, batch 16)" in r.stderr
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [10, 20, 30, 40]
    for key in ("loss_d", "loss_g", "wasserstein", "gp", "class_acc"):
        assert all(np.isfinite(l[key]) for l in lines), key
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000020.png", "step_0000040.png"]
    from PIL import Image
    im = Image.open(run / "samples" / "step_0000040.png")
    assert im.size == (10 * 30 + 2, 10 * 30 + 2)  # 10x10 grid, 2 px padding
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step_0000020", "step_0000040"]
    ck = run / "checkpoints" / "step_0000040"
    assert {p.name for p in ck.iterdir()} >= {"config.json", "model.safetensors", "training_state.pt"}
    assert json.loads((ck / "config.json").read_text())["step"] == 40
    assert "finished at step 40" in r.stderr


def test_existing_run_dir_is_refused_and_untouched(cli_run, data_dir):
    run, _ = cli_run
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    r = app("--train", "--data-dir", data_dir, "--iters", 5, "--run-dir", run, *TINY)
    assert r.returncode == 2
    assert "already exists" in r.stderr and "--resume" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


@pytest.mark.parametrize("variant", ["acgan", "wgan"])
def test_stop_and_resume_equals_uninterrupted(tmp_path, data_dir, variant):
    common = ["--train", "--variant", variant, "--data-dir", data_dir, "--log-every", 1, "--sample-every", 0,
              "--save-every", 0, *TINY]
    if variant == "wgan":
        common += ["--n-critic", 2, "--no-critic-warmup"]
    a, b = tmp_path / "straight", tmp_path / "resumed"
    assert app(*common, "--iters", 6, "--run-dir", a).returncode == 0
    assert app(*common, "--iters", 3, "--run-dir", b).returncode == 0
    r = app("--train", "--resume", "--run-dir", b, "--iters", 6, "--data-dir", data_dir)
    assert r.returncode == 0, r.stderr
    wa = load_file(str(a / "checkpoints" / "step_0000006" / "model.safetensors"))
    wb = load_file(str(b / "checkpoints" / "step_0000006" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    sa = torch.load(a / "checkpoints" / "step_0000006" / "training_state.pt", weights_only=True)
    sb = torch.load(b / "checkpoints" / "step_0000006" / "training_state.pt", weights_only=True)
    for k in sa["D"]:
        assert torch.equal(sa["D"][k], sb["D"][k]), k
    steps = [json.loads(l)["step"] for l in (b / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    if variant == "wgan":  # weights clipped after every critic update
        params = [v for k, v in sb["D"].items() if "running_" not in k and v.is_floating_point()]
        assert max(v.abs().max().item() for v in params) <= 0.01 + 1e-7


def test_resume_refuses_a_changed_recipe(cli_run, data_dir, capsys):
    run, _ = cli_run
    code, err = run_main(["--train", "--resume", "--run-dir", run, "--iters", 50, "--lr", 0.1], capsys)
    assert code == 2 and "--lr" in err and "differs" in err


def test_sampling_is_deterministic_and_honours_labels(cli_run, tmp_path):
    run, _ = cli_run
    outs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        r = app("--sample", "--checkpoint", run, "--label", 7, "--seed", seed, "--num", 12,
                "--out", tmp_path / f"{name}.npz")
        assert r.returncode == 0, r.stderr
        outs.append(np.load(tmp_path / f"{name}.npz"))
    assert outs[0]["images"].dtype == np.uint8 and outs[0]["images"].shape == (12, 28, 28)
    assert (outs[0]["labels"] == 7).all() and outs[0]["labels"].dtype == np.int64
    assert np.array_equal(outs[0]["images"], outs[1]["images"])
    assert not np.array_equal(outs[0]["images"], outs[2]["images"])
    r = app("--sample", "--checkpoint", run, "--label", "all", "--num", 20, "--out", tmp_path / "all.npz")
    assert r.returncode == 0
    assert list(np.load(tmp_path / "all.npz")["labels"]) == [i % 10 for i in range(20)]
    r = app("--sample", "--checkpoint", run, "--out", tmp_path / "grid.png")
    assert r.returncode == 0
    from PIL import Image
    assert Image.open(tmp_path / "grid.png").size == (302, 302)


def test_sampler_is_batch_and_concurrency_independent(acgan_ckpt):
    import threading

    from wgan_app.sampler import Sampler
    s = Sampler.load(acgan_ckpt)
    full = s.sample(3, seed=11, n=16)
    assert np.array_equal(s.sample(3, seed=11, n=1)[0], full[0])
    assert np.array_equal(s.sample(3, seed=11, n=4), full[:4])
    torch.manual_seed(123)  # the global RNG plays no part
    results = {}

    def worker(i):
        results[i] = s.sample(3, seed=11, n=16)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(np.array_equal(v, full) for v in results.values())


def test_unconditional_sampling_labels_minus_one(wgan_gp_ckpt, tmp_path, capsys):
    out = tmp_path / "u.npz"
    code, err = run_main(["--sample", "--checkpoint", wgan_gp_ckpt, "--num", 5, "--out", out], capsys)
    assert code == 0, err
    assert list(np.load(out)["labels"]) == [-1] * 5
    code, err = run_main(["--sample", "--checkpoint", wgan_gp_ckpt, "--label", 3, "--out", out], capsys)
    assert code == 2 and "unconditional" in err


def _damaged(tmp_path, acgan_ckpt, kind):
    import shutil
    d = tmp_path / kind
    shutil.copytree(acgan_ckpt, d)
    if kind == "truncated":
        w = d / "model.safetensors"
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    elif kind == "foreign":
        (d / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 768}))
    elif kind == "mismatch":
        cfg = json.loads((d / "config.json").read_text())
        cfg["g_width"] = 32
        (d / "config.json").write_text(json.dumps(cfg))
    elif kind == "badjson":
        (d / "config.json").write_text("{not json")
    elif kind == "noweights":
        (d / "model.safetensors").unlink()
    return d


@pytest.mark.parametrize("argv_fn, needle", [
    (lambda d, t: ["--train", "--variant", "dcgan", "--data-dir", d], "--variant"),
    (lambda d, t: ["--train", "--dataset", "cifar10", "--data-dir", d], "--dataset"),
    (lambda d, t: ["--train", "--iters", 0, "--data-dir", d], "--iters"),
    (lambda d, t: ["--train", "--iters", -5, "--data-dir", d], "--iters"),
    (lambda d, t: ["--train", "--batch-size", 0, "--data-dir", d], "--batch-size"),
    (lambda d, t: ["--train", "--batch-size", 10**6, "--data-dir", d, "--run-dir", t / "big"], "--batch-size"),
    (lambda d, t: ["--train", "--iters", "ten", "--data-dir", d], "--iters"),
    (lambda d, t: ["--train", "--data-dir", t / "nowhere", "--run-dir", t / "r"], "--data-dir"),
    (lambda d, t: ["--train", "--data-dir", t / "no" / "where" / "data", "--run-dir", t / "r"], "--data-dir"),
    (lambda d, t: ["--port", 99999], "--port"),
    (lambda d, t: ["--max-train-iters", 0], "--max-train-iters"),
    (lambda d, t: ["--train", "--resume", "--run-dir", t / "absent", "--data-dir", d], "run directory"),
    (lambda d, t: ["--train", "--resume", "--data-dir", d], "--run-dir"),
    (lambda d, t: ["--sample", "--checkpoint", t / "missing", "--out", t / "o.png"], "does not exist"),
    (lambda d, t: ["--sample", "--out", t / "o.png"], "--checkpoint"),
], ids=["variant", "dataset", "iters0", "iters-neg", "batch0", "batch-too-big", "iters-text", "data-dir",
        "data-dir-nested", "port", "max-train-iters-0",
        "resume-missing", "resume-no-dir", "ckpt-missing", "ckpt-none"])
def test_bad_input_one_line_exit_2_nothing_written(argv_fn, needle, data_dir, tmp_path, capsys):
    argv = argv_fn(data_dir, tmp_path)
    before = set(tmp_path.rglob("*"))
    code, err = run_main(argv, capsys)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not err.rstrip().endswith(":)"), "the cause must not be cut off after its heading"
    assert set(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("kind, needle", [
    ("truncated", "safetensors"), ("foreign", "another program"), ("mismatch", "different models"),
    ("badjson", "not valid JSON"), ("noweights", "model.safetensors")])
def test_bad_checkpoints_are_explained(kind, needle, acgan_ckpt, tmp_path, capsys):
    d = _damaged(tmp_path, acgan_ckpt, kind)
    code, err = run_main(["--sample", "--checkpoint", d, "--out", tmp_path / "o.png"], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("argv_tail, needle", [
    (["--label", 10], "--label"), (["--label", "seven"], "--label"), (["--num", 0], "--num"),
    (["--out", "x.jpg"], ".png or .npz"), (["--seed", -1], "seed"),
    (["--out", "/proc/nope/x.png"], "cannot be written"), (["--out", "README.md/x.png"], "cannot be written")])
def test_bad_sampling_flags(argv_tail, needle, acgan_ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # "README.md/x.png": --out under a file
    argv = ["--sample", "--checkpoint", acgan_ckpt, "--out", tmp_path / "o.png", *argv_tail]
    code, err = run_main(argv, capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    r = app("--train", "--iters", 0)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--iters" in r.stderr
    r = app("--bogus-flag")
    assert r.returncode == 2 and "--bogus-flag" in r.stderr and r.stderr.strip().count("\n") == 0


def test_max_minutes_alone_runs_until_the_time_limit_with_a_time_bar(tmp_path, data_dir):
    run = tmp_path / "timed"
    r = app("--train", "--max-minutes", 0.05, "--data-dir", data_dir, "--run-dir", run, "--log-every", 1, *TINY)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.replace("\r", "\n").splitlines()
    assert lines[0].startswith("training acgan on mnist (fast recipe") and "for 0.05 min" in lines[0]
    assert any(l.strip().endswith("s]") or "/3 s" in l for l in lines), "the bar counts seconds"
    assert "time limit at step" in r.stderr
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["iters"] >= 10**9 and cfg["max_minutes"] == 0.05  # no step limit was invented


def test_help_shows_defaults_and_what_each_recipe_resolves_to():
    r = app("--help")
    text = " ".join(r.stdout.split())
    assert r.returncode == 0
    assert "--recipe {fast,paper} fast = best quality per CPU-minute" in text and "(default: fast)" in text
    assert "--g-arch {dcgan,dcgan-nobn,mlp}" in text and "examples: python app.py " in text
    assert "((" not in text  # no nested parentheses in what a flag says
    assert "(default: 0.999)" not in text and "(default: from --recipe)" in text
    assert "(default: 4000)" in text and "(default: 500)" in text  # iters, save_every: no longer hidden
    from wgan_app.config import TrainConfig

    for variant in ("acgan", "wgan-gp", "wgan", "gan"):
        for recipe in ("fast", "paper"):
            c = TrainConfig(variant=variant, recipe=recipe)
            assert f"{variant} {recipe} lr={c.lr} n_critic={c.n_critic}" in text


def test_out_that_is_a_directory_is_refused(acgan_ckpt, tmp_path, capsys):
    (tmp_path / "grid.png").mkdir()
    code, err = run_main(["--sample", "--checkpoint", acgan_ckpt, "--out", tmp_path / "grid.png"], capsys)
    assert code == 2 and "is a directory" in err and not list((tmp_path / "grid.png").iterdir())


def test_a_foreign_pickle_as_training_state_is_refused_in_one_line_and_never_run(tmp_path, data_dir):
    import pathlib
    import pickle

    run = tmp_path / "run"
    assert app("--train", "--iters", 1, "--data-dir", data_dir, "--run-dir", run, *TINY).returncode == 0
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    (run / "checkpoints" / "step_0000001" / "training_state.pt").write_bytes(pickle.dumps({"G": Evil()}))
    r = app("--train", "--resume", "--run-dir", run, "--iters", 2, "--data-dir", data_dir)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr  # no torch warning first
    assert "refused" in r.stderr and not marker.exists()


def test_a_run_started_by_the_first_release_resumes(tmp_path, data_dir, capsys):
    """tests/fixtures/v1-run was written by wgan_app's first engine (before recipes and before
    TrainConfig composed ModelConfig), stopped at step 3. Today's code must continue it."""
    import shutil

    from wgan_app.checkpoint import load_checkpoint
    from wgan_app.sampler import Sampler

    run = tmp_path / "v1-run"
    shutil.copytree(ROOT / "tests" / "fixtures" / "v1-run", run)
    before = json.loads((run / "config.json").read_text())
    assert "recipe" not in before and before["lr"] == 1e-4  # really the old format
    code, err = run_main(["--train", "--resume", "--run-dir", run, "--iters", 5, "--data-dir", data_dir], capsys)
    assert code == 0, err
    assert "from step 3" in err and "finished at step 5" in err
    after = json.loads((run / "config.json").read_text())
    assert after["recipe"] == "paper"  # what the old file meant, recorded
    same = [k for k in before if k not in ("run_dir", "data_dir", "iters")]  # iters: the new target
    assert {k: after[k] for k in same} == \
        {k: before[k] for k in same} and after["iters"] == 5
    assert [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5]
    ckpt = load_checkpoint(run)
    assert ckpt.step == 5 and (ckpt.model.g_refine, ckpt.model.d_layers) == (0, 2)
    assert Sampler(ckpt).sample(7, seed=1, n=4).shape == (4, 28, 28)
