"""The web UI's services, called the way its tabs and endpoints call them: no Gradio, no server.

The checkpoints are the conftest's tiny ones (served as "shipped" models); training goes
through the real `train.build_trainer` on the tiny data folder, with narrow networks.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from wgan_app.config import TrainConfig
from wgan_app.errors import UserError
from wgan_app.images import grid
from wgan_app.sampler import Sampler
from wgan_app.ui import services
from wgan_app.ui.services import Services, Settings

ROOT = Path(__file__).resolve().parents[1]


def tiny_trainer(cfg):
    """The real trainer, on networks narrow enough for a test (the form has no width fields)."""
    from wgan_app.train import build_trainer

    return build_trainer(cfg.replace(g_width=8, d_width=8, z_dim=16))


@pytest.fixture(scope="module")
def svc(tmp_path_factory, acgan_ckpt, wgan_gp_ckpt, data_dir):
    root = tmp_path_factory.mktemp("services")
    shutil.copytree(acgan_ckpt, root / "checkpoints" / "acgan-mnist")
    shutil.copytree(wgan_gp_ckpt, root / "checkpoints" / "wgan-gp-tiny")
    s = Services(Settings(checkpoints_dir=root / "checkpoints", runs_dir=root / "runs", data_dir=data_dir,
                          max_train_iters=5000), build_trainer=tiny_trainer)
    yield s
    s.jobs.close()


def wait_while_running(svc, timeout_s: float = 120) -> dict:
    deadline = time.time() + timeout_s
    st = services.train_status(svc)
    while st["state"] in ("starting", "running", "stopping") and time.time() < deadline:
        time.sleep(0.1)
        st = services.train_status(svc)
    return st


# --- /generate and /models ----------------------------------------------------------------------


def test_generate_returns_the_samplers_images(svc, acgan_ckpt, wgan_gp_ckpt):
    sampler = Sampler.load(acgan_ckpt)
    one = services.generate(svc, "acgan-mnist", 7, 123, 1)
    assert one.dtype == np.uint8 and one.shape == (28, 28)
    assert np.array_equal(one, sampler.sample(7, seed=123, n=1)[0])
    many = services.generate(svc, None, 3, 5, 12)  # no model: the default, acgan-mnist
    assert np.array_equal(many, grid(sampler.sample(3, seed=5, n=12), nrow=10))
    assert not np.array_equal(services.generate(svc, "acgan-mnist", 7, 124, 1), one)  # the seed matters
    mixed = services.generate(svc, "wgan-gp-tiny", -1, 4, 3)  # an unconditional model, no class
    assert np.array_equal(mixed, grid(Sampler.load(wgan_gp_ckpt).sample(None, seed=4, n=3), nrow=10))


@pytest.mark.parametrize("kw, message", [
    (dict(label=11), "label must be a digit 0-9"),
    (dict(seed=-1), "seed must be between 0"),
    (dict(num=0), "number of images must be between 1 and 100"),
    (dict(num=101), "number of images must be between 1 and 100"),
    (dict(model="x" * 10_000), "unknown model 'xxx"),
    (dict(model="y" * 300), "model 'yyy.*' cannot be read: File name too long"),  # an OSError underneath
    (dict(model="../etc"), "unknown model '../etc'"),
    (dict(model="wgan-gp-tiny", label=3), "unconditional"),
])
def test_bad_generate_input_is_a_one_line_user_error(svc, kw, message):
    args = {"model": "acgan-mnist", "label": 1, "seed": 1, "num": 1, **kw}
    with pytest.raises(UserError, match=message) as e:
        services.generate(svc, **args)
    assert "\n" not in str(e.value) and len(str(e.value)) < 300, str(e.value)


def test_since_step_must_be_a_whole_number(svc):
    with pytest.raises(UserError, match="since_step must be a whole number, got 'abc'") as e:
        services.train_status(svc, since_step="abc")
    assert "\n" not in str(e.value)


def test_list_models_marks_the_default(svc):
    models = {m["model"]: m for m in services.list_models(svc)}
    assert set(models) == {"acgan-mnist", "wgan-gp-tiny"}
    assert models["acgan-mnist"]["default"] and models["acgan-mnist"]["conditional"]
    assert models["wgan-gp-tiny"]["conditional"] is False and not models["wgan-gp-tiny"]["default"]


# --- the Generate tab's pictures and the model zip ------------------------------------------------


def test_pictures_for_the_page(svc, acgan_ckpt, wgan_gp_ckpt):
    pic, name = services.draw_digits(svc, "acgan-mnist", 7, 1234, 20)
    assert np.array_equal(pic, grid(Sampler.load(acgan_ckpt).sample(7, seed=1234, n=20), nrow=10))
    assert name == "acgan-mnist-digit7-seed1234-n20.png"
    # the page disables (but keeps) the class radio for an unconditional model: the class is ignored
    pic, name = services.draw_digits(svc, "wgan-gp-tiny", 7, 2, 1)
    assert np.array_equal(pic, Sampler.load(wgan_gp_ckpt).sample(None, seed=2, n=1)[0])
    assert name == "wgan-gp-tiny-mixed-seed2-n1.png"
    pic, name = services.draw_classes(svc, "acgan-mnist", 3, 4)
    assert pic.shape == (2 + 10 * 30, 2 + 4 * 30) and name == "acgan-mnist-all-classes-seed3.png"
    frames, name = services.draw_walk(svc, "acgan-mnist", 3, 4, 1, 8, 6)
    assert len(frames) == 6 + 4 and name == "acgan-mnist-walk-3-4.gif"
    with pytest.raises(UserError, match="seed must be between 0"):
        services.draw_walk(svc, "acgan-mnist", 3, -4, 1, 8, 6)


def test_model_zip_holds_the_generator_only_and_is_made_once(svc):
    entry = svc.registry.entry("acgan-mnist")
    path = services.zip_for(svc, entry)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    assert {"acgan-mnist/config.json", "acgan-mnist/model.safetensors"} <= names
    assert not any(n.endswith("training_state.pt") or "/." in n for n in names)
    assert services.zip_for(svc, entry) == path  # cached while the checkpoint is unchanged


# --- /train_start, /train_status, /train_stop ---------------------------------------------------------


def train_start(svc, **kw) -> dict:
    form = dict(variant="acgan", dataset="mnist", iters=3, batch_size=8, lr=None, n_critic=None, lambda_gp=10.0,
                clip_value=0.01, seed=0, eval_every=0)
    return services.train_start(svc, "a test", **{**form, **kw})


def test_a_short_run_finishes_with_a_checkpoint_usable_as_a_model(svc):
    st = train_start(svc, iters=3)
    assert st["state"] in ("starting", "running", "finished") and "owner" not in st
    st = wait_while_running(svc)
    assert st["state"] == "finished" and st["step"] == 3, st
    assert Path(st["checkpoint"], "model.safetensors").is_file()
    assert st["model"] == "runs/" + Path(st["run_dir"]).name
    assert st["model"] in {m["model"] for m in services.list_models(svc)}
    im = services.generate(svc, st["model"], 5, 0, 1)
    assert np.array_equal(im, Sampler.load(st["checkpoint"]).sample(5, seed=0, n=1)[0])
    assert services.zip_for_run(svc, svc.jobs.job) is not None


def test_start_status_stop(svc):
    st = train_start(svc, iters=5000, seed=1)
    assert st["state"] in ("starting", "running") and st["iters"] == 5000 and st["model"] is None
    with pytest.raises(UserError, match="The trainer is busy: a test started acgan on mnist"):
        train_start(svc, iters=5)

    deadline = time.time() + 120
    st = services.train_status(svc)
    while len(st["history"]) < 3 and time.time() < deadline:
        time.sleep(0.1)
        st = services.train_status(svc)
    assert st["state"] == "running" and len(st["history"]) >= 3, st
    cut = st["history"][1]["step"]
    newer = services.train_status(svc, since_step=cut)["history"]
    assert newer and all(p["step"] > cut for p in newer)
    assert services.train_status(svc, since_step=float(cut))["history"][0]["step"] > cut  # JSON may send 7.0

    st = services.train_stop(svc)
    assert st["state"] in ("stopping", "stopped"), st
    st = wait_while_running(svc)
    assert st["state"] == "stopped" and 0 < st["step"] < 5000, st
    assert Path(st["checkpoint"], "model.safetensors").is_file()  # stopping keeps a checkpoint
    assert st["model"] and st["model"] in {m["model"] for m in services.list_models(svc)}
    assert services.train_stop(svc)["state"] == "stopped"  # a second stop changes nothing


def test_bad_training_settings_start_nothing(svc):
    before = svc.jobs.job
    for kw, message in ((dict(iters=5001), "iterations must be between 1 and 5000"),
                        (dict(variant="vae"), "variant 'vae' is not one of"),
                        (dict(batch_size=4000), "batch size must be between 1")):
        with pytest.raises(UserError, match=message):
            train_start(svc, **kw)
    assert svc.jobs.job is before


def test_importing_and_building_load_nothing(tmp_path, acgan_ckpt):
    code = "import sys, wgan_app.ui, wgan_app.ui.services; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr  # services need no Gradio
    shutil.copytree(acgan_ckpt, tmp_path / "checkpoints" / "acgan-mnist")
    fresh = Services(Settings(checkpoints_dir=tmp_path / "checkpoints", runs_dir=tmp_path / "runs"))
    assert not fresh.registry._samplers and fresh.jobs.job is None
    services.generate(fresh, None, 1, 1, 1)
    assert len(fresh.registry._samplers) == 1  # the first request loads the model, once
    services.generate(fresh, "acgan-mnist", 2, 1, 1)
    assert len(fresh.registry._samplers) == 1


def test_the_form_says_how_long_a_run_will_take_before_start(svc):
    text = services.estimate(svc, "acgan", "mnist", 600, 32, "", "", 10.0, 0.01, 0, 0, "fast")
    assert text.startswith(f"600 steps of acgan with the dcgan generator (fast recipe: lr {TrainConfig().lr:g}, "
                           "n_critic 1, batch 32): about **")
    assert "steps/s (assumed: bench/bench_train.py on 2 threads" in text  # says what it assumes, and where from
    assert ("`fast` changes from the paper's recipe: batch_size 64 -> 32, class_weight_g 1.0 -> 4.0, "
            "lr 0.0001 -> 0.002, beta1 0.5 -> 0.0") in text
    doubled = services.estimate(svc, "acgan", "mnist", 600, 64, "", "", 10.0, 0.01, 0, 0, "fast")
    assert "a rough guess" in doubled  # a batch the speed file has no row for
    paper = services.estimate(svc, "acgan", "mnist", 600, 64, "", "", 10.0, 0.01, 0, 0, "paper")
    assert "paper recipe: lr 0.0001, n_critic 5" in paper
    rate = lambda t: float(t.split(" at ")[1].split(" steps/s")[0])  # noqa: E731
    assert rate(text) > 3 * rate(paper)
    with pytest.raises(UserError, match="recipe"):
        services.estimate(svc, "acgan", "mnist", 600, 64, "", "", 10.0, 0.01, 0, 0, "turbo")
    mlp = services.estimate(svc, "gan", "mnist", 600, 64, "", "", 10.0, 0.01, 0, 0, "fast", "mlp")
    assert mlp.startswith("600 steps of gan with the mlp generator") and "a rough guess" in mlp
    with pytest.raises(UserError, match="g_arch 'resnet' is not one of: dcgan, dcgan-nobn, mlp"):
        services.estimate(svc, "gan", "mnist", 600, 64, "", "", 10.0, 0.01, 0, 0, "fast", "resnet")


@pytest.mark.parametrize("kw, needle", [
    (dict(lr=5), "lr must be in (0, 1]"), (dict(n_critic=0), "n_critic must be at least 1"),
    (dict(lambda_gp=-1), "lambda_gp must be in"), (dict(recipe="turbo"), "recipe 'turbo' is not one of")])
def test_training_errors_name_the_apis_parameters_not_the_cli_flags(svc, kw, needle):
    with pytest.raises(UserError) as e:
        svc.jobs.build_config(**kw)
    assert str(e.value).startswith(needle) and "--" not in str(e.value)


def test_without_training_data_the_visitor_is_told_before_and_at_start(tmp_path, data_dir, caplog):
    """A server whose MNIST is not on disk (and, here, cannot be downloaded: tests are offline)."""
    import logging

    empty = Services(Settings(checkpoints_dir=tmp_path / "none", runs_dir=tmp_path / "runs",
                              data_dir=tmp_path / "no-data"))
    form = ("acgan", "mnist", 100, 64, "", "", 10.0, 0.01, 0, 0, "fast")
    plan = services.estimate(empty, *form)
    assert "not on this server yet: Start first downloads it (about 11 MB, once)" in plan
    with caplog.at_level(logging.WARNING, logger="wgan_app.jobs"):
        with pytest.raises(UserError) as e:
            services.train_start(empty, "visitor", *form)
    msg = str(e.value)
    assert msg.startswith("The training data (MNIST) is not on this server and could not be downloaded")
    assert "--data-dir" not in msg and len(msg.splitlines()) == 1  # nothing a visitor could act on
    assert "--data-dir" in caplog.text  # the operator's version goes to the log
    assert services.train_status(empty)["state"] == "failed"
    assert not (tmp_path / "no-data").exists()  # the failed download left nothing behind
    with_data = Services(Settings(checkpoints_dir=tmp_path / "none", runs_dir=tmp_path / "runs", data_dir=data_dir))
    assert "not on this server" not in services.estimate(with_data, *form)


def test_every_cache_the_server_keeps_is_bounded(tmp_path, acgan_ckpt, data_dir, monkeypatch):
    """A public server sees endless model versions and downloads: what it remembers stays bounded."""
    import os

    from wgan_app import registry as reg
    from wgan_app.ui import services as svc_mod

    monkeypatch.setattr(reg, "MAX_ENTRIES", 3)
    monkeypatch.setattr(svc_mod, "MAX_ZIPS", 2)
    root = tmp_path / "checkpoints"
    for i in range(6):
        shutil.copytree(acgan_ckpt, root / f"m{i}")
    s = Services(Settings(checkpoints_dir=root, runs_dir=tmp_path / "runs", data_dir=data_dir))
    zips = []
    for i in range(6):
        entry = s.registry.entry(f"m{i}")
        zips.append(services.zip_for(s, entry))
    assert len(s.registry._entries) <= 3 and len(s.zips) == 2
    assert [os.path.exists(z) for z in zips] == [False] * 4 + [True] * 2  # evicted zips' files are deleted
    assert services.generate(s, "m0", 3, 1, 1).shape == (28, 28)  # an evicted entry is simply re-validated
    for i in range(70):
        reg.remember(s.registry._hub_paths, f"hf://u/r{i}", tmp_path, reg.MAX_HUB_PATHS)
    assert len(s.registry._hub_paths) == reg.MAX_HUB_PATHS and "hf://u/r69" in s.registry._hub_paths


def test_push_from_the_web_app_is_opt_in_and_only_into_the_configured_namespace(tmp_path, monkeypatch):
    """The server pushes with its owner's token: a visitor must not reach the owner's account."""
    monkeypatch.setenv("HF_TOKEN", "hf_owner_token")
    for var in ("WGAN_APP_PUSH_NAMESPACE", "WGAN_APP_HUB_ALLOW", "WGAN_APP_HUB_MAX_MB"):
        monkeypatch.delenv(var, raising=False)
    closed = Services(Settings.from_env())
    assert not services.push_enabled(closed)  # a token alone is not consent
    with pytest.raises(UserError, match="pushing from the web app is off on this server"):
        services.push_to_hub(closed, "alice/digits")

    monkeypatch.setenv("WGAN_APP_PUSH_NAMESPACE", "wgan-demo")
    opened = Services(Settings.from_env())
    assert services.push_enabled(opened)
    with pytest.raises(UserError, match=r"pushes only to wgan-demo/\.\.\.: name the repo wgan-demo/digits"):
        services.push_to_hub(opened, "alice/digits")
    with pytest.raises(UserError, match="not a Hub repo id"):
        services.push_to_hub(opened, "wgan-demo/../../x")
    with pytest.raises(UserError, match="needs a finished or stopped run"):
        services.push_to_hub(opened, "wgan-demo/digits")  # the right place, but nothing trained yet


@pytest.mark.parametrize("env, message", [
    ({"WGAN_APP_HUB_MAX_MB": "lots"}, "WGAN_APP_HUB_MAX_MB='lots' must be a number of MB"),
    ({"WGAN_APP_HUB_MAX_MB": "0"}, "WGAN_APP_HUB_MAX_MB must be above 0"),
    ({"WGAN_APP_PUSH_NAMESPACE": "a/b"}, "must be one Hub user or organisation name"),
])
def test_bad_hub_settings_are_one_line_errors(monkeypatch, env, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(UserError, match=message):
        Settings.from_env()


def test_hub_settings_reach_the_registry(monkeypatch):
    monkeypatch.setenv("WGAN_APP_HUB_ALLOW", "wgan-app/*, alice/digits ,")
    monkeypatch.setenv("WGAN_APP_HUB_MAX_MB", "2.5")
    policy = Services(Settings.from_env()).registry.hub_policy
    assert policy.allow == ("wgan-app/*", "alice/digits") and policy.max_bytes == int(2.5 * 2**20)
    with pytest.raises(UserError, match="only loads Hub models from wgan-app/\\*, alice/digits"):
        Services(Settings.from_env()).sampler("hf://mallory/huge")  # refused before any network


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FORM_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=100),
                       st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["", " 5 ", "1e-3", "nan"]))


@settings(max_examples=300, deadline=None)
@given(variant=st.one_of(st.sampled_from(["acgan", "wgan-gp", "wgan", "gan"]), st.text(max_size=20)),
       dataset=st.one_of(st.sampled_from(["mnist", "fashion-mnist"]), st.text(max_size=20)),
       iters=FORM_VALUE, batch_size=FORM_VALUE, lr=FORM_VALUE, n_critic=FORM_VALUE, lambda_gp=FORM_VALUE,
       clip_value=FORM_VALUE, seed=FORM_VALUE, eval_every=FORM_VALUE,
       recipe=st.one_of(st.sampled_from(["fast", "paper"]), st.text(max_size=10)))
def test_fuzzed_training_forms_give_a_valid_config_or_one_line(variant, dataset, iters, batch_size, lr, n_critic,
                                                               lambda_gp, clip_value, seed, eval_every, recipe):
    """What /train_start and the form's estimate do with anything a client sends, short of starting."""
    from wgan_app.jobs import JobManager

    jobs = JobManager("runs-never-written", "data-never-read", max_iters=400)
    try:
        cfg = jobs.build_config(variant, dataset, iters, batch_size, lr, n_critic, lambda_gp, clip_value, seed,
                                eval_every, recipe)
    except UserError as e:
        assert "\n" not in str(e) and str(e).strip()
    else:
        assert 1 <= cfg.iters <= 400 and cfg.batch_size >= 1 and 0 < cfg.lr <= 1 and cfg.n_critic >= 1
        assert all(v == v and abs(v) != float("inf") for v in (cfg.lambda_gp, cfg.clip_value))
        assert cfg.recipe in ("fast", "paper") and cfg.variant in ("acgan", "wgan-gp", "wgan", "gan")


