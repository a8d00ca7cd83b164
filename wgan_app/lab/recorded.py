"""Recorded Lab runs: train each preset once, keep frames small, replay them instantly.

    python -m wgan_app.lab.recorded --out checkpoints/lab     # writes <preset>.npz (~1 min on one core)

A recording holds, per frame, everything a panel draws (float16 to stay small): generated
points, the critic's field, the generator's arrows, a sample of the critic's weights, per-layer
gradient norms, the penalty's gradient norms; plus the run's curves. A busy Space can show the
three presets without training anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..paths import LAB_RECORDINGS_DIR
from . import render
from .session import PRESETS, LabRun, panel_data, run_title

DEFAULT_DIR = LAB_RECORDINGS_DIR
N_WEIGHTS = 512  # weights sampled per frame for the histogram (the same indices every frame)


def record(preset: str, steps: int = 2000, every: int = 50, dataset: str = "8gaussians") -> dict[str, np.ndarray]:
    """Train `preset` for `steps` generator steps, keeping a frame every `every` steps."""
    run = LabRun(PRESETS[preset].replace(dataset=dataset))
    f16 = lambda a: np.asarray(a, np.float16)
    keys = ("step", "fake", "field", "arrows_from", "arrows_dir", "weights", "grad_norms", "gp_norms", "w1",
            "modes", "high_quality")
    frames: dict[str, list] = {k: [] for k in keys}
    pick = None
    while True:
        p = panel_data(run.view(copy=False), "")
        if pick is None:
            pick = np.random.default_rng(0).choice(len(p.weights), min(N_WEIGHTS, len(p.weights)), replace=False)
        m = run.measured[-1]
        for k, v in (("step", run.step), ("fake", f16(p.fake)), ("field", f16(p.field)),
                     ("arrows_from", f16(p.arrows_from)), ("arrows_dir", f16(p.arrows_dir)),
                     ("weights", f16(p.weights[pick])), ("grad_norms", np.asarray(p.grad_norms, np.float32)),
                     ("gp_norms", f16(p.gp_norms if p.gp_norms is not None else np.zeros(0))),
                     ("w1", m.w1), ("modes", -1 if m.modes is None else m.modes),
                     ("high_quality", np.nan if m.high_quality is None else m.high_quality)):
            frames[k].append(v)
        if run.step >= steps:
            break
        run.steps(min(every, steps - run.step))
    h = run.history
    meta = {"preset": preset, "dataset": dataset, "steps": steps, "every": every,
            "settings": {k: getattr(run.settings, k) for k in ("objective", "optimizer", "lr", "n_critic",
                                                                "clip_value", "lambda_gp", "depth", "width",
                                                                "batch_size", "z_dim", "batch_norm", "seed")},
            "title": run_title(run.settings), "w1_floor": run.w1_floor,
            "modes_of": None if run.data.centres is None else len(run.data.centres)}
    return {**{k: np.stack(v) for k, v in frames.items()},  # gp_norms: (F, 0) without a penalty
            "real": f16(run.x_eval), "curve_step": np.asarray(h["step"], np.int32),
            "curve_loss_d": f16(h["loss_d"]), "curve_w": f16(h["wasserstein"]),
            "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}


class Recording:
    """One replayable recording (a `.npz` written by `record`)."""

    def __init__(self, path: Path):
        try:
            with np.load(path) as z:
                self.arrays = {k: z[k] for k in z.files}
            self.meta = json.loads(self.arrays.pop("meta").tobytes().decode())
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"recording {path.name} cannot be read: {e}") from None
        self.n_frames = len(self.arrays["step"])

    def panel(self, i: int) -> np.ndarray:
        """Frame i (wrapping) as a rendered panel, curves drawn up to that frame."""
        a, m = self.arrays, self.meta
        i = i % self.n_frames
        step = int(a["step"][i])
        upto = np.searchsorted(a["curve_step"], step, side="right")
        modes = int(a["modes"][i])
        status = f"replay | step {step:,} | W1 {float(a['w1'][i]):.3f}"
        if modes >= 0:
            status += f" | modes {modes}/{m['modes_of']} | {float(a['high_quality'][i]):.0%} near one"
        s = m["settings"]
        data = render.PanelData(
            title=m["title"], real=a["real"].astype(np.float32), fake=a["fake"][i].astype(np.float32),
            field=a["field"][i].astype(np.float32), arrows_from=a["arrows_from"][i].astype(np.float32),
            arrows_dir=a["arrows_dir"][i].astype(np.float32), steps=a["curve_step"][:upto],
            loss_d=a["curve_loss_d"][:upto].astype(np.float32), w_estimate=a["curve_w"][:upto].astype(np.float32),
            w1_steps=a["step"][:i + 1], w1=a["w1"][:i + 1], w1_floor=m["w1_floor"], status=status,
            weights=a["weights"][i].astype(np.float32), grad_norms=a["grad_norms"][i],
            gp_norms=a["gp_norms"][i].astype(np.float32) if a["gp_norms"].shape[1] else None,
            clip_value=s["clip_value"] if s["objective"] == "wgan" else None)
        return render.panel(data)


def load_recordings(folder: Path = DEFAULT_DIR) -> list[Recording]:
    """The shipped recordings, in preset order; a one-line UserError when any is missing."""
    missing = [p for p in PRESETS if not (folder / f"{p}.npz").is_file()]
    if missing:
        raise UserError(f"no recorded Lab runs for {', '.join(missing)} in {folder} "
                        f"(make them with: python -m wgan_app.lab.recorded --out {folder})")
    return [Recording(folder / f"{p}.npz") for p in PRESETS]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Record the Lab's three presets for replay.")
    ap.add_argument("--out", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--dataset", default="8gaussians")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for preset in PRESETS:
        arrays = record(preset, args.steps, args.every, args.dataset)
        tmp = args.out / f"{preset}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        tmp.replace(args.out / f"{preset}.npz")
        print(f"{preset}: {args.out / f'{preset}.npz'} ({(args.out / f'{preset}.npz').stat().st_size / 1e3:.0f} kB)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
