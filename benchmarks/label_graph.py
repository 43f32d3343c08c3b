"""The graph labels propagate through: the embedding's kNN graph against kNN graphs in UMAP spaces.

For each suite collection (raw-pixel embeddings, as ``explorer embed --encoder pixels`` makes them,
or ``--vectors FILE.npz`` with arrays ``v`` (N, D) and ``y`` (N,)) it builds the cosine kNN graph
and, in the same run:

- diffusion on that graph (what propagation used before: k=10, weights s^3);
- diffusion on UMAP's fuzzy graph of the same neighbours (local scaling, no new space);
- diffusion on the kNN graph of UMAP spaces of 2, 8 and 16 dimensions fitted on the FAISS graph
  (``explorer.labels.space``: Gaussian weights, k neighbours);

and prints pseudo-label accuracy from 1 / 3 / 10 random seeds a class (mean of ``--draws``
draws; unseeded items, an unreached one counts as wrong) and the seconds to build each graph.

Run: ``nice python benchmarks/label_graph.py [--collections mnist handwriting] [--draws 5]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.collections import SUITE, make  # noqa: E402
from benchmarks.collections._common import read_truth  # noqa: E402
from explorer.labels.propagate import Diffusion  # noqa: E402
from explorer.neighbours.knn import KnnGraph, knn_graph  # noqa: E402


def pixel_vectors_of(name: str, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw-pixel vectors (as the product makes them, 32 px) and class indices of a suite collection."""
    from explorer.images.decode import load_rgb_array
    from explorer.workflow import PIXEL_SIZE, pixel_vectors

    made = make(name, work)
    rows = read_truth(made.truth)
    names = sorted({label for _, label in rows})
    images = np.stack([load_rgb_array(made.images / path, PIXEL_SIZE) for path, _ in rows])
    return pixel_vectors(images), np.array([names.index(label) for _, label in rows])


def seeded(solver: Diffusion, y: np.ndarray, per_class: int, draws: int) -> float:
    classes, scores = int(y.max()) + 1, []
    for draw in range(draws):
        rng = np.random.default_rng(draw)
        seeds = np.full(len(y), -1)
        for c in range(classes):
            rows = np.flatnonzero(y == c)
            seeds[rng.choice(rows, min(per_class, len(rows)), replace=False)] = c
        result = solver.run_apart(seeds, classes)
        rest = seeds < 0
        scores.append(float((result.predicted[rest] == y[rest]).mean()))
    return float(np.mean(scores))


def fuzzy_solver(x: np.ndarray, graph: KnnGraph, k: int) -> Diffusion:
    """Diffusion on UMAP's fuzzy simplicial set of the first k neighbours (its own weights)."""
    import scipy.sparse as sp
    from umap.umap_ import fuzzy_simplicial_set

    from explorer.labels.affinity import normalised

    ids = np.ascontiguousarray(graph.indices[:, : k + 1], np.int64)
    dist = np.clip(1.0 - graph.similarities[:, : k + 1], 0.0, 2.0).astype(np.float32)
    dist[:, 0] = 0.0
    weights, _, _ = fuzzy_simplicial_set(x[:, :2], k + 1, 0, "cosine", knn_indices=ids, knn_dists=dist)
    solver = Diffusion(KnnGraph(ids, graph.similarities[:, : k + 1], "fuzzy", None), neighbours=None)
    system = sp.identity(len(x), format="csr") - solver.alpha * normalised(weights.tocsr())
    solver.system = system.tocsr().astype(np.float32)
    return solver


def main() -> None:
    from explorer.labels.space import label_space

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="+", default=["mnist", "handwriting"], choices=SUITE)
    parser.add_argument("--vectors", type=Path, default=None, help="FILE.npz with v (N, D) and y (N,) instead")
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("| collection | graph | 1 / 3 / 10 seeds a class | build s |\n|---|---|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        sources = [(args.vectors.name, args.vectors)] if args.vectors else [(name, None) for name in args.collections]
        for name, path in sources:
            if path is None:
                x, y = pixel_vectors_of(name, Path(tmp))
            else:
                data = np.load(path)
                x, y = data["v"].astype(np.float32), data["y"]
            started = time.perf_counter()
            graph = knn_graph(x, k=30)
            base = time.perf_counter() - started
            candidates = {"embedding kNN, k=10, s^3": lambda g=graph: Diffusion(g)}
            candidates["UMAP fuzzy graph, k=15"] = lambda g=graph, x=x: fuzzy_solver(x, g, 15)
            for dims in (2, 8, 16):
                candidates[f"UMAP {dims}-d, k=20"] = lambda g=graph, d=dims, x=x: Diffusion(
                    label_space(x, g, dimensions=d)[1], power=1.0, neighbours=None
                )
            for label, build in candidates.items():
                started = time.perf_counter()
                solver = build()
                seconds = base + time.perf_counter() - started
                cells = " / ".join(f"{seeded(solver, y, k, args.draws):.3f}" for k in (1, 3, 10))
                print(f"| {name} | {label} | {cells} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
