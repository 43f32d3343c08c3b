"""Outlines and names of the map's clusters, over the points of the map's plot.

Each cluster is outlined by the convex hull of its central points (the ``CORE_SHARE`` nearest its
median, so that a few strays do not blow the outline up); all outlines are one curve item. Names
are text items at the clusters' middles; after each change of view the largest clusters whose
middle is in view get their name first, and a name that would overlap one already placed waits
until zooming in makes room: names follow the zoom. Clicking a name selects that cluster; a
right click asks for a menu (the map view builds it: select, label as a class).

Loops run over clusters (tens to a few hundred), never over points.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QFont

CORE_SHARE = 0.9
HULL_SAMPLE = 3000  # points of a big cluster its outline is drawn around
MIN_HULL_POINTS = 3
OUTLINE = (235, 235, 235, 110)
NAME_GAP_PX = 4.0


class _Name(pg.TextItem):
    """A cluster's name on the map; tells the overlay when it is clicked."""

    def __init__(self, overlay: ClusterOverlay, cluster: int) -> None:
        super().__init__("", color=(245, 245, 245), fill=pg.mkBrush(20, 22, 28, 170), anchor=(0.5, 0.5))
        self.overlay = overlay
        self.cluster = cluster
        self.setFont(overlay.font)
        self.setZValue(20)

    def mouseClickEvent(self, ev):  # noqa: N802 (Qt's name)
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.overlay.clicked.emit(self.cluster, ev.modifiers())
        elif ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            self.overlay.menuRequested.emit(self.cluster, ev.screenPos().toPoint())


class ClusterOverlay(QObject):
    """``set_clusters(xy, clusters)`` after a map lands, ``set_names(texts)`` after labels change,
    ``update_view()`` after the view moves, ``set_shown(on)``."""

    clicked = Signal(int, object)  # cluster, keyboard modifiers
    menuRequested = Signal(int, QPoint)  # cluster, global position

    def __init__(self, plot: pg.PlotWidget) -> None:
        super().__init__(plot)
        self.plot = plot
        self.font = QFont()
        self.font.setPointSizeF(max(8.0, self.font.pointSizeF() - 0.5))
        self.outline = pg.PlotCurveItem(pen=pg.mkPen(*OUTLINE, width=1.2), connect="finite")
        self.outline.setZValue(1)
        plot.addItem(self.outline, ignoreBounds=True)
        self.names: list[_Name] = []
        self.centres = np.empty((0, 2), np.float64)
        self.sizes = np.empty(0, np.int64)
        self.shown = True

    @property
    def count(self) -> int:
        return len(self.names)

    def set_clusters(self, xy: np.ndarray, clusters: np.ndarray) -> None:
        """(N, 2) map positions and (N,) cluster per point (-1 none; empty: no clusters)."""
        for name in self.names:
            self.plot.removeItem(name)
        self.names = []
        n_clusters = int(clusters.max()) + 1 if len(clusters) and clusters.max() >= 0 else 0
        outlines, centres = [], np.zeros((n_clusters, 2))
        self.sizes = np.bincount(clusters[clusters >= 0], minlength=n_clusters) if n_clusters else np.zeros(0, int)
        if n_clusters:
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
                name = _Name(self, k)
                name.setPos(*centres[k])
                self.plot.addItem(name, ignoreBounds=True)
                self.names.append(name)
        self.centres = centres
        joined = np.concatenate([np.vstack([o, [np.nan, np.nan]]) for o in outlines if len(o)] or [np.empty((0, 2))])
        self.outline.setData(joined[:, 0], joined[:, 1]) if len(joined) else self.outline.setData([], [])
        self._apply_shown()

    def set_names(self, texts: list[str]) -> None:
        """The text of each cluster's name (clusters 0..n-1)."""
        for name, text in zip(self.names, texts, strict=False):
            name.setText(text)
        self.update_view()

    def set_shown(self, on: bool) -> None:
        self.shown = on
        self._apply_shown()

    def _apply_shown(self) -> None:
        self.outline.setVisible(self.shown)
        self.update_view()

    def update_view(self) -> None:
        """Show the names that fit: the largest clusters with their middle in view first, none
        overlapping another."""
        if not self.names:
            return
        if not self.shown:
            for name in self.names:
                name.hide()
            return
        view = self.plot.getPlotItem().getViewBox()
        (x0, x1), (y0, y1) = view.viewRange()
        px, py = view.viewPixelSize()
        inside = (self.centres[:, 0] >= x0) & (self.centres[:, 0] <= x1)
        inside &= (self.centres[:, 1] >= y0) & (self.centres[:, 1] <= y1)
        placed: list[QRectF] = []
        for k in np.argsort(-self.sizes, kind="stable").tolist():
            name = self.names[k]
            if not inside[k]:
                name.hide()
                continue
            size = name.textItem.boundingRect()  # in screen pixels: the name ignores the zoom
            w, h = size.width() + NAME_GAP_PX, size.height() + NAME_GAP_PX
            cx, cy = (self.centres[k, 0] - x0) / px, (y1 - self.centres[k, 1]) / py
            rect = QRectF(cx - w / 2, cy - h / 2, w, h)
            if any(rect.intersects(other) for other in placed):
                name.hide()
                continue
            placed.append(rect)
            name.show()


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
