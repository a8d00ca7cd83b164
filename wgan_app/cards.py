"""Model cards (README.md) for shipped folders and Hub repos: one renderer, facts from the run.

`export.py` (shipped checkpoints) and `hub.py` (push) both call `model_card`. What it states is
read from the checkpoint itself: the model and recipe from config.json, the hardware and wall time
the run recorded (`hardware`, `train_seconds`), the metrics stored with it or logged by its run,
and, when the run evaluated quality (`--eval-every`), its training curve.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Optional

from .checkpoint import CONFIG_NAME, WEIGHTS_NAME, Checkpoint
from .config import G_ARCHS, UNTIL_TIME_LIMIT
from .objectives import VARIANTS
from .rundir import read_metrics

SAMPLES_NAME = "samples.png"
LICENSE = "mit"
_DATASET_REPOS = {"mnist": "ylecun/mnist", "fashion-mnist": "zalando-datasets/fashion_mnist",
                  "stacked-mnist": "ylecun/mnist"}  # Stacked MNIST is built from MNIST on the fly
RECIPE_FIELDS = ("variant", "dataset", "recipe", "constraint", "iters", "batch_size", "optimizer", "lr", "beta1",
                 "beta2",
                 "n_critic", "critic_warmup", "lambda_gp", "clip_value", "class_weight_d", "class_weight_g",
                 "lr_decay_from", "ema", "g_arch", "g_width", "g_refine", "d_width", "d_layers", "z_dim", "seed")


def hardware_text(meta: dict) -> str:
    """'2 threads of a 2-core AMD EPYC CPU, torch 2.14.1' from the facts a run recorded."""
    hw = meta.get("hardware")
    if not isinstance(hw, dict):
        return "hardware not recorded (the run predates wgan_app recording it)"
    if hw.get("device") == "cuda":
        return f"an {hw.get('name')} GPU, torch {hw.get('torch')}"
    threads = hw.get("threads")
    return (f"{threads} thread{'' if threads == 1 else 's'} of a {hw.get('cpu_count')}-core {hw.get('name')} "
            f"CPU (no GPU), torch {hw.get('torch')}")


def training_curve(metrics_path: Path, window: int = 100) -> list[dict]:
    """One row per quality evaluation of a run: step, minutes, FID, class accuracy, and the
    Wasserstein estimate averaged over the `window` generator steps before it (one logged
    value is too noisy to compare)."""
    logs, evals = [], []
    for row in read_metrics(metrics_path):
        if "eval/fid" in row or "eval/modes" in row:
            evals.append(row)
        elif "wasserstein" in row:
            logs.append(row)
    curve = []
    for e in evals:
        near = [r for r in logs if e["step"] - window < r["step"] <= e["step"]]
        if not near:
            continue
        curve.append({"step": e["step"], "minutes": near[-1]["time"] / 60,
                      "wasserstein": sum(r["wasserstein"] for r in near) / len(near),
                      "fid": e.get("eval/fid"), "fid_floor": e.get("eval/fid_floor"), "num": e.get("eval/num"),
                      "class_accuracy": e.get("eval/class_accuracy"), "modes": e.get("eval/modes"),
                      "kl": e.get("eval/kl")})
    return curve


def curve_section(curve: list[dict]) -> str:
    """The card's "Training curve": the evaluations (at most 12 shown) and how well the
    Wasserstein estimate ranks them (Spearman correlation with MNIST-FID over all of them)."""
    if len(curve) < 3:
        return ""
    if curve[0]["fid"] is None and curve[0]["modes"] is not None:
        return _stacked_curve_section(curve)
    from scipy.stats import spearmanr

    rho = spearmanr([c["wasserstein"] for c in curve], [c["fid"] for c in curve]).statistic
    shown = curve[:: max(1, -(-len(curve) // 12))]
    if shown[-1] is not curve[-1]:
        shown.append(curve[-1])
    cond = any(c["class_accuracy"] is not None for c in curve)
    head = "| step | minutes | W estimate | MNIST-FID |" + (" class accuracy |" if cond else "")
    rows = [head, "|---|---|---|---|" + ("---|" if cond else "")]
    for c in shown:
        acc = f" {100 * c['class_accuracy']:.1f} % |" if cond else ""
        rows.append(f"| {c['step']} | {c['minutes']:.1f} | {c['wasserstein']:.3f} | {c['fid']:.1f} |{acc}")
    return f"""
## Training curve

