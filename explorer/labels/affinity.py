"""The label-propagation graph: a sparse symmetric affinity built from the kNN graph.

Follows Zhou et al. 2004 ("Learning with local and global consistency") with the sparse kNN
affinity and power weights of Iscen et al. 2019 ("Label propagation for deep semi-supervised
learning"). Everything is vectorised: no Python loop over rows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from explorer.neighbours.knn import KnnGraph


def _edges(graph: KnnGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed kNN edges with positive similarity: (E,) rows, (E,) columns, (E,) similarities."""
    ids = graph.indices[:, 1:]
    sims = graph.similarities[:, 1:].astype(np.float64)
    rows = np.broadcast_to(np.arange(len(ids), dtype=np.int64)[:, None], ids.shape)
    keep = (ids >= 0) & (ids != rows) & (sims > 0)
    return rows[keep], ids[keep], sims[keep]


def affinity(graph: KnnGraph, power: float = 3.0) -> sp.csr_matrix:
    """Symmetric kNN affinity W (N, N) float64 CSR: ``W = A + A^T``, ``A_ij = s_ij ** power``.

    Only edges with similarity s > 0 are kept; self-loops and missing (-1) neighbours are
    dropped. Pairs that are each other's neighbours get both directions' weights summed.
    """
    n = len(graph)
    r, c, s = _edges(graph)
    a = sp.csr_matrix((s**power, (r, c)), shape=(n, n))
    return (a + a.T).tocsr()


def normalised(w: sp.csr_matrix) -> sp.csr_matrix:
    """Symmetric normalisation ``D^-1/2 W D^-1/2`` of an affinity (N, N); isolated rows stay 0."""
    d = np.asarray(w.sum(axis=1)).ravel()
    inv = np.zeros_like(d)
    np.divide(1.0, np.sqrt(d), out=inv, where=d > 0)
    dm = sp.diags(inv)
    return (dm @ w @ dm).tocsr()


def graph_distance(graph: KnnGraph, sources: np.ndarray) -> np.ndarray:
    """Shortest-path distance from each row to the nearest of ``sources`` along the graph.

    Edges are the positive-similarity kNN edges (taken as undirected) with length ``1 - s``
    divided by the median edge length, so the result counts "typical neighbour steps" (an edge
    between near-identical items is almost free). ``sources`` (S,) int64 row positions.
    Returns (N,) float64: 0 at sources, ``inf`` where no path exists (or when S == 0).
    """
    from scipy.sparse.csgraph import dijkstra

    n = len(graph)
    sources = np.unique(np.asarray(sources, dtype=np.int64))
    if len(sources) == 0 or n == 0:
        return np.full(n, np.inf)
    r, c, s = _edges(graph)
    if len(r) == 0:
        out = np.full(n, np.inf)
        out[sources] = 0.0
        return out
    length = 1.0 - s
    typical = float(np.median(length))
    length = np.maximum(length / (typical if typical > 0 else 1.0), 1e-3)
    g = sp.csr_matrix((length, (r, c)), shape=(n, n))
    # directed=False lets a path use csgraph[i, j] or csgraph[j, i]
    return dijkstra(g, directed=False, indices=sources, min_only=True)
