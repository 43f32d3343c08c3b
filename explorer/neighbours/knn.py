"""The cosine k-nearest-neighbour graph of a collection's embeddings, built with FAISS.

Exact search (``IndexFlatIP``) while the collection is small enough for it to stay fast; above
that an inverted-file index (IVF, Jegou et al. 2011) or HNSW (Malkov & Yashunin 2018), storing
vectors as float16 (IVF; HNSW float32) or, when memory is short, smaller codes
(:func:`choose_index`). The recall of an approximate graph is measured against exact search on
a sample of queries (and IVF's ``nprobe`` raised until it meets ``target_recall``). FAISS is
imported inside the functions so that importing this module costs nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress

EXACT_WORK = 10_000 * 10_000 * 128
"""Exact search while N * N * D stays below this. Measured on 2 cores (clustered 128-d, k=15):
10k rows exact 0.9 s, IVF 0.85 s; 20k exact 2.9 s, IVF 1.6 s; 50k exact 15 s, IVF 4.6 s."""

HNSW_M = 32
SEARCH_BATCH = 4096
MEMORY_SHARE = 0.25
"""Default index memory budget: this share of the memory available when the graph is built."""
IVF_TRAIN_PER_LIST = 30
"""Training rows per IVF list (k-means sample size)."""
STORAGE = {"ivf": (("float16", 2),), "hnsw": (("float32", 4), ("float16", 2))}
"""Vector storage tried in order (name, bytes per dimension) before 8-bit codes. IVF search
streams every probed list's vectors from memory, so half the bytes is faster: measured with
benchmarks/scale_1m.py --storage-check (clustered 128-d, k=15, 2 shared cores) at 250k rows,
float16 48.7 CPU-s against float32 69.6 CPU-s (1.43x; wall 49 s vs 70 s), recall@15 0.968 both
(the similarities are recomputed exactly either way, see ``_rescore``)."""
NPROBES = (4, 6, 8, 12, 16, 24, 32, 64, 128, 256)
"""IVF lists probed per query, tried in order until the sampled recall meets the target."""


@dataclass(frozen=True)
class IndexChoice:
    """Which FAISS index to build for (N, D) vectors.

    ``kind``: "flat-ip" (exact), "ivf" or "hnsw" (approximate); ``storage``: "float32",
    "float16" or "sq8" (one byte per dimension); ``nlist``: IVF lists (0 otherwise);
    ``bytes``: estimated index memory.
    """

    kind: str
    storage: str
    nlist: int
    bytes: int

    @property
    def name(self) -> str:
        """Short label recorded in run metrics, e.g. "flat-ip", "ivf1264-sq8", "hnsw32"."""
        if self.kind == "flat-ip":
            return "flat-ip"
        base = f"ivf{self.nlist}" if self.kind == "ivf" else f"hnsw{HNSW_M}"
        return base if self.storage == "float32" else f"{base}-{self.storage}"


def available_memory() -> int:
    """Bytes of memory available now (Linux: MemAvailable; elsewhere physical memory), or 4 GiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - Windows
        return 4 << 30


