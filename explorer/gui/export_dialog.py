"""The export dialog: pick a format, what to include and where; see what will go out (images per
class and source) before anything is written; then the window runs the export as a job.

The counts come from ``explorer.exchange.export.preview_export``, the same selection the export
itself makes, refreshed (debounced) whenever a filter changes. It reads the label table (1M
items: seconds), so it runs on a worker, latest request wins: the table shows the last counts
(greyed while new ones are worked out) and Export waits for the newest. "Images" restricts the
export to what the filter bar keeps or to the selection (a lasso), when the window hands those in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from explorer.exchange.export import FORMATS, preview_export
from explorer.exchange.manifest import ALL_SOURCES
from explorer.gui.jobs import JobRunner
from explorer.store import Project, ProjectError

PREVIEW_DELAY_MS = 150


class ExportDialog(QDialog):
    """``settings()`` gives the keyword arguments for ``workflow.export`` once accepted."""

    def __init__(
        self,
        project: Project,
        fmt: str = "csv",
        parent: QWidget | None = None,
        filtered: np.ndarray | None = None,
        selected: np.ndarray | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export the labelled dataset")
        self.project = project
        self.resize(620, 560)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)

        self.format_box = QComboBox()
        for spec in FORMATS.values():
            self.format_box.addItem(spec.title, spec.name)
        self.format_box.setCurrentIndex(max(0, self.format_box.findData(fmt)))
        form.addRow("Format", self.format_box)

        where = QHBoxLayout()
        self.path_edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        where.addWidget(self.path_edit, 1)
        where.addWidget(browse)
        form.addRow("Write to", where)

        sources = QHBoxLayout()
        self.source_boxes = {}
        for source in ALL_SOURCES:
            box = QCheckBox(source)
            box.setChecked(True)
            box.toggled.connect(self._schedule)
            self.source_boxes[source] = box
            sources.addWidget(box)
        sources.addStretch(1)
        form.addRow("Labels from", sources)

        # Which images: all, or only those the filter keeps / the selection (item ids).
        self.images_box = QComboBox()
        self._images = {"all": None, "filtered": filtered, "selected": selected}
        self.images_box.addItem("Every image", "all")
        for key, ids, title in (("filtered", filtered, "Only filtered"), ("selected", selected, "Only selected")):
            self.images_box.addItem(f"{title} ({len(ids):,})" if ids is not None else f"{title} (none)", key)
            if ids is None or len(ids) == 0:
                self.images_box.model().item(self.images_box.count() - 1).setEnabled(False)
        self.images_box.setToolTip("Export only what the filter bar shows, or only the selected (lassoed) images")
        form.addRow("Images", self.images_box)

        self.min_confidence = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2)
        self.min_confidence.setToolTip("Pseudo-labels below this confidence are left out (human labels count as 1)")
        form.addRow("Minimum confidence", self.min_confidence)
        self.labelled_only = QCheckBox("Only labelled images (manifests list every image otherwise)")
        form.addRow("", self.labelled_only)

        split_row = QHBoxLayout()
        self.split = QDoubleSpinBox(minimum=0.0, maximum=0.95, singleStep=0.05, decimals=2)
        self.split.setSpecialValueText("no split")
        self.split.setToolTip("Fraction of each class that goes to train/; the rest goes to val/ (stratified)")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.seed.setToolTip("The split's random seed")
        split_row.addWidget(self.split)
        split_row.addWidget(QLabel("seed"))
        split_row.addWidget(self.seed)
        split_row.addStretch(1)
        self.split_label = QLabel("Train share")
        form.addRow(self.split_label, split_row)

        self.mode = QComboBox()
        for mode, title in (("copy", "copy the images"), ("hardlink", "hard links"), ("symlink", "symbolic links")):
            self.mode.addItem(title, mode)
        self.mode_label = QLabel("Images as")
        form.addRow(self.mode_label, self.mode)

        self.table = QTreeWidget()
        self.table.setRootIsDecorated(False)
        self.table.setAlternatingRowColors(True)
        self.table.setHeaderLabels(["Class", *ALL_SOURCES, "Total"])
        for column in range(1, len(ALL_SOURCES) + 2):
            self.table.headerItem().setTextAlignment(column, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self.table, 1)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("Muted")
        layout.addWidget(self.summary)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setObjectName("Primary")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

        self.last_preview = None
        self._accept_when_counted = False
        self._counting = JobRunner(latest_wins=True, parent=self)
        self._counting.finished.connect(self._counted)
        self._counting.failed.connect(lambda _r, _n, text: self._counted(_r, _n, ("failed", text)))
        self._timer = QTimer(self, singleShot=True, interval=PREVIEW_DELAY_MS, timeout=self.refresh)
        self.finished.connect(self._timer.stop)  # no recount once the dialog is gone
        self.finished.connect(self._counting.cancel)
        for signal in (
            self.format_box.currentIndexChanged,
            self.min_confidence.valueChanged,
            self.labelled_only.toggled,
            self.split.valueChanged,
            self.images_box.currentIndexChanged,
        ):
            signal.connect(self._schedule)
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self.path_edit.textChanged.connect(self._update_button)
        self._format_changed()
        self.refresh()

    # ---- settings ---------------------------------------------------------------------------
    @property
    def fmt(self) -> str:
        return str(self.format_box.currentData())

    def include(self) -> tuple[str, ...]:
        return tuple(s for s, box in self.source_boxes.items() if box.isChecked())

    def settings(self) -> dict:
        """Keyword arguments for ``workflow.export`` (with ``fmt`` and ``out``)."""
        spec = FORMATS[self.fmt]
        return {
            "fmt": self.fmt,
            "out": Path(self.path_edit.text()).expanduser(),
            "include": self.include(),
            "min_confidence": float(self.min_confidence.value()),
            "labelled_only": self.labelled_only.isChecked() or spec.labelled_only,
            "split": float(self.split.value()) if spec.splits and self.split.value() > 0 else None,
            "seed": int(self.seed.value()),
            "mode": str(self.mode.currentData()),
            "items": self.items(),
        }

    def items(self) -> np.ndarray | None:
        """The item ids the export is limited to (the filtered or selected ones), None for all."""
        return self._images[str(self.images_box.currentData())]

    # ---- behaviour ---------------------------------------------------------------------------
    def _format_changed(self) -> None:
        spec = FORMATS[self.fmt]
        for widget in (self.split, self.seed, self.split_label):
            widget.setEnabled(spec.splits)
        for widget in (self.mode, self.mode_label):
            widget.setEnabled(spec.folder)
        self.labelled_only.setEnabled(not spec.labelled_only)
        default = self.project.root.parent / f"{self.project.root.name}-{spec.name}{spec.suffix}"
        current = self.path_edit.text()
        if not current or Path(current).name.startswith(f"{self.project.root.name}-"):
            self.path_edit.setText(str(default))

    def _browse(self) -> None:
        spec = FORMATS[self.fmt]
        if spec.folder:
            path = QFileDialog.getExistingDirectory(self, "Export into a new folder", str(self.project.root.parent))
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path_edit.text(), f"*{spec.suffix}")
        if path:
            self.path_edit.setText(path)

    def _schedule(self, *_args) -> None:
        self._timer.start()

    @property
    def counting(self) -> bool:
        """New counts are asked for (or being worked out) and have not landed yet."""
        return self._timer.isActive() or self._counting.busy

    def refresh(self) -> int:
        """Recount what the export would write with the current settings, on a worker (latest
        request wins); the table follows when the counts land. Returns the request id."""
        self._timer.stop()
        project, s = self.project, self.settings()

        def job(progress, cancel):
            try:
                return "counted", preview_export(
                    project,
                    include=s["include"],
                    min_confidence=s["min_confidence"],
                    fmt=s["fmt"],
                    labelled_only=s["labelled_only"],
                    split=s["split"],
                    seed=s["seed"],
                    items=s["items"],
                )
            except (ProjectError, ValueError) as exc:  # said in the dialog, in its own words
                return "failed", str(exc)

        self.table.setEnabled(False)  # the counts shown are for the settings before
        self.export_button.setEnabled(False)
        return self._counting.start("count", job)

    def _counted(self, _request: int, _name: str, result) -> None:
        outcome, report = result
        self.table.setEnabled(True)
        if outcome == "failed":
            self.table.clear()
            self.summary.setText(report)
            self.last_preview = None
            self._update_button()
            self._accept_when_counted = False
            return
        self.last_preview = report
        self.table.clear()
        for label, per_source, total in report.table():
            values = [str(per_source.get(source, "")) for source in ALL_SOURCES]
            row = QTreeWidgetItem([label, *values, str(total)])
            for column in range(1, len(ALL_SOURCES) + 2):
                row.setTextAlignment(column, Qt.AlignmentFlag.AlignRight)
            self.table.addTopLevelItem(row)
        self.table.resizeColumnToContents(0)
        self.summary.setText(report.summary())
        self._update_button()
        if self._accept_when_counted:
            self._accept_when_counted = False
            if self.export_button.isEnabled():
                self.accept()

    def _update_button(self) -> None:
        ok = bool(self.path_edit.text().strip()) and self.last_preview is not None and not self._counting.busy
        self.export_button.setEnabled(ok and self.last_preview.rows > 0)

    def _accept(self) -> None:
        if self.counting:  # Export on the newest counts: once they land
            if self._timer.isActive():
                self.refresh()
            self._accept_when_counted = True
            return
        if self.export_button.isEnabled():
            self.accept()
