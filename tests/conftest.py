"""Shared fixtures: a small MNIST-format data folder and tiny trained checkpoints.

The data comes from a real MNIST slice when `../shared/data` is present (or $WGAN_APP_TEST_MNIST
points at a torchvision root), otherwise from digits the fixture renders itself with PIL, written
in the same IDX format so torchvision's real reader is exercised either way. Fashion-MNIST is
never available offline, so its folder is always the rendered fixture.
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("WGAN_APP_TEST_MNIST", ROOT.parent / "shared" / "data"))

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the network


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an uncompressed IDX file (the MNIST format): magic, dims, big-endian, uint8 data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        f.write(struct.pack(">" + "I" * array.ndim, *array.shape))
        f.write(array.tobytes())


def read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    ndim = raw[3]
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def render_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n (28, 28) uint8 images of digits drawn with PIL's font, jittered, with their labels."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    try:
        font = ImageFont.load_default(size=22)
    except TypeError:  # Pillow without sized default fonts
        font = ImageFont.load_default()
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, lab in enumerate(labels):
        im = Image.new("L", (28, 28), 0)
        dx, dy = rng.integers(-2, 3, size=2)
        ImageDraw.Draw(im).text((8 + dx, 1 + dy), str(int(lab)), fill=255, font=font)
        images[i] = np.asarray(im)
    return images, labels.astype(np.uint8)


def make_data_dir(root: Path, n_train: int = 2000, n_test: int = 500, real: bool = True) -> Path:
    """A torchvision root with MNIST/raw and FashionMNIST/raw holding small splits."""
    files = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    src = SHARED_DATA / "MNIST" / "raw"
    for name in ("MNIST", "FashionMNIST"):
        raw = root / name / "raw"
        for split, n in (("train", n_train), ("test", n_test)):
            img_name, lab_name = files[split]
            if real and name == "MNIST" and (src / img_name).exists():
                x, y = read_idx(src / img_name)[:n], read_idx(src / lab_name)[:n]
            else:
                x, y = render_digits(n, seed=0 if split == "train" else 1)
                if name == "FashionMNIST":
                    x = 255 - x  # a visibly different "dataset" in the same format
            write_idx(raw / img_name, x)
            write_idx(raw / lab_name, y)
    return root


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return make_data_dir(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def real_mnist_available() -> bool:
    return (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()


def train_tiny(run_dir: Path, data_dir: Path, variant: str = "acgan", iters: int = 4, **kw) -> Path:
    """A few steps of a narrow model: fast, and a real checkpoint in the real format."""
    from wgan_app.config import TrainConfig
    from wgan_app.train import DoneEvent, train

    cfg = TrainConfig(variant=variant, data_dir=str(data_dir), iters=iters, batch_size=16, g_width=8,
                      d_width=8, z_dim=16, run_dir=str(run_dir), log_every=1, sample_every=0,
                      save_every=0, **{"critic_warmup": False, **kw} if variant == "wgan" else kw)
    done = [e for e in train(cfg) if isinstance(e, DoneEvent)][0]
    assert done.reason == "finished", done
    return done.checkpoint


@pytest.fixture(scope="session")
def acgan_ckpt(tmp_path_factory, data_dir) -> Path:
    """A checkpoint folder of a tiny conditional model."""
    return train_tiny(tmp_path_factory.mktemp("runs") / "acgan", data_dir, "acgan")


@pytest.fixture(scope="session")
def wgan_gp_ckpt(tmp_path_factory, data_dir) -> Path:
    """A checkpoint folder of a tiny unconditional model."""
    return train_tiny(tmp_path_factory.mktemp("runs") / "wgan-gp", data_dir, "wgan-gp")


def wait_until_serving(proc, port: int, timeout_s: float = 120) -> str:
    """Poll a `python app.py` subprocess's page until it answers 200; its URL. Fails with the
    server's stderr if it exits first."""
    import time
    import urllib.request

    url, deadline = f"http://127.0.0.1:{port}/", time.time() + timeout_s
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return url
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")


# Chromium flags for a machine without outside network (see NOTES.md): no background traffic.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served_app(checkpoints_dir: Path, runs_dir: Path, data_dir: Path, **settings):
    """The app built in this process and served on a free port: (url, demo). Its training job
    is stopped and the server closed afterwards. The one way the tests serve the app in-process."""
    from wgan_app.ui import Settings, build_demo, launch_options, services_of

    demo = build_demo(Settings(checkpoints_dir=checkpoints_dir, runs_dir=runs_dir, data_dir=data_dir, **settings))
    assert not services_of(demo).registry._samplers, "building the app must not load models"
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_port=free_port(), **launch_options())
    try:
        yield url, demo
    finally:
        services_of(demo).jobs.close()
        demo.close()


@contextlib.contextmanager
def app_page(checkpoints_dir: Path, runs_dir: Path, data_dir: Path, tab: str, viewport=(1400, 1300)):
    """The app served in this process, and a Chromium page opened on `tab`."""
    import shutil

    from playwright.sync_api import sync_playwright

    with served_app(checkpoints_dir, runs_dir, data_dir) as (url, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.get_by_role("tab", name=tab).click()
        try:
            yield page
        finally:
            browser.close()
