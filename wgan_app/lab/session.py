"""One Lab run: a 2-D generator, its critic, an objective and optimisers, stepped on demand.

`LabRun` wraps the project's `Trainer` (the same critic/generator updates that train MNIST) and
adds what the Lab shows: settings that change between steps, the curves of the critic's
estimate against the exact W1, mode coverage, the critic's field and the generator's
gradients, weight and gradient histograms. A run is capped in steps (MAX_STEPS) so a visitor's
forgotten tab cannot train forever.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import threading
from copy import deepcopy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch

from ..errors import UserError
from ..objectives import BCEGAN, WGANGP, Objective, Scores, WGANClip
from ..trainer import Trainer
from ..validation import as_float, as_int, in_range
from . import measures, toy
from .nets import PointCritic, PointGenerator, seeded_init

if TYPE_CHECKING:  # drawing is imported where a panel is made, not at start-up
    from .render import PanelData

MAX_STEPS = 20_000  # generator steps a Lab run may take; the Lab says so when one stops there
N_EVAL = 256  # points in the exact-W1 and mode-coverage measurements (Hungarian: ~10 ms at 256)
# A new measurement (exact W1 + modes) at most every MEASURE_EVERY steps while training: the
# O(N^3) assignment was a third of a refresh's cost, and 200 points on a 2,000-step curve are plenty.
# A paused run stepped by the buttons is measured at every step (LabRun.view(fresh=True)).
MEASURE_EVERY = 10
# A fast-forward draws nothing, so no refresh measures the runs: they measure themselves every
# SKIP_MEASURE_EVERY steps (LabRun.steps), and the exact-W1 curve and rho are whole when the
# panels draw again. Sparser than MEASURE_EVERY: a measurement (~12 ms) costs the GAN as much as
# ~70 of its steps.
SKIP_MEASURE_EVERY = 25
GRID = 40  # the critic's heatmap is evaluated on GRID x GRID points, then upscaled by the renderer
N_ARROWS = 40  # generated points that get a gradient arrow

OBJECTIVES = {"gan": "GAN (BCE)", "wgan": "WGAN, clipping", "wgan-gp": "WGAN-GP"}
OPTIMIZERS = ("adam", "rmsprop", "sgd")
# Settings that change the networks or the data: applying them restarts the run.
RESTART_FIELDS = ("dataset", "depth", "width", "z_dim", "batch_norm", "seed")


@dataclass(frozen=True)
class LabSettings:
    """A Lab run's settings. The Trainer reads its config fields duck-typed from here."""

    objective: str = "wgan-gp"
    dataset: str = "8gaussians"
    optimizer: str = "adam"
    lr: float = 1e-3
    n_critic: int = 5  # both WGAN papers' n_critic
    clip_value: float = 0.01  # Arjovsky et al.'s c
    lambda_gp: float = 10.0  # Gulrajani et al.'s lambda
    # 3 hidden layers of 64 in G and D: with 2, the BCE GAN covered all 8 Gaussians on 5 seeds of
    # 5 by 2,000 steps and claim 3 was invisible; with 3 it drops modes on 3 of 5 seeds
    # (bench/lab_modes.py, docs/lab.md). Unrolled GAN / VEEGAN use similar small ReLU MLPs.
    depth: int = 3  # hidden layers of G and of D
    width: int = 64
    batch_size: int = 256
    z_dim: int = 2
    batch_norm: bool = False  # in the critic only (claim 5)
    # Seed 4 by default, the first view: of seeds 0-4 it is the one on which the first minute after
    # Run (bench_lab.py --first-minute, four times on two cores with the browser) showed claim 2
    # (WGAN-GP's rho +0.52 to +0.65, the GAN's loss -0.08 to -0.16) and WGAN-GP covering at least
    # as many modes as the GAN (7-8 of 8 against 3-7); by 2,000 steps the GAN has dropped modes
    # there (4 of 8 on 2,500 points), as on seeds 1 and 3, and covers all 8 on 0 and 2 (docs/lab.md).
    # Seed 3, the previous default, drops most (3 of 8) but showed no claim 2 in the first minute.
    seed: int = 4
    # Trainer config fields the Lab fixes
    critic_warmup: bool = False
    lr_decay_from: float = 1.0
    iters: int = MAX_STEPS
    max_minutes: None = None
    ema: float = 0.0
    amp: bool = False

    @property
    def beta1(self) -> float:  # Adam: the WGAN-GP paper's (0.5, 0.9) for critics, DCGAN's (0.5, 0.999) for the GAN
        return 0.5

    @property
    def beta2(self) -> float:
        return 0.999 if self.objective == "gan" else 0.9

    def checked(self) -> "LabSettings":
        """These settings with numbers coerced; a one-line UserError naming the first bad field."""
        if self.objective not in OBJECTIVES:
            raise UserError(f"objective must be one of: {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"optimiser must be one of: {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        toy.get_dataset(self.dataset)
        lr = as_float(self.lr, "learning rate")
        if not 0 < lr <= 1:
            raise UserError(f"learning rate must be in (0, 1], got {lr}")
        c = as_float(self.clip_value, "clip value c")
        if not 0 < c <= 10:
            raise UserError(f"clip value c must be in (0, 10], got {c}")
        lam = as_float(self.lambda_gp, "lambda")
        if not 0 <= lam <= 1000:
            raise UserError(f"lambda must be between 0 and 1000, got {lam}")
        return dataclasses.replace(
            self, lr=lr, clip_value=c, lambda_gp=lam,
            n_critic=in_range(as_int(self.n_critic, "n_critic"), "n_critic", 1, 20),
            depth=in_range(as_int(self.depth, "depth"), "depth", 1, 4),
            width=in_range(as_int(self.width, "width"), "width", 4, 256),
            batch_size=in_range(as_int(self.batch_size, "batch size"), "batch size", 8, 1024),
            z_dim=in_range(as_int(self.z_dim, "noise dimension"), "noise dimension", 1, 16),
            seed=in_range(as_int(self.seed, "seed"), "seed", 0, 2**31 - 1),
            batch_norm=bool(self.batch_norm))

    def replace(self, **changes) -> "LabSettings":
        return dataclasses.replace(self, **changes)


# The three default runs: each method's paper optimiser, on the same data, seed, nets and budget.
# GAN: Adam 1e-3, beta1 0.5, one D step per G step (the 8-Gaussians setting of the mode-collapse
# papers). WGAN-GP: Adam (0.5, 0.9), n_critic 5, at 5e-4: at 1e-3 one seed of five wandered
# with W1 > 1 and no mode covered for 2,000 steps; at 5e-4 all five covered 8 of 8 (lab_modes.py).
# Clipping: RMSprop, n_critic 5, the paper's c = 0.01 (with it the 64-wide critic is weak: claim 4).
PRESETS: dict[str, LabSettings] = {
    "gan": LabSettings(objective="gan", optimizer="adam", lr=1e-3, n_critic=1),
    "wgan": LabSettings(objective="wgan", optimizer="rmsprop", lr=1e-3, n_critic=5),
    "wgan-gp": LabSettings(objective="wgan-gp", optimizer="adam", lr=5e-4, n_critic=5),
}


def make_objective(s: LabSettings) -> Objective:
    """The project's objective for a Lab setting (the same classes that train MNIST)."""
    if s.objective == "wgan":
        return WGANClip(clip_value=s.clip_value)
    if s.objective == "wgan-gp":
        return WGANGP(lambda_gp=s.lambda_gp)
    return BCEGAN()


def make_optimizer(s: LabSettings, params) -> torch.optim.Optimizer:
    """The run's optimiser, fused / foreach: a toy net has only 2 * (depth + 1) small tensors, so the
    default per-tensor loop (about 7 kernel launches per tensor) cost more than the maths; one fused
    update is about a tenth of a critic step cheaper (bench/bench_lab.py). MNIST's Trainer keeps its own."""
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, betas=(s.beta1, s.beta2), fused=True)
    if s.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=s.lr, foreach=True)
    return torch.optim.SGD(params, lr=s.lr, fused=True)


