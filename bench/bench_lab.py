"""The Lab's speed with three runs side by side: training steps/s per run and panel frames/s.

    OMP_NUM_THREADS=1 python bench/bench_lab.py [--seconds 10] [--dataset 8gaussians]

Trains the three presets for --seconds each in the Workspace's own time slices (as the
timer does), then times the render of all three panels (what one refresh costs). Prints a table.
Run it on a quiet machine: figures taken beside another job are not comparable.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed
from wgan_app.lab.session import PRESETS
from wgan_app.lab.workspace import TICK_BUDGET_S, Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="training wall time to measure")
    ap.add_argument("--dataset", default="8gaussians")
    ap.add_argument("--frames", type=int, default=20, help="refreshes to time")
    args = ap.parse_args()

    ws = Workspace([s.replace(dataset=args.dataset) for s in PRESETS.values()])
    ws.train(TICK_BUDGET_S)  # warm-up: first calls allocate
    steps = [0] * len(ws.runs)
    spent = [0.0] * len(ws.runs)
    t_end = time.perf_counter() + args.seconds
    while time.perf_counter() < t_end:
        for i, run in enumerate(ws.runs):  # the Workspace's slices, timed per run
            t = time.perf_counter()
            steps[i] += run.steps(max(1, int(ws._rate[i] * TICK_BUDGET_S / 3)))
            spent[i] += time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(args.frames):
        ws.panels(keep_frame=False)
        for run in ws.runs:
            run.steps(1)  # a new step each frame, so the measurement is redone as in live use
    render_s = (time.perf_counter() - t) / args.frames

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dataset {args.dataset}")
    print(f"| run | n_critic | steps/s (own time) | steps/s (wall, 3 runs sharing) | critic updates/s |")
    print("|---|---|---|---|---|")
    wall = sum(spent)
    for run, k, s in zip(ws.runs, steps, spent):
        print(f"| {run.settings.objective} | {run.settings.n_critic} | {k / s:.0f} | {k / wall:.0f} | "
              f"{k * run.settings.n_critic / s:.0f} |")
    print(f"\nrender of the three panels (measure + draw): {render_s * 1e3:.1f} ms -> "
          f"{1 / render_s:.1f} frames/s for rendering alone; with {TICK_BUDGET_S * 1e3:.0f} ms of training per "
          f"tick: {1 / (render_s + TICK_BUDGET_S):.1f} refreshes/s (before PNG encoding and the browser)")


if __name__ == "__main__":
    main()
