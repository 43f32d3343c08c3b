"""Where the map's clusters are drawn: their sizes, middles and outlines, from the map positions.

Numpy and scipy, no Qt: worked out on the worker that read the map (1M points and 150 clusters:
about half a second), and drawn by ``explorer.gui.cluster_overlay``. Each cluster is outlined by
the convex hull of its central points (the ``CORE_SHARE`` nearest its median, so that a few
strays do not blow the outline up). Loops run over clusters, never over points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CORE_SHARE = 0.9
HULL_SAMPLE = 3000  # points of a big cluster its outline is drawn around
MIN_HULL_POINTS = 3


@dataclass(frozen=True)
class ClusterShapes:
    """Clusters 0..n-1 as drawn."""

    sizes: np.ndarray  # (n,) points in each cluster
    centres: np.ndarray  # (n, 2) their medians, in map coordinates
    outline: np.ndarray  # (M, 2) every cluster's closed outline, one after another, NaN rows between

    @property
    def count(self) -> int:
        return len(self.sizes)


def cluster_shapes(xy: np.ndarray, clusters: np.ndarray) -> ClusterShapes:
    """The shapes of the clusters of (N, 2) ``xy`` with (N,) ``clusters`` (-1 none; empty: no clusters)."""
    n_clusters = int(clusters.max()) + 1 if len(clusters) and clusters.max() >= 0 else 0
    if n_clusters == 0:
        return ClusterShapes(np.zeros(0, np.int64), np.zeros((0, 2)), np.empty((0, 2)))
    sizes = np.bincount(clusters[clusters >= 0], minlength=n_clusters)
    centres, outlines = np.zeros((n_clusters, 2)), []
    order = np.argsort(clusters, kind="stable")
    bounds = np.searchsorted(clusters[order], np.arange(n_clusters + 1))
    rng = np.random.default_rng(0)
    for k in range(n_clusters):
        rows = order[bounds[k] : bounds[k + 1]]
        if len(rows) > HULL_SAMPLE:
            rows = rng.choice(rows, HULL_SAMPLE, replace=False)
        points = xy[rows].astype(np.float64)
        centres[k] = np.median(points, axis=0)
        outlines.append(_outline(points, centres[k]))
    joined = [np.vstack([o, [np.nan, np.nan]]) for o in outlines if len(o)]
    return ClusterShapes(sizes, centres, np.concatenate(joined) if joined else np.empty((0, 2)))


def _outline(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(M, 2) closed convex hull of the ``CORE_SHARE`` of ``points`` nearest ``centre`` (empty
    when too few or all on a line)."""
    from scipy.spatial import ConvexHull, QhullError

    if len(points) > 10:
        d = np.linalg.norm(points - centre, axis=1)
        points = points[d <= np.quantile(d, CORE_SHARE)]
    if len(points) < MIN_HULL_POINTS:
        return np.empty((0, 2))
    try:
        hull = ConvexHull(points)
    except QhullError:  # all on a line, or duplicates only
        return np.empty((0, 2))
    ring = points[hull.vertices]
    return np.vstack([ring, ring[:1]])
