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
import sys
from pathlib import Path

from .cards import model_card, training_curve  # noqa: F401  (training_curve: public here too)
from .checkpoint import CONFIG_NAME, load_checkpoint, load_training_state, write_checkpoint_dir
from .errors import UserError
from .rundir import METRICS_NAME


def export(src: str, out: str, command: str, num: int | None = None, name: str | None = None,
           note: str = "") -> Path:
    from .metrics import STACKED_NUM, evaluate_checkpoint

    ckpt = load_checkpoint(src)
    num = num or (STACKED_NUM if ckpt.model.dataset == "stacked-mnist" else 10000)
    state = load_training_state(ckpt.path)
    metrics = evaluate_checkpoint(ckpt.path, num=num, seed=0)
    name = name or Path(out).name
    config = json.loads((ckpt.path / CONFIG_NAME).read_text())
    config["metrics"] = metrics
    curve = training_curve(ckpt.path.parent.parent / METRICS_NAME)  # run_dir/checkpoints/step_N
    card = model_card(ckpt, name=name, metrics=metrics, command=command, note=note, curve=curve,
                      wall_s=float(state["elapsed"]))
    extra = {"samples.png": (ckpt.path / "samples.png").read_bytes(), "README.md": card.encode()}
    return write_checkpoint_dir(out, config, ckpt.generator_state, extra_files=extra, overwrite=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m wgan_app.export", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="run directory or checkpoint folder")
    p.add_argument("--out", required=True, help="destination folder, e.g. checkpoints/acgan-mnist")
    p.add_argument("--command", required=True, help="the training command that reproduces the run")
    p.add_argument("--num", type=int, default=None, help="samples for the metrics (default 10,000; Stacked MNIST "
                   "26,000, the papers' count)")
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
