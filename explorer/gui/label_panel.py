"""Classes with colours, keys and counts; the label, review and history actions.

The panel owns the label actions and their keys (1-9 label the selection with that class, 0
clears, A accepts, R rejects pseudo-labels, Ctrl+Z / Ctrl+Shift+Z undo and redo); the main
window puts the same actions in its menus. Propagate and Export are asked of the window through
signals, because they run as jobs.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.gui import style
from explorer.gui.session import Session

KEYS = 9


def swatch(hex_colour: str, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(style.display_colour(hex_colour))
    painter.drawRoundedRect(0, 0, size, size, 3, 3)
    painter.end()
    return QIcon(pixmap)


class LabelPanel(QWidget):
    propagateRequested = Signal()
    exportRequested = Signal(str)  # "csv" or "imagefolder": the window asks where, then exports

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Panel")
        self.session = session
        self._make_actions()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(6)
        layout.addWidget(_heading("CLASSES"))

        self.class_list = QTreeWidget()
        self.class_list.setColumnCount(5)
        self.class_list.setHeaderLabels(["#", "Class", "Human", "Pseudo", "Sel."])
        self.class_list.setIndentation(0)
        self.class_list.setRootIsDecorated(False)
        self.class_list.setAlternatingRowColors(True)
        self.class_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.class_list.setIconSize(QSize(12, 12))
        header = self.class_list.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(22)
        for column, width in ((0, 24), (2, 56), (3, 60), (4, 44)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(column, width)
            self.class_list.headerItem().setTextAlignment(column, Qt.AlignmentFlag.AlignRight)
        self.class_list.setToolTip("Double-click a class to give it to the selected images")
        self.class_list.itemDoubleClicked.connect(lambda *_: self.label_selected())
        layout.addWidget(self.class_list, 1)

        add_row = QHBoxLayout()
        self.class_name = QLineEdit(placeholderText="New class name")
        self.class_name.returnPressed.connect(self.add_class)
        self.add_button = QPushButton("Add class")
        self.add_button.clicked.connect(self.add_class)
        add_row.addWidget(self.class_name, 1)
        add_row.addWidget(self.add_button)
        layout.addLayout(add_row)

        self.selection_text = _muted_line(layout)
        label_row = QHBoxLayout()
        self.label_button = QPushButton("Label selected")
        self.label_button.setObjectName("Primary")
        self.label_button.setToolTip("Give the selected images the highlighted class (or press its number key)")
        self.label_button.clicked.connect(self.label_selected)
        self.clear_button = _button(self.clear_action, "Clear label")
        label_row.addWidget(self.label_button, 1)
        label_row.addWidget(self.clear_button)
        layout.addLayout(label_row)

        layout.addWidget(_heading("PSEUDO-LABELS"))
        grid = QGridLayout()
        grid.setSpacing(6)
        self.propagate_button = QPushButton("Propagate")
        self.propagate_button.setToolTip("Spread the human labels over the neighbour graph (P)")
        self.propagate_button.clicked.connect(self.propagate_action.trigger)
        self.accept_button = _button(self.accept_action, "Accept  (A)")
        self.reject_button = _button(self.reject_action, "Reject  (R)")
        grid.addWidget(self.propagate_button, 0, 0, 1, 2)
        grid.addWidget(self.accept_button, 1, 0)
        grid.addWidget(self.reject_button, 1, 1)
        layout.addLayout(grid)
        self.propagation_text = _muted_line(layout)

        layout.addWidget(_heading("HISTORY"))
        history = QHBoxLayout()
        self.undo_button = _button(self.undo_action, "Undo")
        self.redo_button = _button(self.redo_action, "Redo")
        history.addWidget(self.undo_button)
        history.addWidget(self.redo_button)
        layout.addLayout(history)
        self.history_text = _muted_line(layout)

        layout.addWidget(_heading("DATASET"))
        self.export_button = QPushButton("Export…")
        menu = QMenu(self.export_button)
        menu.addAction("CSV manifest…", lambda: self.exportRequested.emit("csv"))
        menu.addAction("ImageFolder copy…", lambda: self.exportRequested.emit("imagefolder"))
        self.export_button.setMenu(menu)
        layout.addWidget(self.export_button)

        refresh = session.coalesced(self._refresh)  # once per landing, however many signals it emits
        for signal in (
            session.classesChanged,
            session.labelsChanged,
            session.selectionChanged,
            session.currentChanged,
            session.projectChanged,
        ):
            signal.connect(refresh)
        self._refresh()

    # ---- actions ------------------------------------------------------------------------
    def _make_actions(self) -> None:
        s = self.session
        self.label_actions: list[QAction] = []
        for key in range(1, KEYS + 1):
            action = QAction(f"Label as class {key}", self, shortcut=QKeySequence(str(key)))
            action.triggered.connect(lambda _=False, k=key: s.label_with_key(k))
            self.addAction(action)
            self.label_actions.append(action)
        self.clear_action = self._action("Clear label", "0", lambda: s.label_targets(None))
        self.accept_action = self._action("Accept pseudo-labels", "A", s.accept_targets)
        self.reject_action = self._action("Reject pseudo-labels", "R", s.reject_targets)
        self.undo_action = self._action("Undo", QKeySequence.StandardKey.Undo, s.undo)
        self.redo_action = self._action("Redo", "Ctrl+Shift+Z", s.redo)
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.propagate_action = self._action("Propagate", "P", self.propagateRequested.emit)

    def _action(self, text: str, key, slot) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(key))
        action.setToolTip(f"{text} ({QKeySequence(key).toString()})")
        action.triggered.connect(lambda _=False: slot())
        self.addAction(action)
        return action

    def add_class(self) -> None:
        name = self.class_name.text().strip()
        if not name:
            return
        label = self.session.add_class(name)
        if label is not None:  # the session's classes follow when the labels are read back
            self.class_name.clear()
            key = label.position + 1
            self.session.message.emit(f"class {name!r} on key {key}" if key <= KEYS else f"class {name!r} added")

    def highlighted_class(self) -> int | None:
        item = self.class_list.currentItem()
        return int(item.data(1, Qt.ItemDataRole.UserRole)) if item is not None else None

    def label_selected(self) -> None:
        class_id = self.highlighted_class()
        if class_id is None:
            self.session.message.emit("pick a class in the list first (or press its number key)")
            return
        self.session.label_targets(class_id)

    def set_propagation_text(self, text: str) -> None:
        self.propagation_text.setText(text)

    # ---- view ---------------------------------------------------------------------------
    def _refresh(self) -> None:
        s = self.session
        keep = self.highlighted_class()
        totals = s.class_counts()
        selected = s.class_counts(s.selection) if len(s.selection) else {}
        self.class_list.clear()
        for position, label in enumerate(s.classes):
            human, pseudo = totals.get(label.id, (0, 0))
            in_selection = sum(selected.get(label.id, (0, 0)))
            row = QTreeWidgetItem(
                [
                    str(position + 1) if position < KEYS else "",
                    label.name,
                    f"{human:,}",
                    f"{pseudo:,}",
                    f"{in_selection:,}" if selected else "",
                ]
            )
            row.setIcon(1, swatch(label.colour))
            row.setData(1, Qt.ItemDataRole.UserRole, label.id)
            for column in (0, 2, 3, 4):
                row.setTextAlignment(column, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            row.setForeground(0, QColor(style.MUTED))
            self.class_list.addTopLevelItem(row)
            if label.id == keep:
                self.class_list.setCurrentItem(row)
        counts = s.counts()
        targets = s.targets()
        if len(s.selection):
            text = f"{counts['selected']:,} selected"
            if selected:
                human = sum(v[0] for v in selected.values())
                pseudo = sum(v[1] for v in selected.values())
                text += f" · {human:,} human · {pseudo:,} pseudo · {len(s.selection) - human - pseudo:,} unlabelled"
        elif len(targets):
            text = "1 image (the current one)"
        else:
            text = "Nothing selected: click points on the map, Shift-drag for a box."
        self.selection_text.setText(text)
        has_project = s.project is not None
        for widget in (self.add_button, self.class_name, self.label_button, self.clear_button, self.export_button):
            widget.setEnabled(has_project)
        self.propagate_button.setEnabled(has_project and s.map is not None)
        history = s.history(1)
        if history:
            _, _, action, undone = history[0]
            self.history_text.setText(f"last: {'(undone) ' if undone else ''}{action}")
        else:
            self.history_text.setText("")


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("Heading")
    return label


def _muted_line(layout) -> QLabel:
    """An empty, wrapping status line in the muted style, added to ``layout``."""
    label = QLabel("")
    label.setObjectName("Muted")
    label.setWordWrap(True)
    layout.addWidget(label)
    return label


def _button(action: QAction, text: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(action.toolTip())
    button.clicked.connect(action.trigger)
    return button
