"""The label space: the graph that labels propagate through.

Neighbours in the raw embedding carry labels poorly where classes touch: a digit's 20 nearest
neighbours in pixel or SSL space include other classes' near-misses, and diffusion follows them.
UMAP (McInnes, Healy & Melville 2018) fitted on the same FAISS graph into a few dimensions pulls
each densely connected region together and pushes regions apart; the nearest neighbours in that
space follow the regions, not the near-misses. So propagation runs on the kNN graph of a
``DIMENSIONS``-d UMAP of the embeddings (Euclidean, Gaussian weights), while the 2-D map and
everything a person browses keep the embedding's own graph.

Measured with benchmarks/label_graph.py (5,000 real MNIST digits, seeds drawn at random, mean of
5 draws), pseudo-label accuracy from 1 / 3 / 10 seeds a class: raw pixels 0.695 / 0.841 / 0.890 on
the embedding graph, 0.815 / 0.905 / 0.929 in an 8-d UMAP (k=20); 2-d (the map itself) 0.670 /
0.867 / 0.895, 16-d no better than 8-d.
"""

from __future__ import annotations

import numpy as np

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.neighbours.knn import KnnGraph

DIMENSIONS = 8
NEIGHBOURS = 20
"""Neighbours per row in the label space (propagation uses all of them, with weights 1)."""
SCALE_RANK = 10
"""The Gaussian's width is the median distance to this neighbour. Half of ``NEIGHBOURS``, so that
a class of about ``NEIGHBOURS`` items (a rare class, a small collection) is not weighed across:
at the 20th neighbour the width spanned the gap to the next class. Measured on raw pixels
(1 / 3 / 10 seeds a class): unbalanced 0.437 / 0.490 / 0.609 at rank 20, 0.442 / 0.507 / 0.627 at
10; MNIST and handwriting within 0.006 either way."""
BRIDGE_NEIGHBOURS = 10
"""Neighbours a row keeps from the graph the label space was fitted on, as the propagation's bridge
(``explorer.labels.propagate.BRIDGE_WEIGHT``)."""
UMAP_NEIGHBOURS = 15
MIN_DIST = 0.1
EPOCHS = 200
MIN_ROWS = 200
"""Below this many rows propagation keeps the embedding graph: UMAP of a few dozen points splits
classes into fragments that no seed reaches (60 items in three colours: 0.68 right from a seed
each, against 1.0 on the embedding graph)."""
SAMPLE_ABOVE = 50_000
"""Above this many rows UMAP is fitted on a random sample of this size and the other rows are
placed at the weighted mean of their graph neighbours' positions (in waves, as new map points)."""
EXACT_ROWS = 200_000
"""Exact L2 search in the label space up to this many rows; an IVF index above."""


def label_space(
    embeddings: np.ndarray,
    graph: KnnGraph,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    *,
    dimensions: int = DIMENSIONS,
    neighbours: int = NEIGHBOURS,
    scale_rank: int = SCALE_RANK,
    seed: int = 0,
) -> tuple[np.ndarray, KnnGraph] | None:
    """The label space of ``embeddings`` (N, D), whose cosine kNN graph is ``graph``: its
    coordinates (N, ``dimensions``) float32 and the propagation graph in them.

    The graph is a :class:`KnnGraph` (N, neighbours + 1), column 0 the row itself, with similarities
    ``exp(-d^2 / sigma^2)`` for Euclidean distance d in the UMAP space and sigma the median
    distance to the ``scale_rank``-th neighbour. None when there are fewer than ``MIN_ROWS``
    rows or ``graph`` has fewer than ``UMAP_NEIGHBOURS - 1`` neighbours a row (then propagate on
    ``graph``). The coordinates also serve the cold start (``explorer.labels.suggest``): k-means
    there finds the classes more often than in the embedding. Progress step "label space";
    ``cancel`` is checked between the fit and the search.
    """
    from explorer.projection.umap_layout import umap_raw

    n = len(embeddings)
    if n < max(MIN_ROWS, neighbours + 2) or graph.k + 1 < UMAP_NEIGHBOURS:
        return None  # too few rows, or a graph too thin for UMAP to keep a class in one piece
    progress(Progress("label space", 0, 2, f"fitting a {dimensions}-d UMAP for propagation"))
    if n <= SAMPLE_ABOVE:
        z = umap_raw(embeddings, graph, UMAP_NEIGHBOURS, MIN_DIST, seed, components=dimensions, epochs=EPOCHS)
    else:
        z = _fit_sample_place(embeddings, graph, dimensions, seed, cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(Progress("label space", 1, 2, "neighbours in the label space"))
    ids, sq = _l2_neighbours(np.ascontiguousarray(z, np.float32), min(neighbours, n - 1), seed)
    rank = min(scale_rank, sq.shape[1] - 1)
    sigma2 = float(np.median(sq[:, rank])) or 1.0
    sims = np.exp(-np.maximum(sq, 0.0) / sigma2).astype(np.float32)
    progress(Progress("label space", 2, 2, "done"))
    return np.asarray(z, np.float32), KnnGraph(ids, sims, f"umap{dimensions}-l2", None)


def _fit_sample_place(embeddings, graph: KnnGraph, dimensions: int, seed: int, cancel) -> np.ndarray:
    """UMAP on ``SAMPLE_ABOVE`` random rows (their own kNN graph), the rest placed from ``graph``."""
    from explorer.neighbours.knn import knn_graph, normalise_rows
    from explorer.projection.place import place_by_graph
    from explorer.projection.umap_layout import umap_raw

    n = len(embeddings)
    sample = np.sort(np.random.default_rng(seed).choice(n, size=SAMPLE_ABOVE, replace=False))
    x = normalise_rows(embeddings[sample])
    sample_graph = knn_graph(x, k=graph.k, cancel=cancel, seed=seed)
    fitted = umap_raw(x, sample_graph, UMAP_NEIGHBOURS, MIN_DIST, seed, components=dimensions, epochs=EPOCHS)
    z = np.zeros((n, dimensions), np.float32)
    z[sample] = fitted
    known = np.zeros(n, bool)
    known[sample] = True
    return place_by_graph(z, known, graph)


def _l2_neighbours(z: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids (N, k+1) int64, squared distances (N, k+1) float32) of each row's k nearest rows by
    Euclidean distance, the row itself first."""
    import faiss

    n, d = z.shape
    if n <= EXACT_ROWS:
        index = faiss.IndexFlatL2(d)
    else:
        lists = int(4 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, lists)
        train = z[np.random.default_rng(seed).choice(n, size=min(n, 40 * lists), replace=False)]
        index.train(train)
        index.nprobe = 16
    index.add(z)
    sq, ids = index.search(z, k + 1)
    ids, sq = ids.astype(np.int64), sq.astype(np.float32)
    # the row itself first (ties among duplicates can put a twin there)
    own = ids == np.arange(n)[:, None]
    first = own.argmax(axis=1)
    has = own.any(axis=1)
    rows = np.flatnonzero(has & (first > 0))
    ids[rows, first[rows]] = ids[rows, 0]
    sq[rows, first[rows]] = sq[rows, 0]
    ids[:, 0] = np.arange(n)
    sq[:, 0] = 0.0
    return ids, sq
