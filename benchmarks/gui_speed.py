"""How fast the window is, measured offscreen in one run, each figure beside a bare baseline.

    .venv/bin/python benchmarks/gui_speed.py [--sizes 100000 1000000] [--repeats 5]

- startup: seconds from launching the window until it is shown (and until a project's map is
  drawn), beside a bare PySide6 window started the same way (the floor: Python plus Qt);
- per map size: repaint after pan and zoom, hover lookup, recolouring after a propagation
  (new pseudo-labels for every point), each the median of ``--repeats``; the repaint beside a
  bare pyqtgraph scatter of the same points with one brush (the fastest pyqtgraph can draw);
- per map size above ``map_layers.DENSITY_ABOVE`` (the density view): in the same window, the whole
  map as a density image vs every point in the scatter (what the window did before) vs the bare
  scatter; zoomed in, the points around the view vs every point; recolouring both ways.

The project is fabricated straight into the store (items, a map run, labels): no images are
decoded, so this measures the window, not the disk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

STARTUP_BARE = """
import time, sys
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication([])
w = QMainWindow(); w.resize(1280, 800); w.show(); app.processEvents()
print("shown", flush=True)
"""

STARTUP_OURS = """
import sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from explorer.gui.main_window import MainWindow
w = MainWindow(); w.show(); app.processEvents()
print("shown", flush=True)
w.open_project(sys.argv[1])
while w.session.opening: app.processEvents()
app.processEvents()
print("map", flush=True)
"""


def time_to_shown(code: str, *args: str, until: str = "shown") -> float:
    """Seconds from launching ``code`` until it prints ``until``."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": tempfile.mkdtemp()},
    )
    for line in child.stdout:
        if line.startswith(until):
            break
    elapsed = time.perf_counter() - start
    child.kill()
    child.wait()
    return elapsed


def fabricate(root: Path, n: int, classes: int = 10, seed: int = 0):
    """A project of ``n`` items in ``classes`` blobs with a map run, seeds and pseudo-labels."""
    from explorer.store import Project, ScannedFile

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    project = Project(root)
    project.record_scan(
        (ScannedFile(f"f{k // 1000:04d}/img-{k:07d}.png", 100, 1, 32, 32, "RGB") for k in range(n)), gone=[]
    )
    ids = project.item_ids()
    truth = rng.integers(0, classes, n)
    centres = rng.normal(0, 10, (classes, 2))
    xy = (centres[truth] + rng.normal(0, 1.5, (n, 2))).astype(np.float32)
    k = 10
    indices = np.tile(np.arange(k + 1), (n, 1)).astype(np.int64)  # not used by the timings
    run = project.start_run("map", {"k": k, "fabricated": True})
    project.save_run_arrays(
        run, item_ids=ids, xy=xy, knn_indices=indices, knn_similarities=np.ones((n, k + 1), np.float32)
    )
    project.finish_run(run, "done")
    class_ids = list(project.ensure_classes([f"class {c}" for c in range(classes)]).values())
    seeds = rng.choice(n, 5 * classes, replace=False)
    project.set_labels_many({int(ids[s]): (class_ids[truth[s]], "seed") for s in seeds}, "seeds")
    return project, ids, np.array(class_ids), truth, xy


def hover_time(view, xy: np.ndarray, rng: np.random.Generator, lookups: int = 1000) -> float:
    """Mean seconds of one hover lookup (``view.pick``) at random points of ``xy``."""
    targets = xy[rng.integers(0, len(xy), lookups)]
    start = time.perf_counter()
    for x, y in targets:
        view.pick(float(x), float(y))
    return (time.perf_counter() - start) / len(targets)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def settle(app, window) -> None:
    """Run the event loop until the window shows what it was asked to (recolouring, the density
    image and the labels read back run on workers)."""
    while not window.settled():
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()


