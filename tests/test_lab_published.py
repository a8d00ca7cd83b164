"""Claim 3 at the papers' horizon: the published mixtures' geometry, the bench that trains on them
(merging runs into one folder), and the Lab's table and figure from what it wrote."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from wgan_app.lab import measures, published, toy

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("lab_published", ROOT / "bench" / "lab_published.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_published_mixtures_have_the_papers_geometry():
    ring, grid = toy.PUBLISHED["ring-published"], toy.PUBLISHED["grid-published"]
    assert len(ring.centres) == 8 and np.allclose(np.linalg.norm(ring.centres, axis=1), 1.0) and ring.sigma == 0.01
    assert len(grid.centres) == 25 and grid.sigma == 0.05
    xs = np.unique(grid.centres[:, 0])
    assert np.allclose(np.diff(xs), 2.0) and np.isclose(xs.min(), -4.0)
    # real samples of the mixture cover every mode under the same rule the bench scores with
    real = toy.sample_np(grid, 2500, seed=0)
    assert measures.mode_coverage(real, grid.centres, grid.sigma)["modes"] == 25
    # the Lab's menu does not offer them (the grid lies outside its [-3, 3] view)
    assert not set(toy.PUBLISHED) & set(toy.DATASETS)


def test_bench_trains_merges_runs_and_the_lab_shows_them(tmp_path):
    bench = _bench()
    bench.main(["--steps", "20", "--every", "10", "--datasets", "ring-published", "--methods", "gan",
                "--out", str(tmp_path)])
    bench.main(["--steps", "20", "--every", "10", "--datasets", "ring-published", "--methods", "wgan-gp",
                "--out", str(tmp_path)])
    results = published.load(tmp_path / "published.json")
    runs = {(r["dataset"], r["method"]) for r in results["runs"]}
    assert runs == {("ring-published", "gan"), ("ring-published", "wgan-gp")}  # the second run kept the first
    for r in results["runs"]:
        assert r["steps"] == 20 and [c[0] for c in r["curve"]] == [10, 20] and 0 <= r["modes"] <= r["of"] == 8
    with np.load(tmp_path / "published.npz") as z:
        assert sorted(z.files) == ["ring-published/gan/0", "ring-published/wgan-gp/0"]
        assert z["ring-published/gan/0"].shape == (2500, 2)

    table = published.table_markdown(results)
    assert "WGAN-GP (GDPP) | 6.8 | 59.6%" in table  # the published row beside ours
    gan = next(r for r in results["runs"] if r["method"] == "gan")
    assert f"| **GAN (BCE)** | **{gan['modes']:g}** |" in table
    assert f"| {gan['curve'][0][1]} → {gan['curve'][1][1]} | ours (seed 0) |" in table  # modes at steps 10 and 20
    assert "grid" not in table.lower()  # no grid runs: no grid table
    assert "20 generator steps" in published.intro(results)
    picture = published.figure(results, tmp_path / "published.npz")
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.shape[1] > 2 * 230  # two tiles in a row


def test_a_rerun_replaces_its_own_row_only(tmp_path):
    bench = _bench()
    (tmp_path / "published.json").write_text(json.dumps({"steps": 20, "runs": [
        {"dataset": "ring-published", "method": "gan", "seed": 0, "modes": 99},
        {"dataset": "grid-published", "method": "gan", "seed": 0, "modes": 7}]}))
    bench.main(["--steps", "20", "--every", "20", "--datasets", "ring-published", "--methods", "gan",
                "--out", str(tmp_path)])
    rows = published.load(tmp_path / "published.json")["runs"]
    assert len(rows) == 2
    assert next(r for r in rows if r["dataset"] == "grid-published")["modes"] == 7
    assert next(r for r in rows if r["dataset"] == "ring-published")["modes"] <= 8  # replaced, not 99


def test_the_lab_without_shipped_results_leaves_the_view_out(tmp_path):
    assert published.load(tmp_path / "missing.json") is None
    assert published.figure({"runs": []}, tmp_path / "missing.npz") is None
