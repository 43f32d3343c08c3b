"""Clusters on the map: Leiden on the label graph (ours) against HDBSCAN, on real collections and at scale.

Part 1, quality (``--collections``): each suite collection embedded as raw pixels (as
``explorer embed --encoder pixels`` does), its kNN graph (k=15) and label space as ``explorer map``
makes them; then in the same run
- ours: Leiden (igraph) on the label-space graph at ``RESOLUTION``;
- Leiden on the embedding's own kNN graph (at ``EMBEDDING_RESOLUTION``);
- HDBSCAN (scikit-learn) on the 8-d label space, excess-of-mass and leaf selection;
- HDBSCAN on the 2-D map (UMAP), what tools that cluster their projection do (Embedding Atlas);
and prints the clusters found, the share of images in a cluster, purity (the share of images in
their cluster's majority class: what "label cluster" gets right) and the adjusted Rand index
against the true classes.

Part 2, time (``--rows``): Gaussian blobs (30 classes) in 8-d, their L2 kNN graph with the label
space's Gaussian weights (what the label space hands over); Leiden on it against HDBSCAN on the
same points (only up to ``--hdbscan-max`` rows: it is quadratic in memory/time beyond).

Run: ``nice python benchmarks/clusters.py [--collections mnist handwriting unbalanced] [--rows 100000 1000000]``
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.collections import SUITE  # noqa: E402
from benchmarks.label_graph import pixel_vectors_of  # noqa: E402
from explorer.labels.space import _l2_neighbours, label_space  # noqa: E402
from explorer.neighbours.knn import KnnGraph, knn_graph  # noqa: E402
from explorer.projection.clusters import EMBEDDING_RESOLUTION, RESOLUTION, by_size, find_clusters  # noqa: E402


def purity(clusters: np.ndarray, truth: np.ndarray) -> float:
    inside = clusters >= 0
    if not inside.any():
        return 0.0
    table = np.zeros((clusters.max() + 1, truth.max() + 1), np.int64)
    np.add.at(table, (clusters[inside], truth[inside]), 1)
    return float(table.max(axis=1).sum() / len(truth))


def hdbscan(points: np.ndarray, method: str, min_size: int) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    found = HDBSCAN(min_cluster_size=min_size, cluster_selection_method=method).fit_predict(points)
    return by_size(found, min_size=1)


def row(name: str, clusters: np.ndarray, truth: np.ndarray, seconds: float) -> str:
    from sklearn.metrics import adjusted_rand_score

    k = int(clusters.max()) + 1 if (clusters >= 0).any() else 0
    return (
        f"| {name} | {k} | {np.mean(clusters >= 0):.2f} | {purity(clusters, truth):.3f} | "
        f"{adjusted_rand_score(truth, clusters):.3f} | {seconds:.2f} |"
    )


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def quality(names: list[str]) -> None:
    from explorer.projection.umap_layout import umap_raw

    print("| collection: method | clusters | in a cluster | purity | ARI | s |\n|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            x, y = pixel_vectors_of(name, Path(tmp))
            graph = knn_graph(x, k=15)
            z, label_graph = label_space(x, graph)
            xy = umap_raw(x, graph, 15, 0.1, 0, components=2)
            min_size = max(5, len(x) // 200)
            runs = [
                ("Leiden, label graph (ours)", find_clusters, (label_graph, RESOLUTION)),
                ("Leiden, embedding kNN graph", find_clusters, (graph, EMBEDDING_RESOLUTION)),
                ("HDBSCAN eom, label space", hdbscan, (z, "eom", min_size)),
                ("HDBSCAN leaf, label space", hdbscan, (z, "leaf", min_size)),
                ("HDBSCAN eom, 2-D map", hdbscan, (xy, "eom", min_size)),
                ("HDBSCAN leaf, 2-D map", hdbscan, (xy, "leaf", min_size)),
            ]
            for method, fn, args in runs:
                clusters, seconds = timed(lambda fn=fn, args=args: fn(*args))
                print(row(f"{name}: {method}", clusters, y, seconds), flush=True)


def scale(rows: list[int], hdbscan_max: int) -> None:
    print(
        "\n| rows | kNN graph (FAISS, k=20) | Leiden (ours) | clusters | ARI | HDBSCAN eom | its ARI | peak RSS |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    from sklearn.metrics import adjusted_rand_score

    for n in rows:
        rng = np.random.default_rng(0)
        truth = rng.integers(0, 30, n)
        z = (rng.normal(size=(30, 8)) * 4)[truth] + rng.normal(size=(n, 8))
        z = z.astype(np.float32)
        (ids, sq), knn_s = timed(lambda z=z: _l2_neighbours(z, 20, 0))
        graph = KnnGraph(ids, np.exp(-sq / np.median(sq[:, 10])).astype(np.float32), "bench", None)
        found, leiden_s = timed(lambda graph=graph: find_clusters(graph, RESOLUTION))
        ours_ari = adjusted_rand_score(truth, found)
        if n <= hdbscan_max:
            other, other_s = timed(lambda z=z, n=n: hdbscan(z, "eom", max(5, n // 200)))
            theirs = f"{other_s:.1f} s | {adjusted_rand_score(truth, other):.3f}"
        else:
            theirs = "not run | "
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(
            f"| {n:,} | {knn_s:.1f} s | {leiden_s:.1f} s | {found.max() + 1} | {ours_ari:.3f} | {theirs} | "
            f"{peak:.1f} GB |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="*", default=["mnist", "handwriting", "unbalanced"], choices=SUITE)
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--hdbscan-max", type=int, default=100_000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.collections:
        quality(args.collections)
    if args.rows:
        scale(args.rows, args.hdbscan_max)


if __name__ == "__main__":
    main()
