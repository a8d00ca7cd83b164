"""The web UI as a person uses it: a real Chromium (Debian's) driven by Playwright.

Pick a digit and a seed, press Generate and check the picture is the right one; start a short
training, watch the loss plot draw, press Stop. Screenshots land in the test's tmp dir.
"""

from __future__ import annotations

import io
import re
import shutil
import time

import numpy as np
import pytest
from conftest import CHROMIUM_ARGS, served_app
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from wgan_app.pictures import digits
from wgan_app.sampler import Sampler

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, acgan_ckpt, wgan_gp_ckpt, data_dir):
    root = tmp_path_factory.mktemp("browser")
    shutil.copytree(acgan_ckpt, root / "checkpoints" / "acgan-mnist")
    shutil.copytree(wgan_gp_ckpt, root / "checkpoints" / "wgan-gp-tiny")
    with served_app(root / "checkpoints", root / "runs", data_dir, max_train_iters=1000) as (url, _):
        yield url


@pytest.fixture(scope="module")
def page(app_url):
    chromium = shutil.which("chromium")
    assert chromium, "the browser tests need Debian's chromium (apt-get install chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1100})
        pg.set_default_timeout(60_000)
        pg.goto(app_url)
        yield pg
        browser.close()


def _shown_image(page, selector: str) -> np.ndarray | None:
    src = page.locator(f"{selector} img").first.get_attribute("src")
    if not src:
        return None
    body = page.request.get(src).body()
    return np.asarray(Image.open(io.BytesIO(body)).convert("L"))



def _wait_for_image(page, selector: str, want: np.ndarray, timeout_s: float = 60) -> np.ndarray | None:
    """Poll until the image under `selector` equals `want` (pixels) or time runs out; the last seen."""
    deadline, shown = time.time() + timeout_s, None
    while time.time() < deadline:
        shown = _shown_image(page, selector)
        if shown is not None and shown.shape == want.shape and np.array_equal(shown, want):
            break
        time.sleep(0.5)
    return shown

def test_generate_digit_seven(page, acgan_ckpt, tmp_path):
    from wgan_app.ui.common import _view

    expect(page.locator("#gen-image img")).to_be_visible()  # the page draws a first grid on load
    page.locator("#digit").get_by_text("7", exact=True).click()
    seed = page.locator("#seed input")
    seed.fill("1234")
    seed.press("Tab")
    page.locator("#generate-btn").click()

    want = np.asarray(_view(digits(Sampler.load(acgan_ckpt), 7, 1234, 20)))
    shown = _wait_for_image(page, "#gen-image", want)
    page.screenshot(path=str(tmp_path / "generate.png"), full_page=True)
    assert shown is not None and np.array_equal(shown, want), "the page does not show digit 7 of seed 1234"
    expect(page.locator("#gen-download")).to_be_visible()  # and offers the PNG


def test_all_classes_and_latent_walk(page, acgan_ckpt, tmp_path):
    from wgan_app.pictures import class_grid
    from wgan_app.ui.common import _view

    page.get_by_role("tab", name="All classes").click()
    page.locator("#all-classes-btn").click()
    want = np.asarray(_view(class_grid(Sampler.load(acgan_ckpt), 1234, 8)))
    shown = _wait_for_image(page, "#gen-image", want)
    page.screenshot(path=str(tmp_path / "all-classes.png"), full_page=True)
    assert shown is not None and np.array_equal(shown, want), "the all-classes grid is not shown"

    page.get_by_role("tab", name="Latent walk").click()
    page.locator("#walk-btn").click()
    expect(page.locator("#gen-image img[src$='.gif']")).to_be_visible()
    gif = Image.open(io.BytesIO(page.request.get(
        page.locator("#gen-image img").first.get_attribute("src")).body()))
    assert gif.format == "GIF" and gif.n_frames == 2 * 24 - 2
    download = page.locator("#gen-download")  # offers this GIF, not the grid shown before it
    expect(download).to_contain_text("Download GIF")
    with page.expect_download() as got:
        download.click()
    assert got.value.suggested_filename.endswith(".gif")


def test_unconditional_model_disables_the_class(page):
    picker = page.locator("#model-picker input")
    picker.click()
    page.get_by_role("option", name=re.compile("wgan-gp-tiny")).click()
    expect(page.locator("#digit")).to_contain_text("This model is unconditional")
    expect(page.locator("#digit input").first).to_be_disabled()
    expect(page.locator("#model-info")).to_contain_text("unconditional")
    picker.click()
    page.get_by_role("option", name=re.compile("acgan-mnist")).click()
    expect(page.locator("#digit input").first).to_be_enabled()


