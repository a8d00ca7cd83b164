"""Training on several processes (GPUs or machines) under `torchrun`: the plumbing, in one place.

    group = init_from_env()        # Local() outside torchrun, else a Group over torch.distributed
    trainer = build_trainer(cfg, group=group)

The Trainer calls the same hooks on a `Local` (one process: every hook is the identity, so
single-process training is unchanged to the bit) and on a `Group`:

- `rows(t)`: this rank's rows of a tensor drawn for the *global* batch. `--batch-size` is the
  global batch; rank r trains on rows [r*b, (r+1)*b), b = B / world. Every rank draws the data
  indices, z, the fake labels and the penalty's eps for all B rows from the run's generators
  (seeded from the run seed, identical on every rank) and keeps its own rows. So each rank gets
  its own noise, eps and data, derived from (run seed, rank), and the ranks together draw exactly
  what one process with the same --batch-size draws: the 1-process and N-process runs see the
  same samples, the RNG state in a checkpoint is one state whatever the world size, and a run
  resumes on another number of processes. (The draws cost B random numbers per rank instead of
  B / world: negligible next to a critic pass.)
- `reduce_gradients(net)`: between backward and optimizer.step, each network's gradients are
  flattened into one tensor, all-reduced and divided by the world size, as StyleGAN3's training
  loop does, instead of wrapping G and D in DistributedDataParallel: the critic sees real, fake
  and interpolated batches, and the gradient penalty's double backward
  (`autograd.grad(..., create_graph=True)`) can miss DDP's reduction (pytorch #47562, #63812).
  Every loss is a mean over the batch and the slices are equal, so the average of the ranks'
  gradients is the gradient over the global batch.
- `average(stats)`, `agree(code, seconds)`: the logged losses are the global batch's, and a stop
  (signal, time limit) is decided together between generator steps, so all ranks end on the
  same step.
- `average_buffers(...)`: batch norm normalises with each rank's own B / world samples, so the
  running statistics differ between ranks; they are averaged before a sample grid or a checkpoint.
  (This is also why an N-process run is close to, not equal to, the 1-process run.)
- `on_main(fn)` / `all_ok(fn)`: set-up work that only rank 0 does (the run directory, reading a
  checkpoint) or every rank does (loading data), with a failure anywhere raised everywhere, so
  no rank waits forever for one that already gave up.

A collective that fails (a peer died, or did not answer within WGAN_APP_DIST_TIMEOUT seconds,
default 300) raises `PeerLost` with a one-line message; torchrun also tears the job down when a
worker exits with an error.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import Any, Callable, Optional, TypeVar

import torch
import torch.nn as nn

from .errors import UserError, first_line

T = TypeVar("T")

# Stop codes agreed between generator steps: the largest any rank proposes wins.
GO, STOP, TIME_LIMIT = 0, 1, 2
DEFAULT_TIMEOUT_S = 300  # longer than any rank-0-only work between two collectives (an evaluation, a save)


class PeerLost(RuntimeError):
    """A collective failed: another process of the job died, hung or was killed."""


def env_world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """Rank 0, or not launched by torchrun: the process that speaks (errors, progress bar)."""
    return env_rank() == 0


def state_checksum(state: dict) -> str:
    """sha256 of a training state's weights, optimiser states, RNG states and step (not its
    wall-clock `elapsed`): equal on every rank while they train in lockstep."""
    h = hashlib.sha256()

    def feed(key: str, v: Any) -> None:
        if isinstance(v, dict):
            for k in sorted(v, key=str):
                feed(f"{key}/{k}", v[k])
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                feed(f"{key}/{i}", x)
        elif isinstance(v, torch.Tensor):
            t = v.detach().to("cpu").contiguous()
            h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # the raw bits: -0.0 != 0.0
        else:
            h.update(f"{key}={v!r}".encode())

    feed("", {k: v for k, v in state.items() if k != "elapsed"})
    return h.hexdigest()


class Local:
    """One process: every hook is the identity."""

    rank, world, local_rank = 0, 1, 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        return t

    def stream(self, generator: torch.Generator):
        """What the objective draws the penalty's eps from (losses.uniform)."""
        return generator

    def reduce_gradients(self, net: nn.Module) -> None:
        pass

    def average(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def agree(self, code: int, seconds: float) -> tuple[int, float]:
        return code, seconds

    def average_buffers(self, *nets: Optional[nn.Module]) -> None:
        pass

    def broadcast_modules(self, *nets: Optional[nn.Module]) -> None:
        pass

    def checksums(self, state: dict) -> Optional[list[str]]:
        return None

    def on_main(self, fn: Callable[[], T]) -> T:
        return fn()

    def all_ok(self, fn: Callable[[], T]) -> T:
        return fn()

    def broadcast_object(self, obj: T) -> T:
        return obj

    def check_batch(self, batch_size: int) -> None:
        pass

    def close(self, clean: bool = True) -> None:
        pass


class RankRows:
    """A generator seen through one rank: `rand(size)` draws size[0] * world rows and keeps this
    rank's. losses.uniform accepts it where it takes a torch.Generator."""

    def __init__(self, generator: torch.Generator, group: "Group"):
        self.generator, self.group = generator, group

    def rand(self, size: tuple[int, ...], device) -> torch.Tensor:
        full = torch.rand((size[0] * self.group.world, *size[1:]), device=device, generator=self.generator)
        return self.group.rows(full)


class Group(Local):
    """An initialised default process group (see `init_from_env`). Object collectives (pickles)
    go over gloo, the CPU half of a 'cpu:gloo,cuda:nccl' group, as torch picks "cpu" there."""

    def __init__(self):
        import torch.distributed as dist

        self.dist = dist
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    def rows(self, t):
        if t is None:
            return None
        b = t.shape[0] // self.world
        return t[self.rank * b:(self.rank + 1) * b]

    def stream(self, generator):
        return RankRows(generator, self)

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            lo = batch_size // self.world * self.world
            hint = f"{lo} or {lo + self.world}" if lo else f"{self.world}"
            raise UserError(f"--batch-size {batch_size} does not divide among the {self.world} processes: it is "
                            f"the global batch, split evenly across them; use a multiple of {self.world} "
                            f"(e.g. {hint})")

    def reduce_gradients(self, net: nn.Module) -> None:
        params = [p for p in net.parameters() if p.grad is not None and p.numel() > 0]
        if not params:
            return
        flat = torch.cat([p.grad.flatten() for p in params])  # (sum of numel,)
        self._call("a gradient all-reduce", self.dist.all_reduce, flat)
        flat /= self.world
        for p, g in zip(params, flat.split([p.numel() for p in params])):
            p.grad = g.view_as(p)

    def average(self, t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        self._call("the loss average", self.dist.all_reduce, t)
        return t / self.world

    def agree(self, code: int, seconds: float) -> tuple[int, float]:
        """The largest stop code any rank proposes, and rank 0's clock: the one its log, its paused
        evaluations and --max-minutes count, so every rank takes one lr and stops on one step.
        A CPU tensor: no GPU sync."""
        t = torch.tensor([float(code), seconds if self.rank == 0 else 0.0], dtype=torch.float64)  # MAX: rank 0's
        self._call("the stop agreement", self.dist.all_reduce, t, op=self.dist.ReduceOp.MAX)
        return int(t[0].item()), float(t[1].item())

    @torch.no_grad()
    def average_buffers(self, *nets) -> None:
        """Average every floating-point buffer (batch norm's running mean and var) across ranks.
        Integer buffers (num_batches_tracked) are equal on every rank already."""
        bufs = [b for net in nets if net is not None for b in net.buffers() if b.is_floating_point()]
        if not bufs:
            return
        flat = torch.cat([b.flatten().float() for b in bufs])
        self._call("the batch-norm statistics average", self.dist.all_reduce, flat)
        flat /= self.world
        for b, v in zip(bufs, flat.split([b.numel() for b in bufs])):
            b.copy_(v.view_as(b))

    @torch.no_grad()
    def broadcast_modules(self, *nets) -> None:
        """Rank 0's parameters and buffers everywhere: the ranks start from one model."""
        for net in nets:
            if net is None:
                continue
            for t in [*net.parameters(), *net.buffers()]:
                self._call("the start-up broadcast", self.dist.broadcast, t.data, src=0)

    def checksums(self, state: dict) -> list[str]:
        """Every rank's `state_checksum`, gathered on every rank; they must all be equal."""
        mine = state_checksum(state)
        out: list[Any] = [None] * self.world
        self._call("the checkpoint consistency check", self.dist.all_gather_object, out, mine)
        if len(set(out)) != 1:
            bad = [r for r, d in enumerate(out) if d != out[0]]
            raise RuntimeError(f"the processes' weights differ at this checkpoint (ranks {bad} differ from rank 0); "
                               "this is a bug in wgan_app's distributed training")
        return out

    def broadcast_object(self, obj: T) -> T:
        box = [obj if self.rank == 0 else None]
        self._call("a broadcast from rank 0", self.dist.broadcast_object_list, box, src=0)
        return box[0]

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run `fn` on rank 0 only and give every rank its result; a UserError there is raised
        on every rank (rank 0 prints it), so the others do not wait for a rank that gave up."""
        result, error, failure = None, None, None
        if self.rank == 0:
            try:
                result = fn()
            except UserError as e:
                error = str(e)
            except BaseException as e:  # a bug: rank 0 re-raises it with its traceback below
                error, failure = f"rank 0 failed during set-up ({first_line(e)})", e
        result, error = self.broadcast_object((result, error))
        if failure is not None:
            raise failure
        if error is not None:
            raise UserError(error)
        return result

    def all_ok(self, fn: Callable[[], T]) -> T:
        """Run `fn` on every rank; if any rank raised a UserError, every rank raises the first one."""
        result, error = None, None
        try:
            result = fn()
        except UserError as e:
            error = str(e)
        errors: list[Any] = [None] * self.world
        self._call("set-up", self.dist.all_gather_object, errors, error)
        for r, e in enumerate(errors):
            if e is not None:
                raise UserError(e if r == 0 else f"rank {r}: {e}")
        return result

    def _call(self, what: str, collective, /, *args, **kw):
        """Run one collective; a failure (gloo raises a plain RuntimeError when a peer's connection
        resets, DistError on timeouts) becomes PeerLost with a one-line message."""
        try:
            return collective(*args, **kw)
        except RuntimeError as e:
            raise PeerLost(f"rank {self.rank} of {self.world} lost the other processes during {what} "
                           f"({first_line(e, 160)})") from e

    def close(self, clean: bool = True) -> None:
        """Tear the group down. After a normal end all ranks first meet at a barrier: a rank that
        destroys its gloo group while a peer is still sending its last collective can die in C++
        teardown ("terminate called without an active exception", SIGABRT) after a good run.
        After a lost peer there is nobody to meet, so no barrier."""
        if not self.dist.is_initialized():
            return
        if clean:
            try:
                self.dist.barrier()
            except Exception:  # a peer went away after all: tear down anyway
                pass
        self.dist.destroy_process_group()


def timeout_s() -> float:
    raw = os.environ.get("WGAN_APP_DIST_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if not value > 0:
        raise UserError(f"WGAN_APP_DIST_TIMEOUT={raw!r} must be a positive number of seconds")
    return value


def init_from_env() -> Local:
    """A Group when torchrun launched this process with WORLD_SIZE > 1, else Local().

    The backend is 'cpu:gloo,cuda:nccl' when CUDA is present (each collective goes to the backend
    of its tensor's device, so --device cpu on a GPU machine works too) and gloo otherwise. The
    timeout bounds how long a rank waits for a hung peer."""
    if env_world() <= 1:
        return Local()
    import torch.distributed as dist

    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and local_rank < torch.cuda.device_count():
        torch.cuda.set_device(local_rank)  # before nccl meets this process: its GPU, not GPU 0
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s()))
    except (RuntimeError, ValueError) as e:
        raise UserError(f"cannot join the torchrun job as rank {env_rank()} ({first_line(e)}); check "
                        "--rdzv-endpoint / MASTER_ADDR and that every node runs the same command") from None
    return Group()
