"""Stacked MNIST beside the papers: their published rows, the real-data floor, and our runs' table.

Mode counts mean something only within one set-up (the DCGAN baseline ranges from 79 to 628 modes
between papers), so every row says its set-up, ours included, and ours give mean [min, max] over
seeds. The floor is what real stacked images score with the same classifier and sample count:

    python -m wgan_app.evidence --real-floor --data-dir DIR --dest checkpoints/evidence/stacked-mnist
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from . import RunEvidence, is_number

REAL_NAME = "real.json"  # the real-data floor, beside the set's runs


@dataclass(frozen=True)
class Published:
    source: str
    method: str
    modes: str  # as printed: "78.9 ± 6.5"
    kl: str
    setup: str


_GDPP = "GDPP (Elfeki et al., ICML 2019), table 3"
_GDPP_SETUP = "DCGAN-style nets, 15,000 iterations, batch 64, Adam 1e-4 (0.5, 0.9), z 128"
_PAC2 = "PacGAN (Lin et al., NeurIPS 2018), table 2"
_PAC2_SETUP = "VEEGAN's DCGAN-style nets (rows marked VEEGAN reprint VEEGAN's figures)"
_PAC3 = "PacGAN, table 3"
PUBLISHED = (
    Published(_GDPP, "DCGAN", "427", "3.16", _GDPP_SETUP),
    Published(_GDPP, "Unrolled GAN", "817", "1.43", _GDPP_SETUP),
    Published(_GDPP, "WGAN", "961", "0.14", _GDPP_SETUP),
    Published(_GDPP, "WGAN-GP", "995", "0.148", _GDPP_SETUP),
    Published(_PAC2, "DCGAN (VEEGAN)", "99", "3.40", _PAC2_SETUP),
    Published(_PAC2, "ALI (VEEGAN)", "16", "5.40", _PAC2_SETUP),
    Published(_PAC2, "Unrolled GAN (VEEGAN)", "48.7", "4.32", _PAC2_SETUP),
    Published(_PAC2, "VEEGAN", "150", "2.95", _PAC2_SETUP),
    Published(_PAC2, "DCGAN (PacGAN's run)", "78.9 ± 6.5", "4.50 ± 0.13", _PAC2_SETUP),
    Published(_PAC2, "PacDCGAN2", "1,000", "0.06", _PAC2_SETUP),
    Published(_PAC3, "DCGAN, discriminator 1/4 the generator's size", "30.6 ± 20.7", "—",
              "smaller discriminators, to make the GAN collapse"),
    Published(_PAC3, "DCGAN, discriminator 1/2 the generator's size", "628 ± 141", "—",
              "smaller discriminators, to make the GAN collapse"),
)
METHOD_ORDER = ("gan", "wgan", "wgan-gp")


def real_floor(data_dir: str, seeds: Sequence[int] = (0, 1, 2), num: Optional[int] = None) -> dict:
    """What `num` (default 26,000) real Stacked-MNIST images from the training split score, per
    seed: the best a generator can hope for with this classifier and sample count."""
    import torch

    from ..data import load_dataset
    from ..metrics import STACKED_NUM, stacked_metrics

    num = num or STACKED_NUM
    data = load_dataset("stacked-mnist", data_dir, train=True, download=False)
    scores = [stacked_metrics(data.batch(num, torch.Generator().manual_seed(s))[0]) for s in seeds]
    return {"num": num, "split": "train", "seeds": list(seeds), "modes": [s["modes"] for s in scores],
            "kl": [s["kl"] for s in scores]}


def write_real_floor(dest: str | Path, data_dir: str) -> Path:
    from ..atomic import atomic_write_json

    path = Path(dest) / REAL_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, real_floor(data_dir))
    return path


def read_real_floor(folder: Path) -> Optional[dict]:
    path = Path(folder) / REAL_NAME
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        return None


def final_scores(r: RunEvidence) -> Optional[dict]:
    """{step, minutes, modes, kl, num} of the run's final checkpoint (final.json), else its last evaluation."""
    if r.final and is_number(r.final.get("modes")):
        return {k: r.final.get(k) for k in ("step", "minutes", "modes", "kl", "num")}
    ev = [e for e in r.evals() if is_number(e.get("modes"))]
    if not ev:
        return None
    return {"step": ev[-1]["step"], "minutes": ev[-1]["minutes"], "modes": ev[-1]["modes"], "kl": ev[-1]["kl"],
            "num": r.config.get("eval_num")}


