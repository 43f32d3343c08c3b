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


def step_lengths(graph: KnnGraph) -> sp.csr_matrix:
    """(N, N) symmetric CSR of edge lengths in "typical neighbour steps", for :func:`graph_distance`.

    Edges are the positive-similarity kNN edges, taken both ways, with length ``1 - s`` divided
    by the median edge length (floored at 1e-3), so an edge between near-identical items is
    almost free.
    """
    n = len(graph)
    r, c, s = _edges(graph)
    length = 1.0 - s
    typical = float(np.median(length)) if len(length) else 1.0
    length = np.maximum(length / (typical if typical > 0 else 1.0), 1e-3)
    one_way = sp.csr_matrix((length, (r, c)), shape=(n, n))
    both = one_way.maximum(one_way.T).tocsr()  # i->j and j->i have the same length when both exist
    both.sort_indices()
    return both


def relax(lengths: sp.csr_matrix, dist: np.ndarray, frontier: np.ndarray, limit: float = np.inf) -> np.ndarray:
    """Shorten ``dist`` (N,) in place along ``lengths`` starting from the rows in ``frontier``.

    Label-correcting shortest paths (Bellman-Ford on a frontier): each round relaxes the edges
    out of the rows whose distance just improved, so adding a source only touches the region
    where it is the nearest one. Distances above ``limit`` are not recorded. Returns ``dist``.
    """
    indptr, indices, data = lengths.indptr, lengths.indices, lengths.data
    frontier = np.unique(np.asarray(frontier, dtype=np.int64))
    while len(frontier):
        starts, counts = indptr[frontier], indptr[frontier + 1] - indptr[frontier]
        total = int(counts.sum())
        if total == 0:
            break
        pos = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
        cand = np.repeat(dist[frontier], counts) + data[pos]
        target = indices[pos]
        better = (cand < dist[target]) & (cand <= limit)
        target, cand = target[better], cand[better]
        np.minimum.at(dist, target, cand)
        frontier = np.unique(target)
    return dist


def graph_distance(graph: KnnGraph | sp.csr_matrix, sources: np.ndarray, limit: float = np.inf) -> np.ndarray:
    """Shortest-path distance from each row to the nearest of ``sources`` along the graph.

    ``graph`` a :class:`KnnGraph` or its :func:`step_lengths` (pass those when calling often);
    edges are taken as undirected. ``sources`` (S,) int64 row positions. Returns (N,) float64 in
    typical neighbour steps: 0 at sources, ``inf`` where no path exists (or when S == 0), and
    ``inf`` beyond ``limit`` (the search stops there, which makes it cheaper).
    """
    lengths = step_lengths(graph) if isinstance(graph, KnnGraph) else graph
    out = np.full(lengths.shape[0], np.inf)
    sources = np.unique(np.asarray(sources, dtype=np.int64))
    out[sources] = 0.0
    return relax(lengths, out, sources, limit)
