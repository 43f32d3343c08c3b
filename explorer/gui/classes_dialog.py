"""The Classes dialog: add, rename, recolour, reorder, merge and delete classes.

A list of the classes with swatch, number key (1-9 for the first nine), name and counts, and a
button per action. Merge and delete say first what will happen to the labels and ask; both are
one undoable event in the store (Ctrl+Z brings the class and its labels back). Every action
goes to the store, then the session reloads classes and labels, so the map, the legend and the
label panel follow.

The ``ask_*`` methods open the dialogs; the plain methods (``rename``, ``merge``, ...) do the
work without asking anything but the merge/delete confirmation (``confirm``), which tests and
scripts can replace.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.gui import style
from explorer.gui.label_panel import KEYS, swatch
from explorer.gui.session import Session
from explorer.store import LabelClass, ProjectError
from explorer.store.project import ClassUsage

UNDO_NOTE = "Undo (Ctrl+Z) brings everything back."


# ---- what an action will do, in words -------------------------------------------------------
def _count(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


def _human_text(usage: ClassUsage) -> str:
    """'12 human labels (10 seed, 2 accepted)'."""
    parts = [f"{n:,} {source}" for source, n in usage.human.items() if n]
    text = _count(usage.human_total, "human label")
    return f"{text} ({', '.join(parts)})" if len(parts) > 1 else text


def delete_preview(usage: ClassUsage) -> str:
    """What deleting ``usage.label`` does, for the confirmation."""
    name = usage.label.name
    lines = [f"Delete the class {name!r}?"]
    removed = []
    if usage.human_total:
        removed.append(_human_text(usage))
    if usage.pseudo:
        removed.append(_count(usage.pseudo, "pseudo-label"))
    if usage.rejections:
        removed.append(_count(usage.rejections, "rejection"))
    if removed:
        joined = ", ".join(removed[:-1]) + (" and " if len(removed) > 1 else "") + removed[-1]
        lines.append(f"{joined} of {name!r} will be removed; those images become unlabelled.")
    else:
        lines.append("No image has this class: only the class is removed.")
    if usage.label.position < KEYS:
        lines.append("The classes after it move up one number key.")
    lines.append(UNDO_NOTE)
    return "\n".join(lines)


def merge_preview(usages: Sequence[ClassUsage], target: LabelClass) -> str:
    """What merging the classes of ``usages`` into ``target`` does, for the confirmation."""
    names = ", ".join(repr(u.label.name) for u in usages)
    human = sum(u.human_total for u in usages)
    pseudo = sum(u.pseudo for u in usages)
    rejections = sum(u.rejections for u in usages)
    lines = [f"Merge {names} into {target.name!r}?"]
    if human or pseudo:
        lines.append(
            f"{_count(human, 'human label')} and {_count(pseudo, 'pseudo-label')} of {names} "
            f"become {target.name!r} (human labels keep their source)."
        )
    if rejections:
        lines.append(
            f"{_count(rejections, 'rejection')} of {names} will be dropped "
            f'("not {usages[0].label.name}" does not say "not {target.name}").'
        )
    lines.append(f"{names} {'is' if len(usages) == 1 else 'are'} then removed. {UNDO_NOTE}")
    return "\n".join(lines)


# ---- the widget ------------------------------------------------------------------------------
class ClassesEditor(QWidget):
    """The classes of the session's project, with the actions that change them."""

    changed = Signal(str)  # a class action was done: what it did, in words

    COLUMNS = ("Key", "Class", "Human", "Pseudo")

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(6)
        self.class_list = QTreeWidget()
        self.class_list.setColumnCount(len(self.COLUMNS))
        self.class_list.setHeaderLabels(list(self.COLUMNS))
        self.class_list.setRootIsDecorated(False)
        self.class_list.setIndentation(0)
        self.class_list.setAlternatingRowColors(True)
        self.class_list.setIconSize(QSize(14, 14))
        self.class_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.class_list.setToolTip("Select one class to rename, recolour, move or delete; several to merge")
        header = self.class_list.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column, width in ((0, 34), (2, 64), (3, 64)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(column, width)
        self.class_list.itemSelectionChanged.connect(self._update_buttons)
        self.class_list.itemDoubleClicked.connect(lambda *_: self.ask_rename())
        layout.addWidget(self.class_list, 1)

        grid = QGridLayout()
        grid.setSpacing(6)
        self.add_button = self._button("Add…", "Add a class (it takes the next free number key)", self.ask_add)
        self.rename_button = self._button("Rename…", "Rename the selected class (F2)", self.ask_rename)
        self.colour_button = self._button("Colour…", "Pick the selected class's colour", self.ask_colour)
        self.merge_button = self._button(
            "Merge into…", "Fold the selected classes and their labels into another class", self.ask_merge
        )
        self.delete_button = self._button("Delete…", "Delete the selected class (Del)", self.ask_delete)
        self.up_button = self._button(
            "Move up", "Earlier in the list: a lower number key", lambda: self.move_selected(-1)
        )
        self.down_button = self._button(
            "Move down", "Later in the list: a higher number key", lambda: self.move_selected(1)
        )
        buttons = (
            self.add_button,
            self.rename_button,
            self.colour_button,
            self.merge_button,
            self.up_button,
            self.down_button,
            self.delete_button,
        )
        for k, button in enumerate(buttons):
            grid.addWidget(button, k // 2, k % 2)
        layout.addLayout(grid)
        self.status = QLabel("")
        self.status.setObjectName("Muted")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        for key, slot in ((QKeySequence.StandardKey.Delete, self.ask_delete), (QKeySequence("F2"), self.ask_rename)):
            shortcut = QShortcut(key, self.class_list)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(slot)

        for signal in (session.classesChanged, session.labelsChanged, session.projectChanged):
            signal.connect(self.refresh)
        self.refresh()

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda _=False: slot())
        return button

    # ---- reading ------------------------------------------------------------------------
    def selected_classes(self) -> list[int]:
        """Ids of the selected classes, in list order."""
        rows = sorted(self.class_list.selectedItems(), key=self.class_list.indexOfTopLevelItem)
        return [int(r.data(1, Qt.ItemDataRole.UserRole)) for r in rows]

    def select(self, class_ids: Sequence[int]) -> None:
        wanted = {int(c) for c in class_ids}
        self.class_list.clearSelection()
        for k in range(self.class_list.topLevelItemCount()):
            row = self.class_list.topLevelItem(k)
            if int(row.data(1, Qt.ItemDataRole.UserRole)) in wanted:
                row.setSelected(True)
                self.class_list.setCurrentItem(row, 1, QItemSelectionModel.SelectionFlag.NoUpdate)
        self._update_buttons()

    def _single(self) -> LabelClass | None:
        chosen = self.selected_classes()
        if len(chosen) != 1:
            self._say("select one class first")
            return None
        return self.session.class_of(chosen[0])

    # ---- actions (no dialogs but the merge/delete confirmation) -------------------------
    def add(self, name: str) -> LabelClass | None:
        label = self.session.add_class(name)
        if label is not None:
            self.select([label.id])
            key = [c.id for c in self.session.classes].index(label.id) + 1
            self._done(f"added {label.name!r}" + (f" on key {key}" if key <= KEYS else ""))
        return label

    def rename(self, class_id: int, name: str) -> bool:
        old = self.session.class_of(class_id)
        return self._store(lambda p: p.rename_class(class_id, name), f"renamed {old.name!r} to {name.strip()!r}")

    def recolour(self, class_id: int, colour: str) -> bool:
        label = self.session.class_of(class_id)
        return self._store(lambda p: p.recolour_class(class_id, colour), f"recoloured {label.name!r}")

    def move(self, class_id: int, offset: int) -> bool:
        """Move a class ``offset`` places (negative: up, to a lower number key)."""
        ids = [c.id for c in self.session.classes]
        if class_id not in ids:
            return False
        to = ids.index(class_id) + offset
        if not 0 <= to < len(ids):
            return False
        label = self.session.class_of(class_id)
        key = f"key {to + 1}" if to < KEYS else "no number key"
        done = self._store(lambda p: p.move_class(class_id, to), f"{label.name!r} is now on {key}")
        if done:
            self.select([class_id])
        return done

    def move_selected(self, offset: int) -> bool:
        label = self._single()
        return label is not None and self.move(label.id, offset)

    def merge(self, sources: Sequence[int], target: int) -> bool:
        """Merge ``sources`` into ``target`` after showing what will happen and asking."""
        if self.session.project is None:
            return False
        try:
            usages = [self.session.project.class_usage(s) for s in sources]
            into = self.session.class_of(target)
            if into is None or target in sources:
                raise ProjectError("pick a class other than the merged ones to merge into")
        except ProjectError as exc:
            self._say(str(exc))
            return False
        if not self.confirm("Merge classes", merge_preview(usages, into)):
            return False
        names = ", ".join(repr(u.label.name) for u in usages)
        done = self._store(lambda p: p.merge_classes(sources, target), f"merged {names} into {into.name!r}", True)
        if done:
            self.select([target])
        return done

    def delete(self, class_id: int) -> bool:
        """Delete a class after showing what happens to its labels and asking."""
        if self.session.project is None:
            return False
        try:
            usage = self.session.project.class_usage(class_id)
        except ProjectError as exc:
            self._say(str(exc))
            return False
        if not self.confirm("Delete class", delete_preview(usage)):
            return False
        return self._store(lambda p: p.delete_class(class_id), f"deleted {usage.label.name!r}", True)

    def confirm(self, title: str, text: str) -> bool:
        """Ask before a merge or delete (replace in scripts and tests)."""
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Ok

    # ---- dialogs ------------------------------------------------------------------------
    def ask_add(self) -> LabelClass | None:
        if self.session.project is None:
            return None
        name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:")
        return self.add(name) if ok and name.strip() else None

    def ask_rename(self) -> bool:
        label = self._single()
        if label is None:
            return False
        name, ok = QInputDialog.getText(self, "Rename class", f"New name for {label.name!r}:", text=label.name)
        if not ok or name.strip() in ("", label.name):
            return False
        return self.rename(label.id, name)

    def ask_colour(self) -> bool:
        label = self._single()
        if label is None:
            return False
        colour = QColorDialog.getColor(QColor(label.colour), self, f"Colour of {label.name!r}")
        return colour.isValid() and self.recolour(label.id, colour.name())

    def ask_merge(self) -> bool:
        sources = self.selected_classes()
        others = [c for c in self.session.classes if c.id not in sources]
        if not sources or not others:
            self._say("select the classes to merge, and keep one other class to merge them into")
            return False
        names = [c.name for c in others]
        picked, ok = QInputDialog.getItem(self, "Merge into", "Merge the selected classes into:", names, 0, False)
        if not ok or picked not in names:
            return False
        return self.merge(sources, others[names.index(picked)].id)

    def ask_delete(self) -> bool:
        label = self._single()
        return label is not None and self.delete(label.id)

    # ---- store, then session --------------------------------------------------------------
    def _store(self, action, text: str, labels_changed: bool = False) -> bool:
        if self.session.project is None:
            self._say("open a folder first")
            return False
        try:
            action(self.session.project)
        except ProjectError as exc:
            self._say(str(exc))
            return False
        reload_session(self.session, labels_changed)
        self._done(text)
        return True

    def _done(self, text: str) -> None:
        self._say(text)
        self.changed.emit(text)

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.session.message.emit(text)

    # ---- view ---------------------------------------------------------------------------
    def refresh(self) -> None:
        keep = set(self.selected_classes())
        counts = self.session.class_counts()
        self.class_list.blockSignals(True)
        self.class_list.clear()
        for position, label in enumerate(self.session.classes):
            human, pseudo = counts.get(label.id, (0, 0))
            row = QTreeWidgetItem(
                [str(position + 1) if position < KEYS else "", label.name, f"{human:,}", f"{pseudo:,}"]
            )
            row.setIcon(1, swatch(label.colour, 14))
            row.setData(1, Qt.ItemDataRole.UserRole, label.id)
            row.setToolTip(1, f"{label.name} ({label.colour})")
            for column in (0, 2, 3):
                row.setTextAlignment(column, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            row.setForeground(0, QColor(style.MUTED))
            self.class_list.addTopLevelItem(row)
            row.setSelected(label.id in keep)
        self.class_list.blockSignals(False)
        self._update_buttons()

    def _update_buttons(self) -> None:
        chosen = self.selected_classes()
        ids = [c.id for c in self.session.classes]
        one = len(chosen) == 1
        has_project = self.session.project is not None
        self.add_button.setEnabled(has_project)
        for button in (self.rename_button, self.colour_button, self.delete_button):
            button.setEnabled(one)
        self.merge_button.setEnabled(bool(chosen) and len(chosen) < len(ids))
        self.up_button.setEnabled(one and ids.index(chosen[0]) > 0)
        self.down_button.setEnabled(one and ids.index(chosen[0]) < len(ids) - 1)


def reload_session(session: Session, labels_changed: bool) -> None:
    """Tell the session that classes changed (and labels, after a merge or delete).

    Uses ``Session.reload_classes(edited=)`` when the session has it; otherwise does the same
    steps itself: classes first, then the label table that indexes them, then the signals.
    """
    hook = getattr(session, "reload_classes", None)
    if callable(hook):
        hook(edited=labels_changed)
        return
    session._reload_classes()
    session._reload_labels()
    session.classesChanged.emit()
    session.labelsChanged.emit()
    if labels_changed:
        session.labelsEdited.emit()


class ClassesDialog(QDialog):
    """The classes editor in its own window (non-modal is fine: it follows the session)."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Classes")
        self.resize(420, 460)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 8)
        self.editor = ClassesEditor(session, self)
        layout.addWidget(self.editor, 1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
