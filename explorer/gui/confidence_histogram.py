"""How sure the pseudo-labels are, per class: one stepped line per class over confidence bins,
with a band for the filter's confidence range, to pick a threshold by eye.

``ConfidenceHistogram(session)`` shows every pseudo-label of the project (not only what the
filter keeps, so the band never hides the rest of the curve). Dragging the band or its edges, or
clicking the plot (which moves the lower edge there), emits ``rangePicked(low, high)``.
The counts come with the session's labels (``LabelState.confidence_counts``, counted on the
worker that read them): one curve per class, redrawn once per landing.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from explorer.gui import style
from explorer.gui.label_state import CONFIDENCE_BINS as BINS
from explorer.gui.session import Session


class ConfidenceHistogram(QWidget):
    rangePicked = Signal(float, float)  # confidence low, high the person dragged or clicked

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.counts = np.zeros((0, BINS), np.int64)
        self._dirty = True
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget(background=style.PLOT)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setXRange(0, 1, padding=0.01)
        self.plot.getPlotItem().setLabel("bottom", "confidence of pseudo-labels")
        self.plot.getPlotItem().getAxis("left").setWidth(36)
        self.plot.setToolTip(
            "Pseudo-labels per class by confidence (the whole project). Drag the band or its edges, "
            "or click, to set the filter's confidence range"
        )
        layout.addWidget(self.plot)
        self.band = pg.LinearRegionItem((0.0, 1.0), bounds=(0.0, 1.0), brush=pg.mkBrush(76, 139, 245, 40))
        self.band.setZValue(10)
        self.plot.addItem(self.band)
        self.band.sigRegionChangeFinished.connect(self._band_moved)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.curves: list[pg.PlotDataItem] = []
        self._quiet = False
        changed = session.coalesced(self._changed)
        for signal in (session.labelsChanged, session.classesChanged, session.mapChanged):
            signal.connect(changed)

    def set_range(self, low: float | None, high: float | None) -> None:
        """Show the band at ``low``..``high`` (None: the end of the axis) without emitting."""
        self._quiet = True
        try:
            self.band.setRegion((0.0 if low is None else low, 1.0 if high is None else high))
        finally:
            self._quiet = False

    def _changed(self) -> None:
        self._dirty = True
        if self.isVisible():
            self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty:
            self.refresh()

    def refresh(self) -> None:
        """Count again and redraw one curve per class."""
        self._dirty = False
        self.counts = self.session.state.confidence_counts
        for curve in self.curves:
            self.plot.removeItem(curve)
        edges = np.linspace(0.0, 1.0, BINS + 1)
        self.curves = []
        for label, counts in zip(self.session.classes, self.counts):  # a curve per class, not per label
            pen = pg.mkPen(style.display_colour(label.colour), width=1.6)
            curve = pg.PlotDataItem(edges, counts, stepMode="center", pen=pen, name=label.name)
            self.plot.addItem(curve)
            self.curves.append(curve)

    def _band_moved(self) -> None:
        if not self._quiet:
            low, high = self.band.getRegion()
            self.rangePicked.emit(round(float(low), 2), round(float(high), 2))

    def _clicked(self, event) -> None:
        view = self.plot.getPlotItem().getViewBox()
        if not view.sceneBoundingRect().contains(event.scenePos()):
            return
        x = float(np.clip(view.mapSceneToView(event.scenePos()).x(), 0.0, 1.0))
        _, high = self.band.getRegion()
        self.band.setRegion((min(x, high), high))  # emits through sigRegionChangeFinished
