"""The MNIST classifier behind the quality metrics, and the command that trains it.

    python -m wgan_app.classifier --data-dir ../shared/data --out checkpoints/mnist-classifier

A small CNN (two conv+pool blocks, a 128-d feature layer, a linear head) trained on MNIST's training
split with light affine augmentation. Its 128-d pre-activation features are the space of
"MNIST-FID": Inception features are the wrong space for 28x28 digits, and their weights cannot be
downloaded here. The output folder holds config.json, model.safetensors, README.md and
test_stats.safetensors: the test split's feature mean and covariance plus the real-vs-real
floor, so evaluation needs no dataset on disk (the Space and the UI ship without MNIST).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import UserError
from .fid import feature_stats, frechet_distance

MODEL_TYPE = "wgan_app-mnist-classifier"
FORMAT_VERSION = 1
STATS_NAME = "test_stats.safetensors"
# Sample counts at which the real-vs-real floor is measured: FID's bias grows like 1/N, so a
# generator evaluated on N samples is compared with the floor at the same N.
FLOOR_SIZES = (250, 500, 1000, 2000, 5000, 10000, 60000)


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture of the classifier (travels in config.json)."""

    width: int = 32  # channels of the first conv block; 2x in the second
    feature_dim: int = 128  # the penultimate layer: MNIST-FID's feature space
    n_classes: int = 10
    dropout: float = 0.3

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in d.items() if k in names})
        except TypeError as e:
            raise UserError(f"classifier config is invalid: {e}") from None


class MnistClassifier(nn.Module):
    """x (B, 1, 28, 28) in [-1, 1] -> logits (B, 10); `features` gives the (B, 128) embedding."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.conv = nn.Sequential(
            # No batch norm: on this CPU it tripled the step time for no accuracy we need.
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, w, 14, 14)
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            nn.Flatten(),
        )
        self.fc = nn.Linear(2 * w * 7 * 7, cfg.feature_dim)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.feature_dim, cfg.n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # Pre-activation: no dead (always-zero) dimensions, so the covariance stays full rank.
        return self.fc(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# --- batched inference ----------------------------------------------------------------------


@torch.inference_mode()
def embed(model: MnistClassifier, x: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, 28, 28) in [-1, 1] -> features (N, feature_dim) float64, logits (N, 10) float32."""
    # Channels-last runs the convolutions and max-pools about twice as fast on CPU (measured: 2,100
    # -> 4,000 images/s on one EPYC core); features move by ~1e-6, far below what a metric rounds.
    model.eval().to(memory_format=torch.channels_last)
    feats, logits = [], []
    device = next(model.parameters()).device
    for i in range(0, x.shape[0], batch_size):
        h = model.features(x[i:i + batch_size].to(device).contiguous(memory_format=torch.channels_last))
        feats.append(h.double().cpu())
        logits.append(model.head(h).float().cpu())
    return torch.cat(feats), torch.cat(logits)


# --- training -------------------------------------------------------------------------------


