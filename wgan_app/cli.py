"""Command line: flag parsing and the headless modes (--train, --sample). `app.py` calls `main`.

The training flags are generated from `TrainConfig`'s fields, so the CLI, the UI form and
config.json can never drift apart. Every flag defaults to None here, which lets `--resume`
tell which settings the user actually typed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import typing
from pathlib import Path
from typing import Optional

from .config import UNTIL_TIME_LIMIT, TrainConfig, flag, recipes_table, train_flags
from .errors import UserError, first_line
from .validation import MAX_SAMPLE_NUM, check_num, check_seed, parse_label

# Settings that may change when a run is resumed; everything else must match the run's config.
RESUMABLE = {"iters", "lr_decay_from", "max_minutes", "device", "data_dir", "log_every", "sample_every", "save_every",
             "keep_checkpoints", "eval_every", "eval_minutes", "eval_num", "tensorboard", "amp", "run_dir"}


EXAMPLES = """examples:
  python app.py                                              the web UI on http://127.0.0.1:7860
  python app.py --train --max-minutes 5                      class-conditional digits in five CPU minutes
  python app.py --train --variant wgan --g-arch mlp --max-minutes 5    the original WGAN with an MLP generator
  python app.py --train --resume --run-dir runs/NAME --iters 8000      continue a run to a new total
  python app.py --sample --checkpoint checkpoints/acgan-mnist --label 7 --out sevens.png
  python app.py --eval --checkpoint runs/NAME --num 10000    MNIST-FID and class accuracy as JSON
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="app.py", description="Train, sample and demonstrate Wasserstein GANs on MNIST-style data. "
                "With no mode flag, starts the web UI.", formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog=EXAMPLES + "\nrecipes (--recipe; any flag you give overrides its value):\n" + recipes_table())
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--train", action="store_true", help="train headless with a progress bar")
    mode.add_argument("--sample", action="store_true", help="write samples of a checkpoint to --out")
    mode.add_argument("--eval", action="store_true", help="print quality metrics of a checkpoint as JSON")
    mode.add_argument("--push-to-hub", metavar="USER/REPO", help="upload --checkpoint to the Hugging Face Hub")

    t = p.add_argument_group("training (--train)")
    for name, typ, help_text, choices in train_flags():  # help text lives beside each field in config.py
        kw = dict(default=None, help=help_text, dest=name)
        if typ is bool:
            t.add_argument(flag(name), action=argparse.BooleanOptionalAction, **kw)
        else:  # choices are shown, and checked by TrainConfig with its own one-line message
            metavar = "{" + ",".join(choices) + "}" if choices else name.upper()
            t.add_argument(flag(name), type=typ, metavar=metavar, **kw)
    t.add_argument("--resume", action="store_true", help="continue the run in --run-dir to --iters")

    s = p.add_argument_group("sampling (--sample, --eval, --push-to-hub)")
    s.add_argument("--checkpoint", help="checkpoint folder, run directory (its latest checkpoint) or hf://USER/REPO[@REV]")
    s.add_argument("--label", default="all", help="0-9, or 'all' to cycle 0..9 (ignored by unconditional models)")
    s.add_argument("--num", type=int, default=None, help="number of images (default 100 for --sample)")
    s.add_argument("--out", help="output file: .png (a grid, 10 per row) or .npz (images, labels)")
    s.add_argument("--private", action="store_true", help="--push-to-hub: create the Hub repo as private")

    u = p.add_argument_group("web UI (default mode)")
    u.add_argument("--host", default=None, help="bind address (default $GRADIO_SERVER_NAME or 127.0.0.1)")
    u.add_argument("--port", type=int, default=None, help="port (default $GRADIO_SERVER_PORT or 7860)")
    u.add_argument("--max-train-iters", type=int, default=None,
                   help="cap on iterations a UI user may request (default $WGAN_APP_MAX_ITERS or 5000)")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    given = {name: getattr(args, name) for name, *_ in train_flags() if getattr(args, name) is not None}
    if not args.resume:
        if "max_minutes" in given and "iters" not in given:
            given["iters"] = UNTIL_TIME_LIMIT  # the time limit alone ends the run
        return TrainConfig(**given)
    if not args.run_dir:
        raise UserError("--resume needs --run-dir: the run directory to continue")
    from .rundir import CONFIG_NAME

    cfg_path = Path(args.run_dir) / CONFIG_NAME
    if not cfg_path.is_file():
        raise UserError(f"--resume: {args.run_dir} has no {CONFIG_NAME}, so it is not a run directory")
    import json

    try:
        saved = TrainConfig.from_dict(json.loads(cfg_path.read_text()))
    except json.JSONDecodeError as e:
        raise UserError(f"{cfg_path} is not valid JSON ({e}); the run directory is damaged") from None
    clash = [k for k, v in given.items() if k not in RESUMABLE and getattr(saved, k) != v]
    if clash:
        k = clash[0]
        raise UserError(f"{flag(k)} {given[k]} differs from the run's {getattr(saved, k)}; a resumed run keeps "
                        f"its recipe: drop {flag(k)} or start a new run")
    return saved.replace(**{k: v for k, v in given.items() if k in RESUMABLE})


