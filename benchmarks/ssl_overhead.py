"""Trainer overhead: images/s of ``explorer.ssl.trainer.train`` vs a bare hand-written loop.

Same model (small-cnn), method (SimCLR, same views via ``make_views``), batch size (256), optimiser
(AdamW), data (the demo digits, 32 px, in memory) and number of steps. The trainer adds the LR
schedule, the non-finite check, a progress report per step, the cancel check and an atomic
checkpoint per epoch. Each side runs twice, alternating; the faster run of each counts. Throughput
is measured both in wall time and in CPU time of this process (the machine is shared: CPU time is
the steadier of the two). Target: ratio >= 0.9.

    nice -n 10 .venv/bin/python benchmarks/ssl_overhead.py [--epochs 2] [--method simclr]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssl_data import cpu_clock, load_collection  # noqa: E402


def bare_loop(images, method_name: str, epochs: int, batch: int, seed: int) -> tuple[int, float, float]:
    """(images seen, wall s, CPU s) of the simplest correct loop over the same work."""
    import torch

    from explorer.ssl.augment import is_grayscale, to_batch
    from explorer.ssl.backbones import make_backbone
    from explorer.ssl.methods import make_method

    torch.manual_seed(seed)
    backbone, dim = make_backbone("small-cnn", images.shape[1])
    method = make_method(method_name, backbone, dim, image_size=images.shape[1], dataset_size=len(images))
    optimizer = torch.optim.AdamW(method.trainable_parameters(), lr=method.base_lr)
    recipe = method.recipe(images.shape[1], is_grayscale(images))
    data = to_batch(images).contiguous()
    generator = torch.Generator().manual_seed(seed)
    steps = len(images) // batch
    method.train()
    wall, cpu = time.perf_counter(), cpu_clock()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for i in range(steps):
            x = data[order[i * batch : (i + 1) * batch]]
            loss = method.forward_loss(*method.make_views(x, recipe, generator))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            method.after_step((epoch * steps + i + 1) / (epochs * steps))
    return epochs * steps * batch, time.perf_counter() - wall, cpu_clock() - cpu


def our_trainer(images, method_name: str, epochs: int, batch: int, seed: int) -> tuple[int, float, float]:
    from explorer.ssl.trainer import TrainConfig, train

    config = TrainConfig(
        method=method_name, backbone="small-cnn", epochs=epochs, batch_size=batch, device="cpu", seed=seed
    )
    config.image_size = images.shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), cpu_clock()
        train(images, config, Path(tmp), progress=lambda report: None)
        wall, cpu = time.perf_counter() - wall, cpu_clock() - cpu
    return epochs * (len(images) // batch) * batch, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        images, _ = load_collection("digits", Path(tmp))
    best = {"bare loop": (0.0, 0.0), "explorer trainer": (0.0, 0.0)}
    for repeat in range(args.repeats):
        for name, run in (("bare loop", bare_loop), ("explorer trainer", our_trainer)):
            seen, wall, cpu = run(images, args.method, args.epochs, args.batch_size, seed=repeat)
            rate = (seen / wall, seen / cpu)
            best[name] = (max(best[name][0], rate[0]), max(best[name][1], rate[1]))
            print(
                f"  run {repeat + 1} {name:<17} {seen / wall:7.1f} img/s wall  {seen / cpu:7.1f} img/CPU-s", flush=True
            )
    bare, ours = best["bare loop"], best["explorer trainer"]
    print(f"\n{args.method}, small-cnn, batch {args.batch_size}, {len(images)} digits at 32 px, {args.epochs} epochs")
    print("| loop | img/s (wall) | img/CPU-s |")
    print("|---|---:|---:|")
    print(f"| bare hand-written loop | {bare[0]:.1f} | {bare[1]:.1f} |")
    print(f"| explorer trainer | {ours[0]:.1f} | {ours[1]:.1f} |")
    print(f"| ratio trainer / bare | {ours[0] / bare[0]:.3f} | {ours[1] / bare[1]:.3f} |")


if __name__ == "__main__":
    main()
