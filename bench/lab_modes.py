"""Claim 3 measured: modes covered and high-quality share per method x seed at fixed step counts.

    OMP_NUM_THREADS=1 python bench/lab_modes.py [--seeds 0 1 2 3 4] [--at 500 1000 2000]
        [--methods gan wgan wgan-gp] [--dataset 8gaussians] [--set z_dim=2 ...] [--set-gan lr=1e-3 ...]

Trains each Lab preset (wgan_app.lab.session.PRESETS) on the same data and seed, as the Lab
does, and at each step count in --at prints what the panel shows (modes covered / share of
samples within 3 sigma of a mode, on the run's 256 fixed evaluation points) and the same on
2,500 fresh points with PacGAN's rule (a mode counts when >= 20 of 2,500 samples land on it),
which is steadier. `--set` changes a setting of every run, `--set-<method>` of one method (to
try presets before changing them). A markdown table per step count, then the mean over seeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed
from wgan_app.lab import measures
from wgan_app.lab.session import PRESETS, LabRun

N_BIG = 2500  # PacGAN's sample size for mode counting


def parse_settings(pairs: list[str]) -> dict:
    """["lr=1e-3", "z_dim=8", "batch_norm=true"] -> {"lr": 0.001, "z_dim": 8, "batch_norm": True}"""
    out = {}
    for p in pairs:
        k, _, v = p.partition("=")
        for cast in (int, float):
            try:
                out[k] = cast(v)
                break
            except ValueError:
                pass
        else:
            out[k] = {"true": True, "false": False}.get(v.lower(), v)
    return out


@torch.no_grad()
def coverage_big(run: LabRun, seed: int) -> dict:
    """Mode coverage of N_BIG fresh generated points (fixed noise per seed, not the run's RNG)."""
    G = run.trainer.state.G
    z = torch.randn(N_BIG, run.settings.z_dim, generator=torch.Generator().manual_seed(10_000 + seed))
    G.eval()
    x = G(z).numpy()
    G.train()
    return measures.mode_coverage(x, run.data.centres, run.data.sigma)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--at", type=int, nargs="+", default=[500, 1000, 2000], help="generator steps to report at")
    ap.add_argument("--methods", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--dataset", default="8gaussians")
    ap.add_argument("--set", nargs="*", default=[], help="key=value for every run")
    for m in PRESETS:
        ap.add_argument(f"--set-{m}", nargs="*", default=[], help=f"key=value for the {m} run only")
    args = ap.parse_args(argv)
    common = parse_settings(args.set)
    at = sorted(args.at)

    # results[method][seed][step] = (modes256, hq256, modes2500, hq2500)
    results: dict[str, dict[int, dict[int, tuple]]] = {}
    t0 = time.perf_counter()
    for m in args.methods:
        own = parse_settings(getattr(args, f"set_{m.replace('-', '_')}"))
        results[m] = {}
        for seed in args.seeds:
            run = LabRun(PRESETS[m].replace(dataset=args.dataset, seed=seed, **common, **own))
            if not run.data.is_mixture:
                ap.error(f"{args.dataset} has no modes to count")
            row = {}
            for n in at:
                run.steps(n - run.step)
                small, big = run.measure(), coverage_big(run, seed)
                row[n] = (small.modes, small.high_quality, big["modes"], big["high_quality"])
            results[m][seed] = row
            print(f"  {m} seed {seed}: " + ", ".join(f"{n}: {r[2]}/{big['of']}" for n, r in row.items())
                  + f"  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    of = len(run.data.centres)

    first = PRESETS[args.methods[0]].replace(**common)
    print(f"dataset {args.dataset}, {of} modes; shared settings: z_dim {first.z_dim}, depth {first.depth}, "
          f"width {first.width}, batch {first.batch_size}" + (f"; --set {' '.join(args.set)}" if args.set else ""))
    for m in args.methods:
        own = getattr(args, f"set_{m.replace('-', '_')}")
        s = PRESETS[m].replace(**common, **parse_settings(own))
        print(f"  {m}: {s.optimizer} lr {s.lr:g}, n_critic {s.n_critic}"
              + {"wgan": f", c {s.clip_value:g}", "wgan-gp": f", lambda {s.lambda_gp:g}", "gan": ""}[m])
    print("cells: modes covered (Lab panel, 256 points) / high-quality share; [modes on 2,500 points]")
    for n in at:
        print(f"\n### after {n:,} generator steps\n")
        print("| method | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean modes (256 / 2,500) |")
        print("|---|" + "---|" * (len(args.seeds) + 1))
        for m in args.methods:
            cells = [results[m][s][n] for s in args.seeds]
            print(f"| {m} | " + " | ".join(f"{c[0]}/{of} {c[1]:.0%} [{c[2]}]" for c in cells)
                  + f" | {np.mean([c[0] for c in cells]):.1f} / {np.mean([c[2] for c in cells]):.1f} |")
    print(f"\n{time.perf_counter() - t0:.0f} s, torch {torch.__version__}, {torch.get_num_threads()} threads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
