"""Claim 2 measured: does each critic's training curve track the exact W1 over a Lab run?

    OMP_NUM_THREADS=1 python bench/lab_tracking.py [--seeds 0 1 2 3 4] [--steps 2000] [--at 500 1000]
        [--methods gan wgan wgan-gp] [--dataset 8gaussians] [--set key=value ...]

Trains each Lab preset (wgan_app.lab.session.PRESETS, the Lab's defaults) as the Lab does and
measures the exact W1 of the panel's 256 points every MEASURE_EVERY steps, the measurement the
panel draws. Per run it prints the Spearman correlation the panel's status line shows
(LabRun.tracking: the critic's estimate averaged over each measurement's window, against the
exact W1; for the BCE GAN its discriminator loss, which estimates no distance), and the exact
W1 at the start and the end. A markdown table, then the mean over seeds. `--at` also prints the
correlation the panel showed when the run was at those earlier steps (over the run so far), and
`--set` changes a setting of every run (to try one before changing the presets).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed
from lab_modes import parse_settings  # noqa: E402  (bench/ is on sys.path when a script there runs)

from wgan_app.lab.session import MEASURE_EVERY, PRESETS, LabRun


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=2000, help="generator steps per run")
    ap.add_argument("--methods", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--dataset", default="8gaussians")
    ap.add_argument("--at", type=int, nargs="*", default=[], help="also the correlation over the run up to these steps")
    ap.add_argument("--set", nargs="*", default=[], help="key=value for every run (as bench/lab_modes.py)")
    args = ap.parse_args(argv)
    if args.steps < 5 * MEASURE_EVERY:
        ap.error(f"--steps must be at least {5 * MEASURE_EVERY} (five measurements)")

    t0 = time.perf_counter()
    cells: dict[str, list[tuple[float | None, float, float]]] = {}
    early: dict[tuple[str, int], list[float | None]] = {}
    for m in args.methods:
        cells[m] = []
        for seed in args.seeds:
            run = LabRun(PRESETS[m].replace(dataset=args.dataset, seed=seed, **parse_settings(args.set)))
            first = run.measure().w1
            while run.step < args.steps:
                run.steps(min(MEASURE_EVERY, args.steps - run.step))
                run.measure()
            rho = run.tracking()
            cells[m].append((rho, first, run.measured[-1].w1))
            for k in args.at:
                early.setdefault((m, k), []).append(_rho_until(run, k))
            print(f"  {m} seed {seed}: rho {rho}, W1 {first:.3f} -> {run.measured[-1].w1:.3f} "
                  f"(floor {run.w1_floor:.3f}; {time.perf_counter() - t0:.0f} s)", file=sys.stderr)

    print(f"dataset {args.dataset}, {args.steps:,} generator steps, exact W1 on 256 points every "
          f"{MEASURE_EVERY} steps; cells: Spearman rho of the critic's curve with the exact W1 "
          "[W1 first -> last]")
    print("\n| method | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean rho |")
    print("|---|" + "---|" * (len(args.seeds) + 1))
    for m, row in cells.items():
        rhos = [r for r, _, _ in row if r is not None]
        fmt = lambda r: "n/a" if r is None else f"{r:+.2f}"  # noqa: E731
        mean = f"{np.mean(rhos):+.2f}" if rhos else "n/a"
        print(f"| {m} | " + " | ".join(f"{fmt(r)} [{a:.2f} -> {b:.2f}]" for r, a, b in row) + f" | {mean} |")
    for k in args.at:
        print(f"\nover the first {k:,} steps (what the panel showed then):\n")
        print("| method | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean rho |")
        print("|---|" + "---|" * (len(args.seeds) + 1))
        for m in cells:
            row = early[(m, k)]
            rhos = [r for r in row if r is not None]
            mean = f"{np.mean(rhos):+.2f}" if rhos else "n/a"
            print(f"| {m} | " + " | ".join("n/a" if r is None else f"{r:+.2f}" for r in row) + f" | {mean} |")
    print(f"\n{time.perf_counter() - t0:.0f} s, torch {torch.__version__}, {torch.get_num_threads()} threads")
    return 0


def _rho_until(run: LabRun, k: int) -> float | None:
    """LabRun.tracking() as it read when the run was at step k (its curves cut there)."""
    view = run.view(copy=False)
    n = int(np.searchsorted(view.history["step"], k, side="right"))
    view.history = {key: values[:n] for key, values in view.history.items()}
    view.measured = [x for x in view.measured if x.step <= k]
    return view.tracking()

if __name__ == "__main__":
    raise SystemExit(main())
