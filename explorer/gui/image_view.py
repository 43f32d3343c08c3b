"""The current item large, with its label, and its nearest neighbours as clickable thumbnails."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QLabel, QListView, QListWidget, QListWidgetItem, QSizePolicy, QVBoxLayout, QWidget

from explorer.gui import style
from explorer.gui.session import Session
from explorer.gui.thumbnails import Thumbnails

LARGE = 512  # decoded size of the current image
NEIGHBOUR = 96  # decoded size of the neighbour thumbnails
ICON = 84


class _Picture(QWidget):
    """Paints one image scaled to fit, keeping its aspect ratio."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.text = ""
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_image(self, image: QImage | None, text: str = "") -> None:
        self.image, self.text = image, text
        self.update()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(style.PLOT))
        if self.image is not None and not self.image.isNull():
            scaled = self.image.size().scaled(self.size() - QSize(16, 16), Qt.AspectRatioMode.KeepAspectRatio)
            x = (self.width() - scaled.width()) // 2
            y = (self.height() - scaled.height()) // 2
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            painter.drawImage(QRect(x, y, scaled.width(), scaled.height()), self.image)
        elif self.text:
            painter.setPen(QColor(style.MUTED))
            painter.drawText(
                self.rect().adjusted(12, 12, -12, -12),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.text,
            )
        painter.end()


