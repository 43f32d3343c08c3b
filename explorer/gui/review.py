"""The review queue: pseudo-labels one at a time, most worth checking first, one key each.

``ReviewQueue(session, thumbnails)`` lists the pseudo-labels (restricted to the selection when
one exists and "In selection" is ticked, and to what the filter bar keeps) in one of three
orders (``ORDERS``): lowest confidence first, highest first, or most useful first (low
confidence x how much unlabelled neighbours lean on the item in the kNN graph, see
``reliance``). It shows the queue item large with its pseudo-label, confidence and its
neighbours' labels.

Keys, while the focus is inside the widget and not in a text field (they take precedence over
the window's own A / R / 1-9 / P, which act on the selection instead):
A accept, R reject, 1-9 relabel with that class, N / Space / Right next, P / Left previous.
Each action is one undoable store event and moves on to the next item. The queue follows label
changes (propagation, undo, other views) and keeps the person's place by item id; an undo that
brings back the item just reviewed shows it again.

"Accept all ≥ X" accepts every pseudo-label at or above the threshold in the queue's scope as ONE
undoable event; the button shows how many that is before it is pressed.

Signals: ``itemChanged(int)`` the queue item shown (-1 none), ``queueChanged(int)`` the queue was
rebuilt (its length). Methods: ``queue_ids()``, ``current_item()``, ``go_to(id)``,
``go_next()``, ``go_previous()``, ``accept_current()``, ``reject_current()``,
``relabel_current(key)``, ``accept_above(threshold)``, ``preview_accept_above(threshold)``,
``set_order(name)``. Module functions ``accept_items``, ``reject_items`` and ``relabel_items``
act on given item ids through the session (each one undoable event).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from explorer.gui import style
from explorer.gui.gallery import TileGrid, paint_thumbnail
from explorer.gui.image_view import LARGE
from explorer.gui.jobs import JobRunner
from explorer.gui.label_state import LabelState
from explorer.gui.session import HUMAN, PSEUDO, Session
from explorer.gui.tables import MapOrder
from explorer.gui.thumbnails import Thumbnails
from explorer.store import LabelTable

ORDERS = {"lowest": "Lowest confidence first", "highest": "Highest confidence first", "useful": "Most useful first"}
NEIGHBOUR_TILE = 64
UNDO_MEMORY = 100  # reviewed items remembered, so that an undo can show them again

_NEXT = {Qt.Key.Key_N, Qt.Key.Key_Space, Qt.Key.Key_Right}
_PREVIOUS = {Qt.Key.Key_P, Qt.Key.Key_Left}
_DIGITS = {getattr(Qt.Key, f"Key_{k}"): k for k in range(1, 10)}
_KEYS = _NEXT | _PREVIOUS | set(_DIGITS) | {Qt.Key.Key_A, Qt.Key.Key_R}
_TEXT_FIELDS = (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)


# ---- label actions on given items (each one undoable event) ------------------------------------
def _after(session: Session, event: int | None, text: str, none: str) -> bool:
    if event is None:
        session.message.emit(none)
        return False
    session.reload_labels(edited=True)
    session.message.emit(text)
    return True


def accept_items(session: Session, item_ids) -> bool:
    """Accept the pseudo-labels shown for ``item_ids`` as one event; False when none had one."""
    ids = [int(i) for i in np.atleast_1d(item_ids)]
    if session.project is None or not ids:
        return False
    event = session.project.accept_pseudo(ids)
    return _after(session, event, f"accepted {len(ids):,} pseudo-label(s)", "nothing to accept")


def reject_items(session: Session, item_ids) -> bool:
    """Record "not this class" for the pseudo-labels of ``item_ids`` as one event."""
    ids = [int(i) for i in np.atleast_1d(item_ids)]
    if session.project is None or not ids:
        return False
    return _after(session, session.project.reject_pseudo(ids), "rejected pseudo-label(s)", "nothing to reject")


def relabel_items(session: Session, item_ids, class_id: int) -> bool:
    """Give ``item_ids`` the human label ``class_id`` (a person's own label: source seed)."""
    ids = [int(i) for i in np.atleast_1d(item_ids)]
    label = session.class_of(class_id)
    if session.project is None or not ids or label is None:
        return False
    event = session.project.set_labels(ids, class_id, source="seed")
    return _after(session, event, f"labelled {len(ids):,} image(s) as {label.name}", "already labelled so")


# ---- the queue ------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueScope:
    """What the queue reads of the session (the names it has there), taken on the GUI thread for
    the worker that builds the queue."""

    map: object
    map_source: np.ndarray
    labels: LabelTable
    state: LabelState
    selection: np.ndarray
    filtered: np.ndarray | None
    map_order: MapOrder

    @classmethod
    def of(cls, session: Session) -> QueueScope:
        s = session
        return cls(s.map, s.map_source, s.labels, s.state, s.selection, s.filtered, s.map_order)

    def rows_of(self, item_ids) -> np.ndarray:
        return self.map_order.rows_of(item_ids)


def review_queue(scope: QueueScope, in_selection: bool, order: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item ids, class ids, confidence) of the pseudo-labels in scope, in review ``order``."""
    ids, classes, confidence = pseudo_scope(scope, in_selection)
    k = queue_order(scope, ids, confidence, order)
    return ids[k], classes[k], confidence[k]


def reliance(session: Session) -> np.ndarray:
    """(N,) per map row: the summed similarity of the items without a human label that list this
    row among their nearest neighbours, i.e. how much propagation leans on it. O(N k)."""
    m = session.map
    if m is None:
        return np.empty(0)
    n = len(m.item_ids)
    indices = np.asarray(m.knn_indices, np.int64)[:, 1:]
    weights = np.asarray(m.knn_similarities, np.float64)[:, 1:]
    leaning = (session.map_source != HUMAN)[:, None] if len(session.map_source) == n else np.ones((n, 1), bool)
    valid = (indices >= 0) & (indices < n) & leaning & (weights > 0)
    return np.bincount(indices[valid], weights=weights[valid], minlength=n)


def pseudo_scope(session: Session, in_selection: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item ids, class ids, confidence) of the pseudo-labels in scope: the selection when
    ``in_selection`` and a selection exists, else all of them; only those the filter keeps."""
    table = session.labels
    keep = session.state.kinds == PSEUDO  # int8 codes: comparing 1M source strings costs ~20 ms
    if in_selection and len(session.selection):
        keep &= np.isin(table.item_ids, session.selection)
    if session.filtered is not None:
        keep &= np.isin(table.item_ids, session.filtered)
    return table.item_ids[keep], table.class_ids[keep], table.confidence[keep]


def queue_order(session: Session, item_ids: np.ndarray, confidence: np.ndarray, order: str) -> np.ndarray:
    """Positions that sort the pseudo-labels ``item_ids`` (with ``confidence``) for review."""
    if order not in ORDERS:
        raise ValueError(f"unknown review order {order!r}; expected one of {', '.join(ORDERS)}")
    # Stable sorts: ties keep the ascending item-id order the label table comes in.
    if order == "lowest":
        return np.argsort(confidence, kind="stable")
    if order == "highest":
        return np.argsort(-confidence, kind="stable")
    lean = np.zeros(len(item_ids))
    rows = session.rows_of(item_ids)
    if session.map is not None and len(rows) == len(item_ids):
        lean = reliance(session)[rows]
    # Doubt times weight: an unsure label many others copy is the most useful to check.
    return np.argsort(-(1.0 - confidence) * (1.0 + lean), kind="stable")


class _Picture(QWidget):
    """The queue item large, framed by its pseudo-label like a gallery tile."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image = None
        self.info = None
        self.text = ""
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def show_item(self, image, info, text: str = "") -> None:
        self.image, self.info, self.text = image, info, text
        self.update()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        if self.info is None:
            painter.fillRect(self.rect(), QColor(style.PLOT))
            painter.setPen(QColor(style.MUTED))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.text)
        else:
            side = min(self.width(), self.height())
            box = self.rect()
            box.setSize(QSize(side, side))
            box.moveCenter(self.rect().center())
            paint_thumbnail(painter, box, self.image, self.info, self.text, frame=5.0)
        if self.hasFocus():
            painter.setPen(QColor(style.ACCENT))
            painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
        painter.end()


class ReviewQueue(QWidget):
    """The review queue panel (see the module docstring)."""

    itemChanged = Signal(int)  # item id shown, -1 when the queue is empty
    queueChanged = Signal(int)  # the queue was rebuilt: its length

    def __init__(self, session: Session, thumbnails: Thumbnails, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Panel")
        self.session = session
        self.thumbnails = thumbnails
        self.order = "lowest"
        self._ids = np.empty(0, np.int64)  # the queue, in review order
        self._classes = np.empty(0, np.int64)
        self._confidence = np.empty(0)
        self._pos = -1
        self._shown_item = -1  # the item last shown, so the current item is only pushed on a move
        self._reviewed: list[tuple[int, int]] = []  # (item id, class) acted on, newest last
        self.queueing = JobRunner(latest_wins=True, parent=self)  # ``review_queue``, off the GUI thread
        self.queueing.finished.connect(self._queue_ready)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(6)
        top = QHBoxLayout()
        heading = QLabel("REVIEW")
        heading.setObjectName("Heading")
        top.addWidget(heading)
        self.count_label = QLabel("")
        self.count_label.setObjectName("Muted")
        top.addWidget(self.count_label, 1)
        layout.addLayout(top)
        controls = QHBoxLayout()
        self.order_box = QComboBox()
        for name, text in ORDERS.items():
            self.order_box.addItem(text, name)
        self.order_box.setToolTip("Most useful: unsure pseudo-labels that many unlabelled neighbours lean on")
        self.order_box.currentIndexChanged.connect(lambda k: self.set_order(self.order_box.itemData(k)))
        controls.addWidget(self.order_box, 1)
        self.in_selection = QCheckBox("In selection")
        self.in_selection.setChecked(True)
        self.in_selection.setToolTip("Only the pseudo-labels of the selected images (all when nothing is selected)")
        self.in_selection.toggled.connect(lambda _: self.refresh())
        controls.addWidget(self.in_selection)
        layout.addLayout(controls)

        self.picture = _Picture()
        layout.addWidget(self.picture, 3)
        self.title = QLabel("")
        self.title.setObjectName("Title")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.details = QLabel("")
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setWordWrap(True)
        layout.addWidget(self.details)
        self.neighbours = TileGrid(session, thumbnails)
        self.neighbours.set_tile_size(NEIGHBOUR_TILE)
        self.neighbours.setWrapping(False)  # one row, scrolled sideways
        self.neighbours.setFlow(TileGrid.Flow.LeftToRight)
        self.neighbours.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.neighbours.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.neighbours.setFixedHeight(self.neighbours.gridSize().height() + 18)
        self.neighbours.setSelectionMode(TileGrid.SelectionMode.NoSelection)
        self.neighbours.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.neighbours.setToolTip("The nearest neighbours and their labels; click one to see it")
        self.neighbours.clicked.connect(lambda index: session.set_current(int(index.data(Qt.ItemDataRole.UserRole))))
        layout.addWidget(self.neighbours)

        buttons = QHBoxLayout()
        self.previous_button = self._button("◀", "Previous (Left or P)", self.go_previous)
        self.accept_button = self._button("Accept  A", "Accept this pseudo-label (A)", self.accept_current)
        self.accept_button.setObjectName("Primary")
        self.reject_button = self._button(
            "Reject  R", "Not this class (R); propagation will not give it back", self.reject_current
        )
        self.next_button = self._button("▶", "Next (Right, N or Space)", self.go_next)
        for widget, stretch in ((self.previous_button, 0), (self.accept_button, 1), (self.reject_button, 1)):
            buttons.addWidget(widget, stretch)
        buttons.addWidget(self.next_button)
        layout.addLayout(buttons)
        hint = QLabel("1-9 relabel with that class")
        hint.setObjectName("Muted")
        layout.addWidget(hint)

        bulk = QHBoxLayout()
        bulk.addWidget(QLabel("Accept all ≥"))
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setValue(0.9)
        self.threshold.setToolTip("Confidence at or above which pseudo-labels are accepted in one step")
        self.threshold.valueChanged.connect(lambda _: self._update_preview())
        bulk.addWidget(self.threshold)
        self.accept_above_button = QPushButton("")
        self.accept_above_button.clicked.connect(lambda: self.accept_above())
        bulk.addWidget(self.accept_above_button, 1)
        layout.addLayout(bulk)

        for child in self.findChildren(QWidget):
            child.installEventFilter(self)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        refresh = session.coalesced(self.refresh)  # once per landing
        for signal in (session.labelsChanged, session.classesChanged, session.mapChanged, session.filterChanged):
            signal.connect(refresh)
        session.selectionChanged.connect(lambda: self.in_selection.isChecked() and refresh())  # the same refresh
        session.currentChanged.connect(self._on_current)
        thumbnails.ready.connect(self._on_thumbnail)
        self.refresh()

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the queue
        button.clicked.connect(lambda: slot())
        return button

    # ---- queue --------------------------------------------------------------------------
    def queue_ids(self) -> np.ndarray:
        """The item ids in review order (a copy)."""
        return self._ids.copy()

    def current_item(self) -> int | None:
        return int(self._ids[self._pos]) if 0 <= self._pos < len(self._ids) else None

    @property
    def position(self) -> int:
        """Index of the shown item in the queue, -1 when empty."""
        return self._pos

    def set_order(self, order: str) -> None:
        if order not in ORDERS:
            raise ValueError(f"unknown review order {order!r}; expected one of {', '.join(ORDERS)}")
        self.order = order
        k = self.order_box.findData(order)
        if self.order_box.currentIndex() != k:
            self.order_box.setCurrentIndex(k)  # comes back here once
            return
        self.refresh()

    def restricted(self) -> bool:
        """Whether the queue is limited to the selection now."""
        return self.in_selection.isChecked() and len(self.session.selection) > 0

    def _scope_text(self) -> str:
        """What the queue is limited to, as words for its labels: " in selection", " in filter",
        both, or nothing."""
        limits = [
            w for w, on in (("selection", self.restricted()), ("filter", self.session.filtered is not None)) if on
        ]
        return f" in {' and '.join(limits)}" if limits else ""

    def refresh(self) -> None:
        """Rebuild the queue from the session, keeping the place (see the module docstring): on a
        worker for a big project (1M pseudo-labels: a sort of 1M), at once for a small one."""
        scope, in_selection, order = QueueScope.of(self.session), self.in_selection.isChecked(), self.order

        def job(progress, cancel):
            return review_queue(scope, in_selection, order)

        self.queueing.start("review", job, size=len(scope.labels))

    @property
    def busy(self) -> bool:
        """The queue is being rebuilt."""
        return self.queueing.busy

    def _queue_ready(self, _request: int, _name: str, queue: tuple) -> None:
        old_ids, old_pos, old_current = self._ids, self._pos, self.current_item()
        self._ids, self._classes, self._confidence = queue
        self._pos = self._place(old_ids, old_pos, old_current)
        self._update_preview()
        self.queueChanged.emit(len(self._ids))
        self._show()

    def _place(self, old_ids: np.ndarray, old_pos: int, old_current: int | None) -> int:
        if len(self._ids) == 0:
            return -1
        # An item just reviewed is back with the same pseudo-label: an undo, show it again.
        while self._reviewed:
            item, cls = self._reviewed[-1]
            at = np.flatnonzero(self._ids == item)
            if len(at) and self._classes[at[0]] == cls and not np.isin(item, old_ids):
                self._reviewed.pop()
                return int(at[0])
            if len(at) == 0 or self._classes[at[0]] != cls:
                break
            self._reviewed.pop()
        if old_current is not None:
            at = np.flatnonzero(self._ids == old_current)
            if len(at):
                return int(at[0])
            # Gone (reviewed): the next one after it in the old order that is still queued.
            after = old_ids[old_pos + 1 :]
            after = after[np.isin(after, self._ids)]
            if len(after):
                return int(np.flatnonzero(self._ids == after[0])[0])
            before = old_ids[:old_pos][::-1]
            before = before[np.isin(before, self._ids)]
            if len(before):
                return int(np.flatnonzero(self._ids == before[0])[0])
        return 0

    # ---- navigation ---------------------------------------------------------------------
    def go_to(self, item_id: int) -> bool:
        at = np.flatnonzero(self._ids == int(item_id))
        if len(at) == 0:
            return False
        self._pos = int(at[0])
        self._show()
        return True

    def go_next(self) -> None:
        if self._pos + 1 < len(self._ids):
            self._pos += 1
            self._show()

    def go_previous(self) -> None:
        if self._pos > 0:
            self._pos -= 1
            self._show()

    # ---- actions ------------------------------------------------------------------------
    def accept_current(self) -> bool:
        return self._act(lambda item: accept_items(self.session, [item]))

    def reject_current(self) -> bool:
        return self._act(lambda item: reject_items(self.session, [item]))

    def relabel_current(self, key: int) -> bool:
        """Number key ``key`` (1-9): give the item the class at that position."""
        if not 1 <= key <= len(self.session.classes):
            self.session.message.emit(f"no class on key {key}: add classes first")
            return False
        class_id = self.session.classes[key - 1].id
        return self._act(lambda item: relabel_items(self.session, [item], class_id))

    def _act(self, action) -> bool:
        item = self.current_item()
        if item is None:
            return False
        self._reviewed = (self._reviewed + [(item, int(self._classes[self._pos]))])[-UNDO_MEMORY:]
        done = action(item)  # the reload moves the queue past the item when it left the queue
        if self.current_item() == item:
            self.go_next()
        return done

    def preview_accept_above(self, threshold: float | None = None) -> int:
        """How many pseudo-labels ``accept_above(threshold)`` would accept now."""
        return len(self._above(threshold)[0])

    def expected_wrong_above(self, threshold: float | None = None) -> float:
        """How many of the pseudo-labels ``accept_above(threshold)`` would accept are likely wrong:
        the sum of one minus their confidence (calibrated: the share of such labels that are right)."""
        return _expected_wrong(self._above(threshold)[1])

    def _above(self, threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, confidence) of the pseudo-labels in scope at or above ``threshold``."""
        value = self.threshold.value() if threshold is None else float(threshold)
        keep = self._confidence >= value  # the queue is the scope
        return self._ids[keep], self._confidence[keep]

    def accept_above(self, threshold: float | None = None) -> int:
        """Accept every pseudo-label in scope with confidence >= ``threshold`` (the spin box's
        value by default) as one undoable event; returns how many."""
        ids, _ = self._above(threshold)
        if len(ids) == 0:
            self.session.message.emit("no pseudo-labels at or above that confidence")
            return 0
        return len(ids) if accept_items(self.session, ids) else 0

    # ---- view ---------------------------------------------------------------------------
    def _update_preview(self) -> None:
        ids, confidence = self._above(None)  # one read of the scope for the count and the estimate
        n = len(ids)
        where = self._scope_text()
        wrong = f" (≈{_expected_wrong(confidence):,.0f} wrong)" if n else ""
        self.accept_above_button.setText(f"Accept {n:,}{where}{wrong}")
        self.accept_above_button.setEnabled(n > 0)
        self.accept_above_button.setToolTip(
            f"Accept the {n:,} pseudo-label(s){where} with confidence ≥ {self.threshold.value():.2f} (one undo);"
            " confidence is the share of such labels that are right, so about the number in brackets will be wrong"
        )

    def _show(self) -> None:
        n, item = len(self._ids), self.current_item()
        where = self._scope_text()
        for button in (self.accept_button, self.reject_button):
            button.setEnabled(item is not None)
        self.previous_button.setEnabled(self._pos > 0)
        self.next_button.setEnabled(0 <= self._pos < n - 1)
        if item is None:
            self.count_label.setText(f"no pseudo-labels to check{where}")
            empty = "Label a few images and propagate: pseudo-labels to check appear here."
            self.picture.show_item(None, None, empty if self.session.map is not None else "")
            self.title.setText("")
            self.details.setText("")
            self.neighbours.set_items([])
            if self._shown_item != -1:
                self._shown_item = -1
                self.itemChanged.emit(-1)
            return
        self.count_label.setText(f"{self._pos + 1:,} of {n:,} pseudo-labels{where}")
        info = self.session.info(item)
        self.title.setText(info.path.rsplit("/", 1)[-1])
        self._show_picture()
        ids, sims = self.session.neighbours(item)
        self.neighbours.set_items(ids)
        self.details.setText(self._details(info, ids))
        if self._pos + 1 < n:  # have the next one ready
            self.thumbnails.get(int(self._ids[self._pos + 1]), LARGE)
        if item != self._shown_item:  # moved: the map and image view follow (when the queue is on screen)
            self._shown_item = item
            if self.isVisible():
                self.session.set_current(item)
            self.itemChanged.emit(item)

    def _show_picture(self) -> None:
        item = self.current_item()
        if item is None:
            return
        image = self.thumbnails.get(item, LARGE)
        error = self.thumbnails.errors.get(item, "")
        self.picture.show_item(image, self.session.info(item), f"cannot show: {error}" if error else "loading…")

    def _details(self, info, neighbour_ids: np.ndarray) -> str:
        muted = style.MUTED
        colour = style.display_colour(info.colour).name()
        lines = [
            f"<span style='color:{colour}'>●</span> <b>{_escape(info.class_name)}</b> &nbsp;"
            f"<span style='color:{muted}'>pseudo-label · confidence {info.confidence:.2f}</span>"
        ]
        rows = self.session.rows_of(neighbour_ids)
        if len(rows):
            cls = self.session.map_class_index[rows]
            src = self.session.map_source[rows]
            parts = []
            for k in np.unique(cls[cls >= 0]).tolist():
                label = self.session.classes[k]
                human = int(((cls == k) & (src == HUMAN)).sum())
                pseudo = int(((cls == k) & (src == PSEUDO)).sum())
                swatch = style.display_colour(label.colour).name()
                parts.append(
                    f"<span style='color:{swatch}'>●</span> {_escape(label.name)} {human + pseudo}"
                    + (f" ({human} human)" if human else "")
                )
            if (cls < 0).any():
                parts.append(f"{int((cls < 0).sum())} unlabelled")
            lines.append(f"<span style='color:{muted}'>neighbours:</span> " + " · ".join(parts))
        return "<br>".join(lines)

    def _on_thumbnail(self, item_id: int, size: int) -> None:
        if size == LARGE and item_id == self.current_item():
            self._show_picture()

    def _on_current(self, item_id: int) -> None:
        if item_id >= 0 and item_id != self.current_item():
            self.go_to(item_id)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        item = self.current_item()
        if item is not None:
            self.session.set_current(item)

    # ---- keys ---------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and self._is_review_key(event):
            if kind == QEvent.Type.ShortcutOverride:
                event.accept()  # ours, not the window's shortcut; the key press follows
            else:
                self._handle_key(event.key())
            return True
        return super().eventFilter(watched, event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and self._is_review_key(event):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._is_review_key(event):
            self._handle_key(event.key())
            return
        super().keyPressEvent(event)

    @staticmethod
    def _is_review_key(event: QKeyEvent) -> bool:
        focus = QApplication.focusWidget()
        if isinstance(focus, _TEXT_FIELDS) or isinstance(focus and focus.parent(), QAbstractSpinBox):
            return False  # typing a number or a name, not reviewing
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        return modifiers == Qt.KeyboardModifier.NoModifier and event.key() in _KEYS

    def _handle_key(self, key: int) -> None:
        if key == Qt.Key.Key_A:
            self.accept_current()
        elif key == Qt.Key.Key_R:
            self.reject_current()
        elif key in _DIGITS:
            self.relabel_current(_DIGITS[key])
        elif key in _NEXT:
            self.go_next()
        elif key in _PREVIOUS:
            self.go_previous()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _expected_wrong(confidence: np.ndarray) -> float:
    return float((1.0 - np.asarray(confidence, np.float64)).sum())