@dataclass
class Measurement:
    step: int
    w1: float  # exact W1 between N_EVAL generated and N_EVAL real points
    modes: Optional[int]  # covered modes (mixtures only)
    of: Optional[int]
    high_quality: Optional[float]


class LabRun:
    """One run. Not thread-safe by itself: the caller holds the workspace's lock around every call
    but `record`, which a refresh calls after letting that lock go (it has a lock of its own)."""

    def __init__(self, settings: LabSettings):
        self._measured_lock = threading.Lock()  # `measured`: views record into it without the workspace's lock
        self.epoch = -1  # restarts so far (reset() counts them): a view of an earlier epoch records nothing
        self.settings = settings.checked()
        self._pending: Optional[LabSettings] = None
        self.reset()

    # --- building and changing ------------------------------------------------------------
    def reset(self) -> None:
        """Fresh networks and optimisers from the seed; curves cleared."""
        s = self.settings
        self.data = toy.get_dataset(s.dataset)
        with seeded_init(s.seed):
            G = PointGenerator(s.z_dim, s.width, s.depth)
            D = PointCritic(s.width, s.depth, s.batch_norm)
        self.trainer = Trainer(s, G, D, make_objective(s), self.data)
        self._new_optimizers()
        self.critic_updates = 0
        self.history: dict[str, list[float]] = {k: [] for k in ("step", "loss_d", "loss_g", "wasserstein")}
        with self._measured_lock:
            self.measured: list[Measurement] = []
            self.epoch += 1
        # Fixed evaluation points: the same real sample and the same noise at every measurement,
        # so the curves move only because the generator does. A second real sample gives the
        # sampling floor of the exact W1 (two samples of the *same* distribution are not at 0).
        self.x_eval = toy.sample_np(self.data, N_EVAL, s.seed + 101)  # (N_EVAL, 2)
        self.w1_floor = measures.exact_w1(self.x_eval, toy.sample_np(self.data, N_EVAL, s.seed + 102))
        self.z_eval = torch.randn(N_EVAL, s.z_dim, generator=torch.Generator().manual_seed(s.seed + 103))
        self.last_critic_stats: dict[str, float] = {}

    def update(self, settings: LabSettings) -> str:
        """Queue new settings; they apply at the next step (checked now). Returns what will happen."""
        new = settings.checked()
        self._pending = new if new != self.settings else None
        if self._pending is None:
            return ""
        changed = [f for f in RESTART_FIELDS if getattr(new, f) != getattr(self.settings, f)]
        return f"{', '.join(changed)} changed: the run restarts" if changed else "applies at the next step"

    def _apply_pending(self) -> None:
        new, self._pending = self._pending, None
        if new is None:
            return
        old, self.settings = self.settings, new
        if any(getattr(new, f) != getattr(old, f) for f in RESTART_FIELDS):
            self.reset()
            return
        self.trainer.retune(new, make_objective(new))
        if (new.optimizer, new.objective) != (old.optimizer, old.objective):  # another update rule / betas
            self._new_optimizers()
        if new.objective == "wgan" and old.objective != "wgan":  # clipping starts now, not next update
            self.trainer.objective.after_critic_update(self.trainer.state.D)

    def _new_optimizers(self) -> None:
        """The Lab's own (fused) optimisers for the current settings, from the next update."""
        G, D = self.trainer.state.G, self.trainer.state.D
        self.trainer.replace_optimizers(make_optimizer(self.settings, G.parameters()),
                                        make_optimizer(self.settings, D.parameters()))

    # --- stepping -------------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.trainer.state.step

    @property
    def finished(self) -> bool:
        return self.step >= MAX_STEPS

    def critic_step(self) -> dict[str, float]:
        """One critic update (the step count stays): the Lab's "one critic step" button."""
        self._apply_pending()
        self.trainer.apply_lr()
        stats = {k: float(v) for k, v in self.trainer.critic_step().items()}
        self.critic_updates += 1
        self.last_critic_stats = stats
        return stats

    def generator_step(self) -> dict[str, float]:
        """One generator update against the current critic (logged with the last critic stats)."""
        self._apply_pending()
        if self.finished:
            return {}
        self.trainer.apply_lr()
        stats = {**self.last_critic_stats, **{k: float(v) for k, v in self.trainer.generator_step().items()}}
        self._log(stats)
        return stats

    def steps(self, n: int, measure_every: Optional[int] = None) -> int:
        """Up to n whole steps (n_critic critic updates + one generator update each); how many ran.
        With `measure_every` (a fast-forward) the run also measures itself that often."""
        done = 0
        for _ in range(n):
            self._apply_pending()
            if self.finished:
                break
            stats = self.trainer.step()
            self.critic_updates += self.settings.n_critic
            self.last_critic_stats = {k: v for k, v in stats.items() if k != "loss_g"}
            self._log(stats)
            done += 1
            if measure_every and self.step - (self.measured[-1].step if self.measured else 0) >= measure_every:
                self.measure()
        return done

    def _log(self, stats: dict[str, float]) -> None:
        h = self.history
        h["step"].append(self.step)
        for k in ("loss_d", "loss_g", "wasserstein"):
            h[k].append(stats.get(k, math.nan))
        if len(h["step"]) > 4000:  # keep the curves cheap to draw: thin the older half
            for k in h:
                h[k] = h[k][:2000:2] + h[k][2000:]

    # --- what the panels show -------------------------------------------------------------
    def view(self, fresh: bool = False, copy: bool = True) -> "RunView":
        """What this run's panel needs, as it is now. With `copy` (a refresh, under the workspace's
        lock) the networks and curves are copied, ~8 ms for three runs, so the measuring (the
        exact W1's assignment alone is ~14 ms a run) and drawing happen after the lock is let go
        while the run trains on: measured under the lock, a refresh held it ~25-35 ms and the
        training thread waited 13 % of its time; with copies 3-4 % (docs/lab.md#speed). `fresh`:
        measure now, not every MEASURE_EVERY steps (a button's single step). Without `copy` the
        view reads the live networks: for callers that hold the run throughout (benches, tests)."""
        st = self.trainer.state
        h = self.history
        return RunView(
            run=self, epoch=self.epoch, step=self.step, settings=self.settings, data=self.data,
            objective=self.trainer.objective, x_eval=self.x_eval, z_eval=self.z_eval, w1_floor=self.w1_floor,
            G=copy_module(st.G) if copy else st.G, D=copy_module(st.D) if copy else st.D,
            history={k: list(v) for k, v in h.items()} if copy else h,
            measured=list(self.measured), grad_norms=self.grad_norms(), finished=self.finished, fresh=fresh)

    # --- trained elsewhere: the fast-forward's worker processes (fastforward.py) ------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_measured_lock"]  # a lock does not pickle; the copy gets its own
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._measured_lock = threading.Lock()

    def for_worker(self) -> bytes:
        """This run pickled for a worker, its queued settings applied first so that the copy and
        the run agree on them (which may restart it: read `epoch` and `step` after this)."""
        self._apply_pending()
        return pickle.dumps(self)

    def adopt(self, trained: bytes, epoch: int, step: int) -> bool:
        """Take the training state of a copy of this run (`for_worker` at `step` of restart `epoch`)
        that a worker trained on: networks, optimisers, random generators, curves. Refused (False)
        when this run moved meanwhile (restarted, or stepped here); settings queued meanwhile stay
        queued. `trained` comes from this server's own worker, never from a visitor."""
        if epoch != self.epoch or step != self.step:
            return False
        other = pickle.loads(trained)
        self.trainer, self.critic_updates = other.trainer, other.critic_updates
        self.history, self.last_critic_stats = other.history, other.last_critic_stats
        for m in other.measured:  # what it measured there (steps(measure_every=...))
            self.record(m, epoch)
        return True

    def record(self, m: "Measurement", epoch: int) -> None:
        """Keep a measurement a view made (after the lock was let go): dropped when the run was
        restarted since (another epoch) or a newer one was kept meanwhile (two refreshes at once)."""
        with self._measured_lock:
            if epoch != self.epoch or (self.measured and self.measured[-1].step >= m.step):
                return
            self.measured.append(m)
            if len(self.measured) > 2000:
                self.measured = self.measured[:1000:2] + self.measured[1000:]

    def fake_points(self) -> np.ndarray:
        """(N_EVAL, 2) generated points from the fixed evaluation noise."""
        return self.view(copy=False).fake_points()

    def measure(self, fresh: bool = False) -> "Measurement":
        """Exact W1 to the fixed real sample and mode coverage (see RunView.measure)."""
        return self.view(fresh, copy=False).measure()

    def tracking(self) -> Optional[float]:
        """Spearman correlation of the critic's curve with the exact W1 (see RunView.tracking)."""
        return self.view(copy=False).tracking()

    def weights(self) -> np.ndarray:
        """Every weight of the critic's linear layers, flat."""
        return self.view(copy=False).weights()

    def penalty_grad_norms(self) -> np.ndarray:
        """||grad D(x_hat)|| at random interpolates (see RunView.penalty_grad_norms)."""
        return self.view(copy=False).penalty_grad_norms()

    def grad_norms(self) -> list[float]:
        """||dL_D/dW|| of each critic linear layer after the last critic update (input first)."""
        D = self.trainer.state.D
        return [float(m.weight.grad.norm()) if m.weight.grad is not None else 0.0 for m in D.linear_layers()]


