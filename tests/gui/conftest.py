"""A small fabricated project for the window tests: 60 images in 3 obvious clusters and a map
written straight into the store (no training), exactly what ``workflow.current_map`` reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

CLUSTERS = ("red", "green", "blue")
PER_CLUSTER = 20
K = 8


def write_images(root: Path, per_cluster: int = PER_CLUSTER, seed: int = 0) -> list[str]:
    """Red discs, green squares, blue triangles (32 px PNGs), named by cluster; returns their paths."""
    rng = np.random.default_rng(seed)
    colours = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (40, 80, 230)}
    paths = []
    for cluster in CLUSTERS:
        folder = root / cluster
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_cluster):
            image = Image.new("RGB", (32, 32), tuple(int(v) for v in rng.integers(225, 255, 3)))
            draw = ImageDraw.Draw(image)
            jitter = tuple(int(c + d) for c, d in zip(colours[cluster], rng.integers(-25, 25, 3)))
            o = int(rng.integers(2, 6))
            if cluster == "red":
                draw.ellipse((o, o, 31 - o, 31 - o), fill=jitter)
            elif cluster == "green":
                draw.rectangle((o, o, 31 - o, 31 - o), fill=jitter)
            else:
                draw.polygon([(16, o), (31 - o, 31 - o), (o, 31 - o)], fill=jitter)
            path = folder / f"{cluster}_{k:02d}.png"
            image.save(path)
            paths.append(path.relative_to(root).as_posix())
    return paths


def fabricate_map(project, k: int = K, seed: int = 0) -> int:
    """A map run for every item: clusters laid out apart, kNN graph from the layout itself
    (column 0 = the item itself), cosine-like similarities in (0, 1]."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    items = project.items()
    ids = np.array([item.id for item in items], np.int64)
    centres = {"red": (0.0, 0.0), "green": (6.0, 0.5), "blue": (3.0, 5.0)}
    xy = np.array([centres[item.path.split("/")[0]] for item in items], np.float32)
    xy += rng.normal(0, 0.8, xy.shape).astype(np.float32)
    distances, indices = cKDTree(xy).query(xy, k=k + 1)
    similarities = np.exp(-distances / 2.0).astype(np.float32)
    run = project.start_run("map", {"k": k, "fabricated": True})
    project.save_run_arrays(
        run, item_ids=ids, xy=xy, knn_indices=indices.astype(np.int64), knn_similarities=similarities
    )
    project.finish_run(run, "done")
    return run


def build_project(root: Path, with_map: bool = True):
    """Images on disk, scanned into a project, and (optionally) a fabricated map."""
    from explorer.store import Project, ScannedFile

    paths = write_images(root)
    project = Project(root)
    scanned = []
    for rel in paths:
        stat = (root / rel).stat()
        scanned.append(ScannedFile(rel, stat.st_size, stat.st_mtime_ns, 32, 32, "RGB"))
    project.record_scan(scanned, gone=[])
    if with_map:
        fabricate_map(project)
    return project


@pytest.fixture
def wait_opened(qtbot):
    """``wait_opened(session)``: wait until the project it is opening has been read (opening reads
    the tables on a worker)."""

    def wait(session, timeout: int = 15000) -> None:
        qtbot.waitUntil(lambda: not session.opening, timeout=timeout)
        assert session.project is not None

    return wait


@pytest.fixture
def make_project():
    return build_project


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    root = tmp_path / "shapes"
    build_project(root).close()
    return root


@pytest.fixture
def settings(tmp_path: Path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, project_dir, settings, wait_opened):
    import pyqtgraph as pg

    from explorer.gui import style
    from explorer.gui.main_window import MainWindow

    pg.setConfigOptions(background=style.PLOT, antialias=False)
    style.apply_theme(pg.QtWidgets.QApplication.instance())
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    assert win.open_project(project_dir)
    wait_opened(win.session)
    win.activateWindow()
    yield win
    win.close()
