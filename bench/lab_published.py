"""The Lab's mixtures at the papers' horizon and geometry, beside their published rows.

    OMP_NUM_THREADS=1 python bench/lab_published.py [--steps 25000] [--seeds 0]
        [--datasets ring-published grid-published] [--methods gan wgan wgan-gp] [--out DIR]

The Lab trains for a minute on its own mixtures (sigma 0.05, the grid at spacing 1); the mode-
collapse papers report 25,000 iterations on a ring of 8 Gaussians (sigma 0.01, radius 1) and a
5x5 grid (sigma 0.05, spacing 2), batch 512, generator and discriminator MLPs of two hidden
layers of 128 tanh units, scored on 2,500 samples (a mode counts when at least 20 of them lie
within 3 sigma of it; the high-quality share is the fraction within 3 sigma of any mode).
This script trains each Lab preset's objective and optimiser (session.PRESETS: the GAN with Adam
1e-3, clipping with RMSprop and c = 0.01, WGAN-GP with Adam 5e-4 and lambda 10; n_critic 5 for
both critics) on that set-up, and prints modes / high-quality share every --every steps and at
the end, beside GDPP's table 1 (Elfeki et al., ICML 2019) and PacGAN's re-run of the GAN
(Lin et al., NeurIPS 2018, table 1). --out DIR writes published.json (settings, rows, curves) and
published.npz (each run's final samples) for the Lab tab (wgan_app/lab/published.py; shipped in
checkpoints/lab); runs already there with other datasets, methods or seeds are kept, so one
process per mixture can share the folder. About 6 minutes (GAN) to 30 (WGAN-GP) per run on one
core of a 2-core EPYC.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed
from wgan_app.lab import measures, toy
from wgan_app.lab.nets import PointCritic, PointGenerator, seeded_init
from wgan_app.lab.published import load, table_markdown
from wgan_app.lab.session import PRESETS, make_objective, make_optimizer
from wgan_app.trainer import Trainer

N_SAMPLES = 2500  # the papers' sample size for mode counting


def train(method: str, data: toy.ToyData, seed: int, steps: int, every: int):
    """Yields (step, coverage dict, (2500, 2) samples) every `every` generator steps and at `steps`."""
    s = PRESETS[method].replace(width=128, depth=2, batch_size=512, seed=seed, iters=steps)
    with seeded_init(seed):
        G = PointGenerator(s.z_dim, s.width, s.depth, activation="tanh")
        D = PointCritic(s.width, s.depth, activation="tanh")
    trainer = Trainer(s, G, D, make_objective(s), data)
    trainer.replace_optimizers(make_optimizer(s, G.parameters()), make_optimizer(s, D.parameters()))
    z = torch.randn(N_SAMPLES, s.z_dim, generator=torch.Generator().manual_seed(10_000 + seed))  # fixed noise
    while trainer.state.step < steps:
        for _ in range(min(every, steps - trainer.state.step)):
            trainer.step()
        with torch.no_grad():
            x = G(z).numpy()  # (2500, 2)
        yield trainer.state.step, measures.mode_coverage(x, data.centres, data.sigma), x


def save(folder: Path, out: dict, points: dict) -> None:
    """Merge these runs into folder/published.{json,npz}: a run of the same dataset, method and seed
    is replaced, others are kept, so one process per mixture can share the folder (under a lock)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = os.open(folder, os.O_RDONLY)  # the folder itself is the lock: no lock file left beside the results
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = load(folder / "published.json")
        if old is not None and old["steps"] == out["steps"]:
            mine = {(r["dataset"], r["method"], r["seed"]) for r in out["runs"]}
            out = {**out, "runs": [r for r in old["runs"] if (r["dataset"], r["method"], r["seed"]) not in mine]
                   + out["runs"]}
            if (folder / "published.npz").is_file():
                with np.load(folder / "published.npz") as z:
                    points = {**{k: z[k] for k in z.files}, **points}
        for path, write in ((folder / "published.npz", lambda f: np.savez_compressed(f, **points)),
                            (folder / "published.json", lambda f: f.write(json.dumps(out, indent=1).encode()))):
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "wb") as f:
                write(f)
            os.replace(tmp, path)  # atomic: the Lab never reads half a file

    finally:
        os.close(lock)  # closing releases the flock

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=25_000, help="generator steps (the papers': 25,000)")
    ap.add_argument("--every", type=int, default=5000, help="report every this many steps")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--datasets", nargs="+", default=list(toy.PUBLISHED), choices=list(toy.PUBLISHED))
    ap.add_argument("--methods", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--out", type=Path, help="write published.json and published.npz here (atomically)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    rows = []  # one per dataset x method x seed
    points = {}  # "<dataset>/<method>/<seed>" -> its final (2500, 2) samples
    for name in args.datasets:
        data = toy.PUBLISHED[name]
        for m in args.methods:
            for seed in args.seeds:
                t = time.perf_counter()
                curve = []
                for step, cov, x in train(m, data, seed, args.steps, args.every):
                    curve.append([step, cov["modes"], round(cov["high_quality"], 4)])
                    print(f"  {name} {m} seed {seed} step {step}: {cov['modes']}/{cov['of']} modes, "
                          f"{cov['high_quality']:.1%} high quality ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
                rows.append({"dataset": name, "method": m, "seed": seed, "steps": step, "modes": cov["modes"],
                             "of": cov["of"], "high_quality": round(cov["high_quality"], 4), "curve": curve,
                             "seconds": round(time.perf_counter() - t, 1)})
                points[f"{name}/{m}/{seed}"] = x.astype(np.float16)

    out = {"steps": args.steps, "batch_size": 512, "networks": "2 x 128 tanh", "samples": N_SAMPLES,
           "z_dim": PRESETS["gan"].z_dim,
           "presets": {m: {"optimizer": PRESETS[m].optimizer, "lr": PRESETS[m].lr, "n_critic": PRESETS[m].n_critic}
                       for m in PRESETS},
           "runs": rows}
    print(table_markdown(out))
    print(f"{time.perf_counter() - t0:.0f} s, torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.out:
        save(args.out, out, points)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
