"""Checkpoint folders on disk: a reader never finds a half-written or missing checkpoint."""

import os

from wgan_app import atomic
from wgan_app import checkpoint as ck
from wgan_app.config import ModelConfig
from wgan_app.models import Generator
from wgan_app.rundir import resolve_checkpoint_dir, step_dir_name


def _write(run, step, marker):
    model = ModelConfig(g_width=8, d_width=8, g_refine=0, d_layers=2)
    state = Generator(model).state_dict()
    cfg = ck.checkpoint_config(model, step=step, ema=False, marker=marker)
    return ck.write_checkpoint_dir(run / "checkpoints" / step_dir_name(step), cfg, state, overwrite=True)


def test_overwriting_the_same_step_never_leaves_a_reader_without_it(tmp_path, monkeypatch):
    """Rewriting step_N (a second run writing the step it resumed from) used to take two
    renames: between them `step_N` did not exist. Every rename is watched here; at each moment
    the run directory must resolve to a complete step_N."""
    run = tmp_path / "run"
    _write(run, 3, "first")
    seen, real_replace = [], os.replace

    def watched_replace(src, dst):
        seen.append(resolve_checkpoint_dir(run).name)
        real_replace(src, dst)
        seen.append(resolve_checkpoint_dir(run).name)

    monkeypatch.setattr(atomic.os, "replace", watched_replace)
    real_exchange = atomic._exchange

    def watched_exchange(a, b):
        seen.append(resolve_checkpoint_dir(run).name)
        swapped = real_exchange(a, b)
        seen.append(resolve_checkpoint_dir(run).name)
        return swapped

    monkeypatch.setattr(atomic, "_exchange", watched_exchange)
    _write(run, 3, "second")

    assert seen and set(seen) == {"step_0000003"}
    assert ck.load_checkpoint(run).step == 3
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_0000003"]  # the old copy is gone
    assert '"marker": "second"' in (run / "checkpoints" / "step_0000003" / "config.json").read_text()


def test_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "from_a").touch(), (b / "from_b").touch()
    assert atomic._exchange(a, b)  # the CI machine is Linux on a file system that can swap
    assert (a / "from_b").exists() and (b / "from_a").exists()