def test_the_operators_default_hub_model_is_not_subject_to_the_visitor_policy(monkeypatch):
    import wgan_app.hub as hub

    calls = []

    def fake_resolve(ref, policy=None, **kw):
        calls.append((ref, policy))
        raise UserError("stop here")  # no network in tests

    monkeypatch.setattr(hub, "resolve_hub_checkpoint", fake_resolve)
    monkeypatch.setenv("WGAN_APP_HUB_ALLOW", "wgan-app/*")
    monkeypatch.setenv("WGAN_APP_MODEL", "hf://operator/own-model")
    svc = Services(Settings.from_env())
    for ref in (None, "hf://operator/own-model", "hf://wgan-app/digits"):
        with pytest.raises(UserError, match="stop here"):
            svc.sampler(ref)
    assert calls[0] == ("hf://operator/own-model", None) and calls[1] == calls[0]
    assert calls[2][0] == "hf://wgan-app/digits" and calls[2][1].allow == ("wgan-app/*",)


def test_the_outbox_keeps_a_bounded_number_of_files_newest_last():
    from wgan_app.ui.services import Outbox

    box = Outbox(max_files=5)
    paths = [box.write(f"f{i}.png", b"x") for i in range(12)]
    kept = sorted(Path(p) for p in paths if Path(p).exists())
    assert len(list(box.dir.iterdir())) == 5
    assert [Path(p) for p in paths[-5:]] == sorted(kept, key=lambda p: paths.index(str(p)))
