"""Datasets held whole in memory as uint8 tensors, batched and scaled to [-1, 1] on the device.

torchvision reads (and, when online, downloads) the IDX files; we keep only its `.data` /
`.targets` tensors: pushing 60k images one by one through PIL transforms would cost more than
a training step here.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import torch

from .errors import UserError, one_line

_TV_NAMES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "stacked-mnist": "MNIST"}
DOWNLOAD_MB = {"mnist": 11, "fashion-mnist": 30, "stacked-mnist": 11}  # the gzipped IDX files torchvision fetches
# Stacked MNIST: each image is three MNIST digits, one per channel, drawn independently, so the
# data has 10**3 modes (VEEGAN, Srivastava et al. 2017; PacGAN; GDPP). It is built batch by batch
# from MNIST: nothing new on disk, and the batch generator's seed fixes every stack.
STACK = {"stacked-mnist": 3}
N_MODES = {"stacked-mnist": 1000}


class DataUnavailable(UserError):
    """The dataset is not on disk and could not be downloaded. `str()` is for the operator (where
    to point --data-dir); `visitor` is what a web visitor, who cannot fix it, should read."""

    def __init__(self, operator_message: str, name: str):
        super().__init__(operator_message)
        self.visitor = (f"The training data ({_TV_NAMES[name]}) is not on this server and could not be "
                        "downloaded just now, so training cannot start. Try again later; the server's log "
                        "tells its operator why.")


def dataset_on_disk(name: str, data_dir: str) -> bool:
    """Whether `name`'s raw training files are already under `data_dir` (so nothing is downloaded)."""
    raw = os.path.join(data_dir, _TV_NAMES[name], "raw")
    return all(os.path.isfile(os.path.join(raw, f)) for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"))


@dataclass
class ImageData:
    """x: (N, 28, 28) uint8, y: (N,) int64, both on `device`. With `stack` k > 1 a batch image is
    k independently drawn images in its k channels, and its label the mode they make:
    y_0 * 10**(k-1) + ... + y_(k-1) (Stacked MNIST: 0..999)."""

    x: torch.Tensor
    y: torch.Tensor
    name: str
    stack: int = 1

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A uniformly drawn batch (with replacement): x (B, stack, 28, 28) in [-1, 1], y (B,)."""
        if self.stack == 1:
            idx = torch.randint(len(self), (batch_size,), generator=generator, device=generator.device)
            idx = idx.to(self.x.device)
            return to_unit_range(self.x[idx]).unsqueeze(1), self.y[idx]
        idx = torch.randint(len(self), (batch_size, self.stack), generator=generator, device=generator.device)
        idx = idx.to(self.x.device)  # (B, k): channel j of image i is MNIST image idx[i, j]
        return to_unit_range(self.x[idx]), mode_of(self.y[idx])  # (B, k, 28, 28), (B,)


def mode_of(digits: torch.Tensor) -> torch.Tensor:
    """(B, k) digits, channel 0 first -> (B,) mode ids in [0, 10**k): (3, 0, 7) -> 307."""
    k = digits.shape[1]
    place = 10 ** torch.arange(k - 1, -1, -1, device=digits.device)  # (k,): 100, 10, 1
    return (digits.long() * place).sum(1)


def to_unit_range(x_uint8: torch.Tensor) -> torch.Tensor:
    return x_uint8.float().div_(127.5).sub_(1.0)


def load_dataset(name: str, data_dir: str, train: bool = True, device: str | torch.device = "cpu",
                 download: bool = True) -> ImageData:
    """Load a split into memory. Missing files are downloaded when online; otherwise UserError."""
    import torchvision

    if name not in _TV_NAMES:
        raise UserError(f"--dataset {name!r} is not one of: {', '.join(_TV_NAMES)}")
    cls = getattr(torchvision.datasets, _TV_NAMES[name])
    try:
        ds = cls(data_dir, train=train, download=False)
    except RuntimeError:
        if not download:
            raise DataUnavailable(_missing(name, data_dir), name) from None
        # Remember the top-most folder that did not exist, so a failed download leaves nothing
        # behind (torchvision makes every missing parent of --data-dir/NAME/raw).
        created = _first_missing(os.path.join(os.path.abspath(data_dir), _TV_NAMES[name]))
        try:
            ds = cls(data_dir, train=train, download=True)
        except Exception as e:  # offline: URLError, socket errors, checksum failures...
            if created:
                shutil.rmtree(created, ignore_errors=True)
            raise DataUnavailable(f"{_missing(name, data_dir)} (download failed: {one_line(e)})", name) from None
    x = ds.data
    y = ds.targets
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.dim() != 3 or tuple(x.shape[1:]) != (28, 28):
        raise UserError(f"{name} files under {data_dir!r} are not 28x28 uint8 images; delete them and retry")
    return ImageData(x=x.to(device), y=torch.as_tensor(y, dtype=torch.long).to(device), name=name,
                     stack=STACK.get(name, 1))


def _first_missing(path: str) -> str | None:
    """The top-most ancestor of `path` (or `path` itself) that does not exist yet; None if it exists."""
    missing = None
    while not os.path.exists(path):
        missing, parent = path, os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def _missing(name: str, data_dir: str) -> str:
    where = os.path.join(data_dir, _TV_NAMES[name], "raw")
    return (f"{name} not found under --data-dir {data_dir!r} (expected {where}/*-ubyte); "
            "point --data-dir at the folder that holds it, or go online to download it")
