"""Label propagation on the demo digits (1,797 handwritten digits).

Two feature sets, the same for every method: ``pixels8`` (scikit-learn's 8x8 images, 64-d) and
``demo32`` (the demo collection as the app embeds it with ``--encoder pixels``: the PNGs written
by ``explorer.demo.write_demo``, 32x32 RGB, centred and L2-normalised, 3,072-d). For 1, 3 and 10
seeds per class, 5 random draws each, prints the accuracy on the unseeded images of: our graph
diffusion (explorer.labels.propagate on the FAISS cosine kNN graph), the same plus pseudo-label
rounds (explorer.labels.rounds, ``--rounds``), scikit-learn ``LabelSpreading(kernel="knn")``
(its defaults), and 1-nearest-seed (cosine), with the ratio of our best to the best baseline.
Also prints how accuracy tracks our confidence, and the time per propagation.

Run: ``python benchmarks/propagation_digits.py [--features pixels8 demo32] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.semi_supervised import LabelSpreading

from explorer.labels.propagate import propagate
from explorer.labels.rounds import pseudo_label_rounds
from explorer.neighbours.knn import knn_graph, normalise_rows


def demo_pixels() -> tuple[np.ndarray, np.ndarray]:
    """(1797, 3072) features of the demo PNGs as ``explorer embed --encoder pixels`` makes them, and labels."""
    import csv
    import tempfile
    from pathlib import Path

    from explorer.demo import write_demo
    from explorer.images.decode import load_rgb_array
    from explorer.workflow import PIXEL_SIZE, pixel_vectors

    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp))
        with open(demo.truth, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        images = np.stack([load_rgb_array(demo.images / r["path"], PIXEL_SIZE) for r in rows])
    return pixel_vectors(images), np.array([int(r["label"]) for r in rows])


def draw_seeds(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """(N,) int64: the true class at ``per_class`` random rows of each class, -1 elsewhere."""
    seeds = np.full(len(y), -1, np.int64)
    for c in np.unique(y):
        rows = rng.choice(np.flatnonzero(y == c), size=per_class, replace=False)
        seeds[rows] = c
    return seeds


def nearest_seed(x_unit: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """(N,) class of each row's most cosine-similar seed."""
    rows = np.flatnonzero(seeds >= 0)
    return seeds[rows][(x_unit @ x_unit[rows].T).argmax(axis=1)]


def run(features: str, x: np.ndarray, y: np.ndarray, args) -> list[tuple[np.ndarray, np.ndarray]]:
    """Print one table for one feature set; returns (confidence, correct) per draw of ours+rounds."""
    x_unit = normalise_rows(x)
    t0 = time.perf_counter()
    graph = knn_graph(x, k=args.k)
    t_graph = time.perf_counter() - t0
    print(f"\n{features}: {len(x)} images, {x.shape[1]}-d; kNN graph k={args.k} in {t_graph * 1e3:.0f} ms")
    print(f"ours: neighbours={args.neighbours} alpha={args.alpha} power={args.power} iterations={args.iterations}")
    print(
        f"{'seeds/class':>11} | {'ours':>13} | {'ours+rounds':>13} | {'LabelSpreading':>14} | {'1-NN seed':>13} | "
        f"{'best ours/best other':>20} | {'ms':>5} | {'ms+rounds':>9}"
    )
    print("-" * 124)
    calib = []
    for per_class in (1, 3, 10):
        ours, rounds, spread, nn1, times, times_r = [], [], [], [], [], []
        for draw in range(args.draws):
            rng = np.random.default_rng(1000 * per_class + draw)
            seeds = draw_seeds(y, per_class, rng)
            test = seeds < 0
            t0 = time.perf_counter()
            result = propagate(
                graph,
                seeds,
                10,
                alpha=args.alpha,
                power=args.power,
                iterations=args.iterations,
                neighbours=args.neighbours,
            )
            times.append(time.perf_counter() - t0)
            refined = pseudo_label_rounds(x, result, seeds, args.rounds)
            times_r.append(time.perf_counter() - t0)
            ours.append((result.predicted[test] == y[test]).mean())
            rounds.append((refined.predicted[test] == y[test]).mean())
            calib.append((refined.confidence[test], refined.predicted[test] == y[test]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # the same k and alpha as ours (its defaults are 7 and 0.2)
                ls = LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.99).fit(x, seeds)
            spread.append((ls.transduction_[test] == y[test]).mean())
            nn1.append((nearest_seed(x_unit, seeds)[test] == y[test]).mean())
        o, r, s, n = (np.array(v) for v in (ours, rounds, spread, nn1))
        best = max(s.mean(), n.mean())
        print(
            f"{per_class:>11} | {o.mean():.3f} ± {o.std():.3f} | {r.mean():.3f} ± {r.std():.3f} | "
            f"{s.mean():.3f} ± {s.std():.3f} | {n.mean():.3f} ± {n.std():.3f} | "
            f"{max(o.mean(), r.mean()) / best:>20.2f} | {np.mean(times) * 1e3:>5.1f} | {np.mean(times_r) * 1e3:>9.0f}"
        )
    return calib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", nargs="+", default=["pixels8", "demo32"], choices=["pixels8", "demo32"])
    parser.add_argument("--k", type=int, default=15, help="graph neighbours (the app builds k=15 for the map)")
    parser.add_argument("--neighbours", type=int, default=10, help="of which propagation uses")
    parser.add_argument("--power", type=float, default=3.0)
    parser.add_argument("--alpha", type=float, default=0.99)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="pseudo-label rounds for the 'ours+rounds' column")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    calib = []
    for features in args.features:
        if features == "pixels8":
            x, y = load_digits(return_X_y=True)
            x = x.astype(np.float32)
        else:
            x, y = demo_pixels()
        calib += run(features, x, y, args)
    conf = np.concatenate([c for c, _ in calib])
    right = np.concatenate([r for _, r in calib])
    edges = np.quantile(conf, [0, 0.25, 0.5, 0.75, 1.0])
    print("\nours+rounds: accuracy by confidence quartile (all feature sets and draws pooled):")
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf >= lo) & (conf <= hi)
        print(f"  confidence {lo:.2f}-{hi:.2f}: accuracy {right[sel].mean():.3f} ({sel.sum()} rows)")


if __name__ == "__main__":
    main()
