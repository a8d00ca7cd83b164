"""Tables of an evidence set: per method over seeds (bench_compare's summary), the final
checkpoints' table (docs, model cards, `python -m wgan_app.evidence --table`), the generator x
method pivot, and the blocks of docs/*.md that hold them (`--update-docs`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from . import RunEvidence, _group


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
    """The shipped runs' final checkpoints per method over seeds (docs/evidence.md's and the model
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
                     f"{spread([f['minutes'] for f in finals], 1)} | "
                     f"{sum(f['step'] for f in finals) / len(finals):,.0f} | "
                     f"{spread([f['fid'] for f in finals], 1)} | {spread([f['class_entropy'] for f in finals], 3)} | "
                     f"{f'{min(rarest):.2f}' if rarest else '—'} | {spread(rhos, 2) if rhos else '—'} |")
    return "\n".join(lines)


def pivot_markdown(runs: list[RunEvidence]) -> str:
    """One row per generator architecture, one column per method: the final checkpoints' MNIST-FID
    (10,000 samples) mean [min, max] over seeds, and the rarest digit's share on the worst seed."""
    from ..config import G_ARCHS

    done = [r for r in runs if r.final]
    methods = sorted({f"{r.variant} {r.recipe}" for r in done}, key=lambda m: ("gan", "wgan", "wgan-gp",
                                                                                "acgan").index(m.split()[0]))
    archs = [a for a in G_ARCHS if any(r.arch == a for r in done)]
    lines = ["| generator | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for a in archs:
        cells = []
        for m in methods:
            rs = [r for r in done if r.arch == a and f"{r.variant} {r.recipe}" == m]
            if not rs:
                cells.append("—")
                continue
            fids = [r.final["fid"] for r in rs]
            shares = [min(r.final["classes"]) / (sum(r.final["classes"]) / 10) for r in rs if r.final.get("classes")]
            spread = f"{sum(fids) / len(fids):,.0f}"
            if len(fids) > 1:
                spread += f" [{min(fids):,.0f}, {max(fids):,.0f}]"
            cells.append(spread + (f"; rarest digit {min(shares):.2f}" if shares else ""))
        lines.append(f"| {G_ARCHS[a]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def at_step_markdown(runs: list[RunEvidence], step: int) -> str:
    """Equal generator steps from equal-time runs: per method, the first evaluation at or after
    generator step `step` (1,000-sample MNIST-FID, as logged), mean [min, max] over the seeds that
    got there, and how many minutes of training that took."""
    by_method: dict[str, list[dict]] = {}
    reached: dict[str, int] = {}
    for r in runs:
        by_method.setdefault(r.method, [])
        reached.setdefault(r.method, 0)
        hit = next((e for e in r.evals() if e["step"] >= step), None)
        if hit is not None:
            by_method[r.method].append(hit)
            reached[r.method] += 1
    total = {m: sum(1 for r in runs if r.method == m) for m in by_method}

    def spread(vals: list[float], fmt: str) -> str:
        if not vals:
            return "—"
        mean = format(sum(vals) / len(vals), fmt)
        return mean if len(vals) == 1 else f"{mean} [{format(min(vals), fmt)}, {format(max(vals), fmt)}]"

    lines = [f"| method | seeds at step {step:,} | MNIST-FID there (1k samples) | minutes to get there |",
             "|---|---|---|---|"]
    def order(kv):  # methods that got there first, best mean FID first
        return not kv[1], sum(h["fid"] for h in kv[1]) / max(1, len(kv[1]))

    for m, hits in sorted(by_method.items(), key=order):
        lines.append(f"| {m} | {reached[m]} of {total[m]} | {spread([h['fid'] for h in hits], ',.0f')} | "
                     f"{spread([h['minutes'] for h in hits], '.1f')} |")
    return "\n".join(lines)


def at_minutes_markdown(runs: list[RunEvidence], marks: list[float]) -> str:
    """Per method, the 1,000-sample MNIST-FID logged at each minute mark of training (the last
    evaluation at or before it), mean [min, max] over seeds: who leads at each moment."""
    methods = sorted({r.method for r in runs})
    lines = ["| method | " + " | ".join(f"{m:g} min" for m in marks) + " |", "|---|" + "---|" * len(marks)]

    def cell(rs: list[RunEvidence], mark: float) -> str:
        vals = []
        for r in rs:
            ev = [e for e in r.evals() if e["minutes"] <= mark + 0.02]
            if ev:
                vals.append(ev[-1]["fid"])
        if not vals:
            return "—"
        mean = sum(vals) / len(vals)
        return f"{mean:,.0f}" if len(vals) == 1 else f"{mean:,.0f} [{min(vals):,.0f}, {max(vals):,.0f}]"

    rows = [(m, [cell([r for r in runs if r.method == m], mark) for mark in marks]) for m in methods]
    last = lambda cells: float(cells[-1].split()[0].replace(",", "")) if cells[-1] != "—" else float("inf")  # noqa: E731
    for m, cells in sorted(rows, key=lambda mc: last(mc[1])):
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


LEVERS = ("optimizer", "lr", "n_critic", "critic_warmup", "clip_value", "d_norm", "beta1", "beta2", "g_arch")


def runs_markdown(runs: list[RunEvidence], minute: float) -> str:
    """One row per run: the settings that differ between the runs (of LEVERS), and the last
    1,000-sample MNIST-FID logged at or before `minute` minutes of training. For a set that
    varies one lever at a time, e.g. the clipping recipe's."""
    value = lambda r, k: r.arch if k == "g_arch" else str(r.config.get(k))  # noqa: E731
    varied = [k for k in LEVERS if len({value(r, k) for r in runs}) > 1]
    lines = ["| run | " + " | ".join(varied) + f" | steps at {minute:g} min | MNIST-FID at {minute:g} min |",
             "|---|" + "---|" * (len(varied) + 2)]

    def upto(r: RunEvidence) -> list[dict]:  # an evaluation due at `minute` logs a second or so after it
        return [e for e in r.evals() if e["minutes"] <= minute + 0.02]

    for r in sorted(runs, key=lambda r: upto(r)[-1]["fid"] if upto(r) else float("inf"), reverse=True):
        ev = upto(r)
        cells = [value(r, k) for k in varied]
        fid, step = (f"{ev[-1]['fid']:,.0f}", f"{ev[-1]['step']:,}") if ev else ("—", "—")
        lines.append(f"| {r.name} | " + " | ".join(cells) + f" | {step} | {fid} |")
    return "\n".join(lines)


# --- tables inside the docs: regenerated from the shipped evidence, never retyped ------------------

BLOCK = re.compile(r"(<!-- evidence: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /evidence -->)", re.S)


def block_text(spec: str, root: Path) -> str:
    """What a docs block `<!-- evidence: set=NAME table=KIND [variant=V] [step=N] [minute=M] -->`
    holds; KIND is final, pivot, story, steps (at generator step N), runs (at minute M), minutes
    (at each of marks=1,2,5) or stacked (Stacked MNIST beside the papers)."""
    from .. import story
    from . import load_evidence

    opts = dict(kv.split("=", 1) for kv in spec.split())
    runs = load_evidence(root / opts.get("set", "recipes"))
    if opts.get("variant"):
        runs = [r for r in runs if r.variant == opts["variant"]]
    kind = opts.get("table", "final")
    if kind == "final":
        return final_markdown(runs)
    if kind == "pivot":
        return pivot_markdown(runs)
    if kind == "minutes":
        return at_minutes_markdown(runs, [float(m) for m in opts.get("marks", "1,2,5").split(",")])
    if kind == "runs":
        return runs_markdown(runs, float(opts.get("minute", 2)))
    if kind == "steps":
        return at_step_markdown(runs, int(opts.get("step", 1000)))
    if kind == "stacked":
        from .stacked import sentence, stacked_markdown

        return stacked_markdown(runs) + "\n\n" + sentence(runs)
    if kind == "story":
        return "\n\n".join([story.preamble(runs), *(story.sentence(a, g) for a, g in story.by_arch(runs).items())])
    raise ValueError(f"unknown table kind {kind!r} in <!-- evidence: {spec} -->")


def update_docs(path: Path, root: Path, check: bool = False) -> bool:
    """Regenerate every evidence block of the Markdown file `path` from the evidence under `root`.
    Returns whether the file was (with `check`: would be) changed."""
    text = path.read_text()
    new = BLOCK.sub(lambda m: m.group(1) + block_text(m.group("spec"), root).rstrip() + "\n" + m.group(4), text)
    if new != text and not check:
        path.write_text(new)
    return new != text
