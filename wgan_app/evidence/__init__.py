"""Shipped MNIST evidence: the on-disk format the Compare view shows, its reader, and the export.

    checkpoints/evidence/<set>/               an evidence set: "recipes" (every method, fast and
                                              paper recipes, DCGAN generator), "architectures"
                                              (gan, wgan, wgan-gp x the three generators),
                                              "clipping-levers", or "stacked-mnist" (mode
                                              collapse: runs judged by modes of 1,000 and KL,
                                              and real.json, real data's score; stacked.py)
    checkpoints/evidence/<set>/<run-name>/    one finished run, a few hundred kB
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

    python -m wgan_app.evidence runs/compare/wgan-gp-paper-s0-20min [...] --dest checkpoints/evidence/recipes

copies finished runs into the format (`export.export_run`). Reading needs no data set and trains
nothing. The package: this module is the format and its reader; `report` makes the tables
(bench_compare, docs, model cards); `export` writes the format; `python -m wgan_app.evidence` is
the command line of both.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..paths import EVIDENCE_DIR
from ..rundir import CONFIG_NAME, METRICS_NAME, read_metrics

# the shipped sets, in the order Compare offers them
SETS = ("architectures", "recipes", "clipping-levers", "stacked-mnist")
FINAL_NAME = "final.json"


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
    def arch(self) -> str:
        """The generator architecture (config.json's g_arch; runs from before it had the DCGAN)."""
        return self.config.get("g_arch", "dcgan")

    @property
    def stacked(self) -> bool:
        """A Stacked-MNIST run: judged by modes of 1,000 and KL (evidence/stacked.py), not MNIST-FID."""
        return self.config.get("dataset") == "stacked-mnist"

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    @property
    def conditional(self) -> bool:
        return self.variant == "acgan"

    @property
    def method(self) -> str:
        """variant, recipe and (unless the DCGAN) the generator: the unit that seeds repeat, e.g.
        'wgan-gp paper' or 'gan fast mlp'."""
        return f"{self.variant} {self.recipe}" + ("" if self.arch == "dcgan" else f" {self.arch}")

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
        """One row per evaluation: step, minutes of training, fid (Stacked MNIST: modes and kl
        instead), w_heldout (and its se) and
        w_train, the training-time estimate averaged over the steps since the previous evaluation
        (a single logged value is one batch's, too noisy to rank checkpoints by)."""
        out, window, prev_step = [], [], 0
        for r in self.rows:
            if "loss_d" in r:
                w = training_estimate(r)
                if w is not None:
                    window.append((w, r.get("n_rows", 1)))
            elif "eval/fid" in r or "eval/modes" in r:
                w_train = (sum(w * n for w, n in window) / sum(n for _, n in window)) if window else None
                out.append({"step": r["step"], "minutes": r.get("time", math.nan) / 60, "fid": r.get("eval/fid"),
                            "modes": r.get("eval/modes"), "kl": r.get("eval/kl"),
                            "fid_floor": r.get("eval/fid_floor"), "class_accuracy": r.get("eval/class_accuracy"),
                            "w_heldout": r.get("eval/w_heldout"), "w_heldout_se": r.get("eval/w_heldout_se"),
                            "w_train": w_train, "since_step": prev_step})
                window, prev_step = [], r["step"]
        return out

    def grids(self) -> dict[float, Path]:
        """{minute mark: PNG path} of the grids the run saved (and that are on disk)."""
        return {float(r["grid_minute"]): self.path / r["grid"] for r in self.rows
                if "grid_minute" in r and (self.path / r["grid"]).is_file()}

    def grid_at(self, minute: float) -> tuple[Optional[Path], Optional[float]]:
        """(PNG, its minute) of the grid saved at `minute`, else the last one before it, else the
        first; (None, None) for a run without grids."""
        grids = self.grids()
        if not grids:
            return None, None
        shown = minute if minute in grids else max((m for m in grids if m <= minute), default=min(grids))
        return grids[shown], shown

    def summary(self) -> dict:
        """Best FID and when, final FID, and how well each estimate ranks the evaluations."""
        ev = self.evals()
        out = {"run": self.name, "method": self.method, "variant": self.variant, "recipe": self.recipe,
               "arch": self.arch, "seed": self.seed, "evaluations": len(ev)}
        if not ev:
            return out
        if self.stacked:  # more modes is better; KL ranks the evaluations (0 = every mode equally often)
            best = max(ev, key=lambda e: (e["modes"], -e["kl"]))
            out.update(best_modes=best["modes"], best_minutes=round(best["minutes"], 2), final_modes=ev[-1]["modes"],
                       final_kl=ev[-1]["kl"], final_step=ev[-1]["step"], final_minutes=round(ev[-1]["minutes"], 2),
                       rho_heldout=spearman([e["w_heldout"] for e in ev], [e["kl"] for e in ev]),
                       rho_train=spearman([e["w_train"] for e in ev], [e["kl"] for e in ev]))
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
        _cache[key] = (stamp, sorted(runs, key=lambda r: (r.variant, r.recipe, r.arch, r.seed, r.name)))
    return _cache[key][1]


def load_sets(root: str | Path = EVIDENCE_DIR) -> dict[str, list[RunEvidence]]:
    """{set name: its runs} for every folder under `root` that holds runs, the shipped SETS first;
    runs lying directly in `root` (evidence exported before sets existed) form the set "runs"."""
    root = Path(root)
    if not root.is_dir():
        return {}
    names = sorted((p.name for p in root.iterdir() if p.is_dir() and not (p / CONFIG_NAME).is_file()),
                   key=lambda n: (SETS.index(n) if n in SETS else len(SETS), n))
    sets = {name: load_evidence(root / name) for name in names}
    sets["runs"] = load_evidence(root)
    return {name: runs for name, runs in sets.items() if runs}


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
