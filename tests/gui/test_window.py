"""The main window driven through its real widgets: clicks on the map, keys, buttons."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from explorer.store import Project


def click_row(qtbot, window, row: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    view = window.map_view
    pos = view.viewport_pos(row)
    viewport = view.plot.viewport()
    QTest.mouseMove(viewport, pos)
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, modifier, pos)


def drag(widget, start: QPoint, end: QPoint, modifiers, steps: int = 8) -> None:
    """A left-button drag with modifiers held throughout (QTest.mouseMove cannot hold them)."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton

    def send(kind, pos, button, buttons):
        local = QPointF(pos)
        event = QMouseEvent(kind, local, QPointF(widget.mapToGlobal(pos)), button, buttons, modifiers)
        QApplication.sendEvent(widget, event)

    send(QEvent.Type.MouseButtonPress, start, left, left)
    for t in np.linspace(0, 1, steps + 1)[1:]:
        send(QEvent.Type.MouseMove, start + (end - start) * float(t), none, left)
    send(QEvent.Type.MouseButtonRelease, end, left, none)


def rows_of_cluster(window, cluster: str) -> np.ndarray:
    s = window.session
    paths = np.array([s.path_of(i) for i in s.map.item_ids])
    return np.flatnonzero(np.char.startswith(paths.astype(str), cluster + "/"))


def add_classes(qtbot, window, names=("red", "green", "blue")) -> None:
    panel = window.label_panel
    for name in names:
        panel.class_name.setFocus()
        qtbot.keyClicks(panel.class_name, name)
        qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert [c.name for c in window.session.classes] == list(names)
    assert panel.class_list.topLevelItemCount() == len(names)


def press(qtbot, window, key) -> None:
    """A key press as the person makes it: to the focused map."""
    window.map_view.plot.setFocus()
    qtbot.keyClick(window.map_view.plot, key)


def test_window_shows_the_map(window):
    assert window.map_stack.currentWidget() is window.map_view
    assert window.map_view.drawn
    assert len(window.map_view.points.data) == 60
    assert "60 images" in window.counts_label.text()
    # One palette, shared brushes: 60 points, a handful of distinct brush objects.
    assert len({id(b) for b in window.map_view.points.data["brush"]}) <= 2


def test_empty_state_without_a_map(qtbot, tmp_path, settings, make_project, wait_opened):
    from explorer.gui.main_window import MainWindow

    root = tmp_path / "nomap"
    make_project(root, with_map=False).close()
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    assert win.open_project(root)
    wait_opened(win.session)
    assert win.map_stack.currentWidget() is win.empty
    assert "No map yet" in win.empty.title.text()
    assert "60 images" in win.empty.text.text()
    assert not win.label_panel.propagate_button.isEnabled()
    win.close()


def test_click_selects_and_number_key_labels(qtbot, window):
    add_classes(qtbot, window)
    s = window.session
    red = rows_of_cluster(window, "red")
    click_row(qtbot, window, int(red[0]))
    first = int(s.ids_of([red[0]])[0])
    assert s.selection.tolist() == [first]
    assert s.current == first
    assert window.image_view.title.text() == s.path_of(first).rsplit("/", 1)[-1]
    # Neighbours of the current item are listed and drawn.
    assert window.image_view.neighbours.count() == 8
    assert len(window.map_view.neighbour_marks.data) == 8

    click_row(qtbot, window, int(red[1]), Qt.KeyboardModifier.ShiftModifier)
    assert len(s.selection) == 2
    click_row(qtbot, window, int(red[1]), Qt.KeyboardModifier.ControlModifier)  # toggles it off
    assert len(s.selection) == 1
    click_row(qtbot, window, int(red[1]), Qt.KeyboardModifier.ControlModifier)
    assert len(s.selection) == 2

    press(qtbot, window, Qt.Key.Key_1)
    table = s.project.label_table()
    red_class = s.classes[0].id
    chosen = np.isin(table.item_ids, s.selection)
    assert (table.class_ids[chosen] == red_class).all()
    assert set(table.source[chosen]) == {"seed"}
    assert window.label_panel.class_list.topLevelItem(0).text(2) == "2"
    assert "2 labelled" in window.counts_label.text()

    # Clicking empty canvas clears the selection.
    viewport = window.map_view.plot.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert len(s.selection) == 0


def test_shift_drag_draws_a_selection_box(qtbot, window):
    view = window.map_view
    s = window.session
    red = rows_of_cluster(window, "red")
    xy = view.xy[red]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    pad = 0.05

    def at(x, y):
        return view.plot.mapFromScene(view.view_box.mapViewToScene(QPointF(float(x), float(y))))

    start, end = at(lo[0] - pad, lo[1] - pad), at(hi[0] + pad, hi[1] + pad)
    viewport = view.plot.viewport()
    shift = Qt.KeyboardModifier.ShiftModifier
    drag(viewport, start, end, shift)
    expected = set(s.ids_of(red).tolist())
    inside = np.flatnonzero((view.xy >= lo - pad).all(axis=1) & (view.xy <= hi + pad).all(axis=1))
    assert expected <= set(s.selection.tolist()) <= set(s.ids_of(inside).tolist())


