"""The Lab in a real Chromium: open the tab, press Run, see the panels change, pause, step once.
The screenshot lands in the test's tmp dir."""

from __future__ import annotations

import io
import shutil
import time

import numpy as np
import pytest
from conftest import app_page
from PIL import Image
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _panel(page, i: int) -> np.ndarray | None:
    src = page.locator(f"#lab-panel-{i} img").first.get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB")) if src else None


def _wait_for_change(page, i: int, before, timeout_s: float = 60) -> np.ndarray:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        now = _panel(page, i)
        if now is not None and (before is None or now.shape != before.shape or not np.array_equal(now, before)):
            return now
        time.sleep(0.3)
    raise AssertionError(f"panel {i} did not change within {timeout_s} s")


def test_lab_runs_pauses_and_steps(tmp_path, acgan_ckpt, data_dir):
    root = tmp_path / "app"
    shutil.copytree(acgan_ckpt, root / "checkpoints" / "acgan-mnist")
    with app_page(root / "checkpoints", root / "runs", data_dir, tab="Lab") as page:
        page.locator("#lab-run").click()
        first = _wait_for_change(page, 0, None)
        later = [_wait_for_change(page, i, first if i == 0 else None) for i in range(3)]
        time.sleep(3.0)  # let the runs train a little: the screenshot to look at is of a live Lab
        page.screenshot(path=str(tmp_path / "lab-training.png"), full_page=True)
        assert later[0].shape == first.shape and later[0].shape[1] == 320
        page.locator("#lab-pause").click()
        time.sleep(1.0)  # a tick in flight may still land
        paused = _panel(page, 0)
        time.sleep(1.0)
        assert np.array_equal(_panel(page, 0), paused), "Pause stops the refreshes"
        page.locator("#lab-critic").click()
        expect(page.locator("#lab-status")).to_contain_text("critic update")
        _wait_for_change(page, 0, paused)
        page.screenshot(path=str(tmp_path / "lab.png"), full_page=True)


def test_lab_skips_ahead_without_drawing_then_shows_where_the_runs_got(tmp_path, acgan_ckpt, data_dir):
    root = tmp_path / "app"
    shutil.copytree(acgan_ckpt, root / "checkpoints" / "acgan-mnist")
    with app_page(root / "checkpoints", root / "runs", data_dir, tab="Lab") as page:
        expect(page.locator("#lab-download-file")).to_be_hidden()  # no empty file box under the panels
        box = page.locator("#lab-skip-steps input")
        box.fill("400")
        page.locator("#lab-skip").click()
        status = page.locator("#lab-status")
        expect(status).to_contain_text("/400", timeout=30_000)  # progress while the panels wait
        # nothing drawn yet: the Lab draws only on Run, and the fast-forward skips the drawing
        # (400 steps take ~10 s on one core: the check lands long before they are done)
        assert page.locator("#lab-panel-2 img").count() == 0 or _panel(page, 2) is None
        expect(status).not_to_contain_text("panels paused", timeout=120_000)
        after = _wait_for_change(page, 2, None)  # arrived: drawn, where the runs got
        page.screenshot(path=str(tmp_path / "lab-after-skip.png"), full_page=True)
        assert after.shape[1] == 320


def test_lab_shows_claim_3_at_the_papers_horizon_beside_their_rows(tmp_path, acgan_ckpt, data_dir):
    """The shipped 25,000-step runs on the published mixtures (checkpoints/lab/published.*)."""
    from wgan_app.lab import published

    shipped = published.load()
    assert shipped is not None, "checkpoints/lab/published.json is shipped (bench/lab_published.py --out checkpoints/lab)"
    root = tmp_path / "app"
    shutil.copytree(acgan_ckpt, root / "checkpoints" / "acgan-mnist")
    with app_page(root / "checkpoints", root / "runs", data_dir, tab="Lab") as page:
        box = page.locator("#lab-published")
        box.get_by_text("Claim 3 at the papers' horizon").click()
        expect(box).to_contain_text("WGAN-GP (GDPP)")  # a published row
        gp = next(r for r in shipped["runs"] if r["dataset"] == "grid-published" and r["method"] == "wgan-gp")
        ours = box.locator("table").nth(1).locator("tr", has_text="ours").filter(has_text="WGAN-GP")
        expect(ours).to_contain_text(f"{gp['modes']:g}")  # ours beside it, in the grid's table
        picture = box.locator("img").first
        expect(picture).to_be_visible()
        picture.scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "lab-published.png"), full_page=True)
