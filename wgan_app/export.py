"""Turn a run's checkpoint into a shipped, sampling-only model folder with a model card.

    python -m wgan_app.export --checkpoint runs/X --out checkpoints/acgan-mnist \
        --command "python app.py --train ..." [--num 10000]

The folder gets config.json (with the measured metrics added), model.safetensors (generator
only), samples.png and README.md: variant, data, steps, wall time and hardware, metrics, and the
exact command that reproduces it. The training state (critic, optimisers) stays behind.
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


def model_card(name: str, ckpt, metrics: dict, wall_s: float, command: str) -> str:
    m, train = ckpt.model, ckpt.meta.get("train_config") or {}
    recipe = {k: train.get(k) for k in ("constraint", "optimizer", "lr", "beta1", "beta2", "n_critic",
                                         "critic_warmup", "lambda_gp", "clip_value", "lr_decay_from", "ema",
                                         "batch_size", "g_width", "d_width", "z_dim", "seed")
              if train.get(k) is not None}
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items())
    return f"""# {name}

The `{m.variant}` generator of 28x28 {m.dataset} images ({'class-conditional' if m.conditional else 'unconditional'}),
trained by wgan_app for **{ckpt.step} generator steps** in **{wall_s / 60:.1f} minutes** of wall time on a
{hardware()} (shared with other work while it trained, so the time is an upper bound).
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

## Use

```bash
python app.py --sample --checkpoint checkpoints/{name} --label all --out grid.png
```
"""


def export(src: str, out: str, command: str, num: int = 10000, name: str | None = None) -> Path:
    from .metrics import evaluate_checkpoint

    ckpt = load_checkpoint(src)
    state = load_training_state(ckpt.path)
    metrics = evaluate_checkpoint(ckpt.path, num=num, seed=0)
    name = name or Path(out).name
    config = json.loads((ckpt.path / CONFIG_NAME).read_text())
    config["metrics"] = metrics
    extra = {"samples.png": (ckpt.path / "samples.png").read_bytes(),
             "README.md": model_card(name, ckpt, metrics, float(state["elapsed"]), command).encode()}
    return write_checkpoint_dir(out, config, ckpt.generator_state, extra_files=extra, overwrite=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m wgan_app.export", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="run directory or checkpoint folder")
    p.add_argument("--out", required=True, help="destination folder, e.g. checkpoints/acgan-mnist")
    p.add_argument("--command", required=True, help="the training command that reproduces the run")
    p.add_argument("--num", type=int, default=10000, help="samples for the metrics")
    args = p.parse_args(argv)
    try:
        dest = export(args.checkpoint, args.out, args.command, args.num)
    except UserError as e:
        print(f"export: error: {e}", file=sys.stderr)
        return 2
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