def console() -> int:
    """The `wgan-app` command and `python app.py`: main() with the process set up for it."""
    import os

    # Deterministic cuBLAS (training's default on CUDA) needs this before any thread first uses
    # cuBLAS, and the web server may draw digits on the GPU before its first training job.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A torchrun rank has closed its process group and written everything (atomically, with
        # fsync). Leaving through os._exit skips the interpreter's exit-time destructors, where
        # gloo's threads were seen to abort a finished rank now and then ("terminate called
        # without an active exception", SIGABRT) and turn a good run into a failed one.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: Optional[list[str]] = None) -> int:
    from .dist import env_world, is_main_process

    args = build_parser().parse_args(argv)
    try:
        if env_world() > 1 and not args.train:
            raise UserError("under torchrun only --train runs (the web UI, --sample and --eval run in one process); "
                            "start them with plain `python app.py`")
        if args.train:
            return run_train(args)
        if args.sample:
            return run_sample(args)
        if args.eval:
            return run_eval(args)
        if args.push_to_hub:
            return run_push(args)
        return run_ui(args)
    except UserError as e:
        if is_main_process():  # under torchrun every rank raises the same error; rank 0 says it
            print(f"app.py: error: {e}", file=sys.stderr)
        return 2


# --- modes ----------------------------------------------------------------------------------


def run_train(args: argparse.Namespace) -> int:
    """Train headless. Under torchrun (WORLD_SIZE > 1) this runs on every rank: rank 0 resolves
    the config, writes the run directory and drives the progress bar; the others train quietly."""
    from .dist import PeerLost, init_from_env

    group = init_from_env()
    where: dict = {"run_dir": args.run_dir}  # _train fills in the run directory once it is known
    clean = False
    try:
        code = _train(args, group, where)
        clean = True
        return code
    except PeerLost as e:
        # One line per surviving process; checkpoints are written whole or not at all, so the
        # last one on disk is sound.
        run_dir = f" --run-dir {where['run_dir']}" if where["run_dir"] else ""
        print(f"app.py: error: distributed training failed: {e}; the last checkpoint is intact: "
              f"continue with --resume{run_dir}", file=sys.stderr)
        return 1
    finally:
        group.close(clean)


def _train(args: argparse.Namespace, group, where: dict) -> int:
    from .train import build_trainer

    cfg = group.on_main(lambda: config_from_args(args))  # a resumed run's config.json is on rank 0's disk
    stop = threading.Event()

    def on_sigint(signum, frame):
        # torchrun starts workers in their own session and stops them with one SIGTERM (after
        # SIGINT/SIGTERM of its own): that must stop the job cleanly, never abort one rank.
        if stop.is_set() and group.world == 1:
            raise KeyboardInterrupt
        stop.set()  # first Ctrl-C: finish the step, save, exit

    previous = signal.signal(signal.SIGINT, on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigint)
    if cfg.tensorboard and group.is_main:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            print("app.py: warning: --tensorboard needs `pip install tensorboard`; training without it",
                  file=sys.stderr)
    try:
        trainer = build_trainer(cfg, resume=args.resume, group=group)
        cfg = trainer.cfg
        where["run_dir"] = cfg.run_dir
        if not group.is_main:
            return _drain(trainer.run(should_stop=stop.is_set))
        limit = f"{cfg.max_minutes:g} min" if cfg.max_minutes else ""
        steps = f"{cfg.iters} steps" if cfg.iters < UNTIL_TIME_LIMIT else ""
        procs = (f" x {group.world} processes ({cfg.batch_size // group.world} images each)"
                 if group.world > 1 else "")
        arch = f" with the {cfg.g_arch} generator" if cfg.g_arch != "dcgan" else ""
        print(f"training {cfg.variant}{arch} on {cfg.dataset} ({cfg.recipe} recipe: lr {cfg.lr:g}, "
              f"n_critic {cfg.n_critic}, batch {cfg.batch_size}) on {trainer.device.type}{procs} for "
              f"{' or '.join(x for x in (steps, limit) if x)}"
              f"{f', from step {trainer.step_count}' if trainer.step_count else ''}; run directory {cfg.run_dir}",
              file=sys.stderr)
        if trainer.state.noise_reseeded:
            print(f"app.py: note: this run was saved on another kind of device than {trainer.device.type}; it goes on "
                  "with noise drawn from a seed taken from the saved state, so from here it is not bit-identical "
                  "to an uninterrupted run", file=sys.stderr)
        return _consume(trainer.run(should_stop=stop.is_set), cfg, trainer.step_count)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


def _drain(events) -> int:
    """A torchrun rank other than 0: train without a word; rank 0 reports. Exit 1 on divergence."""
    from .trainer import DoneEvent

    for ev in events:
        if isinstance(ev, DoneEvent):
            return 1 if ev.reason == "diverged" else 0
    return 0


