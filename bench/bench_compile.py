"""Does torch.compile or channels_last speed up a training step on this CPU? (issue 10's levers)

    python bench/bench_compile.py --data-dir ../shared/data [--variant acgan] [--recipe fast] [--steps 300]

Times generator steps/s of the real Trainer (after a warm-up that includes compilation) for:
eager, channels_last memory format for images and both networks, and torch.compile of the
generator (the critic's gradient penalty needs a double backward, which torch.compile's
autograd does not support; compiling the critic too is tried and reported if it fails).
Alternating order, two rounds; quote ratios within one run on a quiet machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wgan_app.config import TrainConfig  # noqa: E402
from wgan_app.train import build_trainer, cpu_name  # noqa: E402


def rate(mode: str, args, tmp: Path) -> float:
    cfg = TrainConfig(variant=args.variant, recipe=args.recipe, data_dir=args.data_dir, iters=10**6,
                      run_dir=str(tmp / f"{mode}-{time.time_ns()}"), log_every=0, sample_every=0, save_every=0)
    tr = build_trainer(cfg)
    s = tr.state
    if mode == "channels_last":
        s.G.to(memory_format=torch.channels_last)
        s.D.to(memory_format=torch.channels_last)
        data = tr.data
        batch = data.batch

        def batch_cl(n, g):
            x, y = batch(n, g)
            return x.contiguous(memory_format=torch.channels_last), y
        data.batch = batch_cl
    elif mode == "compile_g":
        s.G.forward = torch.compile(s.G.forward)
    elif mode == "compile_both":
        s.G.forward = torch.compile(s.G.forward)
        s.D.forward = torch.compile(s.D.forward)
    for _ in range(args.warmup):
        tr.step()
    t = time.perf_counter()
    for _ in range(args.steps):
        tr.step()
    return args.steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--variant", default="acgan")
    ap.add_argument("--recipe", default="fast")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--modes", default="eager,channels_last,compile_g,compile_both")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_compile-"))
    modes = args.modes.split(",")
    results: dict[str, list[float]] = {m: [] for m in modes}
    for rnd in range(2):
        for m in (modes if rnd == 0 else modes[::-1]):
            try:
                results[m].append(rate(m, args, tmp))
            except Exception as e:  # e.g. double backward through a compiled critic
                results[m].append(float("nan"))
                print(f"{m}: failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}", flush=True)
            print(f"round {rnd + 1} {m}: {results[m][-1]:.2f} generator steps/s", flush=True)
    base = sum(results["eager"]) / len(results["eager"]) if "eager" in results else None
    print(f"\n{args.variant} --recipe {args.recipe}, {torch.get_num_threads()} threads, {cpu_name()}")
    print("| mode | generator steps/s (2 rounds) | vs eager |\n|---|---|---|")
    for m, v in results.items():
        mean = sum(v) / len(v)
        print(f"| {m} | {' / '.join(f'{x:.2f}' for x in v)} | {mean / base:.2f}× |" if base else f"| {m} | {v} | |")


if __name__ == "__main__":
    main()
