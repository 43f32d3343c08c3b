"""The filter bar above the map: which images the map, the gallery's "Filtered" list, the review
queue and (when asked) the export show.

Fields, all optional and all applied together (``explorer.store.filters.Filter``, the rule of
``explorer find`` and ``Collection.select``): a path pattern (glob, or ``re:`` and a regular
expression), labels and label sources (menus; nothing ticked = any), a confidence range
``LO:HI``, a size ``WxH[:WxH]`` in pixels, and the file's modification date (from, before).
Typing is debounced (``FILTER_DELAY_MS``); the session works the filter out on a worker (latest
request wins) and the bar shows "N of M shown" when it lands. A field that cannot be read turns
red with the reason in its tooltip and the count line; the last good filter stays.

The Histogram button shows the pseudo-labels' confidence per class
(``ConfidenceHistogram``); dragging its band fills in the confidence range.
``toggle_action`` (View > Filter…, Ctrl+Shift+F) shows or hides the bar; hiding it keeps the filter.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.gui import style
from explorer.gui.confidence_histogram import ConfidenceHistogram
from explorer.gui.session import Session
from explorer.store.filters import SOURCES, Filter, FilterError

FILTER_DELAY_MS = 200  # typing pauses this long before the filter is worked out
HISTOGRAM_HEIGHT = 130
_FIELD_ERROR = f"QLineEdit {{ border: 1px solid {style.DANGER}; }}"


class _Ticks(QMenu):
    """A menu of checkable entries that stays open while entries are ticked."""

    def mouseReleaseEvent(self, event) -> None:
        action = self.activeAction()
        if action is not None and action.isCheckable() and action.isEnabled():
            action.trigger()
            return
        super().mouseReleaseEvent(event)


class FilterBar(QWidget):
    """The filter bar (see the module docstring)."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Panel")
        self.session = session
        self.error = ""  # why the fields cannot be read as a filter, "" when they can
        self._timer = QTimer(self, singleShot=True, interval=FILTER_DELAY_MS, timeout=self.apply)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.setSpacing(4)
        top, bottom = QHBoxLayout(), QHBoxLayout()
        layout.addLayout(top)
        layout.addLayout(bottom)

        # top: path, count, histogram, clear; below: labels, sources, confidence, size, dates
        self.path_edit = self._field(
            "path: cats/*, *.png or re:^cats/",
            "Glob over the path in the folder "
            "(text without * ? [ : paths containing it), or re: and a regular expression",
        )
        top.addWidget(self.path_edit, 3)
        self.count_label = QLabel("")
        self.count_label.setObjectName("Muted")
        self.count_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens
        top.addWidget(self.count_label, 2)
        self.histogram_button = QToolButton(text="Histogram", checkable=True)
        self.histogram_button.setToolTip("Confidence of the pseudo-labels per class: drag to pick a range")
        self.clear_button = QToolButton(text="Clear", toolTip="Show every image again")
        self.clear_button.clicked.connect(self.clear)
        self.label_button, self.label_menu = self._chooser("Any label", "Show only images with these labels")
        self.source_button, self.source_menu = self._chooser("Any source", "Show only labels from these sources")
        for source in SOURCES:
            self._tick(self.source_menu, source, source)
        for button in (self.histogram_button, self.clear_button, self.label_button, self.source_button):
            button.setAutoRaise(True)
        top.addWidget(self.histogram_button)
        top.addWidget(self.clear_button)
        bottom.addWidget(self.label_button)
        bottom.addWidget(self.source_button)

        self.confidence_edit = self._field("conf 0.2:0.8", "Confidence range LO:HI (0.9: at least, :0.5 at most)")
        self.size_edit = self._field("size 64x64", "Pixels: WxH at least, WxH:WxH between, :WxH at most")
        self.after_edit = self._field("from date", "File modified on or after this date, YYYY-MM-DD (as scanned)")
        self.before_edit = self._field("before date", "File modified before this date, YYYY-MM-DD (as scanned)")
        for edit in (self.confidence_edit, self.size_edit, self.after_edit, self.before_edit):
            edit.setClearButtonEnabled(False)  # narrow fields: room for the text, the bar's Clear empties all
            widest = max(edit.placeholderText(), "0.50:1.00" if edit is self.confidence_edit else "", key=len)
            edit.setMinimumWidth(edit.fontMetrics().horizontalAdvance(widest) + 12)
            bottom.addWidget(edit, 1)
        self.histogram = ConfidenceHistogram(session)
        self.histogram.setFixedHeight(HISTOGRAM_HEIGHT)
        self.histogram.hide()
        layout.addWidget(self.histogram)
        self.histogram_button.toggled.connect(self.histogram.setVisible)
        self.histogram.rangePicked.connect(self._range_picked)

        self.toggle_action = QAction("Filter…", self, checkable=True)
        self.toggle_action.setShortcut(QKeySequence("Ctrl+Shift+F"))
        self.toggle_action.setToolTip("Show only the images that match a path, label, confidence, size or date")
        self.toggle_action.toggled.connect(self._toggled)

        session.classesChanged.connect(self._update_classes)
        session.projectChanged.connect(self.clear)
        session.filterChanged.connect(self._update_count)
        session.itemsChanged.connect(self._update_count)
        self._update_classes()
        self._update_count()

    # ---- construction -------------------------------------------------------------------
    def _field(self, placeholder: str, tip: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        edit.setToolTip(tip)
        edit.setProperty("tip", tip)
        edit.setClearButtonEnabled(True)
        edit.textChanged.connect(self.schedule)
        return edit

    def _chooser(self, text: str, tip: str) -> tuple[QToolButton, QMenu]:
        button = QToolButton(text=text, toolTip=tip)
        button.setProperty("any", text)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = _Ticks(button)
        button.setMenu(menu)
        return button, menu

    def _tick(self, menu: QMenu, text: str, value, checked: bool = False) -> QAction:
        action = menu.addAction(text)
        action.setCheckable(True)
        action.setChecked(checked)
        action.setData(value)
        action.toggled.connect(self.schedule)
        return action

    def _update_classes(self) -> None:
        """One entry per class; ticks follow the class (by id) through renames."""
        ticked = {a.data() for a in self.label_menu.actions() if a.isChecked()}
        self.label_menu.clear()
        for label in self.session.classes:
            self._tick(self.label_menu, label.name, label.id, label.id in ticked)
        if ticked:  # a renamed or deleted class changes the filter's names
            self.schedule()

    # ---- the filter ---------------------------------------------------------------------
    @staticmethod
    def _ticked(menu: QMenu) -> list:
        return [a for a in menu.actions() if a.isChecked()]

    def rule(self) -> Filter:
        """The filter the fields describe; raises FilterError naming what cannot be read."""
        labels = self._ticked(self.label_menu)
        sources = self._ticked(self.source_menu)
        return Filter.parse(
            path=self.path_edit.text().strip() or None,
            classes=[a.text() for a in labels] if labels else None,
            sources=[a.data() for a in sources] if sources else None,
            confidence=self.confidence_edit.text(),
            size=self.size_edit.text(),
            modified_after=self.after_edit.text(),
            modified_before=self.before_edit.text(),
        )

    def schedule(self, *_args) -> None:
        """Apply the fields after the typing pauses (``FILTER_DELAY_MS``)."""
        self._timer.start()

    def apply(self) -> None:
        """Read the fields and hand the filter to the session now (or show why it cannot be read)."""
        self._timer.stop()
        self._show_choices()
        self.error = ""
        fields = {
            "path": self.path_edit,
            "confidence": self.confidence_edit,
            "size": self.size_edit,
            "modified_after": self.after_edit,
            "modified_before": self.before_edit,
        }
        for name, edit in fields.items():  # each field alone first, to mark the one that is wrong
            try:
                Filter.parse(**{name: edit.text().strip() or None})
                edit.setStyleSheet("")
                edit.setToolTip(edit.property("tip"))
            except FilterError as exc:
                self.error = self.error or str(exc)
                edit.setStyleSheet(_FIELD_ERROR)
                edit.setToolTip(str(exc))
        try:
            rule = self.rule()
        except FilterError as exc:
            self.error = self.error or str(exc)
        if self.error:
            self._update_count()
            return
        self.histogram.set_range(rule.min_confidence, rule.max_confidence)
        self.session.set_filter(rule)
        self._update_count()

    def clear(self) -> None:
        """Every field empty, nothing ticked: every image shows again."""
        for edit in (self.path_edit, self.confidence_edit, self.size_edit, self.after_edit, self.before_edit):
            edit.blockSignals(True)
            edit.clear()
            edit.blockSignals(False)
        for action in self.label_menu.actions() + self.source_menu.actions():
            action.blockSignals(True)
            action.setChecked(False)
            action.blockSignals(False)
        self.apply()

    def focus_path(self) -> None:
        self.path_edit.setFocus()
        self.path_edit.selectAll()

    # ---- showing ------------------------------------------------------------------------
    def _toggled(self, on: bool) -> None:
        self.setVisible(on)
        if on:
            self.focus_path()

    def setVisible(self, visible: bool) -> None:
        super().setVisible(visible)
        if self.toggle_action.isChecked() != visible:
            self.toggle_action.setChecked(visible)

    def _range_picked(self, low: float, high: float) -> None:
        self.confidence_edit.setText(f"{low:.2f}:{high:.2f}" if low > 0 or high < 1 else "")
        self.confidence_edit.setCursorPosition(0)

    def _show_choices(self) -> None:
        for button, menu in ((self.label_button, self.label_menu), (self.source_button, self.source_menu)):
            names = [a.text() for a in self._ticked(menu)]
            button.setText(
                ", ".join(names) if 0 < len(names) <= 2 else f"{len(names)} chosen" if names else button.property("any")
            )

    def _update_count(self) -> None:
        s = self.session
        total = len(s.labels)
        if self.error:
            text, colour = self.error, style.DANGER
        elif s.filtered is None:
            text, colour = f"{total:,} images", style.MUTED
        else:
            text, colour = f"{len(s.filtered):,} of {total:,} shown", style.TEXT
        self.count_label.setText(text)
        self.count_label.setStyleSheet(f"color: {colour};")
        self.count_label.setToolTip(self.error or (s.filter.describe() if s.filter is not None else ""))
