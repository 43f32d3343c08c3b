"""Pictures of the real window at each step of the user's path, for the README walkthrough.

    .venv/bin/python docs/screenshots.py [--out docs] [--train-minutes M] [--only step9-filter ...]

Writes the demo digits to a temporary folder, maps them (raw pixels by default, so it takes
seconds; ``--train-minutes`` trains the default encoder first), then drives the window the way a
person does and saves one PNG per step. Runs offscreen; no display needed. ``--only`` goes
through every step (each builds on the one before) but writes only the named pictures.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")


def wait(app, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not settle in time")
        app.processEvents()
        time.sleep(0.02)


ONLY: set[str] = set()  # --only: the pictures to write (every one when empty)


def snap(app, window, path: Path) -> None:
    if ONLY and path.stem not in ONLY:
        return
    wait(app, window.settled)
    for _ in range(5):  # let queued paints and thumbnails land
        app.processEvents()
        time.sleep(0.05)
    window.grab().save(str(path))
    print(f"wrote {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).parent))
    parser.add_argument("--train-minutes", type=float, default=0.0)
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME", help="write only these (e.g. step9-filter)")
    args = parser.parse_args()
    ONLY.update(args.only)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from explorer import workflow
    from explorer.demo import write_demo
    from explorer.gui import style
    from explorer.gui.main_window import MainWindow
    from explorer.store import Project

    tmp = tempfile.TemporaryDirectory()
    demo = write_demo(Path(tmp.name) / "demo")
    with open(demo.truth, newline="") as f:
        truth = {r["path"]: r["label"] for r in csv.DictReader(f)}
    with Project(demo.images) as project:
        workflow.scan(project)
        if args.train_minutes:
            from explorer.ssl.trainer import TrainConfig

            workflow.train(project, TrainConfig(max_minutes=args.train_minutes, epochs=None))
            workflow.embed(project)
        else:
            workflow.embed(project, workflow.PIXELS)
        workflow.make_map(project)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    pg.setConfigOptions(background=style.PLOT, foreground=style.TEXT, antialias=False)
    style.apply_theme(app)
    window = MainWindow(QSettings(str(Path(tmp.name) / "settings.ini"), QSettings.Format.IniFormat))
    window.resize(1280, 800)
    window.show()
    window.open_project(demo.images)
    s = window.session
    wait(app, lambda: not s.opening)  # the project's tables are read on a worker
    snap(app, window, out / "step1-map.png")

    # Seed one image per digit, as a person clicking one point of each colour would.
    for digit in range(10):
        s.add_class(str(digit))
    rng = np.random.default_rng(0)
    for position, label in enumerate(s.classes):
        candidates = [i for i in s.map.item_ids if truth[s.path_of(int(i))] == label.name]
        s.set_selection([int(rng.choice(candidates))])
        s.label_with_key(position + 1) if position < 9 else s.label_targets(label.id)
    s.clear_selection()
    window.propagate()
    wait(app, lambda: s.counts()["pseudo"] > 0)
    snap(app, window, out / "step2-propagated.png")

    # Click a pseudo-labelled image: it shows large, with its neighbours and its label.
    pseudo = s.labels.item_ids[s.labels.source == "pseudo"]
    s.set_selection([int(pseudo[0])])
    s.set_current(int(pseudo[0]))
    snap(app, window, out / "step3-review.png")

    # Where to label next: colour by what needs review, shade what no label covers.
    s.clear_selection()
    window.map_view.set_colour_mode("review")
    window.map_view.shade_box.setChecked(True)
    snap(app, window, out / "step4-where-to-label.png")
    window.map_view.shade_box.setChecked(False)
    window.map_view.set_colour_mode("label")
    s.set_selection([int(pseudo[0])])
    snap(app, window, out / "window.png")

    # The review queue: the least sure pseudo-labels first, one key each (A, R, 1-9, N).
    s.clear_selection()
    window.side_tabs.setCurrentWidget(window.review)
    window.review.set_order("useful")
    snap(app, window, out / "step5-review-queue.png")

    # A lasso round one cluster, shown as a gallery of thumbnails.
    rows = np.flatnonzero(np.array([truth[s.path_of(int(i))] for i in s.map.item_ids]) == "3")
    s.select_rows(rows)
    window.side_tabs.setCurrentWidget(window.gallery)
    window.gallery.show_selection()
    snap(app, window, out / "step6-gallery.png")

    # Check labels: three more labels a digit, two of them wrong, and the graph points at those.
    s.clear_selection()
    by_digit = {c.name: position for position, c in enumerate(s.classes)}
    for label in s.classes:
        mine = [int(i) for i in s.map.item_ids if truth[s.path_of(int(i))] == label.name][:3]
        s.set_selection(mine)
        s.label_targets(label.id)
    wrong = [int(i) for i in s.map.item_ids if truth[s.path_of(int(i))] == "7"][10:12]
    s.set_selection(wrong)
    s.label_targets(s.classes[by_digit["1"]].id)
    s.clear_selection()
    window.check_labels()
    wait(app, lambda: not window.lookups.busy and window.gallery.item_ids.size > 0)
    s.set_selection([int(window.gallery.item_ids[0])])
    s.set_current(int(window.gallery.item_ids[0]))
    snap(app, window, out / "step7-check-labels.png")

    # Find images like one from outside the collection (here: a copy of a 5).
    five = next(p for p, label in truth.items() if label == "5")
    query = Path(tmp.name) / "query.png"
    query.write_bytes((demo.images / five).read_bytes())
    s.clear_selection()
    window.find_similar(query)
    wait(app, lambda: not window.lookups.busy and s.selection.size > 0)
    snap(app, window, out / "step8-similar.png")

    # Clusters: coloured by cluster, named by their majority label, one selected by its name.
    s.clear_selection()
    window.map_view.set_colour_mode("cluster")
    window.map_view.fit()
    s.select_cluster(0)
    window.side_tabs.setCurrentWidget(window.gallery)
    window.gallery.show_selection()
    snap(app, window, out / "step10-clusters.png")
    # Filter (View > Filter…): two digits, their surer pseudo-labels, the histogram to pick the range.
    s.clear_selection()
    s.set_current(None)
    bar = window.filter_bar
    bar.toggle_action.trigger()
    for action in bar.label_menu.actions():
        action.setChecked(action.text() in ("3", "8"))
    bar.histogram_button.setChecked(True)
    bar.confidence_edit.setText("0.50:1.00")
    bar.apply()
    wait(app, lambda: not s.filtering and s.filtered is not None)
    window.side_tabs.setCurrentWidget(window.gallery)
    window.gallery.show_filtered()
    snap(app, window, out / "step9-filter.png")
    bar.clear()  # the next pictures show everything
    bar.toggle_action.trigger()
    wait(app, lambda: not s.filtering and s.filtered is None)

    # Labels > Find outliers: the least typical images first, in the gallery.
    s.clear_selection()
    window.find_outliers()
    wait(app, lambda: not window.lookups.busy and window.gallery.item_ids.size > 0)
    s.set_current(int(window.gallery.item_ids[0]))
    snap(app, window, out / "step11-outliers.png")
    window.close()

    # From a notebook: a selection made in Python, shown in the window (`Collection.show`).
    import explorer

    with explorer.open(demo.images) as collection:
        unsure = collection.select(label="8", max_confidence=0.9)
        shown = collection.show(unsure, block=False)
    shown.resize(1280, 800)
    wait(app, lambda: shown.session.map is not None and shown.session.selection.size == len(unsure))
    shown.side_tabs.setCurrentWidget(shown.gallery)
    shown.gallery.show_selection()
    snap(app, shown, out / "step12-notebook.png")
    shown.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
