"""MNIST training: builds a Trainer from a TrainConfig, shared by the CLI, the UI and the bench.

    for event in train(cfg, should_stop=flag.is_set):   # raises UserError before any event
        ...  # StepEvent, SampleEvent, CheckpointEvent, MetricEvent, DoneEvent

Setup is eager: the data is loaded, the run directory made (or reopened to
resume) and the networks built before `train` returns, so bad input raises here rather than at
the first event. The loop itself is `Trainer.run` (trainer.py); this module only wires the
MNIST pieces to it: the dataset, the conv nets, the sample grid and the quality metrics.

Under torchrun (`group`, see dist.py) every rank loads the data and builds the nets; rank 0
alone opens the run directory and reads the checkpoint to resume, and sends that state to
the others.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from .checkpoint import checkpoint_config, load_training_state
from .config import TrainConfig
from .data import load_dataset
from .dist import Local
from .errors import UserError
from .images import grid, to_uint8
from .models import build_models
from .objectives import build_objective
from .rundir import RunDir, default_run_dir, read_metrics  # noqa: F401  (read_metrics: public here too)
from .trainer import (  # noqa: F401
    CheckpointEvent,
    DoneEvent,
    Event,
    MetricEvent,
    SampleEvent,
    StepEvent,
    Trainer,
    lr_at,
    n_critic_at,
    recalibrated,
)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu")
    return torch.device(name)


def use_deterministic_kernels(on: bool) -> None:
    """CUDA's fastest kernels are not all deterministic (atomic adds in some backward passes, such as
    the embedding's; cuDNN may pick another algorithm per run), so two runs of one config, or a run
    and its resume, drift apart in the last bits within a few steps. With `on`, PyTorch uses
    deterministic ones. The switch is process-wide: in the web server it stays as the last training
    job set it, also for Generate's forward passes and the Lab's CPU nets.

    cuBLAS needs a fixed workspace for determinism, read when a thread first uses it: `app.py`
    sets CUBLAS_WORKSPACE_CONFIG at start-up, and this sets it too for callers that did not."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)  # warn, not fail, for an op without one
    # ...but not its debugging aid, which fills every torch.empty() with NaN, CPU tensors included
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = on, False


def hardware(device: torch.device) -> dict:
    """What a run trained on, recorded in its checkpoints for the model card."""
    if device.type == "cuda":
        name, kind = torch.cuda.get_device_name(device), "GPU"
    else:
        name, kind = cpu_name(), "CPU"
    return {"device": device.type, "name": name, "kind": kind, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__.split("+")[0]}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fixed_noise(cfg: TrainConfig, n: int = 100) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The noise behind every sample grid of a run: (n, z_dim), labels row by row 0..9."""
    g = torch.Generator().manual_seed(cfg.seed + 3)
    z = torch.randn(n, cfg.z_dim, generator=g)
    y = torch.arange(n) // (n // 10) % 10 if cfg.model.conditional else None
    return z, y


def build_trainer(cfg: TrainConfig, resume: bool = False, group: Optional[Local] = None) -> Trainer:
    """Everything before the first step. Raises UserError for bad input; writes only the run
    directory (its config.json, and on resume the truncated metrics.jsonl). `group`: this
    process's place in a torchrun job (dist.init_from_env); None trains in this process alone."""
    group = group if group is not None else Local()
    device = resolve_device(cfg.device)
    if device.type == "cuda" and group.world > 1:  # one GPU per process, by torchrun's LOCAL_RANK
        if group.local_rank >= torch.cuda.device_count():
            raise UserError(f"process {group.local_rank} on this machine has no GPU of its own (it has "
                            f"{torch.cuda.device_count()}); use --nproc-per-node {torch.cuda.device_count()} "
                            "or --device cpu")
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)
    if device.type == "cuda":
        use_deterministic_kernels(cfg.deterministic)
    group.check_batch(cfg.batch_size)

    def load(download: bool = True):
        return load_dataset(cfg.dataset, cfg.data_dir, train=True, device=device, download=download)

    # One download per machine: its first process fetches the files when they are missing (the
    # others would race it into the same folder), then the rest read them. One process: one load.
    data = group.all_ok(lambda: load() if group.local_rank == 0 else None)
    data = group.all_ok(lambda: data if data is not None else load(download=False))
    if cfg.batch_size > len(data):
        raise UserError(f"--batch-size {cfg.batch_size} is larger than the dataset "
                        f"({len(data)} images); use at most {len(data)}")
    run: Optional[RunDir] = None

    def open_run() -> tuple[str, Optional[dict]]:  # rank 0 only: the disk
        nonlocal run
        run = RunDir.open(cfg.run_dir or default_run_dir(cfg.variant, cfg.dataset), resume, cfg.tensorboard)
        state = None
        if resume:
            latest = run.latest_checkpoint()
            state = load_training_state(latest) if latest is not None else None
            run.truncate_metrics(int(state["step"]) if state is not None else 0)
        run.write_config(cfg.replace(run_dir=str(run.path)).to_dict())
        return str(run.path), state

    run_path, state = group.on_main(open_run)  # the resume state reaches every rank
    cfg = cfg.replace(run_dir=run_path)

    with torch.random.fork_rng(devices=[]):  # seed init without disturbing the caller's RNG
        torch.manual_seed(cfg.seed)
        G, D = build_models(cfg.model)
    G, D = G.to(device), D.to(device)

    z_fixed, y_fixed = fixed_noise(cfg)

    def render(net: torch.nn.Module) -> np.ndarray:
        with torch.inference_mode():
            x = net(z_fixed.to(device), None if y_fixed is None else y_fixed.to(device))
        return grid(to_uint8(x), nrow=10)

    # Held-out images for the critic's Wasserstein estimate at each evaluation (torchvision keeps
    # both splits together, so a data folder that has the training split has this one too).
    # Only rank 0 evaluates (torchrun); by now the data phase has put both splits on this machine.
    test_data = (load_dataset(cfg.dataset, cfg.data_dir, train=False, device=device)
                 if (cfg.eval_every or cfg.eval_minutes) and group.is_main else None)

    def evaluate(net: torch.nn.Module) -> dict:
        from .critic_estimate import heldout_estimate
        from .metrics import evaluate_generator

        return {**evaluate_generator(net, cfg.model, num=cfg.eval_num, seed=cfg.seed + 4),
                **heldout_estimate(D, net, test_data, cfg.batch_size, seed=cfg.seed + 6)}  # D: the critic in training

    facts = hardware(device)
    if group.world > 1:
        facts["processes"] = group.world
    return Trainer(cfg, G, D, build_objective(cfg), data, device, run_dir=run, render=render, evaluate=evaluate,
                   checkpoint_config=lambda step, elapsed: checkpoint_config(
                       cfg.model, step, ema=cfg.ema > 0, train=cfg, hardware=facts, train_seconds=round(elapsed, 3)),
                   resume_from=state, group=group, grid_minutes=cfg.grid_marks)


def train(cfg: TrainConfig, should_stop: Callable[[], bool] = lambda: False,
          resume: bool = False) -> Iterator[Event]:
    """Train `cfg`, yielding events. Raises UserError for bad input before returning."""
    return build_trainer(cfg, resume).run(should_stop)
