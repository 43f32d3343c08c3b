"""The map's points as drawn: one scatter item for a small map; for a big one the points around
the view, or a density image while too many are in view to draw one by one.

Speed rules (see FACTS.md): arrays in, never a Python loop over points; brushes come from a small
palette and are indexed with a code array (``set_brush_codes``). A map with more points than
``density_above`` is drawn as a density image (``explorer.gui.density``) while more than that are
in view (1M points one by one: ~350 ms a repaint); zoomed in, the scatter holds only the points
around the view (at most ``loaded_max``), so a repaint never walks all of them.

``PointLayers`` owns those items (the points, the density image, and the selection's own density
image for a big selection) and which of them shows; ``MapView`` owns everything else drawn
above them and tells the layers the map (``set_map``), its colours (``set_colours``) and when the
view moved (``refresh_view``). For a big map, which of the two to draw and the density image are
worked out on a worker (``explorer.gui.density.view_layer``, latest request wins); a small map's
work is done at once (``JobRunner.inline_below``).

``Palettes`` turns a palette's description (``explorer.gui.colouring``: (hex colour, alpha) per
entry) into brushes, once per description.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QBrush, QColor

from explorer.gui import style
from explorer.gui.density import ViewLayer, density_image, inside, view_layer, with_outline
from explorer.gui.jobs import JobRunner

DENSITY_ABOVE = 150_000
LOADED_MAX = 300_000
OVERLAY_POINTS_MAX = 20_000  # in density mode, more selected points in view than this become an image too
RASTER_MAX = 4096  # pixels along a side of the density image, at most
SELECTION_RGBA = (255, 216, 77, 255)  # the selection's ring, as on the points


def set_brush_codes(item: pg.ScatterPlotItem, palette: np.ndarray, codes: np.ndarray) -> None:
    """``item.setBrush(palette[codes])`` without pyqtgraph's per-point Python loop.

    pyqtgraph looks up every point's symbol in its atlas one by one (about 0.5 s at 100k
    points). Our points share symbol, size and pen and take their brush from a small palette,
    so the atlas is asked once per palette entry and the per-point rectangles are filled with
    one numpy gather. Falls back to ``setBrush`` if pyqtgraph's internals are not as expected.
    """
    data = item.data
    try:
        if len(codes) != len(data) or (data["size"] != -1).any() or data["pen"].dtype != object:
            raise TypeError("points carry their own size or pen")
        styles = [(item.opts["symbol"], item.opts["size"], item.opts["pen"], brush) for brush in palette]
        rects = np.array(item.fragmentAtlas[styles], dtype=data["sourceRect"].dtype)
        data["brush"] = palette[codes]
        data["sourceRect"] = rects[codes]
        item._maybeRebuildAtlas()
        item._updateMaxSpotSizes(data=data)
        item.invalidate()
    except (AttributeError, KeyError, TypeError, ValueError):
        item.setBrush(palette[codes])


def _brush(hex_colour: str, alpha: int = 255) -> QBrush:
    colour = QColor(style.display_colour(hex_colour)) if hex_colour.startswith("#") else QColor(hex_colour)
    colour.setAlpha(alpha)
    return QBrush(colour)


class Palettes:
    """Brush palettes by their description, built once and reused while the colours stay the same."""

    def __init__(self) -> None:
        self._cache: dict[tuple, np.ndarray] = {}

    def get(self, spec: tuple[tuple[str, int], ...]) -> np.ndarray:
        """(P + 1,) brushes for ``spec`` ((hex colour, alpha) each), a transparent one last."""
        palette = self._cache.get(spec)
        if palette is None:
            brushes = [_brush(colour, alpha) for colour, alpha in spec] + [QBrush(QColor(0, 0, 0, 0))]
            palette = np.empty(len(brushes), object)
            palette[:] = brushes
            if len(self._cache) > 32:
                self._cache.clear()
            self._cache[spec] = palette
        return palette


class PassivePoints(pg.ScatterPlotItem):
    """A scatter item that never takes mouse events (picking is the view's job)."""

    def mouseClickEvent(self, ev):
        ev.ignore()

    def hoverEvent(self, ev):
        pass


class MapPoints(PassivePoints):
    """The map's points: positions go in without pyqtgraph's per-point symbol lookup, which
    ``set_brush_codes`` then does once per palette entry (1M points: 1.9 s -> 0.6 s), and without
    its ``np.empty`` of the point records (numpy fills their object fields one record at a time:
    0.8 s at 1M points, against 0.1 s for zeros and one fill per field)."""

    _deferred = False
    _OBJECTS = ("symbol", "pen", "brush", "data", "item")

    def set_positions(self, xy: np.ndarray, size: float, palette: np.ndarray, codes: np.ndarray) -> None:
        self._deferred = True
        try:
            if set(self._OBJECTS) <= set(self.data.dtype.names or ()):
                self._fill(xy, size)
            else:  # not the records this was written for: pyqtgraph's own way
                self.setData(pos=xy, size=size)
        finally:
            self._deferred = False
        set_brush_codes(self, palette, codes)

    def _fill(self, xy: np.ndarray, size: float) -> None:
        """``setData(pos=xy, size=size)`` as pyqtgraph's ``addPoints`` does it, records zeroed first."""
        data = np.zeros(len(xy), self.data.dtype)
        for name in self._OBJECTS:
            data[name] = None
        data["x"], data["y"] = xy[:, 0], xy[:, 1]
        data["size"] = -1  # the item's size
        data["visible"] = True
        self.data = data
        self.setSize(size, update=False, dataSet=data)
        self.prepareGeometryChange()
        self.informViewBoundsChanged()
        self.bounds = [None, None]
        self.invalidate()
        self.sigPlotChanged.emit(self)

    def updateSpots(self, dataSet=None):
        if not self._deferred:
            super().updateSpots(dataSet)


class PointLayers:
    """The points of the map in ``plot`` (a ``pg.PlotWidget`` on ``view_box``), as a scatter or a
    density image. ``redraw_overlays`` is called when what is drawn changed under the overlays
    (the part of a big map that is drawn, or density mode on or off)."""

    density_above = DENSITY_ABOVE  # class attributes, so tests can try the big-map paths on small maps
    loaded_max = LOADED_MAX
    overlay_points_max = OVERLAY_POINTS_MAX

    def __init__(self, plot: pg.PlotWidget, view_box: pg.ViewBox, redraw_overlays: Callable[[], None]) -> None:
        self.plot, self.view_box, self._redraw_overlays = plot, view_box, redraw_overlays
        self.xy = np.empty((0, 2), np.float32)
        self.size = 6.0
        self.palette = np.empty(0, object)
        self.codes = np.empty(0, np.int64)  # (N,) index into ``palette`` per point
        # A big map: None = every point is in the scatter (small maps); else the rows that are.
        self.loaded: np.ndarray | None = None
        self.loaded_rect: tuple[float, float, float, float] | None = None
        self.density_mode = False  # the density image stands in for the points
        self.density_rect: tuple[float, float, float, float] | None = None
        self._rgba: tuple[np.ndarray, np.ndarray] | None = None  # (palette, its (P, 4) uint8 colours)
        # The density stand-ins for the points and for a big selection: never part of "fit".
        self.density = pg.ImageItem()
        self.density_selected = pg.ImageItem()
        for z, image in ((0, self.density), (3, self.density_selected)):
            image.setZValue(z)
            image.hide()
            plot.addItem(image, ignoreBounds=True)
        self.points = MapPoints(pxMode=True, pen=None, size=self.size, symbol="o")
        self.points.setZValue(0)
        plot.addItem(self.points)
        self.drawing = JobRunner(latest_wins=True)  # ``view_layer`` for the view, off the GUI thread
        self.drawing.finished.connect(self._view_ready)

    @property
    def busy(self) -> bool:
        """The drawing of the view is being worked out."""
        return self.drawing.busy

    # ---- what is drawn -------------------------------------------------------------------
    def set_map(self, xy: np.ndarray, size: float) -> None:
        """The map's (N, 2) coordinates and its point size (drawn by ``draw``)."""
        self.xy, self.size = xy, size

    def set_colours(self, palette: np.ndarray, codes: np.ndarray) -> None:
        """The (P,) brushes and (N,) code per point (drawn by ``draw`` or ``recolour``)."""
        self.palette, self.codes = palette, codes

    def clear(self) -> None:
        """No map: nothing drawn."""
        self.points.clear()
        self.loaded, self.loaded_rect, self.density_mode = None, None, False
        self.density.hide()
        self.density_selected.hide()

    @property
    def large(self) -> bool:
        """More points than ``density_above``: the scatter holds only the points around the view,
        and a density image stands in for them while more than that are in view."""
        return len(self.xy) > self.density_above

    def draw(self, positions: np.ndarray) -> None:
        """Draw the points at ``positions`` (N, 2) (the map's own, or a frame of a move to them);
        a big map draws the points around the view or the density image (after a fit)."""
        if self.large:
            self.loaded, self.loaded_rect = np.empty(0, np.int64), None
            self.points.clear()
            self.refresh_view()
            return
        self.loaded, self.density_mode = None, False
        self.density.hide()
        self.density_selected.hide()
        self.points.show()
        self.points.set_positions(positions, self.size, self.palette, self.codes)

    def recolour(self) -> None:
        """The colours changed (``set_colours``): re-brush what is drawn."""
        if self.loaded is None:
            set_brush_codes(self.points, self.palette, self.codes)
        elif len(self.loaded):
            set_brush_codes(self.points, self.palette, self.codes[self.loaded])
        if self.density_mode:
            self.refresh_view()

    def dim(self, dimmed: bool) -> None:
        """Dim the points (something is selected) or not."""
        for layer in (self.points, self.density):
            layer.setOpacity(0.45 if dimmed else 1.0)

    def drawn_part(self, rows: np.ndarray) -> np.ndarray:
        """Of ``rows``, those in the part of a big map that is drawn (the density image's
        rectangle, or the loaded points' region); all of them on a small map."""
        rows = np.asarray(rows, np.int64)
        if not self.large:
            return rows
        region = self.density_rect if self.density_mode else self.loaded_rect
        if region is None or len(rows) == 0:
            return rows[:0]
        return rows[inside(self.xy[rows], region)]

    def too_many_to_ring(self, count: int) -> bool:
        """In density mode, more overlay points than this cost a repaint each: draw none (or an image)."""
        return self.density_mode and count > self.overlay_points_max

    def draw_selection(self, rows: np.ndarray) -> bool:
        """A big selection (``rows``, drawn part) in density mode as its own outlined density
        image; True when drawn so (the view then rings none), False when the view rings them."""
        if not self.too_many_to_ring(len(rows)):
            self.density_selected.hide()
            return False
        rect = self.density_rect
        shape, splat = self._raster()
        image = density_image(self.xy[rows], self.codes[rows], self._palette_rgba(), rect, shape, splat)
        self.density_selected.setImage(with_outline(image, SELECTION_RGBA), autoLevels=False)
        self.density_selected.setRect(rect[0], rect[1], rect[2] - rect[0], rect[3] - rect[1])
        self.density_selected.show()
        return True

    # ---- a map too big to draw point by point ---------------------------------------------
    def view_rect(self) -> tuple[float, float, float, float]:
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        return (float(x0), float(y0), float(x1), float(y1))

    def refresh_view(self) -> None:
        """Big maps: the density image when more than ``density_above`` points are in view, else
        the points around the view (and the overlays again when that changed), worked out on a
        worker (at once for a small map)."""
        if not self.large or len(self.palette) == 0:
            return
        rect = self.view_rect()
        shape, splat = self._raster()
        xy, codes, rgba = self.xy, self.codes, self._palette_rgba()
        loaded_region = None if self.density_mode else self.loaded_rect
        limits = (self.density_above, self.loaded_max)

        def job(progress, cancel):
            return xy, view_layer(xy, codes, rgba, rect, shape, splat, *limits, loaded_region)

        self.drawing.start("view", job, size=len(xy))

    def _view_ready(self, _request: int, _name: str, result: tuple[np.ndarray, ViewLayer]) -> None:
        xy, layer = result
        if xy is not self.xy:
            return  # worked out for a map no longer shown
        if layer.image is not None:
            if not self.density_mode:
                self.density_mode = True
                self.points.hide()
                self.points.clear()  # nothing to keep coloured while it is not drawn
                self.loaded, self.loaded_rect = np.empty(0, np.int64), None
            self._show_density(layer.image, layer.rect)
        else:
            changed = self.density_mode
            if self.density_mode:
                self.density_mode = False
                self.density.hide()
            if layer.loaded is not None:
                self.loaded, self.loaded_rect = layer.loaded, layer.region
                self.points.set_positions(self.xy[self.loaded], self.size, self.palette, self.codes[self.loaded])
                changed = True
            self.points.show()
            if not changed:
                return
        self._redraw_overlays()

    def _raster(self) -> tuple[tuple[int, int], int]:
        """The density image's (W, H) in device pixels of the view, and a drawn point's size in them."""
        ratio = self.plot.devicePixelRatioF()
        width = int(np.clip(round(self.view_box.width() * ratio), 1, RASTER_MAX))
        height = int(np.clip(round(self.view_box.height() * ratio), 1, RASTER_MAX))
        return (width, height), max(1, round(self.size * ratio))

    def _palette_rgba(self) -> np.ndarray:
        """(P, 4) uint8 colours of the current palette's brushes (built once per palette)."""
        palette = self.palette
        if self._rgba is None or self._rgba[0] is not palette:
            rgba = np.array([brush.color().getRgb() for brush in palette], np.uint8).reshape(-1, 4)
            self._rgba = (palette, rgba)
        return self._rgba[1]

    def _show_density(self, image: np.ndarray, rect) -> None:
        self.density.setImage(image, autoLevels=False)
        self.density.setRect(rect[0], rect[1], rect[2] - rect[0], rect[3] - rect[1])
        self.density.show()
        self.density_rect = rect
