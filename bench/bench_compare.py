"""The MNIST evidence (issue 13): every method on the same budget, through the real CLI.

    python bench/bench_compare.py --minutes 20 --dry-run       # the exact commands, one per run
    python bench/bench_compare.py --minutes 20                 # train them, one after another
    python bench/bench_compare.py --steps 3000                 # the same number of generator steps instead
    python bench/bench_compare.py --minutes 20 --summary-only  # only the tables, from what has run
    python bench/bench_compare.py --minutes 20 --export-to checkpoints/evidence/recipes   # then ship them
    python bench/bench_compare.py --minutes 5 --methods gan,wgan,wgan-gp --recipes fast \
        --archs dcgan,dcgan-nobn,mlp --export-to checkpoints/evidence/architectures  # the generator axis

Runs: `gan` (BCE), `wgan` (clipping), `wgan-gp` and `acgan` (the conditional reference), each
with the `fast` and the `paper` recipe where the two differ, for each generator architecture
(`--archs`, default the DCGAN with batch norm) and each seed (default 0,1,2). Each
is `python app.py --train ...` with `--eval-minutes` (quality and the held-out W estimate logged
after every `--eval-seconds` of training time) and `--grid-minutes`, into
`<out>/<variant>-<recipe>[-<arch>]-s<seed>-<budget>/` (the architecture named unless it is
`dcgan`). By default runs go strictly one after another (two
would share the CPU and each other's minutes); `--jobs 2 --threads 1` trains two at once, each on
its own core, which puts every run on the same terms at twice the throughput. A run that finished
(its `bench.json`) is skipped, so the command can be re-run after an interruption. The training
clock stops during evaluations and grids (trainer.py), so a run's minutes are its training time.

The summary (stdout, `<out>/summary.md`, `<out>/summary.json`): per method over seeds, best
MNIST-FID, minutes to it, final FID, and the Spearman correlation with FID over each run's
evaluations of the held-out W estimate and of the training-time estimate (mean [min, max]).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wgan_app.config import G_ARCHS, TrainConfig  # noqa: E402
from wgan_app.errors import UserError  # noqa: E402
from wgan_app.evidence import load_run  # noqa: E402
from wgan_app.evidence.export import export_run  # noqa: E402
from wgan_app.evidence.report import method_summaries, summary_markdown  # noqa: E402
from wgan_app.evidence.stacked import stacked_markdown  # noqa: E402
from wgan_app.jobs import measured_rates  # noqa: E402
from wgan_app.objectives import RECIPES, VARIANTS  # noqa: E402

METHODS = ("gan", "wgan", "wgan-gp", "acgan")
GRID_MINUTES = (1, 2, 5, 10, 20)
DONE_NAME = "bench.json"  # written into a run's folder once its command exited cleanly


@dataclass
class Run:
    name: str
    variant: str
    recipe: str
    arch: str
    seed: int
    run_dir: Path
    command: list[str]
    env: dict[str, str]

    def shell(self) -> str:
        return " ".join([*(f"{k}={v}" for k, v in self.env.items()), shlex.join(self.command)])


def recipes_that_differ(variant: str, recipes: list[str]) -> list[str]:
    """`recipes` without those that resolve to the same settings as an earlier one for `variant`."""
    seen, out = [], []
    for r in recipes:
        flat = {k: v for k, v in TrainConfig(variant=variant, recipe=r).to_flat().items() if k != "recipe"}
        if flat not in seen:
            seen.append(flat)
            out.append(r)
    return out


def eval_flags(args) -> list[str]:
    """When to evaluate: every --eval-every steps if given; else, with --minutes, after every
    --eval-seconds of training time (so runs of any speed share one time axis); else a 40th of --steps."""
    if args.eval_every:
        return ["--eval-every", str(args.eval_every)]
    if args.minutes:
        return ["--eval-minutes", f"{args.eval_seconds / 60:.6g}"]
    return ["--eval-every", str(max(1, args.steps // 40))]


def plan(args) -> list[Run]:
    budget = f"{args.minutes:g}min" if args.minutes else f"{args.steps}steps"
    marks = [m for m in args.grid_minutes if not args.minutes or m <= args.minutes]
    runs = []
    for method in args.methods:
        variant, _, only = method.partition(":")  # "gan:paper" pins the method's recipe
        for recipe in ([only] if only else recipes_that_differ(variant, args.recipes)):
            for arch, seed in ((a, s) for a in args.archs for s in args.seeds):
                name = f"{variant}-{recipe}{'' if arch == 'dcgan' else '-' + arch}-s{seed}-{budget}"
                run_dir = Path(args.out) / name
                cmd = [sys.executable, str(ROOT / "app.py"), "--train", "--variant", variant, "--recipe", recipe,
                       "--g-arch", arch, *(["--dataset", args.dataset] if args.dataset != "mnist" else []),
                       "--seed", str(seed), "--data-dir", str(args.data_dir), "--run-dir", str(run_dir),
                       *(["--max-minutes", f"{args.minutes:g}"] if args.minutes else ["--iters", str(args.steps)]),
                       *eval_flags(args), "--eval-num", str(args.eval_num),
                       *(["--grid-minutes", ",".join(f"{m:g}" for m in marks)] if marks else []),
                       "--sample-every", "0", "--save-every", str(args.save_every), "--keep-checkpoints", "1",
                       "--log-every", str(args.log_every), *shlex.split(args.train_args)]
                runs.append(Run(name, variant, recipe, arch, seed, run_dir, cmd,
                                {"OMP_NUM_THREADS": str(args.threads)}))
    runs = [r for r in runs if not any(fnmatch.fnmatch(r.name, pat) for pat in args.exclude)]
    return sorted(runs, key=lambda r: r.seed)  # every method once before any twice: an interrupted set stays comparable


def finished(run: Run) -> bool:
    return (run.run_dir / DONE_NAME).is_file()


def train_one(run: Run) -> dict:
    """Run one training command to its end; its record (also written as <run>/bench.json)."""
    if run.run_dir.exists() and not finished(run):
        raise UserError(f"{run.run_dir} holds an unfinished run (interrupted?); delete it to train it again")
    t0 = time.perf_counter()
    r = subprocess.run(run.command, env={**os.environ, **run.env}, capture_output=True, text=True)
    wall = round(time.perf_counter() - t0, 1)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"{run.name}: training failed (exit {r.returncode}): {last}")
    record = {"name": run.name, "command": run.shell(), "wall_seconds": wall, "stderr_tail": r.stderr[-300:]}
    (run.run_dir / DONE_NAME).write_text(json.dumps(record, indent=2) + "\n")
    return record


def summarise(runs: list[Run], out: Path) -> str:
    done = [load_run(r.run_dir) for r in runs if finished(r)]
    table = stacked_markdown(done) if done and done[0].stacked else summary_markdown(done)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(table + "\n")
    (out / "summary.json").write_text(json.dumps({"methods": method_summaries(done),
                                                  "runs": [r.summary() for r in done]}, indent=2) + "\n")
    return table


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="train each run for this many minutes (training time)")
    budget.add_argument("--steps", type=int, help="train each run for this many generator steps")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated variants ({', '.join(VARIANTS)}), each optionally with one recipe: gan:paper")
    p.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated recipes (fast, paper)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    p.add_argument("--archs", default="dcgan", help=f"comma-separated generator architectures ({', '.join(G_ARCHS)})")
    p.add_argument("--out", default="runs/compare", help="results folder: one run directory per run")
    p.add_argument("--data-dir", default=os.environ.get("WGAN_APP_DATA_DIR", "data"))
    p.add_argument("--dataset", default="mnist", help="the training images (stacked-mnist: the mode-collapse set; "
                   "its runs are judged by modes of 1,000 and KL, on --eval-num 26000 to match the papers)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="generator steps between evaluations (0: see --eval-seconds)")
    p.add_argument("--eval-seconds", type=float, default=20.0,
                   help="with --minutes: evaluate after every this many seconds of training time (--eval-minutes)")
    p.add_argument("--eval-num", type=int, default=1000,
                   help="samples per evaluation (MNIST-FID's bias ~ 1/N: same N for all)")
    p.add_argument("--grid-minutes", default=",".join(map(str, GRID_MINUTES)), help="minutes at which to save grids")
    p.add_argument("--save-every", type=int, default=2000, help="checkpoint every N steps (a kill loses little)")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of each run")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs trained at once (e.g. --jobs 2 --threads 1 on a 2-core machine: a core per run)")
    p.add_argument("--exclude", default="", help="comma-separated run-name patterns not to train (e.g. runs another "
                                                 "set already has: gan-paper-s?-5min)")
    p.add_argument("--train-args", default="", help="extra flags for every `app.py --train` (e.g. smaller nets)")
    p.add_argument("--dry-run", action="store_true", help="print the commands and the budget; train nothing")
    p.add_argument("--summary-only", action="store_true", help="train nothing; tabulate the finished runs")
    p.add_argument("--export-to", help="then copy every finished run into this evidence folder (Compare tab)")
    p.add_argument("--export-num", type=int, default=None,
                   help="samples judging each final checkpoint at export (default 10,000; Stacked MNIST 26,000)")
    args = p.parse_args(argv)
    try:
        args.methods = [m for m in args.methods.split(",") if m]
        args.recipes = [r for r in args.recipes.split(",") if r]
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        args.archs = [a for a in args.archs.split(",") if a]
        args.exclude = [x for x in args.exclude.split(",") if x]
        args.grid_minutes = _floats(args.grid_minutes)
    except ValueError as e:
        p.error(f"bad list: {e}")
    pinned = [m.partition(":")[2] for m in args.methods if ":" in m]
    bad = ([m for m in args.methods if m.partition(":")[0] not in VARIANTS]
           + [r for r in [*args.recipes, *pinned] if r not in RECIPES]
           + [a for a in args.archs if a not in G_ARCHS])
    if bad or not args.methods or not args.recipes or not args.seeds or not args.archs:
        p.error(f"unknown or empty --methods / --recipes / --archs / --seeds: {bad}")
    if (args.minutes is not None and args.minutes <= 0) or (args.steps is not None and args.steps < 1):
        p.error("--minutes must be > 0 and --steps >= 1")
    if args.jobs < 1 or args.threads < 1:
        p.error("--jobs and --threads must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    runs = plan(args)
    out = Path(args.out)
    if args.dry_run:
        for r in runs:
            print(("# done: " if finished(r) else "") + r.shell())
        todo = [r for r in runs if not finished(r)]
        if args.minutes:
            hours = len(todo) * args.minutes / 60 / args.jobs
            print(f"# {len(todo)} of {len(runs)} runs to train, {args.jobs} at a time: about {hours:.1f} h of training "
                  "plus evaluations and start-up", file=sys.stderr)
        else:
            rates = measured_rates()
            rate = lambda r: rates.get((r.variant, r.recipe), {}).get("generator_steps_per_s", 5.0)  # noqa: E731
            hours = sum(args.steps / rate(r) for r in todo) / 3600 / args.jobs
            print(f"# {len(todo)} of {len(runs)} runs to train: about {hours:.1f} h at the measured steps/s "
                  "(checkpoints/speed.json)", file=sys.stderr)
        return 0
    try:
        if not args.summary_only:
            for r in runs:
                if finished(r):
                    print(f"# skip {r.name}: finished", file=sys.stderr)
            todo = [r for r in runs if not finished(r)]

            def one(r: Run) -> None:
                print(f"# {r.shell()}", file=sys.stderr, flush=True)
                rec = train_one(r)
                print(f"# {r.name}: {rec['wall_seconds']} s", file=sys.stderr, flush=True)

            with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # threads only wait on subprocesses
                for f in [pool.submit(one, r) for r in todo]:
                    f.result()  # the first failure, after the runs already started have ended
        print(summarise(runs, out))
        if args.export_to:
            for r in runs:
                if finished(r):
                    print(export_run(r.run_dir, args.export_to, num=args.export_num, overwrite=True),
                          file=sys.stderr)
    except UserError as e:
        print(f"bench_compare.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
