"""Which map points a click or a drawn region picks: geometry on arrays, no Qt.

Points are map rows; ``xy`` is the map's (N, 2) coordinates. A click picks the nearest point
within a radius through a spatial index (``PointIndex``, a ``cKDTree``), never by walking the
points; a drawn region (box or lasso) picks the points inside its polygon, vectorised over the
points. Points of hidden groups (``hidden``, (N,) bool) are never picked.
"""

from __future__ import annotations

import numpy as np


def points_in_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: which of ``xy`` (N, 2) lie inside ``polygon`` (M, 2) (even-odd rule).

    Vectorised over points; the loop runs over the polygon's vertices only.
    """
    polygon = np.asarray(polygon, np.float64)
    inside = np.zeros(len(xy), bool)
    if len(polygon) < 3 or len(xy) == 0:
        return inside
    lo, hi = polygon.min(axis=0), polygon.max(axis=0)
    candidates = np.flatnonzero((xy[:, 0] >= lo[0]) & (xy[:, 0] <= hi[0]) & (xy[:, 1] >= lo[1]) & (xy[:, 1] <= hi[1]))
    x, y = xy[candidates, 0].astype(np.float64), xy[candidates, 1].astype(np.float64)
    hit = np.zeros(len(candidates), bool)
    xj, yj = polygon[-1]
    for xi, yi in polygon:
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = (xj - xi) * (y - yi) / (yj - yi) + xi
        hit ^= crosses & (x < at)
        xj, yj = xi, yi
    inside[candidates] = hit
    return inside


def rows_in_polygon(xy: np.ndarray, polygon: np.ndarray, hidden: np.ndarray | None = None) -> np.ndarray:
    """Ascending map rows of the points of ``xy`` (N, 2) inside ``polygon`` (M, 2), leaving out
    those ``hidden`` ((N,) bool) marks; ``hidden`` of another length is ignored."""
    inside = points_in_polygon(xy, polygon)
    if hidden is not None and len(hidden) == len(inside):
        inside &= ~hidden
    return np.flatnonzero(inside)


class PointIndex:
    """A spatial index over map coordinates ``xy`` (N, 2): the nearest point to a click."""

    CANDIDATES = 16  # nearest points looked at for one that is not hidden

    def __init__(self, xy: np.ndarray) -> None:
        from scipy.spatial import cKDTree  # here, not at import: the window shows before scipy loads

        self.xy = np.asarray(xy, np.float32)
        self._tree = cKDTree(self.xy)

    def __len__(self) -> int:
        return len(self.xy)

    def nearest(self, x: float, y: float, radius: float, hidden: np.ndarray | None = None) -> int | None:
        """The row of the point nearest to (x, y) within ``radius`` (map units) that ``hidden``
        ((N,) bool) does not mark, or None. Only the ``CANDIDATES`` nearest are considered: a
        click on a crowd of hidden points picks nothing rather than a far visible one."""
        if len(self.xy) == 0:
            return None
        k = min(self.CANDIDATES, len(self.xy))
        distances, rows = self._tree.query((x, y), k=k, distance_upper_bound=radius)
        use_hidden = hidden is not None and len(hidden) == len(self.xy)
        for distance, row in zip(np.atleast_1d(distances), np.atleast_1d(rows), strict=True):
            if not np.isfinite(distance):
                return None
            if not (use_hidden and hidden[row]):
                return int(row)
        return None
