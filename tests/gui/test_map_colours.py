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
    assert len(view.points.data["brush"]) == 60


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
    qtbot.waitUntil(lambda: view._morph is None, timeout=15000)
    assert np.allclose(view.points.getData()[0], view.xy[:, 0])


def test_pseudo_labels_applied_in_memory_match_the_store(qtbot, window):
    from explorer import workflow

    add_classes(qtbot, window)
    s = window.session
    for key, cluster in enumerate(("red", "green", "blue"), start=1):
        s.select_rows(rows_of_cluster(window, cluster)[:2])
        press(qtbot, window, getattr(Qt.Key, f"Key_{key}"))
    result = workflow.compute_propagation(s.project)
    workflow.save_propagation(s.project, result)
    rejected = int(result.item_ids[result.class_ids >= 0][-1])
    assert s.project.reject_pseudo([rejected])  # the same result again must not bring it back
    workflow.save_propagation(s.project, result)
    s.apply_pseudo_labels(result.item_ids, result.class_ids, result.confidence)
    stored = s.project.label_table()
    assert np.array_equal(s.labels.item_ids, stored.item_ids)
    assert np.array_equal(s.labels.class_ids, stored.class_ids)
    assert list(s.labels.source) == list(stored.source)
    assert np.allclose(s.labels.confidence, stored.confidence, equal_nan=True)
    assert s.info(rejected).source == ""


def test_fast_brush_codes_match_pyqtgraph(qtbot):
    import pyqtgraph as pg

    from explorer.gui.map_layers import set_brush_codes

    rng = np.random.default_rng(0)
    xy = rng.normal(0, 1, (500, 2))
    palette = np.empty(4, object)
    palette[:] = [pg.mkBrush(255, 0, 0), pg.mkBrush(0, 255, 0), pg.mkBrush(0, 0, 255, 100), pg.mkBrush(9, 9, 9, 0)]
    codes = rng.integers(0, 4, 500)
    slow = pg.ScatterPlotItem(pos=xy, pen=None, size=5, pxMode=True)
    slow.setBrush(palette[codes])
    fast = pg.ScatterPlotItem(pos=xy, pen=None, size=5, pxMode=True)
    fast.setBrush = None  # the fast path must not fall back
    set_brush_codes(fast, palette, codes)
    assert list(fast.data["brush"]) == list(palette[codes])
    # Same atlas entries: the same rectangle for the same brush, different ones for different brushes.
    for item in (slow, fast):
        rect = item.data["sourceRect"]
        assert (rect["w"] > 0).all()
        keys = {c: {tuple(r) for r in rect[codes == c]} for c in range(4)}
        assert all(len(v) == 1 for v in keys.values()) and len(set.union(*keys.values())) == 4


def test_map_points_take_positions_as_pyqtgraph_would(qtbot):
    import pyqtgraph as pg

    from explorer.gui.map_layers import MapPoints

    rng = np.random.default_rng(1)
    xy = rng.normal(0, 1, (300, 2)).astype(np.float32)
    palette = np.empty(3, object)
    palette[:] = [pg.mkBrush(255, 0, 0), pg.mkBrush(0, 255, 0), pg.mkBrush(0, 0, 0, 0)]
    codes = rng.integers(0, 3, len(xy))
    ours = MapPoints(pxMode=True, pen=None, size=5, symbol="o")
    ours.set_positions(xy, 6.0, palette, codes)
    theirs = MapPoints(pxMode=True, pen=None, size=5, symbol="o")
    theirs.setData(pos=xy, size=6.0)
    theirs.setBrush(palette[codes])
    for field in ("x", "y", "size", "visible", "symbol", "pen", "data"):
        assert list(ours.data[field]) == list(theirs.data[field]), field
    assert list(ours.data["brush"]) == list(palette[codes]) and ours.opts["size"] == 6.0
    assert (ours.data["sourceRect"]["w"] > 0).all()


def test_density_colours_are_the_brushes_colours(qtbot):
    from explorer.gui.colouring import GREY, spec_rgba
    from explorer.gui.map_layers import Palettes
    from explorer.gui.style import UNLABELLED

    assert GREY[0] == UNLABELLED
    spec = ((UNLABELLED, 150), ("#ff8800", 255), ("#101010", 90), ("#nonsense", 200), ("#4c8bf5", 55))
    brushes = Palettes().get(spec)
    assert spec_rgba(spec).tolist() == [list(brush.color().getRgb()) for brush in brushes]


def _lab(colour) -> np.ndarray:
    """CIE L*a*b* (D65) of a QColor: the reference for how far apart two colours look."""
    rgb = np.array([colour.redF(), colour.greenF(), colour.blueF()])
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz / np.array([0.9505, 1.0, 1.089])]
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_the_first_twelve_classes_look_different_on_the_map(tmp_path):
    from explorer.gui.style import display_colour
    from explorer.store import Project

    project = Project(tmp_path)
    project.ensure_classes([f"class {k}" for k in range(12)])
    labs = [_lab(display_colour(c.colour)) for c in project.classes()]
    closest = min(np.linalg.norm(a - b) for i, a in enumerate(labs) for b in labs[i + 1 :])
    assert closest > 20  # delta E: Okabe-Ito's own closest pair (two blues) is 26