def choose_index(
    n: int,
    d: int,
    *,
    exact_limit: int | None = None,
    memory_budget: int | None = None,
    approximate: str = "ivf",
) -> IndexChoice:
    """Pick the index for a self-kNN graph of n rows of dimension d.

    Exact while ``n <= exact_limit`` (default: while ``N * N * D <= EXACT_WORK``, i.e. 10k rows
    at D=128). Otherwise
    ``approximate`` ("ivf": IVF with ``2 sqrt(N)`` lists (at most N / 30); "hnsw": HNSW, M=32), with
    vectors stored in the widest of ``STORAGE[approximate]`` that fits in ``memory_budget`` bytes
    (default ``MEMORY_SHARE`` of :func:`available_memory`), else 8-bit scalar quantisation. IVF
    starts at float16 (see ``STORAGE``); the found neighbours' similarities are exact either way.
    """
    if approximate not in ("ivf", "hnsw"):
        raise ValueError(f"approximate index must be 'ivf' or 'hnsw', got {approximate!r}")
    if exact_limit is None:
        exact_limit = int(np.sqrt(EXACT_WORK / max(d, 1)))
    if n <= exact_limit:
        return IndexChoice("flat-ip", "float32", 0, 4 * n * d)
    budget = int(MEMORY_SHARE * available_memory()) if memory_budget is None else int(memory_budget)
    links = 2 * HNSW_M * 4 if approximate == "hnsw" else 8  # per-row graph links or stored ids
    storage, per_row = "sq8", d + links
    for name, width in STORAGE[approximate]:
        if n * (width * d + links) <= budget:
            storage, per_row = name, width * d + links
            break
    # 2 sqrt(N) lists: measured at 50k x 128, training takes 0.7 s instead of 2 s with 4 sqrt(N)
    # and 8 probes still find 0.997 of the true neighbours
    nlist = max(1, min(int(2 * np.sqrt(n)), n // IVF_TRAIN_PER_LIST)) if approximate == "ivf" else 0
    return IndexChoice(approximate, storage, nlist, n * per_row)


@dataclass
class KnnGraph:
    """Each row's nearest neighbours by cosine similarity.

    ``indices`` (N, k+1) int64 row positions; column 0 is the row itself, then neighbours by
    decreasing similarity; -1 marks a missing neighbour (its similarity is 0).
    ``similarities`` (N, k+1) float32 cosine similarity in [-1, 1]; column 0 is 1.0.
    ``index_kind`` names the FAISS index (:attr:`IndexChoice.name`, e.g. "flat-ip", "ivf1264",
    "hnsw32-sq8"); ``recall`` is the measured recall@k of an approximate index against exact
    search on a sample (None when exact); ``details`` holds numbers worth recording with the run
    (index_bytes, knn_seconds, nprobe or ef_search).
    """

    indices: np.ndarray
    similarities: np.ndarray
    index_kind: str
    recall: float | None
    details: dict = field(default_factory=dict)

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


def _rescore(x: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine similarities for found neighbours ``ids`` (N, k+1), rows re-sorted by them.

    Compressed storage (float16, SQ8) finds the right neighbours but reports rounded
    similarities; the graph's weights and the duplicate threshold want the true ones.
    """
    sims = np.empty(ids.shape, np.float32)
    for start in range(0, len(ids), SEARCH_BATCH):
        block = ids[start : start + SEARCH_BATCH]
        sims[start : start + SEARCH_BATCH] = np.einsum(
            "bd,bkd->bk", x[start : start + len(block)], x[np.maximum(block, 0)]
        )
    sims[ids < 0] = -np.inf
    order = np.argsort(-sims[:, 1:], axis=1, kind="stable") + 1
    ids[:, 1:] = np.take_along_axis(ids, order, axis=1)
    sims[:, 1:] = np.take_along_axis(sims, order, axis=1)
    sims[:, 0] = 1.0
    sims[ids < 0] = 0.0
    np.clip(sims, -1.0, 1.0, out=sims)
    return ids, sims


def _exact_sample(x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """(S, k+1) exact neighbours of ``rows`` (self first), by brute force without an index copy."""
    import faiss

    s, i = faiss.knn(x[rows], x, min(k + 2, len(x)), metric=faiss.METRIC_INNER_PRODUCT)
    return _put_self_first(rows, i, s, k)[0]


def _recall(true_ids: np.ndarray, approx_ids: np.ndarray) -> float:
    """Share of the true neighbours (columns 1.., -1 ignored) that ``approx_ids`` also found."""
    t, a = true_ids[:, 1:], approx_ids[:, 1:]
    hits = ((t[:, :, None] == a[:, None, :]) & (t[:, :, None] >= 0)).any(axis=2).sum()
    total = int((t >= 0).sum())
    return float(hits) / total if total else 1.0


def _build(choice: IndexChoice, x: np.ndarray, order: np.ndarray, progress: ProgressFn, cancel, seed: int):
    """The FAISS index of ``choice`` holding rows ``x[order]`` (index id j = row ``order[j]``)."""
    import faiss

    n, d = x.shape
    quantiser = {"float32": None, "float16": faiss.ScalarQuantizer.QT_fp16, "sq8": faiss.ScalarQuantizer.QT_8bit}
    qtype = quantiser[choice.storage]
    if choice.kind == "hnsw":
        if qtype is None:
            index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexHNSWSQ(d, qtype, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    else:
        coarse = faiss.IndexFlatIP(d)
        if qtype is None:
            index = faiss.IndexIVFFlat(coarse, d, choice.nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFScalarQuantizer(coarse, d, choice.nlist, qtype, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10  # k-means to convergence buys nothing measurable in recall here
        index.cp.seed = seed
        index.cp.min_points_per_centroid = IVF_TRAIN_PER_LIST  # (FAISS would warn below 39)
    if not index.is_trained:
        progress(Progress("index", 0, n, "training the index"))
        size = min(n, max(IVF_TRAIN_PER_LIST * max(choice.nlist, 1), 10_000))
        index.train(x[np.sort(order[:size])])
    for start in range(0, n, SEARCH_BATCH * 4):
        if cancel is not None:
            cancel.raise_if_cancelled()
        stop = min(n, start + SEARCH_BATCH * 4)
        index.add(x[order[start:stop]])
        progress(Progress("index", stop, n, f"indexed {stop:,} / {n:,} rows"))
    return index


def _tune(index, choice: IndexChoice, x, order, rows, true_ids, k, target_recall) -> float:
    """Set the search breadth (IVF nprobe / HNSW efSearch) until recall on ``rows`` meets the target.

    Returns the recall measured at the chosen setting on those sample rows.
    """
    if choice.kind == "hnsw":
        settings = [max(64, 4 * (k + 1)) * f for f in (1, 2, 4)]
    else:
        settings = [p for p in NPROBES if p < choice.nlist] + [choice.nlist]
    recall = 0.0
    for value in settings:
        if choice.kind == "hnsw":
            index.hnsw.efSearch = value
        else:
            index.nprobe = value
        s, i = index.search(x[rows], min(k + 2, len(x)))
        i = np.where(i >= 0, order[np.maximum(i, 0)], -1)
        recall = _recall(true_ids, _put_self_first(rows, i, s, k)[0])
        if recall >= target_recall:
            break
    return recall


def knn_graph(
    embeddings: np.ndarray,
    k: int = 15,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    *,
    exact_limit: int | None = None,
    memory_budget: int | None = None,
    approximate: str = "ivf",
    target_recall: float = 0.95,
    recall_sample: int = 1000,
    threads: int | None = None,
    seed: int = 0,
) -> KnnGraph:
    """Build the cosine kNN graph of ``embeddings`` (N, D) float.

    Rows are L2-normalised here (defensively), so inner product is cosine similarity. Returns
    a :class:`KnnGraph` with ``min(k, N-1)`` neighbours per row plus the row itself in column 0.
    The index comes from :func:`choose_index` (``exact_limit``, ``memory_budget`` in bytes,
    ``approximate`` "ivf" or "hnsw"). For an approximate index, ``recall_sample`` random rows are
    searched exactly first; the search breadth is raised until recall@k on them reaches
    ``target_recall`` (or the breadth is exhausted), and that recall is reported.
    ``threads`` for FAISS (default: the cores this process may use). Progress step names:
    "index" (training, adding rows), "recall", "neighbours" (search). ``cancel`` is checked
    between batches; :class:`~explorer.jobs.Cancelled` is raised.
    """
    started = time.perf_counter()
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
    choice = choose_index(n, d, exact_limit=exact_limit, memory_budget=memory_budget, approximate=approximate)
    details: dict = {"index_bytes": choice.bytes}

    if choice.kind == "flat-ip":
        import faiss

        index = faiss.IndexFlatIP(d)
        index.add(x)
        ids, sims = _search(index, x, k, "neighbours", progress, cancel)
        details["knn_seconds"] = round(time.perf_counter() - started, 3)
        return KnnGraph(ids, sims, choice.name, None, details)

    # Rows go in in random order: inserting a folder-sorted (clustered) collection chunk by
    # chunk builds a poor HNSW graph and a biased IVF training sample.
    order = np.random.default_rng(seed).permutation(n)
    index = _build(choice, x, order, progress, cancel, seed)
    progress(Progress("recall", 0, 1, "measuring recall against exact search"))
    rows = np.sort(np.random.default_rng(seed + 1).choice(n, size=min(recall_sample, n), replace=False))
    recall = _tune(index, choice, x, order, rows, _exact_sample(x, rows, k), k, target_recall)
    breadth = index.hnsw.efSearch if choice.kind == "hnsw" else index.nprobe
    details["nprobe" if choice.kind == "ivf" else "ef_search"] = int(breadth)
    progress(Progress("recall", 1, 1, f"recall@{k} = {recall:.3f}"))
    ids, sims = _search(index, x, k, "neighbours", progress, cancel, id_map=order)
    if choice.storage != "float32":
        ids, sims = _rescore(x, ids)
    details["knn_seconds"] = round(time.perf_counter() - started, 3)
    return KnnGraph(ids, sims, choice.name, recall, details)


def near_duplicates(graph: KnnGraph, threshold: float = 0.98) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of rows whose cosine similarity is at least ``threshold``, read off the graph.

    Returns ``(pairs, similarities)``: (M, 2) int64 pairs ``(i, j)`` with ``i < j``, each pair
    once, and (M,) float32 their similarity, sorted by similarity descending (ties by ``i``,
    ``j``). Only pairs present in the graph are found: a group of more than k+1 identical items
    yields only the pairs within each row's k neighbours.
    """
    ids = graph.indices[:, 1:]
    sims = graph.similarities[:, 1:]
    rows = np.broadcast_to(np.arange(len(ids), dtype=np.int64)[:, None], ids.shape)
    keep = (ids >= 0) & (sims >= threshold) & (ids != rows)
    a, b, s = rows[keep], ids[keep], sims[keep]
    i, j = np.minimum(a, b), np.maximum(a, b)
    if len(i) == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, np.float32)
    order = np.lexsort((j, i, -s))  # best similarity first, so unique keeps each pair's max
    i, j, s = i[order], j[order], s[order]
    key = i * (int(j.max()) + 1) + j
    _, first = np.unique(key, return_index=True)
    first = np.sort(first)
    return np.stack([i[first], j[first]], axis=1).astype(np.int64), s[first].astype(np.float32)


def duplicate_groups(graph: KnnGraph, threshold: float = 0.98) -> np.ndarray:
    """(N,) int64: the same number for rows joined by near-duplicate pairs (see
    ``near_duplicates``, chains included), numbered 0.. in row order; -1 for a row without any."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = len(graph.indices)
    group = np.full(n, -1, np.int64)
    pairs, _ = near_duplicates(graph, threshold)
    if len(pairs):
        links = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, component = connected_components(links, directed=False)
        in_pair = np.zeros(n, bool)
        in_pair[pairs.ravel()] = True
        _, group[in_pair] = np.unique(component[in_pair], return_inverse=True)
    return group
