"""Training on several processes with torch.distributed (DistributedDataParallel).

A ``Team`` is this process's place in a process group: its rank, the number of processes and its
device. ``explorer train --nproc N`` makes one: this process becomes rank 0 and starts N - 1
peer processes on localhost (``launch``); under ``torchrun`` every process joins from the
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
  enqueues the keys of every rank; MoCo's key encoder runs every shuffled key group on each rank's
  rows of it, so BatchNorm normalises the whole group over the ranks.

Without a team (one process) none of this runs: ``gather`` returns its input.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from explorer.jobs import Cancelled, CancelToken, ProgressFn, no_progress
from explorer.ssl import collectives, trainer
from explorer.ssl.collectives import TIMEOUT, Team, launched_by_torchrun, membership, rank_device
from explorer.ssl.devices import pick_device

LOCALHOST = "127.0.0.1"
STARTUP_POLL_S = 0.5


def train(
    images: np.ndarray,
    config: trainer.TrainConfig,
    out_dir: Path,
    resume: bool = False,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    **options,
) -> trainer.TrainResult:
    """``trainer.train`` on ``config.processes`` processes started here (or torchrun's), as rank 0;
    in this process alone when there is one. ``options`` go to ``trainer.train`` (initial_encoder,
    on_epoch, clock, supervision: one process only)."""
    if collectives.current() is None and (config.processes > 1 or launched_by_torchrun()):
        if options.get("supervision") is not None:
            raise ValueError("fine-tuning with labels runs in one process; leave out --nproc")
        with team_for(config.processes, pick_device(config.device)) as team:
            job = {"images": images, "config": asdict(config), "out_dir": str(out_dir), "resume": resume}
            share_job(team, {**job, "initial_encoder": options.get("initial_encoder")})
            return trainer.train(images, config, out_dir, resume, progress, cancel, **options)
    return trainer.train(images, config, out_dir, resume, progress, cancel, **options)


def follow_from_env(device: str) -> None:
    """A torchrun rank other than 0: join, train what rank 0 sends, leave."""
    with join_from_env(pick_device(device)) as team:
        follow(team)


@contextmanager
def join_from_env(device: torch.device) -> Iterator[Team]:
    """Join the group torchrun set up (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)."""
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = rank_device(device, int(os.environ.get("LOCAL_RANK", rank)), size)
    with membership(rank, size, local, None) as team:
        yield team


@contextmanager
def launch(size: int, device: torch.device) -> Iterator[Team]:
    """Start ``size - 1`` peer processes on this machine and form a team with them as rank 0.

    The peers wait for the job (``share_job``) and train it. On the way out they are joined; a
    peer that failed makes this raise RuntimeError naming it; on an error here they are stopped.
    """
    import multiprocessing

    local = rank_device(device, 0, size)
    store = dist.TCPStore(LOCALHOST, 0, size, is_master=True, timeout=TIMEOUT, wait_for_workers=False)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked threads or CUDA state
    peers = [
        context.Process(target=_peer_main, args=(rank, size, store.port, device.type), name=f"explorer-train-{rank}")
        for rank in range(1, size)
    ]
    for peer in peers:
        peer.start()
    try:
        _wait_for_peers(store, peers)
        with membership(0, size, local, store) as team:
            yield team
    except BaseException as exc:
        _stop(peers, grace_s=5)
        broken = _failures(peers)
        # A peer that died first shows up here as a lost connection: name it instead.
        if broken and isinstance(exc, dist.DistError):
            raise RuntimeError(f"training process failed: {broken}; its error is printed above") from exc
        raise
    _stop(peers, grace_s=60)
    broken = _failures(peers)
    if broken:
        raise RuntimeError(f"training process failed: {broken}; its error is printed above")


def _stop(peers: list, grace_s: float) -> None:
    """Join the peers; terminate those still running after ``grace_s`` (stuck in a collective)."""
    for peer in peers:
        peer.join(timeout=grace_s)
        if peer.is_alive():
            peer.terminate()
            peer.join()


def _failures(peers: list) -> str:
    return ", ".join(f"{h.name} (exit code {h.exitcode})" for h in peers if h.exitcode not in (None, 0))


def _wait_for_peers(store: dist.Store, peers: list) -> None:
    """Block until every peer said it is ready; RuntimeError as soon as one died first."""
    keys = [f"explorer/ready/{h.name}" for h in peers]
    deadline = time.monotonic() + TIMEOUT.total_seconds()
    while not store.check(keys):
        dead = _failures(peers) or ", ".join(h.name for h in peers if not h.is_alive())
        if dead:
            raise RuntimeError(f"training process failed to start: {dead}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"training processes did not start within {TIMEOUT}")
        time.sleep(STARTUP_POLL_S)


def _peer_main(rank: int, size: int, port: int, device_type: str) -> None:
    """Entry point of a peer process started by ``launch``: join, train rank 0's job, leave."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches rank 0, which tells everyone to stop
    store = dist.TCPStore(LOCALHOST, port, size, is_master=False, timeout=TIMEOUT)
    store.set(f"explorer/ready/explorer-train-{rank}", "1")
    try:
        with membership(rank, size, rank_device(torch.device(device_type), rank, size), store) as team:
            follow(team)
    except BaseException as exc:
        if isinstance(exc, Cancelled | trainer.NonFiniteLoss):  # agreed with rank 0, which reports it
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
    job = share_job(team, None)
    trainer.train(
        job["images"],
        trainer.TrainConfig(**job["config"]),
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
