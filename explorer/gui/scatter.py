"""The map: every item as one point, drawn by ``PointLayers`` (``explorer.gui.map_layers``: one
scatter item, or a density image for a big map zoomed out).

Speed rules (see FACTS.md): arrays in, never a Python loop over points; brushes come from a small
palette (grey, then per class one full-colour brush and a few fading pseudo-label brushes by
confidence) and are indexed with a code array; hover and click picking go through a spatial
index on the map coordinates (``explorer.gui.picking``), not through ``hoverable=True``. The
colour codes, hidden points and legend counts are worked out on a worker
(``explorer.gui.colouring.map_colours``, latest request wins; at once for a small map) whenever
the labels, classes, filter, legend or colour mode change, and a new map is drawn when they land.
Overlays (human labels, selection, current item, its neighbours, hover) are separate small items
drawn above.

Mouse: hover shows a card with the thumbnail; click selects (Ctrl toggles, Shift adds);
drag pans, Shift-drag draws a selection box, the Box/Lasso tools make a plain drag select;
hold Ctrl to add to the selection, Alt to take away from it. Wheel zooms.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFrame,
    QGraphicsPathItem,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.gui import style
from explorer.gui.cluster_overlay import ClusterOverlay
from explorer.gui.colouring import MODE_TITLES, MODES, MapColours, group_counts, map_colours
from explorer.gui.jobs import JobRunner
from explorer.gui.label_state import AlignedLabels
from explorer.gui.legend import Legend
from explorer.gui.map_layers import Palettes, PassivePoints, PointLayers
from explorer.gui.picking import PointIndex, rows_in_polygon
from explorer.gui.session import HUMAN, Session
from explorer.gui.shading import unlabelled_regions
from explorer.gui.thumbnails import Thumbnails
from explorer.store.ids import lookup_unsorted

HOVER_DELAY_MS = 30  # hover picking runs at most this often
HOVER_THUMB = 160
MORPH_FRAMES = 12  # frames of the move from the old layout to the new one
MORPH_MAX_POINTS = 30_000  # above this a frame costs too much: the new layout shows at once
VIEW_DELAY_MS = 60  # a big map's points or density image follow the view this long after it stops moving


def point_size(n: int) -> float:
    """Point diameter in pixels for a map of ``n`` points: big for a few, small for millions."""
    return float(np.clip(round(10.5 - 1.5 * math.log10(max(n, 1))), 3, 9))


class _MapViewBox(pg.ViewBox):
    """A view box that reports clicks and drawn regions instead of zooming into rectangles."""

    clicked = Signal(float, float, object)  # view x, y, keyboard modifiers
    regionDrawn = Signal(object, object)  # (M, 2) polygon in view coordinates, modifiers
    dragging = Signal(bool)

    def __init__(self) -> None:
        super().__init__(lockAspect=True, enableMenu=False, defaultPadding=0.04)
        self.tool = "pan"  # pan, box or lasso
        self._polygon: list[tuple[float, float]] = []
        self._shape = QGraphicsPathItem()
        self._shape.setPen(pg.mkPen(style.ACCENT, width=1.5, style=Qt.PenStyle.DashLine))
        self._shape.setBrush(QBrush(QColor(76, 139, 245, 40)))
        self._shape.setZValue(1000)
        self._shape.hide()
        self.addItem(self._shape, ignoreBounds=True)

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapToView(ev.pos())
            self.clicked.emit(p.x(), p.y(), ev.modifiers())
        else:
            super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):
        tool = self.tool
        if tool == "pan" and ev.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            tool = "box"
        if ev.button() != Qt.MouseButton.LeftButton or tool == "pan":
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        start, now = self.mapToView(ev.buttonDownPos()), self.mapToView(ev.pos())
        if ev.isStart():
            self.dragging.emit(True)
            self._polygon = [(start.x(), start.y())]
        if tool == "box":
            polygon = [(start.x(), start.y()), (now.x(), start.y()), (now.x(), now.y()), (start.x(), now.y())]
        else:
            self._polygon.append((now.x(), now.y()))
            polygon = self._polygon
        path = QPainterPath(QPointF(*polygon[0]))
        for x, y in polygon[1:]:
            path.lineTo(x, y)
        path.closeSubpath()
        self._shape.setPath(path)
        self._shape.show()
        if ev.isFinish():
            self._shape.hide()
            self.dragging.emit(False)
            self.regionDrawn.emit(np.array(polygon, np.float64), ev.modifiers())


class HoverCard(QFrame):
    """The small card beside the cursor: thumbnail, file name, label, source, confidence."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("HoverCard")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        self.image = QLabel()
        self.image.setFixedSize(HOVER_THUMB, HOVER_THUMB)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setMaximumWidth(HOVER_THUMB + 40)
        self.text.setWordWrap(True)
        layout.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.text)
        self.item_id = -1
        self.hide()

    def set_image(self, image, error: str = "") -> None:
        if image is None:
            self.image.setPixmap(QPixmap())
            self.image.setText(f"<span style='color:{style.MUTED}'>{error or 'loading…'}</span>")
        else:
            pixmap = QPixmap.fromImage(image)
            if max(pixmap.width(), pixmap.height()) < HOVER_THUMB:  # small originals: show them bigger
                pixmap = pixmap.scaled(
                    HOVER_THUMB,
                    HOVER_THUMB,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            self.image.setPixmap(pixmap)


class MapView(QWidget):
    """The interactive map of the session's current map."""

    def __init__(self, session: Session, thumbnails: Thumbnails, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.thumbnails = thumbnails
        self.index: PointIndex | None = None  # over the map coordinates, for picking; None: no map to pick from
        self.xy = np.empty((0, 2), np.float32)
        self._item_ids = np.empty(0, np.int64)
        self.size = 6.0
        self.drawn = False  # the current map has been handed to the scatter item
        self.previewing = False  # a quick PCA layout is shown while the map is computed
        self.colour_mode = "label"
        self._palettes = Palettes()
        self._colours: MapColours | None = None  # the colours drawn
        self._palette = np.empty(0, object)  # their brushes
        self._folders: tuple[np.ndarray, list[str]] | None = None
        self.hidden = np.zeros(0, bool)  # (N,) points of groups hidden in the legend, or outside the filter
        self.colouring = JobRunner(latest_wins=True, parent=self)  # ``map_colours``, off the GUI thread
        self.colouring.finished.connect(self._colours_ready)
        self._new_map: tuple | None = None  # (where its points start,) of a map drawn when its colours land
        self._morph: tuple[np.ndarray, np.ndarray, int] | None = None  # from, to, frame
        self._morph_timer = QTimer(self, interval=25, timeout=self._morph_step)
        self._hover_pos: QPointF | None = None
        self._hover_row: int | None = None
        self._dragging = False
        self._view_timer = QTimer(self, singleShot=True, interval=VIEW_DELAY_MS, timeout=self.refresh_view)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.view_box = _MapViewBox()
        layout.addWidget(self._tool_row())
        self.plot = pg.PlotWidget(viewBox=self.view_box, background=style.PLOT)
        self.plot.setFrameShape(QFrame.Shape.NoFrame)
        item = self.plot.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.hideButtons()
        item.setMenuEnabled(False)
        layout.addWidget(self.plot, 1)

        self.shade = pg.ImageItem()
        self.shade.setZValue(-1)
        self.shade.hide()
        self.plot.addItem(self.shade)
        self.layers = PointLayers(self.plot, self.view_box, self._draw_overlays)
        # the items the layers draw the points with (read by tests and benchmarks)
        self.points, self.density, self.density_selected = (
            self.layers.points,
            self.layers.density,
            self.layers.density_selected,
        )
        self.humans = PassivePoints(pxMode=True, pen=pg.mkPen("#ffffff", width=1.0), symbol="o")
        self.links = pg.PlotCurveItem(pen=pg.mkPen(255, 255, 255, 90, width=1), connect="pairs")
        self.neighbour_marks = PassivePoints(pxMode=True, pen=pg.mkPen("#ffffff", width=1.2), brush=None, symbol="o")
        self.selected = PassivePoints(pxMode=True, pen=pg.mkPen("#ffd84d", width=1.6), symbol="o")
        self.current_mark = PassivePoints(pxMode=True, pen=pg.mkPen("#ffffff", width=2.2), brush=None, symbol="o")
        self.hover_mark = PassivePoints(pxMode=True, pen=pg.mkPen("#ffffff", width=1.2), brush=None, symbol="o")
        for z, overlay in enumerate(
            (self.links, self.humans, self.selected, self.neighbour_marks, self.current_mark, self.hover_mark), start=1
        ):
            overlay.setZValue(z)
            self.plot.addItem(overlay)

        self.cluster_overlay = ClusterOverlay(self.plot)
        self.cluster_overlay.set_shown(self.cluster_box.isChecked())
        self.cluster_overlay.clicked.connect(self._on_cluster_clicked)
        self.cluster_overlay.menuRequested.connect(self.show_cluster_menu)
        self.legend = Legend(self.plot)
        self.legend.toggled.connect(lambda *_: self._recolour())
        self._recolour_soon = session.coalesced(self._recolour)  # once per landing
        self.card = HoverCard(self.plot)
        self._hover_timer = QTimer(self, singleShot=True, interval=HOVER_DELAY_MS, timeout=self._update_hover)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.plot.viewport().installEventFilter(self)
        self.view_box.clicked.connect(self._on_clicked)
        self.view_box.regionDrawn.connect(self._on_region)
        self.view_box.dragging.connect(self._on_dragging)
        self.view_box.sigRangeChanged.connect(self._on_range_changed)
        self.view_box.sigResized.connect(self._on_range_changed)

        session.mapChanged.connect(self._on_map)
        session.clustersChanged.connect(self._on_clusters)
        for signal in (session.labelsChanged, session.classesChanged, session.filterChanged):
            signal.connect(self._recolour_soon)
        session.labelsChanged.connect(session.coalesced(self._name_clusters))
        session.selectionChanged.connect(self._on_selection)
        session.currentChanged.connect(self._on_current)
        thumbnails.ready.connect(self._on_thumbnail)
        self._on_map()

    # ---- tool row -----------------------------------------------------------------------
    def _tool_row(self) -> QWidget:
        row = QWidget()
        row.setObjectName("Panel")
        layout = QHBoxLayout(row)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.setSpacing(4)
        self.tools = QButtonGroup(self)
        self.tools.setExclusive(True)
        for name, tip in (
            ("Pan", "Drag to pan, wheel to zoom (Shift-drag draws a selection box)"),
            ("Box", "Drag a box to select (Ctrl adds to the selection, Alt takes away)"),
            ("Lasso", "Draw around points to select them (Ctrl adds to the selection, Alt takes away)"),
        ):
            button = QToolButton(text=name, checkable=True, toolTip=tip)
            button.setAutoRaise(True)
            self.tools.addButton(button)
            layout.addWidget(button)
            button.toggled.connect(lambda on, n=name.lower(): on and self.set_tool(n))
        self.tools.buttons()[0].setChecked(True)
        fit = QToolButton(text="Fit", toolTip="Show the whole map")
        fit.setAutoRaise(True)
        fit.clicked.connect(self.fit)
        layout.addWidget(fit)
        layout.addSpacing(12)
        layout.addWidget(QLabel("Colour by"))
        self.colour_combo = QComboBox()
        for mode in MODES:
            self.colour_combo.addItem(MODE_TITLES[mode], mode)
        self.colour_combo.setToolTip("What the colours of the points mean (the legend counts follow the selection)")
        self.colour_combo.currentIndexChanged.connect(lambda _: self.set_colour_mode(self.colour_combo.currentData()))
        layout.addWidget(self.colour_combo)
        self.shade_box = QCheckBox("Where to label")
        self.shade_box.setToolTip("Shade the parts of the map with no human label and unsure pseudo-labels")
        self.shade_box.toggled.connect(lambda _: self._recolour())  # the shade is worked out with the colours
        layout.addWidget(self.shade_box)
        self.cluster_box = QCheckBox("Clusters", checked=True)
        self.cluster_box.setToolTip(
            "Outline and name the map's clusters: click a name to select its images, right-click to label them"
        )
        self.cluster_box.toggled.connect(lambda on: self.cluster_overlay.set_shown(on))
        layout.addWidget(self.cluster_box)
        layout.addStretch(1)
        self.hint = QLabel("")
        self.hint.setObjectName("Muted")
        self.hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # may be cut, never widens
        layout.addWidget(self.hint)
        return row

    def set_tool(self, tool: str) -> None:
        """pan, box or lasso: what a plain left drag does."""
        self.view_box.tool = tool
        for button in self.tools.buttons():
            if button.text().lower() == tool and not button.isChecked():
                button.setChecked(True)

    def centre_on(self, item_id: int) -> None:
        """Pan (keeping the zoom) so that ``item_id`` is in the middle of the map, and make it current."""
        rows = self.session.rows_of([item_id])
        if self.index is None or len(rows) == 0:
            return
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        x, y = self.xy[int(rows[0])]
        self.view_box.setRange(
            xRange=(x - (x1 - x0) / 2, x + (x1 - x0) / 2), yRange=(y - (y1 - y0) / 2, y + (y1 - y0) / 2), padding=0
        )
        self.session.set_current(int(item_id))

    def fit(self) -> None:
        """Show the whole map (from the coordinates: the scatter may hold only part of it)."""
        if len(self.xy):
            m, bounds = self.session.map, self.session.map_bounds  # the session's map: worked out on the worker
            ours = bounds is not None and m is not None and m.xy is self.xy
            lo, hi = bounds if ours else (self.xy.min(axis=0), self.xy.max(axis=0))
            lo, hi = np.asarray(lo).tolist(), np.asarray(hi).tolist()  # Python floats, not float32
            hi = self._clear_of_legend(lo, hi)
            self.view_box.setRange(xRange=(lo[0], hi[0]), yRange=(lo[1], hi[1]), padding=0.04)

    def _clear_of_legend(self, lo: list, hi: list) -> list:
        """``hi`` moved out so that the map fits beside the legend in the top-right corner: the
        range grows upwards or to the right, whichever gives up less of the view (names of
        clusters in that corner were hidden under it)."""
        area = self.plot.viewport().rect()
        if not self.legend.isVisible() or area.width() < 1 or area.height() < 1:
            return hi
        size = self.legend.size()
        share_x, share_y = (size.width() + 16) / area.width(), (size.height() + 16) / area.height()
        if min(share_x, share_y) >= 0.5:
            return hi  # a legend that big would squeeze the map: it stays over it
        if share_y <= share_x:
            return [hi[0], hi[1] + (hi[1] - lo[1]) * share_y / (1.0 - share_y)]
        return [hi[0] + (hi[0] - lo[0]) * share_x / (1.0 - share_x), hi[1]]

    @property
    def busy(self) -> bool:
        """Its colours or the drawing of a big map's view are being worked out."""
        return self.colouring.busy or self.layers.busy

    # ---- data ---------------------------------------------------------------------------
    def _on_map(self) -> None:
        m = self.session.map
        self.drawn = False
        self.previewing = False
        self._hide_hover()
        self._morph_timer.stop()
        old_ids, old_xy = self._item_ids, self.xy
        self._new_map = None
        if m is None or len(m.item_ids) == 0:
            self._colours = None
            self.xy = np.empty((0, 2), np.float32)
            self._item_ids = np.empty(0, np.int64)
            self.index = None
            self.layers.set_map(self.xy, self.size)
            self.layers.clear()
            for overlay in (self.humans, self.selected, self.neighbour_marks, self.current_mark):
                overlay.clear()
            self.links.setData([], [])
            self.shade.hide()
            self.legend.hide()
            self.hint.setText("")
            self.cluster_overlay.set_shapes(self.session.map_cluster_shapes)
            return
        self.xy = np.asarray(m.xy, np.float32)
        self._item_ids = np.asarray(m.item_ids, np.int64)
        built = self.session.map_index  # when opening, the worker built it
        self.index = built if built is not None and built.xy is self.xy else PointIndex(self.xy)
        self.size = point_size(len(self.xy))
        self.layers.set_map(self.xy, self.size)
        self._folders, self._colours = None, None
        self._new_map = (self._morph_start(old_ids, old_xy),)  # drawn when its colours land
        self._on_clusters()
        self._recolour_soon()

    def _draw_new_map(self, start: np.ndarray | None) -> None:
        """The map's colours are known: draw it (moving each point from ``start`` when given)."""
        self.legend.show()
        self._place_legend()
        self.fit()
        self.layers.draw(self.xy if start is None else start)
        self._update_overlays()
        self.drawn = True
        zoom = " · zoom in for single points" if self.layers.large else ""  # zoomed out it is a density image
        self.hint.setText(f"{len(self.xy):,} images · hover to preview · click to select{zoom}")
        if start is not None:
            self._morph = (start, self.xy, 0)
            self._morph_timer.start()

    # ---- clusters -----------------------------------------------------------------------
    def _on_clusters(self) -> None:
        self.cluster_overlay.set_shapes(self.session.map_cluster_shapes)  # worked out on the worker that read them
        self._name_clusters()
        if self.colour_mode == "cluster":
            self._recolour_soon()

    def _name_clusters(self) -> None:
        self.cluster_overlay.set_names([c.text for c in self.session.cluster_names()])

    def _on_cluster_clicked(self, cluster: int, modifiers) -> None:
        add = bool(modifiers & Qt.KeyboardModifier.ControlModifier)
        self.session.select_cluster(cluster, "add" if add else "replace")

    def show_cluster_menu(self, cluster: int, where: QPoint) -> QMenu:
        """Select the cluster, or label its images (those no person labelled) as a class."""
        s = self.session
        menu = QMenu(self)
        names = s.cluster_names()
        title = names[cluster].text if cluster < len(names) else f"cluster {cluster}"
        menu.addAction(f"Select {title}", lambda: s.select_cluster(cluster))
        menu.addSeparator()
        for k, label in enumerate(s.classes):
            key = f"\t{k + 1}" if k < 9 else ""
            menu.addAction(f"Label as {label.name}{key}", lambda c=label.id: s.label_cluster(cluster, c))
        menu.addAction("Label as a new class…", lambda: self._label_cluster_new(cluster))
        menu.popup(where)
        return menu

    def _label_cluster_new(self, cluster: int) -> None:
        name, ok = QInputDialog.getText(self, "Label cluster", "Class name:")
        if ok and name.strip():
            label = self.session.add_class(name.strip())
            if label is not None:
                self.session.label_cluster(cluster, label.id)

    def show_preview(self, item_ids: np.ndarray, xy: np.ndarray) -> None:
        """A quick layout (PCA) to look at while the real map is computed: points only, no
        picking; the map replaces it (moving each point from its preview place) when it lands."""
        self._morph_timer.stop()
        self.previewing = True
        self.index = None
        self._item_ids = np.asarray(item_ids, np.int64)
        self.xy = np.asarray(xy, np.float32)
        self.size = point_size(len(self.xy))
        self._colours, self._new_map = None, None
        self._palette = np.empty(2, object)
        self._palette[:] = [pg.mkBrush(style.UNLABELLED), pg.mkBrush(0, 0, 0, 0)]
        self.layers.set_map(self.xy, self.size)
        self.layers.set_colours(self._palette, np.zeros(len(self.xy), np.int64))
        for overlay in (self.humans, self.selected, self.neighbour_marks, self.current_mark):
            overlay.clear()
        self.density_selected.hide()
        self.links.setData([], [])
        self.legend.hide()
        self.fit()
        self.layers.draw(self.xy)
        self.hint.setText(f"{len(self.xy):,} images · quick preview (PCA) while the map is computed")

    # ---- moving from the old layout to the new one ------------------------------------------
    def _morph_start(self, old_ids: np.ndarray, old_xy: np.ndarray) -> np.ndarray | None:
        """Where each new point starts its move: its old place if it had one (else its new place);
        None when there is nothing to animate."""
        if len(old_ids) == 0 or len(self.xy) > MORPH_MAX_POINTS or len(old_xy) != len(old_ids):
            return None
        rows, found = lookup_unsorted(old_ids, self._item_ids)
        if not found.any():
            return None
        start = self.xy.copy()
        start[found] = old_xy[rows[found]]
        return None if np.allclose(start, self.xy) else start

    def _morph_step(self) -> None:
        if self._morph is None:
            self._morph_timer.stop()
            return
        start, end, frame = self._morph
        frame += 1
        t = frame / MORPH_FRAMES
        t = t * t * (3 - 2 * t)  # ease in and out
        self.layers.draw(start + (end - start) * t)
        if frame >= MORPH_FRAMES:
            self._morph = None
            self._morph_timer.stop()
        else:
            self._morph = (start, end, frame)

    # ---- a big map: its points or density image follow the view --------------------------------
    def _on_range_changed(self, *_) -> None:
        self._hide_hover()
        self.cluster_overlay.update_view()
        if self.layers.large:
            self._view_timer.start()  # restarted on every move: recomputed once the view rests

    def refresh_view(self) -> None:
        """Big maps: the density image, or the points around the view, for the view as it is now
        (``PointLayers.refresh_view``). Runs ``VIEW_DELAY_MS`` after the view stops moving (and at
        once when a map is drawn), never while painting."""
        self._view_timer.stop()
        self.layers.refresh_view()

    # ---- colours ------------------------------------------------------------------------
    def set_colour_mode(self, mode: str) -> None:
        """label, confidence, folder or review (see ``explorer.gui.colouring``)."""
        if mode not in MODES:
            raise ValueError(f"unknown colour mode {mode!r}")
        self.colour_mode = mode
        index = self.colour_combo.findData(mode)
        if index != self.colour_combo.currentIndex():
            self.colour_combo.setCurrentIndex(index)
        self._recolour()

    def _recolour(self) -> None:
        """Work the colours out again (``map_colours``: on a worker for a big map, at once for a
        small one); ``_colours_ready`` draws them."""
        if self.index is None:
            return
        s, xy, mode = self.session, self.xy, self.colour_mode
        aligned = s.state.aligned
        if len(aligned.source) != len(xy):  # labels not lined up with this map (yet)
            aligned = AlignedLabels(
                np.full(len(xy), -1, np.int64), np.zeros(len(xy), np.int8), np.full(len(xy), np.nan)
            )
        clusters, names = s.map_clusters, s.cluster_names() if mode == "cluster" else []
        what = {
            "clusters": clusters,
            "cluster_names": names,
            "folders": self._folders,
            "paths": s.paths,
            "item_ids": self._item_ids,
            "hidden_names": self.legend.hidden_names(),
            "kept": s.rows_in_filter(),
        }
        classes, shade = s.classes, self.shade_box.isChecked()

        def job(progress, cancel):
            regions = unlabelled_regions(xy, aligned.source, aligned.confidence) if shade else None
            return xy, map_colours(mode, aligned, classes, **what), regions

        self.colouring.start("colours", job, size=len(xy))

    def _colours_ready(self, _request: int, _name: str, result: tuple) -> None:
        xy, colours, shade = result
        if xy is not self.xy or self.index is None:
            return  # worked out for a map (or preview) no longer shown
        self._colours, self._folders = colours, colours.folders
        self._palette = self._palettes.get(colours.colouring.spec)
        self.hidden = colours.hidden
        self.legend.set_entries(colours.colouring.entries)
        self.layers.set_colours(self._palette, colours.codes)
        if self._new_map is not None:
            (start,), self._new_map = self._new_map, None
            self._draw_new_map(start)
        else:
            self.layers.recolour()
            self._update_overlays()
        self._show_shading(shade)

    def _update_legend_counts(self) -> None:
        if self._colours is None:
            return
        rows = self.session.rows_of(self.session.selection)
        kept = self.session.rows_in_filter()
        title = MODE_TITLES[self.colour_mode]
        totals = self._colours.totals  # of what the filter keeps
        if kept is not None and len(kept) == len(self.xy):
            rows = rows[kept[rows]]
            title += f" · {int(totals.sum()):,} of {len(self.xy):,} filtered"
        selected = group_counts(self._colours.colouring, rows) if len(rows) else None
        title += f" · {len(rows):,} selected" if len(rows) else ""
        self.legend.set_counts(totals, selected, title)
        self._place_legend()

    def _place_legend(self) -> None:
        area = self.plot.viewport().rect()
        # The overlay sits in no layout, so size it from its rows each time they change; never
        # taller than the map (many classes scroll inside it)
        hint = self.legend.size_within(max(0, area.height() - 16))
        self.legend.setFixedSize(hint)
        self.legend.move(max(0, area.right() - hint.width() - 8), 8)
        self.legend.raise_()

    def _show_shading(self, shade: tuple | None) -> None:
        """``shade``: (image, rect) of ``unlabelled_regions``, or None: no shade."""
        if shade is None or not self.shade_box.isChecked() or self.index is None:
            self.shade.hide()
            return
        image, rect = shade
        self.shade.setImage(image, autoLevels=False)
        self.shade.setRect(*rect)
        self.shade.show()

    def _update_overlays(self) -> None:
        self._draw_overlays()
        self._update_legend_counts()

    def _draw_overlays(self) -> None:
        """Human-label rings, the selection and the current item, for the drawn part of the map."""
        s = self.session
        if not self._coloured():
            return
        humans = np.flatnonzero((s.map_source == HUMAN) & ~self.hidden) if len(s.map_source) == len(self.xy) else []
        humans = self.layers.drawn_part(humans)
        if self.layers.too_many_to_ring(len(humans)):
            humans = humans[:0]  # their colours are in the density image; a ring each would cost a repaint
        self.humans.setData(pos=self.xy[humans], size=self.size + 3, brush=self._palette[self.layers.codes[humans]])
        self._draw_selection()
        self._on_current(-1 if s.current is None else s.current)

    def _coloured(self) -> bool:
        """The map's colours have landed (the overlays take their brushes)."""
        return self.index is not None and len(self.layers.codes) == len(self.xy) and self._new_map is None

    def _on_selection(self) -> None:
        if not self._coloured():
            return
        self._draw_selection()
        self._update_legend_counts()

    def _draw_selection(self) -> None:
        rows = self.session.rows_of(self.session.selection)
        shown = self.layers.drawn_part(rows)
        if self.layers.draw_selection(shown):  # too many to ring one by one: their own density image
            self.selected.clear()
        else:
            self.selected.setData(pos=self.xy[shown], size=self.size + 5, brush=self._palette[self.layers.codes[shown]])
        # Keep the rest visible but dimmed while something is selected.
        self.layers.dim(len(rows) > 0)
        self.humans.setOpacity(0.6 if len(rows) else 1.0)

    def _on_current(self, item_id: int) -> None:
        if self.index is None:
            return
        rows = self.session.rows_of([item_id]) if item_id >= 0 else np.empty(0, np.int64)
        if len(rows) == 0:
            self.current_mark.clear()
            self.neighbour_marks.clear()
            self.links.setData([], [])
            return
        row = int(rows[0])
        self.current_mark.setData(pos=self.xy[[row]], size=self.size + 12)
        neighbours, _ = self.session.neighbour_rows(item_id)
        self.neighbour_marks.setData(pos=self.xy[neighbours], size=self.size + 6)
        pairs = np.empty((2 * len(neighbours), 2), np.float32)
        pairs[0::2] = self.xy[row]
        pairs[1::2] = self.xy[neighbours]
        self.links.setData(pairs[:, 0], pairs[:, 1])

    # ---- picking ------------------------------------------------------------------------
    def pick(self, x: float, y: float, max_pixels: float | None = None) -> int | None:
        """The map row nearest to view point (x, y) within ``max_pixels`` screen pixels, or None."""
        m = self.session.map
        if self.index is None or m is None or len(m.item_ids) != len(self.xy):
            return None
        max_pixels = max_pixels if max_pixels is not None else max(6.0, self.size)
        pixel = self.view_box.viewPixelSize()[0] or 1.0
        return self.index.nearest(x, y, max_pixels * pixel, self.hidden)

    def viewport_pos(self, row: int) -> QPoint:
        """Where map row ``row`` is drawn, in the plot viewport's pixel coordinates (for tests
        and for placing cards)."""
        scene = self.view_box.mapViewToScene(QPointF(float(self.xy[row, 0]), float(self.xy[row, 1])))
        return self.plot.mapFromScene(scene)

    def _on_clicked(self, x: float, y: float, modifiers) -> None:
        row = self.pick(x, y)
        ctrl = bool(modifiers & Qt.KeyboardModifier.ControlModifier)
        shift = bool(modifiers & Qt.KeyboardModifier.ShiftModifier)
        if row is None:
            if not (ctrl or shift):
                self.session.clear_selection()
                self.session.set_current(None)
            return
        item_id = int(self.session.ids_of([row])[0])
        self.session.set_selection([item_id], "toggle" if ctrl else "add" if shift else "replace")
        self.session.set_current(item_id)

    def _on_region(self, polygon: np.ndarray, modifiers) -> None:
        rows = rows_in_polygon(self.xy, polygon, self.hidden)
        add = bool(modifiers & Qt.KeyboardModifier.ControlModifier)
        remove = bool(modifiers & Qt.KeyboardModifier.AltModifier)
        self.session.select_rows(rows, "remove" if remove else "add" if add else "replace")
        self.session.message.emit(f"{len(self.session.selection)} selected")

    def select_region(self, polygon, add: bool = False, remove: bool = False) -> None:
        """Select the points inside ``polygon`` ((M, 2) in map coordinates); ``add`` to the
        selection (Ctrl) or ``remove`` from it (Alt)."""
        mods = Qt.KeyboardModifier.NoModifier
        if add:
            mods = Qt.KeyboardModifier.ControlModifier
        if remove:
            mods = Qt.KeyboardModifier.AltModifier
        self._on_region(np.asarray(polygon, np.float64), mods)

    # ---- hover --------------------------------------------------------------------------
    def _on_dragging(self, active: bool) -> None:
        self._dragging = active
        if active:
            self._hide_hover()

    def _on_mouse_moved(self, scene_pos) -> None:
        self._hover_pos = QPointF(scene_pos)
        if not self._hover_timer.isActive():
            self._hover_timer.start()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Leave:
            self._hover_pos = None
            self._hide_hover()
        elif event.type() == QEvent.Type.Resize:
            self._place_legend()
        return False

    def stop(self) -> None:
        """No more hover or drawing work (the window is closing)."""
        self._hover_timer.stop()
        self._view_timer.stop()
        for runner in (self.colouring, self.layers.drawing):
            runner.cancel()
            runner.wait(5_000)
        self._hover_pos = None
        self._hide_hover()

    def _hide_hover(self) -> None:
        self._hover_row = None
        self.card.hide()
        self.hover_mark.clear()

    def _update_hover(self) -> None:
        if self._hover_pos is None or self.index is None or self._dragging:
            self._hide_hover()
            return
        p = self.view_box.mapSceneToView(self._hover_pos)
        row = self.pick(p.x(), p.y())
        if row is None:
            self._hide_hover()
            return
        if row != self._hover_row:
            self._hover_row = row
            self.hover_mark.setData(pos=self.xy[[row]], size=self.size + 8)
            self._fill_card(row)
        self._place_card(self.plot.mapFromScene(self._hover_pos))

    def hover_row(self, row: int) -> None:
        """Show the hover card for map row ``row`` as if the mouse were on it."""
        self._hover_pos = self.view_box.mapViewToScene(QPointF(float(self.xy[row, 0]), float(self.xy[row, 1])))
        self._update_hover()

    def _fill_card(self, row: int) -> None:
        item_id = int(self.session.ids_of([row])[0])
        info = self.session.info(item_id)
        self.card.item_id = item_id
        name = info.path.rsplit("/", 1)[-1] or f"item {item_id}"
        if info.class_id >= 0:
            colour = style.display_colour(info.colour).name()
            label = f"<span style='color:{colour}'>●</span> <b>{_escape(info.class_name)}</b>"
            detail = info.source if info.source != "pseudo" else f"pseudo · confidence {info.confidence:.2f}"
            label += f"<br><span style='color:{style.MUTED}'>{detail}</span>"
        else:
            label = f"<span style='color:{style.MUTED}'>unlabelled</span>"
        self.card.text.setText(f"<b>{_escape(name)}</b><br>{label}")
        self.card.set_image(self.thumbnails.get(item_id, HOVER_THUMB), self.thumbnails.errors.get(item_id, ""))
        self.card.adjustSize()

    def _place_card(self, cursor: QPoint) -> None:
        # Beside the cursor, never under it; flipped near the edges.
        card, area = self.card.sizeHint(), self.plot.viewport().rect()
        x = cursor.x() + 18
        if x + card.width() > area.right():
            x = cursor.x() - 18 - card.width()
        y = cursor.y() + 18
        if y + card.height() > area.bottom():
            y = cursor.y() - 18 - card.height()
        self.card.move(max(0, x), max(0, y))
        self.card.show()
        self.card.raise_()

    def _on_thumbnail(self, item_id: int, size: int) -> None:
        if self.card.isVisible() and item_id == self.card.item_id and size == HOVER_THUMB:
            self.card.set_image(self.thumbnails.get(item_id, size), self.thumbnails.errors.get(item_id, ""))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
