"""Outlines and names of the map's clusters, over the points of the map's plot.

Each cluster is outlined as ``explorer.gui.cluster_shapes`` works it out (on a worker); all
outlines are one curve item. Names are text items at the clusters' middles; after each change of
view the largest clusters whose middle is in view get their name first, and a name that would
overlap one already placed waits until zooming in makes room: names follow the zoom. Clicking a name selects that cluster; a
right click asks for a menu (the map view builds it: select, label as a class).

Loops run over clusters (tens to a few hundred), never over points.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QFont

from explorer.gui.cluster_shapes import ClusterShapes

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
    """``set_shapes(shapes)`` after a map or its clusters land, ``set_names(texts)`` after labels change,
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

    def set_shapes(self, shapes: ClusterShapes) -> None:
        """The clusters as drawn (``explorer.gui.cluster_shapes``: worked out off the GUI thread)."""
        for name in self.names:
            self.plot.removeItem(name)
        self.names = []
        for k, centre in enumerate(shapes.centres):
            name = _Name(self, k)
            name.setPos(*centre)
            self.plot.addItem(name, ignoreBounds=True)
            self.names.append(name)
        self.centres, self.sizes = shapes.centres, shapes.sizes
        outline = shapes.outline
        self.outline.setData(outline[:, 0], outline[:, 1]) if len(outline) else self.outline.setData([], [])
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
