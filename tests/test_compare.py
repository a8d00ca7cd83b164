"""The MNIST evidence without training: the shipped format and its reader (on the fixture in
tests/fixtures/evidence, two tiny runs made with bench_compare), the summaries and their Spearman
correlations, the Compare view's data, and bench_compare end to end on a tiny run."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from wgan_app import compare
from wgan_app.evidence import load_evidence, load_run, spearman
from wgan_app.evidence.export import MAX_STEP_ROWS, export_run, thin_rows
from wgan_app.evidence.report import final_markdown, method_summaries, summary_markdown

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "evidence"
BENCH = ROOT / "bench" / "bench_compare.py"


def _write_run(path: Path, variant: str, seed: int, w_heldout, fid, w_train_steps, recipe="paper"):
    """A run folder with one evaluation per entry of `fid`, each after its own block of step rows."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"variant": variant, "recipe": recipe, "seed": seed}))
    rows, step = [], 0
    for i, (wh, f, block) in enumerate(zip(w_heldout, fid, w_train_steps)):
        for w in block:
            step += 1
            rows.append({"step": step, "time": step * 6.0, "loss_d": -w, "wasserstein": w})
        rows.append({"step": step, "time": step * 6.0, "eval/fid": f, "eval/w_heldout": wh, "eval/w_heldout_se": 0.1})
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_spearman_of_known_ranks(tmp_path):
    # no ties: sum d^2 = 4 over n = 5, so rho = 1 - 6*4 / (5*(25-1)) = 0.8
    run = load_run(_write_run(tmp_path / "a", "wgan-gp", 0, [1, 2, 3, 4, 5], [10, 30, 20, 50, 40],
                              [[9, 7], [1], [3, 5, 7], [2, 2], [0, 10]]))
    s = run.summary()
    assert s["rho_heldout"] == pytest.approx(0.8)
    # the training-time estimate is the mean over the steps since the previous evaluation: 8, 1, 5, 2, 5
    assert [e["w_train"] for e in run.evals()] == [8, 1, 5, 2, 5]
    assert s["rho_train"] == pytest.approx(spearmanr([8, 1, 5, 2, 5], [10, 30, 20, 50, 40]).statistic, abs=1e-4)
    assert s["best_fid"] == 10 and s["best_step"] == 2 and s["best_minutes"] == pytest.approx(0.2)
    assert s["final_fid"] == 40 and s["evaluations"] == 5
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 1, 1], [1, 2, 3]) is None


def test_method_summary_spreads_over_seeds(tmp_path):
    a = load_run(_write_run(tmp_path / "s0", "wgan", 0, [3, 2, 1], [30, 20, 10], [[1], [1], [1]]))
    b = load_run(_write_run(tmp_path / "s1", "wgan", 1, [1, 2, 3], [30, 20, 12], [[1], [1], [1]]))
    (m,) = method_summaries([a, b])
    assert m["method"] == "wgan paper" and m["seeds"] == [0, 1]
    assert m["best_fid"] == {"mean": 11.0, "min": 10, "max": 12, "n": 2}
    assert m["rho_heldout"] == {"mean": 0.0, "min": -1.0, "max": 1.0, "n": 2}
    assert m["rho_train"] is None  # a constant training estimate ranks nothing
    table = summary_markdown([a, b])
    assert "| wgan paper | 0,1 | 11.0 [10.0, 12.0] |" in table and "| s1 | 3 | 12.0 | 3 |" in table


def test_thinning_keeps_each_evaluation_window_exact(tmp_path):
    blocks = [list(np.random.default_rng(i).normal(size=250)) for i in range(8)]  # 2,000 step rows
    run = load_run(_write_run(tmp_path / "r", "wgan-gp", 0, range(8), range(8, 0, -1), blocks))
    thinned = thin_rows(run.rows)
    assert sum("loss_d" in r for r in thinned) <= MAX_STEP_ROWS + 8
    assert [r for r in thinned if "eval/fid" in r] == [r for r in run.rows if "eval/fid" in r]
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "config.json").write_text((tmp_path / "r" / "config.json").read_text())
    (tmp_path / "t" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in thinned))
    again = load_run(tmp_path / "t")
    for e, f in zip(run.evals(), again.evals()):
        assert f["w_train"] == pytest.approx(e["w_train"], abs=1e-5)


def test_the_fixture_evidence_loads():
    runs = load_evidence(FIXTURE)
    assert [r.label for r in runs] == ["gan fast s0", "wgan-gp fast s0"]
    for r in runs:
        assert len(r.evals()) == 6 and all(e["w_heldout"] is not None for e in r.evals())
        assert sorted(r.grids()) == [0.003, 0.006] and all(p.is_file() for p in r.grids().values())
        assert sum(r.final["classes"]) == r.final["num"] == 500
    assert load_evidence(FIXTURE) is runs, "read once, then served from memory"
    assert load_evidence(FIXTURE / "nothing-here") == []


