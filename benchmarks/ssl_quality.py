"""Quality of every SSL method within a fixed budget, beside raw pixels and an untrained backbone.

For each collection (``digits``: the demo handwritten digits; ``shapes``: shape is the class,
colour, size and position are nuisances; see ``ssl_data.py``), decoded from PNG files on disk at
32 px: leave-one-out kNN accuracy (k=20, cosine) and linear-probe accuracy of

- raw pixels and the untrained backbones (baselines, measured in the same run on the same images);
- each method trained with the default recipe (``TrainConfig`` defaults, ``backbone=auto``) for a
  budget of CPU seconds of this process (``--budget-cpu-s``; 240 = 2 minutes of both cores of an
  idle 2-core machine). CPU time rather than wall time, because the machine is shared.

    nice -n 10 .venv/bin/python benchmarks/ssl_quality.py [--collections digits shapes]
        [--methods simclr moco ...] [--budget-cpu-s 240] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssl_data import cpu_clock, load_collection  # noqa: E402


def score(rows: list, name: str, vectors, labels, note: str = "") -> None:
    """Append (name, kNN@20, linear probe, note) to ``rows`` and print it."""
    from explorer.ssl.evaluate import knn_accuracy, linear_probe_accuracy

    rows.append((name, knn_accuracy(vectors, labels, k=20), linear_probe_accuracy(vectors, labels), note))
    print(f"  {name:<28} kNN {rows[-1][1]:.3f}  linear {rows[-1][2]:.3f}  {note}", flush=True)


def main() -> None:
    from explorer.ssl.catalog import METHODS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="+", default=["digits", "shapes"], choices=["digits", "shapes"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--budget-cpu-s", type=float, default=240.0, help="training budget per method")
    parser.add_argument(
        "--epochs", type=int, default=200, help="upper bound on epochs (the budget usually stops first)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from explorer.ssl.backbones import resolve_backbone
    from explorer.ssl.encoder import load_encoder, untrained_encoder
    from explorer.ssl.evaluate import pixel_features
    from explorer.ssl.methods import method_class
    from explorer.ssl.trainer import TrainConfig, train

    torch.set_num_threads(2)  # the target machine: two CPU cores
    print(f"budget {args.budget_cpu_s:.0f} CPU-s per method (= {args.budget_cpu_s / 120:.1f} min on 2 idle cores)")
    for collection in args.collections:
        with tempfile.TemporaryDirectory() as tmp:
            images, labels = load_collection(collection, Path(tmp))
        rows: list[tuple[str, float, float, str]] = []

        print(f"{collection}: {len(images)} images, {len(set(labels))} classes, 32 px")
        score(rows, "raw pixels", pixel_features(images), labels)
        backbones = sorted({resolve_backbone("auto", "cpu", method_class(m).preferred_backbone) for m in args.methods})
        for backbone in backbones:
            vectors = untrained_encoder(backbone, 32, seed=args.seed, device="cpu").embed(images)
            score(rows, f"untrained {backbone}", vectors, labels)
        baseline = max(r[1] for r in rows)
        for method in args.methods:
            config = TrainConfig(
                method=method, epochs=args.epochs, max_minutes=args.budget_cpu_s / 60, device="cpu", seed=args.seed
            )
            with tempfile.TemporaryDirectory() as tmp:
                wall, cpu = time.perf_counter(), cpu_clock()
                result = train(images, config, Path(tmp), clock=cpu_clock)
                wall, cpu = time.perf_counter() - wall, cpu_clock() - cpu
                encoder = load_encoder(result.checkpoint, device="cpu")
                vectors = encoder.embed(images)
            note = (
                f"{encoder.name}, {result.epochs_done} epochs, {cpu:.0f} CPU-s / {wall:.0f} s wall, "
                f"final loss {result.history[-1]['loss']:.3f}"
                if result.history
                else "no epoch finished"
            )
            score(rows, method, vectors, labels, note)

        print(f"\n{collection}: kNN@20 (cosine) and linear probe; ratio = kNN / best baseline kNN ({baseline:.3f})")
        print(f"| {'embedding':<22} | kNN@20 | linear | ratio | notes |")
        print(f"|{'-' * 24}|-------:|-------:|------:|-------|")
        for name, knn, linear, note in rows:
            print(f"| {name:<22} | {knn:.3f} | {linear:.3f} | {knn / baseline:.3f} | {note} |")
        print(flush=True)


if __name__ == "__main__":
    main()
