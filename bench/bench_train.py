"""Training and sampling throughput of each variant on this machine.

    python bench/bench_train.py [--data-dir DIR] [--steps 40] [--batch-size N] [--recipes fast,paper]
        [--write checkpoints/speed.json]

For each variant and recipe: generator steps/s and critic steps/s in steady state (the WGAN
warm-up schedule is turned off so every step costs the same; the first log window is discarded
as warm-up), and images/s for sampling a 100-image grid with the Sampler. Prints one JSON line
per variant and recipe, with the CPU it ran on; --write merges the rows into the speed file the
Train form's time estimate reads (one row per variant and recipe, the newest kept).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from wgan_app.config import TrainConfig  # noqa: E402
from wgan_app.sampler import Sampler  # noqa: E402
from wgan_app.train import DoneEvent, StepEvent, resolve_device, train  # noqa: E402


def bench_variant(variant: str, recipe: str, args, tmp: Path) -> dict:
    cfg = TrainConfig(variant=variant, recipe=recipe, data_dir=args.data_dir, iters=args.steps,
                      batch_size=args.batch_size, run_dir=str(tmp / f"{variant}-{recipe}"), log_every=args.steps // 4,
                      sample_every=0, save_every=0, deterministic=args.deterministic,
                      **({"critic_warmup": False} if variant == "wgan" else {}))
    windows, ckpt = [], None
    for ev in train(cfg):
        if isinstance(ev, StepEvent):
            windows.append(ev.steps_per_s)
        elif isinstance(ev, DoneEvent):
            ckpt = ev.checkpoint
    g_rate = sum(windows[1:]) / len(windows[1:])  # drop the first window (allocator, threads warm-up)
    sampler = Sampler.load(ckpt)
    sampler.sample(None, seed=0, n=100)  # warm-up
    reps, t0 = 5, time.perf_counter()
    for r in range(reps):
        sampler.sample(None, seed=r, n=100)
    img_rate = 100 * reps / (time.perf_counter() - t0)
    from wgan_app.train import cpu_name

    return {"variant": variant, "recipe": recipe, "batch_size": cfg.batch_size, "n_critic": cfg.n_critic,
            "generator_steps_per_s": round(g_rate, 3), "critic_steps_per_s": round(g_rate * cfg.n_critic, 2),
            "sample_images_per_s": round(img_rate, 1), "threads": torch.get_num_threads(), "cpu": cpu_name(),
            "device": str(resolve_device(cfg.device)), "deterministic": cfg.deterministic}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="data")
    p.add_argument("--write", metavar="JSON", help="merge the rows into this speed file (checkpoints/speed.json)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=None, help="default: each recipe's (acgan fast 32, else 64)")
    p.add_argument("--variants", default="acgan,wgan-gp,wgan,gan")
    p.add_argument("--recipes", default="fast,paper")
    p.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=True,
                   help="deterministic CUDA kernels, as training uses by default (no effect on a CPU)")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for v in args.variants.split(","):
            for r in args.recipes.split(","):
                rows.append(bench_variant(v, r, args, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    if args.write and args.batch_size is None:  # the estimate reads rows at each recipe's own batch
        path = Path(args.write)
        doc = json.loads(path.read_text()) if path.is_file() else {"rows": []}
        fresh = {(row["variant"], row["recipe"]) for row in rows}
        doc["rows"] = [x for x in doc["rows"] if (x["variant"], x["recipe"]) not in fresh] + rows
        tmp_path = path.with_suffix(".tmp")
        tmp_path.write_text(json.dumps(doc, indent=1) + "\n")
        tmp_path.replace(path)


if __name__ == "__main__":
    main()
