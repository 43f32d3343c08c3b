"""The export dialog shows what will go out, per class and source, before anything is written."""

from __future__ import annotations

import csv

from PySide6.QtCore import Qt

from tests.gui.test_window import add_classes, seed_each_cluster


def counted(qtbot, dialog):
    """Wait until the dialog's counts (worked out on a worker) have landed; returns the dialog."""
    qtbot.waitUntil(lambda: not dialog.counting, timeout=15000)
    return dialog


def counts(dialog) -> dict[str, list[str]]:
    table = dialog.table
    return {
        table.topLevelItem(k).text(0): [table.topLevelItem(k).text(c) for c in range(1, table.columnCount())]
        for k in range(table.topLevelItemCount())
    }


def test_counts_follow_the_filters_and_the_export_matches(qtbot, window, tmp_path):
    from explorer.gui.export_dialog import ExportDialog

    add_classes(qtbot, window)
    seed_each_cluster(qtbot, window, per_cluster=2)
    qtbot.waitUntil(lambda: window.session.counts()["pseudo"] > 0, timeout=15000)
    dialog = ExportDialog(window.session.project, "imagefolder", window)
    qtbot.addWidget(dialog)
    rows = counts(counted(qtbot, dialog))
    assert sorted(rows) == ["blue", "green", "red"]
    assert all(r[0] == "2" for r in rows.values())  # two seeds per class
    total = sum(int(r[-1]) for r in rows.values())
    assert total == 60  # every image labelled: seeds plus pseudo-labels

    dialog.source_boxes["pseudo"].setChecked(False)
    dialog.refresh()
    assert sum(int(r[-1]) for r in counts(counted(qtbot, dialog)).values()) == 6

    dialog.format_box.setCurrentIndex(dialog.format_box.findData("csv"))
    dialog.path_edit.setText(str(tmp_path / "seeds.csv"))
    dialog.refresh()
    assert counted(qtbot, dialog).export_button.isEnabled()
    settings = dialog.settings()
    assert window.export_to(settings.pop("out"), settings.pop("fmt"), **settings)
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=15000)
    assert not window.last_error, window.last_error
    with open(tmp_path / "seeds.csv", newline="") as f:
        labelled = [r for r in csv.DictReader(f) if r["label"]]
    assert len(labelled) == 6 and {r["source"] for r in labelled} == {"seed"}
    dialog.reject()


def test_nothing_to_export_disables_the_button(qtbot, window, tmp_path):
    from explorer.gui.export_dialog import ExportDialog

    dialog = ExportDialog(window.session.project, "imagefolder", window)
    qtbot.addWidget(dialog)
    dialog.path_edit.setText(str(tmp_path / "out"))
    dialog.refresh()
    assert not counted(qtbot, dialog).export_button.isEnabled()  # no labels yet: an ImageFolder would be empty
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert not (tmp_path / "out").exists()
    dialog.reject()


def test_counts_are_read_off_the_gui_thread_and_the_latest_request_wins(qtbot, window, monkeypatch):
    import threading

    from explorer.exchange.export import preview_export
    from explorer.gui import export_dialog
    from explorer.gui.export_dialog import ExportDialog

    add_classes(qtbot, window)
    seed_each_cluster(qtbot, window, per_cluster=2)
    qtbot.waitUntil(lambda: window.session.counts()["pseudo"] > 0, timeout=15000)
    asked = []

    def counting(project, **kwargs):
        asked.append((threading.current_thread(), kwargs["min_confidence"]))
        return preview_export(project, **kwargs)

    monkeypatch.setattr(export_dialog, "preview_export", counting)
    dialog = counted(qtbot, ExportDialog(window.session.project, "csv", window))
    qtbot.addWidget(dialog)
    assert asked and all(thread is not threading.main_thread() for thread, _ in asked)
    everything = dialog.last_preview.counts
    assert sum(n for (_, source), n in everything.items() if source == "seed") == 6
    dialog.source_boxes["seed"].setChecked(False)  # two requests in a row: only the second is shown
    first = dialog.refresh()
    dialog.min_confidence.setValue(1.0)
    second = dialog.refresh()
    assert second > first
    counted(qtbot, dialog)
    expected = preview_export(
        window.session.project, include=("accepted", "imported", "pseudo"), min_confidence=1.0, fmt="csv"
    )
    assert dialog.last_preview.counts == expected.counts != everything
    assert asked[-1][1] == 1.0
    dialog.reject()


def test_export_pressed_during_a_recount_exports_with_the_new_counts(qtbot, window, tmp_path):
    from explorer.gui.export_dialog import ExportDialog

    add_classes(qtbot, window)
    seed_each_cluster(qtbot, window, per_cluster=1)
    dialog = counted(qtbot, ExportDialog(window.session.project, "csv", window))
    qtbot.addWidget(dialog)
    dialog.path_edit.setText(str(tmp_path / "out.csv"))
    dialog.labelled_only.setChecked(True)  # a filter change: the recount waits for the debounce
    assert dialog.counting and dialog.export_button.isEnabled()
    with qtbot.waitSignal(dialog.accepted, timeout=15000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.settings()["labelled_only"] and dialog.last_preview is not None


def test_the_dialog_says_before_writing_that_near_duplicates_share_a_split(qtbot, tmp_path):
    from explorer.gui.export_dialog import ExportDialog
    from tests.exchange.test_leaks import _labelled

    project, _ = _labelled(tmp_path / "blobs", twins=5)
    with project:
        dialog = ExportDialog(project, "imagefolder")
        qtbot.addWidget(dialog)
        dialog.split.setValue(0.5)
        dialog.refresh()
        assert "10 near-duplicate image(s) in 5 group(s)" in counted(qtbot, dialog).summary.text()
        assert "kept on one side" in dialog.summary.text()
        dialog.reject()