Quality measured during training (`--eval-every`, {curve[-1]['num']} samples each, so the floor
is {curve[-1]['fid_floor']}) beside the critic's Wasserstein estimate -L_D (mean of the last 100 steps).
Spearman correlation of the estimate with MNIST-FID over all {len(curve)} evaluations: **{rho:.2f}**
(1 = the estimate ranks the checkpoints exactly as the FID does).

{chr(10).join(rows)}
"""


def _stacked_curve_section(curve: list[dict]) -> str:
    """Stacked MNIST's curve: modes of 1,000 and KL at each evaluation beside the W estimate."""
    from scipy.stats import spearmanr

    rho = spearmanr([c["wasserstein"] for c in curve], [c["kl"] for c in curve]).statistic
    rows = ["| step | minutes | W estimate | modes (of 1,000) | KL to uniform |", "|---|---|---|---|---|"]
    rows += [f"| {c['step']} | {c['minutes']:.1f} | {c['wasserstein']:.3f} | {c['modes']} | {c['kl']:.3f} |"
             for c in curve]
    return f"""
## Training curve

Mode coverage measured during training ({curve[-1]['num']} samples each; each channel read by the
MNIST classifier) beside the critic's Wasserstein estimate -L_D (mean of the last 100 steps).
Spearman correlation of the estimate with the KL over all {len(curve)} evaluations: **{rho:.2f}**.

{chr(10).join(rows)}
"""


