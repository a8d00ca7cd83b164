"""Time-to-quality: training wall time until a fresh run first reaches a quality target.

    python bench/bench_quality.py --data-dir DIR                           # both targets
    python bench/bench_quality.py --variant acgan --max-minutes 30 --eval-every 100

Targets (issue 4): `acgan` until class accuracy >= 95 %; `wgan-gp` until MNIST-FID <= 3x the
real-vs-real floor at the same sample count. The recipe is the shipped one: the `train_config`
in checkpoints/<variant>-mnist/config.json when that folder exists (or `--recipe PATH`), else
TrainConfig's defaults for the variant. The run is evaluated every `--eval-every` steps from
its checkpoint; evaluation happens while the training generator is paused, so only time spent
inside the training loop counts (start-up, data loading and checkpoint writes included).
Prints one JSON line per evaluation and a JSON summary per variant on stdout.

    python bench/bench_quality.py --compare-recipes 5 --variant acgan --eval-num 10000

runs `python app.py --train --variant V --recipe R --max-minutes 5` (the real CLI, start-up
included) for R = fast, then paper, back to back on the same machine, evaluates each final
checkpoint with `--eval` and prints a table: steps, steps/s, class accuracy, MNIST-FID and its
floor, and the ratio fast/paper. Run it on a quiet machine: nothing else on the cores.

    python bench/bench_quality.py --levers earlier,base,base+s1 --minutes 5 --eval-num 10000

trains acgan with each named lever's flags on top of `--recipe fast` (LEVERS below; `a+b`
combines them) through the real CLI in the same way, and tabulates them: the sweep that chose
the five-minute default (docs/method.md#the-five-minute-default).

    python bench/bench_quality.py --from-run runs/acgan-mnist

reads a finished run's own evaluations (`--eval-every` during training) from its metrics.jsonl
instead, and reports when it first met its variant's target; `time` there is the run's wall
time, evaluations included.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wgan_app.checkpoint import read_checkpoint_config  # noqa: E402
from wgan_app.config import TrainConfig  # noqa: E402
from wgan_app.errors import UserError  # noqa: E402
from wgan_app.metrics import evaluate_checkpoint  # noqa: E402
from wgan_app.rundir import read_metrics  # noqa: E402
from wgan_app.train import CheckpointEvent, DoneEvent, train  # noqa: E402

TARGETS = {
    "acgan": ("class_accuracy >= 0.95", lambda m: m.get("class_accuracy", 0.0) >= 0.95),
    "wgan-gp": ("fid <= 3 * fid_floor", lambda m: m["fid"] <= 3 * m["fid_floor"]),
}
# Settings that describe where and how long a run goes, not how it learns: the bench sets them.
_NOT_RECIPE = {"data_dir", "run_dir", "iters", "max_minutes", "save_every", "keep_checkpoints", "eval_every",
               "sample_every", "tensorboard", "device", "log_every"}


def shipped_recipe(variant: str, recipe: str | None) -> tuple[dict, str]:
    """The learning settings of the shipped checkpoint, or {} (variant defaults) when none ships."""
    if recipe:
        path = Path(recipe)
        if not (path / "config.json").is_file():
            raise UserError(f"--recipe {recipe}: no config.json there")
    else:
        shipped = [ROOT / "checkpoints" / n for n in (f"{variant}-mnist", variant)]
        path = next((p for p in shipped if (p / "config.json").is_file()), None)
        if path is None:
            return {}, f"TrainConfig defaults for {variant} (no checkpoints/{variant}-mnist shipped)"
    _, meta = read_checkpoint_config(path)
    tc = meta.get("train_config") or {}
    if tc.get("variant", variant) != variant:
        raise UserError(f"--recipe {path} trains {tc.get('variant')}, not {variant}")
    return {k: v for k, v in tc.items() if k not in _NOT_RECIPE}, str(path)


def time_to_quality(variant: str, args: argparse.Namespace) -> dict:
    recipe, source = shipped_recipe(variant, args.recipe)
    name, reached = TARGETS[variant]
    work = Path(tempfile.mkdtemp(prefix=f"bench-quality-{variant}-"))
    cfg = TrainConfig(**{**recipe, "variant": variant, "data_dir": args.data_dir, "run_dir": str(work / "run"),
                         "iters": 10**7, "save_every": args.eval_every, "keep_checkpoints": 1,
                         "sample_every": 0, "log_every": args.eval_every, "device": "cpu"})
    budget = args.max_minutes * 60
    clock = {"trained": 0.0, "since": 0.0}  # seconds inside the training generator; current entry

    def over_budget() -> bool:  # called from inside the generator, so count the current stretch too
        return clock["trained"] + time.perf_counter() - clock["since"] >= budget

    result = {"variant": variant, "target": name, "recipe": source, "reached": False}
    events = train(cfg, should_stop=over_budget)
    try:
        while True:
            clock["since"] = time.perf_counter()
            ev = next(events)
            clock["trained"] += time.perf_counter() - clock["since"]
            trained = clock["trained"]
            if isinstance(ev, CheckpointEvent):
                t1 = time.perf_counter()
                m = evaluate_checkpoint(ev.path, num=args.eval_num, seed=args.seed)
                row = {"variant": variant, "step": ev.step, "train_seconds": round(trained, 1), **m,
                       "eval_seconds": round(time.perf_counter() - t1, 2)}
                print(json.dumps(row), flush=True)
                if reached(m):
                    result.update(reached=True, step=ev.step, train_seconds=round(trained, 1), metrics=m)
                    break
            elif isinstance(ev, DoneEvent):
                result.update(step=ev.step, train_seconds=round(trained, 1), stopped=ev.reason)
                break
    finally:
        events.close()
        if not args.keep_runs:
            shutil.rmtree(work, ignore_errors=True)
    return result


def from_run(run_dir: str) -> dict:
    """The first logged evaluation of a finished run that meets its variant's target."""
    cfg_path, log_path = Path(run_dir) / "config.json", Path(run_dir) / "metrics.jsonl"
    if not cfg_path.is_file() or not log_path.is_file():
        raise UserError(f"--from-run {run_dir}: not a run directory (config.json and metrics.jsonl)")
    variant = json.loads(cfg_path.read_text())["variant"]
    if variant not in TARGETS:
        raise UserError(f"--from-run {run_dir} trains {variant}; targets exist for {', '.join(TARGETS)}")
    name, reached = TARGETS[variant]
    last_time, n_evals = 0.0, 0
    for row in read_metrics(log_path):
        last_time = row.get("time", last_time)
        if "eval/fid" in row:
            n_evals += 1
            m = {k.removeprefix("eval/"): v for k, v in row.items() if k.startswith("eval/")}
            if reached(m):
                return {"variant": variant, "target": name, "run": run_dir, "reached": True, "step": row["step"],
                        "minutes": round(last_time / 60, 1), "metrics": m}
    return {"variant": variant, "target": name, "run": run_dir, "reached": False, "evaluations": n_evals}


