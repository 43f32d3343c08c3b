"""The labelling desk driven as a person drives it, start to finish: lasso a region, label it
with a key, watch propagation recolour the map, review pseudo-labels with keys, undo and redo,
quit, start again and find everything as it was."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QPointF, Qt

from tests.gui.test_window import add_classes, click_row, press, rows_of_cluster


def lasso_around(window, rows, radius_pad=0.6, steps=24):
    """Draw a lasso with the mouse around the points ``rows`` (viewport pixel path)."""
    view = window.map_view
    view.set_tool("lasso")
    view.view_box.scaleBy((2, 2))  # zoom out so that the whole ring is on screen
    xy = view.xy[rows]
    centre = xy.mean(axis=0)
    radius = float(np.linalg.norm(xy - centre, axis=1).max()) + radius_pad
    angles = np.linspace(0, 2 * np.pi, steps)
    ring = centre + radius * np.c_[np.cos(angles), np.sin(angles)]

    def at(x, y):
        return view.plot.mapFromScene(view.view_box.mapViewToScene(QPointF(float(x), float(y))))

    viewport = view.plot.viewport()
    points = [at(*p) for p in ring]
    drag_path(viewport, points)  # one press, moves along the ring, one release
    view.set_tool("pan")


def drag_path(widget, points) -> None:
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    mods = Qt.KeyboardModifier.NoModifier

    def send(kind, pos, button, buttons):
        event = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons, mods)
        QApplication.sendEvent(widget, event)

    send(QEvent.Type.MouseButtonPress, points[0], left, left)
    for p in points[1:]:
        time.sleep(0.012)  # pyqtgraph drops mouse moves that come faster than its rate limit
        send(QEvent.Type.MouseMove, p, none, left)
    send(QEvent.Type.MouseButtonRelease, points[-1], left, none)


def review_key(qtbot, window, key) -> None:
    window.side_tabs.setCurrentWidget(window.review)
    window.review.picture.setFocus()
    qtbot.keyClick(window.review.picture, key)


def test_a_whole_labelling_session(qtbot, window, settings, project_dir, wait_opened):
    s = window.session
    add_classes(qtbot, window)
    red = rows_of_cluster(window, "red")

    # Lasso the red cluster and press 1.
    lasso_around(window, red)
    assert set(s.ids_of(red).tolist()) <= set(s.selection.tolist())
    stray = sorted(set(s.selection.tolist()) - set(s.ids_of(red).tolist()))
    for item in stray:  # a lasso can catch a neighbour: Ctrl-click takes it out again, as a person would
        click_row(qtbot, window, int(s.rows_of([item])[0]), Qt.KeyboardModifier.ControlModifier)
    assert set(s.selection.tolist()) == set(s.ids_of(red).tolist())
    press(qtbot, window, Qt.Key.Key_1)
    assert s.counts()["human"] >= len(red)

    # One click and a key for each of the other clusters.
    for key, cluster in ((Qt.Key.Key_2, "green"), (Qt.Key.Key_3, "blue")):
        click_row(qtbot, window, int(rows_of_cluster(window, cluster)[0]))
        press(qtbot, window, key)

    # Propagation runs by itself and the map recolours: pseudo-labels appear in the legend.
    qtbot.waitUntil(lambda: s.counts()["pseudo"] > 0, timeout=15000)
    assert any("green" in row.text() for row in window.map_view.legend.rows)
    green_rows = rows_of_cluster(window, "green")
    assert (window.map_view.layers.codes[green_rows] != 0).all()  # no longer grey

    # Review: A accepts the shown pseudo-label and moves on; R rejects the next one.
    s.clear_selection()
    window.side_tabs.setCurrentWidget(window.review)
    qtbot.waitUntil(lambda: window.review.current_item() >= 0, timeout=5000)
    first = window.review.current_item()
    review_key(qtbot, window, Qt.Key.Key_A)
    assert s.info(first).source == "accepted"
    second = window.review.current_item()
    assert second != first
    rejected_class = s.info(second).class_id
    review_key(qtbot, window, Qt.Key.Key_R)
    assert s.info(second).source != "pseudo" or s.info(second).class_id != rejected_class

    # Undo the rejection, redo it.
    qtbot.keyClick(window.map_view.plot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert (second, rejected_class) not in set(s.project.rejections())
    qtbot.keyClick(
        window.map_view.plot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert (second, rejected_class) in set(s.project.rejections())
    qtbot.waitUntil(lambda: not window.propagation.busy and not window.loop.propagation_due, timeout=15000)
    before = s.project.label_table()
    history = s.history(50)

    # Quit and start again: the same labels, the same rejection, the same undo history.
    window.close()
    from explorer.gui.main_window import MainWindow

    again = MainWindow(settings)
    qtbot.addWidget(again)
    again.show()
    assert again.restore_last_project()
    wait_opened(again.session)
    t = again.session
    after = t.project.label_table()
    human = np.isin(before.source, ["seed", "accepted"])
    assert np.array_equal(before.item_ids[human], after.item_ids[np.isin(after.source, ["seed", "accepted"])])
    assert t.info(first).source == "accepted"
    assert (second, rejected_class) in set(t.project.rejections())
    assert t.history(50) == history
    assert t.undo() is not None  # the undo stack survived the restart
    again.close()