def copy_module(m: torch.nn.Module) -> torch.nn.Module:
    """A detached copy of a small network (weights and buffers; no gradients, no autograd history)."""
    with torch.no_grad():
        out = deepcopy(m)
    for p in out.parameters():
        p.grad = None
    return out


@dataclass
class RunView:
    """One run as a panel shows it at one step (LabRun.view): its networks (copies, or the live
    ones), curves and fixed evaluation points. Measures what the panel draws; the exact-W1
    measurement goes back to the run (LabRun.record) for its curve."""

    run: "LabRun"
    epoch: int  # the run's restart count when the view was taken
    step: int
    settings: LabSettings
    data: toy.ToyData
    objective: Objective
    x_eval: np.ndarray  # (N_EVAL, 2) the fixed real sample
    z_eval: torch.Tensor  # (N_EVAL, z_dim) the fixed noise
    w1_floor: float
    G: torch.nn.Module
    D: torch.nn.Module
    history: dict[str, list[float]]
    measured: list[Measurement]
    grad_norms: list[float]
    finished: bool
    fresh: bool = False
    _fake: Optional[np.ndarray] = None

    @torch.no_grad()
    def fake_points(self) -> np.ndarray:
        """(N_EVAL, 2) generated points from the fixed evaluation noise (once per view: the measure,
        the scatter and the arrows all ask for them)."""
        if self._fake is None:
            was = self.G.training
            self.G.eval()
            self._fake = self.G(self.z_eval).numpy()
            self.G.train(was)
        return self._fake

    def measure(self) -> Measurement:
        """Exact W1 to the fixed real sample and mode coverage. Reuses the run's last measurement
        unless the step moved by MEASURE_EVERY (or at all, with `fresh`); a new one is recorded."""
        last = self.measured[-1] if self.measured else None
        if last is not None and (last.step == self.step
                                 or (not self.fresh and 0 <= self.step - last.step < MEASURE_EVERY)):
            return last
        x = self.fake_points()
        w1 = measures.exact_w1(x, self.x_eval)
        modes = of = hq = None
        if self.data.is_mixture:
            cov = measures.mode_coverage(x, self.data.centres, self.data.sigma)
            modes, of, hq = cov["modes"], cov["of"], cov["high_quality"]
        m = Measurement(self.step, w1, modes, of, hq)
        self.measured.append(m)
        self.run.record(m, self.epoch)
        return m

    def tracking(self) -> Optional[float]:
        """Spearman correlation over this run of the critic's estimate (the BCE discriminator's
        loss for the GAN, which estimates no distance) with the exact W1 measurements."""
        curve = self.history["wasserstein" if self.settings.objective != "gan" else "loss_d"]
        return measures.tracking(self.history["step"], curve, [m.step for m in self.measured],
                                 [m.w1 for m in self.measured])

    def critic_field(self, extent: float = toy.EXTENT) -> np.ndarray:
        """D on a GRID x GRID lattice over [-extent, extent]^2, row 0 at the top: (GRID, GRID)."""
        t = torch.linspace(-extent, extent, GRID)
        yy, xx = torch.meshgrid(-t, t, indexing="ij")  # y falls down the rows, as on screen
        pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)  # (GRID*GRID, 2)
        D = self.D
        with torch.no_grad():
            D.eval()  # batch norm: running statistics, so the field does not depend on the lattice
            score, _ = D(pts)
            D.train()
        return score.reshape(GRID, GRID).numpy()

    def generator_arrows(self) -> tuple[np.ndarray, np.ndarray]:
        """N_ARROWS generated points (N, 2) and the direction the generator's loss moves each,
        -dL_G/dx (N, 2): where the critic is pushing the samples."""
        x = torch.from_numpy(self.fake_points()[:N_ARROWS]).requires_grad_(True)
        D = self.D
        D.eval()
        with torch.enable_grad():
            score, _ = D(x)
            loss, _ = self.objective.generator_terms(None, Scores(score, None))
            (grad,) = torch.autograd.grad(loss, x)
        D.train()
        D.requires_grad_(True)
        return x.detach().numpy(), -grad.numpy() * len(x)  # undo the mean over the batch

    def weights(self) -> np.ndarray:
        """Every weight of the critic's linear layers, flat (for the clipping histogram)."""
        return torch.cat([m.weight.detach().reshape(-1) for m in self.D.linear_layers()]).numpy()

    def penalty_grad_norms(self) -> np.ndarray:
        """||grad D(x_hat)|| (B,) at random interpolates of a real and a generated batch, as the
        gradient penalty sees them (training mode: with batch norm the batch is part of D)."""
        B = min(self.settings.batch_size, 256)
        g = torch.Generator().manual_seed(self.step)
        real = toy.sample(self.data, B, g)
        with torch.no_grad():
            fake = self.G(torch.randn(B, self.settings.z_dim, generator=g))
        eps = torch.rand(B, 1, generator=g)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        bns = [m for m in self.D.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        for m in bns:
            m.momentum = 0.0  # look without moving the running statistics (of the live run's critic)
        with torch.enable_grad():
            score, _ = self.D(x_hat)
            (grad,) = torch.autograd.grad(score.sum(), x_hat)
        for m in bns:
            m.momentum = 0.1
        self.D.requires_grad_(True)
        return grad.norm(dim=1).numpy()


def panel_data(view: RunView, title: str) -> "PanelData":
    """What a run's panel shows, from its view (LabRun.view): arrays and lists of its own, so it
    can be measured and drawn without the run's lock."""
    from .render import PanelData

    m = view.measure()
    s = view.settings
    status = f"step {view.step:,} | W1 {m.w1:.3f}"
    if m.modes is not None:  # high quality: the share of samples within 3 sigma of a mode
        status += f" | modes {m.modes}/{m.of} | {m.high_quality:.0%} near one"
    rho = view.tracking()  # claim 2: does the critic's curve rank the run's moments as the exact W1 does?
    note = "" if rho is None else f"rho({'W estimate' if s.objective != 'gan' else 'D loss'}, W1) {rho:+.2f}"
    if view.finished:
        status += " | step cap reached"
    arrows_from, arrows_dir = view.generator_arrows()
    h = view.history
    return PanelData(
        title=title, real=view.x_eval, fake=view.fake_points(), field=view.critic_field(),
        # copies of the curves: the panel may be drawn while the training thread appends to them
        arrows_from=arrows_from, arrows_dir=arrows_dir, steps=list(h["step"]), loss_d=list(h["loss_d"]),
        w_estimate=list(h["wasserstein"]), w1_steps=[x.step for x in view.measured],
        w1=[x.w1 for x in view.measured], w1_floor=view.w1_floor, status=status, weights=view.weights(),
        grad_norms=view.grad_norms, gp_norms=view.penalty_grad_norms() if s.objective == "wgan-gp" else None,
        clip_value=s.clip_value if s.objective == "wgan" else None, note=note)


def run_title(s: LabSettings) -> str:
    """A panel's title line: the objective and what distinguishes it."""
    # "lambda", not the Greek letter: PIL's default font has no glyph for it
    extra = {"wgan": f" c={s.clip_value:g}", "wgan-gp": f" lambda={s.lambda_gp:g}", "gan": ""}[s.objective]
    bn = " +BN" if s.batch_norm else ""
    return f"{OBJECTIVES[s.objective]}{extra}{bn} | {s.optimizer} {s.lr:g} | n_critic {s.n_critic}"
