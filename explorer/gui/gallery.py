"""A virtual thumbnail grid of the selection, the current item's neighbours, or any list.

``Gallery(session, thumbnails)`` is the panel: a title with the count, a source chooser
(Selection / Neighbours / the last list set / Filtered: what the filter bar keeps, every image
when no filter is set) and a tile-size slider above a ``TileGrid``.

- ``set_items(item_ids, title)`` shows any list (the review queue, search results...);
  ``show_selection()`` and ``show_neighbours()`` switch back to following the session.
- Clicking a tile selects it and makes it current, like a click on the map; Ctrl/Shift-click,
  rubber band and Ctrl+A make the grid's selection the session's selection. While the gallery
  shows the selection, picking tiles inside it does not shrink the grid (the list stays until
  the selection changes elsewhere).
- ``activated(item_id)`` fires on a double-click (the window centres the map on it).
- Labels recolour the frames in place (``labelsChanged`` only repaints the visible tiles).

``TileGrid`` is the grid alone: a ``QListView`` in icon mode over an item-id array
(``TileModel``), uniform tile sizes, painted by ``TileDelegate``; only the tiles Qt paints (the
visible ones) ask ``Thumbnails`` for images, so 100k items scroll like 100. Each tile shows the
thumbnail in a frame of its class colour (solid for human labels, dashed and thinner for
pseudo-labels) and a caption: class name, plus the confidence for a pseudo-label.
``paint_thumbnail`` draws one framed image, for other views (the review queue's large view).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QSlider,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from explorer.gui import style
from explorer.gui.session import ItemInfo, Session
from explorer.gui.thumbnails import Thumbnails

ID_ROLE = Qt.ItemDataRole.UserRole
DECODE_SIZES = (96, 160, 256)  # thumbnails are decoded at the smallest of these that fills a tile
MIN_TILE, MAX_TILE, DEFAULT_TILE = 48, 256, 112
CAPTION = 18  # caption height under a tile, pixels
MARGIN = 4  # space around each tile, pixels


def decode_size(tile: int) -> int:
    """The thumbnail size (pixels) to ask for when tiles are ``tile`` pixels wide."""
    return next((s for s in DECODE_SIZES if s >= tile), DECODE_SIZES[-1])


def frame_pen(info: ItemInfo, width: float = 3.0) -> QPen | None:
    """The frame of a labelled item: its class colour, solid for a human label, dashed and thinner
    for a pseudo-label; None when unlabelled."""
    if info.class_id < 0:
        return None
    pseudo = info.source == "pseudo"
    pen = QPen(style.display_colour(info.colour), max(1.0, width * (0.6 if pseudo else 1.0)))
    if pseudo:
        pen.setStyle(Qt.PenStyle.DashLine)
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    return pen


def caption_of(info: ItemInfo) -> str:
    """Class name (and confidence for a pseudo-label), or the file name when unlabelled."""
    if info.class_id < 0:
        return info.path.rsplit("/", 1)[-1]
    if info.source == "pseudo":
        return f"{info.class_name} {info.confidence:.2f}"
    return info.class_name


def paint_thumbnail(
    painter: QPainter, rect: QRect, image: QImage | None, info: ItemInfo, text: str = "", frame: float = 3.0
) -> None:
    """``image`` scaled to fit ``rect`` (aspect kept) on the canvas colour, framed by its label
    (see ``frame_pen``); ``text`` (e.g. "loading…") is drawn when there is no image."""
    painter.fillRect(rect, QColor(style.PLOT))
    inner = rect.adjusted(int(frame) + 2, int(frame) + 2, -int(frame) - 2, -int(frame) - 2)
    if image is not None and not image.isNull():
        size = image.size().scaled(inner.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(0, 0, size.width(), size.height())
        target.moveCenter(inner.center())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.drawImage(target, image)
    elif text:
        painter.setPen(QColor(style.MUTED))
        painter.drawText(inner, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
    pen = frame_pen(info, frame)
    if pen is not None:
        half = pen.widthF() / 2
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect.toRectF().adjusted(half, half, -half, -half))


class TileModel(QAbstractListModel):
    """A list model over an int64 array of item ids; data comes from the session when asked."""

    def __init__(self, session: Session, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.item_ids = np.empty(0, np.int64)
        self.selected = np.zeros(0, bool)  # (N,) which tiles are in the session's selection

    def set_items(self, item_ids) -> None:
        self.beginResetModel()
        self.item_ids = np.ascontiguousarray(np.asarray(item_ids, np.int64).reshape(-1))
        self.selected = np.zeros(len(self.item_ids), bool)
        self.endResetModel()

    def set_selected_ids(self, selection: np.ndarray) -> None:
        """Mark the tiles whose ids are in ``selection`` (one vectorised lookup, no Qt ranges)."""
        if len(self.item_ids) and len(selection):
            self.selected = np.isin(self.item_ids, selection)
        else:
            self.selected = np.zeros(len(self.item_ids), bool)

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.item_ids)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.item_ids):
            return None
        item_id = int(self.item_ids[index.row()])
        if role == ID_ROLE:
            return item_id
        if role == Qt.ItemDataRole.DisplayRole:
            return caption_of(self.session.info(item_id))
        if role == Qt.ItemDataRole.ToolTipRole:
            info = self.session.info(item_id)
            label = "unlabelled"
            if info.class_id >= 0:
                label = f"{info.class_name} · {info.source}"
                if info.source == "pseudo":
                    label += f" · confidence {info.confidence:.2f}"
            return f"{info.path}\n{label}"
        return None

    def row_of(self, item_id: int) -> int:
        """The row showing ``item_id``, -1 when not shown."""
        rows = np.flatnonzero(self.item_ids == int(item_id))
        return int(rows[0]) if len(rows) else -1

    def rows_to_ids(self, selection: QItemSelection) -> np.ndarray:
        """Item ids of the rows in ``selection`` (walked as ranges, not one index per row)."""
        parts = [np.arange(r.top(), r.bottom() + 1) for r in selection if r.isValid()]
        rows = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        return self.item_ids[rows]


class TileDelegate(QStyledItemDelegate):
    """Paints one tile: selection background, framed thumbnail, caption."""

    def __init__(self, session: Session, thumbnails: Thumbnails, model: TileModel, parent=None) -> None:
        super().__init__(parent)
        self.session, self.thumbnails, self.model = session, thumbnails, model
        self.tile = DEFAULT_TILE
        self.current_id = -1

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return QSize(self.tile + 2 * MARGIN, self.tile + CAPTION + 2 * MARGIN)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        row = index.row()
        if row >= len(self.model.item_ids):
            return
        item_id = int(self.model.item_ids[row])
        info = self.session.info(item_id)
        cell = option.rect
        painter.save()
        if self.model.selected[row]:  # the session's selection, not the view's own
            painter.fillRect(cell.adjusted(1, 1, -1, -1), QColor(76, 139, 245, 110))
        image = self.thumbnails.get(item_id, decode_size(self.tile))
        box = QRect(cell.left() + MARGIN, cell.top() + MARGIN, self.tile, self.tile)
        error = self.thumbnails.errors.get(item_id)
        paint_thumbnail(painter, box, image, info, "!" if error else "", frame=3.0 if self.tile >= 72 else 2.0)
        if item_id == self.current_id:
            painter.setPen(QPen(QColor(style.TEXT), 1.5, Qt.PenStyle.SolidLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(cell.adjusted(1, 1, -2, -2))
        text_rect = QRect(cell.left() + MARGIN, box.bottom() + 2, self.tile, CAPTION - 2)
        painter.setPen(QColor(style.display_colour(info.colour)) if info.class_id >= 0 else QColor(style.MUTED))
        font = painter.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        painter.setFont(font)
        caption = painter.fontMetrics().elidedText(caption_of(info), Qt.TextElideMode.ElideMiddle, self.tile)
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, caption)
        painter.restore()


class TileGrid(QListView):
    """The virtual grid (see the module docstring); ``item_ids`` are the ids shown, in order."""

    def __init__(self, session: Session, thumbnails: Thumbnails, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.thumbnails = session, thumbnails
        self.tiles = TileModel(session, self)
        self.delegate = TileDelegate(session, thumbnails, self.tiles, self)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setWrapping(True)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setSelectionRectVisible(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setItemDelegate(self.delegate)
        self.setModel(self.tiles)
        self.toggling = False  # set by the latest selection gesture (see selectionCommand)
        self.setStyleSheet(
            f"QListView {{ background: {style.PLOT}; border: 1px solid {style.BORDER}; border-radius: 4px; }}"
        )
        self._apply_tile_size()
        # Thumbnails land one by one: repaint the visible tiles at most every 40 ms.
        self._repaint = QTimer(self, singleShot=True, interval=40, timeout=self.viewport().update)
        thumbnails.ready.connect(self._on_thumbnail)

    @property
    def item_ids(self) -> np.ndarray:
        return self.tiles.item_ids

    def selectionCommand(self, index: QModelIndex, event=None) -> QItemSelectionModel.SelectionFlag:
        # Remember how the person's gesture changes the selection: Toggle (Ctrl) edits the
        # session's selection tile by tile, anything else replaces it.
        command = super().selectionCommand(index, event)
        self.toggling = bool(command & QItemSelectionModel.SelectionFlag.Toggle)
        return command

    def keyboardSearch(self, search: str) -> None:
        pass  # typed letters belong to the window's keys, never a jump that changes the selection

    def selectAll(self) -> None:
        self.toggling = False
        super().selectAll()

    @property
    def tile_size(self) -> int:
        return self.delegate.tile

    def set_tile_size(self, pixels: int) -> None:
        """Tiles ``pixels`` wide (thumbnail square), keeping the first visible tile in view."""
        pixels = int(np.clip(pixels, MIN_TILE, MAX_TILE))
        if pixels == self.delegate.tile:
            return
        anchor = self.indexAt(QPoint(2 * MARGIN, 2 * MARGIN))
        self.delegate.tile = pixels
        self._apply_tile_size()
        if anchor.isValid():
            self.scrollTo(anchor, QAbstractItemView.ScrollHint.PositionAtTop)

    def _apply_tile_size(self) -> None:
        size = self.delegate.sizeHint(None, None)
        self.setGridSize(size)
        self.setIconSize(QSize(self.delegate.tile, self.delegate.tile))
        self.verticalScrollBar().setSingleStep(max(8, size.height() // 4))
        self.doItemsLayout()

    def set_items(self, item_ids) -> None:
        self.tiles.set_items(item_ids)

    def set_current_id(self, item_id: int) -> None:
        """Outline ``item_id``'s tile as the current one (when shown)."""
        self.delegate.current_id = int(item_id)
        self.viewport().update()

    def rect_of(self, item_id: int) -> QRect:
        """Viewport rectangle of ``item_id``'s tile (empty when not shown)."""
        row = self.tiles.row_of(item_id)
        return self.visualRect(self.tiles.index(row)) if row >= 0 else QRect()

    def visible_ids(self) -> np.ndarray:
        """Item ids of the tiles that intersect the viewport, in order."""
        if len(self.item_ids) == 0:
            return np.empty(0, np.int64)
        first = self.indexAt(QPoint(MARGIN, MARGIN))
        if not first.isValid():
            first = self.tiles.index(0)
        out, row, area = [], first.row(), self.viewport().rect()
        while row < len(self.item_ids):
            rect = self.visualRect(self.tiles.index(row))
            if rect.top() > area.bottom():
                break
            if rect.intersects(area):
                out.append(int(self.item_ids[row]))
            row += 1
        return np.array(out, np.int64)

    def _on_thumbnail(self, _item_id: int, size: int) -> None:
        if size == decode_size(self.delegate.tile) and not self._repaint.isActive():
            self._repaint.start()


