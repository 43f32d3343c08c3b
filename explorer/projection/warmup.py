"""Compile UMAP's numba code before the first real map needs it."""

from __future__ import annotations

import numpy as np

from explorer.projection.umap_layout import umap_raw


def warm_up() -> None:
    """Import umap and run a tiny map and a tiny placement through the same code paths, so numba
    compiles now (and loads its on-disk cache on later starts).

    Meant for a background thread at startup; takes seconds to tens of seconds on a cold cache.
    """
    from explorer.neighbours.knn import knn_graph
    from explorer.projection.place import settle_new

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    graph = knn_graph(x, k=10)
    xy = umap_raw(x, graph, n_neighbors=10)
    placed = np.arange(64) % 4 != 0
    settle_new(xy / 10.0, placed, graph, 10.0, n_neighbors=10)
