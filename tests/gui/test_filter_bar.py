"""The filter bar driven as a person does: typing a pattern hides the rest of the map, the legend
and counts follow, the gallery's Filtered list and the review queue hold exactly what it keeps,
and the export dialog writes exactly that."""

from __future__ import annotations

import csv

import numpy as np
from PySide6.QtCore import QPointF, Qt, QTimer

from explorer.gui import style
from tests.gui.test_map_colours import legend_texts
from tests.gui.test_window import add_classes, rows_of_cluster, seed_each_cluster


def open_bar(qtbot, window):
    bar = window.filter_bar
    assert not bar.isVisible()
    window.filter_bar.toggle_action.trigger()  # View > Filter…
    assert bar.isVisible() and bar.path_edit.hasFocus()
    return bar


def type_into(qtbot, window, edit, text: str) -> None:
    """Type ``text`` into ``edit`` and wait until the filter it makes has landed."""
    edit.setFocus()
    with qtbot.waitSignal(window.session.filterChanged, timeout=10_000):
        qtbot.keyClicks(edit, text)


def cluster_ids(window, cluster: str) -> list[int]:
    return sorted(window.session.ids_of(rows_of_cluster(window, cluster)).tolist())


def written_paths(path) -> list[str]:
    with open(path, newline="") as f:
        return [r["path"] for r in csv.DictReader(f)]


def test_a_glob_hides_the_rest_of_the_map_and_the_legend_counts_follow(qtbot, window):
    view, s = window.map_view, window.session
    view.set_colour_mode("folder")
    assert sorted(legend_texts(window)) == ["blue/   20", "green/   20", "red/   20"]
    bar = open_bar(qtbot, window)
    assert bar.count_label.text() == "60 images"

    type_into(qtbot, window, bar.path_edit, "red/*")
    red = rows_of_cluster(window, "red")
    others = np.setdiff1d(np.arange(60), red)
    assert s.filtered.tolist() == cluster_ids(window, "red")
    assert not view.hidden[red].any() and view.hidden[others].all()
    alpha = np.array([brush.color().alpha() for brush in view.points.data["brush"]])
    assert (alpha[others] == 0).all() and (alpha[red] > 0).all()  # drawn transparent: not seen
    assert sorted(legend_texts(window)) == ["blue/   0", "green/   0", "red/   20"]
    assert "20 of 60 filtered" in view.legend.title.text()
    assert bar.count_label.text() == "20 of 60 shown"
    assert all(view.pick(*view.xy[row]) not in set(others.tolist()) for row in others)  # hidden: never picked

    # a lasso round the whole map takes only what is shown
    lo, hi = view.xy.min(axis=0) - 1, view.xy.max(axis=0) + 1
    view.select_region([(lo[0], lo[1]), (hi[0], lo[1]), (hi[0], hi[1]), (lo[0], hi[1])])
    assert s.selection.tolist() == cluster_ids(window, "red")
    assert sorted(legend_texts(window)) == ["blue/   0 / 0", "green/   0 / 0", "red/   20 / 20"]

    # the gallery's Filtered list: exactly those images
    window.side_tabs.setCurrentWidget(window.gallery)
    box = window.gallery.source_box
    box.setCurrentIndex(box.findText("Filtered"))
    box.activated.emit(box.currentIndex())  # as when the person picks it
    assert window.gallery.item_ids.tolist() == cluster_ids(window, "red")
    assert "Filtered · 20 images" in window.gallery.count_label.text()

    # another pattern replaces it; the gallery follows; Clear shows everything again
    bar.path_edit.clear()
    type_into(qtbot, window, bar.path_edit, "re:^(green|blue)/green_0[0-4]")
    assert window.gallery.item_ids.tolist() == cluster_ids(window, "green")[:5]
    with qtbot.waitSignal(s.filterChanged, timeout=10_000):
        qtbot.mouseClick(bar.clear_button, Qt.MouseButton.LeftButton)
    assert s.filtered is None and not view.hidden.any() and bar.path_edit.text() == ""
    assert sorted(legend_texts(window)) == ["blue/   0 / 20", "green/   0 / 20", "red/   20 / 20"]
    assert len(window.gallery.item_ids) == 60


def test_what_cannot_be_read_is_marked_and_the_last_filter_stays(qtbot, window):
    s = window.session
    bar = open_bar(qtbot, window)
    type_into(qtbot, window, bar.path_edit, "blue/*")
    kept = s.filtered.copy()
    bar.path_edit.clear()
    qtbot.keyClicks(bar.path_edit, "re:blue/(")
    qtbot.waitUntil(lambda: bar.error != "", timeout=5_000)
    assert "invalid regular expression 'blue/('" in bar.count_label.text()
    assert style.DANGER in bar.path_edit.styleSheet() and "invalid regular expression" in bar.path_edit.toolTip()
    assert s.filtered.tolist() == kept.tolist()  # the last good filter is still shown

    bar.size_edit.setFocus()
    qtbot.keyClicks(bar.size_edit, "huge")
    qtbot.waitUntil(lambda: style.DANGER in bar.size_edit.styleSheet(), timeout=5_000)
    bar.path_edit.clear()
    qtbot.keyClicks(bar.path_edit, "blue/*")
    bar.size_edit.clear()
    with qtbot.waitSignal(s.filterChanged, timeout=10_000):
        qtbot.keyClicks(bar.size_edit, "33x33")  # the images are 32x32: none is that big
    assert bar.error == "" and bar.size_edit.styleSheet() == "" and s.filtered.tolist() == []
    assert bar.count_label.text() == "0 of 60 shown"


