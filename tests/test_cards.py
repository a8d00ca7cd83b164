"""One model-card renderer for export and push, stating facts the run recorded."""

import dataclasses

from wgan_app.cards import model_card
from wgan_app.checkpoint import load_checkpoint


def test_card_states_the_grid_layout_and_the_runs_own_hardware(acgan_ckpt, wgan_gp_ckpt):
    ckpt = load_checkpoint(acgan_ckpt)
    hub = model_card(ckpt, repo_id="alice/digits")
    shipped = model_card(ckpt, name="acgan-mnist", command="python app.py --train", metrics={"fid": 1.0, "num": 10})
    for text in (hub, shipped):
        assert "one row per class" in text and "one class per column" not in text
        hw = ckpt.meta["hardware"]  # the fixture trained on this machine: CUDA where there is a GPU
        if hw["device"] == "cuda":
            assert f"an {hw['name']} GPU" in text and "(no GPU)" not in text
        else:
            threads = f"{hw['threads']} thread{'' if hw['threads'] == 1 else 's'}"  # 1 under OMP_NUM_THREADS=1
            assert f"{threads} of a {hw['cpu_count']}-core {hw['name']} CPU (no GPU)" in text
        assert f"for {ckpt.step} generator steps in " in text  # the run's recorded training time
    assert "hf://alice/digits" in hub and "## Reproduce" not in hub
    assert "checkpoints/acgan-mnist" in shipped and "## Reproduce" in shipped and "python app.py --train" in shipped
    unconditional = model_card(load_checkpoint(wgan_gp_ckpt), repo_id="bob/gp")
    assert "one row per class" not in unconditional and "![samples from fixed noise](samples.png)" in unconditional


def test_a_cuda_run_is_not_called_cpu_only(acgan_ckpt):
    ckpt = load_checkpoint(acgan_ckpt)
    gpu = dataclasses.replace(ckpt, meta={**ckpt.meta, "hardware": {"device": "cuda", "name": "NVIDIA H100 80GB HBM3",
                                                                    "torch": "2.14.1"}})
    text = model_card(gpu, repo_id="alice/digits")
    assert "an NVIDIA H100 80GB HBM3 GPU" in text and "CPU" not in text.split("## Reproduce")[0].split("##")[0]
    old = dataclasses.replace(ckpt, meta={k: v for k, v in ckpt.meta.items() if k not in ("hardware", "train_seconds")})
    assert "hardware not recorded" in model_card(old, repo_id="alice/digits")
