"""Generator steps/s of one process against N processes under torchrun, and the scaling efficiency.

    python bench/bench_dist.py [--data-dir ../shared/data] [--nproc 2] [--steps 200] [--batch-size 64]
                               [--scaling strong|weak] [--device auto|cpu|cuda] [-- extra --train flags]

Each configuration is the real CLI (`python app.py --train`, or `torchrun --standalone
--nproc-per-node N app.py --train`) in a subprocess, with a fresh run directory in a temporary
folder. Its rate is read from the run's own metrics.jsonl: steps over seconds between the end of
the first log window (start-up, allocator and thread warm-up excluded) and the last.

On CPU three configurations share the same cores: 1 process x 1 thread (the baseline), 1
process x N threads, and N processes x 1 thread (OMP_NUM_THREADS=1, torchrun's default). On
CUDA: 1 process on one GPU, then N processes on N GPUs. `--scaling strong` (default) keeps
the global batch (the same run, faster); `weak` gives each process the whole --batch-size.

Prints one JSON line per configuration and a summary line: speedup over the baseline and
efficiency = speedup / workers (threads or GPUs) for the images/s, plus the N-process rate
against the N-thread one on CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wgan_app.rundir import read_metrics  # noqa: E402
from wgan_app.train import cpu_name  # noqa: E402


def measure(name: str, nproc: int, threads: int, batch: int, args, tmp: Path) -> dict:
    run = tmp / name
    log_every = max(args.steps // 5, 1)
    flags = ["--train", "--data-dir", args.data_dir, "--run-dir", str(run), "--iters", str(args.steps),
             "--batch-size", str(batch), "--variant", args.variant, "--recipe", args.recipe, "--device", args.device,
             "--log-every", str(log_every), "--sample-every", "0", "--save-every", "0", *args.train_flags]
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
                if nproc > 1 else [sys.executable])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    t0 = time.time()
    r = subprocess.run([*launcher, str(ROOT / "app.py"), *flags], capture_output=True, text=True, env=env)
    wall = time.time() - t0
    if r.returncode != 0:
        sys.exit(f"bench_dist: {name} failed:\n{r.stderr[-3000:]}")
    rows = [m for m in read_metrics(run) if "steps_per_s" in m]
    if len(rows) < 2:
        sys.exit(f"bench_dist: {name}: too few log windows; raise --steps")
    first, last = rows[0], rows[-1]  # rate between the end of the first window and the last
    rate = (last["step"] - first["step"]) / max(last["time"] - first["time"], 1e-9)
    return {"config": name, "processes": nproc, "threads_per_process": threads, "global_batch": batch,
            "generator_steps_per_s": round(rate, 3), "images_per_s": round(rate * batch, 1),
            "wall_s": round(wall, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--nproc", type=int, default=2, help="processes (CPU: also the thread count compared)")
    p.add_argument("--steps", type=int, default=200, help="generator steps per configuration")
    p.add_argument("--batch-size", type=int, default=64, help="global batch (per process with --scaling weak)")
    p.add_argument("--scaling", choices=("strong", "weak"), default="strong")
    p.add_argument("--variant", default="acgan")
    p.add_argument("--recipe", default="fast")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more app.py --train flags")
    args = p.parse_args()
    args.train_flags = [f for f in args.train_flags if f != "--"]
    import torch

    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    n = args.nproc
    if cuda and torch.cuda.device_count() < n:
        sys.exit(f"bench_dist: --nproc {n} needs {n} GPUs; this machine has {torch.cuda.device_count()}")
    big = args.batch_size * n if args.scaling == "weak" else args.batch_size
    if big % n:
        sys.exit(f"bench_dist: --batch-size {big} does not divide among {n} processes")
    machine = torch.cuda.get_device_name(0) if cuda else f"{cpu_name()}, {os.cpu_count()} cores"

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if cuda:
            plan = [("1 GPU", 1, 1, args.batch_size), (f"{n} GPUs", n, 1, big)]
        else:
            plan = [("1 process x 1 thread", 1, 1, args.batch_size),
                    (f"1 process x {n} threads", 1, n, big),
                    (f"{n} processes x 1 thread", n, 1, big)]
        for name, nproc, threads, batch in plan:
            res = measure(name, nproc, threads, batch, args, Path(tmp))
            res.update(variant=args.variant, recipe=args.recipe, machine=machine, torch=torch.__version__)
            print(json.dumps(res), flush=True)
            results.append(res)

    base = results[0]
    summary = {"scaling": args.scaling, "machine": machine}
    for res in results[1:]:
        workers = res["processes"] * res["threads_per_process"]
        speedup = res["images_per_s"] / base["images_per_s"]
        summary[res["config"]] = {"speedup": round(speedup, 3), "efficiency": round(speedup / workers, 3)}
    if not cuda:
        procs, threads = results[2], results[1]
        summary[f"{n} processes vs {n} threads"] = round(procs["images_per_s"] / threads["images_per_s"], 3)
    print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    main()
