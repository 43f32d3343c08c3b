"""Training on several processes with torch.distributed (DistributedDataParallel).

A ``Team`` is this process's place in a process group: its rank, the number of processes and its
device. ``explorer train --nproc N`` makes one: this process becomes rank 0 and starts N - 1
helper processes on localhost (``launch``); under ``torchrun`` every process joins from the
environment it sets (``env://``: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Backend: gloo on
the CPU, nccl on CUDA.

Rank 0 owns everything outside the loop (the project, progress, checkpoints); it sends the job
(images, settings, output folder) to the other ranks, which only train (``follow``). The trainer
keeps the run equal to a single-process run with the same global batch and seed:

- every rank draws the same global batch and the same augmentations from the seeded generator
  and keeps its own contiguous slice of it (``local_views``);
- BatchNorm takes its statistics over the global batch (``GlobalBatchNorm``; on CUDA torch's
  SyncBatchNorm);
- SimCLR contrasts against the projections of every rank (``gather``, differentiable) and MoCo
  enqueues the keys of every rank.

Without a team (one process) none of this runs: ``gather`` returns its input.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

LOCALHOST = "127.0.0.1"
TIMEOUT = datetime.timedelta(minutes=30)  # a collective waits this long for a rank (rank 0's kNN, a checkpoint)
STARTUP_POLL_S = 0.5

# What rank 0 tells the others at the start of each step.
GO, CANCEL, OUT_OF_TIME = 0, 1, 2


@dataclass
class Team:
    """This process's place in the training process group."""

    rank: int
    size: int
    device: torch.device
    model_group: Any  # a second group for the collectives inside forward/backward (BN, gather), apart from DDP's

    @property
    def is_lead(self) -> bool:
        return self.rank == 0

    def from_lead(self, value: int) -> int:
        """Rank 0's ``value`` on every rank (a GO / CANCEL / OUT_OF_TIME decision, an epoch count)."""
        flag = torch.tensor([value], dtype=torch.int64, device=self._wire)
        dist.broadcast(flag, 0)
        return int(flag.item())

    def mean(self, value: torch.Tensor) -> float:
        """The mean over ranks of a scalar tensor (a local loss -> the global batch's loss).

        A NaN or infinity on any rank makes the result non-finite on every rank, so all stop together.
        """
        total = value.detach().float().reshape(1).to(self._wire) / self.size
        dist.all_reduce(total)
        return float(total.item())

    def barrier(self) -> None:
        dist.barrier()

    @property
    def _wire(self) -> torch.device:
        # nccl moves CUDA tensors only; gloo moves CPU tensors
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


_team: Team | None = None


def current() -> Team | None:
    """The team this process trains in, or None when it trains alone."""
    return _team


def world_size() -> int:
    """The number of processes training together (1 alone)."""
    return 1 if _team is None else _team.size


