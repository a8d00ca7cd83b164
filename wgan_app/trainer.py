"""The Trainer: networks, a batch source and an objective in; events out.

    trainer = Trainer(cfg, G, D, objective, data)     # eager: nothing runs yet
    stats = trainer.step()                            # one whole generator step
    for event in trainer.run(should_stop):            # StepEvent, SampleEvent, CheckpointEvent,
        ...                                           # MetricEvent, DoneEvent

It knows no dataset and no loss: `data.batch(B, generator) -> (x, y)`, G(z, y) -> x with
`G.z_dim` / `G.n_classes`, D(x) -> (score, logits), and the objective (objectives.py) says what
the losses are. So the same code trains the MNIST conv nets and 2-D MLPs. It never prints and
never touches a UI; what a run writes to disk goes through an optional `RunDir`.

Determinism: data order, noise and penalty interpolation come from two seeded generators whose
states are part of `TrainState`, and a stop request is honoured only *between* generator steps,
so on CPU a run that is stopped and resumed ends with the same weights as an uninterrupted one.

Several processes (torchrun): the optional `group` (dist.py) is called at fixed points: each
rank keeps its rows of the global batch, gradients are averaged between backward and
optimizer.step, a stop is agreed between generator steps, batch-norm statistics are averaged
before a grid or a checkpoint, and only rank 0 (the one given a `run_dir`) writes or renders.
Without a group every hook is the identity.

Time: the run's clock (`elapsed`, the logged `time`, --max-minutes, the minute grids) counts
training only. Quality evaluations and the minute grids pause it, so runs that evaluate more
often (a fast recipe does more steps a minute) are not charged for being watched more closely.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol, Sequence

import numpy as np
import torch
import torch.nn as nn

from .dist import GO, STOP, TIME_LIMIT, Local
from .objectives import Batch, Objective

# --- events -------------------------------------------------------------------------------


@dataclass
class StepEvent:
    """Averages over the last `log_every` generator steps (critic stats: over every critic update)."""

    step: int
    iters: int
    metrics: dict[str, float]  # loss_d, loss_g, wasserstein, gp, grad_norm, class_acc, ...
    elapsed: float  # seconds of training in this run, resumed segments included
    steps_per_s: float


@dataclass
class SampleEvent:
    step: int
    path: Optional[Path]  # None when the trainer has no run directory
    image: np.ndarray  # (H, W) uint8 grid from the fixed noise


@dataclass
class CheckpointEvent:
    step: int
    path: Path


@dataclass
class MetricEvent:
    step: int
    metrics: dict[str, float]  # quality metrics (see metrics.py)


@dataclass
class DoneEvent:
    step: int
    reason: str  # "finished" | "stopped" | "time limit" | "diverged"
    run_dir: Optional[Path]
    checkpoint: Optional[Path]
    message: str = ""


Event = StepEvent | SampleEvent | CheckpointEvent | MetricEvent | DoneEvent


class BatchSource(Protocol):
    def __len__(self) -> int: ...

    def batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, Optional[torch.Tensor]]: ...


# --- schedules ----------------------------------------------------------------------------


class StepSettings(Protocol):
    """What the Trainer reads from its config, declared once: `TrainConfig` (MNIST runs) and the
    Lab's `LabSettings` / `LineSettings` provide these fields; nothing else is read."""

    batch_size: int
    optimizer: str  # "adam" | "rmsprop"
    lr: float
    beta1: float
    beta2: float
    n_critic: int
    critic_warmup: bool
    lr_decay_from: float
    iters: int
    max_minutes: Optional[float]
    ema: float
    seed: int
    amp: bool
    # read by run() only (a caller that only steps may leave them at their defaults)
    log_every: int
    sample_every: int
    save_every: int
    eval_every: int
    eval_minutes: float
    keep_checkpoints: int


def n_critic_at(cfg, step: int) -> int:
    """Arjovsky et al.'s schedule: 100 critic steps for the first 25 G steps and every 500th."""
    if cfg.critic_warmup and (step < 25 or step % 500 == 0):
        return 100
    return cfg.n_critic