def test_labels_confidence_histogram_and_review_queue(qtbot, window):
    s = window.session
    add_classes(qtbot, window)
    seed_each_cluster(qtbot, window, per_cluster=2)
    qtbot.waitUntil(lambda: s.counts()["pseudo"] > 0, timeout=15_000)
    bar = open_bar(qtbot, window)

    with qtbot.waitSignal(s.filterChanged, timeout=10_000):
        bar.label_button.menu().actions()[1].trigger()  # tick "green"
    green = s.labels.item_ids[s.labels.class_ids == s.classes[1].id]
    assert s.filtered.tolist() == sorted(green.tolist()) and bar.label_button.text() == "green"

    # the histogram: pseudo-labels per class; a click on it sets the lower edge of the range
    qtbot.mouseClick(bar.histogram_button, Qt.MouseButton.LeftButton)
    histogram = bar.histogram
    assert histogram.isVisible() and len(histogram.curves) == 3
    assert histogram.counts.sum() == s.counts()["pseudo"]
    assert histogram.counts[1].sum() == int(((s.labels.source == "pseudo") & np.isin(s.labels.item_ids, green)).sum())
    view = histogram.plot.getPlotItem().getViewBox()
    threshold = float(np.median(s.labels.confidence[s.labels.source == "pseudo"]))
    scene = view.mapViewToScene(QPointF(threshold, 0.5 * view.viewRange()[1][1]))
    at = histogram.plot.mapFromScene(scene)
    with qtbot.waitSignal(s.filterChanged, timeout=10_000):
        qtbot.mouseClick(histogram.plot.viewport(), Qt.MouseButton.LeftButton, pos=at)
    low, high = (float(v) for v in bar.confidence_edit.text().split(":"))
    assert abs(low - threshold) < 0.02 and high == 1.0
    assert s.filter.min_confidence == low and s.filter.classes == ("green",)
    table = s.labels
    want = table.item_ids[(table.class_ids == s.classes[1].id) & (table.confidence >= low)]
    assert s.filtered.tolist() == sorted(want.tolist())

    # the review queue: only the pseudo-labels the filter keeps
    window.deselect_action.trigger()  # Esc: the queue is not limited to the last seeds' selection
    window.side_tabs.setCurrentWidget(window.review)
    queue = window.review.queue_ids()
    pseudo = table.item_ids[(table.source == "pseudo") & np.isin(table.item_ids, want)]
    assert sorted(queue.tolist()) == sorted(pseudo.tolist()) and len(queue)
    assert "in filter" in window.review.count_label.text()

    # labels that change refilter by themselves: accepting one keeps it (now a person's label: 1)
    with qtbot.waitSignal(s.filterChanged, timeout=10_000):
        window.review.accept_current()
    assert s.filtered.tolist() == sorted(want.tolist())


def test_export_dialog_writes_only_the_filtered_or_the_selected(qtbot, window, tmp_path):
    s = window.session
    bar = open_bar(qtbot, window)
    type_into(qtbot, window, bar.path_edit, "*_1?.png")
    assert len(s.filtered) == 30

    def export_with(choice: str, out):
        def fill():
            dialog = window.export_dialog
            box = dialog.images_box
            assert box.model().item(box.findData(choice)).isEnabled()
            box.setCurrentIndex(box.findData(choice))
            dialog.path_edit.setText(str(out))
            dialog.refresh()
            qtbot.waitUntil(lambda: not dialog.counting, timeout=15_000)  # counted on a worker
            assert dialog.last_preview.rows == (30 if choice == "filtered" else 3)
            qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)

        QTimer.singleShot(0, fill)
        window.choose_export("csv")  # the dialog runs its own loop; ``fill`` acts inside it
        qtbot.waitUntil(lambda: not window.jobs.busy, timeout=15_000)
        assert not window.last_error, window.last_error

    export_with("filtered", tmp_path / "filtered.csv")
    assert written_paths(tmp_path / "filtered.csv") == sorted(s.path_of(int(i)) for i in s.filtered)
    chosen = s.filtered[[0, 7, 21]]
    s.set_selection(chosen)
    export_with("selected", tmp_path / "selected.csv")
    assert written_paths(tmp_path / "selected.csv") == sorted(s.path_of(int(i)) for i in chosen)
