"""The main window: toolbar and menus, the map with the image and label panels, jobs in the
status bar and the jobs dock, and the dialogs (folders, files, export, training settings).

What runs and what happens when it lands lives in ``LabellingLoop`` (``explorer.gui.labelling_loop``,
no widget): the pipeline jobs, propagate -> calibrate -> propagate after each label edit, Label
next and the other lookups. The window starts them from its actions and shows what the loop says
through its signals. Opening a project reads its tables on a worker (``Session.open_project``);
the window shows "Opening…" until they land.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt
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
from explorer.gui.jobs_panel import JobsPanel, Pace, duration_text
from explorer.gui.label_panel import LabelPanel
from explorer.gui.labelling_loop import LABEL_NEXT, SIMILAR_SHOWN, TITLES, LabellingLoop
from explorer.gui.review import ReviewQueue
from explorer.gui.scatter import MapView
from explorer.gui.session import Session
from explorer.gui.thumbnails import Thumbnails
from explorer.gui.train_dialog import TrainDialog, training_settings
from explorer.jobs import Progress
from explorer.store import ProjectError, StateNotWritable


def _dropped_file(event) -> Path | None:
    """The one local file a drag carries, or None."""
    urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
    if len(urls) != 1 or not urls[0].isLocalFile():
        return None
    path = Path(urls[0].toLocalFile())
    return path if path.is_file() else None


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

    def show_state(self, session: Session, step: str = "") -> None:
        """``step``: how far the opening project's reading is (shown while ``session.opening``)."""
        project = session.project
        if project is not None and session.opening:
            self.title.setText(f"Opening {project.root.name}/…")
            self.text.setText(f"{step or 'reading the project'}…")
            self.build_button.hide()
            self.quick_button.hide()
            return
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
        self.setAcceptDrops(True)  # an image dropped on the window: find the ones like it
        self.last_error = ""
        self._pace = Pace()
        self._opened: Callable[[], None] | None = None  # what to do once the opening project is shown

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
        self.loop = LabellingLoop(self.session, self)
        # The loop's job runners, which the status bar and the jobs dock watch.
        self.jobs, self.propagation = self.loop.jobs, self.loop.propagation
        self.lookups, self.calibration = self.loop.lookups, self.loop.calibration
        self.jobs_panel = JobsPanel(TITLES)
        self.jobs_panel.watch(self.jobs)
        self.jobs_panel.watch(self.propagation, history=False)
        self.jobs_panel.watch(self.calibration, history=False)
        self.jobs_panel.watch(self.lookups, history=False)
        self.jobs_panel.watch(self.session.reading, history=False)
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
        self._refine_tip = self.refine_action.toolTip()
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
        self.auto_action.toggled.connect(lambda on: setattr(self.loop, "auto_propagate", on))
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
        s, loop = self.session, self.loop
        update_state, update_counts = s.coalesced(self._update_state), s.coalesced(self._update_counts)
        for signal in (s.projectChanged, s.mapChanged, s.itemsChanged, s.classesChanged):
            signal.connect(update_state)
        s.labelsChanged.connect(update_counts)
        s.selectionChanged.connect(update_counts)
        s.message.connect(self.show_message)
        s.projectOpened.connect(self._project_shown)
        s.openFailed.connect(self._open_failed)
        s.reading.progress.connect(lambda _r, _n, report: self.empty.show_state(s, report.step))
        loop.message.connect(self.show_message)
        loop.failed.connect(self.report_error)
        loop.propagationText.connect(self.label_panel.set_propagation_text)
        loop.refineAdvised.connect(self._show_refine_advice)
        loop.galleryShown.connect(self._show_in_gallery)
        loop.previewReady.connect(self._show_preview)
        loop.evaluated.connect(self._show_evaluation)
        loop.stepFinished.connect(lambda *_: self._update_state())
        self.label_panel.propagateRequested.connect(self.propagate)
        self.gallery.activated.connect(self.map_view.centre_on)
        self.jobs.started.connect(lambda *_: self.jobs_dock.show())
        self.label_panel.exportRequested.connect(self.choose_export)
        self.empty.build_button.clicked.connect(self.build_action.trigger)
        self.empty.quick_button.clicked.connect(self.quick_action.trigger)
        self.empty.open_button.clicked.connect(self.open_action.trigger)
        self.jobs.started.connect(self._job_started)
        self.jobs.progress.connect(self._job_progress)
        self.jobs.busyChanged.connect(self._job_busy)

    # ---- project ------------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = self.settings.value("project/root", str(Path.home()))
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", str(start))
        if folder:
            self.open_project(folder)

    def open_project(
        self, root: str | Path, state_dir: str | Path | None = None, then: Callable[[], None] | None = None
    ) -> bool:
        """Open the collection at ``root``: the project at once, its tables read on a worker; the
        map shows when they land (then ``then()`` runs, and a scan starts when nothing is
        recorded yet). False when it cannot be opened (the person was told why)."""
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
                return self.open_project(root, state, then)
            self.report_error(f"Cannot open {root}: {exc}")
            return False
        except ProjectError as exc:
            self.report_error(f"Cannot open {root}: {exc}")
            return False
        self._opened = then
        project = self.session.project
        self.setWindowTitle(f"{project.root.name} — Embedding Explorer")
        self.settings.setValue("project/root", str(project.root))
        self.settings.setValue("project/state_dir", str(state_dir) if state_dir else "")
        return True

    def _project_shown(self) -> None:
        then, self._opened = self._opened, None
        if then is not None:
            then()

    def _open_failed(self, text: str) -> None:
        self._opened = None
        self.setWindowTitle("Embedding Explorer")
        self.report_error(text)

    def restore_last_project(self) -> bool:
        root = self.settings.value("project/root")
        if not root or not Path(str(root)).is_dir():
            return False
        return self.open_project(str(root), self.settings.value("project/state_dir") or None)

    # ---- jobs (the loop runs them; the window picks files and settings) ---------------------
    def run_step(self, name: str) -> int:
        """Start a pipeline step (scan, train, embed, map, build, quick map); returns its request id
        (0 when another job is running or no project is open)."""
        return self.loop.run_step(name, training_settings(self.settings))

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
        """``LabellingLoop.evaluate``: the table is shown when it finishes."""
        return self.loop.evaluate(truth)

    def _show_refine_advice(self, advice: str) -> None:
        """The propagation advises refining (or no longer does): the Refine action says so, on the
        toolbar too. Following that advice took 300 labels on the suite's shapes from 88 % to 98 %
        right (benchmarks/README.md), so it should not hide in the summary's last line."""
        self.refine_action.setText("Refine with labels (advised)" if advice else "Refine with labels")
        tip = f"{advice[0].upper()}{advice[1:]}. {self._refine_tip}" if advice else self._refine_tip
        self.refine_action.setToolTip(tip)
        self.refine_action.setStatusTip(tip)

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

    def export_to(self, path: str | Path, fmt: str = "csv", **options) -> int:
        """``LabellingLoop.export_to``: the labelled dataset to ``path`` as a job."""
        return self.loop.export_to(path, fmt, **options)

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

    def _job_busy(self, busy: bool) -> None:
        for widget in (self.job_label, self.progress_bar, self.cancel_button):
            widget.setVisible(busy)
        for a in self.pipeline_actions:
            a.setEnabled(not busy and self.session.project is not None)
        self._update_resume()  # a cancelled or failed run may have left a checkpoint
        self.cancel_action.setEnabled(busy)

    @property
    def last_result(self):
        """The last pipeline job's result."""
        return self.loop.last_result

    # ---- labelling: propagation, Label next and the other lookups ----------------------------
    def propagate(self) -> int:
        """Request a propagation over the current map (latest request wins); returns its id."""
        return self.loop.propagate()

    def suggest_next(self, n: int = LABEL_NEXT) -> int:
        return self.loop.suggest_next(n)

    def find_duplicates(self, threshold: float | None = None) -> int:
        return self.loop.find_duplicates(threshold)

    def find_outliers(self) -> int:
        """The least typical images in the gallery, outliers first."""
        return self.loop.find_outliers()

    def check_labels(self) -> int:
        return self.loop.check_labels()

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
        return self.loop.find_clusters(resolution)

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
        """The collection's ``n`` images most like ``file``, selected and in the gallery."""
        return self.loop.find_similar(file, n)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if self.session.map is not None and _dropped_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        file = _dropped_file(event)
        if file is not None:
            event.acceptProposedAction()
            self.find_similar(file)

    def _show_in_gallery(self, item_ids, title: str) -> None:
        self.gallery.set_items(item_ids, title)
        self.side_tabs.setCurrentWidget(self.gallery)

    def _show_preview(self, item_ids, xy) -> None:
        self.map_stack.setCurrentWidget(self.map_view)
        self.map_view.show_preview(item_ids, xy)

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
        """Nothing left to draw: the project (if any) is read, the map (if any) is on screen and no
        job or thumbnail is pending."""
        map_ready = self.session.map is None or (self.map_view.drawn and not self.map_view.busy)
        views_ready = not self.review.busy and not self.thumbnails.busy
        return map_ready and views_ready and not self.session.busy and not self.loop.busy

    # ---- closing ------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.sync()
        self.map_view.stop()
        self.session.reading.cancel()
        self.loop.shutdown()
        self.session.reading.wait(5_000)
        self.thumbnails.clear()
        self.thumbnails.wait(5_000)
        self.session.close_project(emit=False)
        super().closeEvent(event)
