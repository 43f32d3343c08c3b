"""What a person waits for: the longest stall of the window's GUI thread during each operation.

    .venv/bin/python benchmarks/gui_stalls.py [--sizes 100000 1000000] [--train-images 2000]

A precise 5 ms timer ticks on the GUI thread while an operation runs; the longest gap between
two ticks is the longest the window could not repaint or answer a click (a "stall"). Printed for
each operation beside the same meter on a bare event loop (the floor: timer jitter and the
machine's load). Operations, on a project fabricated straight into the store (items, a map with
a real kNN graph of the 2-D blobs, 5 seeds a class), offscreen:

- open: ``open_project`` until the map is drawn (the tables are read on a worker);
- propagate: a propagation after a label edit until its pseudo-labels are drawn, the store write
  included (what a person waits for after each click);
- export: the export dialog's counts after a filter change, and the CSV export job;
- training (``--train-images`` real 32 px PNGs): two epochs of the default training job, with
  its live loss curve, twice the way the window runs it (in a process of its own,
  ``explorer.workflow.steps.run_apart``), then twice on the worker thread itself (the baseline: what
  the window did before; its first run imports torch there, and that import holds Python's GIL,
  which the GUI thread waits for, for about 200 ms).

Targets (issue 14): no stall over 100 ms at 100k, over 250 ms at 1M.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.gui_speed import fabricate  # noqa: E402


class StallMeter:
    """Longest gap between ticks of a 5 ms timer on the GUI thread while ``run`` waits."""

    def __init__(self, app) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.app = app
        self.timer = QTimer(interval=5, timerType=Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.longest = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.last)
        self.last = now

    def run(self, start, done, timeout: float = 600.0) -> tuple[float, float]:
        """(longest stall, seconds until ``done()``) for ``start()`` called from the event loop."""
        from PySide6.QtCore import QTimer

        self.longest, self.last = 0.0, time.perf_counter()
        began = time.perf_counter()
        self.timer.start()
        QTimer.singleShot(0, start)
        self.app.processEvents()
        while not done():
            if time.perf_counter() - began > timeout:
                raise TimeoutError("the operation did not finish in time")
            self.app.processEvents()
            time.sleep(0.001)
        elapsed = time.perf_counter() - began
        # work done in the last events processed (a result landing) delays the next tick too
        self.longest = max(self.longest, time.perf_counter() - self.last)
        self.timer.stop()
        return self.longest, elapsed


def real_graph(project, k: int = 10) -> None:
    """Replace the fabricated map's placeholder graph by the kNN graph of its 2-D positions."""
    from scipy.spatial import cKDTree

    from explorer.store.current import current_map

    graph_map = current_map(project)
    distances, indices = cKDTree(graph_map.xy).query(graph_map.xy, k=k + 1, workers=-1)
    sims = np.exp(-distances / max(float(np.median(distances[:, -1])), 1e-6)).astype(np.float32)
    project.save_run_arrays(graph_map.run_id, knn_indices=indices.astype(np.int64), knn_similarities=sims)


def window_on(root: Path, settings_file: Path):
    from PySide6.QtCore import QSettings

    from explorer.gui.main_window import MainWindow

    window = MainWindow(QSettings(str(settings_file), QSettings.Format.IniFormat))
    window.resize(1280, 800)
    window.show()
    return window


def map_operations(app, meter: StallMeter, n: int) -> dict[str, tuple[float, float]]:
    from explorer.gui.export_dialog import ExportDialog

    tmp = Path(tempfile.mkdtemp())
    project, ids, class_ids, truth, xy = fabricate(tmp / "collection", n)
    real_graph(project)
    project.close()
    window = window_on(tmp / "collection", tmp / "settings.ini")
    app.processEvents()
    s = window.session
    figures = {}
    figures["open"] = meter.run(
        lambda: window.open_project(tmp / "collection"), lambda: s.map is not None and window.settled()
    )
    window.loop.auto_propagate = False
    before = s.counts()["pseudo"]
    figures["propagate (first)"] = meter.run(
        window.propagate, lambda: not window.propagation.busy and s.counts()["pseudo"] > before and window.settled()
    )

    def edit_and_propagate():
        s.set_selection([int(ids[0])])
        s.label_targets(int(class_ids[truth[0]]))
        window.propagate()

    figures["label + propagate"] = meter.run(
        edit_and_propagate, lambda: not window.propagation.busy and not window.calibration.busy and window.settled()
    )
    dialog = ExportDialog(s.project, parent=window)
    dialog.show()
    while dialog.counting:  # the first counts (on a worker) before the filter changes
        app.processEvents()
    counted = {"text": dialog.summary.text()}
    figures["export dialog: filter change"] = meter.run(
        lambda: dialog.min_confidence.setValue(0.5), lambda: dialog.summary.text() != counted["text"]
    )
    dialog.close()
    out = tmp / "labels.csv"
    figures["export CSV"] = meter.run(lambda: window.export_to(out), lambda: not window.jobs.busy and out.exists())
    window.close()
    return figures


def training_operation(app, meter: StallMeter, images: int) -> dict[str, tuple[float, float]]:
    from PIL import Image

    from explorer import workflow
    from explorer.store import Project
    from explorer.workflow import steps

    tmp = Path(tempfile.mkdtemp())
    root = tmp / "digits"
    root.mkdir()
    rng = np.random.default_rng(0)
    for k in range(images):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / f"{k:05d}.png")
    with Project(root) as project:
        workflow.scan(project)
    window = window_on(root, tmp / "settings.ini")
    window.settings.setValue("train/epochs", 2)
    window.settings.setValue("train/max_minutes", 0.5)
    window.open_project(root)
    while not window.settled():  # the project's tables are read on a worker
        app.processEvents()

    def train() -> tuple[float, float]:
        return meter.run(lambda: window.run_step("train"), lambda: not window.jobs.busy and window.settled())

    runs = {}
    # Its own process first: this process must not have loaded torch before the thread's first run.
    runs["training in its own process, first"] = train()
    runs["training in its own process, again"] = train()
    loaded = "torch" in sys.modules
    steps.APART, apart = frozenset(), steps.APART
    try:
        runs[f"training on the worker thread, first ({'torch loaded before' if loaded else 'torch loads'})"] = train()
        runs["training on the worker thread, again"] = train()
    finally:
        steps.APART = apart
    window.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--train-images", type=int, default=2000)
    args = parser.parse_args()

    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(antialias=False)
    meter = StallMeter(app)
    began = time.perf_counter()
    bare, _ = meter.run(lambda: None, lambda: time.perf_counter() - began > 3.0)
    print(f"bare event loop, 3 s: longest gap {bare * 1000:.0f} ms\n")
    print("| points | operation | longest GUI stall | whole operation | stall / bare loop |\n|---:|---|---:|---:|---:|")
    for n in args.sizes:
        for name, (stall, elapsed) in map_operations(app, meter, n).items():
            print(f"| {n:,} | {name} | {stall * 1000:.0f} ms | {elapsed:.2f} s | {stall / bare:.1f} |", flush=True)
    if args.train_images:
        for name, (stall, elapsed) in training_operation(app, meter, args.train_images).items():
            print(
                f"| {args.train_images:,} images | {name} | {stall * 1000:.0f} ms | {elapsed:.2f} s "
                f"| {stall / bare:.1f} |"
            )


if __name__ == "__main__":
    main()
