"""Distributed training: 2 gloo CPU processes vs 1 process, same data, seed and global batch.

Trains SimCLR (small-cnn, 32 px, the demo digits) with ``processes=1`` and ``processes=2``,
alternating, and prints the training throughput of each (images per second of wall time over the
epochs, from the trainer's own history, so process start-up is shown apart) and their ratio, and
how closely the two runs' per-step losses agree (relative difference; the runs draw the same
batches and augmentations, and BatchNorm and the negatives span the global batch).

    nice -n 10 .venv/bin/python benchmarks/ssl_ddp.py [--epochs 2] [--batch-size 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssl_data import load_collection  # noqa: E402


def one_run(images: np.ndarray, processes: int, args, out: Path) -> dict:
    from explorer.ssl.distributed import train
    from explorer.ssl.trainer import TrainConfig

    config = TrainConfig(
        method=args.method,
        backbone="small-cnn",
        device="cpu",
        epochs=args.epochs,
        image_size=32,
        batch_size=args.batch_size,
        processes=processes,
    )
    losses: list[float] = []
    started, cpu = time.perf_counter(), _cpu_seconds()
    result = train(images, config, out, progress=lambda r: r.loss is not None and losses.append(r.loss))
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    seconds = sum(h["seconds"] for h in result.history)
    trained = len(result.history) * (len(images) // result.batch_size) * result.batch_size
    return {
        "losses": np.array(losses),
        "img_s": trained / seconds,
        "wall": wall,
        "train_s": seconds,
        "cpu": cpu,
        "img_cpu_s": trained / cpu,
    }


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the peer training processes), all threads."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        images, _ = load_collection("digits", Path(tmp) / "data", size=32)
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for repeat in range(args.repeats):
            for processes in (1, 2) if repeat % 2 == 0 else (2, 1):
                run = one_run(images, processes, args, Path(tmp) / f"run-{repeat}-{processes}")
                runs[processes].append(run)
                print(
                    f"repeat {repeat + 1}, {processes} process(es): {run['img_s']:.1f} img/s while training, "
                    f"{run['train_s']:.1f} s training, {run['wall']:.1f} s wall with start-up, "
                    f"{run['cpu']:.1f} CPU-s ({run['img_cpu_s']:.1f} img/CPU-s)",
                    flush=True,
                )
        # How far float rounding alone moves a run: the same single process with 1 thread instead of
        # several (other summation order), the yardstick for the 2-process drift below.
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        reference = one_run(images, 1, args, Path(tmp) / "one-thread")["losses"]
        torch.set_num_threads(threads)

    best = {p: max(r["img_s"] for r in rs) for p, rs in runs.items()}
    best_cpu = {p: max(r["img_cpu_s"] for r in rs) for p, rs in runs.items()}
    startup = {p: min(r["wall"] - r["train_s"] for r in rs) for p, rs in runs.items()}
    alone, together = runs[1][0]["losses"], runs[2][0]["losses"]
    relative = np.abs(together - alone) / np.abs(alone)
    print(
        f"\n{args.method}, small-cnn, {len(images)} digits at 32 px, global batch {args.batch_size}, {args.epochs} epochs"
    )
    print(f"| processes | img/s while training (best of {args.repeats}) | img/CPU-s | set-up + start-up s |")
    print("|---|---:|---:|---:|")
    for p in (1, 2):
        print(f"| {p} | {best[p]:.1f} | {best_cpu[p]:.1f} | {startup[p]:.1f} |")
    print(f"ratio 2 processes / 1 process: wall {best[2] / best[1]:.3f}, CPU {best_cpu[2] / best_cpu[1]:.3f}")
    print(
        f"loss match over {len(relative)} steps: step 1 relative difference {relative[0]:.1e}, "
        f"max {relative.max():.1e}, median {np.median(relative):.1e}; "
        f"final loss {alone[-1]:.4f} (1 process) vs {together[-1]:.4f} (2 processes)"
    )
    drift = np.abs(reference - alone) / np.abs(alone)
    print(
        f"yardstick, 1 process with 1 thread vs several: step 1 {drift[0]:.1e}, max {drift.max():.1e}, "
        f"median {np.median(drift):.1e}"
    )
    print("relative difference by step (2 processes):", " ".join(f"{d:.0e}" for d in relative))
    print("relative difference by step (1 thread):   ", " ".join(f"{d:.0e}" for d in drift))
    same = all(np.array_equal(r["losses"], runs[1][0]["losses"]) for r in runs[1])
    print(f"1-process repeats give identical losses: {same}")


if __name__ == "__main__":
    main()