def test_final_table_ranks_methods_by_final_fid_and_filters_by_variant():
    runs = load_evidence(FIXTURE)
    table = final_markdown(runs).splitlines()
    assert len(table) == 2 + len({r.method for r in runs})
    fids = [float(line.split(" | ")[4].split()[0]) for line in table[2:]]
    assert fids == sorted(fids)  # best first
    gan = final_markdown(runs, variant="gan").splitlines()
    assert len(gan) == 3 and gan[2].startswith("| gan fast | 0 |")
    assert "| 0.00 |" in gan[2]  # the fixture's GAN drew one digit only: the rarest is missing
    r = subprocess.run([sys.executable, "-m", "wgan_app.evidence", "--table", "--dest", str(FIXTURE)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == final_markdown(runs)
    empty = subprocess.run([sys.executable, "-m", "wgan_app.evidence", "--table", "--dest", str(FIXTURE / "none")],
                           capture_output=True, text=True, cwd=ROOT)
    assert empty.returncode == 2 and "no exported runs under" in empty.stderr and not empty.stdout


def test_runs_of_two_budgets_keep_apart_in_labels_and_summaries(tmp_path):
    for name, minutes in (("a-5min", 5), ("b-20min", 20), ("c-20min", 20)):
        shutil.copytree(FIXTURE / "gan-fast-s0-120steps", tmp_path / name)
        cfg = json.loads((tmp_path / name / "config.json").read_text())
        (tmp_path / name / "config.json").write_text(json.dumps({**cfg, "max_minutes": minutes}))
    runs = load_evidence(tmp_path)
    assert sorted(r.label for r in runs) == ["gan fast s0 (5 min)", "gan fast s0 (b-20min)", "gan fast s0 (c-20min)"]
    assert sorted(m["method"] for m in method_summaries(runs)) == ["gan fast (20 min)", "gan fast (5 min)"]
    table = final_markdown(runs)
    assert "| gan fast (5 min) | 0 |" in table and "| gan fast (20 min) | 0,0 |" in table
    frame, _ = compare.fid_frames(runs)
    assert frame["run"].nunique() == 3  # three curves, not one merged line
    assert [r.label for r in load_evidence(FIXTURE)] == ["gan fast s0", "wgan-gp fast s0"]  # one budget: as before


def test_compare_view_data_shapes():
    runs = load_evidence(FIXTURE)
    assert compare.options(runs) == (["gan", "wgan-gp"], ["fast"], ["dcgan"], [0])
    picked = compare.select(runs, ["gan", "wgan-gp"], ["fast"], ["dcgan"], [0])
    assert compare.select(runs, ["gan", "wgan-gp"], ["fast"], ["mlp"], [0]) == []
    by_time, by_step = compare.fid_frames(picked)
    assert list(by_time.columns) == ["minutes", "fid", "run"] and list(by_step.columns) == ["step", "fid", "run"]
    assert len(by_time) == len(by_step) == 12 and set(by_time["run"]) == {"gan fast s0", "wgan-gp fast s0"}
    for series in compare.LOSS_SERIES:
        frame = compare.loss_frame(picked, series)
        assert list(frame.columns) == ["minutes", "value", "run"] and 0 < len(frame) <= 2 * compare.MAX_POINTS_PER_RUN
    assert compare.minute_marks(picked) == [0.003, 0.006]
    grids = compare.grids_at(picked, 0.006)
    assert [g.shape for g, _ in grids] == [(302, 302)] * 2 and grids[0][1] == "gan fast s0: 0.006 min"
    late = compare.grids_at(picked, 5.0)
    assert "its last grid" in late[0][1]
    for est in compare.ESTIMATES:
        frame = compare.scatter_frame(picked, est)
        assert list(frame.columns) == ["estimate", "fid", "run"] and len(frame) == 12
    classes = compare.class_frame(picked)
    assert list(classes.columns) == ["run", "digit", "share"] and len(classes) == 20
    assert classes.groupby("run")["share"].sum().round(3).tolist() == [1.0, 1.0]
    text = compare.correlation_markdown(picked)
    assert "| gan fast s0 |" in text and "Spearman" in text
    assert compare.select(runs, ["gan"], ["paper"], ["dcgan"], [0]) == []
    for x in ("minutes", "step"):  # pictures drawn at the size shown: (H, W, 3)
        assert compare.fid_chart(picked, x).shape == (360, 640, 3)
    assert compare.loss_chart(picked, next(iter(compare.LOSS_SERIES))).shape == (340, 640, 3)
    mosaic = compare.grids_figure(picked, 0.006)
    assert mosaic.shape[1] == 2 * 220 + 10 and mosaic.shape[0] > 220  # two grids side by side, captions under
    assert "bench_compare.py" in compare.empty_message("checkpoints/evidence")


def test_compare_tab_says_when_no_evidence_is_shipped(tmp_path):
    import gradio as gr

    from wgan_app.ui.compare_tab import build_compare_tab

    with gr.Blocks() as demo:
        build_compare_tab(demo, tmp_path / "evidence")
    shown = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "compare-empty"]
    assert shown and "No evidence is shipped yet" in shown[0].value and "bench_compare.py" in shown[0].value


def _bench(*args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(BENCH), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


def test_bench_dry_run_prints_one_command_per_run(tmp_path):
    r = _bench("--minutes", 20, "--dry-run", "--out", tmp_path / "cmp", "--data-dir", "data")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4 * 2 * 3  # methods x recipes (they all differ) x seeds
    first = lines[0]
    assert first.startswith("OMP_NUM_THREADS=2 ") and " --train --variant gan --recipe fast --g-arch dcgan --seed 0 " in first
    assert "--max-minutes 20 " in first and "--grid-minutes 1,2,5,10,20 " in first
    assert "--eval-minutes 0.333333 " in first  # every 20 s of training time, whatever the run's speed
    assert [l.split(" --seed ")[1][0] for l in lines] == ["0"] * 8 + ["1"] * 8 + ["2"] * 8  # every method per seed
    assert "24 of 24 runs" in r.stderr and not (tmp_path / "cmp").exists()
    steps = _bench("--steps", 3000, "--dry-run", "--methods", "wgan-gp", "--recipes", "paper", "--seeds", "0,1")
    assert steps.stdout.count("--iters 3000 --eval-every 75 ") == 2
    archs = _bench("--minutes", 5, "--dry-run", "--methods", "gan:paper,wgan", "--recipes", "fast", "--seeds", "0",
                   "--archs", "dcgan,mlp", "--exclude", "gan-paper-s?-5min", "--out", tmp_path / "a")
    names = [line.split("--run-dir ")[1].split()[0].split("/")[-1] for line in archs.stdout.splitlines()]
    assert names == ["gan-paper-mlp-s0-5min", "wgan-fast-s0-5min", "wgan-fast-mlp-s0-5min"]  # a method's pinned recipe
    bad = _bench("--minutes", 5, "--dry-run", "--archs", "resnet")
    assert bad.returncode == 2 and "resnet" in bad.stderr


def test_bench_trains_summarises_and_exports_a_tiny_run(tmp_path, data_dir):
    out, dest = tmp_path / "cmp", tmp_path / "evidence"
    tiny = "--g-width 8 --d-width 8 --z-dim 16 --batch-size 16"
    args = ["--steps", 20, "--methods", "wgan-gp", "--recipes", "fast", "--seeds", 3, "--eval-every", 5,
            "--eval-num", 100, "--grid-minutes", "0.001", "--log-every", 1, "--threads", 1, "--train-args", tiny,
            "--data-dir", data_dir, "--out", out]
    r = _bench(*args, "--export-to", dest, "--export-num", 100)
    assert r.returncode == 0, r.stderr
    assert "| wgan-gp fast | 3 |" in r.stdout and "| wgan-gp-fast-s3-20steps | 4 |" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"][0]["evaluations"] == 4 and summary["runs"][0]["rho_heldout"] is not None
    (run,) = load_evidence(dest)
    assert run.label == "wgan-gp fast s3" and list(run.grids()) == [0.001] and len(run.final["classes"]) == 10
    again = _bench(*args)  # a finished run is not trained again
    assert again.returncode == 0 and "skip wgan-gp-fast-s3-20steps: finished" in again.stderr
    with pytest.raises(Exception, match="already exists"):
        export_run(out / "wgan-gp-fast-s3-20steps", dest)


def test_docs_evidence_blocks_are_regenerated_and_checked(tmp_path):
    """A docs table is the command's output, never retyped: --update-docs rewrites the blocks,
    --check fails on a stale one and passes once they are current."""
    (tmp_path / "recipes").mkdir()
    for run in FIXTURE.iterdir():
        shutil.copytree(run, tmp_path / "recipes" / run.name)
    md = tmp_path / "page.md"
    md.write_text("# Page\n\n<!-- evidence: set=recipes table=final -->\nretyped by hand\n<!-- /evidence -->\n\n"
                  "<!-- evidence: set=recipes table=pivot -->\n<!-- /evidence -->\ntail\n")
    cmd = [sys.executable, "-m", "wgan_app.evidence", "--dest", str(tmp_path / "recipes"), "--update-docs", str(md)]
    assert subprocess.run([*cmd, "--check"], capture_output=True, cwd=ROOT).returncode == 1
    assert subprocess.run(cmd, capture_output=True, cwd=ROOT).returncode == 0
    text = md.read_text()
    assert "retyped by hand" not in text and text.endswith("<!-- /evidence -->\ntail\n")
    assert final_markdown(load_evidence(tmp_path / "recipes")) in text
    assert "| DCGAN generator with batch norm | " in text  # the pivot's row for the fixture's generator
    assert subprocess.run([*cmd, "--check"], capture_output=True, cwd=ROOT).returncode == 0


def test_shipped_docs_tables_match_the_shipped_evidence():
    docs = sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "checkpoints").glob("*/README.md"))
    r = subprocess.run([sys.executable, "-m", "wgan_app.evidence", "--update-docs", *map(str, docs), "--check"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, f"stale tables (run the command without --check): {r.stderr}"


def _fake_run(variant, arch, seed, fid, classes=None, tmp=None):
    from wgan_app.evidence import RunEvidence

    rows = [{"step": 100 * (i + 1), "time": 60.0 * (i + 1), "eval/fid": fid * (3 - i)} for i in range(3)]
    final = {"fid": fid, "minutes": 5.0, "classes": classes or [100] * 10}
    return RunEvidence(f"{variant}-{arch}-s{seed}", tmp or Path("."), {"variant": variant, "recipe": "fast",
                                                                      "g_arch": arch, "seed": seed}, rows, final)


def test_the_story_sentence_says_what_the_runs_show_whatever_it_is():
    from wgan_app import story

    def sentence(gan, wgan, wgan_gp, gan_classes=None):
        runs = [_fake_run("gan", "mlp", s, f, gan_classes) for s, f in enumerate(gan)]
        runs += [_fake_run("wgan", "mlp", s, f) for s, f in enumerate(wgan)]
        runs += [_fake_run("wgan-gp", "mlp", s, f) for s, f in enumerate(wgan_gp)]
        (arch, group), = story.by_arch(runs).items()
        assert arch == "mlp"
        return story.sentence(arch, group)

    fails = sentence([900, 950, 1000], [300, 320, 340], [200, 210, 220], gan_classes=[1000] + [0] * 9)
    assert "falls behind both Wasserstein methods on every seed" in fails
    assert "GAN (BCE) 950 [900–1,000]" in fails
    assert "Rarest digit (share of a fair tenth, worst seed): WGAN-GP 1.00, WGAN (clipping) 1.00, GAN (BCE) 0.00" in fails
    assert "GAN (BCE) is over three times the best FID here" in fails
    wins = sentence([100, 110, 120], [300, 320, 340], [200, 210, 220])
    assert "The GAN does not fail here: it is ahead of both Wasserstein methods on every seed" in wins
    assert "over three times" not in wins
    mixed = sentence([250, 260, 270], [300, 320, 340], [200, 210, 220])
    assert "falls behind WGAN-GP on every seed, but not behind WGAN (clipping)" in mixed
    overlap = sentence([150, 260, 270], [100, 320, 340], [200, 210, 220])
    assert "The seeds overlap" in overlap


def test_the_story_figure_has_a_row_per_architecture(tmp_path):
    from wgan_app import story

    runs = [_fake_run(v, a, 0, 300.0) for a in ("dcgan", "dcgan-nobn", "mlp") for v in story.METHODS]
    assert story.preamble(runs) == ("MNIST-FID after 5 minutes of training, the final checkpoints on 10,000 samples, "
                                    "one seed; lower is better.")
    image = story.figure(runs, 2.0)
    assert image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] == story.HEAD_H + 3 * story.ROW_H  # one row each, grids or "no grid" in place
    assert story.figure(runs[:3], 2.0).shape[0] == story.HEAD_H + story.ROW_H


def test_the_train_tabs_meaning_view_reports_how_the_estimate_ranks_quality():
    from wgan_app.figures import meaning_figure

    history = [{"step": s, "wasserstein": 2.0 / s} for s in range(1, 101)]
    quality = [{"step": s, "fid": 1000.0 / s, "w_heldout": 1.0 / s + (0.3 if s == 40 else 0.0)}
               for s in (10, 20, 40, 60, 80, 100)]
    picture, caption = meaning_figure(history, quality)
    assert picture.shape == (250, 640, 3)
    assert "over 6 evaluations: **+0.83**" in caption  # one of six moments out of order: 1 - 6*6/(6*35)
    assert "after three" in meaning_figure(history, quality[:2])[1]
