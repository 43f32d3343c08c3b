"""The cosine k-nearest-neighbour graph of a collection's embeddings, built with FAISS.

Exact search (``IndexFlatIP``) while the collection is small enough for it to stay fast;
above ``exact_limit`` rows an HNSW index (Malkov & Yashunin 2018) whose recall is measured
against exact search on a sample of queries. FAISS is imported inside the functions so that
importing this module costs nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress

EXACT_WORK = 50_000 * 50_000 * 128
"""Exact search while N * N * D stays below this (measured: 50k x 128 exact takes ~5 s on 2 cores)."""

HNSW_M = 32
SEARCH_BATCH = 4096


@dataclass
class KnnGraph:
    """Each row's nearest neighbours by cosine similarity.

    ``indices`` (N, k+1) int64 row positions; column 0 is the row itself, then neighbours by
    decreasing similarity; -1 marks a missing neighbour (its similarity is 0).
    ``similarities`` (N, k+1) float32 cosine similarity in [-1, 1]; column 0 is 1.0.
    ``index_kind`` names the FAISS index ("flat-ip", "hnsw32"); ``recall`` is the measured
    recall@k of an approximate index against exact search on a sample (None when exact).
    """

    indices: np.ndarray
    similarities: np.ndarray
    index_kind: str
    recall: float | None

    @property
    def k(self) -> int:
        """Neighbours per row, not counting the row itself."""
        return int(self.indices.shape[1]) - 1

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def normalise_rows(embeddings: np.ndarray) -> np.ndarray:
    """(N, D) float32 C-contiguous copy with unit L2 rows; all-zero rows stay zero."""
    x = np.array(embeddings, dtype=np.float32, order="C", copy=True)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def _set_threads(threads: int | None) -> None:
    import faiss

    if threads is None:
        try:
            threads = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - macOS, Windows
            threads = os.cpu_count() or 1
    faiss.omp_set_num_threads(max(1, int(threads)))


def _put_self_first(rows: np.ndarray, ids: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild search results so column 0 is the query row itself, then k others.

    ``rows`` (B,) query row positions, ``ids``/``sims`` (B, K) raw FAISS results with K >= k+1.
    Rows where FAISS ranked a duplicate before the row itself, or missed the row entirely
    (approximate search), are fixed; order among the others is kept. Returns (B, k+1) arrays.
    """
    others = ids != rows[:, None]
    order = np.argsort(~others, axis=1, kind="stable")[:, :k]  # non-self entries first, in order
    out_ids = np.empty((len(rows), k + 1), dtype=np.int64)
    out_sims = np.empty((len(rows), k + 1), dtype=np.float32)
    out_ids[:, 0] = rows
    out_sims[:, 0] = 1.0
    out_ids[:, 1:] = np.take_along_axis(ids, order, axis=1)
    out_sims[:, 1:] = np.take_along_axis(sims, order, axis=1)
    missing = out_ids < 0
    out_ids[missing] = -1
    out_sims[missing] = 0.0
    np.clip(out_sims, -1.0, 1.0, out=out_sims)
    return out_ids, out_sims


def _search(
    index,
    x: np.ndarray,
    k: int,
    step: str,
    progress: ProgressFn,
    cancel: CancelToken | None,
    id_map: np.ndarray | None = None,
):
    """Search every row of ``x`` (N, D) for its k+1 nearest in batches; returns (N, k+1) ids, sims.

    ``id_map`` (N,) translates the index's own ids to row positions (index id j is row
    ``id_map[j]``) when the rows were added in another order.
    """
    n = len(x)
    want = min(k + 2, n)  # one spare so a duplicate ranked before self still leaves k others
    ids = np.empty((n, k + 1), dtype=np.int64)
    sims = np.empty((n, k + 1), dtype=np.float32)
    for start in range(0, n, SEARCH_BATCH):
        if cancel is not None:
            cancel.raise_if_cancelled()
        stop = min(n, start + SEARCH_BATCH)
        s, i = index.search(x[start:stop], want)
        if id_map is not None:
            i = np.where(i >= 0, id_map[np.maximum(i, 0)], -1)
        ids[start:stop], sims[start:stop] = _put_self_first(np.arange(start, stop), i, s, k)
        progress(Progress(step, stop, n, f"{stop:,} / {n:,} rows"))
    return ids, sims