def by_method(runs: list[RunEvidence]) -> dict[str, list[RunEvidence]]:
    """{'gan paper': [runs over seeds], ...} in the order GAN, clipped WGAN, WGAN-GP."""
    out: dict[str, list[RunEvidence]] = {}
    for r in sorted(runs, key=lambda r: (METHOD_ORDER.index(r.variant) if r.variant in METHOD_ORDER else 9, r.seed)):
        if final_scores(r) is not None:
            out.setdefault(r.method, []).append(r)
    return out


def spread(vals: list[float], fmt: str) -> str:
    if not vals:
        return "—"
    mean = format(sum(vals) / len(vals), fmt)
    return mean if len(vals) == 1 else f"{mean} [{format(min(vals), fmt)}, {format(max(vals), fmt)}]"


def setup_of(rs: list[RunEvidence]) -> str:
    """Our set-up in the words the papers use: recipe, batch, steps and time."""
    c = rs[0].config
    scores = [final_scores(r) for r in rs]
    steps = sum(s["step"] for s in scores) / len(scores)
    minutes = sum(s["minutes"] for s in scores) / len(scores)
    crit = "" if c.get("n_critic") in (None, 1) else f", n_critic {c['n_critic']}"
    return (f"our DCGAN nets, {c.get('optimizer', '?')} {c.get('lr', '?'):g}{crit}, batch {c.get('batch_size', '?')}, "
            f"{steps:,.0f} steps in {minutes:.1f} min on one CPU core")


def stacked_markdown(runs: list[RunEvidence], real: Optional[dict] = None) -> str:
    """Ours (mean [min, max] over seeds), the real-data floor, then the published rows; each with its set-up."""
    if real is None and runs:
        real = read_real_floor(runs[0].path.parent)
    lines = ["| source | method | modes (of 1,000) | KL to uniform | set-up |", "|---|---|---|---|---|"]
    for method, rs in by_method(runs).items():
        scores = [final_scores(r) for r in rs]
        num = scores[0].get("num")
        seeds = ",".join(str(r.seed) for r in rs)
        lines.append(f"| this app, seeds {seeds} | {method} | {spread([s['modes'] for s in scores], ',.0f')} | "
                     f"{spread([s['kl'] for s in scores], '.2f')} | {setup_of(rs)}; {num:,} samples |")
    if real:
        lines.append(f"| this app | real stacked images (the floor) | {spread(real['modes'], ',.0f')} | "
                     f"{spread(real['kl'], '.3f')} | {real['num']:,} images of MNIST's {real['split']} split, "
                     f"seeds {','.join(map(str, real['seeds']))} |")
    for p in PUBLISHED:
        lines.append(f"| {p.source} | {p.method} | {p.modes} | {p.kl} | {p.setup}; 26,000 samples |")
    return "\n".join(lines)


def sentence(runs: list[RunEvidence]) -> str:
    """What our runs show, computed: each method's modes and whether the GAN covers fewer modes
    than both Wasserstein methods on every seed (the papers' claim) or not."""
    groups = by_method(runs)
    if not groups:
        return "No Stacked-MNIST runs are shipped."
    parts = []
    for method, rs in groups.items():
        scores = [final_scores(r) for r in rs]
        parts.append(f"{method} {spread([s['modes'] for s in scores], ',.0f')} modes "
                     f"(KL {spread([s['kl'] for s in scores], '.2f')})")
    text = "After training, of 1,000 modes: " + "; ".join(parts) + "."
    gan = [m for m in groups if m.startswith("gan ")]
    others = [m for m in groups if not m.startswith("gan ")]
    if gan and others:
        gan_max = max(final_scores(r)["modes"] for r in groups[gan[0]])
        w_min = min(final_scores(r)["modes"] for m in others for r in groups[m])
        if gan_max < w_min:
            text += " The GAN covers fewer modes than both Wasserstein critics on every seed."
        else:
            text += (" The GAN does not cover fewer modes than the Wasserstein critics on every seed here: "
                     "in this set-up it does not collapse more than they do.")
    return text