def test_lasso_selection(window):
    view = window.map_view
    view.set_tool("lasso")
    red = rows_of_cluster(window, "red")
    centre = view.xy[red].mean(axis=0)
    angles = np.linspace(0, 2 * np.pi, 40)
    polygon = centre + 2.5 * np.c_[np.cos(angles), np.sin(angles)]
    view.select_region(polygon)
    picked = set(window.session.selection.tolist())
    assert picked and picked <= set(
        window.session.ids_of(np.flatnonzero(np.linalg.norm(view.xy - centre, axis=1) <= 2.5)).tolist()
    )


def test_hover_card_shows_thumbnail(qtbot, window):
    view = window.map_view
    row = int(rows_of_cluster(window, "green")[3])
    view.hover_row(row)
    assert view.card.isVisible()
    assert "green_" in view.card.text.text()
    qtbot.waitUntil(lambda: not view.card.image.pixmap().isNull(), timeout=5000)


def test_neighbour_strip_click_moves_current(qtbot, window):
    s = window.session
    row = int(rows_of_cluster(window, "blue")[0])
    click_row(qtbot, window, row)
    strip = window.image_view.neighbours
    entry = strip.item(0)
    target = int(entry.data(Qt.ItemDataRole.UserRole))
    rect = strip.visualItemRect(entry)
    qtbot.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert s.current == target
    assert s.selection.tolist() == [target]
    qtbot.waitUntil(lambda: window.image_view.picture.image is not None, timeout=5000)


def seed_each_cluster(qtbot, window, per_cluster: int = 2) -> None:
    for key, cluster in enumerate(("red", "green", "blue"), start=1):
        rows = rows_of_cluster(window, cluster)[:per_cluster]
        click_row(qtbot, window, int(rows[0]))
        for r in rows[1:]:
            click_row(qtbot, window, int(r), Qt.KeyboardModifier.ShiftModifier)
        press(qtbot, window, getattr(Qt.Key, f"Key_{key}"))


