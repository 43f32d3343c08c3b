"""Compiling the training step on a CPU (``torch.compile``) against eager, on the default path.

First, in one process, the step itself: SimCLR's loss, forward and backward, with the small CNN at
32 px and the CPU batch of 64 pairs (bf16 where the CPU has it natively), eager and compiled,
the median of ``--steps`` steps each after the first few, and the seconds compiling took.
Then, for each suite collection given, the default command-line path (``scan``, ``train
--max-minutes M``, ``embed``, ``map``) twice on fresh copies of the same images, one after the
other in this run: with ``EXPLORER_COMPILE=0`` (eager, as before) and with the default (compiled
once the first steps show that enough training is left). Reported per run: epochs done, training
images a second, kNN@20 of the encoder against the true labels (``explorer evaluate``) and
pseudo-label accuracy from 1 / 3 / 10 random seeds a class (mean of ``--draws`` draws).

Run: ``nice python benchmarks/compile_step.py --collections mnist-cluttered [--minutes 10]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.collections import SUITE, make  # noqa: E402
from benchmarks.labelling_effort import path_figures, report_row  # noqa: E402
from explorer.ssl.backbones import make_backbone  # noqa: E402
from explorer.ssl.compiled import COMPILE_VARIABLE  # noqa: E402
from explorer.ssl.devices import training_autocast  # noqa: E402
from explorer.ssl.methods import make_method  # noqa: E402


def step_times(steps: int, compiled: bool) -> dict:
    """Median seconds of a SimCLR step (views made outside the timing), and the first step's."""
    torch.manual_seed(0)
    backbone, dim = make_backbone("small-cnn", 32)
    method = make_method("simclr", backbone, dim, image_size=32, dataset_size=5000)
    optimizer = torch.optim.AdamW(method.parameters(), lr=1e-3)
    recipe = method.recipe(32, False)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    loss_of = torch.compile(method.forward_loss) if compiled else method.forward_loss
    dtype = training_autocast(torch.device("cpu"))
    times = []
    for _ in range(steps + 5):
        views = method.make_views(images, recipe, generator)
        tick = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype) if dtype is not None else nullcontext():
            loss = loss_of(*views)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - tick)
    return {"first_s": round(times[0], 2), "median_ms": round(1000 * statistics.median(times[5:]), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="*", default=["mnist-cluttered"], choices=SUITE)
    parser.add_argument("--minutes", type=float, default=10.0, help="`explorer train --max-minutes`")
    parser.add_argument("--steps", type=int, default=40, help="steps timed for the step itself")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="JSON lines with every figure")
    args = parser.parse_args()
    for compiled in (False, True):
        report_row({"step": "compiled" if compiled else "eager", **step_times(args.steps, compiled)}, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.collections:
            made = make(name, Path(tmp) / "made")
            for compiled in (False, True):
                environment = {} if compiled else {COMPILE_VARIABLE: "0"}
                folder = Path(tmp) / f"{name}-{int(compiled)}"
                figures = path_figures(
                    made.images, made.truth, folder, args.minutes, args.draws, environment=environment
                )
                report_row({"collection": name, "compiled": compiled, **figures}, args.out)


if __name__ == "__main__":
    main()
