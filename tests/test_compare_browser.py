"""The Compare tab in a real Chromium. On the fixture evidence: the explorer's charts and grids
draw and follow the choices. On the shipped evidence: the story view (three generators x three
methods) fits a 1400x1000 window without scrolling, and its minute choice redraws it. The
screenshots land in the test's tmp dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import app_page
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "evidence"
SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "evidence"


def _src(page, elem_id: str) -> str:
    img = page.locator(f"#{elem_id} img").first
    expect(img).to_be_visible()
    return img.get_attribute("src")


def test_compare_explorer_shows_charts_and_grids(tmp_path, acgan_ckpt, data_dir):
    root = tmp_path / "app"
    shutil.copytree(acgan_ckpt, root / "checkpoints" / "acgan-mnist")
    shutil.copytree(FIXTURE, root / "checkpoints" / "evidence" / "recipes")
    with app_page(root / "checkpoints", root / "runs", data_dir, tab="Compare") as page:
        for elem in ("compare-fid-time", "compare-fid-steps", "compare-grids", "compare-losses"):
            _src(page, elem)
        expect(page.locator("#compare-scatter g.mark-symbol path").first).to_be_visible()
        expect(page.locator("#compare-classes g.mark-rect path")).to_have_count(20)  # 10 digits x 2 runs
        expect(page.locator("#compare-correlation")).to_contain_text("wgan-gp fast s0")
        grids_before = _src(page, "compare-grids")
        page.locator("#compare-minute").get_by_label("0.003 min").check()  # the first minute mark
        expect(page.locator("#compare-grids img").first).not_to_have_attribute("src", grids_before)
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
        fid_before = _src(page, "compare-fid-time")
        page.locator("#compare-variants").get_by_label("gan", exact=True).uncheck()
        expect(page.locator("#compare-fid-time img").first).not_to_have_attribute("src", fid_before)
        expect(page.locator("#compare-correlation")).not_to_contain_text("gan fast s0")


def test_compare_story_fits_one_screen_and_follows_the_minute(tmp_path, acgan_ckpt, data_dir):
    """The shipped "architectures" set: the story is the tab's first view, whole inside 1400x1000."""
    from wgan_app.evidence import load_sets

    sets = load_sets(SHIPPED)
    assert {"architectures", "recipes"} <= set(sets)
    assert all(r.final and r.evals() and r.grids() for runs in sets.values() for r in runs)
    root = tmp_path / "app"
    shutil.copytree(acgan_ckpt, root / "checkpoints" / "acgan-mnist")
    shutil.copytree(SHIPPED, root / "checkpoints" / "evidence")
    with app_page(root / "checkpoints", root / "runs", data_dir, tab="Compare", viewport=(1400, 1000)) as page:
        figure = page.locator("#compare-story-figure img").first
        expect(figure).to_be_visible()
        text = page.locator("#compare-story-text")
        for arch in ("DCGAN with batch norm", "no batch norm", "MLP generator"):
            expect(text).to_contain_text(arch)
        page.wait_for_function("() => { const i = document.querySelector('#compare-story-figure img');"
                               " return i && i.complete && i.naturalWidth > 0; }")
        box = figure.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 1000 and box["x"] + box["width"] <= 1400, box
        words = text.bounding_box()  # the three sentences too: the whole story without scrolling
        assert words["y"] + words["height"] <= 1000 and words["x"] + words["width"] <= 1400, words
        shown = page.evaluate("() => { const i = document.querySelector('#compare-story-figure img');"
                              " return [i.naturalWidth, i.clientWidth]; }")
        assert shown[1] >= 0.9 * shown[0], f"the figure is squeezed to {shown[1]} of {shown[0]} px"
        page.screenshot(path=str(tmp_path / "compare-story.png"))
        before = figure.get_attribute("src")
        page.locator("#compare-story-minute").get_by_label("1 min").check()
        expect(page.locator("#compare-story-figure img").first).not_to_have_attribute("src", before)


def test_compare_shows_stacked_mnist_beside_the_papers(tmp_path, acgan_ckpt, data_dir):
    """The shipped stacked-mnist set: its own view, with the table of ours beside the published rows
    and the colour grids, which follow the seed picked."""
    root = tmp_path / "app"
    shutil.copytree(acgan_ckpt, root / "checkpoints" / "acgan-mnist")
    shutil.copytree(SHIPPED / "stacked-mnist", root / "checkpoints" / "evidence" / "stacked-mnist")
    with app_page(root / "checkpoints", root / "runs", data_dir, tab="Compare", viewport=(1400, 1000)) as page:
        page.get_by_role("tab", name="Mode collapse: Stacked MNIST").click()
        table = page.locator("#compare-stacked-table")
        for row in ("GDPP", "PacGAN", "real stacked images", "wgan-gp fast", "gan paper"):
            expect(table).to_contain_text(row)
        expect(page.locator("#compare-stacked-sentence")).to_contain_text("of 1,000 modes")
        _src(page, "compare-stacked-modes")
        before = _src(page, "compare-stacked-grids")
        page.screenshot(path=str(tmp_path / "compare-stacked.png"), full_page=True)
        page.locator("#compare-stacked-seed").get_by_label("1", exact=True).check()
        expect(page.locator("#compare-stacked-grids img").first).not_to_have_attribute("src", before)
