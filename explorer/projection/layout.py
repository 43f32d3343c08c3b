"""The map of a collection: fit UMAP, keep an existing map's points, place what is new.

:func:`map_layout` chooses between three ways of getting (N, 2) coordinates:

- a fresh UMAP fit on the FAISS graph (up to ``sample_above`` rows, default ``SAMPLE_ABOVE``);
- above that, UMAP on a random sample of ``sample_size`` rows (its own FAISS graph), the other
  rows placed from their neighbours in the full graph and settled with UMAP's transform step;
- when an earlier map's positions are given for some rows (the collection grew), those rows keep
  their positions exactly and only the new rows are placed and settled, so the user's mental map
  survives adding images.

:func:`trustworthiness_on_sample` measures how faithful a map is (Venna & Kaski 2001).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.neighbours.knn import KnnGraph, knn_graph, normalise_rows
from explorer.projection.pca import normalise_layout, pca_preview
from explorer.projection.place import place_by_graph, settle_new
from explorer.projection.umap_layout import MIN_UMAP_ROWS, umap_raw

SAMPLE_ABOVE = 10_000
"""Fit UMAP on a sample above this many rows. UMAP's cost grows linearly with N while placing
from the graph costs a fraction of it. Measured with benchmarks/map_umap.py (clustered 128-d,
2 shared cores) at 50k rows: UMAP on all rows 113 s, on a 20k sample + placing the rest 43 s, on
a 5k sample 6-7 s, with trustworthiness 0.9965, 0.9964 and 0.9958 (plain UMAP: 0.9965)."""
SAMPLE_SIZE = 5_000
DEFAULT_SCALE = 10.0
"""UMAP units per map unit assumed for a map saved without its scale (typical UMAP extent)."""


@dataclass
class Layout:
    """A map: ``xy`` (N, 2) float32 in map units (fitted rows span [-1, 1]); ``scale`` UMAP units
    per map unit (needed to place items later); ``method`` "umap", "umap-sample", "kept", "pca";
    ``fitted`` rows laid out by UMAP (or kept from the earlier map), ``placed`` rows placed."""

    xy: np.ndarray
    scale: float
    method: str
    fitted: int
    placed: int


def _normalise(raw: np.ndarray) -> tuple[np.ndarray, float]:
    """(normalised xy, scale) with ``raw ~= xy * scale + centre``."""
    centred = raw - raw.mean(axis=0)
    scale = float(np.abs(centred).max()) if len(raw) else 0.0
    return normalise_layout(raw), scale if scale > 0 else DEFAULT_SCALE


def map_layout(
    embeddings: np.ndarray,
    graph: KnnGraph,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int | None = 0,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    *,
    known_xy: np.ndarray | None = None,
    known: np.ndarray | None = None,
    scale: float | None = None,
    sample_above: int = SAMPLE_ABOVE,
    sample_size: int = SAMPLE_SIZE,
) -> Layout:
    """The 2-D map of ``embeddings`` (N, D) with ``graph`` (N, k+1) its kNN graph.

    ``known_xy`` (N, 2) and ``known`` (N,) bool: positions from an earlier map for the rows that
    had one; those rows are returned unchanged and the others placed around them (``scale`` is
    the earlier map's; default ``DEFAULT_SCALE``). Without them: UMAP on all rows up to
    ``sample_above`` rows, else on ``sample_size`` random rows with the rest placed. Progress
    steps "map" (UMAP) and "place"; ``cancel`` checked between steps.
    """
    n = len(embeddings)
    if len(graph) != n:
        raise ValueError(f"graph has {len(graph)} rows but embeddings have {n}")
    nn = min(int(n_neighbors), graph.k + 1)
    if known is not None and known_xy is not None and np.asarray(known, bool).any():
        known = np.asarray(known, dtype=bool)
        xy = np.array(known_xy, dtype=np.float32).reshape(n, 2)
        scale = float(scale) if scale else DEFAULT_SCALE
        xy = _place(xy, known, graph, scale, nn, min_dist, seed, progress, cancel)
        return Layout(xy, scale, "kept", int(known.sum()), int((~known).sum()))

    if n < max(MIN_UMAP_ROWS, int(n_neighbors) + 2) or nn < 2:
        progress(Progress("map", 1, 1, "done (too few items for UMAP: PCA preview)"))
        return Layout(pca_preview(embeddings), DEFAULT_SCALE, "pca", n, 0)

    if n <= sample_above:
        xy, scale = _normalise(umap_raw(embeddings, graph, nn, min_dist, seed, progress, cancel))
        return Layout(xy, scale, "umap", n, 0)

    rng = np.random.default_rng(0 if seed is None else seed)
    sample = np.sort(rng.choice(n, size=min(sample_size, n), replace=False))
    progress(Progress("map", 0, 1, f"fitting UMAP on a sample of {len(sample):,} of {n:,} items"))
    sample_x = normalise_rows(embeddings[sample])
    sample_graph = knn_graph(sample_x, k=graph.k, cancel=cancel, seed=0 if seed is None else seed)
    raw = umap_raw(sample_x, sample_graph, nn, min_dist, seed, progress, cancel)
    fitted, scale = _normalise(raw)
    xy = np.zeros((n, 2), np.float32)
    xy[sample] = fitted
    known = np.zeros(n, bool)
    known[sample] = True
    xy = _place(xy, known, graph, scale, nn, min_dist, seed, progress, cancel)
    return Layout(xy, scale, "umap-sample", len(sample), n - len(sample))


def _place(xy, known, graph, scale, nn, min_dist, seed, progress, cancel) -> np.ndarray:
    """Place the rows not ``known`` from the graph, then settle them with the known rows fixed."""
    if known.all():
        return xy
    if cancel is not None:
        cancel.raise_if_cancelled()
    count = int((~known).sum())
    progress(Progress("place", 0, 1, f"placing {count:,} new items"))
    xy = place_by_graph(xy, known, graph)
    xy = settle_new(xy, known, graph, scale, nn, min_dist, seed=0 if seed is None else seed)
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(Progress("place", 1, 1, f"placed {count:,} new items"))
    return xy


def trustworthiness_on_sample(
    embeddings: np.ndarray, xy: np.ndarray, sample: int = 2000, n_neighbors: int = 10, seed: int = 0
) -> float:
    """Trustworthiness (sklearn, cosine in the embedding space) of the map on random rows.

    ``embeddings`` (N, D), ``xy`` (N, 2). Computed among ``sample`` random rows (all when fewer),
    so it is comparable between maps of different sizes and costs O(sample^2). 1 = every map
    neighbour is a true neighbour; NaN when fewer than ``2 n_neighbors + 2`` rows.
    """
    from sklearn.manifold import trustworthiness

    n = len(xy)
    if len(embeddings) != n:
        raise ValueError(f"embeddings have {len(embeddings)} rows but the map {n}")
    k = int(n_neighbors)
    if n < 2 * k + 2:
        return float("nan")
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    x = normalise_rows(embeddings[rows])
    return float(trustworthiness(x, np.asarray(xy, dtype=np.float64)[rows], n_neighbors=k, metric="cosine"))