def augment(x: torch.Tensor, g: torch.Generator, max_shift: float = 2.0, max_rot_deg: float = 10.0,
            scale: float = 0.1) -> torch.Tensor:
    """Random small affine warps (shift, rotation, scale) per image: handwriting varies like this."""
    B = x.shape[0]
    u = torch.rand(B, 4, generator=g) * 2 - 1  # (B, 4) in [-1, 1]
    angle = u[:, 0] * math.radians(max_rot_deg)
    s = 1 + u[:, 1] * scale
    tx, ty = u[:, 2] * max_shift * 2 / 28, u[:, 3] * max_shift * 2 / 28
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Pad with the background value (-1), not zero (which would be mid-grey).
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def train_classifier(data_dir: str, epochs: int = 4, batch_size: int = 128, lr: float = 3e-3, seed: int = 0,
                     cfg: ClassifierConfig = ClassifierConfig(), log=print) -> tuple[MnistClassifier, dict]:
    """Train on MNIST's training split; returns the model and a summary (accuracy, seconds)."""
    from .data import load_dataset, to_unit_range

    train = load_dataset("mnist", data_dir, train=True)
    test = load_dataset("mnist", data_dir, train=False)
    torch.manual_seed(seed)
    model = MnistClassifier(cfg)
    g = torch.Generator().manual_seed(seed + 1)
    steps_per_epoch = len(train) // batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=g)
        loss_sum = 0.0
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            x = augment(to_unit_range(train.x[idx]).unsqueeze(1), g)  # (B, 1, 28, 28)
            loss = F.cross_entropy(model(x), train.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item()
        acc = accuracy(model, test.x, test.y)
        log(f"epoch {epoch + 1}/{epochs}: train loss {loss_sum / steps_per_epoch:.4f}, "
            f"test accuracy {acc:.4f}, {time.time() - t0:.0f} s")
    seconds = time.time() - t0
    return model.eval(), {"test_accuracy": round(accuracy(model, test.x, test.y), 5),
                          "train_seconds": round(seconds, 1)}


def accuracy(model: MnistClassifier, x_uint8: torch.Tensor, y: torch.Tensor) -> float:
    from .data import to_unit_range

    _, logits = embed(model, to_unit_range(x_uint8).unsqueeze(1))
    return (logits.argmax(1) == y.cpu()).float().mean().item()


def reference_stats(model: MnistClassifier, data_dir: str, repeats: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Test-split feature statistics and the train-vs-test FID floor at each of FLOOR_SIZES."""
    from .data import load_dataset, to_unit_range

    train = load_dataset("mnist", data_dir, train=True)
    test = load_dataset("mnist", data_dir, train=False)
    f_test, _ = embed(model, to_unit_range(test.x).unsqueeze(1))
    f_train, _ = embed(model, to_unit_range(train.x).unsqueeze(1))
    mu, sigma = feature_stats(f_test)
    rng = np.random.default_rng(seed)
    floors = []
    for n in FLOOR_SIZES:
        k = 1 if n >= len(train) else repeats  # subsets of the training split, averaged
        vals = []
        for _ in range(k):
            idx = torch.from_numpy(rng.choice(len(train), size=min(n, len(train)), replace=False))
            vals.append(frechet_distance(*feature_stats(f_train[idx]), mu, sigma))
        floors.append(float(np.mean(vals)))
    return {"mu": mu, "sigma": sigma, "floor_n": np.asarray(FLOOR_SIZES, np.int64),
            "floor_fid": np.asarray(floors, np.float64)}


# --- saving / loading -------------------------------------------------------------------------


def save_classifier(out: str | Path, model: MnistClassifier, stats: dict[str, np.ndarray], summary: dict,
                    command: str) -> Path:
    """Write the whole folder atomically (temp folder, then rename), like a generator checkpoint."""
    from safetensors.numpy import save as save_np

    from .checkpoint import write_checkpoint_dir

    floor = dict(zip(stats["floor_n"].tolist(), stats["floor_fid"].tolist()))
    config = {"model_type": MODEL_TYPE, "format_version": FORMAT_VERSION, **model.cfg.to_dict(),
              "input": "(B, 1, 28, 28) float in [-1, 1] (uint8 / 127.5 - 1)", "features": "fc (pre-activation)",
              "command": command, **summary, "fid_floor": {str(k): round(v, 5) for k, v in floor.items()}}
    stats_bytes = save_np({k: np.ascontiguousarray(v) for k, v in stats.items()},
                          metadata={"dataset": "mnist", "split": "test", "floor": "train subsets vs test stats"})
    readme = _readme(command, summary, floor)
    return write_checkpoint_dir(out, config, model.state_dict(),
                                extra_files={STATS_NAME: stats_bytes, "README.md": readme.encode()},
                                overwrite=True)


def _readme(command: str, summary: dict, floor: dict) -> str:
    rows = "\n".join(f"| {n} | {v:.3f} |" for n, v in floor.items())
    return f"""# MNIST classifier for wgan_app's quality metrics

A small CNN trained on MNIST's training split (60,000 images) by wgan_app; its 128-d
penultimate features define MNIST-FID and its predictions give class accuracy and class entropy
(see docs/training.md, "Quality metrics").

- Trained with: `{command}`
- Test accuracy (MNIST test split, 10,000 images): **{summary['test_accuracy'] * 100:.2f} %**
- Training time: {summary['train_seconds']:.0f} s on a 2-core CPU shared with other jobs (torch threads = 2)

`test_stats.safetensors` holds the test split's feature mean `mu` and covariance `sigma`, and
the floor: MNIST-FID of N real training images against them (mean of 5 random subsets below
60,000), which is what a perfect generator would score with N samples.

| N | floor FID |
|---|---|
{rows}
"""


def load_classifier_dir(path: str | Path) -> tuple[MnistClassifier, dict[str, np.ndarray], dict]:
    """Load and validate a classifier folder; problems become a one-line UserError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file as load_np
    from safetensors.torch import load_file

    path = Path(path)
    hint = "train it with `python -m wgan_app.classifier --data-dir DATA --out " + str(path) + "`"
    try:
        config = json.loads((path / "config.json").read_text())
        state = load_file(str(path / "model.safetensors"))
        stats = load_np(str(path / STATS_NAME))
    except FileNotFoundError as e:
        raise UserError(f"MNIST classifier missing ({Path(e.filename).name} not in {path}); {hint}") from None
    except (json.JSONDecodeError, SafetensorError, OSError, ValueError) as e:
        raise UserError(f"MNIST classifier in {path} is damaged ({str(e).splitlines()[0][:120]}); {hint}") from None
    if config.get("model_type") != MODEL_TYPE:
        raise UserError(f"{path / 'config.json'} is not an MNIST classifier of wgan_app; {hint}")
    model = MnistClassifier(ClassifierConfig.from_dict(config))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise UserError(f"{path / 'model.safetensors'} does not match its config.json "
                        f"({str(e).splitlines()[0]})") from None
    missing = {"mu", "sigma", "floor_n", "floor_fid"} - set(stats)
    if missing:
        raise UserError(f"{path / STATS_NAME} lacks {sorted(missing)}; {hint}")
    # channels-last once here, so `embed` never converts a model another thread is using
    return model.eval().requires_grad_(False).to(memory_format=torch.channels_last), stats, config


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wgan_app.classifier",
                                description="Train the MNIST classifier used by the quality metrics.")
    p.add_argument("--data-dir", default="data", help="torchvision root holding MNIST/raw")
    p.add_argument("--out", default="checkpoints/mnist-classifier", help="output folder")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="CPU threads (the machine is shared)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python -m wgan_app.classifier " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("threads",))
    try:
        model, summary = train_classifier(args.data_dir, epochs=args.epochs, batch_size=args.batch_size,
                                          lr=args.lr, seed=args.seed,
                                          log=lambda m: print(m, file=sys.stderr, flush=True))
        stats = reference_stats(model, args.data_dir, seed=args.seed)
        out = save_classifier(args.out, model, stats, summary, command)
    except UserError as e:
        print(f"python -m wgan_app.classifier: error: {e}", file=sys.stderr)
        return 2
    floors = ", ".join(f"N={n}: {v:.3f}" for n, v in zip(stats["floor_n"].tolist(), stats["floor_fid"].tolist()))
    print(f"test accuracy {summary['test_accuracy']:.4f} in {summary['train_seconds']:.0f} s; "
          f"FID floor {floors}; wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