def lr_at(cfg, step: int, seconds: Optional[float] = None) -> float:
    """Constant lr, then (optionally) a linear fall to 0 over the last (1 - lr_decay_from) of the run.

    A run's progress is its share of --iters or, when --max-minutes limits it, of that time
    (`seconds` trained in this segment), whichever is further: a run that only the clock ends
    still decays, though then its schedule depends on the machine's speed (no exact resume)."""
    if cfg.lr_decay_from >= 1:
        return cfg.lr
    start = cfg.lr_decay_from * cfg.iters
    by_steps = 1.0 if step < start else max(0.0, (cfg.iters - step) / max(cfg.iters - start, 1))
    by_time = 1.0
    if seconds is not None and cfg.max_minutes:
        done = seconds / (cfg.max_minutes * 60)
        by_time = 1.0 if done < cfg.lr_decay_from else max(0.0, (1 - done) / (1 - cfg.lr_decay_from))
    return cfg.lr * min(by_steps, by_time)


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, decay: float, step: int) -> None:
    """theta_ema <- d*theta_ema + (1-d)*theta, with d ramped up early so EMA doesn't lag the start."""
    d = min(decay, (1 + step) / (10 + step))
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.lerp_(p, 1 - d)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):  # batch-norm running stats
        b_ema.copy_(b)


@torch.no_grad()
def recalibrated(G: nn.Module, cfg, device: torch.device, batches: int = 8, batch_size: int = 256) -> nn.Module:
    """A copy of G in eval mode whose batch-norm statistics are re-measured on its own samples.

    The averaged generator's weights are not the raw generator's, so the running statistics it
    copies from G are slightly wrong for it; re-estimating them (cumulative average, fixed seed,
    so checkpoints stay deterministic) lowers MNIST-FID measurably (83 -> 77 on one run).
    """
    G = copy.deepcopy(G)
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return G.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over all batches
    g = torch.Generator(device=device).manual_seed(cfg.seed + 5)
    G.train()
    for _ in range(batches):
        z = torch.randn(batch_size, G.z_dim, device=device, generator=g)
        y = torch.randint(G.n_classes, (batch_size,), device=device, generator=g) if G.n_classes else None
        G(z, y)
    for m in bns:
        m.momentum = 0.1
    return G.eval()


