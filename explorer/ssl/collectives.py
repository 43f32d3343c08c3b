"""What a training step needs to know about the other processes it trains with.

A ``Team`` is this process's place in a process group: its rank, the number of processes and its
device. The methods and the trainer ask ``current()`` and use the collectives here (``gather``,
``sum_over_ranks``, ``GlobalBatchNorm``), which do nothing when a process trains alone. Starting
the processes is ``explorer.ssl.distributed``'s job, which imports the trainer; this module never
does, so methods and trainer depend on it alone.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

TIMEOUT = datetime.timedelta(minutes=30)  # a collective waits this long for a rank (rank 0's kNN, a checkpoint)

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
def membership(rank: int, size: int, device: torch.device, store: dist.Store | None) -> Iterator[Team]:
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