def test_propagate_accept_undo_redo(qtbot, window, tmp_path):
    window.auto_action.setChecked(False)
    add_classes(qtbot, window)
    seed_each_cluster(qtbot, window)
    s = window.session
    assert s.counts()["human"] == 6 and s.counts()["pseudo"] == 0

    qtbot.mouseClick(window.label_panel.propagate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: s.counts()["pseudo"] > 0, timeout=15000)
    table = s.labels
    by_name = {c.id: c.name for c in s.classes}
    for k, item in enumerate(table.item_ids):
        if table.source[k] == "pseudo":
            assert s.path_of(item).startswith(by_name[int(table.class_ids[k])] + "/")
    assert "pseudo" in window.counts_label.text()
    assert window.label_panel.class_list.topLevelItem(0).text(3) != "0"

    # Accept one pseudo-label with the key, then undo and redo with the keyboard.
    pseudo_row = int(s.rows_of([table.item_ids[table.source == "pseudo"][0]])[0])
    item = int(s.ids_of([pseudo_row])[0])
    click_row(qtbot, window, pseudo_row)
    press(qtbot, window, Qt.Key.Key_A)
    assert s.info(item).source == "accepted"
    window.map_view.plot.setFocus()
    qtbot.keyClick(window.map_view.plot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert s.info(item).source == "pseudo"
    qtbot.mouseClick(window.label_panel.redo_button, Qt.MouseButton.LeftButton)
    assert s.info(item).source == "accepted"
    assert "accept" in window.label_panel.history_text.text()

    # Reject another: its pseudo-label disappears (and counts as evidence next time).
    other = table.item_ids[(table.source == "pseudo") & (table.item_ids != item)][0]
    click_row(qtbot, window, int(s.rows_of([other])[0]))
    qtbot.mouseClick(window.label_panel.reject_button, Qt.MouseButton.LeftButton)
    assert (
        s.info(int(other)).source != "pseudo"
        or s.info(int(other)).class_id != table.class_ids[table.item_ids == other][0]
    )

    # And out: the accepted label leaves as `accepted`, the rest as seeds and pseudo-labels.
    out = tmp_path / "labels.csv"
    assert window.export_to(out, "csv")
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=15000)
    with open(out, newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    assert len(rows) == 60 and rows[s.path_of(item)]["source"] == "accepted"
    assert sum(r["source"] == "seed" for r in rows.values()) == 6


def test_keyboard_undo_redo(qtbot, window):
    add_classes(qtbot, window, ("a",))
    s = window.session
    click_row(qtbot, window, 0)
    press(qtbot, window, Qt.Key.Key_1)
    assert s.info(s.current).source == "seed"
    window.map_view.plot.setFocus()
    qtbot.keyClick(window.map_view.plot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert s.info(s.current).source == ""
    qtbot.keyClick(
        window.map_view.plot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert s.info(s.current).source == "seed"


def test_label_edit_repropagates_by_itself(qtbot, window):
    add_classes(qtbot, window)
    seed_each_cluster(qtbot, window, per_cluster=1)
    s = window.session
    qtbot.waitUntil(lambda: s.counts()["pseudo"] > 0 and not window.propagation.busy, timeout=15000)
    colours = window.map_view.points.data["brush"]
    assert len({id(b) for b in colours}) > 3  # grey is gone, classes (and shades) appear


def test_confidence_is_calibrated_in_the_background_once_enough_labels(qtbot, window):
    add_classes(qtbot, window)
    seed_each_cluster(qtbot, window, per_cluster=2)
    s, text = window.session, window.label_panel.propagation_text
    qtbot.waitUntil(lambda: window.settled() and not window.loop.propagation_due, timeout=15000)
    assert "not yet calibrated" in text.text()
    seed_each_cluster(qtbot, window, per_cluster=8)  # 24 labels: enough to check against
    qtbot.waitUntil(lambda: window.settled() and "calibrated on 24 hidden" in text.text(), timeout=30000)
    pseudo = s.labels.source == "pseudo"
    assert pseudo.sum() == 36 and s.labels.confidence[pseudo].mean() > 0.8  # three clean blobs


def test_refine_says_when_the_propagation_advises_it(qtbot, window, monkeypatch):
    advice = "refine with labels could help: 6 human labels, no refine yet"
    monkeypatch.setattr(
        "explorer.workflow.labelling.refine_advice", lambda _project, _run, labels: advice if labels >= 6 else ""
    )
    add_classes(qtbot, window)
    seed_each_cluster(qtbot, window, per_cluster=1)
    qtbot.waitUntil(lambda: window.settled() and not window.loop.propagation_due, timeout=15000)
    assert window.refine_action.text() == "Refine with labels"
    seed_each_cluster(qtbot, window, per_cluster=2)
    qtbot.waitUntil(lambda: window.refine_action.text() == "Refine with labels (advised)", timeout=15000)
    assert window.refine_action.toolTip().startswith("Refine with labels could help: 6 human labels")
    window.session.undo()  # 5 labels: no longer advised
    qtbot.waitUntil(lambda: window.refine_action.text() == "Refine with labels", timeout=15000)


def test_typing_a_class_name_does_not_trigger_keys(qtbot, window):
    add_classes(qtbot, window, ("cat",))
    click_row(qtbot, window, 0)
    panel = window.label_panel
    panel.class_name.setFocus()
    qtbot.keyClicks(panel.class_name, "a1r")
    assert panel.class_name.text() == "a1r"
    assert window.session.counts()["human"] == 0


def test_export_csv(qtbot, window, tmp_path):
    add_classes(qtbot, window)
    seed_each_cluster(qtbot, window, per_cluster=1)
    out = tmp_path / "labels.csv"
    qtbot.waitUntil(lambda: not window.propagation.busy and not window.loop.propagation_due, timeout=15000)
    assert window.export_to(out, "csv")
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=15000)
    assert not window.last_error, window.last_error
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "label", "source", "confidence"]
    assert len(rows) == 60
    seeds = [r for r in rows if r["source"] == "seed"]
    assert len(seeds) == 3
    assert all(r["path"].startswith(r["label"] + "/") for r in seeds)


def test_settings_remember_last_project(qtbot, window, settings, project_dir, wait_opened):
    window.close()
    from explorer.gui.main_window import MainWindow

    again = MainWindow(settings)
    qtbot.addWidget(again)
    assert again.restore_last_project()
    wait_opened(again.session)
    assert again.session.project.root == project_dir.resolve()
    again.close()


def test_labels_persist_in_the_store(qtbot, window, project_dir):
    add_classes(qtbot, window, ("x",))
    click_row(qtbot, window, 3)
    press(qtbot, window, Qt.Key.Key_1)
    with Project(project_dir) as other:
        assert other.label_counts().get("seed") == 1


@pytest.mark.parametrize("n", [1, 10, 1000, 1_000_000])
def test_point_size_shrinks_with_count(n):
    from explorer.gui.scatter import point_size

    assert 3 <= point_size(n) <= 9


def test_labels_from_another_process_show_up(qtbot, window, project_dir):
    add_classes(qtbot, window, ("x",))
    window.loop.check_outside_changes()  # the window notes where the store is
    with Project(project_dir) as other:  # a CLI command or a second window
        cls = other.class_by_name("x").id
        other.set_labels([int(window.session.map.item_ids[0])], cls, source="seed")
    window.loop.check_outside_changes()
    assert window.session.counts()["human"] == 1
