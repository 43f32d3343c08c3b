"""The export dialog shows what will go out, per class and source, before anything is written."""

from __future__ import annotations

import csv

from PySide6.QtCore import Qt

from tests.gui.test_window import add_classes, seed_each_cluster


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
    rows = counts(dialog)
    assert sorted(rows) == ["blue", "green", "red"]
    assert all(r[0] == "2" for r in rows.values())  # two seeds per class
    total = sum(int(r[-1]) for r in rows.values())
    assert total == 60  # every image labelled: seeds plus pseudo-labels

    dialog.source_boxes["pseudo"].setChecked(False)
    dialog.refresh()
    assert sum(int(r[-1]) for r in counts(dialog).values()) == 6

    dialog.format_box.setCurrentIndex(dialog.format_box.findData("csv"))
    dialog.path_edit.setText(str(tmp_path / "seeds.csv"))
    dialog.refresh()
    assert dialog.export_button.isEnabled()
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
    assert not dialog.export_button.isEnabled()  # no labels yet: an ImageFolder would be empty
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert not (tmp_path / "out").exists()
    dialog.reject()
