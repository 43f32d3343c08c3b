"""Clusters on the map: outlines and names, a click on a name selects the cluster, its menu
labels it, the Cluster colouring lists them with counts."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt

from tests.gui.test_window import add_classes, rows_of_cluster


def _with_clusters(qtbot, window, resolution=1.0):
    assert window.find_clusters(resolution)
    qtbot.waitUntil(lambda: window.map_view.cluster_overlay.count > 0, timeout=30000)
    return window.map_view.cluster_overlay


def _click_name(qtbot, window, cluster: int, button=Qt.MouseButton.LeftButton):
    view = window.map_view
    name = view.cluster_overlay.names[cluster]
    assert name.isVisible()
    where = view.plot.mapFromScene(name.sceneBoundingRect().center())
    qtbot.mouseClick(view.plot.viewport(), button, Qt.KeyboardModifier.NoModifier, where)


def test_clusters_are_outlined_named_and_a_click_selects_one(qtbot, window):
    s = window.session
    overlay = _with_clusters(qtbot, window)
    folders = np.array([s.path_of(int(i)).split("/")[0] for i in s.map.item_ids])
    assert set(folders[s.map_clusters >= 0]) == {"red", "green", "blue"}
    for k in range(overlay.count):  # each cluster is one folder's shapes
        assert len(set(folders[s.map_clusters == k])) == 1
    assert overlay.outline.isVisible() and len(overlay.outline.getData()[0]) > 3 * overlay.count
    texts = [n.textItem.toPlainText() for n in overlay.names]
    assert texts[0] == f"cluster 0 ({int((s.map_clusters == 0).sum())})"

    _click_name(qtbot, window, 0)
    assert s.selection.tolist() == np.sort(s.map.item_ids[s.map_clusters == 0]).tolist()
    window.map_view.cluster_box.setChecked(False)
    assert not overlay.outline.isVisible() and not any(n.isVisible() for n in overlay.names)


def test_label_a_cluster_from_its_menu_in_one_undoable_action(qtbot, window):
    s, view = window.session, window.map_view
    add_classes(qtbot, window, ("red", "green"))
    overlay = _with_clusters(qtbot, window)
    members = s.map.item_ids[s.map_clusters == 0]
    kind = s.path_of(int(members[0])).split("/")[0]
    someone = int(members[1])
    s.set_selection([someone])
    s.label_targets(s.classes[1 if kind == "red" else 0].id)  # a person's label, which must stay
    menu = view.show_cluster_menu(0, QPoint(0, 0))
    target = next(a for a in menu.actions() if a.text().startswith(f"Label as {s.classes[0].name}"))
    target.trigger()
    menu.close()
    human = {i: c for i, (c, _source) in s.project.human_labels().items()}
    assert human[someone] != s.classes[0].id
    assert all(human[int(i)] == s.classes[0].id for i in members if int(i) != someone)
    name = overlay.names[0].textItem.toPlainText()
    if kind == "red":
        assert name == f"red ({len(members)})"  # named by its majority label now
    assert "label cluster 0" in s.history(1)[0][2]
    s.undo()
    human = s.project.human_labels()
    assert [int(i) for i in members if int(i) in human] == [someone]


def test_colour_by_cluster_lists_them_with_counts_and_ctrl_g_selects_the_current_ones(qtbot, window):
    s, view = window.session, window.map_view
    _with_clusters(qtbot, window)
    view.set_colour_mode("cluster")
    texts = [row.text() for row in view.legend.rows]
    sizes = np.bincount(s.map_clusters[s.map_clusters >= 0])
    assert len(texts) == len(sizes) + 1 and texts[-1].startswith("in no cluster")
    assert all(t.split()[-1] == f"{n}" for t, n in zip(texts, sizes.tolist(), strict=False))
    row = rows_of_cluster(window, "blue")[0]
    s.set_current(int(s.map.item_ids[row]))
    window.cluster_select_action.trigger()
    assert s.selection.tolist() == np.sort(s.map.item_ids[s.map_clusters == s.map_clusters[row]]).tolist()


def test_names_make_room_for_each_other_as_the_view_zooms(qtbot, window):
    view = window.map_view
    overlay = _with_clusters(qtbot, window, resolution=3.0)  # six clusters, two a shape
    assert overlay.count >= 4
    view.fit()
    (x0, x1), (y0, y1) = view.view_box.viewRange()
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 40, (y1 - y0) * 40
    view.view_box.setRange(xRange=(cx - w / 2, cx + w / 2), yRange=(cy - h / 2, cy + h / 2), padding=0)
    far = [k for k, n in enumerate(overlay.names) if n.isVisible()]
    assert len(far) < overlay.count and 0 in far  # the largest wins the crowded spot
    view.fit()
    qtbot.wait(100)  # names hidden while zoomed out move to their places when painted
    near = [k for k, n in enumerate(overlay.names) if n.isVisible()]
    assert len(near) > len(far)
    rects = [overlay.names[k].sceneBoundingRect() for k in near]
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])
    centre = overlay.centres[near[-1]]
    view.view_box.setRange(xRange=(centre[0] - 0.3, centre[0] + 0.3), yRange=(centre[1] - 0.3, centre[1] + 0.3))
    shown = [k for k, n in enumerate(overlay.names) if n.isVisible()]
    (x0, x1), (y0, y1) = view.view_box.viewRange()
    assert near[-1] in shown
    assert all(x0 <= overlay.centres[k, 0] <= x1 and y0 <= overlay.centres[k, 1] <= y1 for k in shown)


def test_fit_keeps_the_map_clear_of_the_legend(qtbot, window):
    view = window.map_view
    overlay = _with_clusters(qtbot, window)
    # a map pane of the map's own shape, so that the map fills it up to the top right corner
    xy = view.xy
    shape = float(np.ptp(xy[:, 0]) / np.ptp(xy[:, 1]))
    area = view.plot.viewport().rect()
    window.resize(window.width(), window.height() + int(area.width() / shape) - area.height())
    qtbot.wait(100)
    assert view.legend.isVisible()
    view.fit()
    qtbot.wait(100)
    legend = view.legend.geometry()  # in the plot's pixels (the legend is an overlay on it)
    at = lambda x, y: view.plot.mapFromScene(view.view_box.mapViewToScene(QPointF(float(x), float(y))))  # noqa: E731
    assert not legend.contains(at(xy[:, 0].max(), xy[:, 1].max()))  # the map's top right corner
    for k in range(overlay.count):
        assert not legend.contains(at(*overlay.centres[k]))


def test_a_long_legend_scrolls_inside_the_map(qtbot):
    """43 classes: the legend stays within the height it is given and its rows scroll; a short
    one shows every row without a scroll bar."""
    from PySide6.QtWidgets import QWidget

    from explorer.gui.colouring import LegendEntry
    from explorer.gui.legend import Legend

    host = QWidget()
    qtbot.addWidget(host)
    host.resize(600, 400)
    legend = Legend(host)
    legend.set_entries([LegendEntry(f"glyph {k}", "#56b4e9") for k in range(43)])
    legend.set_counts(np.arange(43), None, "43 classes")
    host.show()
    size = legend.size_within(300)
    legend.setFixedSize(size)
    assert size.height() <= 300 and len(legend.rows) == 43
    qtbot.waitUntil(lambda: legend.scroll.verticalScrollBar().maximum() > 0)
    legend.scroll.ensureWidgetVisible(legend.rows[-1])
    assert legend.scroll.verticalScrollBar().value() > 0  # the last class can be reached
    legend.set_entries([LegendEntry(f"class {k}", "#56b4e9") for k in range(3)])
    legend.set_counts(np.arange(3), None, "3 classes")
    short = legend.size_within(300)
    assert short.height() < 150 and legend.scroll.verticalScrollBarPolicy().name == "ScrollBarAlwaysOff"
