"""Shipped MNIST evidence: the on-disk format the Compare view shows, its reader, and the export.

    checkpoints/evidence/<run-name>/          one finished run, a few hundred kB
        config.json                           the run's TrainConfig (as in its run directory)
        metrics.jsonl                         every evaluation (eval/fid, eval/w_heldout ...) and
                                              grid_minute row; the step rows averaged in runs of
                                              consecutive rows (`n_rows` says how many) to at most
                                              MAX_STEP_ROWS, never across an evaluation
        samples/minute_XX.png                 the fixed-noise grid after XX minutes of training
        final.json                            the last checkpoint judged on `num` samples: step,
                                              minutes, fid, fid_floor, class_entropy, class counts
                                              (what the classifier reads each sample as), ...

A run directory has the same config.json, metrics.jsonl and samples/, so `load_run` reads either:
bench_compare summarises the runs where they trained, the app reads the shipped copies.

    python -m wgan_app.evidence runs/compare/wgan-gp-paper-s0-20min [...] --dest checkpoints/evidence

copies finished runs into the format (`export_run`). Reading needs no data set and trains nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .errors import UserError
from .rundir import CONFIG_NAME, METRICS_NAME, read_metrics

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE_DIR = ROOT / "checkpoints" / "evidence"
FINAL_NAME = "final.json"
MAX_STEP_ROWS = 400  # ~100 bytes a row: the loss curves stay under 50 kB a run
FINAL_NUM = 10_000  # samples judged at export (the shipped models' table uses 10k too)


# --- one run ------------------------------------------------------------------------------


def training_estimate(row: dict) -> Optional[float]:
    """The critic's training-time estimate in a step row: `wasserstein` (-L_D before the penalty)
    for the Wasserstein critics; the BCE discriminator logs none, so its -(loss) stands in."""
    if "wasserstein" in row:
        return row["wasserstein"]
    return -row["loss_d"] if "loss_d" in row else None


@dataclass
class RunEvidence:
    """One run as the Compare view and the bench summary need it (from a run or an evidence folder)."""

    name: str
    path: Path
    config: dict
    rows: list[dict]
    final: dict = field(default_factory=dict)
    # " (20 min)" when runs of another budget share this one's method and seed (load_evidence):
    # without it their curves would merge under one label.
    label_suffix: str = ""

    @property
    def variant(self) -> str:
        return self.config.get("variant", "?")

    @property
    def recipe(self) -> str:
        return self.config.get("recipe", "?")

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    @property
    def conditional(self) -> bool:
        return self.variant == "acgan"

    @property
    def method(self) -> str:
        """variant and recipe: the unit that seeds repeat, e.g. 'wgan-gp paper'."""
        return f"{self.variant} {self.recipe}"

    @property
    def budget(self) -> str:
        """What ended the run: '5 min' for --max-minutes, else '120 steps'."""
        m = self.config.get("max_minutes")
        return f"{m:g} min" if isinstance(m, (int, float)) else f"{self.config.get('iters', '?')} steps"

    @property
    def label(self) -> str:
        return f"{self.method} s{self.seed}{self.label_suffix}"

    def step_rows(self) -> list[dict]:
        return [r for r in self.rows if "loss_d" in r]

    def evals(self) -> list[dict]:
        """One row per evaluation: step, minutes of training, fid, w_heldout (and its se) and
        w_train, the training-time estimate averaged over the steps since the previous evaluation
        (a single logged value is one batch's, too noisy to rank checkpoints by)."""
        out, window, prev_step = [], [], 0
        for r in self.rows:
            if "loss_d" in r:
                w = training_estimate(r)
                if w is not None:
                    window.append((w, r.get("n_rows", 1)))
            elif "eval/fid" in r:
                w_train = (sum(w * n for w, n in window) / sum(n for _, n in window)) if window else None
                out.append({"step": r["step"], "minutes": r.get("time", math.nan) / 60, "fid": r["eval/fid"],
                            "fid_floor": r.get("eval/fid_floor"), "class_accuracy": r.get("eval/class_accuracy"),
                            "w_heldout": r.get("eval/w_heldout"), "w_heldout_se": r.get("eval/w_heldout_se"),
                            "w_train": w_train, "since_step": prev_step})
                window, prev_step = [], r["step"]
        return out

    def grids(self) -> dict[float, Path]:
        """{minute mark: PNG path} of the grids the run saved (and that are on disk)."""
        return {float(r["grid_minute"]): self.path / r["grid"] for r in self.rows
                if "grid_minute" in r and (self.path / r["grid"]).is_file()}

    def summary(self) -> dict:
        """Best FID and when, final FID, and how well each estimate ranks the evaluations."""
        ev = self.evals()
        out = {"run": self.name, "method": self.method, "variant": self.variant, "recipe": self.recipe,
               "seed": self.seed, "evaluations": len(ev)}
        if not ev:
            return out
        best = min(ev, key=lambda e: e["fid"])
        out.update(best_fid=best["fid"], best_step=best["step"], best_minutes=round(best["minutes"], 2),
                   final_fid=ev[-1]["fid"], final_step=ev[-1]["step"], final_minutes=round(ev[-1]["minutes"], 2),
                   rho_heldout=spearman([e["w_heldout"] for e in ev], [e["fid"] for e in ev]),
                   rho_train=spearman([e["w_train"] for e in ev], [e["fid"] for e in ev]))
        return out


def spearman(xs: list, ys: list) -> Optional[float]:
    """Spearman's rank correlation of the pairs where both are numbers; None when fewer than 3
    pairs or either side is constant (the correlation is undefined then)."""
    pairs = [(x, y) for x, y in zip(xs, ys) if is_number(x) and is_number(y)]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
        return None
    from scipy.stats import spearmanr

    return round(float(spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic), 4)


def is_number(v) -> bool:  # a finite int or float (not a bool): what a metric may hold
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def load_run(path: str | Path, name: Optional[str] = None) -> RunEvidence:
    """A run directory or an evidence folder. UserError when it has no config.json."""
    path = Path(path)
    cfg_path = path / CONFIG_NAME
    if not cfg_path.is_file():
        raise UserError(f"{path} is not a run or evidence folder (no {CONFIG_NAME})")
    try:
        config = json.loads(cfg_path.read_text())
        final = json.loads((path / FINAL_NAME).read_text()) if (path / FINAL_NAME).is_file() else {}
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: a JSON file is damaged ({e})") from None
    return RunEvidence(name or path.name, path, config, read_metrics(path / METRICS_NAME), final)


_cache: dict[str, tuple[tuple, list[RunEvidence]]] = {}


def load_evidence(root: str | Path = EVIDENCE_DIR) -> list[RunEvidence]:
    """Every run under `root` (sorted by variant, recipe, seed); [] when none is shipped. Read
    once and kept until a file's modification time changes (the Compare view calls this often)."""
    root = Path(root)
    folders = sorted(p for p in root.iterdir() if (p / CONFIG_NAME).is_file()) if root.is_dir() else []
    stamp = tuple((str(p), (p / METRICS_NAME).stat().st_mtime_ns if (p / METRICS_NAME).exists() else 0)
                  for p in folders)
    key = str(root.resolve())
    if key not in _cache or _cache[key][0] != stamp:
        runs = [load_run(p) for p in folders]
        _tell_budgets_apart(runs)
        _cache[key] = (stamp, sorted(runs, key=lambda r: (r.variant, r.recipe, r.seed, r.name)))
    return _cache[key][1]


def _tell_budgets_apart(runs: list[RunEvidence]) -> None:
    """Give runs that share a label their budget in it, and their folder name if that is not enough."""
    for suffix in (lambda r: f" ({r.budget})", lambda r: f" ({r.name})"):
        by_label: dict[str, list[RunEvidence]] = {}
        for r in runs:
            by_label.setdefault(r.label, []).append(r)
        for same in by_label.values():
            if len(same) > 1:
                for r in same:
                    r.label_suffix = suffix(r)


def _group(r: RunEvidence, runs: list[RunEvidence]) -> str:
    """The unit the summaries average seeds over: the method, and its budget when the set mixes budgets."""
    mixed = len({x.budget for x in runs}) > 1
    return f"{r.method} ({r.budget})" if mixed else r.method


# --- summaries (bench_compare, README) --------------------------------------------------------


def method_summaries(runs: list[RunEvidence]) -> list[dict]:
    """Per method (variant + recipe), over its seeds: mean, min and max of best FID, minutes to
    it, final FID, and the mean Spearman correlations."""
    by_method: dict[str, list[dict]] = {}
    for r in runs:
        s = r.summary()
        if s["evaluations"]:
            by_method.setdefault(_group(r, runs), []).append(s)
    out = []
    for method, ss in by_method.items():
        row = {"method": method, "seeds": sorted(s["seed"] for s in ss)}
        for k in ("best_fid", "best_minutes", "best_step", "final_fid", "rho_heldout", "rho_train"):
            vals = [s[k] for s in ss if s.get(k) is not None]
            row[k] = _spread(vals)
        out.append(row)
    return out


def _spread(vals: list[float]) -> Optional[dict]:
    if not vals:
        return None
    return {"mean": round(sum(vals) / len(vals), 4), "min": min(vals), "max": max(vals), "n": len(vals)}


def summary_markdown(runs: list[RunEvidence]) -> str:
    """Two Markdown tables: per method over seeds (mean, [min, max]), then per run."""
    def fmt(s: Optional[dict], digits: int = 1) -> str:
        if s is None:
            return "—"
        if s["n"] == 1:
            return f"{s['mean']:.{digits}f}"
        return f"{s['mean']:.{digits}f} [{s['min']:.{digits}f}, {s['max']:.{digits}f}]"

    lines = ["| method | seeds | best MNIST-FID | minutes to best | final MNIST-FID | "
             "Spearman(held-out W, FID) | Spearman(training W, FID) |", "|---|---|---|---|---|---|---|"]
    for m in method_summaries(runs):
        lines.append(f"| {m['method']} | {','.join(map(str, m['seeds']))} | {fmt(m['best_fid'])} | "
                     f"{fmt(m['best_minutes'])} | {fmt(m['final_fid'])} | {fmt(m['rho_heldout'], 2)} | "
                     f"{fmt(m['rho_train'], 2)} |")
    lines += ["", "| run | evaluations | best FID | at step | minutes | final FID | ρ held-out | ρ training |",
              "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        s = r.summary()
        if not s["evaluations"]:
            lines.append(f"| {r.name} | 0 | — | — | — | — | — | — |")
            continue
        rho = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
        lines.append(f"| {r.name} | {s['evaluations']} | {s['best_fid']:.1f} | {s['best_step']} | "
                     f"{s['best_minutes']:.1f} | {s['final_fid']:.1f} | {rho(s['rho_heldout'])} | "
                     f"{rho(s['rho_train'])} |")
    return "\n".join(lines)


def final_markdown(runs: list[RunEvidence], variant: Optional[str] = None) -> str:
    """The shipped runs' final checkpoints per method over seeds (the README's and the model
    cards' table): steps, 10,000-sample MNIST-FID mean [min, max], class entropy, the rarest
    digit's share of its expected tenth on the worst seed, and Spearman(held-out W, FID)."""
    by_method: dict[str, list[RunEvidence]] = {}
    for r in runs:
        if r.final and (variant is None or r.variant == variant):
            by_method.setdefault(_group(r, runs), []).append(r)

    def spread(vals: list[float], digits: int) -> str:
        if len(vals) == 1:
            return f"{vals[0]:.{digits}f}"
        return f"{sum(vals) / len(vals):.{digits}f} [{min(vals):.{digits}f}, {max(vals):.{digits}f}]"

    lines = ["| method | seeds | minutes | steps | MNIST-FID (final, 10k) | class entropy | rarest digit | "
             "ρ(held-out W, FID) |", "|---|---|---|---|---|---|---|---|"]
    for method, rs in sorted(by_method.items(), key=lambda kv: sum(r.final["fid"] for r in kv[1]) / len(kv[1])):
        finals = [r.final for r in rs]
        rarest = [min(f["classes"]) / (sum(f["classes"]) / len(f["classes"])) for f in finals if f.get("classes")]
        rhos = [v for v in (r.summary().get("rho_heldout") for r in rs) if v is not None]
        lines.append(f"| {method} | {','.join(str(r.seed) for r in sorted(rs, key=lambda r: r.seed))} | "
                     f"{spread([f['minutes'] for f in finals], 1)} | {sum(f['step'] for f in finals) / len(finals):,.0f} | "
                     f"{spread([f['fid'] for f in finals], 1)} | {spread([f['class_entropy'] for f in finals], 3)} | "
                     f"{f'{min(rarest):.2f}' if rarest else '—'} | {spread(rhos, 2) if rhos else '—'} |")
    return "\n".join(lines)


# --- export ---------------------------------------------------------------------------------


def thin_rows(rows: list[dict], max_step_rows: int = MAX_STEP_ROWS) -> list[dict]:
    """Average runs of k consecutive step rows (k = ceil(steps / max_step_rows)) into one, never
    across an evaluation or grid row, so each evaluation's training-time window stays exact.
    A merged row has the last row's step and time, the mean of the rest, and `n_rows`."""
    n_steps = sum("loss_d" in r for r in rows)
    k = max(1, math.ceil(n_steps / max_step_rows))
    if k == 1:
        return list(rows)
    out, buf = [], []

    def flush():
        if buf:
            keys = [key for key in buf[-1] if key not in ("step", "time") and all(is_number(b.get(key)) for b in buf)]
            merged = {"step": buf[-1]["step"], "time": buf[-1].get("time"),
                      **{key: round(sum(b[key] for b in buf) / len(buf), 6) for key in keys}, "n_rows": len(buf)}
            out.append(merged)
            buf.clear()

    for r in rows:
        if "loss_d" in r:
            buf.append(r)
            if len(buf) == k:
                flush()
        else:
            flush()
            out.append(r)
    flush()
    return out


def export_run(run_dir: str | Path, dest_root: str | Path = EVIDENCE_DIR, name: Optional[str] = None,
               num: int = FINAL_NUM, seed: int = 0, overwrite: bool = False) -> Path:
    """Copy a finished run into `dest_root/<name>` (default: the run folder's name): config,
    thinned log, minute grids, and final.json from its latest checkpoint judged on `num` samples."""
    from .checkpoint import atomic_write_bytes, atomic_write_json, load_checkpoint
    from .rundir import RunDir

    run = load_run(run_dir, name)
    ckpt_dir = RunDir(run.path).latest_checkpoint()
    if ckpt_dir is None:
        raise UserError(f"{run.path} has no checkpoint yet: export a finished run")
    if not run.evals():
        raise UserError(f"{run.path} logged no evaluations: train it with --eval-every N")
    dest = Path(dest_root) / run.name
    if dest.exists():
        if not overwrite:
            raise UserError(f"{dest} already exists; pass --overwrite to replace it")
        shutil.rmtree(dest)
    final = final_metrics(load_checkpoint(ckpt_dir), num=num, seed=seed)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "samples").mkdir(parents=True)
    shutil.copy2(run.path / CONFIG_NAME, tmp / CONFIG_NAME)
    atomic_write_bytes(tmp / METRICS_NAME, "".join(json.dumps(r) + "\n" for r in thin_rows(run.rows)).encode())
    for png in run.grids().values():
        shutil.copy2(png, tmp / "samples" / png.name)
    atomic_write_json(tmp / FINAL_NAME, final)
    tmp.rename(dest)  # the folder appears complete or not at all
    return dest


def final_metrics(ckpt, num: int = FINAL_NUM, seed: int = 0) -> dict:
    """The checkpoint's MNIST metrics on `num` samples (the images `--eval --num N --seed S` judges)
    and the classes the classifier reads them as: counts over 0..9, the mode coverage Compare draws."""
    import torch

    from .classifier import embed
    from .data import to_unit_range
    from .metrics import image_metrics, load_classifier
    from .sampler import Sampler
    from .validation import MAX_SAMPLE_NUM, check_num

    num = check_num(num, "--num", hi=MAX_SAMPLE_NUM)
    labels = [i % 10 for i in range(num)] if ckpt.model.conditional else None
    x = to_unit_range(torch.from_numpy(Sampler(ckpt, "cpu").sample(labels, seed, num))).unsqueeze(1)  # (num, 1, 28, 28)
    metrics = image_metrics(x, None if labels is None else torch.tensor(labels))
    _, logits = embed(load_classifier()[0], x)
    return {"step": ckpt.step, "minutes": round((ckpt.meta.get("train_seconds") or 0) / 60, 2), "num": num,
            "seed": seed, **metrics, "classes": torch.bincount(logits.argmax(1), minlength=10).tolist()}


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wgan_app.evidence",
                                description="Copy finished runs into the shipped evidence format (Compare tab).")
    p.add_argument("runs", nargs="*", help="run directories trained with --eval-every (and --grid-minutes)")
    p.add_argument("--table", action="store_true",
                   help="print the final-checkpoint table of the evidence in --dest (README, model cards) instead")
    p.add_argument("--variant", help="--table: only this variant's methods")
    p.add_argument("--dest", default=str(EVIDENCE_DIR), help="evidence folder (default checkpoints/evidence)")
    p.add_argument("--num", type=int, default=FINAL_NUM, help="samples to judge each final checkpoint on")
    p.add_argument("--overwrite", action="store_true", help="replace an evidence folder of the same name")
    args = p.parse_args(argv)
    if args.table:
        runs = [r for r in load_evidence(args.dest) if r.final and args.variant in (None, r.variant)]
        if not runs:
            print(f"wgan_app.evidence: error: no exported runs{f' of {args.variant}' if args.variant else ''} "
                  f"under {args.dest}; export some first (see --help)", file=sys.stderr)
            return 2
        print(final_markdown(runs))
        return 0
    if not args.runs:
        p.error("give run directories to export, or --table")
    try:
        for run in args.runs:
            print(export_run(run, args.dest, num=args.num, overwrite=args.overwrite))
    except UserError as e:
        print(f"wgan_app.evidence: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