def _consume(events, cfg: TrainConfig, start_step: int) -> int:
    """Drive the progress bar from the trainer's events. With --max-minutes the bar counts this
    segment's minutes (the time limit ends the run); otherwise generator steps from `start_step`
    (its rate then counts only this segment's steps, not the resumed ones)."""
    import time

    from tqdm import tqdm

    from .trainer import CheckpointEvent, DoneEvent, StepEvent

    by_time = cfg.max_minutes is not None
    if by_time:
        bar = tqdm(total=round(cfg.max_minutes * 60), unit="s", dynamic_ncols=True, file=sys.stderr,
                   bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]")
    else:
        bar = tqdm(total=cfg.iters, initial=start_step, unit="step", dynamic_ncols=True, file=sys.stderr)
    t0, last_step = time.time(), start_step
    try:
        for ev in events:
            if isinstance(ev, StepEvent):
                m = ev.metrics
                post = {"step": ev.step} if by_time else {}
                if by_time:
                    post["it/s"] = f"{(ev.step - start_step) / max(time.time() - t0, 1e-9):.1f}"
                post.update({k: f"{v:.3f}" for k, v in (("D", m.get("loss_d")), ("G", m.get("loss_g")),
                             ("W", m.get("wasserstein")), ("gp", m.get("gp")), ("acc", m.get("class_acc")))
                             if v is not None})
                bar.set_postfix(post, refresh=False)
                bar.update(min(time.time() - t0, bar.total) - bar.n if by_time else ev.step - last_step)
                last_step = ev.step
            elif isinstance(ev, CheckpointEvent):
                bar.write(f"checkpoint: {ev.path}", file=sys.stderr)
            elif isinstance(ev, DoneEvent):
                if by_time and ev.reason == "time limit":
                    bar.update(bar.total - bar.n)
                bar.close()
                if ev.reason == "diverged":
                    print(f"app.py: error: training diverged: {ev.message}", file=sys.stderr)
                    return 1
                print(f"{ev.reason} at step {ev.step}; run directory {ev.run_dir}; checkpoint {ev.checkpoint}",
                      file=sys.stderr)
    finally:
        bar.close()
    return 0


def open_sampler(ref: Optional[str]):
    """A Sampler for a checkpoint path or hf:// id (hub support plugs in through `hub.resolve`)."""
    from .sampler import Sampler

    if not ref:
        raise UserError("--checkpoint is required: a checkpoint folder, a run directory or hf://USER/REPO")
    if str(ref).startswith("hf://"):
        from .hub import resolve_hub_checkpoint

        ref = resolve_hub_checkpoint(ref)
    return Sampler.load(ref)


def run_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from .atomic import atomic_write_bytes
    from .images import grid, png_bytes

    if not args.out:
        raise UserError("--out is required: a .png (grid) or .npz file to write")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npz"):
        raise UserError(f"--out {args.out!r} must end in .png or .npz")
    if out.is_dir():
        raise UserError(f"--out {args.out!r} is a directory; give a file name inside it, e.g. {out / 'samples.png'}")
    num = 100 if args.num is None else check_num(args.num, "--num", hi=MAX_SAMPLE_NUM)
    seed = 0 if args.seed is None else check_seed(args.seed, "--seed")
    label = parse_label(args.label, conditional=True, name="--label")  # its form, before any loading
    sampler = open_sampler(args.checkpoint)
    if label is not None and not sampler.conditional:
        raise UserError(f"--label {label}: this checkpoint is unconditional; use --label all")
    if sampler.conditional:
        labels = [label] * num if label is not None else [i % 10 for i in range(num)]
    else:
        labels = None
    images = sampler.sample(labels, seed=seed, n=num)
    if out.suffix.lower() == ".png":
        data = png_bytes(images[0] if num == 1 else grid(images, nrow=10))
    else:
        import io

        buf = io.BytesIO()
        lab = np.asarray(labels if labels is not None else [-1] * num, dtype=np.int64)
        np.savez_compressed(buf, images=images, labels=lab)
        data = buf.getvalue()
    try:
        atomic_write_bytes(out, data)
    except OSError as e:
        raise UserError(f"--out {args.out!r} cannot be written ({first_line(e)}); choose a file in a folder "
                        "you can write to") from None
    print(f"wrote {num} images to {out}", file=sys.stderr)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    try:
        from .metrics import run_eval_cli
    except ImportError:
        raise UserError("--eval is not available in this build") from None
    return run_eval_cli(args)


def run_push(args: argparse.Namespace) -> int:
    try:
        from .hub import run_push_cli
    except ImportError:
        raise UserError("--push-to-hub is not available in this build") from None
    return run_push_cli(args)


def run_ui(args: argparse.Namespace) -> int:
    try:
        from .ui import launch
    except ImportError as e:
        raise UserError(f"the web UI is not available in this build ({e})") from None
    return launch(args)
