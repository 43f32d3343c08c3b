"""Colour by, the legend (counts that follow the selection, hiding a group), the "where to
label" shade and the move from an old layout to a new one."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from explorer.gui.session import HUMAN, NONE, PSEUDO
from explorer.gui.shading import unlabelled_regions
from tests.gui.test_window import add_classes, click_row, press, rows_of_cluster


def legend_texts(window) -> list[str]:
    return [row.text() for row in window.map_view.legend.rows]


def test_legend_counts_follow_the_selection(qtbot, window):
    add_classes(qtbot, window)
    red = rows_of_cluster(window, "red")
    window.session.select_rows(red[:5])
    press(qtbot, window, Qt.Key.Key_1)
    texts = legend_texts(window)
    assert texts[0].startswith("1  red") and texts[0].endswith("5 / 5")
    assert texts[-1].startswith("unlabelled") and texts[-1].endswith("0 / 55")
    window.session.clear_selection()
    assert legend_texts(window)[-1].endswith("55")


def test_colour_by_folder_and_review(qtbot, window):
    view = window.map_view
    view.colour_combo.setCurrentIndex(view.colour_combo.findData("folder"))
    assert view.colour_mode == "folder"
    assert sorted(t.split()[0] for t in legend_texts(window)) == ["blue/", "green/", "red/"]
    assert all(t.endswith("20") for t in legend_texts(window))
    view.set_colour_mode("review")
    assert legend_texts(window)[-1] == "unlabelled   60"
    view.set_colour_mode("confidence")
    assert len(view._brushes) == 60


def test_hidden_group_is_not_picked_or_selected(qtbot, window):
    add_classes(qtbot, window, ("red",))
    view, s = window.map_view, window.session
    red = rows_of_cluster(window, "red")
    s.select_rows(red)
    press(qtbot, window, Qt.Key.Key_1)
    s.clear_selection()
    qtbot.mouseClick(view.legend.rows[0], Qt.MouseButton.LeftButton)  # hide "red"
    assert view.legend.hidden[0] and view.hidden[red].all() and not view.hidden.sum() > len(red)
    click_row(qtbot, window, int(red[0]))
    assert s.current is None or int(s.rows_of([s.current])[0]) not in set(red.tolist())
    view.select_region(np.array([[-100, -100], [100, -100], [100, 100], [-100, 100]]))
    assert len(s.selection) == 40 and not np.isin(s.rows_of(s.selection), red).any()
    qtbot.mouseClick(view.legend.rows[0], Qt.MouseButton.LeftButton)  # show it again
    assert not view.hidden.any()


def test_shade_covers_unlabelled_clusters_only():
    rng = np.random.default_rng(0)
    xy = np.concatenate([rng.normal(0, 0.3, (100, 2)), rng.normal(10, 0.3, (100, 2))]).astype(np.float32)
    source = np.full(200, PSEUDO, np.int8)
    source[0] = HUMAN  # one human label in the first cluster
    source[150:] = NONE
    confidence = np.full(200, 0.3)
    image, (x0, y0, w, h) = unlabelled_regions(xy, source, confidence)

    def alpha_at(x, y):
        i = int((x - x0) / w * image.shape[0])
        j = int((y - y0) / h * image.shape[1])
        return int(image[i, j, 3])

    assert alpha_at(10, 10) > 40  # no human label there, unsure: shaded
    assert alpha_at(*xy[0]) == 0  # next to the human label: clear


def test_new_layout_moves_points_from_their_old_places(qtbot, window, project_dir):
    from tests.gui.conftest import fabricate_map

    view, s = window.map_view, window.session
    old = {int(i): xy.copy() for i, xy in zip(s.map.item_ids, view.xy)}
    fabricate_map(s.project, seed=5)
    s.reload_map()
    assert view._morph is not None  # the move started where the points were
    start = view._morph[0]
    assert np.allclose(start[0], old[int(s.map.item_ids[0])])
    qtbot.waitUntil(lambda: view._morph is None, timeout=3000)
    assert np.allclose(view.points.getData()[0], view.xy[:, 0])
