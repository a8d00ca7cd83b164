"""Copy finished runs into the evidence format: config, thinned log, minute grids, and the final
checkpoint judged on 10,000 samples."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..paths import EVIDENCE_DIR
from ..rundir import CONFIG_NAME, METRICS_NAME
from . import FINAL_NAME, is_number, load_run

MAX_STEP_ROWS = 400  # ~100 bytes a row: the loss curves stay under 50 kB a run
FINAL_NUM = 10_000  # samples judged at export (the shipped models' table uses 10k too)

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


def export_run(run_dir: str | Path, dest_root: str | Path = EVIDENCE_DIR / "recipes", name: Optional[str] = None,
               num: Optional[int] = None, seed: int = 0, overwrite: bool = False) -> Path:
    """Copy a finished run into `dest_root/<name>` (default: the run folder's name): config,
    thinned log, minute grids, and final.json from its latest checkpoint judged on `num` samples
    (default 10,000; Stacked MNIST 26,000, the papers' count)."""
    from ..atomic import atomic_write_bytes, atomic_write_json
    from ..checkpoint import load_checkpoint
    from ..metrics import STACKED_NUM
    from ..rundir import RunDir

    run = load_run(run_dir, name)
    num = num if num is not None else (STACKED_NUM if run.stacked else FINAL_NUM)
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
    and the classes the classifier reads them as: counts over 0..9, the mode coverage Compare draws.
    A Stacked-MNIST checkpoint gets its modes, KL and the 1,000 mode counts instead."""
    import torch

    from ..classifier import embed
    from ..data import to_unit_range
    from ..metrics import evaluate_generator, image_metrics, load_classifier
    from ..sampler import Sampler
    from ..validation import MAX_SAMPLE_NUM, check_num

    if ckpt.model.dataset == "stacked-mnist":
        return {"step": ckpt.step, "minutes": round((ckpt.meta.get("train_seconds") or 0) / 60, 2),
                **evaluate_generator(ckpt.build_generator("cpu"), ckpt.model, num=num, seed=seed, counts=True),
                "seed": seed}
    num = check_num(num, "--num", hi=MAX_SAMPLE_NUM)
    labels = [i % 10 for i in range(num)] if ckpt.model.conditional else None
    x = to_unit_range(torch.from_numpy(Sampler(ckpt, "cpu").sample(labels, seed, num))).unsqueeze(1)  # (num, 1, 28, 28)
    metrics = image_metrics(x, None if labels is None else torch.tensor(labels))
    _, logits = embed(load_classifier()[0], x)
    return {"step": ckpt.step, "minutes": round((ckpt.meta.get("train_seconds") or 0) / 60, 2), "num": num,
            "seed": seed, **metrics, "classes": torch.bincount(logits.argmax(1), minlength=10).tolist()}
