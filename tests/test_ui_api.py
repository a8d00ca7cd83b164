"""The web UI's API, driven the way a client program uses it: gradio_client against a live server.

One server per module, launched in-process on a free port, serving the conftest's tiny
checkpoints as its "shipped" models, plus a foreign folder and a damaged checkpoint.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port, served_app
from gradio_client import Client
from PIL import Image

from wgan_app.sampler import Sampler
from wgan_app.ui import services_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory, acgan_ckpt, wgan_gp_ckpt, data_dir):
    root = tmp_path_factory.mktemp("ui")
    ckpts = root / "checkpoints"
    shutil.copytree(acgan_ckpt, ckpts / "acgan-mnist")
    shutil.copytree(wgan_gp_ckpt, ckpts / "wgan-gp-tiny")
    (ckpts / "foreign").mkdir()  # e.g. a classifier: not a generator, must be skipped when listing
    (ckpts / "foreign" / "config.json").write_text('{"model_type": "bert"}')
    (ckpts / "foreign" / "model.safetensors").write_bytes(b"\0" * 16)
    shutil.copytree(acgan_ckpt, ckpts / "damaged")
    weights = ckpts / "damaged" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated download

    with served_app(ckpts, root / "runs", data_dir, max_train_iters=400) as (url, demo):
        client = Client(url, verbose=False)
        yield client, demo, ckpts
        client.close()




def _png(path) -> np.ndarray:
    im = Image.open(path)
    assert im.format == "PNG"
    return np.asarray(im.convert("L"))


def generate(client, **kw) -> np.ndarray:
    return _png(client.predict(**kw, api_name="/generate"))


def test_generate_is_deterministic_and_matches_the_sampler(server, acgan_ckpt):
    client, _, _ = server
    a = generate(client, model="acgan-mnist", label=7, seed=123, num=1)
    b = generate(client, model="acgan-mnist", label=7, seed=123, num=1)
    assert a.shape == (28, 28)  # one digit, no grid padding
    assert np.array_equal(a, b)
    expected = Sampler.load(acgan_ckpt).sample(7, seed=123, n=1)[0]
    assert np.array_equal(a, expected)
    assert not np.array_equal(a, generate(client, model="acgan-mnist", label=7, seed=124, num=1))


def test_grid_shape_and_the_default_model(server):
    client, _, _ = server
    grid = generate(client, label=3, seed=5, num=12)  # model left out: the shipped acgan-mnist
    assert grid.shape == (2 + 2 * 30, 2 + 10 * 30)  # 2 rows of 10, 2-pixel padding
    assert np.array_equal(grid, generate(client, model="acgan-mnist", label=3, seed=5, num=12))
    # image i of a grid is the same digit whatever the grid size
    one = generate(client, label=3, seed=5, num=1)
    assert np.array_equal(grid[2:30, 2:30], one)


def test_class_is_honoured(server, acgan_ckpt):
    client, _, _ = server
    sampler = Sampler.load(acgan_ckpt)
    images = [generate(client, label=c, seed=9, num=1) for c in (0, 4, 8)]
    for c, im in zip((0, 4, 8), images):
        assert np.array_equal(im, sampler.sample(c, seed=9, n=1)[0])
    assert not np.array_equal(images[0], images[1])


def test_unconditional_model_takes_no_label(server):
    client, _, _ = server
    im = generate(client, model="wgan-gp-tiny", seed=1, num=3)
    assert im.shape == (32, 92)
    with pytest.raises(Exception, match="unconditional"):
        generate(client, model="wgan-gp-tiny", label=3, seed=1, num=1)


@pytest.mark.parametrize("kw, message", [
    (dict(label=10, seed=1, num=1), "label must be a digit 0-9"),
    (dict(label=2.5, seed=1, num=1), "label must be a whole number, got 2.5"),  # validation.parse_label's words
    (dict(label=1, seed=-1, num=1), "seed must be between 0"),
    (dict(label=1, seed=1.5, num=1), "seed must be a whole number"),
    (dict(label=1, seed="abc", num=1), "seed must be a whole number"),
    (dict(label=1, seed=1, num=0), "number of images must be between 1 and 100"),
    (dict(label=1, seed=1, num=101), "number of images must be between 1 and 100"),
    (dict(model="no-such-model", label=1, seed=1, num=1), "unknown model 'no-such-model'"),
    (dict(model="../checkpoints/acgan-mnist", label=1, seed=1, num=1), "unknown model"),
    (dict(model="foreign", label=1, seed=1, num=1), "does not describe a wgan_app model"),
    (dict(model="damaged", label=1, seed=1, num=1), "not a readable safetensors file"),
])
def test_bad_generate_input_is_a_clear_error(server, kw, message):
    client, _, _ = server
    with pytest.raises(Exception, match=message):
        client.predict(**kw, api_name="/generate")
    assert generate(client, label=1, seed=1, num=1).shape == (28, 28)  # and the server keeps serving


def test_models_lists_generators_only(server):
    client, _, _ = server
    models = {m["model"]: m for m in client.predict(api_name="/models")}
    assert set(models) == {"acgan-mnist", "wgan-gp-tiny"}  # foreign and damaged folders skipped
    assert models["acgan-mnist"]["default"] and models["acgan-mnist"]["conditional"]
    assert models["wgan-gp-tiny"]["conditional"] is False


def test_concurrent_requests_do_not_share_rng(server):
    client, _, _ = server
    jobs = [(c, s) for c in range(4) for s in (11, 12)]
    serial = {j: generate(client, label=j[0], seed=j[1], num=4) for j in jobs}
    results: dict = {}

    def call(j):
        results[j] = generate(Client(client.src, verbose=False), label=j[0], seed=j[1], num=4)

    threads = [threading.Thread(target=call, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(np.array_equal(results[j], serial[j]) for j in jobs)


@pytest.mark.parametrize("kw, message", [
    (dict(iters=401), "iterations must be between 1 and 400"),
    (dict(batch_size=0), "batch size must be between 1"),
    (dict(lr=-0.1), "lr must be in"),
    (dict(n_critic=0), "n_critic must be at least 1"),
    (dict(lambda_gp=-1.0), "lambda_gp must be in"),
    (dict(clip_value=0.0, variant="wgan"), "clip_value must be in"),
    (dict(variant="vae"), "variant 'vae' is not one of"),
    (dict(dataset="cifar"), "dataset 'cifar' is not one of"),
])
def test_bad_training_settings_are_refused(server, kw, message):
    client, demo, _ = server
    with pytest.raises(Exception, match=message):
        client.predict(**kw, api_name="/train_start")
    job = services_of(demo).jobs.job
    assert job is None or not job.running


def test_train_watch_stop_then_generate(server):
    client, demo, _ = server
    st = client.predict(variant="acgan", iters=400, batch_size=8, seed=3, api_name="/train_start")
    assert st["state"] in ("starting", "running") and st["iters"] == 400
    with pytest.raises(Exception, match="The trainer is busy: .* started acgan on mnist"):
        client.predict(iters=5, api_name="/train_start")

    lengths = []
    deadline = time.time() + 240
    while time.time() < deadline and (len(lengths) < 2 or lengths[-1] <= lengths[0]):
        st = client.predict(api_name="/train_status")
        lengths.append(len(st["history"]))
        time.sleep(0.5)
    assert lengths[-1] > lengths[0] >= 0 and lengths[-1] >= 2, lengths  # the loss series grows
    point = st["history"][-1]
    assert {"loss_d", "loss_g", "wasserstein", "gp", "class_acc"} <= set(point)
    newer = client.predict(since_step=point["step"], api_name="/train_status")["history"]
    assert all(p["step"] > point["step"] for p in newer)

    t0 = time.time()
    st = client.predict(api_name="/train_stop")
    while st["state"] != "stopped" and time.time() - t0 < 30:
        time.sleep(0.2)
        st = client.predict(api_name="/train_status")
    assert st["state"] == "stopped", st
    assert st["step"] < 400
    assert Path(st["checkpoint"], "model.safetensors").is_file()  # stopping keeps a checkpoint
    assert st["model"] and st["model"].startswith("runs/")

    assert st["model"] in {m["model"] for m in client.predict(api_name="/models")}
    im = generate(client, model=st["model"], label=5, seed=0, num=1)
    assert np.array_equal(im, Sampler.load(st["checkpoint"]).sample(5, seed=0, n=1)[0])


def test_training_with_quality_evaluation_reports_fid_and_class_accuracy(server):
    client, demo, _ = server
    services_of(demo).jobs.close()  # make sure no earlier run is still holding the trainer
    st = client.predict(variant="acgan", iters=4, batch_size=8, seed=1, eval_every=2, api_name="/train_start")
    deadline = time.time() + 180
    while st["state"] in ("starting", "running", "stopping") and time.time() < deadline:
        time.sleep(0.5)
        st = client.predict(api_name="/train_status")
    assert st["state"] == "finished", st
    assert [q["step"] for q in st["quality"]] == [2, 4]
    for q in st["quality"]:
        assert q["fid"] > q["fid_floor"] > 0 and 0 <= q["class_accuracy"] <= 1 and q["num"] == 500
    from wgan_app.figures import meaning_figure
    from wgan_app.ui.train_tab import _plot_frames

    _, acc = _plot_frames(st["history"], st["quality"])
    assert "samples read as their class (classifier)" in set(acc["series"])
    assert all("w_heldout" in q for q in st["quality"])  # the critic's held-out estimate rides along
    picture, caption = meaning_figure(st["history"], st["quality"])
    assert picture.shape == (250, 640, 3) and "after three" in caption  # two evaluations: no rho yet


def test_settings_from_env(monkeypatch, tmp_path):
    from argparse import Namespace

    from wgan_app.errors import UserError
    from wgan_app.ui import Settings

    monkeypatch.setenv("WGAN_APP_RUNS_DIR", str(tmp_path / "r"))
    monkeypatch.setenv("WGAN_APP_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("WGAN_APP_MAX_ITERS", "123")
    monkeypatch.setenv("WGAN_APP_MODEL", "hf://someone/wgan")
    s = Settings.from_env()
    assert (s.runs_dir, s.data_dir, s.max_train_iters, s.default_model) == \
        (tmp_path / "r", tmp_path / "d", 123, "hf://someone/wgan")
    s = Settings.from_env(Namespace(max_train_iters=7, data_dir="x", checkpoint="ck"))
    assert (s.max_train_iters, s.data_dir, s.default_model) == (7, Path("x"), "ck")
    monkeypatch.setenv("WGAN_APP_MAX_ITERS", "lots")
    with pytest.raises(UserError, match="WGAN_APP_MAX_ITERS"):
        Settings.from_env()


# --- pictures: the all-classes grid and the latent walk ---------------------------------------


def test_all_classes_grid_keeps_the_noise_down_each_column(acgan_ckpt, wgan_gp_ckpt):
    from wgan_app.errors import UserError
    from wgan_app.pictures import class_grid, digits

    sampler = Sampler.load(acgan_ckpt)
    g = class_grid(sampler, seed=21, columns=4)
    assert g.shape == (2 + 10 * 30, 2 + 4 * 30)
    for c in (0, 5, 9):  # row c is exactly "digit c, seed 21, 4 images"
        row = g[c * 30: c * 30 + 32]
        assert np.array_equal(row, digits(sampler, c, 21, 4)[:32])
    with pytest.raises(UserError, match="unconditional"):
        class_grid(Sampler.load(wgan_gp_ckpt), seed=1, columns=4)
    with pytest.raises(UserError, match="columns must be between 1 and 10"):
        class_grid(sampler, seed=1, columns=11)


def test_latent_walk_starts_and_ends_at_its_seeds(acgan_ckpt):
    from wgan_app.pictures import latent_walk

    sampler = Sampler.load(acgan_ckpt)
    frames = latent_walk(sampler, seed_a=3, seed_b=4, label_a=1, label_b=8, frames=6)
    assert len(frames) == 6 + 4  # there and back, ends not repeated: the GIF loops seamlessly
    first, last = sampler.sample(1, seed=3, n=1)[0], sampler.sample(8, seed=4, n=1)[0]
    # slerp/lerp at t=0 and t=1 reproduce the end points up to float rounding
    assert np.abs(frames[0].astype(int) - first).max() <= 1
    assert np.abs(frames[5].astype(int) - last).max() <= 1
    assert not np.array_equal(frames[2], frames[0])


# --- the real entry point: `python app.py`, env settings, a Hub model as the default -----------


def test_app_py_serves_a_hub_model_named_by_env(tmp_path, acgan_ckpt):
    import os
    import subprocess
    import sys

    from conftest import wait_until_serving
    from fake_hub import FakeHub

    from wgan_app.checkpoint import CONFIG_NAME, WEIGHTS_NAME

    root = Path(__file__).resolve().parents[1]
    with FakeHub() as hub:
        hub.add_commit("alice/digits", {f: (acgan_ckpt / f).read_bytes() for f in (CONFIG_NAME, WEIGHTS_NAME)},
                       tag="v1")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "GRADIO_", "WGAN_APP_"))}
        env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_XET="1",
                   GRADIO_ANALYTICS_ENABLED="False", GRADIO_SERVER_PORT=str(port),
                   WGAN_APP_MODEL="hf://alice/digits@v1", WGAN_APP_CHECKPOINTS=str(tmp_path / "none"),
                   WGAN_APP_RUNS_DIR=str(tmp_path / "runs"), PYTHONPATH=str(root))
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            url = wait_until_serving(proc, port)
            client = Client(url, verbose=False)
            want = Sampler.load(acgan_ckpt).sample(4, seed=8, n=1)[0]
            assert np.array_equal(generate(client, label=4, seed=8, num=1), want)  # default = the Hub model
            with pytest.raises(Exception, match="alice/nothing"):
                generate(client, model="hf://alice/nothing", label=1, seed=1, num=1)
            assert np.array_equal(generate(client, label=4, seed=8, num=1), want)  # still serving
            assert not list((tmp_path / "runs").glob("*"))  # nothing trained, nothing written
            client.close()
        finally:
            proc.terminate()
            proc.wait(30)


def test_space_defaults_bind_all_interfaces_and_cap_iterations(monkeypatch):
    """On a Hugging Face Space (SPACE_ID set) visitors get a lower cap unless the owner sets one."""
    from wgan_app import jobs, ui

    for var in ("WGAN_APP_MAX_ITERS", "GRADIO_SERVER_NAME"):
        monkeypatch.delenv(var, raising=False)
    assert ui.Settings.from_env().max_train_iters == jobs.DEFAULT_MAX_ITERS
    monkeypatch.setenv("SPACE_ID", "someone/wgan-digits")
    assert ui.Settings.from_env().max_train_iters == jobs.SPACE_MAX_ITERS < jobs.DEFAULT_MAX_ITERS
    monkeypatch.setenv("WGAN_APP_MAX_ITERS", "77")
    assert ui.Settings.from_env().max_train_iters == 77


# --- property-based fuzz: anything a client can send gets an image or one line of ours ----------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=200),
                      st.floats(allow_nan=False, allow_infinity=False),
                      st.lists(st.integers(-20, 20), max_size=3))
GENERIC = "has not enabled verbose error reporting"  # what a client sees when a handler crashes


def _ours(e: Exception) -> str:
    message = str(e)
    assert GENERIC not in message, f"a crash, not a one-line error: {message}"
    assert "\n" not in message.strip() and "Traceback" not in message, message
    return message


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=st.one_of(st.sampled_from(["", "acgan-mnist", "wgan-gp-tiny", "foreign", "damaged", "../x"]),
                       st.text(max_size=300).filter(lambda t: not t.strip().startswith("hf:"))),
       label=ANY_VALUE, seed=ANY_VALUE, num=ANY_VALUE)
def test_fuzzed_generate_calls_get_an_image_or_one_line_of_ours(server, model, label, seed, num):
    client, _, _ = server
    try:
        image = generate(client, model=model, label=label, seed=seed, num=num)
    except Exception as e:
        _ours(e)
    else:
        assert image.ndim == 2 and image.shape[0] >= 28


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(since=ANY_VALUE)
def test_fuzzed_train_status_calls_answer_or_say_why(server, since):
    client, _, _ = server
    try:
        assert "state" in client.predict(since_step=since, api_name="/train_status")
    except Exception as e:
        assert "since_step" in _ours(e)


def test_the_server_still_serves_after_the_fuzz(server):
    client, _, _ = server
    assert generate(client, label=3, seed=5, num=1).shape == (28, 28)
