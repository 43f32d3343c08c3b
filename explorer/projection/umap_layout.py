"""The 2-D map: UMAP (McInnes, Healy & Melville 2018) fed with the FAISS neighbour graph.

UMAP never recomputes neighbours here: the :class:`~explorer.neighbours.knn.KnnGraph` is passed
as ``precomputed_knn``. ``umap`` (and numba behind it) is imported inside the functions; call
``explorer.projection.warmup.warm_up`` in the background at startup so the first real map does not pay JIT compilation.
"""

from __future__ import annotations

import warnings

import numpy as np

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.neighbours.knn import KnnGraph
from explorer.projection.pca import normalise_layout, pca_preview

MAP_EPOCHS = 150
"""UMAP optimisation epochs (its default: 500 up to 10k rows, 200 above). Measured on the
benchmarks/map_umap.py data at 5k rows: 500 epochs 6 s, trustworthiness 0.9964; 200 epochs
2.4 s, 0.9960; 150 epochs 1.5 s, 0.9959; 100 epochs 1.2 s, 0.9953."""

MIN_UMAP_ROWS = 8
"""Below this many rows (or n_neighbors + 2) the map is the PCA preview: UMAP is meaningless."""


def umap_knn_arrays(graph: KnnGraph, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Convert a graph into UMAP's ``precomputed_knn`` arrays.

    Returns ``(indices, distances)``, both (N, n_neighbors): int64 positions with the row itself
    first, and float32 cosine distances ``1 - similarity`` (self at 0, clipped to [0, 2]).
    Missing neighbours keep index -1 with distance ``inf``, which UMAP skips (the same marking
    UMAP itself uses for disconnected neighbours).
    """
    ids = np.array(graph.indices[:, :n_neighbors], dtype=np.int64, order="C")
    dist = np.clip(1.0 - graph.similarities[:, :n_neighbors].astype(np.float32), 0.0, 2.0)
    dist[:, 0] = 0.0
    dist[ids < 0] = np.inf
    return ids, np.ascontiguousarray(dist, dtype=np.float32)


def umap_layout(embeddings: np.ndarray, graph: KnnGraph, *args, **options) -> np.ndarray:
    """Lay the collection out in 2-D with UMAP on the graph's neighbours (metric: cosine).

    Returns (N, 2) float32 centred and scaled into [-1, 1] by :func:`normalise_layout`; the other
    arguments are :func:`umap_raw`'s (n_neighbors, min_dist, seed, progress, cancel).
    """
    return normalise_layout(umap_raw(embeddings, graph, *args, **options))


def umap_raw(
    embeddings: np.ndarray,
    graph: KnnGraph,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int | None = 0,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    *,
    components: int = 2,
    epochs: int = MAP_EPOCHS,
) -> np.ndarray:
    """UMAP's own (N, components) float32 coordinates, fitted on the graph's neighbours (metric: cosine).

    ``embeddings`` (N, D) are only handed to UMAP for validation; neighbours come from
    ``graph`` (N, k+1). ``n_neighbors`` counts the row itself, as in UMAP, and is capped at
    ``graph.k + 1``. ``seed`` fixes the layout (and makes UMAP single-threaded); None lets it
    run in parallel. ``components`` other than 2 and ``epochs`` are for callers that need
    more dimensions than a map (``explorer.labels.space``). Collections smaller than ``max(MIN_UMAP_ROWS, n_neighbors + 2)`` rows, or
    graphs with no neighbours, get :func:`pca_preview` instead. Progress step "map": "fitting"
    then "done" (UMAP reports nothing in between); ``cancel`` is checked before fitting.
    """
    n = len(embeddings)
    if len(graph) != n:
        raise ValueError(f"graph has {len(graph)} rows but embeddings have {n}")
    if cancel is not None:
        cancel.raise_if_cancelled()
    nn = min(int(n_neighbors), graph.k + 1)
    if n < max(MIN_UMAP_ROWS, int(n_neighbors) + 2) or nn < 2:
        progress(Progress("map", 1, 1, "done (too few items for UMAP: PCA preview)"))
        return pca_preview(embeddings)

    progress(Progress("map", 0, 1, "fitting"))
    import umap

    ids, dist = umap_knn_arrays(graph, nn)
    model = umap.UMAP(
        n_neighbors=nn,
        n_components=components,
        metric="cosine",
        min_dist=min_dist,
        n_epochs=epochs,
        random_state=seed,
        n_jobs=1 if seed is not None else -1,
        precomputed_knn=(ids, dist, None),
        force_approximation_algorithm=True,
        low_memory=True,
        verbose=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xy = model.fit_transform(np.asarray(embeddings, dtype=np.float32))
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(Progress("map", 1, 1, "done"))
    return np.asarray(xy, dtype=np.float32)