class Gallery(QWidget):
    """The gallery panel (see the module docstring)."""

    activated = Signal(int)  # item id double-clicked: centre the map on it
    itemsShown = Signal(int)  # how many tiles the grid now shows

    SOURCES = ("selection", "neighbours", "list", "filtered")

    def __init__(self, session: Session, thumbnails: Thumbnails, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Panel")
        self.session = session
        self.source = "selection"
        self._list = np.empty(0, np.int64)
        self._list_title = "List"
        self._title = "Selection"
        self._syncing = False  # the grid is being set from the session: do not echo back
        self._pushing = False  # the session is being set from the grid: keep the tiles

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(6)
        top = QHBoxLayout()
        self.heading = QLabel("GALLERY")
        self.heading.setObjectName("Heading")
        top.addWidget(self.heading)
        self.count_label = QLabel("")
        self.count_label.setObjectName("Muted")
        top.addWidget(self.count_label, 1)
        self.source_box = QComboBox()
        self.source_box.addItems(["Selection", "Neighbours of current", "List", "Filtered"])
        self.source_box.setToolTip("What the gallery shows")
        self.source_box.activated.connect(lambda k: self._choose_source(self.SOURCES[k]))
        top.addWidget(self.source_box)
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(MIN_TILE, MAX_TILE)
        self.size_slider.setValue(DEFAULT_TILE)
        self.size_slider.setFixedWidth(110)
        self.size_slider.setToolTip("Tile size")
        self.size_slider.valueChanged.connect(self.set_tile_size)
        top.addWidget(self.size_slider)
        layout.addLayout(top)

        self.grid = TileGrid(session, thumbnails)
        layout.addWidget(self.grid, 1)
        self.grid.selectionModel().selectionChanged.connect(self._on_grid_selection)
        self.grid.selectionModel().currentChanged.connect(self._on_grid_current)
        self.grid.doubleClicked.connect(lambda index: self.activated.emit(int(index.data(ID_ROLE))))

        session.selectionChanged.connect(self._on_session_selection)
        session.currentChanged.connect(self._on_session_current)
        session.labelsChanged.connect(self.grid.viewport().update)  # recolour, no rebuild
        session.classesChanged.connect(self.grid.viewport().update)
        session.mapChanged.connect(self._on_map)
        session.projectChanged.connect(self._on_project)
        session.filterChanged.connect(self._on_filter)
        self._refresh_source()

    # ---- what is shown ------------------------------------------------------------------
    @property
    def item_ids(self) -> np.ndarray:
        return self.grid.item_ids

    def set_items(self, item_ids, title: str = "List") -> None:
        """Show ``item_ids`` (in this order) until another source is chosen."""
        self._list = np.asarray(item_ids, np.int64).reshape(-1).copy()
        self._list_title = title
        self.source_box.setItemText(2, title)
        self._choose_source("list")

    def show_selection(self) -> None:
        self._choose_source("selection")

    def show_neighbours(self) -> None:
        self._choose_source("neighbours")

    def show_filtered(self) -> None:
        self._choose_source("filtered")

    def set_tile_size(self, pixels: int) -> None:
        self.grid.set_tile_size(pixels)
        if self.size_slider.value() != self.grid.tile_size:
            self.size_slider.setValue(self.grid.tile_size)

    def _choose_source(self, source: str) -> None:
        if source not in self.SOURCES:
            raise ValueError(f"unknown gallery source {source!r}; expected one of {', '.join(self.SOURCES)}")
        self.source = source
        self.source_box.setCurrentIndex(self.SOURCES.index(source))
        self._refresh_source()

    def _refresh_source(self) -> None:
        s = self.session
        if self.source == "selection":
            ids, self._title = s.selection, "Selection"
        elif self.source == "neighbours":
            current = s.current
            if current is None:
                ids = np.empty(0, np.int64)
            else:
                ids = np.concatenate([[current], s.neighbours(current)[0]]).astype(np.int64)
            self._title = "Neighbours"
        elif self.source == "filtered":
            ids = s.filtered if s.filtered is not None else s.labels.item_ids
            self._title = "Filtered" if s.filtered is not None else "Every image (no filter)"
        else:
            ids, self._title = self._list, self._list_title
        self._show(ids)

    def _show(self, ids: np.ndarray) -> None:
        self._syncing = True
        try:
            self.grid.set_items(ids)
            self.grid.set_current_id(self.session.current if self.session.current is not None else -1)
            self._select_from_session()
            self._current_from_session()
        finally:
            self._syncing = False
        n = len(ids)
        self.count_label.setText(f"{self._title} · {n:,} image{'s' if n != 1 else ''}" if n else self._empty_text())
        self.itemsShown.emit(n)

    def _empty_text(self) -> str:
        if self.source == "selection":
            return "Selection · select points on the map"
        if self.source == "neighbours":
            return "Neighbours · click an image first"
        if self.source == "filtered":
            return "Filtered · nothing matches the filter"
        return f"{self._title} · empty"

    # ---- session -> grid ----------------------------------------------------------------
    def _select_from_session(self, clear_view: bool = True) -> None:
        self.grid.tiles.set_selected_ids(self.session.selection)
        if clear_view:  # the view's own selection only tracks a gesture in progress
            self.grid.selectionModel().clearSelection()
        self.grid.viewport().update()

    def _current_from_session(self) -> None:
        current = self.session.current
        row = self.grid.tiles.row_of(current) if current is not None else -1
        model = self.grid.selectionModel()
        if row >= 0:
            index = self.grid.tiles.index(row)
            model.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.NoUpdate)
            self.grid.scrollTo(index, QAbstractItemView.ScrollHint.EnsureVisible)
        else:
            model.setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.NoUpdate)

    def _on_session_selection(self) -> None:
        if self.source == "selection" and not self._pushing:
            self._refresh_source()
            return
        self._syncing = True
        try:
            self._select_from_session(clear_view=not self._pushing)
        finally:
            self._syncing = False

    def _on_session_current(self, item_id: int) -> None:
        self.grid.set_current_id(item_id)
        if self.source == "neighbours" and not self._pushing:
            self._refresh_source()
            return
        self._syncing = True
        try:
            self._current_from_session()
        finally:
            self._syncing = False

    def _on_map(self) -> None:
        if self.source == "neighbours":
            self._refresh_source()

    def _on_filter(self) -> None:
        if self.source == "filtered":
            self._refresh_source()

    def _on_project(self) -> None:
        self._list = np.empty(0, np.int64)
        self._refresh_source()

    # ---- grid -> session ----------------------------------------------------------------
    def _on_grid_selection(self, selected: QItemSelection, deselected: QItemSelection) -> None:
        if self._syncing:
            return
        tiles = self.grid.tiles
        self._pushing = True
        try:
            if self.grid.toggling:  # Ctrl: flip exactly the tiles the gesture flipped
                changed = np.union1d(tiles.rows_to_ids(selected), tiles.rows_to_ids(deselected))
                self.session.set_selection(changed, "toggle")
            else:
                self.session.set_selection(tiles.rows_to_ids(self.grid.selectionModel().selection()))
        finally:
            self._pushing = False

    def _on_grid_current(self, index: QModelIndex, _previous: QModelIndex) -> None:
        if self._syncing or not index.isValid():
            return
        self._pushing = True
        try:
            self.session.set_current(int(index.data(ID_ROLE)))
        finally:
            self._pushing = False
