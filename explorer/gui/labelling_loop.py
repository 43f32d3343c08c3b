"""The labelling loop without a window: which jobs run, and what happens when they land.

``LabellingLoop`` is a ``QObject`` (no widget) beside the ``Session``. It owns

- the job runners: ``jobs`` (the pipeline: scan, train, embed, map, build, refine, evaluate,
  export; one at a time), ``propagation`` and ``calibration`` (latest request wins), and
  ``lookups`` (Label next, near-duplicates, outliers, similar images, clusters, a map preview;
  latest request wins);
- the propagate -> calibrate -> propagate loop: a label edit starts ``propagate_timer``
  (debounced: a burst of edits propagates once); the worker computes and saves the propagation;
  the newest result goes into the session; when it says the confidence calibration is due, a
  calibration runs beside it, and when that lands, a propagation shows the calibrated confidence;
- Label next: the suggestions not labelled yet (``to_label``), the one shown first; labelling
  it moves on to the next;
- a look at the store now and then for changes from another window or a CLI command.

Views never hear from it directly: it changes the session, and says what to show through its
signals (``message``, ``galleryShown``, ``previewReady``, ...), which the window connects to its
widgets. Results of a project or map that is no longer shown are dropped, never applied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from explorer.gui.jobs import JobRunner, collections_paused
from explorer.gui.session import Session
from explorer.store import HUMAN_SOURCES, ProjectError

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
    "open": "Opening",
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
NO_MAP = "no map yet: build a map first"
NO_PROJECT = "open a folder first"


def workflow_job(step: str, project, **kwargs):
    """A job that runs the pipeline step ``step`` (``explorer.workflow.steps.run_step``): those
    that load torch in a process of their own (the window never waits for torch's import), the
    others on the worker thread (imported there, so the window never waits for the heavy libraries)."""

    def job(progress, cancel):
        from explorer.workflow import steps

        run = steps.run_apart if step in steps.APART else steps.run_step
        return run(step, project, progress=progress, cancel=cancel, **kwargs)

    return job


class LabellingLoop(QObject):
    """Starts the session's jobs and applies what lands (see the module docstring)."""

    message = Signal(str, bool)  # a status line: text, and whether it reports an error
    failed = Signal(str)  # a pipeline job failed: what the person must see, in words
    propagationText = Signal(str)  # "propagating…", the last propagation's summary, or its failure
    refineAdvised = Signal(str)  # the last propagation's advice to refine, or "" (none)
    galleryShown = Signal(object, str)  # (item ids, title): show these images in the gallery
    previewReady = Signal(object, object)  # (item ids, (N, 2) xy): a quick layout while a map is computed
    evaluated = Signal(object)  # an evaluation report (``workflow.evaluate``) to show
    stepFinished = Signal(str, object)  # (job name, result) of a pipeline job, after the session reloaded

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.jobs = JobRunner(latest_wins=False, parent=self)
        self.propagation = JobRunner(latest_wins=True, parent=self)
        self.lookups = JobRunner(latest_wins=True, parent=self)  # suggestions, duplicates, previews
        # fitting the confidence calibration costs ~5 propagations: beside them, never in their way
        self.calibration = JobRunner(latest_wins=True, parent=self)
        self.auto_propagate = True  # propagate after each label edit
        self.last_result = None  # of the last pipeline job
        self.to_label: list[int] = []  # Label next's suggestions not labelled yet, in order
        self.why: dict[int, str] = {}  # why each suggestion was picked, shown as it comes up
        self._propagation_project = None
        self._calibration_project = None
        self.propagate_timer = QTimer(self, singleShot=True, interval=PROPAGATE_DELAY_MS, timeout=self.propagate)
        # Another window or a CLI command may write to the same project: look now and then.
        self._data_version = None
        self._outside_timer = QTimer(self, interval=OUTSIDE_CHANGES_MS, timeout=self.check_outside_changes)
        self._outside_timer.start()

        session.projectChanged.connect(self._project_changed)
        session.projectOpened.connect(self._project_opened)
        session.labelsEdited.connect(self._labels_edited)
        self.jobs.started.connect(self._maybe_preview)
        self.jobs.finished.connect(self._job_finished)
        self.jobs.failed.connect(lambda _r, name, text: self.failed.emit(f"{TITLES.get(name, name)} failed: {text}"))
        self.jobs.cancelled.connect(lambda _r, name: self.message.emit(f"{name} cancelled", False))
        self.lookups.finished.connect(self._lookup_finished)
        self.lookups.failed.connect(lambda _r, name, text: self.message.emit(f"{name} failed: {text}", True))
        self.propagation.finished.connect(self._propagation_finished)
        self.propagation.failed.connect(lambda _r, _n, text: self._propagation_failed(text))
        self.calibration.finished.connect(self._calibration_finished)
        self.calibration.failed.connect(
            lambda _r, _n, text: self.message.emit(f"calibrating confidence failed: {text}", True)
        )

    @property
    def busy(self) -> bool:
        """Some job of the loop is running or queued."""
        return any(r.busy for r in (self.jobs, self.propagation, self.calibration, self.lookups))

    @property
    def propagation_due(self) -> bool:
        """A propagation is asked for and waits for the edits to settle (the debounce)."""
        return self.propagate_timer.isActive()

    def _say(self, text: str, error: bool = False) -> int:
        self.message.emit(text, error)
        return 0

    # ---- the project --------------------------------------------------------------------
    def _project_changed(self) -> None:
        """A project was opened or closed: what was computed for the old one is not wanted."""
        self.propagation.cancel()
        self.calibration.cancel()
        self.propagate_timer.stop()
        self.to_label.clear()  # suggestions belong to the project they came from

    def _project_opened(self) -> None:
        if self.session.project is None:
            return
        if not self.session.recorded:
            self.run_step("scan")  # nothing recorded yet: find the images first
        elif self.auto_propagate and self.session.map is not None and self.session.counts()["human"]:
            # labelled before: propagate once, so the summary (how much is right, what to do next)
            # is there on opening, not only after the next click
            self.propagate_timer.start()

    def check_outside_changes(self) -> None:
        """Reload the labels when another window or command changed the project."""
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
            self.message.emit("labels changed by another window or command: reloaded", False)
        self._data_version = version

    def shutdown(self) -> None:
        """Stop the timers, cancel every job and wait for the workers (the window is closing)."""
        self.propagate_timer.stop()
        self._outside_timer.stop()
        runners = ((self.jobs, 10_000), (self.propagation, 5_000), (self.calibration, 5_000), (self.lookups, 5_000))
        for runner, _ in runners:
            runner.cancel()
        for runner, wait_ms in runners:
            runner.wait(wait_ms)

    # ---- pipeline jobs ------------------------------------------------------------------
    def _refused(self) -> bool:
        """No project, or another pipeline job runs: say so."""
        if self.session.project is None:
            self._say(NO_PROJECT)
            return True
        if self.jobs.busy:
            self._say(f"{self.jobs.current_name} is still running: wait or cancel it first")
            return True
        return False

    def run_step(self, name: str, training: dict | None = None) -> int:
        """Start a pipeline step (``STEPS``: scan, train, embed, map, build, quick map, ...) with
        the remembered ``training`` settings (``train_dialog.training_settings``); returns its
        request id (0 when another job is running or no project is open)."""
        if self._refused():
            return 0
        step, kwargs, _ = STEPS[name]
        kwargs = dict(kwargs)
        training = training or {}
        if step in ("train", "run_all"):
            kwargs["training"] = dict(training)
        if step == "refine":
            kwargs["device"] = training.get("device", "auto")
        return self.jobs.start(name, workflow_job(step, self.session.project, **kwargs))

    def evaluate(self, truth: str | Path | None = None) -> int:
        """``workflow.evaluate`` as a job (``truth``: a path,label CSV, or None for the people's
        labels); ``evaluated`` carries the report. Returns the request id, or 0. It embeds with an
        untrained encoder for comparison, so it loads torch: in a process of its own."""
        if self._refused():
            return 0
        truth = Path(truth) if truth else None
        return self.jobs.start("evaluate", workflow_job("evaluate", self.session.project, truth_csv=truth))

    def export_to(
        self,
        path: str | Path,
        fmt: str = "csv",
        include=("seed", "accepted", "imported", "pseudo"),
        min_confidence: float = 0.0,
        **options,
    ) -> int:
        """Export the labelled dataset to ``path`` as ``fmt`` (see ``explorer.exchange.export``)
        as a job; ``options``: labelled_only, mode, split, seed, items. Returns the request id, or 0."""
        if self._refused():
            return 0
        project, out = self.session.project, Path(path)

        def job(progress, cancel):
            from explorer import workflow

            with collections_paused:  # one object per row: full collections would stall the window
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

    def _job_finished(self, _request: int, name: str, result) -> None:
        self.last_result = result
        reload = STEPS.get(name, (None, None, None))[2]
        if reload == "items":
            self.session.reload_items()
        elif reload == "map":
            self.session.reload_map()
            self.propagate_timer.start()
        summary = result.summary().splitlines()[0] if hasattr(result, "summary") else f"{name} finished"
        if name == "evaluate":
            self.evaluated.emit(result)
        if isinstance(result, int) and not isinstance(result, bool):
            summary = f"{name} finished (run {result})"
            run = self.session.project.run(result) if self.session.project is not None else None
            if run is not None and run.metrics.get("note"):  # e.g. raw pixels chosen over the encoder
                summary = f"{summary}: {run.metrics['note']}"
        self.message.emit(summary, False)
        self.stepFinished.emit(name, result)

    # ---- propagate -> calibrate -> propagate --------------------------------------------
    def _labels_edited(self) -> None:
        if self.auto_propagate and self.session.map is not None:
            self.propagate_timer.start()  # restarts: a burst of edits propagates once
        self._continue_label_next()

    def propagate(self) -> int:
        """Request a propagation over the current map (latest request wins); returns its id."""
        self.propagate_timer.stop()
        project = self.session.project
        if project is None or self.session.map is None:
            return self._say(NO_MAP)
        self._propagation_project = project

        def job(progress, cancel):
            from explorer import workflow

            result = workflow.compute_propagation(project, progress=progress, cancel=cancel, fit_calibration=False)
            cancel.raise_if_cancelled()  # a newer request replaces it: do not write this one
            workflow.save_propagation(project, result)  # here, not on the GUI thread (1M rows: seconds)
            return result, result.summary()  # its summary too (1M items: tens of ms)

        self.propagationText.emit("propagating…")
        return self.propagation.start("propagate", job)

    def _propagation_finished(self, _request: int, _name: str, landed: tuple) -> None:
        result, summary = landed
        project = self.session.project
        if project is None or project is not self._propagation_project:
            return
        if self.session.map is None or result.map_run != self.session.map.run_id:
            return  # computed on a map that is no longer shown
        self.session.apply_pseudo_labels(result.item_ids, result.class_ids, result.confidence)
        self.propagationText.emit(summary)
        self.refineAdvised.emit(result.advice)
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

    def _propagation_failed(self, text: str) -> None:
        self.propagationText.emit(f"propagation failed: {text}")
        self.message.emit(f"propagation failed: {text}", True)

    # ---- Label next -----------------------------------------------------------------------
    def suggest_next(self, n: int = LABEL_NEXT) -> int:
        """Ask for the ``n`` images whose labels would help most; they come up one at a time."""
        if self.session.map is None:
            return self._say(NO_MAP)
        project = self.session.project

        def job(progress, cancel):
            from explorer import workflow

            return workflow.suggest(project, n)

        return self.lookups.start("label next", job)

    def _suggestions_landed(self, result) -> None:
        # One at a time: the whole set selected would take one key as the label of all of them.
        ids = result.item_ids
        self.to_label = [int(i) for i in ids]
        self.why = dict(zip(self.to_label, result.reasons, strict=False))
        self.galleryShown.emit(ids, "Label next")
        if not self.to_label:
            self._say("nothing left to label")
            return
        self._show_next_to_label()
        what = "typical images of distinct groups" if result.cold_start else "where a label helps most"
        first = f"; this one: {result.reasons[0]}" if result.reasons else ""
        self._say(f"{len(ids)} images to label next ({what}): press each one's class key, it moves on{first}")

    def _continue_label_next(self) -> None:
        """After the suggestion being labelled got its label, move on to the next one (a label
        given anywhere else leaves the person where they are)."""
        current = self.session.current
        if current is None or current not in self.to_label:
            return
        human = {i for i in self.to_label if self.session.info(i).source in HUMAN_SOURCES}  # a few: no pass over 1M
        if current not in human:
            return
        self.to_label = [i for i in self.to_label if i not in human]
        if self.to_label:
            self._show_next_to_label()
            text = f"{len(self.to_label)} suggestion(s) left: press the class key of the one shown"
            if self.why.get(self.to_label[0]):
                text += f" ({self.why[self.to_label[0]]})"
        else:
            text = "every suggestion has a label: Label next (Ctrl+L) for the next ones"
        QTimer.singleShot(0, lambda: self.message.emit(text, False))  # after the edit's own message

    def _show_next_to_label(self) -> None:
        item = self.to_label[0]
        self.session.set_selection([item])
        self.session.set_current(item)

    # ---- other lookups: duplicates, outliers, similar images, clusters, a preview ---------------
    def _map_lookup(self, name: str, compute) -> int:
        """Run ``compute(workflow, project, progress, cancel)`` as a lookup job when there is a map;
        ``_lookup_finished`` gets ``(name, its result)``. Returns the request id, or 0."""
        if self.session.map is None:
            return self._say(NO_MAP)
        project = self.session.project

        def job(progress, cancel):
            from explorer import workflow

            return (name, compute(workflow, project, progress, cancel))

        return self.lookups.start(name, job)

    def find_duplicates(self, threshold: float | None = None) -> int:
        return self._map_lookup("duplicates", lambda w, project, *_: w.near_duplicates(project, threshold))

    def find_outliers(self) -> int:
        """The least typical images (``workflow.quality``) in the gallery, outliers first."""
        return self._map_lookup("outliers", lambda w, project, *_: w.quality(project))

    def check_labels(self) -> int:
        return self._map_lookup("check", lambda w, project, _progress, cancel: w.check_labels(project, cancel))

    def find_clusters(self, resolution: float | None) -> int:
        """Find the map's clusters again at ``resolution`` (None: the default); returns the
        request id, or 0."""
        return self._map_lookup(
            "clusters", lambda w, project, progress, cancel: w.clusters(project, resolution, progress, cancel)
        )

    def find_similar(self, file: str | Path, n: int = SIMILAR_SHOWN) -> int:
        """The collection's ``n`` images most like ``file``, selected (so the map marks them) and in
        the gallery; returns the request id, or 0."""
        return self._map_lookup("similar", lambda w, project, *_: w.similar(project, Path(file), n))

    def _maybe_preview(self, _request: int, name: str) -> None:
        """A map is being computed and none is shown: a quick layout to look at meanwhile."""
        if name not in ("map", "build", "quick map") or self.session.map is not None:
            return
        project = self.session.project

        def job(progress, cancel):
            from explorer import workflow

            return ("preview", workflow.map_preview(project))

        self.lookups.start("preview", job)

    def _lookup_finished(self, _request: int, _name: str, result) -> None:
        from explorer.workflow import Suggestions

        if isinstance(result, Suggestions):
            self._suggestions_landed(result)
            return
        kind, found = result
        if kind == "duplicates":
            ids = np.array([i for a, b, _ in found for i in (a, b)], np.int64)
            self.galleryShown.emit(ids, f"Near-duplicates: {len(found)} pairs")
            self._say(f"{len(found)} pairs of near-duplicate images (side by side in the gallery)")
        elif kind == "similar":
            self.session.set_selection(found.item_ids)
            self.galleryShown.emit(found.item_ids, f"Like the image: {len(found.item_ids)} most similar")
            self._say(
                f"the {len(found.item_ids)} images most like it are selected (nearest: {found.paths[0]}, "
                f"similarity {found.similarities[0]:.2f})"
            )
        elif kind == "check":
            shown = found.item_ids[:CHECK_SHOWN]
            self.galleryShown.emit(shown, f"Check labels: the {len(shown)} most suspect of {len(found.paths)}")
            if not len(shown):
                self._say("no class has 3 labels yet: nothing to check")
                return
            says = found.graph_says[0] or "nothing"
            self._say(
                f"{len(shown)} labels to check, most suspect first; the first is labelled {found.given[0]}, "
                f"the other labels say {says} ({found.suspicion[0]:.0%} against)"
            )
        elif kind == "outliers":
            order = np.argsort(found.typicality, kind="stable")[:OUTLIERS_SHOWN]
            self.galleryShown.emit(found.item_ids[order], f"Outliers: the {len(order)} least typical images")
            twins = int((found.uniqueness[order] < 0.02).sum())
            self._say(
                f"the {len(order)} least typical images, most unusual first ({twins} of them have a near twin): "
                "broken files, wrong crops and strays show up here"
            )
        elif kind == "clusters":
            self.session.reload_clusters()
            self._say(f"{len(found.names)} clusters on the map (click a name to select its images)")
        elif kind == "preview" and found is not None:
            if self.session.map is None and self.jobs.busy:
                self.previewReady.emit(found.item_ids, found.xy)
