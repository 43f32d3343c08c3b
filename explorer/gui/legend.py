"""The map's legend: one row per colour group with its count, following the selection.

Clicking a row hides or shows that group on the map (hidden points are not drawn, picked or
selected). Rows are rebuilt only when the entries change; counts update in place. With many
groups (43 classes, 60 clusters) the rows scroll inside the height the map gives it
(:meth:`Legend.size_within`) instead of running off the bottom of the map.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from explorer.gui.colouring import LegendEntry
from explorer.gui.label_panel import swatch


class Legend(QFrame):
    toggled = Signal(int, bool)  # entry index, now hidden

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Legend")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(6, 6, 6, 6)
        self._layout.setSpacing(0)
        self.title = QLabel("")
        self.title.setObjectName("Muted")
        self._layout.addWidget(self.title)
        self._body = QWidget()
        self._body.setObjectName("LegendRows")
        self._rows_layout = QVBoxLayout(self._body)
        self._rows_layout.setContentsMargins(0, 0, 0, 0)
        self._rows_layout.setSpacing(0)
        self.scroll = QScrollArea()
        self.scroll.setObjectName("LegendRows")
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self._body)
        self.scroll.viewport().setObjectName("LegendRows")
        self._layout.addWidget(self.scroll)
        self.rows: list[QToolButton] = []
        self._entries: list[LegendEntry] = []
        self.hidden = np.zeros(0, bool)

    def set_entries(self, entries: list[LegendEntry]) -> None:
        if entries == self._entries:
            return
        names = {e.name: k for k, e in enumerate(self._entries)}
        old_hidden = self.hidden
        self._entries = list(entries)
        # A group that keeps its name stays hidden (a propagation must not undo the person's choice).
        self.hidden = np.array(
            [bool(old_hidden[names[e.name]]) if e.name in names else False for e in entries], bool
        ).reshape(-1)
        for row in self.rows:
            self._rows_layout.removeWidget(row)
            row.hide()  # gone from the screen now; deleted when the event loop gets to it
            row.deleteLater()
        self.rows = []
        for k, entry in enumerate(entries):
            row = QToolButton()
            row.setAutoRaise(True)
            row.setCheckable(True)
            row.setChecked(not self.hidden[k])
            row.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            row.setIcon(swatch(entry.colour, 10))
            row.setToolTip(f"Click to {'show' if self.hidden[k] else 'hide'} {entry.name} on the map")
            row.clicked.connect(lambda _=False, k=k: self.toggle(k))
            self._rows_layout.addWidget(row)
            row.show()  # shown now, not on the next event loop turn, so the size is right at once
            self.rows.append(row)

    def size_within(self, height: int) -> QSize:
        """The legend's size showing every row, or at most ``height`` tall with the rows scrolling
        (and room for the scroll bar)."""
        self._rows_layout.invalidate()
        self._rows_layout.activate()
        rows, title = self._body.sizeHint(), self.title.sizeHint()
        margins = self._layout.contentsMargins()
        frame = margins.top() + margins.bottom() + self._layout.spacing()
        whole = title.height() + rows.height() + frame
        scrolling = whole > height
        bar = self.scroll.verticalScrollBar().sizeHint().width() if scrolling else 0
        width = max(title.width(), rows.width() + bar) + margins.left() + margins.right()
        self.scroll.setVerticalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAsNeeded if scrolling else Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )
        return QSize(width, min(whole, max(height, title.height() + frame + 40)))

    def hidden_names(self) -> frozenset[str]:
        """The names of the entries hidden now."""
        return frozenset(e.name for e, hidden in zip(self._entries, self.hidden) if hidden)

    def toggle(self, index: int) -> None:
        self.hidden[index] = not self.hidden[index]
        self.rows[index].setChecked(not self.hidden[index])
        self.rows[index].setToolTip(
            f"Click to {'show' if self.hidden[index] else 'hide'} {self._entries[index].name} on the map"
        )
        self.toggled.emit(index, bool(self.hidden[index]))

    def set_counts(self, totals: np.ndarray, selected: np.ndarray | None, title: str) -> None:
        """Counts per entry; with a selection, "selected / total"."""
        self.title.setText(title)
        for k, (row, entry) in enumerate(zip(self.rows, self._entries)):
            key = f"{entry.key}  " if entry.key else ""
            count = f"{int(selected[k]):,} / {int(totals[k]):,}" if selected is not None else f"{int(totals[k]):,}"
            row.setText(f"{key}{entry.name}   {count}")