def launched_by_torchrun() -> bool:
    """True when torchrun (or another env:// launcher) started this process as one of several."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_rank_zero_from_env() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def follow_from_env(device: str) -> None:
    """A torchrun rank other than 0: join, train what rank 0 sends, leave."""
    from explorer.ssl.devices import pick_device

    with join_from_env(pick_device(device)) as team:
        follow(team)


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def rank_device(device: torch.device, local_rank: int, size: int) -> torch.device:
    """The device of the process with ``local_rank``: its own GPU on CUDA, the CPU otherwise.

    ValueError when the processes cannot each get a device (too few GPUs, MPS).
    """
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        have = torch.cuda.device_count()
        if have < size:
            raise ValueError(f"{size} training processes need {size} GPUs, this machine has {have}; use --device cpu")
        return torch.device("cuda", local_rank)
    raise ValueError(f"training on several processes runs on CPU or CUDA, not {device.type}")


def _threads_per_process(size: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // size)


@contextmanager
def _membership(rank: int, size: int, device: torch.device, store: dist.Store | None) -> Iterator[Team]:
    """Join the process group as ``rank``; leave it (and forget the team) on the way out."""
    global _team
    backend = backend_for(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    threads = torch.get_num_threads()
    if device.type == "cpu":  # the processes share the cores instead of each taking all of them
        torch.set_num_threads(_threads_per_process(size))
    if store is None:
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=size, timeout=TIMEOUT)
    else:
        dist.init_process_group(backend, store=store, rank=rank, world_size=size, timeout=TIMEOUT)
    try:
        _team = Team(rank, size, device, dist.new_group(backend=backend))
        yield _team
    finally:
        _team = None
        dist.destroy_process_group()
        torch.set_num_threads(threads)


@contextmanager
def join_from_env(device: torch.device) -> Iterator[Team]:
    """Join the group torchrun set up (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)."""
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = rank_device(device, int(os.environ.get("LOCAL_RANK", rank)), size)
    with _membership(rank, size, local, None) as team:
        yield team


@contextmanager
def launch(size: int, device: torch.device) -> Iterator[Team]:
    """Start ``size - 1`` helper processes on this machine and form a team with them as rank 0.

    The helpers wait for the job (``share_job``) and train it. On the way out they are joined; a
    helper that failed makes this raise RuntimeError naming it; on an error here they are stopped.
    """
    import multiprocessing

    local = rank_device(device, 0, size)
    store = dist.TCPStore(LOCALHOST, 0, size, is_master=True, timeout=TIMEOUT, wait_for_workers=False)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked threads or CUDA state
    helpers = [
        context.Process(target=_helper_main, args=(rank, size, store.port, device.type), name=f"explorer-train-{rank}")
        for rank in range(1, size)
    ]
    for helper in helpers:
        helper.start()
    try:
        _wait_for_helpers(store, helpers)
        with _membership(0, size, local, store) as team:
            yield team
    except BaseException as exc:
        _stop(helpers, grace_s=5)
        broken = _failures(helpers)
        # A helper that died first shows up here as a lost connection: name it instead.
        if broken and isinstance(exc, dist.DistError):
            raise RuntimeError(f"training process failed: {broken}; its error is printed above") from exc
        raise
    _stop(helpers, grace_s=60)
    broken = _failures(helpers)
    if broken:
        raise RuntimeError(f"training process failed: {broken}; its error is printed above")


def _stop(helpers: list, grace_s: float) -> None:
    """Join the helpers; terminate those still running after ``grace_s`` (stuck in a collective)."""
    for helper in helpers:
        helper.join(timeout=grace_s)
        if helper.is_alive():
            helper.terminate()
            helper.join()


def _failures(helpers: list) -> str:
    return ", ".join(f"{h.name} (exit code {h.exitcode})" for h in helpers if h.exitcode not in (None, 0))


def _wait_for_helpers(store: dist.Store, helpers: list) -> None:
    """Block until every helper said it is ready; RuntimeError as soon as one died first."""
    keys = [f"explorer/ready/{h.name}" for h in helpers]
    deadline = time.monotonic() + TIMEOUT.total_seconds()
    while not store.check(keys):
        dead = _failures(helpers) or ", ".join(h.name for h in helpers if not h.is_alive())
        if dead:
            raise RuntimeError(f"training process failed to start: {dead}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"training processes did not start within {TIMEOUT}")
        time.sleep(STARTUP_POLL_S)


def _helper_main(rank: int, size: int, port: int, device_type: str) -> None:
    """Entry point of a helper process started by ``launch``: join, train rank 0's job, leave."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches rank 0, which tells everyone to stop
    store = dist.TCPStore(LOCALHOST, port, size, is_master=False, timeout=TIMEOUT)
    store.set(f"explorer/ready/explorer-train-{rank}", "1")
    try:
        with _membership(rank, size, rank_device(torch.device(device_type), rank, size), store) as team:
            follow(team)
    except BaseException as exc:
        from explorer.jobs import Cancelled
        from explorer.ssl.trainer import NonFiniteLoss

        if isinstance(exc, Cancelled | NonFiniteLoss):  # agreed with rank 0, which reports it
            return
        if isinstance(exc, dist.DistError):  # rank 0 stopped (its error says why) or the link broke
            print(f"explorer-train-{rank}: lost the other training processes ({exc})", file=sys.stderr)
        else:
            traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


def share_job(team: Team, job: dict | None) -> dict:
    """Rank 0 sends ``job`` (images, config as a dict, out_dir, resume, initial_encoder); every rank gets it."""
    box = [job if team.is_lead else None]
    dist.broadcast_object_list(box, src=0, device=team._wire)
    return box[0]