def _measure_recall(x: np.ndarray, approx_ids: np.ndarray, k: int, sample: int, seed: int) -> float:
    """Recall@k of ``approx_ids`` (N, k+1) against exact search for ``sample`` random rows."""
    import faiss

    rng = np.random.default_rng(seed)
    n = len(x)
    rows = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    s, i = exact.search(x[rows], min(k + 2, n))
    true_ids, _ = _put_self_first(rows, i, s, k)
    hits = 0
    for t, a in zip(true_ids[:, 1:], approx_ids[rows, 1:], strict=True):
        hits += len(np.intersect1d(t[t >= 0], a[a >= 0], assume_unique=True))
    total = int((true_ids[:, 1:] >= 0).sum())
    return hits / total if total else 1.0


def knn_graph(
    embeddings: np.ndarray,
    k: int = 15,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    *,
    exact_limit: int | None = None,
    recall_sample: int = 1000,
    threads: int | None = None,
    seed: int = 0,
) -> KnnGraph:
    """Build the cosine kNN graph of ``embeddings`` (N, D) float.

    Rows are L2-normalised here (defensively), so inner product is cosine similarity. Returns
    a :class:`KnnGraph` with ``min(k, N-1)`` neighbours per row plus the row itself in column 0.
    Exact ``IndexFlatIP`` when N <= ``exact_limit`` (default: while ``N * N * D <= EXACT_WORK``,
    i.e. 50k rows at D=128, 25k at D=512), otherwise HNSW (M=32) with recall@k measured
    against exact search on ``recall_sample`` random rows. ``threads`` for FAISS (default: the
    cores this process may use). Progress step names: "index" (adding rows), "neighbours" (search),
    "recall". ``cancel`` is checked between batches; :class:`~explorer.jobs.Cancelled` is raised.
    """
    import faiss

    x = normalise_rows(embeddings)
    n, d = x.shape
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    k = max(0, min(int(k), n - 1))
    if n == 0:
        return KnnGraph(np.zeros((0, 1), np.int64), np.zeros((0, 1), np.float32), "flat-ip", None)
    if k == 0:
        return KnnGraph(np.arange(n, dtype=np.int64)[:, None], np.ones((n, 1), np.float32), "flat-ip", None)
    _set_threads(threads)
    if cancel is not None:
        cancel.raise_if_cancelled()

    if exact_limit is None:
        exact_limit = int(np.sqrt(EXACT_WORK / max(d, 1)))
    if n <= exact_limit:
        index = faiss.IndexFlatIP(d)
        index.add(x)
        ids, sims = _search(index, x, k, "neighbours", progress, cancel)
        return KnnGraph(ids, sims, "flat-ip", None)

    # Rows go in in random order: inserting a folder-sorted (clustered) collection chunk by
    # chunk builds a poor HNSW graph (recall 0.95 instead of 0.99 on sorted clusters).
    order = np.random.default_rng(seed).permutation(n)
    index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    for start in range(0, n, SEARCH_BATCH * 4):
        if cancel is not None:
            cancel.raise_if_cancelled()
        stop = min(n, start + SEARCH_BATCH * 4)
        index.add(x[order[start:stop]])
        progress(Progress("index", stop, n, f"indexed {stop:,} / {n:,} rows"))
    index.hnsw.efSearch = max(64, 4 * (k + 1))
    ids, sims = _search(index, x, k, "neighbours", progress, cancel, id_map=order)
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(Progress("recall", 0, 1, "measuring recall against exact search"))
    recall = _measure_recall(x, ids, k, recall_sample, seed)
    progress(Progress("recall", 1, 1, f"recall@{k} = {recall:.3f}"))
    return KnnGraph(ids, sims, f"hnsw{HNSW_M}", recall)


def near_duplicates(graph: KnnGraph, threshold: float = 0.98) -> np.ndarray:
    """Pairs of rows whose cosine similarity is at least ``threshold``.

    Returns (M, 2) int64 pairs ``(i, j)`` with ``i < j``, each pair once, sorted by similarity
    descending (ties by ``i``, ``j``). Only pairs present in the graph are found: a group of more
    than k+1 identical items yields only the pairs within each row's k neighbours.
    """
    ids = graph.indices[:, 1:]
    sims = graph.similarities[:, 1:]
    rows = np.broadcast_to(np.arange(len(ids), dtype=np.int64)[:, None], ids.shape)
    keep = (ids >= 0) & (sims >= threshold) & (ids != rows)
    a, b, s = rows[keep], ids[keep], sims[keep]
    i, j = np.minimum(a, b), np.maximum(a, b)
    if len(i) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    order = np.lexsort((j, i, -s))  # best similarity first, so unique keeps each pair's max
    i, j, s = i[order], j[order], s[order]
    key = i * (int(j.max()) + 1) + j
    _, first = np.unique(key, return_index=True)
    first = np.sort(first)
    return np.stack([i[first], j[first]], axis=1).astype(np.int64)
