"""Turn a run's checkpoint into a shipped, sampling-only model folder with a model card.

    python -m wgan_app.export --checkpoint runs/X --out checkpoints/acgan-mnist \
        --command "python app.py --train ..." [--num 10000]

The folder gets config.json (with the measured metrics added), model.safetensors (generator
only), samples.png and README.md: variant, data, steps, wall time and hardware, metrics, and the
exact command that reproduces it. When the checkpoint sits in a run directory whose
metrics.jsonl holds quality evaluations (`--eval-every`), the card also tabulates them beside the
Wasserstein estimate: the curve that shows whether -L_D really tracks sample quality. The
training state (critic, optimisers) stays behind.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from .checkpoint import CONFIG_NAME, load_checkpoint, load_training_state, write_checkpoint_dir
from .errors import UserError


def hardware() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()}-core {cpu}, CPU only, torch {torch.__version__.split('+')[0]}"


def training_curve(metrics_path: Path, window: int = 100) -> list[dict]:
    """One row per quality evaluation of a run: step, minutes, FID, class accuracy, and the
    Wasserstein estimate averaged over the `window` generator steps before it (one logged
    value is too noisy to compare)."""
    from .train import read_metrics

    logs, evals = [], []
    for row in read_metrics(metrics_path):
        if "eval/fid" in row:
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
                      "fid": e["eval/fid"], "fid_floor": e.get("eval/fid_floor"), "num": e.get("eval/num"),
                      "class_accuracy": e.get("eval/class_accuracy")})
    return curve


def curve_section(curve: list[dict]) -> str:
    """The card's "Training curve": the evaluations (at most 12 shown) and how well the
    Wasserstein estimate ranks them (Spearman correlation with MNIST-FID over all of them)."""
    if len(curve) < 3:
        return ""
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


def model_card(name: str, ckpt, metrics: dict, wall_s: float, command: str, note: str = "",
               curve: list[dict] | None = None) -> str:
    m, train = ckpt.model, ckpt.meta.get("train_config") or {}
    recipe = {k: train.get(k) for k in ("constraint", "optimizer", "lr", "beta1", "beta2", "n_critic",
                                         "critic_warmup", "lambda_gp", "clip_value", "lr_decay_from", "ema",
                                         "batch_size", "g_width", "g_refine", "d_width", "d_layers", "z_dim", "seed")
              if train.get(k) is not None}
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items())
    return f"""# {name}

The `{m.variant}` generator of 28x28 {m.dataset} images ({'class-conditional' if m.conditional else 'unconditional'}),
trained by wgan_app for **{ckpt.step} generator steps** in **{wall_s / 60:.1f} minutes** of wall time on a
{hardware()}{f" ({note})" if note else ""}.
The weights are the exponential moving average of the generator, with batch-norm statistics
re-measured on its own samples.

![samples from fixed noise](samples.png)

## Reproduce

```bash
{command}
```

Recipe: {", ".join(f"`{k}={v}`" for k, v in recipe.items())}.

## Metrics

Measured with `python app.py --eval --checkpoint checkpoints/{name} --num {metrics.get('num')}`
(the project's MNIST classifier; `fid_floor` is real training images vs the test split at the same
sample count):

| metric | value |
|---|---|
{rows}

{curve_section(curve or [])}
## Use

```bash
python app.py --sample --checkpoint checkpoints/{name} --label all --out grid.png
```
"""


def export(src: str, out: str, command: str, num: int = 10000, name: str | None = None, note: str = "") -> Path:
    from .metrics import evaluate_checkpoint

    ckpt = load_checkpoint(src)
    state = load_training_state(ckpt.path)
    metrics = evaluate_checkpoint(ckpt.path, num=num, seed=0)
    name = name or Path(out).name
    config = json.loads((ckpt.path / CONFIG_NAME).read_text())
    config["metrics"] = metrics
    curve = training_curve(ckpt.path.parent.parent / "metrics.jsonl")  # run_dir/checkpoints/step_N
    card = model_card(name, ckpt, metrics, float(state["elapsed"]), command, note, curve)
    extra = {"samples.png": (ckpt.path / "samples.png").read_bytes(), "README.md": card.encode()}
    return write_checkpoint_dir(out, config, ckpt.generator_state, extra_files=extra, overwrite=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m wgan_app.export", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="run directory or checkpoint folder")
    p.add_argument("--out", required=True, help="destination folder, e.g. checkpoints/acgan-mnist")
    p.add_argument("--command", required=True, help="the training command that reproduces the run")
    p.add_argument("--num", type=int, default=10000, help="samples for the metrics")
    p.add_argument("--note", default="", help="how the hardware was used, e.g. 'one thread, beside another run'")
    args = p.parse_args(argv)
    try:
        dest = export(args.checkpoint, args.out, args.command, args.num, note=args.note)
    except UserError as e:
        print(f"export: error: {e}", file=sys.stderr)
        return 2
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
