"""Picking geometry without a window: points inside a drawn polygon, the nearest point to a click."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.gui.picking import PointIndex, points_in_polygon, rows_in_polygon

SQUARE = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])


def test_points_inside_a_square():
    xy = np.array([[1.0, 1.0], [3.0, 1.0], [1.9, 0.1], [-0.1, 1.0], [1.0, 2.5]], np.float32)
    assert points_in_polygon(xy, SQUARE).tolist() == [True, False, True, False, False]


def test_a_concave_lasso_leaves_out_its_notch():
    # A "U": the notch between the arms is outside.
    u = np.array([[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3]], np.float64)
    xy = np.array([[0.5, 2.5], [2.5, 2.5], [1.5, 2.0], [1.5, 0.5]], np.float32)
    assert points_in_polygon(xy, u).tolist() == [True, True, False, True]


def test_a_self_crossing_lasso_follows_the_even_odd_rule():
    bow = np.array([[0, 0], [2, 2], [2, 0], [0, 2]], np.float64)  # a bow tie: two triangles
    xy = np.array([[0.2, 1.0], [1.8, 1.0], [1.0, 0.2], [1.0, 1.8]], np.float32)
    assert points_in_polygon(xy, bow).tolist() == [True, True, False, False]


def test_degenerate_inputs_pick_nothing():
    xy = np.array([[1.0, 1.0]], np.float32)
    assert not points_in_polygon(xy, SQUARE[:2]).any()  # a line is no region
    assert points_in_polygon(np.empty((0, 2), np.float32), SQUARE).shape == (0,)


def test_rows_in_polygon_leave_out_hidden_points():
    xy = np.array([[1.0, 1.0], [0.5, 0.5], [5.0, 5.0], [1.5, 1.5]], np.float32)
    assert rows_in_polygon(xy, SQUARE).tolist() == [0, 1, 3]
    hidden = np.array([False, True, False, False])
    assert rows_in_polygon(xy, SQUARE, hidden).tolist() == [0, 3]
    assert rows_in_polygon(xy, SQUARE, np.zeros(0, bool)).tolist() == [0, 1, 3]  # no legend yet


def test_a_big_lasso_matches_a_brute_force_count():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-1, 1, (20_000, 2)).astype(np.float32)
    angles = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    circle = np.c_[np.cos(angles), np.sin(angles)] * 0.7
    picked = points_in_polygon(xy, circle)
    radius = np.linalg.norm(xy, axis=1)
    assert picked[radius < 0.69].all() and not picked[radius > 0.71].any()


def test_nearest_point_within_the_radius():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    index = PointIndex(xy)
    assert len(index) == 3
    assert index.nearest(0.9, 0.1, radius=0.5) == 1
    assert index.nearest(0.1, 0.8, radius=0.5) == 2
    assert index.nearest(0.5, 0.5, radius=0.2) is None  # nothing that close: a click on empty canvas


def test_nearest_skips_hidden_points():
    xy = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0]], np.float32)
    index = PointIndex(xy)
    hidden = np.array([True, False, False])
    assert index.nearest(0.0, 0.0, radius=1.0) == 0
    assert index.nearest(0.0, 0.0, radius=1.0, hidden=hidden) == 1
    assert index.nearest(0.0, 0.0, radius=0.05, hidden=hidden) is None  # the visible one is too far


@pytest.mark.parametrize("n", [0, 1])
def test_nearest_on_tiny_maps(n):
    index = PointIndex(np.zeros((n, 2), np.float32))
    assert index.nearest(0.0, 0.0, radius=1.0) == (0 if n else None)


def test_a_crowd_of_hidden_points_picks_nothing_rather_than_a_far_one():
    crowd = np.zeros((PointIndex.CANDIDATES, 2), np.float32)
    xy = np.vstack([crowd, [[0.5, 0.0]]]).astype(np.float32)
    hidden = np.r_[np.ones(PointIndex.CANDIDATES, bool), False]
    assert PointIndex(xy).nearest(0.0, 0.0, radius=1.0, hidden=hidden) is None


def test_picking_needs_no_qt():
    import subprocess
    import sys

    code = "import sys, explorer.gui.picking; print(sorted(m for m in sys.modules if m.startswith('PySide6')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
