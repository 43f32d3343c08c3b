"""The Classes dialog driven as a person would: select rows, click buttons, answer the dialogs."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog, QInputDialog, QMessageBox

from explorer.gui.classes_dialog import (
    ClassesDialog,
    ClassesEditor,
    delete_preview,
    merge_preview,
    reload_session,
)
from explorer.gui.label_panel import LabelPanel
from explorer.gui.session import Session
from explorer.store import LabelClass
from explorer.store.project import ClassUsage


@pytest.fixture
def session(qtbot, tmp_path, make_project, wait_opened):
    """A session on the shapes project: red (4 seed, 1 accepted), green (3 seed), blue; 5 red and
    6 green pseudo-labels; one green pseudo-label rejected."""
    root = tmp_path / "shapes"
    project = make_project(root)
    red, green, blue = (project.add_class(n) for n in ("red", "green", "blue"))
    paths = {item.path: item.id for item in project.items()}
    ids = lambda cluster, a, b: [paths[f"{cluster}/{cluster}_{k:02d}.png"] for k in range(a, b)]  # noqa: E731
    project.set_labels(ids("red", 0, 4), red.id)
    project.set_labels(ids("green", 0, 3), green.id)
    pseudo = ids("red", 4, 10) + ids("green", 3, 10)
    project.save_pseudo_labels(np.array(pseudo), np.array([red.id] * 6 + [green.id] * 7), np.full(13, 0.8))
    project.accept_pseudo(ids("red", 4, 5))
    project.reject_pseudo(ids("green", 3, 4))
    project.close()
    s = Session()
    s.open_project(root)
    wait_opened(s)
    yield s
    s.close_project()


@pytest.fixture
def editor(qtbot, session):
    widget = ClassesEditor(session)
    qtbot.addWidget(widget)
    widget.show()
    return widget


@pytest.fixture
def answers(monkeypatch):
    """Replies for the static dialogs, and the texts they were shown."""
    shown: dict[str, list] = {"question": [], "text": [], "item": []}
    replies = {"text": ("", False), "item": ("", False), "colour": QColor(), "question": QMessageBox.StandardButton.Ok}

    def question(parent, title, text, *args):
        shown["question"].append(text)
        return replies["question"]

    def get_text(parent, title, label, *args, **kwargs):
        shown["text"].append(label)
        return replies["text"]

    def get_item(parent, title, label, items, *args):
        shown["item"].append(list(items))
        return replies["item"]

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(get_item))
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: replies["colour"]))
    replies["shown"] = shown
    return replies


def rows(editor: ClassesEditor) -> list[list[str]]:
    out = []
    for k in range(editor.class_list.topLevelItemCount()):
        item = editor.class_list.topLevelItem(k)
        out.append([item.text(c) for c in range(len(editor.COLUMNS))])
    return out


def click(qtbot, button) -> None:
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_list_shows_keys_names_counts_and_swatches(editor):
    assert rows(editor) == [["1", "red", "5", "5"], ["2", "green", "3", "6"], ["3", "blue", "0", "0"]]
    assert not editor.class_list.topLevelItem(0).icon(1).isNull()
    assert not editor.rename_button.isEnabled() and not editor.delete_button.isEnabled()


def test_add_rename_and_recolour_through_the_dialogs(qtbot, editor, session, answers):
    answers["text"] = ("cyan", True)
    with qtbot.waitSignal(session.classesChanged):
        click(qtbot, editor.add_button)
    assert rows(editor)[3] == ["4", "cyan", "0", "0"] and editor.status.text() == "added 'cyan' on key 4"

    editor.select([session.classes[0].id])
    answers["text"] = ("  crimson ", True)
    with qtbot.waitSignal(session.classesChanged):
        click(qtbot, editor.rename_button)
    assert [c.name for c in session.classes] == ["crimson", "green", "blue", "cyan"]
    assert session.project.class_by_name("crimson").id == session.classes[0].id

    answers["text"] = ("green", True)  # taken: a clear message, nothing changes
    click(qtbot, editor.rename_button)
    assert "'green' already exists" in editor.status.text()
    assert [c.name for c in session.classes] == ["crimson", "green", "blue", "cyan"]

    answers["colour"] = QColor("#123456")
    with qtbot.waitSignal(session.classesChanged):
        click(qtbot, editor.colour_button)
    assert session.classes[0].colour == "#123456" == session.project.classes()[0].colour
    answers["colour"] = QColor()  # the dialog was cancelled
    assert editor.ask_colour() is False


def test_move_changes_the_number_key(qtbot, editor, session):
    blue = session.classes[2]
    editor.select([blue.id])
    assert not editor.down_button.isEnabled()
    click(qtbot, editor.up_button)
    click(qtbot, editor.up_button)
    assert [r[:2] for r in rows(editor)] == [["1", "blue"], ["2", "red"], ["3", "green"]]
    assert editor.selected_classes() == [blue.id] and not editor.up_button.isEnabled()
    session.set_selection(session.map.item_ids[:2])
    session.label_with_key(1)  # key 1 is blue now
    assert set(session.labels.class_ids[np.isin(session.labels.item_ids, session.map.item_ids[:2])]) == {blue.id}


def test_delete_shows_what_happens_then_updates_session_and_label_panel(qtbot, editor, session, answers):
    panel = LabelPanel(session)
    qtbot.addWidget(panel)
    red = session.classes[0]
    editor.select([red.id])
    answers["question"] = QMessageBox.StandardButton.Cancel
    click(qtbot, editor.delete_button)
    assert answers["shown"]["question"][-1].splitlines()[:2] == [
        "Delete the class 'red'?",
        "5 human labels (4 seed, 1 accepted) and 5 pseudo-labels of 'red' will be removed; "
        "those images become unlabelled.",
    ]
    assert [c.name for c in session.classes] == ["red", "green", "blue"]  # cancelled: nothing changed

    answers["question"] = QMessageBox.StandardButton.Ok
    with qtbot.waitSignals([session.classesChanged, session.labelsChanged, session.labelsEdited]):
        click(qtbot, editor.delete_button)
    assert rows(editor) == [["1", "green", "3", "6"], ["2", "blue", "0", "0"]]
    assert panel.class_list.topLevelItemCount() == 2 and panel.class_list.topLevelItem(0).text(1) == "green"
    assert session.counts()["human"] == 3 and session.counts()["pseudo"] == 6
    assert session.map_class_index.max() == 0  # map colours index the new class list
    assert editor.status.text() == "deleted 'red'"

    assert session.project.undo() == "delete class 'red'"
    reload_session(session, labels_changed=True)  # what Session.undo must do too (see the report)
    assert rows(editor)[0] == ["1", "red", "5", "5"]


def test_merge_into_another_class(qtbot, editor, session, answers):
    red, green, blue = session.classes
    editor.select([green.id, blue.id])
    assert editor.merge_button.isEnabled() and not editor.rename_button.isEnabled()
    answers["item"] = ("red", True)
    with qtbot.waitSignal(session.labelsEdited):
        click(qtbot, editor.merge_button)
    assert answers["shown"]["item"][-1] == ["red"]  # only the classes not merged
    text = answers["shown"]["question"][-1]
    assert "Merge 'green', 'blue' into 'red'?" in text and "3 human labels and 6 pseudo-labels" in text
    assert "1 rejection of 'green', 'blue' will be dropped" in text
    assert rows(editor) == [["1", "red", "8", "12"]]  # the rejected one shows as red now
    assert editor.selected_classes() == [red.id]
    assert session.project.history(1)[0][2] == "merge 'green', 'blue' into 'red'"


def test_every_class_selected_cannot_merge(editor, session, answers):
    editor.select([c.id for c in session.classes])
    assert not editor.merge_button.isEnabled()
    assert editor.ask_merge() is False and "keep one other class" in editor.status.text()


def test_previews_in_words():
    cat = LabelClass(1, "cat", "#000000", 0)
    empty = ClassUsage(cat, {"seed": 0, "accepted": 0, "imported": 0}, 0, 0)
    assert delete_preview(empty).splitlines()[1] == "No image has this class: only the class is removed."
    one = ClassUsage(cat, {"seed": 1, "accepted": 0, "imported": 0}, 340, 1)
    assert delete_preview(one).splitlines()[1] == (
        "1 human label, 340 pseudo-labels and 1 rejection of 'cat' will be removed; those images become unlabelled."
    )
    kitten = ClassUsage(LabelClass(2, "kitten", "#111111", 1), {"seed": 12, "accepted": 0, "imported": 0}, 1, 0)
    text = merge_preview([kitten], cat)
    assert text.splitlines() == [
        "Merge 'kitten' into 'cat'?",
        "12 human labels and 1 pseudo-label of 'kitten' become 'cat' (human labels keep their source).",
        "'kitten' is then removed. Undo (Ctrl+Z) brings everything back.",
    ]


def test_dialog_wraps_the_editor(qtbot, session):
    dialog = ClassesDialog(session)
    qtbot.addWidget(dialog)
    assert dialog.editor.class_list.topLevelItemCount() == 3 and dialog.windowTitle() == "Classes"