def model_card(ckpt: Checkpoint, repo_id: Optional[str] = None, name: Optional[str] = None,
               metrics: Optional[dict] = None, command: Optional[str] = None, note: str = "",
               curve: Optional[list[dict]] = None, wall_s: Optional[float] = None) -> str:
    """README.md with Hub metadata. `repo_id` for a Hub repo (how to load it from there);
    otherwise a folder `name` under checkpoints/. `metrics` default to the checkpoint's own or its
    run's log; `command` is the training command that reproduces it."""
    m = ckpt.model
    train = ckpt.meta.get("train_config") or {}
    name = name or (repo_id.split("/")[-1] if repo_id else ckpt.path.name)
    metrics = metrics if metrics is not None else _card_metrics(ckpt)
    wall_s = wall_s if wall_s is not None else ckpt.meta.get("train_seconds")
    tags = ["wgan_app", "gan", "wgan", "image-generation", "pytorch", m.dataset.replace("-", "_"),
            "model_hub_mixin", "pytorch_model_hub_mixin"]
    meta = {"license": LICENSE, "tags": tags, "datasets": [_DATASET_REPOS[m.dataset]]}
    if not m.conditional:
        meta["pipeline_tag"] = "unconditional-image-generation"
    kind = f"conditional on the digit class (0-{m.n_classes - 1})" if m.conditional else "unconditional"
    title = VARIANTS[m.variant].summary if m.variant in VARIANTS else m.variant
    took = f" in {wall_s / 60:.1f} minutes of training" if isinstance(wall_s, (int, float)) else ""
    lines = ["---", *_yaml(meta), "---", "",
             f"# {name}", "",
             f"{'An' if title[:1].upper() in 'AEIOU' else 'A'} {title} generator ({G_ARCHS[m.g_arch]}) of 28x28 "
             f"{m.dataset} images, {kind}, trained with wgan_app for "
             f"{ckpt.step} generator steps{took} on {hardware_text(ckpt.meta)}{f' ({note})' if note else ''}.",
             "The weights are the exponential moving average of the generator, with batch-norm statistics "
             "re-measured on its own samples." if ckpt.meta.get("ema") else "", "",
             f"![samples from fixed noise{', one row per class' if m.conditional else ''}]({SAMPLES_NAME})", ""]
    if command:
        lines += ["## Reproduce", "", "```bash", command, "```", ""]
    lines += ["## Model", "", "| field | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in m.to_dict().items()]
    if train:
        lines += ["", "## Training", "", "| setting | value |", "|---|---|"]
        shown = {**train}
        if shown.get("iters") == UNTIL_TIME_LIMIT:  # a run only the clock ended
            shown["iters"] = f"none (ended by --max-minutes {shown.get('max_minutes') or 0:g})"
        lines += [f"| {k} | {shown[k]} |" for k in RECIPE_FIELDS if k in shown and shown[k] is not None]
    if metrics:
        how = ("the project's MNIST classifier reading each channel: modes of 1,000 and KL to uniform; real "
               "stacked images score 1,000 and about 0.02" if m.dataset == "stacked-mnist" else
               "the project's MNIST classifier; `fid_floor` is real training images vs the test split at the "
               "same sample count")
        where = (f"`python app.py --eval --checkpoint checkpoints/{name} --num {metrics['num']}` ({how})"
                 if command and "num" in metrics else "the run's own log")
        lines += ["", f"## Metrics at step {ckpt.step}", "", f"Measured with {where}.", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in metrics.items()]
    lines += [curve_section(curve or [])]
    where = f"hf://{repo_id}" if repo_id else f"checkpoints/{name}"
    lines += ["## Use it in wgan_app", "", "```bash",
              f"python app.py --sample --checkpoint {where} --out samples.png",
              f"WGAN_APP_MODEL={where} python app.py   # the web UI, with this model as default",
              "```", ""]
    if repo_id:
        lines += [f"In the web UI, type `hf://{repo_id}` (or `hf://{repo_id}@<commit>` to pin a revision) "
                  "into the model picker.", ""]
    lines += ["## Load it in plain PyTorch", "",
              "The generator is a small network (DCGAN-style or an MLP, as `g_arch` in config.json says); its "
              "definition is included so nothing else is needed beyond `torch`, `safetensors` and "
              "`huggingface_hub`.", "",
              "```python", _plain_pytorch_snippet(repo_id or f"USER/{name}"), "```", "",
              "## Files", "",
              f"- `{CONFIG_NAME}`: the generator's constructor arguments plus wgan_app metadata (step, EMA, "
              "training recipe, hardware)",
              f"- `{WEIGHTS_NAME}`: generator weights (safetensors)",
              f"- `{SAMPLES_NAME}`: a grid of samples from fixed noise", ""]
    return "\n".join(lines)


def _plain_pytorch_snippet(repo_id: str) -> str:
    from . import models

    # The generator class and what it builds on (the DCGAN body, the MLP's size), verbatim.
    source = "\n\n\n".join([f"MLP_UNITS, MLP_LAYERS = {models.MLP_UNITS}, {models.MLP_LAYERS}",
                               inspect.getsource(models._dcgan_body).rstrip(),
                               inspect.getsource(models.Generator).rstrip()])
    return "\n".join([
        "from __future__ import annotations",
        "",
        "import json",
        "from types import SimpleNamespace",
        "",
        "import torch",
        "import torch.nn as nn",
        "from huggingface_hub import hf_hub_download",
        "from safetensors.torch import load_file",
        "",
        f'REPO = "{repo_id}"',
        'with open(hf_hub_download(REPO, "config.json")) as f:',
        '    cfg = SimpleNamespace(**{"g_arch": "dcgan", **json.load(f)})  # files before g_arch: the DCGAN',
        "",
        "",
        source,
        "",
        "",
        "G = Generator(cfg).eval()",
        'G.load_state_dict(load_file(hf_hub_download(REPO, "model.safetensors")), strict=True)',
        "with torch.no_grad():",
        "    z = torch.randn(10, cfg.z_dim)",
        "    y = torch.arange(10) % cfg.n_classes if cfg.n_classes else None  # the digit of each image",
        "    x = G(z, y)  # (10, channels, 28, 28) in [-1, 1]; Stacked MNIST has 3 channels",
        "images = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # (10, channels, 28, 28)",
    ])


def _card_metrics(ckpt: Checkpoint) -> dict:
    """The checkpoint's own metrics, else the run's last metrics.jsonl records up to its step."""
    found: dict = {}
    run_dir = ckpt.path.parent.parent if ckpt.path.parent.name == "checkpoints" else None
    if run_dir is not None:
        for rec in read_metrics(run_dir):
            if rec.get("step", 0) <= ckpt.step:
                found.update({k: v for k, v in rec.items()
                              if k not in ("step", "time", "steps_per_s") and isinstance(v, (int, float))})
    own = ckpt.meta.get("metrics")
    if isinstance(own, dict):
        found.update({k: v for k, v in own.items() if isinstance(v, (int, float))})
    return found


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _yaml(meta: dict) -> list[str]:
    """Model-card metadata as YAML; values are plain identifiers, so JSON scalars are valid YAML."""
    out = []
    for k, v in meta.items():
        if isinstance(v, list):
            out += [f"{k}:"] + [f"- {json.dumps(x)}" for x in v]
        else:
            out.append(f"{k}: {json.dumps(v)}")
    return out
