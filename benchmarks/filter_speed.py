"""How fast a filter finds its images at 100k and 1M items, beside a pandas DataFrame filter.

    nice -n 10 .venv/bin/python benchmarks/filter_speed.py [--sizes 100000 1000000] [--repeats 5]

A project is fabricated straight into the store (no image files): paths in 20 folders of 50
subfolders, sizes from 32 to 1024 px, modification times over three years, 10 classes, 1% human
labels (seed, accepted, imported), 90% pseudo-labels with random confidence, the rest unlabelled.

Each filter kind is timed (median of ``--repeats``) as ``explorer.store.filters.matching_ids``
over the arrays the window keeps (``FileFacts`` and the label table), and as the same question
asked of a pandas DataFrame of the same table (``DataFrame.query`` for numbers and labels,
``Series.str.match`` / ``str.contains`` for paths: what a FiftyOne- or Spotlight-style dataframe
filter does). Both return the matching item ids; the script checks they are the same. Path
filters are also timed as one compiled Python regex over the strings (``fnmatch`` in a loop), the
fallback for patterns RE2 does not take. One-time costs (reading the store, building the Arrow
paths and the source codes, building the DataFrame) are printed apart: the window pays them once
per scan (paths) or label change (codes), not per keystroke.

``--window`` times the window instead: from ``Session.set_filter`` to the views showing the
result, and the GUI thread's share of it (see ``window_figures``).

Run from the checkout (``PYTHONPATH=.`` when the installed ``explorer`` is another tree's).
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from explorer.store import Project, ScannedFile
from explorer.store.filters import Filter, matching_ids, read_file_facts, source_codes

SIZES = np.array([32, 64, 128, 224, 256, 512, 1024])
START = datetime(2022, 1, 1).timestamp()
SPAN_S = 3 * 365 * 86_400


def fabricate(root: Path, n: int, classes: int = 10, seed: int = 0) -> Project:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    project = Project(root)
    width, height = rng.choice(SIZES, n), rng.choice(SIZES, n)
    mtime = ((START + rng.uniform(0, SPAN_S, n)) * 1e9).astype(np.int64)
    ext = np.where(rng.random(n) < 0.7, "jpg", "png")
    files = (
        ScannedFile(f"f{k % 20:02d}/s{k % 1000 // 20:02d}/img-{k:07d}.{ext[k]}", 50_000, int(mtime[k]), int(width[k]), int(height[k]), "RGB")
        for k in range(n)
    )  # fmt: skip
    project.record_scan(files, gone=[])
    names = [project.add_class(f"class{c:02d}").id for c in range(classes)]
    ids = project.item_ids()
    kind = rng.random(n)
    label = rng.integers(0, classes, n)
    human = np.flatnonzero(kind < 0.01)
    sources = np.array(["seed", "accepted", "imported"])[rng.integers(0, 3, len(human))]
    project.set_labels_many(
        {int(ids[k]): (names[label[k]], str(s)) for k, s in zip(human, sources)}, "benchmark labels"
    )
    pseudo = np.flatnonzero((kind >= 0.01) & (kind < 0.91))
    project.save_pseudo_labels(ids[pseudo], np.array(names)[label[pseudo]], rng.random(len(pseudo)))
    return project


def frame_of(files, labels, classes):
    """The same table as a pandas DataFrame, one row per item (what a dataframe tool filters)."""
    import pandas as pd

    names = {c.id: c.name for c in classes}
    return pd.DataFrame(
        {
            "item_id": files.item_ids,
            "path": pd.array(files.paths, dtype="str"),
            "label": pd.array([names.get(int(c)) for c in labels.class_ids], dtype="str"),
            "source": pd.array(labels.source.astype(str), dtype="str"),
            "confidence": labels.confidence,
            "width": files.width,
            "height": files.height,
            "modified": pd.to_datetime(files.mtime_ns, unit="ns", utc=True),
        }
    )


def median_time(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def cases(frame):
    """(name, Filter, pandas question, Python-loop question or None)."""
    import pandas as pd

    after, before = datetime(2023, 3, 1), datetime(2023, 9, 1)
    utc = lambda d: pd.Timestamp(d.timestamp(), unit="s", tz="UTC")  # noqa: E731 (local dates, as the filter reads them)
    a, b = utc(after), utc(before)
    glob = "f03/*"

    def loop(pattern):
        """The path question as one compiled Python regex over the strings."""
        return lambda: frame["item_id"].to_numpy()[
            np.fromiter((pattern.match(p) is not None for p in frame["path"].tolist()), bool, count=len(frame))
        ]

    return [
        ("path glob `f03/*`", Filter(path=glob), lambda: frame[frame["path"].str.match(r"f03/.*")], loop(re.compile(fnmatch.translate(glob)))),
        ("path glob `*/s1?/*7.png`", Filter(path="*/s1?/*7.png"), lambda: frame[frame["path"].str.match(r".*/s1./.*7\.png$")],
         loop(re.compile(fnmatch.translate("*/s1?/*7.png")))),
        ("path contains `img-00012`", Filter(path="img-00012"), lambda: frame[frame["path"].str.contains("img-00012", regex=False)], None),
        (r"path regex `re:/img-\d+7\.png$`", Filter(path=r"re:/img-\d+7\.png$"), lambda: frame[frame["path"].str.contains(r"/img-\d+7\.png$")],
         loop(re.compile(r".*/img-\d+7\.png$"))),
        ("label in 2 classes", Filter(classes=("class03", "class07")), lambda: frame.query("label in ['class03', 'class07']"), None),
        ("source pseudo", Filter(sources="pseudo"), lambda: frame.query("source == 'pseudo'"), None),
        ("source human", Filter(sources="human"), lambda: frame.query("source in ['seed', 'accepted', 'imported']"), None),
        ("confidence 0.2:0.8", Filter(min_confidence=0.2, max_confidence=0.8), lambda: frame.query("confidence >= 0.2 and confidence <= 0.8"), None),
        ("size ≥ 256x256", Filter(min_width=256, min_height=256), lambda: frame.query("width >= 256 and height >= 256"), None),
        ("modified 2023-03-01 to 2023-09-01", Filter(modified_after=after, modified_before=before), lambda: frame.query("modified >= @a and modified < @b", local_dict={"a": a, "b": b}), None),
        ("all of: glob, 2 labels, pseudo, confidence, size, date",
         Filter(path="f0*", classes=("class03", "class07"), sources="pseudo", min_confidence=0.5, min_width=128, modified_after=after),
         lambda: frame[frame["path"].str.match(r"f0.*")].query(
             "label in ['class03', 'class07'] and source == 'pseudo' and confidence >= 0.5 and width >= 128 and modified >= @a", local_dict={"a": a}), None),
    ]  # fmt: skip


def measure(n: int, repeats: int) -> None:
    """Fabricate ``n`` items and print the table for them."""
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        start = time.perf_counter()
        project = fabricate(Path(tmp) / "collection", n)
        made = time.perf_counter() - start
        read_s, (files, labels, classes) = median_time(
            lambda: (read_file_facts(project), project.label_table(), project.classes()), 1
        )
        arrow_s, _ = median_time(lambda: files.arrow_paths, 1)
        codes_s, _ = median_time(lambda: source_codes(labels.source), 1)  # once per label table
        frame_s, frame = median_time(lambda: frame_of(files, labels, classes), 1)
        print(f"### {n:,} items\n")
        print(
            f"fabricated in {made:.1f} s; one-time: store read (file facts + label table) {read_s:.2f} s, "
            f"Arrow paths {arrow_s:.2f} s and source codes {codes_s:.2f} s (ours, kept until the items or labels "
            f"change); DataFrame built from the same arrays {frame_s:.2f} s (pandas)\n"
        )
        print("| filter | matches | ours | pandas | pandas / ours | one Python regex over the paths |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, rule, pandas_fn, loop_fn in cases(frame):
            ours_s, ours = median_time(lambda rule=rule: matching_ids(rule, files, labels, classes), repeats)
            base_s, base = median_time(pandas_fn, repeats)
            base_ids = np.sort(base["item_id"].to_numpy())
            assert np.array_equal(ours, base_ids), f"{name}: {len(ours)} vs pandas {len(base_ids)}"
            loop = ""
            if loop_fn is not None:
                loop_s, loop_ids = median_time(loop_fn, max(1, repeats // 2))
                assert np.array_equal(ours, np.sort(loop_ids)), name
                loop = f"{loop_s * 1000:,.0f} ms"
            print(
                f"| {name} | {len(ours):,} | {ours_s * 1000:,.1f} ms | {base_s * 1000:,.1f} ms | "
                f"{base_s / max(ours_s, 1e-9):.1f}x | {loop} |",
                flush=True,
            )
        print()
        project.close()


def window_figures(n: int, repeats: int) -> None:
    """In the window (offscreen, ``gui_speed``'s fabricated project with a map of ``n`` points,
    the gallery on Filtered): the time from ``Session.set_filter`` to ``filterChanged`` (worker
    and queue), and the GUI thread's share: every view following the new result (map hidden mask
    and legend counts, gallery, review queue, counts), then one repaint of the map."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from benchmarks.gui_speed import open_fabricated, settle

    app = QApplication.instance() or QApplication([])
    window, *_, figures = open_fabricated(app, n)
    session, viewport = window.session, window.map_view.plot.viewport()
    window.side_tabs.setCurrentWidget(window.gallery)
    window.gallery.show_filtered()

    def request(rule) -> float:
        start = time.perf_counter()
        session.set_filter(rule)
        while session.filtering:
            app.processEvents()
        settle(app, window)  # the map's hidden points are worked out on a worker too
        return time.perf_counter() - start

    first = request(Filter(path="f0000/*"))  # reads the items' file facts once
    print(f"### The window, {n:,} points (opened in {figures['open']:.1f} s)\n")
    print(f"first filter (reads the file facts from the store on the worker): {first:.2f} s\n")
    print("| filter | kept | set_filter -> shown | GUI thread: views follow | repaint |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, rule in (
        ("path glob `f00*/*`", Filter(path="f00*/*")),
        (r"path regex `re:7\.png$`", Filter(path=r"re:7\.png$")),
        ("label `class 3`", Filter(classes=("class 3",))),
        ("no filter (Clear)", None),
    ):
        total = statistics.median(request(rule) for _ in range(repeats))

        def follow(rule=rule):
            session.filterChanged.emit()  # what the views do when a result lands, on this thread

        gui = statistics.median(median_time(follow, 1)[0] for _ in range(repeats))
        paint = statistics.median(median_time(viewport.repaint, 1)[0] for _ in range(repeats))
        kept = len(session.filtered) if session.filtered is not None else n
        print(f"| {name} | {kept:,} | {total * 1000:,.0f} ms | {gui * 1000:,.0f} ms | {paint * 1000:,.0f} ms |")
    print()
    window.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--window", action="store_true", help="time the window following a filter instead")
    args = parser.parse_args()
    import pandas as pd

    print(f"pandas {pd.__version__} (string columns: {pd.array(['a'], dtype='str').dtype!r})\n")
    for n in args.sizes:
        (window_figures if args.window else measure)(n, args.repeats)


if __name__ == "__main__":
    main()