class ImageView(QWidget):
    """Shows the session's current item; clicking a neighbour makes it the current item."""

    def __init__(self, session: Session, thumbnails: Thumbnails, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Panel")
        self.session = session
        self.thumbnails = thumbnails
        self.item_id = -1
        self._neighbour_ids = np.empty(0, np.int64)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(6)
        heading = QLabel("IMAGE")
        heading.setObjectName("Heading")
        layout.addWidget(heading)
        self.picture = _Picture()
        layout.addWidget(self.picture, 1)
        self.title = QLabel("")
        self.title.setObjectName("Title")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.title)
        self.details = QLabel("")
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.details)
        heading = QLabel("NEAREST NEIGHBOURS")
        heading.setObjectName("Heading")
        layout.addWidget(heading)
        self.neighbours = QListWidget()
        self.neighbours.setViewMode(QListView.ViewMode.IconMode)
        self.neighbours.setFlow(QListView.Flow.LeftToRight)
        self.neighbours.setWrapping(True)
        self.neighbours.setResizeMode(QListView.ResizeMode.Adjust)
        self.neighbours.setMovement(QListView.Movement.Static)
        self.neighbours.setIconSize(QSize(ICON, ICON))
        self.neighbours.setGridSize(QSize(ICON + 10, ICON + 24))
        self.neighbours.setMinimumHeight(2 * (ICON + 24) + 8)
        self.neighbours.setUniformItemSizes(True)
        self.neighbours.itemClicked.connect(self._on_neighbour_clicked)
        layout.addWidget(self.neighbours, 1)

        session.currentChanged.connect(self._on_current)
        refresh = session.coalesced(self._refresh)
        for signal in (session.labelsChanged, session.classesChanged, session.mapChanged):
            signal.connect(refresh)
        thumbnails.ready.connect(self._on_thumbnail)
        self._on_current(-1)

    def _on_current(self, item_id: int) -> None:
        self.item_id = item_id
        self._refresh()

    def _refresh(self) -> None:
        item_id = self.session.current if self.session.current is not None else -1
        self.item_id = item_id
        self.neighbours.clear()
        if item_id < 0:
            self._neighbour_ids = np.empty(0, np.int64)
            hint = "Click a point on the map to see its image." if self.session.map is not None else ""
            self.picture.show_image(None, hint)
            self.title.setText("")
            self.details.setText("")
            return
        info = self.session.info(item_id)
        self.title.setText(info.path.rsplit("/", 1)[-1])
        self.details.setText(_details(info) + _provenance(self.session, item_id))
        self._show_large()
        ids, sims = self.session.neighbours(item_id)
        self._neighbour_ids = ids
        for neighbour, sim in zip(ids.tolist(), sims.tolist()):
            entry = QListWidgetItem(f"{sim:.2f}")
            entry.setData(Qt.ItemDataRole.UserRole, int(neighbour))
            entry.setToolTip(f"{self.session.path_of(neighbour)}\ncosine similarity {sim:.3f}")
            entry.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.neighbours.addItem(entry)
            self._set_icon(entry, neighbour)

    def _show_large(self) -> None:
        image = self.thumbnails.get(self.item_id, LARGE)
        error = self.thumbnails.errors.get(self.item_id, "")
        self.picture.show_image(image, f"cannot show this image: {error}" if error else "loading…")

    def _set_icon(self, entry: QListWidgetItem, item_id: int) -> None:
        image = self.thumbnails.get(item_id, NEIGHBOUR)
        if image is None:
            return
        info = self.session.info(item_id)
        pixmap = QPixmap(ICON, ICON)
        pixmap.fill(QColor(style.PLOT))
        painter = QPainter(pixmap)
        scaled = image.scaled(
            ICON - 6, ICON - 6, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        painter.drawImage((ICON - scaled.width()) // 2, (ICON - scaled.height()) // 2, scaled)
        if info.class_id >= 0:  # a frame in the class colour: solid for human labels, thin for pseudo
            pen = QPen(style.display_colour(info.colour), 4 if info.source != "pseudo" else 2)
            if info.source == "pseudo":
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawRect(1, 1, ICON - 3, ICON - 3)
        painter.end()
        entry.setIcon(QIcon(pixmap))

    def _on_thumbnail(self, item_id: int, size: int) -> None:
        if size == LARGE and item_id == self.item_id:
            self._show_large()
        elif size == NEIGHBOUR:
            for k in np.flatnonzero(self._neighbour_ids == item_id).tolist():
                self._set_icon(self.neighbours.item(k), item_id)

    def _on_neighbour_clicked(self, entry: QListWidgetItem) -> None:
        item_id = int(entry.data(Qt.ItemDataRole.UserRole))
        self.session.set_selection([item_id])
        self.session.set_current(item_id)


def _details(info) -> str:
    muted = style.MUTED
    lines = [f"<span style='color:{muted}'>{_escape(info.path)}</span>"]
    if info.class_id >= 0:
        colour = style.display_colour(info.colour).name()
        label = f"<span style='color:{colour}'>●</span> <b>{_escape(info.class_name)}</b>"
        if info.source == "pseudo":
            label += f" &nbsp;<span style='color:{muted}'>pseudo-label · confidence {info.confidence:.2f}</span>"
        else:
            label += f" &nbsp;<span style='color:{muted}'>{info.source}</span>"
        lines.append(label)
    else:
        lines.append(f"<span style='color:{muted}'>unlabelled</span>")
    return "<br>".join(lines)


def _provenance(session, item_id: int) -> str:
    """The file's size and mode, and the label actions that touched it (newest first)."""
    project = session.project
    if project is None:
        return ""
    muted = style.MUTED
    lines = []
    item = project.item(item_id)
    if item is not None:
        lines.append(
            f"<span style='color:{muted}'>{item.width}×{item.height} {item.mode} · {item.bytes:,} bytes</span>"
        )
    names = {c.id: c.name for c in session.classes}
    for at, action, kind, new_class, undone in project.item_history(item_id, limit=6):
        when = time.strftime("%d %b %H:%M", time.localtime(at))
        what = (
            f"not {names.get(new_class, '?')}"
            if kind == "rejection"
            else (names.get(new_class, "a removed class") if new_class is not None else "cleared")
        )
        text = f"{when} · {_escape(action)} → {_escape(what)}"
        lines.append(f"<span style='color:{muted}'>{'<s>' + text + '</s> (undone)' if undone else text}</span>")
    return "<br>" + "<br>".join(lines) if lines else ""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
