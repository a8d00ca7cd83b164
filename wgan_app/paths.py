"""Where wgan_app finds the files it ships (checkpoints/: models, the classifier, the evidence, the
Lab's recordings). The only module that knows the project's layout on disk.

From a checkout (`python app.py`, `pip install -e .`) they sit beside the package. An installed
copy (`pip install .`) carries only the code: it reads $WGAN_APP_SHIPPED, else ./checkpoints in the
working directory (run it from the checkout, or point the variable at one).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_SHIPPED = PACKAGE_DIR.parent / "checkpoints"


def shipped_dir() -> Path:
    """The folder of shipped checkpoints (see the module docstring for the order)."""
    env = os.environ.get("WGAN_APP_SHIPPED")
    if env:
        return Path(env)
    return _CHECKOUT_SHIPPED if _CHECKOUT_SHIPPED.is_dir() else Path("checkpoints").resolve()


SHIPPED = shipped_dir()
CLASSIFIER_DIR = SHIPPED / "mnist-classifier"
EVIDENCE_DIR = SHIPPED / "evidence"
LAB_RECORDINGS_DIR = SHIPPED / "lab"
SPEED_FILE = SHIPPED / "speed.json"  # bench/bench_train.py --write: measured steps/s per variant and recipe
