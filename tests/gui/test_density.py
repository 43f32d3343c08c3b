"""The big map: a density image while too many points are in view, the points around the view
when zoomed in; picking, selection and colours keep working in both. The thresholds are lowered
so that 4,000 points stand in for a million."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.gui.density import contains, density_image, grow, inside, with_outline

RED, BLUE, HIDDEN = (255, 0, 0, 255), (0, 0, 255, 255), (0, 0, 0, 0)
PALETTE = np.array([RED, BLUE, (0, 255, 0, 128), HIDDEN], np.uint8)
RECT = (0.0, 0.0, 10.0, 5.0)  # 10 x 5 map units on a 10 x 5 pixel raster: one unit a pixel


def test_each_point_lands_in_its_pixel_x_first_y_up():
    xy = np.array([[0.5, 0.5], [9.5, 4.5], [3.2, 1.7]], np.float32)
    image = density_image(xy, np.array([0, 1, 2]), PALETTE, RECT, (10, 5))
    assert image.shape == (10, 5, 4) and image.dtype == np.uint8
    drawn = np.argwhere(image[..., 3] > 0).tolist()
    assert sorted(drawn) == [[0, 0], [3, 1], [9, 4]]
    assert tuple(image[9, 4, :3]) == (0, 0, 255) and image[9, 4, 3] == 255
    assert image[3, 1, 1] > 0 and image[3, 1, 3] == 128  # one half-transparent point: its own opacity


def test_points_outside_the_rectangle_and_hidden_points_are_left_out():
    xy = np.array([[-1, 1], [11, 1], [5, 6], [2.5, 2.5], [7.5, 2.5]], np.float32)
    image = density_image(xy, np.array([0, 0, 0, 3, 1]), PALETTE, RECT, (10, 5))
    assert np.argwhere(image[..., 3] > 0).tolist() == [[7, 2]]


def test_colours_mix_and_opacity_adds_up_like_overlapping_points():
    xy = np.array([[1.5, 1.5]] * 2 + [[6.5, 1.5]] * 2, np.float32)
    image = density_image(xy, np.array([0, 1, 2, 2]), PALETTE, RECT, (10, 5))
    red, green, blue, alpha = (int(v) for v in image[1, 1])
    assert red == blue and red > 0 and green == 0 and alpha == 255  # red and blue mixed half and half
    assert 128 < image[6, 1, 3] < 255  # two half-transparent points: more opaque than one, not solid


def test_brightness_grows_with_the_count():
    xy = np.array([[1.5, 1.5]] + [[6.5, 1.5]] * 50, np.float32)
    image = density_image(xy, np.zeros(51, np.int64), PALETTE, RECT, (10, 5))
    assert image[6, 1, 0] == 255 and 0 < image[1, 1, 0] < 200


def test_splat_covers_the_drawn_point_size_and_nothing_else():
    image = density_image(np.array([[4.5, 2.5]], np.float32), np.array([1]), PALETTE, RECT, (10, 5), splat=3)
    drawn = image[..., 3] > 0
    assert drawn[3:6, 1:4].all() and drawn.sum() == 9
    assert (image[3:6, 1:4, 2] == image[4, 2, 2]).all()  # one point: the same colour over its square


def test_outline_rings_what_is_drawn():
    image = density_image(np.array([[4.5, 2.5]], np.float32), np.array([0]), PALETTE, RECT, (10, 5))
    ringed = with_outline(image, (255, 216, 77, 255))
    ring = np.argwhere((ringed[..., 3] > 0) & (image[..., 3] == 0)).tolist()
    assert sorted(ring) == [[3, 2], [4, 1], [4, 3], [5, 2]] and tuple(ringed[4, 2]) == tuple(image[4, 2])


def test_bad_input_is_named():
    xy = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match="2 points"):
        density_image(xy, np.array([0]), PALETTE, RECT, (10, 5))
    with pytest.raises(ValueError, match="RGBA"):
        density_image(xy, np.array([0, 0]), PALETTE[:, :3], RECT, (10, 5))
    with pytest.raises(ValueError, match="0..3"):
        density_image(xy, np.array([0, 4]), PALETTE, RECT, (10, 5))
    with pytest.raises(ValueError, match="0 x 5"):
        density_image(xy, np.array([0, 0]), PALETTE, RECT, (0, 5))


def test_rectangles():
    xy = np.array([[0, 0], [1, 1], [2, 2]], np.float32)
    assert inside(xy, (0.5, 0.5, 2, 2)).tolist() == [False, True, True]
    assert grow((0, 0, 2, 1), 0.5) == (-1.0, -0.5, 3.0, 1.5)
    assert contains((0, 0, 4, 4), (1, 1, 2, 2)) and not contains((0, 0, 4, 4), (1, 1, 5, 2))


# ---- the window -------------------------------------------------------------------------
N = 4000
CENTRES = {"left": (-10.0, 0.0), "right": (10.0, 0.0)}


def big_project(root):
    """N items in two folders, two round clusters of 2,000 points far apart, and a map run."""
    from scipy.spatial import cKDTree

    from explorer.store import Project, ScannedFile

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    project = Project(root)
    names = list(CENTRES)
    project.record_scan(
        (ScannedFile(f"{names[k % 2]}/img-{k:05d}.png", 100, 1, 32, 32, "RGB") for k in range(N)), gone=[]
    )
    items = project.items()
    ids = np.array([item.id for item in items], np.int64)
    xy = np.array([CENTRES[item.path.split("/")[0]] for item in items], np.float32)
    xy += rng.normal(0, 1.0, xy.shape).astype(np.float32)
    distances, indices = cKDTree(xy).query(xy, k=9)
    run = project.start_run("map", {"k": 8, "fabricated": True})
    project.save_run_arrays(
        run,
        item_ids=ids,
        xy=xy,
        knn_indices=indices.astype(np.int64),
        knn_similarities=np.exp(-distances / 2).astype(np.float32),
    )
    project.finish_run(run, "done")
    project.close()


@pytest.fixture
def big_window(qtbot, tmp_path, settings, monkeypatch, wait_opened):
    import pyqtgraph as pg

    from explorer.gui import style
    from explorer.gui.main_window import MainWindow
    from explorer.gui.map_layers import PointLayers

    monkeypatch.setattr(PointLayers, "density_above", 1000)
    monkeypatch.setattr(PointLayers, "loaded_max", 1200)
    monkeypatch.setattr(PointLayers, "overlay_points_max", 100)
    big_project(tmp_path / "big")
    pg.setConfigOptions(background=style.PLOT, antialias=False)
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    assert win.open_project(tmp_path / "big")
    wait_opened(win.session)
    win.map_view.refresh_view()
    yield win
    win.close()


def rows_in(window, folder: str) -> np.ndarray:
    s = window.session
    return np.flatnonzero(np.array([s.path_of(int(i)).startswith(folder) for i in s.ids_of(np.arange(N))]))


def pixel_at(view, image_item, x: float, y: float) -> np.ndarray:
    """The RGBA of ``image_item`` (a density image) at map point (x, y)."""
    image = image_item.image
    x0, y0, x1, y1 = view.layers.density_rect
    i = int((x - x0) / (x1 - x0) * image.shape[0])
    j = int((y - y0) / (y1 - y0) * image.shape[1])
    return image[i, j]


def zoom(view, x: float, y: float, half: float) -> None:
    view.view_box.setRange(xRange=(x - half, x + half), yRange=(y - half, y + half), padding=0)


def test_zoomed_out_the_map_is_a_density_image(big_window):
    from PySide6.QtGui import QColor

    from explorer.gui import style

    view = big_window.map_view
    assert view.layers.large and view.layers.density_mode
    assert view.density.isVisible() and not view.points.isVisible() and len(view.points.data) == 0
    for name, (x, y) in CENTRES.items():
        assert pixel_at(view, view.density, x, y)[3] > 100, name
    assert pixel_at(view, view.density, 0.0, 0.0)[3] == 0  # nothing between the clusters
    # And it is really on the screen where the points are.
    centre = int(np.argmin(np.linalg.norm(view.xy - np.array(CENTRES["left"]), axis=1)))
    shot = view.plot.grab().toImage()
    assert shot.pixelColor(view.viewport_pos(centre)) != QColor(style.PLOT)


def test_zoomed_in_the_scatter_holds_the_points_around_the_view(qtbot, big_window):
    view = big_window.map_view
    zoom(view, *CENTRES["left"], 0.5)
    qtbot.waitUntil(lambda: not view.layers.density_mode, timeout=3000)  # after the debounce, by itself
    assert view.points.isVisible() and not view.density.isVisible()
    visible = np.flatnonzero(inside(view.xy, view.layers.view_rect()))
    loaded = view.layers.loaded
    assert set(visible.tolist()) <= set(loaded.tolist()) and len(view.points.data) == len(loaded)
    assert len(loaded) <= view.layers.loaded_max < N
    assert np.allclose(view.points.data["x"], view.xy[loaded, 0])
    zoom(view, CENTRES["left"][0] + 0.1, 0.1, 0.5)  # a small pan stays inside the loaded region
    view.refresh_view()
    assert view.layers.loaded is loaded
    zoom(view, *CENTRES["right"], 0.5)  # a far one loads the points there
    view.refresh_view()
    assert view.layers.loaded is not loaded and (view.xy[view.layers.loaded, 0] > 0).all()
    view.fit()
    qtbot.waitUntil(lambda: view.layers.density_mode, timeout=3000)
    assert len(view.points.data) == 0


def test_click_hover_and_lasso_work_on_the_density_image(qtbot, big_window):
    from tests.gui.test_window import click_row

    view, s = big_window.map_view, big_window.session
    outlier = int(np.argmax(view.xy[:, 0]))  # alone at the right edge: the click cannot miss it
    click_row(qtbot, big_window, outlier)
    assert s.selection.tolist() == [int(s.ids_of([outlier])[0])] and s.current == s.selection[0]
    assert len(view.selected.data) == 1 and not view.density_selected.isVisible()
    view.hover_row(outlier)
    assert view.card.isVisible() and "img-" in view.card.text.text()

    # A big selection: drawn as its own outlined image over the dimmed map.
    x, y = CENTRES["left"]
    box = np.array([[x - 5, y - 5], [x + 5, y - 5], [x + 5, y + 5], [x - 5, y + 5]])
    view.select_region(box)
    left = np.flatnonzero(inside(view.xy, (x - 5, y - 5, x + 5, y + 5)))
    assert sorted(s.rows_of(s.selection).tolist()) == left.tolist()
    assert view.density_selected.isVisible() and len(view.selected.data) == 0
    assert view.density.opacity() < 1
    selected_image = view.density_selected.image
    assert pixel_at(view, view.density_selected, x, y)[3] > 100
    assert pixel_at(view, view.density_selected, *CENTRES["right"])[3] == 0
    assert (selected_image.reshape(-1, 4) == (255, 216, 77, 255)).all(axis=1).any()  # the outline
    view.select_region(box, remove=True)
    assert len(s.selection) == 0 and not view.density_selected.isVisible() and view.density.opacity() == 1


def test_colours_legend_and_labels_redraw_the_density_image(qtbot, big_window):
    view, s = big_window.map_view, big_window.session
    left, right = CENTRES["left"], CENTRES["right"]
    grey = pixel_at(view, view.density, *left).copy()
    right_grey = pixel_at(view, view.density, *right).copy()
    view.set_colour_mode("folder")
    by_folder = view.density.image
    assert not np.array_equal(pixel_at(view, view.density, *left)[:3], grey[:3])
    assert not np.array_equal(pixel_at(view, view.density, *left)[:3], pixel_at(view, view.density, *right)[:3])
    hide = [k for k, row in enumerate(view.legend.rows) if row.text().startswith("left/")][0]
    view.legend.toggle(hide)
    assert pixel_at(view, view.density, *left)[3] == 0 and pixel_at(view, view.density, *right)[3] > 100
    view.legend.toggle(hide)
    assert np.array_equal(view.density.image, by_folder)

    view.set_colour_mode("label")
    red = s.add_class("red")
    rows = rows_in(big_window, "left/")
    s.apply_pseudo_labels(s.ids_of(rows), np.full(len(rows), red.id), np.full(len(rows), 0.95))
    labelled = pixel_at(view, view.density, *left)
    assert not np.array_equal(labelled[:3], grey[:3])
    assert np.array_equal(pixel_at(view, view.density, *right), right_grey)  # still unlabelled


def test_a_big_preview_is_a_density_image_too(big_window):
    view = big_window.map_view
    m = big_window.session.map
    view.show_preview(m.item_ids, m.xy * 2)
    assert view.previewing and view.layers.density_mode and view.density.isVisible()
    assert pixel_at(view, view.density, 2 * CENTRES["left"][0], 0.0)[3] > 0


def test_a_view_gets_the_density_image_or_the_points_around_it():
    from explorer.gui.density import view_layer

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (5000, 2)).astype(np.float32)
    codes = np.zeros(len(xy), np.int64)
    palette = np.array([[200, 200, 200, 255]], np.uint8)
    whole = view_layer(xy, codes, palette, (0, 0, 100, 100), (50, 50), 1, density_above=1000, loaded_max=2000)
    assert whole.image is not None and whole.image.shape == (50, 50, 4) and whole.loaded is None
    zoomed = view_layer(xy, codes, palette, (40, 40, 50, 50), (50, 50), 1, density_above=1000, loaded_max=2000)
    assert zoomed.image is None and len(zoomed.loaded) <= 2000
    assert set(np.flatnonzero(inside(xy, (40, 40, 50, 50))).tolist()) <= set(zoomed.loaded.tolist())
    panned = view_layer(xy, codes, palette, (41, 40, 51, 50), (50, 50), 1, 1000, 2000, zoomed.region)
    assert panned.loaded is None and panned.region == zoomed.region  # still inside what is loaded