def make_optimizer(cfg, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    return torch.optim.RMSprop(params, lr=cfg.lr)  # no momentum: WGAN with clipping needs none


# --- state --------------------------------------------------------------------------------


@dataclass
class TrainState:
    """Everything a resumed run needs. `state_dict()` is what training_state.pt holds."""

    G: nn.Module
    D: nn.Module
    G_ema: Optional[nn.Module]
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    rng_data: torch.Generator  # batch indices
    rng_noise: torch.Generator  # z, fake labels, penalty eps
    step: int = 0
    elapsed: float = 0.0  # seconds of training before the current segment
    noise_reseeded: bool = False  # resumed on another kind of device than the checkpoint's: see load_state_dict

    def state_dict(self) -> dict:
        st = {"G": self.G.state_dict(), "D": self.D.state_dict(),
              "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
              "rng_data": self.rng_data.get_state(), "rng_noise": self.rng_noise.get_state().cpu(),
              "step": self.step, "elapsed": self.elapsed}
        if self.G_ema is not None:
            st["G_ema"] = self.G_ema.state_dict()
        return st

    def load_state_dict(self, st: dict) -> None:
        self.G.load_state_dict(st["G"])
        self.D.load_state_dict(st["D"])
        if self.G_ema is not None and "G_ema" in st:
            self.G_ema.load_state_dict(st["G_ema"])
        self.opt_g.load_state_dict(st["opt_g"])
        self.opt_d.load_state_dict(st["opt_d"])
        self.rng_data.set_state(st["rng_data"])
        saved, here = st["rng_noise"], self.rng_noise.get_state()
        if saved.numel() == here.numel():
            self.rng_noise.set_state(saved.to(here.device))
        else:
            # Saved on another kind of device (a CPU generator's state is 5,056 bytes, a CUDA one's
            # 16): it cannot be restored here. Continue from a seed drawn from the saved state, so
            # the same checkpoint resumes the same way on this device; the noise stream, and so
            # the weights, then differ from an uninterrupted run on the original device.
            self.rng_noise.manual_seed(int.from_bytes(hashlib.sha256(saved.numpy().tobytes()).digest()[:8], "little"))
            self.noise_reseeded = True
        self.step, self.elapsed = int(st["step"]), float(st["elapsed"])


# --- the trainer --------------------------------------------------------------------------


class Trainer:
    """Trains G against D under `objective` on batches of `data`, per a TrainConfig.

    Optional hooks make it a full run: `run_dir` (a RunDir) receives metrics, samples and
    checkpoints; `render(G) -> (H, W) uint8` draws the sample grid; `evaluate(G) -> dict` measures
    quality; `checkpoint_config(step, elapsed_s) -> dict` is the config.json of a checkpoint;
    `group` (dist.Group) makes it one rank of a torchrun job (only rank 0 gets a run_dir).
    `grid_minutes` are the minutes of training after which the fixed-noise grid is also saved as
    samples/minute_XX.png (with a `grid_minute` row in metrics.jsonl, to align runs by time).
    """

    def __init__(self, cfg: StepSettings, G: nn.Module, D: nn.Module, objective: Objective, data: BatchSource,
                 device: torch.device | str = "cpu", *, run_dir=None,
                 render: Optional[Callable[[nn.Module], np.ndarray]] = None,
                 evaluate: Optional[Callable[[nn.Module], dict]] = None,
                 checkpoint_config: Optional[Callable[[int, float], dict]] = None,
                 resume_from: Optional[dict] = None, group: Optional[Local] = None,
                 grid_minutes: Sequence[float] = ()):
        self.cfg, self.objective, self.data = cfg, objective, data
        self.device = torch.device(device)
        self.run_dir, self.render, self.evaluate, self.checkpoint_config = run_dir, render, evaluate, checkpoint_config
        G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.ema > 0 else None
        self.state = TrainState(
            G, D, G_ema, make_optimizer(cfg, G.parameters()), make_optimizer(cfg, D.parameters()),
            rng_data=torch.Generator().manual_seed(cfg.seed + 1),
            rng_noise=torch.Generator(device=self.device).manual_seed(cfg.seed + 2))
        if resume_from is not None:
            self.state.load_state_dict(resume_from)
        self.group = group if group is not None else Local()
        self.group.broadcast_modules(G, D, G_ema)  # rank 0's weights everywhere (all ranks loaded the same state)
        self._eps_rng = self.group.stream(self.state.rng_noise)  # the penalty's eps: this rank's rows
        self.amp = (torch.autocast("cuda", dtype=torch.bfloat16) if cfg.amp and self.device.type == "cuda"
                    else nullcontext())
        self._sampling: tuple[int, Optional[nn.Module]] = (-1, None)
        self._synced_at = -1  # the step whose batch-norm statistics the ranks last averaged
        self.grid_minutes = tuple(grid_minutes)
        self._paused_s = 0.0  # wall seconds spent measuring (evaluations, minute grids), not training
        self._segment_start = self._clock()

    @property
    def step_count(self) -> int:
        return self.state.step

    # --- what a live caller (the Lab) may change between steps --------------------------------
    def retune(self, cfg: StepSettings, objective: Objective) -> None:
        """Take new settings and objective at the next step, keeping the networks, the optimisers
        (their lr follows cfg at the next step) and the RNGs."""
        self.cfg, self.objective = cfg, objective

    def replace_optimizers(self, opt_g: Optional[torch.optim.Optimizer] = None,
                           opt_d: Optional[torch.optim.Optimizer] = None) -> None:
        """Use these optimisers from the next update (e.g. plain SGD for a generator whose step
        must be its gradient times the lr); None keeps the current one."""
        self.state.opt_g = opt_g if opt_g is not None else self.state.opt_g
        self.state.opt_d = opt_d if opt_d is not None else self.state.opt_d

    def _clock(self) -> float:
        """Training seconds: wall time less the pauses for measurement."""
        return time.time() - self._paused_s

    def elapsed(self) -> float:
        return self.state.elapsed + (self._clock() - self._segment_start)

    # --- one generator step ---------------------------------------------------------------
    def noise(self, n: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """This rank's rows of z (n, z_dim) and fake labels (n,) drawn for a global batch of n."""
        G, g, rows = self.state.G, self.state.rng_noise, self.group.rows
        z = torch.randn(n, G.z_dim, device=self.device, generator=g)
        y = torch.randint(G.n_classes, (n,), device=self.device, generator=g) if G.n_classes else None
        return rows(z), rows(y)

    def apply_lr(self, seconds: Optional[float] = None) -> None:
        """Set both optimisers' learning rate to the schedule's value at the current step.
        `seconds`: this segment's training time for a time-based schedule (default: the clock;
        under torchrun the ranks pass an agreed value, so they all use one lr)."""
        s = self.state
        lr = lr_at(self.cfg, s.step, self._clock() - self._segment_start if seconds is None else seconds)
        for opt in (s.opt_g, s.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

    def critic_step(self) -> dict[str, torch.Tensor]:
        """One critic update on a fresh real batch and a fresh (detached) fake batch, then the
        objective's after-update hook (clipping). Its stats as 0-d tensors; the step count stays.

        D's parameter gradients (`.grad`) are left in place, so a caller can inspect them."""
        s, B = self.state, self.cfg.batch_size  # B: the global batch (all ranks)
        G, D, ranks = s.G, s.D, self.group
        D.requires_grad_(True)
        real = Batch(*map(ranks.rows, self.data.batch(B, s.rng_data)))  # (B/world, 1, 28, 28), (B/world,)
        z, y_fake = self.noise(B)
        with torch.no_grad(), self.amp:
            fake = Batch(G(z, y_fake), y_fake)
        with self.amp:
            loss_d, stats = self.objective.critic_loss(D, real, fake, generator=self._eps_rng)
        s.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        ranks.reduce_gradients(D)  # mean over ranks = the gradient of the global batch's loss
        s.opt_d.step()
        self.objective.after_critic_update(D)
        return stats

    def generator_step(self) -> dict[str, torch.Tensor]:
        """One generator update against the current critic; advances the step count (and the EMA)."""
        s, cfg, B = self.state, self.cfg, self.cfg.batch_size
        G, D = s.G, s.D
        D.requires_grad_(False)  # no weight gradients for D in the G step
        z, y_fake = self.noise(B)
        with self.amp:
            loss_g, g_stats = self.objective.generator_loss(D, Batch(G(z, y_fake), y_fake))
        s.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.group.reduce_gradients(G)
        s.opt_g.step()
        if s.G_ema is not None:
            update_ema(s.G_ema, G, cfg.ema, s.step)
        s.step += 1
        return g_stats

    def step(self, seconds: Optional[float] = None) -> dict[str, float]:
        """One whole generator step: n_critic critic updates on fresh batches, then one G update.
        `seconds`: see `apply_lr`.

        Returns the critic's stats averaged over its updates and the generator's, as floats
        (one host sync per generator step, none per critic update); under torchrun, averaged
        over the ranks too: the global batch's."""
        self.apply_lr(seconds)
        n = n_critic_at(self.cfg, self.state.step)
        sums: dict[str, torch.Tensor] = {}
        for _ in range(n):
            for k, v in self.critic_step().items():
                sums[k] = sums[k] + v.float() if k in sums else v.float()
        g_stats = self.generator_step()
        names = [*sums, *g_stats]
        values = torch.stack([*(v / n for v in sums.values()), *(v.float() for v in g_stats.values())])
        return dict(zip(names, self.group.average(values).tolist()))

    # --- what samples and checkpoints show ------------------------------------------------
    def sampling_generator(self) -> nn.Module:
        """The averaged generator with its batch norm re-measured (or a copy of G without EMA),
        in eval mode. Built once per step: a grid, a checkpoint and an evaluation often share one."""
        step, net = self._sampling
        if step != self.state.step or net is None:
            s = self.state
            net = recalibrated(s.G_ema, self.cfg, self.device) if s.G_ema is not None else copy.deepcopy(s.G).eval()
            self._sampling = (s.step, net)
        return net

    def save(self, rank_checksums: Optional[list[str]] = None) -> Path:
        """Write a checkpoint of the current step into the run directory. `rank_checksums`: every
        rank's dist.state_checksum of this state, recorded in config.json under a torchrun job."""
        s = self.state
        G = self.sampling_generator()
        st = s.state_dict()
        st["elapsed"] = self.elapsed()
        extra = {"samples.png": _png(self.render(G))} if self.render is not None else None
        config = self.checkpoint_config(s.step, st["elapsed"]) if self.checkpoint_config is not None else {}
        if rank_checksums is not None:
            config = {**config, "distributed": {"world_size": len(rank_checksums), "rank_checksums": rank_checksums}}
        return self.run_dir.save_checkpoint(s.step, config, G.state_dict(), st, extra_files=extra,
                                            keep=self.cfg.keep_checkpoints)

    def _sync_outputs(self) -> None:
        """Before a grid, an evaluation or a checkpoint: average the ranks' batch-norm statistics
        (once per step; averaging equal values again could still move them by rounding)."""
        if self._synced_at != self.state.step:
            self.group.average_buffers(self.state.G, self.state.G_ema, self.state.D)
            self._synced_at = self.state.step

    def _checkpoint(self) -> Optional[Path]:
        """Every rank: check the ranks agree; rank 0: write the checkpoint (others get None)."""
        self._sync_outputs()
        sums = self.group.checksums(self.state.state_dict())
        return self.save(sums) if self.group.is_main else None

    def _sample(self) -> SampleEvent:
        image = self.render(self.sampling_generator())
        path = self.run_dir.write_sample(self.state.step, image) if self.run_dir is not None else None
        return SampleEvent(self.state.step, path, image)

    def _minute_grids(self) -> Iterator[SampleEvent]:
        """The fixed-noise grid for each --grid-minutes mark that training time has passed since the
        last call (marks passed in an earlier segment of a resumed run were written then)."""
        while self._grid_due and self.elapsed() >= self._grid_due[0] * 60:
            minute, at, t0 = self._grid_due.pop(0), self.elapsed(), time.time()
            image = self.render(self.sampling_generator())
            path = None
            if self.run_dir is not None:
                path = self.run_dir.write_minute_grid(minute, image)
                self.run_dir.log({"step": self.state.step, "time": round(at, 3), "grid_minute": minute,
                                  "grid": path.relative_to(self.run_dir.path).as_posix()})
            self._paused_s += time.time() - t0
            yield SampleEvent(self.state.step, path, image)

    # --- the loop -------------------------------------------------------------------------
    # run() is the schedule, each phase a method: agree whether to go on, step, check for
    # divergence, log a window, evaluate, save minute grids, sample, checkpoint; then finish.
    def run(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Event]:
        """Train to cfg.iters (or a stop, the time limit, a divergence), yielding events.

        `should_stop` is polled between generator steps only, so a stop waits for the current
        step to finish and the checkpoint it leaves resumes exactly."""
        cfg, s = self.cfg, self.state
        loop = self._start_loop()
        s.G.train()
        s.D.train()
        try:
            while s.step < cfg.iters:
                seconds = self._agree_to_go_on(loop, should_stop)
                if loop.reason != "finished":
                    break
                stats = self.step(seconds)
                eval_due = self._eval_due(loop, seconds)
                if self._diverged(loop, stats):
                    break
                yield from self._log_window(loop, stats)
                if self.evaluate is not None and eval_due:
                    yield from self._evaluate_now()
                if self.group.is_main:  # rank 0's clock, its batch norm as it is (no collective waits on it)
                    yield from self._minute_grids()
                if self.render is not None and cfg.sample_every and s.step % cfg.sample_every == 0:
                    yield from self._sample_now()
                if loop.saving and cfg.save_every and s.step % cfg.save_every == 0:
                    yield from self._save_now(loop)
            if loop.reason != "diverged":
                yield from self._finish(loop)
        finally:
            if self.run_dir is not None:
                self.run_dir.close()
        yield DoneEvent(s.step, loop.reason, self.run_dir.path if self.run_dir is not None else None,
                        loop.last_ckpt, loop.message)

    def _start_loop(self) -> "_Loop":
        s, run, group = self.state, self.run_dir, self.group
        self._segment_start = t_start = self._clock()
        self._grid_due = sorted(m for m in self.grid_minutes if m * 60 > s.elapsed) if self.render else []
        last_ckpt = run.latest_checkpoint() if run is not None else None
        last_saved = s.step if last_ckpt is not None else -1
        # What rank 0 will write decides which steps every rank averages buffers and checksums on.
        saving, last_saved = group.broadcast_object((run is not None, last_saved))
        self._synced_at = -1
        # --eval-minutes marks, on the agreed clock so that every rank evaluates on the same step.
        period = self.cfg.eval_minutes * 60
        next_eval = (math.floor(s.elapsed / period) + 1) * period if period else math.inf
        return _Loop(t_start=t_start, t_window=t_start, saving=saving, last_ckpt=last_ckpt, last_saved=last_saved,
                     eval_period=period, next_eval=next_eval)

    def _agree_to_go_on(self, loop: "_Loop", should_stop: Callable[[], bool]) -> float:
        """Between generator steps: a stop asked of any rank, or its clock, stops them all here.
        The clock is rank 0's: the one its log, its paused evaluations and --max-minutes count.
        Returns the agreed seconds of this segment; sets loop.reason when the run ends."""
        code, seconds = self.group.agree(STOP if should_stop() else GO, self._clock() - loop.t_start)
        if not code and self.cfg.max_minutes is not None and seconds >= self.cfg.max_minutes * 60:
            code = TIME_LIMIT
        if code:
            loop.reason = "stopped" if code == STOP else "time limit"
        return seconds

    def _eval_due(self, loop: "_Loop", seconds: float) -> bool:
        """Every --eval-every steps, and after the first step to start past each --eval-minutes mark
        (`seconds`: the ranks' agreed time before the step, so they all evaluate at the same step)."""
        s = self.state
        due = bool(self.cfg.eval_every) and s.step % self.cfg.eval_every == 0
        if s.elapsed + seconds >= loop.next_eval:
            due = True
            loop.next_eval = (math.floor((s.elapsed + seconds) / loop.eval_period) + 1) * loop.eval_period
        return due

    def _diverged(self, loop: "_Loop", stats: dict[str, float]) -> bool:
        loop.steps_window += 1
        if all(math.isfinite(v) for v in stats.values()):
            return False
        bad = ", ".join(k for k, v in stats.items() if not math.isfinite(v))
        loop.reason = "diverged"
        loop.message = (f"non-finite {bad} at step {self.state.step}; kept the last good checkpoint "
                        f"({loop.last_ckpt or 'none'}). Lower --lr or raise --lambda-gp and retry")
        return True

    def _log_window(self, loop: "_Loop", stats: dict[str, float]) -> Iterator[Event]:
        """Average the step stats over a --log-every window; log and yield them at its end."""
        cfg, s = self.cfg, self.state
        for k, v in stats.items():
            loop.window.setdefault(k, []).append(v)
        if not ((cfg.log_every and s.step % cfg.log_every == 0) or s.step == cfg.iters):
            return
        now = self._clock()
        rate = loop.steps_window / max(now - loop.t_window, 1e-9)
        loop.t_window, loop.steps_window = now, 0
        metrics = {k: sum(v) / len(v) for k, v in loop.window.items()}
        loop.window = {}
        elapsed = self.elapsed()
        if self.run_dir is not None:
            self.run_dir.log({"step": s.step, "time": round(elapsed, 3), "steps_per_s": round(rate, 4),
                              **{k: round(v, 6) for k, v in metrics.items()}})
        yield StepEvent(s.step, cfg.iters, metrics, elapsed, rate)

    def _evaluate_now(self) -> Iterator[Event]:
        """Quality metrics of the sampling generator; the clock stops while they are measured."""
        self._sync_outputs()
        if not self.group.is_main:
            return
        t_eval = time.time()
        values = self.evaluate(self.sampling_generator())
        took = time.time() - t_eval
        self._paused_s += took
        if self.run_dir is not None:
            self.run_dir.log({"step": self.state.step, "time": round(self.elapsed(), 3),
                              **{f"eval/{k}": v for k, v in values.items()}, "eval/seconds": round(took, 3)})
        yield MetricEvent(self.state.step, values)

    def _sample_now(self) -> Iterator[Event]:
        self._sync_outputs()
        if self.group.is_main:
            yield self._sample()

    def _save_now(self, loop: "_Loop") -> Iterator[Event]:
        loop.last_ckpt, loop.last_saved = self._checkpoint(), self.state.step
        if self.group.is_main:
            yield CheckpointEvent(self.state.step, loop.last_ckpt)

    def _finish(self, loop: "_Loop") -> Iterator[Event]:
        """After a normal end, a stop or the time limit: the last checkpoint and sample grid."""
        s = self.state
        if loop.saving and loop.last_saved != s.step:
            yield from self._save_now(loop)
        if self.render is not None and (not self.cfg.sample_every or s.step % self.cfg.sample_every):
            yield from self._sample_now()


@dataclass
class _Loop:
    """What one call of Trainer.run keeps between its phases."""

    t_start: float
    t_window: float  # when the current log window began
    saving: bool  # rank 0 writes a run directory (agreed by every rank)
    last_ckpt: Optional[Path]
    last_saved: int  # the step of the last checkpoint on disk, -1 for none
    eval_period: float  # --eval-minutes in seconds (0 = off)
    next_eval: float  # the next --eval-minutes mark, in seconds of training
    steps_window: int = 0
    window: dict = field(default_factory=dict)  # stat name -> values since the last log
    reason: str = "finished"
    message: str = ""


def _png(image: np.ndarray) -> bytes:
    from .images import png_bytes

    return png_bytes(image)