# Levers for the five-minute default (docs/method.md#the-five-minute-default): each is a set of CLI
# flags on top of `--variant acgan --recipe fast`; `--levers NAME,NAME` trains each for the same
# minutes through the real CLI and tabulates them against the first. `a+b` combines levers, later
# flags winning, so `earlier+lr1e-3` is the earlier recipe with one lever changed.
LEVERS = {
    "base": [],  # today's fast recipe
    # the fast recipe before this sweep (lr 5e-4, Adam (0.5, 0.9), batch 64, a two-layer critic of 32)
    "earlier": ["--lr", "5e-4", "--beta1", "0.5", "--batch-size", "64", "--d-layers", "2", "--d-width", "32"],
    "lr1e-3": ["--lr", "1e-3"],
    "lr2e-3": ["--lr", "2e-3"],
    "decay": ["--lr-decay-from", "0.5"],
    "g64": ["--g-width", "64"],
    "refine16": ["--g-refine", "16"],
    "d48": ["--d-width", "48"],
    "d3": ["--d-layers", "3"],
    "cw2": ["--class-weight-g", "2"],
    "beta0": ["--beta1", "0"],
    "b16": ["--batch-size", "16"],
    "b32": ["--batch-size", "32"],
    "ema998": ["--ema", "0.998"],
    "ema9995": ["--ema", "0.9995"],
    "s1": ["--seed", "1"],
    "s2": ["--seed", "2"],
    "paper": ["--recipe", "paper"],
}


def _cli_run(variant: str, name: str, flags: list[str], minutes: float, args: argparse.Namespace,
             work: Path) -> dict:
    """Train `app.py --train --variant V FLAGS --max-minutes M` in a fresh run directory, evaluate
    its final checkpoint with `app.py --eval`, and return one table row."""
    import os
    import subprocess

    run = work / name
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(ROOT / "app.py"), "--train", "--variant", variant, *flags,
                        "--max-minutes", str(minutes), "--data-dir", args.data_dir, "--run-dir", str(run)],
                       capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise UserError(f"training {variant}/{name} failed: {r.stderr.strip().splitlines()[-1:]}")
    e = subprocess.run([sys.executable, str(ROOT / "app.py"), "--eval", "--checkpoint", str(run), "--num",
                        str(args.eval_num), "--seed", str(args.seed)], capture_output=True, text=True, env=env)
    if e.returncode != 0:
        raise UserError(f"evaluating {variant}/{name} failed: {e.stderr.strip()}")
    m = json.loads(e.stdout)
    _, meta = read_checkpoint_config(Path(m["checkpoint"]))
    row = {"variant": variant, "recipe": name, "flags": " ".join(flags), "minutes": minutes, "steps": m["step"],
           "steps_per_s": round(m["step"] / meta["train_seconds"], 2), "command_seconds": round(wall, 1),
           "class_accuracy": m.get("class_accuracy"), "fid": m["fid"], "fid_floor": m["fid_floor"],
           "num": m["num"], "cpu": meta["hardware"]["name"], "threads": meta["hardware"]["threads"]}
    print(json.dumps(row), flush=True)
    return row