def test_unknown_model_shows_an_error_and_keeps_serving(page):
    picker = page.locator("#model-picker input")
    picker.fill("hf://")
    picker.press("Enter")
    expect(page.locator(".toast-body").first).to_be_visible()
    expect(page.locator("#model-picker input")).to_have_value(re.compile("acgan-mnist"))


def test_train_plot_and_stop(page, tmp_path):
    page.get_by_role("tab", name="Train").click()
    # at 1400x1000 Start is on the first screen, the rarer settings folded under "More settings"
    page.set_viewport_size({"width": 1400, "height": 1000})
    box = page.locator("#train-start").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 1000, box
    page.screenshot(path=str(tmp_path / "train-form-1400x1000.png"))
    page.get_by_text("More settings").click()
    batch = page.locator("#batch input[type=number]")
    expect(batch).to_have_value("32")  # the default recipe's batch (acgan fast)
    page.get_by_text("paper: as published").click()
    expect(batch).to_have_value("64")  # picking a recipe brings its batch: a slider cannot be left blank
    page.get_by_text("fast: best quality per CPU-minute").click()
    expect(batch).to_have_value("32")
    for elem, value in (("#iters", "1000"), ("#batch", "8")):
        box = page.locator(f"{elem} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.locator("#lr textarea, #lr input").first.fill("0.0005")
    page.locator("#lr textarea, #lr input").first.press("Enter")
    plan = page.locator("#train-plan")  # before Start: what will run and for about how long
    expect(plan).to_contain_text(re.compile(r"1000 steps of acgan with the dcgan generator \(fast recipe: lr 0\.0005.*batch 8\): about"))
    page.locator("#train-start").click()

    status = page.locator("#status-line")
    expect(status).to_contain_text("Running", timeout=120_000)
    lines = page.locator("#loss-plot g.mark-line path")
    expect(lines.first).to_be_visible(timeout=120_000)  # the live plot draws while training
    expect(page.locator("#loss-plot")).to_contain_text("Wasserstein estimate")
    expect(page.locator("#acc-plot")).to_be_visible()
    expect(page.locator("#train-sample img")).to_be_visible(timeout=120_000)  # samples from fixed noise
    caption = page.locator("#train-sample-caption")  # above the grid, not a badge over its first row
    expect(caption).to_contain_text(re.compile(r"at step \d+ \(one row per class\)"))
    grid_box, caption_box = page.locator("#train-sample img").bounding_box(), caption.bounding_box()
    assert caption_box["y"] + caption_box["height"] <= grid_box["y"] + 1, (caption_box, grid_box)
    assert lines.count() >= 4  # critic loss, Wasserstein estimate, gradient penalty, generator loss
    expect(status).to_contain_text(re.compile(r"step \d+/1000 .* it/s · ETA"))
    page.screenshot(path=str(tmp_path / "training.png"), full_page=True)

    page.reload()  # the job belongs to the server: a reloaded (or newly opened) page sees it live
    page.get_by_role("tab", name="Train").click()
    expect(status).to_contain_text(re.compile("Running|Stopping"))
    # ...and its form shows the settings of the run that is training, not the defaults
    page.get_by_text("More settings").click()
    expect(page.locator("#lr textarea, #lr input").first).to_have_value("0.0005")
    expect(page.locator("#iters input[type=number]")).to_have_value("1000")
    expect(page.locator("#batch input[type=number]")).to_have_value("8")
    expect(lines.first).to_be_visible(timeout=30_000)

    expect(page.locator("#train-stop")).to_be_enabled()
    page.locator("#train-stop").click()
    expect(status).to_contain_text("Stopped", timeout=30_000)
    expect(page.locator("#run-zip")).to_be_visible(timeout=10_000)  # the stopped run can be downloaded
    expect(page.locator("#train-start")).to_be_enabled()
    page.screenshot(path=str(tmp_path / "stopped.png"), full_page=True)
    # a person's next pick of recipe brings that recipe's settings, not the mirrored run's
    page.get_by_text("paper: as published").click()
    expect(page.locator("#lr textarea, #lr input").first).to_have_value("")
    expect(page.locator("#batch input[type=number]")).to_have_value("64")

    page.get_by_role("tab", name="Generate").click()  # and it is offered as a model
    page.locator("#model-picker input").click()
    expect(page.get_by_role("option", name=re.compile("your run: acgan on mnist"))).to_be_visible()
