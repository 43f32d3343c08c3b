"""The main window: toolbar and menus, the map with the image and label panels, jobs in the
status bar, and the glue that re-runs propagation after each label edit (debounced, latest wins).

Heavy steps (scan, train, embed, map, export) go through one ``JobRunner`` (one at a time);
propagation has its own latest-wins runner. The worker computes; the GUI thread saves the newest
propagation result and tells the session to reload, so a stale result is never written.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from explorer.gui import style
from explorer.gui.classes_dialog import ClassesDialog
from explorer.gui.filter_bar import FilterBar
from explorer.gui.gallery import Gallery
from explorer.gui.image_view import ImageView
from explorer.gui.jobs import JobRunner
from explorer.gui.jobs_panel import JobsPanel, Pace, duration_text
from explorer.gui.label_panel import LabelPanel
from explorer.gui.review import ReviewQueue
from explorer.gui.scatter import MapView
from explorer.gui.session import Session
from explorer.gui.thumbnails import Thumbnails
from explorer.gui.train_dialog import TrainDialog, training_settings
from explorer.jobs import Progress
from explorer.store import HUMAN_SOURCES, ProjectError, StateNotWritable

PROPAGATE_DELAY_MS = 300
OUTSIDE_CHANGES_MS = 2000

# Job name -> (workflow function, keyword arguments, what to reload when it finishes)
STEPS = {
    "scan": ("scan", {}, "items"),
    "train": ("train", {}, None),
    "resume training": ("train", {"resume": True}, None),
    "embed": ("embed", {}, None),
    "map": ("make_map", {}, "map"),
    "build": ("run_all", {}, "map"),
    "quick map": ("quick_map", {}, "map"),
    "refine": ("refine", {}, "map"),
}
TITLES = {
    "scan": "Scanning",
    "train": "Training",
    "resume training": "Resuming training",
    "embed": "Embedding",
    "map": "Mapping",
    "build": "Building the map",
    "quick map": "Quick map",
    "export": "Exporting",
    "evaluate": "Evaluating",
    "refine": "Refining with labels",
}


LABEL_NEXT = 5
"""Suggestions per Label next: each round's labels re-rank the rest, so small rounds waste fewer
labels. benchmarks/labelling_effort.py, mean labels for 95 / 98 / 99 % right over 5 trials:
demo digits 23 / 47 / 143 five a round against 30 / 96 / 202 ten a round; overlapping clusters
32 / 196 / 552 against 36 / 180 / 514 (within the spread). Without the exploring share of
suggestions, five a round missed whole modes on the clusters."""
CHECK_SHOWN = 50
"""Labels Check labels puts in the gallery, most suspect first."""
SIMILAR_SHOWN = 50
OUTLIERS_SHOWN = 100
"""Images Find images like… selects and shows, most similar first."""


def _dropped_file(event) -> Path | None:
    """The one local file a drag carries, or None."""
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    if len(urls) != 1 or not urls[0].isLocalFile():
        return None
    path = Path(urls[0].toLocalFile())
    return path if path.is_file() else None


def _workflow_job(step: str, project, **kwargs):
    """A job that calls ``explorer.workflow.<step>`` on a worker thread (imported there, so the
    window never waits for the heavy libraries)."""

    def job(progress, cancel):
        from explorer import workflow

        if "training" in kwargs:  # the remembered training settings, made a config here (torch loads here)
            from explorer.ssl.trainer import TrainConfig

            kwargs["config"] = TrainConfig(**kwargs.pop("training"))
        if step == "quick_map":  # no training: raw pixels, for a first look in seconds
            if not project.item_count():
                workflow.scan(project, progress=progress, cancel=cancel)
            workflow.embed(project, encoder=workflow.PIXELS, progress=progress, cancel=cancel)
            return workflow.make_map(project, progress=progress, cancel=cancel)
        if step == "refine":  # its own module: rounds of train, embed, map and propagate
            from explorer.workflow.refine import refine

            return refine(project, progress=progress, cancel=cancel, **kwargs)
        return getattr(workflow, step)(project, progress=progress, cancel=cancel, **kwargs)

    return job


class EmptyState(QWidget):
    """What the map area shows when there is no map yet: what to do next, with the counts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # A centred column of bounded width; no alignment flags on the wrapped label, so the
        # layout asks it for its height at that width and nothing gets clipped.
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        column = QWidget()
        column.setMaximumWidth(560)
        outer.addWidget(column, 4)
        outer.addStretch(1)
        layout = QVBoxLayout(column)
        layout.addStretch(2)
        self.title = QLabel()
        self.title.setObjectName("EmptyTitle")
        self.text = QLabel()
        self.text.setObjectName("EmptyText")
        for label in (self.title, self.text):
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.build_button = QPushButton("Build map")
        self.build_button.setObjectName("Primary")
        self.quick_button = QPushButton("Quick map (raw pixels)")
        self.open_button = QPushButton("Open folder…")
        for button in (self.build_button, self.quick_button, self.open_button):
            button.setMinimumHeight(34)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addSpacing(12)
        layout.addLayout(buttons)
        layout.addStretch(3)

    def show_state(self, session: Session) -> None:
        project = session.project
        if project is None:
            self.title.setText("Open a folder of images")
            self.text.setText(
                "Embedding Explorer turns a folder of unlabelled images into a labelled dataset. "
                "Open a folder to start."
            )
            self.build_button.hide()
            self.quick_button.hide()
            return
        counts = session.counts()
        self.build_button.show()
        self.quick_button.show()
        self.title.setText("No map yet: press Build map")
        self.text.setText(
            f"{counts['items']:,} images recorded in {project.root.name}/ · {counts['human']:,} labelled · "
            f"{counts['classes']} classes.\n\nBuild map trains an encoder on these images, embeds them and lays them "
            "out (minutes on a CPU). Quick map uses raw pixels and takes seconds."
        )


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings if settings is not None else QSettings()
        self.session = Session(self)
        self.thumbnails = Thumbnails(
            self.session.absolute_path,
            parent=self,
            cache_dir=lambda: self.session.project.state_dir / "thumbs" if self.session.project else None,
        )
        self.jobs = JobRunner(latest_wins=False, parent=self)
        self.propagation = JobRunner(latest_wins=True, parent=self)
        self.lookups = JobRunner(latest_wins=True, parent=self)  # suggestions, duplicates, previews
        # fitting the confidence calibration costs ~5 propagations: beside them, never in their way
        self.calibration = JobRunner(latest_wins=True, parent=self)
        self.auto_propagate = True
        self.setAcceptDrops(True)  # an image dropped on the window: find the ones like it
        self.last_error = ""
        self.last_result = None
        self._propagation_project = None
        self._calibration_project = None
        self._pace = Pace()
        self._propagate_timer = QTimer(self, singleShot=True, interval=PROPAGATE_DELAY_MS, timeout=self.propagate)
        # Another window or a CLI command may write to the same project: look now and then.
        self._data_version = None
        self._to_label: list[int] = []  # Label next's suggestions not labelled yet, in order
        self._why: dict[int, str] = {}  # why each suggestion was picked, shown as it comes up
        self._outside_timer = QTimer(self, interval=OUTSIDE_CHANGES_MS, timeout=self._check_outside_changes)
        self._outside_timer.start()

        self.setWindowTitle("Embedding Explorer")
        self.map_view = MapView(self.session, self.thumbnails)
        self.image_view = ImageView(self.session, self.thumbnails)
        self.gallery = Gallery(self.session, self.thumbnails)
        self.review = ReviewQueue(self.session, self.thumbnails)
        self.side_tabs = QTabWidget()
        self.side_tabs.setDocumentMode(True)
        self.side_tabs.addTab(self.image_view, "Image")
        self.side_tabs.addTab(self.gallery, "Gallery")
        self.side_tabs.addTab(self.review, "Review")
        self.label_panel = LabelPanel(self.session)
        self.jobs_panel = JobsPanel(TITLES)
        self.jobs_panel.watch(self.jobs)
        self.jobs_panel.watch(self.propagation, history=False)
        self.jobs_panel.watch(self.calibration, history=False)
        self.jobs_panel.watch(self.lookups, history=False)
        self.jobs_dock = QDockWidget("Jobs", self)
        self.jobs_dock.setObjectName("JobsDock")
        self.jobs_dock.setWidget(self.jobs_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
        self.jobs_dock.hide()
        self.empty = EmptyState()
        self.map_stack = QStackedWidget()
        self.map_stack.addWidget(self.empty)
        self.map_stack.addWidget(self.map_view)
        self.filter_bar = FilterBar(self.session)  # View > Filter… shows it above the map
        self.filter_bar.hide()
        map_area = QWidget()
        map_column = QVBoxLayout(map_area)
        map_column.setContentsMargins(0, 0, 0, 0)
        map_column.setSpacing(0)
        map_column.addWidget(self.filter_bar)
        map_column.addWidget(self.map_stack, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(map_area)
        self.splitter.addWidget(self.side_tabs)
        self.splitter.addWidget(self.label_panel)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setSizes([640, 310, 330])
        self.side_tabs.setMinimumWidth(240)
        self.label_panel.setMinimumWidth(300)
        self.setCentralWidget(self.splitter)

        self._make_actions()
        self._make_menus()
        self._make_status_bar()
        self._connect()
        self.resize(1280, 800)
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        splitter = self.settings.value("window/splitter")
        if splitter is not None:
            self.splitter.restoreState(splitter)
        self._update_state()

    # ---- construction -------------------------------------------------------------------
    def _make_actions(self) -> None:
        def action(text, slot, key=None, tip=""):
            a = QAction(text, self)
            if key:
                a.setShortcut(QKeySequence(key))
            a.setToolTip(tip or text)
            a.setStatusTip(tip or text)
            a.triggered.connect(lambda _=False: slot())
            self.addAction(a)
            return a

        self.open_action = action(
            "Open folder…", self.choose_folder, QKeySequence.StandardKey.Open, "Open a folder of images"
        )
        self.build_action = action(
            "Build map",
            lambda: self.run_step("build"),
            "Ctrl+B",
            "Scan, train an encoder, embed and map: the whole pipeline",
        )
        self.quick_action = action(
            "Quick map", lambda: self.run_step("quick map"), None, "A map from raw pixels in seconds, no training"
        )
        self.scan_action = action("Scan", lambda: self.run_step("scan"), None, "Find new and changed images")
        self.train_action = action("Train", lambda: self.run_step("train"), None, "Train a self-supervised encoder")
        self.resume_action = action(
            "Resume training",
            lambda: self.run_step("resume training"),
            None,
            "Continue the latest training run from its last checkpoint, with its own method and settings "
            "(more epochs or time when Training settings ask for more)",
        )
        self.embed_action = action(
            "Embed", lambda: self.run_step("embed"), None, "Embed every image with the latest encoder"
        )
        self.map_action = action(
            "Map", lambda: self.run_step("map"), None, "Neighbour graph and 2-D layout of the embeddings"
        )
        self.refine_action = action(
            "Refine with labels",
            lambda: self.run_step("refine"),
            "Ctrl+R",
            "Teach the encoder your labels: fine-tune it on them and the surest pseudo-labels, embed, map and "
            "propagate again (two rounds; stops early when held-out labels stop improving; cancel keeps "
            "finished rounds, run it again to go on)",
        )
        self.evaluate_action = action(
            "Evaluate embeddings…",
            self.choose_evaluation,
            None,
            "kNN and linear-probe accuracy of the embeddings on true labels, beside raw pixels and an untrained encoder",
        )
        self.cancel_action = action("Cancel job", self.jobs.cancel, None, "Stop the running job")
        self.train_settings_action = action(
            "Training settings…",
            self.edit_training,
            None,
            "Method, backbone, device, time budget and processes for training",
        )
        self.export_csv_action = action(
            "Export…",
            lambda: self.choose_export("csv"),
            "Ctrl+E",
            "Export the labelled dataset (CSV, ImageFolder, COCO…)",
        )
        self.export_folder_action = action("Export ImageFolder…", lambda: self.choose_export("imagefolder"))
        self.quit_action = action("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.fit_action = action("Fit map", self.map_view.fit, "F", "Show the whole map")
        self.suggest_action = action(
            "Label next",
            self.suggest_next,
            "Ctrl+L",
            f"The {LABEL_NEXT} images whose labels would help most (torn between two classes, in dense regions, "
            "far from your labels), one after the other: press each one's class key",
        )
        self.duplicates_action = action(
            "Find near-duplicates", self.find_duplicates, None, "Pairs of images that are almost the same"
        )
        self.similar_action = action(
            "Find images like…",
            self.choose_similar,
            "Ctrl+F",
            "Pick an image file (or drop one on the window): the collection's images most like it",
        )
        self.check_action = action(
            "Check labels",
            self.check_labels,
            None,
            "Your labels and imported ones that the other labels disagree with, most suspect first",
        )
        self.outliers_action = action(
            "Find outliers",
            self.find_outliers,
            None,
            "The least typical images (far from any dense group): strays, broken files, odd crops",
        )
        self.cluster_select_action = action(
            "Select cluster",
            self.select_cluster,
            "Ctrl+G",
            "Select every image in the current image's cluster (then a number key labels them all)",
        )
        self.clusters_action = action(
            "Find clusters…", self.find_clusters, None, "Find the map's clusters again, more or fewer of them"
        )
        self.classes_action = action(
            "Manage classes…", self.edit_classes, "Ctrl+K", "Rename, recolour, merge, reorder or delete classes"
        )
        self.jobs_action = self.jobs_dock.toggleViewAction()
        self.jobs_action.setText("Jobs and training curve")
        self.jobs_action.setShortcut(QKeySequence("Ctrl+J"))
        self.deselect_action = action("Select none", self._select_none, "Esc", "Clear the selection")
        self.auto_action = QAction("Propagate after each edit", self, checkable=True, checked=True)
        self.auto_action.toggled.connect(lambda on: setattr(self, "auto_propagate", on))
        self.pipeline_actions = (
            self.build_action,
            self.quick_action,
            self.scan_action,
            self.train_action,
            self.embed_action,
            self.map_action,
            self.refine_action,
            self.evaluate_action,
            self.export_csv_action,
            self.export_folder_action,
        )

    def _make_menus(self) -> None:
        panel = self.label_panel
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for a in (
            self.open_action,
            self.similar_action,
            None,
            self.export_csv_action,
            self.export_folder_action,
            None,
            self.quit_action,
        ):
            file_menu.addSeparator() if a is None else file_menu.addAction(a)
        build = bar.addMenu("&Build")
        for a in (
            self.build_action,
            self.quick_action,
            None,
            self.scan_action,
            self.train_action,
            self.resume_action,
            self.embed_action,
            self.map_action,
            self.clusters_action,
            None,
            self.refine_action,
            self.evaluate_action,
            self.train_settings_action,
            self.cancel_action,
        ):
            build.addSeparator() if a is None else build.addAction(a)
        labels = bar.addMenu("&Labels")
        for a in (
            panel.propagate_action,
            self.auto_action,
            None,
            panel.accept_action,
            panel.reject_action,
            panel.clear_action,
            None,
            panel.undo_action,
            panel.redo_action,
            None,
            self.suggest_action,
            self.check_action,
            self.duplicates_action,
            self.outliers_action,
            self.cluster_select_action,
            self.classes_action,
        ):
            labels.addSeparator() if a is None else labels.addAction(a)
        view = bar.addMenu("&View")
        view.addAction(self.fit_action)
        view.addAction(self.deselect_action)
        view.addAction(self.filter_bar.toggle_action)
        view.addSeparator()
        view.addAction(self.jobs_action)

        toolbar = QToolBar("Main")
        toolbar.setObjectName("MainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setIconSize(QSize(18, 18))
        for a, icon in (
            (self.open_action, "open"),
            (self.build_action, "build"),
            (self.quick_action, "quick-map"),
            (self.scan_action, "scan"),
            (self.train_action, "train"),
            (self.embed_action, "embed"),
            (self.map_action, "map"),
            (panel.propagate_action, "propagate"),
            (self.suggest_action, "label-next"),
            (self.refine_action, "refine"),
            (self.export_csv_action, "export"),
        ):
            a.setIcon(style.tool_icon(icon))
        # the path a newcomer follows, left to right; the single steps are in the Build menu
        for a in (
            self.open_action,
            None,
            self.build_action,
            self.quick_action,
            None,
            panel.propagate_action,
            self.suggest_action,
            self.refine_action,
            None,
            self.export_csv_action,
        ):
            toolbar.addSeparator() if a is None else toolbar.addAction(a)
        self.addToolBar(toolbar)
        self.toolbar = toolbar

    def _make_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setSizeGripEnabled(False)
        self.counts_label = QLabel("")
        self.job_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setFixedWidth(200)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job (its partial result is not used)")
        self.cancel_button.clicked.connect(self.jobs.cancel)
        for widget in (self.job_label, self.progress_bar, self.cancel_button, self.counts_label):
            bar.addPermanentWidget(widget)
        for widget in (self.job_label, self.progress_bar, self.cancel_button):
            widget.hide()

    def _connect(self) -> None:
        s = self.session
        s.projectChanged.connect(self._update_state)
        s.mapChanged.connect(self._update_state)
        s.itemsChanged.connect(self._update_state)
        s.labelsChanged.connect(self._update_counts)
        s.classesChanged.connect(self._update_state)
        s.selectionChanged.connect(self._update_counts)
        s.labelsEdited.connect(self._labels_edited)
        s.projectChanged.connect(self._to_label.clear)  # suggestions belong to the project they came from
        s.message.connect(self.show_message)
        self.label_panel.propagateRequested.connect(self.propagate)
        self.gallery.activated.connect(self.map_view.centre_on)
        self.jobs.started.connect(lambda *_: self.jobs_dock.show())
        self.jobs.started.connect(self._maybe_preview)
        self.lookups.finished.connect(self._lookup_finished)
        self.lookups.failed.connect(lambda _r, name, message: self.show_message(f"{name} failed: {message}", True))
        self.label_panel.exportRequested.connect(self.choose_export)
        self.empty.build_button.clicked.connect(self.build_action.trigger)
        self.empty.quick_button.clicked.connect(self.quick_action.trigger)
        self.empty.open_button.clicked.connect(self.open_action.trigger)
        self.jobs.started.connect(self._job_started)
        self.jobs.progress.connect(self._job_progress)
        self.jobs.finished.connect(self._job_finished)
        self.jobs.failed.connect(self._job_failed)
        self.jobs.cancelled.connect(lambda _, name: self.show_message(f"{name} cancelled"))
        self.jobs.busyChanged.connect(self._job_busy)
        self.propagation.finished.connect(self._propagation_finished)
        self.propagation.failed.connect(lambda _, __, msg: self._propagation_failed(msg))
        self.calibration.finished.connect(self._calibration_finished)
        self.calibration.failed.connect(
            lambda _r, _n, msg: self.show_message(f"calibrating confidence failed: {msg}", True)
        )

    # ---- project ------------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = self.settings.value("project/root", str(Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", str(start))
        if folder:
            self.open_project(folder)

    def open_project(self, root: str | Path, state_dir: str | Path | None = None) -> bool:
        """Open the collection at ``root``; scans it first when nothing is recorded yet."""
        self.propagation.cancel()
        self.calibration.cancel()
        self._propagate_timer.stop()
        try:
            self.thumbnails.clear()
            self.session.open_project(root, state_dir)
        except StateNotWritable as exc:  # a read-only folder: its state can live elsewhere
            state = QFileDialog.getExistingDirectory(
                self,
                f"{Path(root).name} is read-only: choose a folder to keep the project's state in",
                str(Path.home()),
            )
            if state and Path(state) != Path(state_dir or ""):
                return self.open_project(root, state)
            self.report_error(f"Cannot open {root}: {exc}")
            return False
        except ProjectError as exc:
            self.report_error(f"Cannot open {root}: {exc}")
            return False
        project = self.session.project
        self.setWindowTitle(f"{project.root.name} — Embedding Explorer")
        self.settings.setValue("project/root", str(project.root))
        self.settings.setValue("project/state_dir", str(state_dir) if state_dir else "")
        if not project.item_count(readable_only=False):
            self.run_step("scan")
        return True

    def restore_last_project(self) -> bool:
        root = self.settings.value("project/root")
        if not root or not Path(str(root)).is_dir():
            return False
        return self.open_project(str(root), self.settings.value("project/state_dir") or None)

    # ---- jobs ---------------------------------------------------------------------------
    def run_step(self, name: str) -> int:
        """Start a pipeline step (scan, train, embed, map, build, quick map); returns its request id
        (0 when another job is running or no project is open)."""
        if self.session.project is None:
            self.show_message("open a folder first")
            return 0
        if self.jobs.busy:
            self.show_message(f"{self.jobs.current_name} is still running: wait or cancel it first")
            return 0
        step, kwargs, _ = STEPS[name]
        kwargs = dict(kwargs)
        if step in ("train", "run_all"):
            kwargs["training"] = training_settings(self.settings)
        if step == "refine":
            kwargs["device"] = training_settings(self.settings).get("device", "auto")
        return self.jobs.start(name, _workflow_job(step, self.session.project, **kwargs))

    def choose_evaluation(self) -> int:
        """Evaluate the embeddings on the people's labels when there are enough (more than 20 in
        2 classes), else on a true-labels CSV the person picks; returns the request id, or 0."""
        project = self.session.project
        if project is None:
            self.show_message("open a folder first")
            return 0
        labels = project.human_labels()
        if len(labels) > 20 and len({c for c, _ in labels.values()}) > 1:
            return self.evaluate(None)
        path, _ = QFileDialog.getOpenFileName(
            self,
            f"True labels (path,label CSV): only {len(labels)} image(s) here have a label from a person",
            str(project.root.parent),
            "CSV files (*.csv);;All files (*)",
        )
        return self.evaluate(path) if path else 0

    def evaluate(self, truth: str | Path | None = None) -> int:
        """``workflow.evaluate`` as a job (``truth``: a path,label CSV, or None for the people's
        labels); the table is shown when it finishes. Returns the request id, or 0."""
        project = self.session.project
        if project is None:
            self.show_message("open a folder first")
            return 0
        if self.jobs.busy:
            self.show_message(f"{self.jobs.current_name} is still running: wait or cancel it first")
            return 0
        truth = Path(truth) if truth else None

        def job(progress, cancel):
            from explorer import workflow

            return workflow.evaluate(project, truth, progress=progress, cancel=cancel)

        return self.jobs.start("evaluate", job)

    def _show_evaluation(self, report) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "Evaluation", report.summary(), QMessageBox.StandardButton.Ok)
        box.setParent(self, box.windowFlags())
        box.setStyleSheet("QLabel { font-family: monospace; }")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        box.show()
        self.evaluation_box = box

    def edit_training(self) -> None:
        TrainDialog(self.settings, self).exec()

    def choose_export(self, fmt: str = "csv") -> None:
        """The export dialog: format, filters and destination, with counts before writing."""
        project = self.session.project
        if project is None:
            self.show_message("open a folder first")
            return
        from explorer.gui.export_dialog import ExportDialog

        dialog = ExportDialog(project, fmt, self, filtered=self.session.filtered, selected=self.session.selection)
        self.export_dialog = dialog
        if dialog.exec() == ExportDialog.DialogCode.Accepted:
            settings = dialog.settings()
            self.export_to(settings.pop("out"), settings.pop("fmt"), **settings)

    def export_to(
        self,
        path: str | Path,
        fmt: str = "csv",
        include=("seed", "accepted", "imported", "pseudo"),
        min_confidence: float = 0.0,
        **options,
    ) -> int:
        """Export the labelled dataset to ``path`` as ``fmt`` (see ``explorer.exchange.export``)
        as a job; ``options``: labelled_only, mode, split, seed. Returns the request id, or 0."""
        if self.session.project is None:
            self.show_message("open a folder first")
            return 0
        if self.jobs.busy:
            self.show_message(f"{self.jobs.current_name} is still running: wait or cancel it first")
            return 0
        project, out = self.session.project, Path(path)

        def job(progress, cancel):
            from explorer import workflow

            return workflow.export(
                project,
                fmt,
                out,
                include=tuple(include),
                min_confidence=min_confidence,
                progress=progress,
                cancel=cancel,
                **options,
            )

        return self.jobs.start("export", job)

    def _job_started(self, _request: int, name: str) -> None:
        self._pace = Pace()
        self.job_label.setText(f"{TITLES.get(name, name)}…")
        self.progress_bar.setRange(0, 0)

    def _job_progress(self, _request: int, name: str, report: Progress) -> None:
        rate, eta = self._pace.update(report, time.monotonic())
        text = f"{TITLES.get(name, name)} · {report.step}"
        if report.total:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * (report.fraction or 0)))
            self.progress_bar.setFormat(f"{report.done:,}/{report.total:,}")
            if rate:
                text += f" · {rate:,.1f}/s"
            if eta is not None:
                text += f" · ETA {duration_text(eta)}"
        else:
            self.progress_bar.setRange(0, 0)
        if report.message:
            text += f" · {report.message}"
        if report.metrics:
            text += " · " + ", ".join(f"{k} {v:.3g}" for k, v in list(report.metrics.items())[:2])
        self.job_label.setText(text)

    def _job_finished(self, _request: int, name: str, result) -> None:
        self.last_result = result
        reload = STEPS.get(name, (None, None, None))[2]
        if reload == "items":
            self.session.reload_items()
        elif reload == "map":
            self.session.reload_map()
            self._propagate_timer.start()
        summary = result.summary().splitlines()[0] if hasattr(result, "summary") else f"{name} finished"
        if name == "evaluate":
            self._show_evaluation(result)
        if isinstance(result, int) and not isinstance(result, bool):
            summary = f"{name} finished (run {result})"
            run = self.session.project.run(result) if self.session.project is not None else None
            if run is not None and run.metrics.get("note"):  # e.g. raw pixels chosen over the encoder
                summary = f"{summary}: {run.metrics['note']}"
        self.show_message(summary)
        self._update_state()

    def _job_failed(self, _request: int, name: str, message: str) -> None:
        self.report_error(f"{TITLES.get(name, name)} failed: {message}")

    def _job_busy(self, busy: bool) -> None:
        for widget in (self.job_label, self.progress_bar, self.cancel_button):
            widget.setVisible(busy)
        for a in self.pipeline_actions:
            a.setEnabled(not busy and self.session.project is not None)
        self._update_resume()  # a cancelled or failed run may have left a checkpoint
        self.cancel_action.setEnabled(busy)

    # ---- propagation --------------------------------------------------------------------
    def _labels_edited(self) -> None:
        if self.auto_propagate and self.session.map is not None:
            self._propagate_timer.start()  # restarts: a burst of edits propagates once
        self._continue_label_next()

    def _continue_label_next(self) -> None:
        """After the suggestion being labelled got its label, move on to the next one (a label
        given anywhere else leaves the person where they are)."""
        current = self.session.current
        if current is None or current not in self._to_label:
            return
        labels = self.session.labels
        human = set(labels.item_ids[np.isin(labels.source, HUMAN_SOURCES)].tolist())
        if current not in human:
            return
        self._to_label = [i for i in self._to_label if i not in human]
        if self._to_label:
            self._show_next_to_label()
            text = f"{len(self._to_label)} suggestion(s) left: press the class key of the one shown"
            if self._why.get(self._to_label[0]):
                text += f" ({self._why[self._to_label[0]]})"
        else:
            text = "every suggestion has a label: Label next (Ctrl+L) for the next ones"
        QTimer.singleShot(0, lambda: self.show_message(text))  # after the edit's own message

    def _show_next_to_label(self) -> None:
        item = self._to_label[0]
        self.session.set_selection([item])
        self.session.set_current(item)

    def propagate(self) -> int:
        """Request a propagation over the current map (latest request wins); returns its id."""
        self._propagate_timer.stop()
        project = self.session.project
        if project is None or self.session.map is None:
            self.show_message("no map yet: build a map first")
            return 0
        self._propagation_project = project

        def job(progress, cancel):
            from explorer import workflow

            result = workflow.compute_propagation(project, progress=progress, cancel=cancel, fit_calibration=False)
            cancel.raise_if_cancelled()  # a newer request replaces it: do not write this one
            workflow.save_propagation(project, result)  # here, not on the GUI thread (1M rows: seconds)
            return result

        self.label_panel.set_propagation_text("propagating…")
        return self.propagation.start("propagate", job)

    def _propagation_finished(self, _request: int, _name: str, result) -> None:
        project = self.session.project
        if project is None or project is not self._propagation_project:
            return
        if self.session.map is None or result.map_run != self.session.map.run_id:
            return  # computed on a map that is no longer shown
        self.session.apply_pseudo_labels(result.item_ids, result.class_ids, result.confidence)
        self.label_panel.set_propagation_text(result.summary())
        if result.calibration_due and not self.calibration.busy:

            def job(progress, cancel):
                from explorer import workflow

                return workflow.calibrate(project, progress=progress, cancel=cancel)

            self._calibration_project = project
            self.calibration.start("calibrate confidence", job)

    def _calibration_finished(self, _request: int, _name: str, _calibration) -> None:
        """A new calibration is kept on the solver: propagate again (every class reused) to show it."""
        if self.session.project is not None and self.session.project is self._calibration_project:
            self.propagate()

    def _propagation_failed(self, message: str) -> None:
        self.label_panel.set_propagation_text(f"propagation failed: {message}")
        self.show_message(f"propagation failed: {message}", error=True)

    def _check_outside_changes(self) -> None:
        project = self.session.project
        if project is None or self.jobs.busy:
            self._data_version = None
            return
        try:
            version = project.data_version()
        except ProjectError:
            return
        if self._data_version is not None and version != self._data_version and not self.propagation.busy:
            self.session.reload_classes()
            self.show_message("labels changed by another window or command: reloaded")
        self._data_version = version

    # ---- lookups: label next, duplicates, a preview while mapping ------------------------------
    def suggest_next(self, n: int = LABEL_NEXT) -> int:
        if self.session.map is None:
            self.show_message("no map yet: build a map first")
            return 0
        project = self.session.project

        def job(progress, cancel):
            from explorer import workflow

            return workflow.suggest(project, n)

        return self.lookups.start("label next", job)

    def _map_lookup(self, name: str, compute) -> int:
        """Run ``compute(workflow, project, progress, cancel)`` as a lookup job when there is a map;
        ``_lookup_finished`` gets ``(name, its result)``. Returns the request id, or 0."""
        if self.session.map is None:
            self.show_message("no map yet: build a map first")
            return 0
        project = self.session.project

        def job(progress, cancel):
            from explorer import workflow

            return (name, compute(workflow, project, progress, cancel))

        return self.lookups.start(name, job)

    def find_duplicates(self, threshold: float = 0.98) -> int:
        return self._map_lookup("duplicates", lambda w, project, *_: w.near_duplicates(project, threshold))

    def find_outliers(self) -> int:
        """The least typical images (``workflow.quality``) in the gallery, outliers first."""
        return self._map_lookup("outliers", lambda w, project, *_: w.quality(project))

    def select_cluster(self) -> int:
        """Select the current image's cluster; returns how many images."""
        current = self.session.current
        if current is None:
            self.show_message("click an image on the map first: its cluster is selected")
            return 0
        return self.session.select_cluster(self.session.cluster_of(current))

    def find_clusters(self, resolution: float | None = None) -> int:
        """Find the map's clusters again at ``resolution`` (asked for when None); returns the
        request id, or 0."""
        if resolution is None and self.session.map is not None:
            from explorer.projection.clusters import RESOLUTION

            resolution, ok = QInputDialog.getDouble(
                self, "Find clusters", "Resolution (higher: more, smaller clusters):", RESOLUTION, 0.001, 100.0, 3
            )
            if not ok:
                return 0
        return self._map_lookup(
            "clusters", lambda w, project, progress, cancel: w.clusters(project, resolution, progress, cancel)
        )

    def choose_similar(self) -> int:
        if self.session.map is None:
            self.show_message("no map yet: build a map first")
            return 0
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Find images like this one",
            str(self.session.project.root.parent),
            "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)",
        )
        return self.find_similar(path) if path else 0

    def find_similar(self, file: str | Path, n: int = SIMILAR_SHOWN) -> int:
        """The collection's ``n`` images most like ``file``, selected (so the map marks them) and in
        the gallery; returns the request id, or 0."""
        if self.session.map is None:
            self.show_message("no map yet: build a map first")
            return 0
        project = self.session.project

        def job(progress, cancel):
            from explorer import workflow

            return ("similar", workflow.similar(project, Path(file), n))

        return self.lookups.start("similar", job)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if self.session.map is not None and _dropped_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        file = _dropped_file(event)
        if file is not None:
            event.acceptProposedAction()
            self.find_similar(file)

    def check_labels(self) -> int:
        return self._map_lookup("check", lambda w, project, _progress, cancel: w.check_labels(project, cancel))

    def _maybe_preview(self, _request: int, name: str) -> None:
        if name not in ("map", "build", "quick map") or self.session.map is not None:
            return
        project = self.session.project

        def job(progress, cancel):
            from explorer import workflow

            return ("preview", workflow.map_preview(project))

        self.lookups.start("preview", job)

    def _lookup_finished(self, _request: int, name: str, result) -> None:
        from explorer.workflow import Suggestions

        if isinstance(result, Suggestions):
            # One at a time: the whole set selected would take one key as the label of all of them.
            ids = result.item_ids
            self._to_label = [int(i) for i in ids]
            self._why = dict(zip(self._to_label, result.reasons, strict=False))
            self.gallery.set_items(ids, "Label next")
            self.side_tabs.setCurrentWidget(self.gallery)
            if not self._to_label:
                self.show_message("nothing left to label")
                return
            self._show_next_to_label()
            what = "typical images of distinct groups" if result.cold_start else "where a label helps most"
            first = f"; this one: {result.reasons[0]}" if result.reasons else ""
            self.show_message(
                f"{len(ids)} images to label next ({what}): press each one's class key, it moves on{first}"
            )
        elif isinstance(result, tuple) and result[0] == "duplicates":
            pairs = result[1]
            ids = np.array([i for a, b, _ in pairs for i in (a, b)], np.int64)
            self.gallery.set_items(ids, f"Near-duplicates: {len(pairs)} pairs")
            self.side_tabs.setCurrentWidget(self.gallery)
            self.show_message(f"{len(pairs)} pairs of near-duplicate images (side by side in the gallery)")
        elif isinstance(result, tuple) and result[0] == "similar":
            found = result[1]
            self.session.set_selection(found.item_ids)
            self.gallery.set_items(found.item_ids, f"Like the image: {len(found.item_ids)} most similar")
            self.side_tabs.setCurrentWidget(self.gallery)
            self.show_message(
                f"the {len(found.item_ids)} images most like it are selected (nearest: {found.paths[0]}, "
                f"similarity {found.similarities[0]:.2f})"
            )
        elif isinstance(result, tuple) and result[0] == "check":
            found = result[1]
            shown = found.item_ids[:CHECK_SHOWN]
            self.gallery.set_items(shown, f"Check labels: the {len(shown)} most suspect of {len(found.paths)}")
            self.side_tabs.setCurrentWidget(self.gallery)
            if not len(shown):
                self.show_message("no class has 3 labels yet: nothing to check")
                return
            says = found.graph_says[0] or "nothing"
            self.show_message(
                f"{len(shown)} labels to check, most suspect first; the first is labelled {found.given[0]}, "
                f"the other labels say {says} ({found.suspicion[0]:.0%} against)"
            )
        elif isinstance(result, tuple) and result[0] == "outliers":
            found = result[1]
            order = np.argsort(found.typicality, kind="stable")[:OUTLIERS_SHOWN]
            self.gallery.set_items(found.item_ids[order], f"Outliers: the {len(order)} least typical images")
            self.side_tabs.setCurrentWidget(self.gallery)
            twins = int((found.uniqueness[order] < 0.02).sum())
            self.show_message(
                f"the {len(order)} least typical images, most unusual first ({twins} of them have a near twin): "
                "broken files, wrong crops and strays show up here"
            )
        elif isinstance(result, tuple) and result[0] == "clusters":
            self.session.reload_clusters()
            self.show_message(f"{len(result[1].names)} clusters on the map (click a name to select its images)")
        elif isinstance(result, tuple) and result[0] == "preview" and result[1] is not None:
            if self.session.map is None and self.jobs.busy:
                self.map_stack.setCurrentWidget(self.map_view)
                self.map_view.show_preview(result[1].item_ids, result[1].xy)

    def edit_classes(self) -> None:
        if self.session.project is None:
            self.show_message("open a folder first")
            return
        dialog = ClassesDialog(self.session, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    # ---- status -------------------------------------------------------------------------
    def show_message(self, text: str, error: bool = False) -> None:
        bar = self.statusBar()
        bar.setStyleSheet(f"QStatusBar {{ color: {style.DANGER if error else style.TEXT}; }}")
        bar.showMessage(text, 0 if error else 8000)

    def report_error(self, text: str) -> None:
        """A failure the person must see: status bar plus a non-modal message box."""
        self.last_error = text
        self.show_message(text, error=True)
        box = QMessageBox(QMessageBox.Icon.Warning, "Embedding Explorer", text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setModal(False)
        box.show()

    def _select_none(self) -> None:
        self.session.clear_selection()
        self.session.set_current(None)

    def _update_state(self) -> None:
        has_map = self.session.map is not None
        previewing = self.map_view.previewing and self.jobs.busy
        self.map_stack.setCurrentWidget(self.map_view if has_map or previewing else self.empty)
        self.empty.show_state(self.session)
        has_project = self.session.project is not None
        for a in self.pipeline_actions:
            a.setEnabled(has_project and not self.jobs.busy)
        self._update_resume()
        self.label_panel.propagate_action.setEnabled(has_map)
        self.cancel_action.setEnabled(self.jobs.busy)
        self._update_counts()

    def _update_resume(self) -> None:
        """Resume training is there when some training run left a checkpoint and nothing runs."""
        project = self.session.project
        ready = project is not None and not self.jobs.busy
        self.resume_action.setEnabled(
            ready and any((project.run_dir(r.id) / "checkpoint.pt").exists() for r in project.runs("train"))
        )

    def _update_counts(self) -> None:
        if self.session.project is None:
            self.counts_label.setText("no folder open")
            return
        c = self.session.counts()
        text = (
            f"{c['items']:,} images · {c['human']:,} labelled · {c['pseudo']:,} pseudo · {c['unlabelled']:,} unlabelled"
        )
        if c["selected"]:
            text = f"{c['selected']:,} selected · " + text
        self.counts_label.setText(text)

    def settled(self) -> bool:
        """Nothing left to draw: the map (if any) is on screen and no job or thumbnail is pending."""
        map_ready = self.session.map is None or self.map_view.drawn
        return (
            map_ready
            and not self.jobs.busy
            and not self.propagation.busy
            and not self.calibration.busy
            and not self.lookups.busy
            and not self.thumbnails.busy
        )

    # ---- closing ------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.sync()
        self._propagate_timer.stop()
        self._outside_timer.stop()
        self.map_view.stop()
        self.jobs.cancel()
        self.propagation.cancel()
        self.calibration.cancel()
        self.lookups.cancel()
        self.jobs.wait(10_000)
        self.propagation.wait(5_000)
        self.calibration.wait(5_000)
        self.lookups.wait(5_000)
        self.thumbnails.clear()
        self.thumbnails.wait(5_000)
        self.session.close_project(emit=False)
        super().closeEvent(event)