def follow(team: Team) -> None:
    """Train rank 0's job as one of the other ranks (no progress, no checkpoints, no project)."""
    from explorer.ssl.trainer import TrainConfig, train

    job = share_job(team, None)
    train(
        job["images"],
        TrainConfig(**job["config"]),
        job["out_dir"],
        resume=job["resume"],
        initial_encoder=job["initial_encoder"],
    )


@contextmanager
def team_for(processes: int, device: torch.device) -> Iterator[Team]:
    """The team to train in: torchrun's when it launched us, else ``processes`` started here."""
    if launched_by_torchrun():
        with join_from_env(device) as team:
            yield team
    else:
        with launch(processes, device) as team:
            yield team


def free_port() -> int:
    """A TCP port on localhost that was free a moment ago (for tests that set MASTER_PORT)."""
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


# ---- collectives inside the model ---------------------------------------------------------
class _GatherRows(torch.autograd.Function):
    """All ranks' (b, ...) tensors stacked in rank order -> (size * b, ...). Backward: every rank's
    loss depends on every slice, so the gradients are summed over ranks and each keeps its rows."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, team: Team) -> torch.Tensor:
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(team.size)]
        dist.all_gather(parts, x, group=team.model_group)
        ctx.team, ctx.rows = team, len(x)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.team.model_group)
        start = ctx.team.rank * ctx.rows
        return grad[start : start + ctx.rows], None


class _SumOverRanks(torch.autograd.Function):
    """Sum of a tensor over ranks; its gradient is the sum of the ranks' gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, team: Team) -> torch.Tensor:
        total = x.clone()
        dist.all_reduce(total, group=team.model_group)
        ctx.team = team
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.team.model_group)
        return grad, None


def gather(x: torch.Tensor) -> torch.Tensor:
    """(b, ...) on each rank -> (size * b, ...), rank 0's rows first; gradients flow back to each
    rank's own rows. Alone: ``x`` itself. Every rank must pass the same number of rows."""
    if _team is None:
        return x
    return _GatherRows.apply(x, _team)


def sum_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """Elementwise sum over ranks (differentiable); alone: ``x`` itself."""
    if _team is None:
        return x
    return _SumOverRanks.apply(x, _team)


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are those of the global batch (every rank's rows).

    Like ``torch.nn.SyncBatchNorm`` but on any device and backend (gloo on the CPU), so a team
    normalises exactly as one process with the whole batch would. Same parameters and buffers as
    the BatchNorm it replaces, so checkpoints load into plain models. Input (B, C, ...).
    """

    def __init__(self, source: _BatchNorm, team: Team) -> None:
        super().__init__(source.num_features, source.eps, source.momentum, source.affine, source.track_running_stats)
        # Take over the very parameters and buffers (their values, device and requires_grad: a
        # momentum encoder's stay frozen).
        for name, value in [*source.named_parameters(recurse=False), *source.named_buffers(recurse=False)]:
            setattr(self, name, value)
        self.train(source.training)
        self.team = team

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected input of shape (B, C, ...), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and self.track_running_stats:
            return super().forward(x)
        self._check_input_dim(x)
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, c] + [1] * (x.dim() - 2)
        xf = x.float()
        # Sums around a shift that every rank shares (the running mean) keep E[x^2] - E[x]^2 accurate.
        shift = self.running_mean.detach().float() if self.track_running_stats else xf.new_zeros(c)
        centred = xf - shift.view(shape)
        count = xf.new_tensor([x.numel() / c])
        stats = _SumOverRanks.apply(torch.cat([centred.sum(dims), centred.pow(2).sum(dims), count]), self.team)
        total = stats[-1]
        mean_c = stats[:c] / total
        var = (stats[c : 2 * c] / total - mean_c.pow(2)).clamp(min=0)
        mean = mean_c + shift
        y = (xf - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.float().view(shape) + self.bias.float().view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var * total / (total - 1).clamp(min=1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        return y.to(x.dtype)


def synchronise_batch_norm(module: nn.Module, team: Team) -> nn.Module:
    """``module`` with every BatchNorm taking global-batch statistics (in place where possible)."""
    if team.device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group=team.model_group)
    if isinstance(module, _BatchNorm):
        return GlobalBatchNorm(module, team)
    for name, child in module.named_children():
        replaced = synchronise_batch_norm(child, team)
        if replaced is not child:
            setattr(module, name, replaced)
    return module
