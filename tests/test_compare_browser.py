"""The Compare tab in a real Chromium, on the fixture evidence: the curves draw, the grids show,
the slider moves through the minute marks, and unticking a method takes its run off the plots.
The screenshot lands in the test's tmp dir."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from playwright.sync_api import expect

from conftest import app_page

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "evidence"


def test_compare_shows_curves_and_grids(tmp_path, acgan_ckpt, data_dir):
    root = tmp_path / "app"
    shutil.copytree(acgan_ckpt, root / "checkpoints" / "acgan-mnist")
    shutil.copytree(FIXTURE, root / "checkpoints" / "evidence")
    with app_page(root / "checkpoints", root / "runs", data_dir, tab="Compare") as page:
        fid_lines = page.locator("#compare-fid-time g.mark-line path")
        expect(fid_lines.first).to_be_visible()
        assert fid_lines.count() == 2  # one line a run
        expect(page.locator("#compare-fid-steps g.mark-line path").first).to_be_visible()
        expect(page.locator("#compare-losses g.mark-line path").first).to_be_visible()
        expect(page.locator("#compare-scatter g.mark-symbol path").first).to_be_visible()
        expect(page.locator("#compare-classes g.mark-rect path")).to_have_count(20)  # 10 digits x 2 runs
        grids = page.locator("#compare-grids img")
        expect(grids.first).to_be_visible()
        assert grids.count() == 2
        expect(page.locator("#compare-grids")).to_contain_text("after 0.006 minutes")
        expect(page.locator("#compare-correlation")).to_contain_text("wgan-gp fast s0")

        slider = page.locator("#compare-minute input[type=range]")
        slider.fill("0")  # the first minute mark
        expect(page.locator("#compare-grids")).to_contain_text("after 0.003 minutes")
        expect(page.locator("#compare-minute")).to_contain_text(re.compile(r"Minute of training: 0\.003"))
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

        page.locator("#compare-variants").get_by_label("gan", exact=True).uncheck()
        expect(fid_lines).to_have_count(1)
        expect(grids).to_have_count(1)


def test_compare_shows_the_shipped_evidence(tmp_path, acgan_ckpt, data_dir):
    """The folders the app ships (checkpoints/evidence): every default run draws, with its grids."""
    from wgan_app import compare
    from wgan_app.evidence import load_evidence

    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "evidence"
    runs = load_evidence(shipped)
    assert len(runs) >= 24 and all(r.final and r.evals() and r.grids() for r in runs)
    root = tmp_path / "app"
    shutil.copytree(acgan_ckpt, root / "checkpoints" / "acgan-mnist")
    shutil.copytree(shipped, root / "checkpoints" / "evidence")
    variants, recipes, seeds = compare.options(runs)
    shown = compare.select(runs, variants, recipes, seeds[:1])  # the tab's default: every method, the first seed
    assert len({r.label for r in shown}) == len(shown) == 8
    with app_page(root / "checkpoints", root / "runs", data_dir, tab="Compare") as page:
        fid_lines = page.locator("#compare-fid-time g.mark-line path")
        expect(fid_lines.first).to_be_visible()
        expect(fid_lines).to_have_count(len(shown))
        grids = page.locator("#compare-grids img")
        expect(grids).to_have_count(len(shown))
        expect(page.locator("#compare-correlation")).to_contain_text("wgan")
        page.screenshot(path=str(tmp_path / "compare-shipped.png"), full_page=True)