def open_fabricated(app, n: int):
    """A window on a fabricated n-item project with a map; returns it with the project's arrays
    and ``{"open": seconds}``."""
    from PySide6.QtCore import QSettings

    from explorer.gui.main_window import MainWindow

    tmp = Path(tempfile.mkdtemp())
    project, ids, class_ids, truth, xy = fabricate(tmp / "collection", n)
    project.close()
    window = MainWindow(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    window.resize(1280, 800)
    window.show()
    app.processEvents()
    start = time.perf_counter()
    window.open_project(tmp / "collection")
    settle(app, window)  # the tables are read on a worker, then the map is drawn
    return window, ids, class_ids, truth, xy, {"open": time.perf_counter() - start}


def map_figures(app, n: int, repeats: int) -> dict[str, float]:
    import pyqtgraph as pg

    window, ids, class_ids, truth, xy, figures = open_fabricated(app, n)
    view = window.map_view
    viewport = view.plot.viewport()
    box = view.view_box
    rng = np.random.default_rng(1)

    def pan_zoom():
        x0, y0 = rng.normal(0, 5, 2)
        width = float(rng.uniform(8, 60))
        box.setRange(xRange=(x0, x0 + width), yRange=(y0, y0 + width), padding=0)
        view.refresh_view()  # a big map's density image or loaded points follow the view (no-op on small maps)
        settle(app, window)
        viewport.repaint()

    view.fit()
    viewport.repaint()
    figures["repaint (pan/zoom)"] = median_time(pan_zoom, repeats)
    view.fit()
    figures["repaint (whole map)"] = median_time(viewport.repaint, repeats)
    figures["hover lookup"] = hover_time(view, xy, rng)

    session = window.session

    def recolour():
        predicted = class_ids[(truth + rng.integers(0, 2, n)) % len(class_ids)]
        session.apply_pseudo_labels(
            ids, predicted, rng.uniform(0, 1, n)
        )  # what the window does when a propagation lands
        settle(app, window)
        viewport.repaint()

    figures["recolour after propagation"] = median_time(recolour, max(2, repeats // 2))
    window.close()

    # The floor: one scatter item, one brush, same points, same viewport size.
    plot = pg.PlotWidget()
    plot.resize(viewport.size())
    plot.show()
    scatter = pg.ScatterPlotItem(pos=xy, size=4, pen=None, brush=pg.mkBrush(120, 160, 255, 150), pxMode=True)
    plot.addItem(scatter)
    app.processEvents()
    plot.viewport().repaint()
    figures["bare scatter repaint (whole map)"] = median_time(plot.viewport().repaint, repeats)
    plot.close()
    return figures


def density_figures(app, n: int, repeats: int) -> dict[str, float]:
    """The density view of a big map against every point in the scatter, in one window."""

    from explorer.gui.density import inside

    window, ids, class_ids, truth, xy, figures = open_fabricated(app, n)
    view, session = window.map_view, window.session
    viewport, box = view.plot.viewport(), view.view_box
    rng = np.random.default_rng(2)
    centre = xy[truth == 0].mean(axis=0).astype(float)

    def zoomed_in(offset: float = 0.0) -> None:
        x, y = centre[0] + offset, centre[1]
        box.setRange(xRange=(x - 2.0, x + 2.0), yRange=(y - 2.0, y + 2.0), padding=0)

    def recolour():
        predicted = class_ids[(truth + rng.integers(0, 2, n)) % len(class_ids)]
        session.apply_pseudo_labels(ids, predicted, rng.uniform(0, 1, n))
        settle(app, window)
        viewport.repaint()

    def map_recolour():  # the map's own share of a recolour: colours, density image or brushes, repaint
        view._recolour()
        settle(app, window)
        viewport.repaint()

    def load_around():
        view.layers.loaded_rect = None  # forget the loaded region: time a fresh load
        view.refresh_view()
        settle(app, window)

    view.fit()
    view.refresh_view()
    settle(app, window)
    viewport.repaint()
    assert view.layers.density_mode, "the whole map should be drawn as a density image"
    figures["density image"] = median_time(lambda: (view.refresh_view(), settle(app, window)), repeats)
    figures["repaint whole, density"] = median_time(viewport.repaint, repeats)
    figures["recolour, density"] = median_time(recolour, max(2, repeats // 2))
    figures["map recolour, density"] = median_time(map_recolour, repeats)
    zoomed_in()
    view.refresh_view()
    settle(app, window)
    assert not view.layers.density_mode, "zoomed in, the points should be drawn"
    figures["visible zoomed"] = float(np.count_nonzero(inside(xy, view.layers.view_rect())))
    figures["loaded zoomed"] = float(len(view.layers.loaded))
    figures["load points around view"] = median_time(load_around, max(2, repeats // 2))
    viewport.repaint()
    figures["repaint zoomed, points around view"] = median_time(viewport.repaint, repeats)
    figures["hover lookup"] = hover_time(view, xy, rng)

    # The same window the old way: every point in the scatter, whatever the zoom.
    view.layers.density_above = n
    view.layers.draw(view.xy)
    view.fit()
    settle(app, window)
    viewport.repaint()
    figures["repaint whole, all points"] = median_time(viewport.repaint, repeats)
    figures["recolour, all points"] = median_time(recolour, max(2, repeats // 2))
    figures["map recolour, all points"] = median_time(map_recolour, repeats)
    zoomed_in()
    viewport.repaint()
    figures["repaint zoomed, all points"] = median_time(viewport.repaint, repeats)
    window.close()
    figures["bare scatter repaint (whole map)"] = bare_repaint(app, viewport.size(), xy, repeats)
    return figures


def bare_repaint(app, size, xy: np.ndarray, repeats: int) -> float:
    """Median repaint of one pyqtgraph scatter item, one brush, ``xy`` fitted in a ``size`` view."""
    import pyqtgraph as pg

    plot = pg.PlotWidget()
    plot.resize(size)
    plot.show()
    scatter = pg.ScatterPlotItem(pos=xy, size=4, pen=None, brush=pg.mkBrush(120, 160, 255, 150), pxMode=True)
    plot.addItem(scatter)
    app.processEvents()
    plot.viewport().repaint()
    seconds = median_time(plot.viewport().repaint, repeats)
    plot.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--density-only", action="store_true", help="only the density-view table (sizes above DENSITY_ABOVE)"
    )
    args = parser.parse_args()

    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(antialias=False)
    if args.density_only:
        print_density_table(app, args.sizes, args.repeats)
        return

    folder = Path(tempfile.mkdtemp()) / "small"
    project, *_ = fabricate(folder, 2000)
    project.close()
    bare = statistics.median(time_to_shown(STARTUP_BARE) for _ in range(3))
    ours = statistics.median(time_to_shown(STARTUP_OURS, str(folder)) for _ in range(3))
    with_map = statistics.median(time_to_shown(STARTUP_OURS, str(folder), until="map") for _ in range(3))
    print(f"startup to a shown window: ours {ours:.2f} s, bare PySide6 window {bare:.2f} s, ratio {ours / bare:.2f}")
    print(f"startup to the map of a 2,000-image project drawn: {with_map:.2f} s")

    print("| points | open | repaint pan/zoom | repaint whole | bare repaint | ratio | hover lookup | recolour |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        f = map_figures(app, n, args.repeats)
        ratio = f["repaint (whole map)"] / f["bare scatter repaint (whole map)"]
        print(
            f"| {n:,} | {f['open']:.2f} s | {f['repaint (pan/zoom)'] * 1000:.0f} ms "
            f"| {f['repaint (whole map)'] * 1000:.0f} ms | {f['bare scatter repaint (whole map)'] * 1000:.0f} ms "
            f"| {ratio:.2f} | {f['hover lookup'] * 1000:.2f} ms | {f['recolour after propagation'] * 1000:.0f} ms |",
            flush=True,
        )
    print_density_table(app, args.sizes, args.repeats)


def print_density_table(app, sizes: list[int], repeats: int) -> None:
    from explorer.gui.map_layers import DENSITY_ABOVE

    sizes = [n for n in sizes if n > DENSITY_ABOVE]
    if not sizes:
        return
    print(
        "| points | open | density image | whole map repaint: density / all points / bare | zoomed in: visible, "
        "loaded | load around view | zoomed repaint: points around view / all points | hover | "
        "recolour after propagation: density / all points | of which the map: density / all points |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        f = density_figures(app, n, repeats)
        ms = {k: v * 1000 for k, v in f.items()}
        print(
            f"| {n:,} | {f['open']:.2f} s | {ms['density image']:.0f} ms "
            f"| {ms['repaint whole, density']:.0f} / {ms['repaint whole, all points']:.0f} / "
            f"{ms['bare scatter repaint (whole map)']:.0f} ms "
            f"| {f['visible zoomed']:,.0f}, {f['loaded zoomed']:,.0f} | {ms['load points around view']:.0f} ms "
            f"| {ms['repaint zoomed, points around view']:.0f} / {ms['repaint zoomed, all points']:.0f} ms "
            f"| {ms['hover lookup']:.2f} ms | {ms['recolour, density']:.0f} / {ms['recolour, all points']:.0f} ms "
            f"| {ms['map recolour, density']:.0f} / {ms['map recolour, all points']:.0f} ms |",
            flush=True,
        )


if __name__ == "__main__":
    main()
