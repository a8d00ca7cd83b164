"""Sample-quality metrics from the project's MNIST classifier (checkpoints/mnist-classifier).

- `class_accuracy` (conditional models): the share of samples drawn for class k that the
  classifier reads as k.
- `fid` ("MNIST-FID"): the Fréchet distance between Gaussians fitted to the classifier's 128-d
  features of the samples and of MNIST's test split. `fid_floor` is what real MNIST training
  images score with the same number of samples: FID is biased upward by roughly 1/N, so a
  generator is only comparable with the floor at its own N.
- `class_entropy`: the entropy (nats) of the histogram of predicted classes; log 10 ≈ 2.303 when
  every digit appears equally often, lower when the generator drops modes.
- Stacked MNIST (`stacked_metrics`): the classifier reads each of the three channels, which
  names one of 1,000 modes; `modes` is how many of them appear among the samples and `kl` the
  KL divergence KL(p || uniform) of their histogram, on 26,000 samples as VEEGAN, PacGAN and
  GDPP count them.

The test statistics ship with the classifier, so none of this needs MNIST on disk.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .classifier import MnistClassifier, embed, load_classifier_dir
from .config import ModelConfig
from .errors import UserError
from .fid import feature_stats, floor_at, frechet_distance  # noqa: F401  (public here too)
from .paths import CLASSIFIER_DIR
from .validation import check_eval_num, check_seed

_lock = threading.Lock()
_cache: dict[str, tuple[MnistClassifier, dict[str, np.ndarray], dict]] = {}


def load_classifier(path: str | Path | None = None) -> tuple[MnistClassifier, dict[str, np.ndarray]]:
    """(model in eval mode, test stats {mu, sigma, floor_n, floor_fid}); loaded once per process."""
    key = str(Path(path or CLASSIFIER_DIR).resolve())
    with _lock:
        if key not in _cache:
            _cache[key] = load_classifier_dir(key)
        model, stats, _ = _cache[key]
    return model, stats


def image_metrics(x: torch.Tensor, labels: Optional[torch.Tensor] = None,
                  classifier: Optional[str | Path] = None) -> dict:
    """Metrics of images x (N, 1, 28, 28) in [-1, 1]; `labels` (N,) the classes they were drawn for."""
    model, stats = load_classifier(classifier)
    feats, logits = embed(model, x)
    pred = logits.argmax(1)
    mu, sigma = feature_stats(feats)
    counts = torch.bincount(pred, minlength=model.cfg.n_classes).double()
    p = counts / counts.sum()
    out = {
        "fid": round(frechet_distance(mu, sigma, stats["mu"], stats["sigma"]), 4),
        "fid_floor": round(floor_at(stats, x.shape[0]), 4),
        "class_entropy": round(float((p[p > 0] * (1 / p[p > 0]).log()).sum()), 4),  # sum p log(1/p) >= +0
    }
    if labels is not None:
        out["class_accuracy"] = round((pred == labels.cpu()).double().mean().item(), 4)
    return out


STACKED_NUM = 26_000  # the samples VEEGAN, PacGAN and GDPP count Stacked-MNIST modes over


def stacked_metrics(x: torch.Tensor, classifier: Optional[str | Path] = None, counts: bool = False) -> dict:
    """Mode coverage of Stacked-MNIST images x (N, 3, 28, 28) in [-1, 1]: each channel is read as
    a digit, the three digits name a mode (mode = 100 d0 + 10 d1 + d2). `modes`: distinct modes
    among the N; `kl`: KL(p || uniform over 1,000) in nats, 0 for a perfectly even histogram.
    `counts` adds the 1,000 counts (`mode_counts`)."""
    from .data import mode_of

    model, _ = load_classifier(classifier)
    n, k = x.shape[:2]
    _, logits = embed(model, x.reshape(n * k, 1, *x.shape[2:]))  # every channel as one grey digit
    hist = torch.bincount(mode_of(logits.argmax(1).view(n, k)), minlength=10**k).double()  # (1000,)
    p = hist / n
    seen = p > 0
    out = {"modes": int(seen.sum()), "kl": round(float((p[seen] * (p[seen] * 10**k).log()).sum()), 4)}
    if counts:
        out["mode_counts"] = hist.long().tolist()
    return out


@torch.inference_mode()
def evaluate_generator(G: torch.nn.Module, model_cfg: ModelConfig, num: int = 1000, seed: int = 0,
                       data_dir: Optional[str] = None, counts: bool = False) -> dict:
    """Quality metrics of generator G (in eval mode) from `num` samples with fixed latents.

    Conditional models get labels cycling 0..9, so every class is equally represented. Samples
    are rounded to uint8 first: the metrics judge the images the app shows. The classifier is
    an MNIST one, so for Fashion-MNIST only `num` comes back (a number against MNIST would be
    wrong, not just poor); Stacked MNIST gets `stacked_metrics`. `data_dir` is unused: the
    reference statistics ship with the classifier (accepted so the training loop can pass its
    run's settings through). `counts`: Stacked MNIST's 1,000 mode counts too.
    """
    from .images import to_uint8, to_unit
    from .sampler import latents

    num = check_eval_num(num)
    if model_cfg.dataset not in ("mnist", "stacked-mnist"):
        return {"num": num}
    device = next(G.parameters()).device
    z = latents(seed, num, model_cfg.z_dim)
    y = torch.arange(num) % model_cfg.n_classes if model_cfg.conditional else None
    images = []
    for i in range(0, num, 1000):  # bounded memory for large num
        yb = None if y is None else y[i:i + 1000].to(device)
        images.append(to_uint8(G(z[i:i + 1000].to(device), yb)))
    x = to_unit(np.concatenate(images))  # (num, C, 28, 28)
    if model_cfg.dataset == "stacked-mnist":
        return {**stacked_metrics(x, counts=counts), "num": num}
    return {**image_metrics(x, y), "num": num}


def evaluate_checkpoint(path: str | Path, num: int = 1000, seed: int = 0) -> dict:
    """Metrics of a checkpoint folder or run directory (its latest checkpoint)."""
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    G = ckpt.build_generator("cpu")
    return evaluate_generator(G, ckpt.model, num=num, seed=seed)


def run_eval_cli(args) -> int:
    """`python app.py --eval --checkpoint PATH [--num N] [--seed S]`: one JSON object on stdout."""
    from .checkpoint import load_checkpoint

    ref = getattr(args, "checkpoint", None)
    if not ref:
        raise UserError("--checkpoint is required: a checkpoint folder, a run directory or hf://USER/REPO")
    seed = 0 if getattr(args, "seed", None) is None else check_seed(args.seed, "--seed")
    if str(ref).startswith("hf://"):
        from .hub import resolve_hub_checkpoint

        ref = resolve_hub_checkpoint(ref)
    ckpt = load_checkpoint(ref)
    stacked = ckpt.model.dataset == "stacked-mnist"
    num = check_eval_num((STACKED_NUM if stacked else 1000) if args.num is None else args.num)
    t0 = time.time()
    values = evaluate_generator(ckpt.build_generator("cpu"), ckpt.model, num=num, seed=seed)
    result = {"checkpoint": str(ckpt.path), "variant": ckpt.model.variant, "dataset": ckpt.model.dataset,
              "step": ckpt.step, "seed": seed, **values, "seconds": round(time.time() - t0, 3)}
    if stacked:
        result["note"] = (f"modes of 1,000 and KL to uniform, each channel read by the MNIST classifier; the papers "
                          f"count on {STACKED_NUM:,} samples")
    elif ckpt.model.dataset != "mnist":
        result["note"] = (f"no quality metrics for {ckpt.model.dataset}: they come from an MNIST classifier, "
                          "and a score against MNIST would be meaningless")
    elif not ckpt.model.conditional:
        result["note"] = "class_accuracy needs a conditional model (acgan); class_entropy is log 10 = 2.3026 at best"
    print(json.dumps(result))
    return 0