def cli_runs(variant: str, minutes: float, candidates: dict[str, list[str]], args: argparse.Namespace) -> list[dict]:
    """Each candidate's flags for the same training time through the real CLI, `--jobs` at once."""
    from concurrent.futures import ThreadPoolExecutor

    work = Path(tempfile.mkdtemp(prefix=f"bench-quality-{variant}-"))
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # threads only wait on subprocesses
            futures = [pool.submit(_cli_run, variant, name, flags, minutes, args, work)
                       for name, flags in candidates.items()]
            return [f.result() for f in futures]
    finally:
        if not args.keep_runs:
            shutil.rmtree(work, ignore_errors=True)


def recipes_table(rows: list[dict]) -> str:
    """A Markdown table of cli_runs rows, with each row's ratios to the variant's first row."""
    out = ["| variant | run | flags | minutes | steps | steps/s | class accuracy | MNIST-FID (floor) |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = f"{100 * r['class_accuracy']:.1f} %" if r["class_accuracy"] is not None else "—"
        out.append(f"| {r['variant']} | {r['recipe']} | `{r['flags']}` | {r['minutes']:g} | {r['steps']} | "
                   f"{r['steps_per_s']} | {acc} | {r['fid']:.1f} ({r['fid_floor']:.2f}) |")
    for v in dict.fromkeys(r["variant"] for r in rows):
        first, *others = [r for r in rows if r["variant"] == v]
        for o in others:
            out.append(f"\n{v}: {o['recipe']}/{first['recipe']} steps {o['steps'] / max(first['steps'], 1):.2f}x, "
                       f"FID {o['fid'] / first['fid']:.2f}x ({o['cpu']}, {o['threads']} threads)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", choices=[*TARGETS, "both"], default="both")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--recipe", help="checkpoint folder whose train_config is the recipe "
                   "(default checkpoints/<variant>-mnist)")
    p.add_argument("--eval-every", type=int, default=100, help="generator steps between evaluations")
    p.add_argument("--eval-num", type=int, default=1000, help="samples per evaluation")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation latents")
    p.add_argument("--max-minutes", type=float, default=60.0, help="training-time cap per variant")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--keep-runs", action="store_true", help="keep the temporary run directories")
    p.add_argument("--from-run", metavar="RUN_DIR", help="report a finished run's own evaluations instead")
    p.add_argument("--compare-recipes", type=float, metavar="MINUTES",
                   help="train the fast and the paper recipe for MINUTES each through the CLI and tabulate them")
    p.add_argument("--levers", metavar="NAME,NAME",
                   help="with --minutes: train acgan fast plus each lever's flags through the CLI; a+b combines "
                        f"levers ({', '.join(LEVERS)})")
    p.add_argument("--minutes", type=float, default=5.0, help="training minutes per --levers run")
    p.add_argument("--jobs", type=int, default=1, help="CLI runs at once (--jobs 2 --threads 1 on 2 cores)")
    args = p.parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        p.error("--jobs and --threads must be >= 1")
    if args.levers:
        runs = args.levers.split(",")
        unknown = sorted({n for r in runs for n in r.split("+") if n not in LEVERS})
        if unknown:
            p.error(f"--levers: unknown {', '.join(unknown)}; choose from {', '.join(LEVERS)} (a+b combines them)")
        candidates = {r: ["--recipe", "fast", *(f for n in r.split("+") for f in LEVERS[n])] for r in runs}
        try:
            rows = cli_runs("acgan", args.minutes, candidates, args)
        except UserError as e:
            print(f"bench_quality.py: error: {e}", file=sys.stderr)
            return 2
        print(recipes_table(rows))
        return 0
    if args.compare_recipes:
        variants = list(TARGETS) if args.variant == "both" else [args.variant]
        recipes = {"fast": ["--recipe", "fast"], "paper": ["--recipe", "paper"]}
        try:
            rows = [r for v in variants for r in cli_runs(v, args.compare_recipes, recipes, args)]
        except UserError as e:
            print(f"bench_quality.py: error: {e}", file=sys.stderr)
            return 2
        print(recipes_table(rows))
        return 0
    if args.from_run:
        try:
            print(json.dumps({"summary": True, **from_run(args.from_run)}))
        except UserError as e:
            print(f"bench_quality.py: error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.eval_every < 1 or args.max_minutes <= 0:
        p.error("--eval-every must be >= 1 and --max-minutes > 0")
    import torch

    torch.set_num_threads(args.threads)
    variants = list(TARGETS) if args.variant == "both" else [args.variant]
    try:
        for v in variants:
            summary = time_to_quality(v, args)
            print(json.dumps({"summary": True, **summary, "threads": args.threads}), flush=True)
    except UserError as e:
        print(f"bench_quality.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
