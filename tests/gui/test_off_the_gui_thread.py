"""What lands after long work is worked out off the GUI thread and shown once: the labels read
back after a scan, a build or a label action, a propagation's pseudo-labels, the map's colours,
the review queue. The small test project takes the worker path here: ``JobRunner.inline_below``
is 0 (a real project of this size would do the work at once)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from explorer.gui.jobs import JobRunner
from tests.gui.test_window import rows_of_cluster


@pytest.fixture
def big(monkeypatch):
    """Every job on a worker, however small its project."""
    monkeypatch.setattr(JobRunner, "inline_below", 0)


@pytest.fixture
def threads(monkeypatch):
    """``threads(module, name)``: spy on ``module.name``, a function; returns the list of the threads it ran on."""

    def spy(module, name: str) -> list:
        seen: list = []
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            seen.append(threading.current_thread())
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)
        return seen

    return spy


def counted(monkeypatch, cls, name: str) -> list:
    """Count the calls of ``cls.name`` (patched on the class: connections made later call the spy)."""
    calls: list = []
    original = getattr(cls, name)

    def spy(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, spy)
    return calls


def settle(qtbot, window) -> None:
    qtbot.waitUntil(window.settled, timeout=15000)


def add_classes(qtbot, window) -> None:
    for name in ("red", "green", "blue"):
        window.session.add_class(name)
    settle(qtbot, window)
    assert [c.name for c in window.session.classes] == ["red", "green", "blue"]


def test_each_landing_refreshes_each_view_once(qtbot, monkeypatch, tmp_path, project_dir, settings, big):
    from explorer.gui.label_panel import LabelPanel
    from explorer.gui.main_window import MainWindow
    from explorer.gui.review import ReviewQueue
    from explorer.gui.scatter import MapView

    panel = counted(monkeypatch, LabelPanel, "_refresh")
    review = counted(monkeypatch, ReviewQueue, "refresh")
    colours = counted(monkeypatch, MapView, "_recolour")
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    s = window.session
    landings = []
    s.reading.finished.connect(lambda *_: landings.append(1))
    window.open_project(project_dir)  # the empty project shows at once: one refresh each
    panel.clear(), review.clear(), colours.clear()
    settle(qtbot, window)
    assert len(landings) == 1 and (len(panel), len(review), len(colours)) == (1, 1, 1)  # was 5 for the panel

    add_classes(qtbot, window)
    s.select_rows(rows_of_cluster(window, "red")[:3])
    s.label_targets(s.classes[0].id)
    settle(qtbot, window)
    window.loop.auto_propagate = False
    landings.clear(), panel.clear(), review.clear(), colours.clear()
    window.propagate()
    settle(qtbot, window)
    assert s.counts()["pseudo"] > 0
    assert len(landings) >= 1 and len(panel) == len(review) == len(colours) == len(landings)
    window.close()


def test_a_scan_is_read_back_on_a_worker(qtbot, window, project_dir, threads, big):
    from explorer.gui import session as session_module

    s, view = window.session, window.map_view
    reads = threads(session_module, "read_tables")
    for k in range(4):
        Image.new("RGB", (32, 32), (k * 60, 90, 200)).save(project_dir / "red" / f"new_{k}.png")
    shown_xy = view.xy
    when_scanned = []  # the session just after the scan finished and it was asked to read back
    window.loop.stepFinished.connect(lambda *_: when_scanned.append((s.busy, s.counts()["items"])))
    window.run_step("scan")
    qtbot.waitUntil(lambda: len(when_scanned) > 0, timeout=30000)
    assert when_scanned == [(True, 60)]  # read back on a worker: meanwhile the window shows what it had
    settle(qtbot, window)
    assert reads and threading.main_thread() not in reads
    assert s.counts()["items"] == 64 and "64 images" in window.counts_label.text()
    new = [i for i, path in s.paths.items() if path.startswith("red/new_")]
    assert len(new) == 4 and s.info(new[0]).path == s.path_of(new[0])
    assert view.xy is shown_xy and view.drawn  # the same map: nothing redrawn


def test_a_new_map_is_read_on_a_worker_and_drawn_when_it_lands(qtbot, window, threads, big):
    from explorer.gui import scatter
    from tests.gui.conftest import fabricate_map

    s, view = window.session, window.map_view
    colours = threads(scatter, "map_colours")
    old_run = s.map.run_id
    fabricate_map(s.project, seed=5)
    s.reload_map()
    assert s.busy and s.map.run_id == old_run
    settle(qtbot, window)
    assert s.map.run_id != old_run and view.drawn and view.index is s.map_index  # its index built there too
    assert view.xy is s.map.xy and len(view.points.data) == 60
    assert colours and threading.main_thread() not in colours


def test_a_label_action_while_pseudo_labels_land_keeps_both(qtbot, window, big):
    from explorer import workflow

    s = window.session
    add_classes(qtbot, window)
    for k, cluster in enumerate(("red", "green", "blue")):
        s.select_rows(rows_of_cluster(window, cluster)[:2])
        s.label_targets(s.classes[k].id)
        settle(qtbot, window)
    result = workflow.compute_propagation(s.project)
    workflow.save_propagation(s.project, result)
    edited = []
    s.labelsEdited.connect(lambda: edited.append(s.info(target).source))
    target = int(s.ids_of(rows_of_cluster(window, "green")[5:6])[0])
    s.apply_pseudo_labels(result.item_ids, result.class_ids, result.confidence)  # a propagation lands...
    s.set_selection([target])
    s.label_targets(s.classes[1].id)  # ...and a label action follows before it is merged
    assert s.busy
    settle(qtbot, window)
    stored = s.project.label_table()
    assert np.array_equal(s.labels.class_ids, stored.class_ids) and list(s.labels.source) == list(stored.source)
    assert s.counts()["pseudo"] > 0 and s.info(target).source == "seed"
    assert edited == ["seed"]  # labelsEdited once, after the labels it speaks of landed


def test_the_latest_colouring_wins(qtbot, window, threads, big):
    from explorer.gui import scatter

    view = window.map_view
    colours = threads(scatter, "map_colours")
    view.set_colour_mode("folder")
    assert view.busy and not any(row.text().startswith("red/") for row in view.legend.rows)
    view.set_colour_mode("review")
    settle(qtbot, window)
    assert [row.text().split("   ")[0] for row in view.legend.rows][-1] == "unlabelled"
    assert not any(row.text().startswith("red/") for row in view.legend.rows)  # the folder colouring was dropped
    assert colours and threading.main_thread() not in colours


def test_the_where_to_label_shade_comes_with_the_colours(qtbot, window, big):
    view = window.map_view
    view.shade_box.setChecked(True)
    assert view.busy and not view.shade.isVisible()
    settle(qtbot, window)
    assert view.shade.isVisible() and view.shade.image is not None and view.shade.image[..., 3].any()
    view.shade_box.setChecked(False)
    settle(qtbot, window)
    assert not view.shade.isVisible()


def test_clusters_found_again_are_shaped_on_a_worker(qtbot, window, threads, big):
    from explorer.gui import tables

    s, overlay = window.session, window.map_view.cluster_overlay
    shaped = threads(tables, "cluster_shapes")
    assert window.find_clusters(1.0)
    qtbot.waitUntil(lambda: overlay.count > 0, timeout=30000)
    settle(qtbot, window)
    assert shaped and threading.main_thread() not in shaped
    assert overlay.count == int(s.map_clusters.max()) + 1 and overlay.sizes.sum() == (s.map_clusters >= 0).sum()
    assert len(overlay.outline.getData()[0]) > 3 * overlay.count


WINDOW_BUILDS = """
import sys, time
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
app = QApplication([])
from explorer.gui.main_window import MainWindow
window = MainWindow(QSettings(sys.argv[2], QSettings.Format.IniFormat))
for key, value in (("device", "cpu"), ("epochs", 1), ("backbone", "small-cnn"), ("image_size", 16)):
    window.settings.setValue(f"train/{key}", value)
window.show()
window.open_project(sys.argv[1])
deadline = time.monotonic() + 240
while (window.session.opening or window.jobs.busy) and time.monotonic() < deadline:
    app.processEvents()
assert window.run_step("build")
while window.jobs.busy and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.01)
print("row", window.jobs_panel.rows()[-1].state, "map", window.session.map is not None)
print("torch", "torch" in sys.modules)
"""


@pytest.mark.slow
def test_the_window_builds_a_map_without_loading_torch(tmp_path):
    """Training and embedding run in a process of their own: the window's process, which would
    wait about 200 ms for torch's import (it holds the GIL), never imports it."""
    import os
    import subprocess
    import sys

    from tests.blobs import write_blobs

    write_blobs(tmp_path / "c", per_class=8)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run(
        [sys.executable, "-c", WINDOW_BUILDS, str(tmp_path / "c"), str(tmp_path / "settings.ini")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "row finished map True" in done.stdout and "torch False" in done.stdout, done.stdout + done.stderr[-2000:]
