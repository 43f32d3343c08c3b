"""The jobs panel: every background job of the session with its progress, rate, ETA and Cancel;
a training job's loss curve (and kNN accuracy when it is reported) drawn live.

The panel watches ``JobRunner`` objects (``watch``); it never starts jobs. One row per request,
newest first; ended jobs stay as the session's history. Reports only append to numpy buffers;
a timer redraws what changed at most ``REFRESH_HZ`` times a second, so a job reporting every
optimiser step does not wait on painting.

``rate_and_eta``, ``duration_text`` and ``Pace`` are the rate/ETA arithmetic, shared with the
status bar.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from explorer.gui import style
from explorer.gui.jobs import JobRunner
from explorer.jobs import Progress

REFRESH_HZ = 10  # redraws of text, bars and curves per second, at most
MIN_RATE_SECONDS = 0.5  # no rate (and no ETA) before a step has run this long
LOSS_COLOUR = style.ACCENT
METRIC_COLOURS = ("#e69f00", "#009e73", "#cc79a7", "#56b4e9")


# ---- rate and ETA ----------------------------------------------------------------------------
def rate_and_eta(
    started: float, start_done: int, now: float, done: int, total: int | None, min_seconds: float = MIN_RATE_SECONDS
) -> tuple[float | None, float | None]:
    """(units per second, seconds left) of a step that was at ``start_done`` units at time
    ``started`` and is at ``done`` of ``total`` at ``now`` (seconds on one clock).

    The rate is None until the step has run ``min_seconds`` and made progress; the ETA is None
    without a rate or without a ``total``.
    """
    elapsed = now - started
    if elapsed < min_seconds or done <= start_done:
        return None, None
    rate = (done - start_done) / elapsed
    eta = max(0.0, (total - done) / rate) if total else None
    return rate, eta


def duration_text(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on (negative counts as 0)."""
    seconds = int(max(0, seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass
class Pace:
    """Where the current step of a job started, so its rate counts that step only."""

    step: str | None = None
    started: float = 0.0
    start_done: int = 0

    def update(self, report: Progress, now: float) -> tuple[float | None, float | None]:
        """Take a report received at ``now``; returns (rate, eta) as ``rate_and_eta``."""
        if report.step != self.step or report.done < self.start_done:
            self.step, self.started, self.start_done = report.step, now, report.done
        return rate_and_eta(self.started, self.start_done, now, report.done, report.total)


# ---- curves ----------------------------------------------------------------------------------
class Series:
    """A growing (x, y) float64 series: appends amortised O(1), read as array views.

    A point at the same x as the last one replaces it (a job repeating its latest metric).
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._xy = np.empty((2, capacity), np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, x: float, y: float) -> None:
        n = self._n
        if n and self._xy[0, n - 1] == x:
            self._xy[1, n - 1] = y
            return
        if n == self._xy.shape[1]:
            grown = np.empty((2, 2 * n), np.float64)
            grown[:, :n] = self._xy
            self._xy = grown
        self._xy[:, n] = (x, y)
        self._n = n + 1

    @property
    def x(self) -> np.ndarray:
        return self._xy[0, : self._n]

    @property
    def y(self) -> np.ndarray:
        return self._xy[1, : self._n]


def _plot(title: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background=style.PLOT)
    plot.setMinimumSize(120, 120)
    plot.setMaximumHeight(180)
    plot.setTitle(title, color=style.MUTED, size="9pt")
    plot.setLabel("bottom", "step", color=style.MUTED)
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setMenuEnabled(False)
    return plot


def _curve(plot: pg.PlotWidget, colour: str, name: str) -> pg.PlotDataItem:
    curve = plot.plot(pen=pg.mkPen(colour, width=1.5), name=name)
    curve.setDownsampling(auto=True, method="peak")  # 100k steps still draw quickly
    curve.setClipToView(True)
    return curve


# ---- one job ---------------------------------------------------------------------------------
class JobRow(QFrame):
    """One job: name, state line, progress bar, Cancel while it runs, and its curves.

    Curves appear with the first report that carries them: the loss from ``Progress.loss``
    (one point per optimiser step, x = ``done``), or from ``metrics["loss"]`` for a job that
    never sets ``loss``; any metric whose name ends in ``accuracy`` (e.g. ``knn_accuracy``)
    on a second plot.
    """

    cancelRequested = Signal()

    def __init__(self, name: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Panel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.name = name
        self.state = "running"  # running, finished, failed, cancelled
        self.report: Progress | None = None
        self.pace = Pace()
        self.rate: float | None = None
        self.eta: float | None = None
        self.started = time.monotonic()
        self.ended: float | None = None
        self.loss = Series()
        self.metrics: dict[str, Series] = {}
        self.latest_metrics: dict[str, float] = {}
        self._loss_from_field = False
        self.loss_plot: pg.PlotWidget | None = None
        self.loss_curve: pg.PlotDataItem | None = None
        self.metric_plot: pg.PlotWidget | None = None
        self.metric_curves: dict[str, pg.PlotDataItem] = {}
        self._dirty = True

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        top = QHBoxLayout()
        self.title = QLabel(title)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.state_label = QLabel("starting…")
        self.state_label.setObjectName("Muted")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop this job after its current batch (its partial result is not used)")
        self.cancel_button.clicked.connect(self.cancelRequested.emit)
        self.state_label.setWordWrap(True)
        top.addWidget(self.title, 1)
        top.addWidget(self.cancel_button)
        layout.addLayout(top)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.bar.setTextVisible(True)
        layout.addWidget(self.bar)
        layout.addWidget(self.state_label)
        self.detail = QLabel("")
        self.detail.setObjectName("Muted")
        self.detail.setWordWrap(True)
        layout.addWidget(self.detail)
        self._layout = layout

    @property
    def running(self) -> bool:
        return self.state == "running"

    # Called for every report: only numbers are stored here, widgets change in ``refresh``.
    def take(self, report: Progress, now: float) -> None:
        self.report = report
        self.rate, self.eta = self.pace.update(report, now)
        if report.loss is not None:
            self._loss_from_field = True
            self.loss.append(report.done, report.loss)
        elif not self._loss_from_field and "loss" in report.metrics:
            self.loss.append(report.done, report.metrics["loss"])
        for key, value in report.metrics.items():
            self.latest_metrics[key] = float(value)
            if key.endswith("accuracy"):
                self.metrics.setdefault(key, Series(64)).append(report.done, value)
        self._dirty = True

    def end(self, state: str, message: str = "") -> None:
        self.refresh()  # the last reports first, so a failed job's bar shows where it stopped
        self.state = state
        self.ended = time.monotonic()
        self.cancel_button.hide()
        took = duration_text(self.ended - self.started)
        if state == "finished":
            self.bar.setRange(0, 1)
            self.bar.setValue(1)
            self.bar.setFormat("done")
            self.state_label.setText(f"finished in {took}")
        else:
            if self.bar.maximum() == 0:  # busy indicator: stop it
                self.bar.setRange(0, 1)
                self.bar.setValue(0)
            self.state_label.setText(f"{state} after {took}")
            self.bar.setEnabled(False)
        if message:
            self.detail.setText(message)
            if state == "failed":
                self.detail.setStyleSheet(f"color: {style.DANGER}")
        self._dirty = True
        self.refresh()

    def refresh(self) -> None:
        """Show what the reports changed since the last refresh."""
        if not self._dirty:
            return
        self._dirty = False
        report = self.report
        if report is not None and self.running:
            parts = [report.step]
            if report.total:
                self.bar.setRange(0, 1000)
                self.bar.setValue(int(1000 * (report.fraction or 0)))
                self.bar.setFormat(f"{report.done:,}/{report.total:,}")
            else:
                self.bar.setRange(0, 0)
                parts.append(f"{report.done:,}")
            if self.rate is not None:
                parts.append(f"{self.rate:,.1f}/s")
            if self.eta is not None:
                parts.append(f"ETA {duration_text(self.eta)}")
            if report.message:
                parts.append(report.message)
            self.state_label.setText(" · ".join(parts))
        shown = [f"{_metric_title(k)} {v:.4g}" for k, v in self.latest_metrics.items() if k in _SHOWN_METRICS]
        if len(self.loss):
            shown.insert(0, f"loss {self.loss.y[-1]:.4g}")
        if shown and self.state != "failed":
            self.detail.setText(" · ".join(dict.fromkeys(shown)))
        self._draw_curves()

    def _draw_curves(self) -> None:
        if len(self.loss):
            if self.loss_curve is None:
                self.loss_plot = _plot("training loss")
                self.loss_curve = _curve(self.loss_plot, LOSS_COLOUR, "loss")
                self._layout.addWidget(self.loss_plot)
            self.loss_curve.setData(self.loss.x, self.loss.y)
        for key, series in self.metrics.items():
            if self.metric_plot is None:
                self.metric_plot = _plot("accuracy")
                self.metric_plot.addLegend(offset=(10, 10))
                self._layout.addWidget(self.metric_plot)
            curve = self.metric_curves.get(key)
            if curve is None:
                colour = METRIC_COLOURS[len(self.metric_curves) % len(METRIC_COLOURS)]
                curve = _curve(self.metric_plot, colour, _metric_title(key))
                curve.setSymbol("o")
                curve.setSymbolSize(5)
                curve.setSymbolBrush(colour)
                self.metric_curves[key] = curve
            curve.setData(series.x, series.y)


_SHOWN_METRICS = ("images_per_s", "lr", "epoch", "knn_accuracy", "linear_probe_accuracy", "accuracy")


def _metric_title(key: str) -> str:
    return {"knn_accuracy": "kNN accuracy", "images_per_s": "images/s"}.get(key, key.replace("_", " "))


# ---- the panel -------------------------------------------------------------------------------
class JobsPanel(QWidget):
    """Rows for the jobs of the watched runners, newest first.

    ``watch(runner, history=True)``: with ``history=False`` the runner's rows go away when their
    job ends (for frequent re-computations such as propagation). ``titles`` maps job names to
    what the rows say (e.g. ``{"train": "Training the encoder"}``).
    """

    runningChanged = Signal(int)  # how many watched jobs are running now

    def __init__(
        self, titles: dict[str, str] | None = None, history_limit: int = 50, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("Panel")
        self.titles = dict(titles or {})
        self.history_limit = history_limit
        self._rows: dict[tuple[int, int], JobRow] = {}  # (id(runner), request) -> row, oldest first
        self._runners: dict[int, tuple[JobRunner, bool]] = {}

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.empty_text = QLabel("No jobs yet: training, embedding, mapping and exports show here.")
        self.empty_text.setObjectName("Muted")
        self.empty_text.setWordWrap(True)
        self.empty_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(self.empty_text)
        self._list = QWidget()
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(6, 6, 6, 6)
        self._list_layout.setSpacing(6)
        self._list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self._list)
        outer.addWidget(scroll, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / REFRESH_HZ))
        self._timer.timeout.connect(self.refresh)

    # ---- watching -----------------------------------------------------------------------
    def watch(self, runner: JobRunner, history: bool = True) -> None:
        """Show ``runner``'s jobs from now on."""
        key = id(runner)
        if key in self._runners:
            return
        self._runners[key] = (runner, history)
        runner.started.connect(lambda request, name: self._started(runner, request, name))
        runner.progress.connect(lambda request, _name, report: self._progress(runner, request, report))
        runner.finished.connect(lambda request, _name, _result: self._ended(runner, request, "finished"))
        runner.failed.connect(lambda request, _name, message: self._ended(runner, request, "failed", message))
        runner.cancelled.connect(lambda request, _name: self._ended(runner, request, "cancelled"))

    def row(self, runner: JobRunner, request: int) -> JobRow | None:
        return self._rows.get((id(runner), request))

    def rows(self) -> list[JobRow]:
        """Every row, newest first."""
        return list(self._rows.values())[::-1]

    def running(self) -> list[JobRow]:
        return [r for r in self.rows() if r.running]

    def clear_history(self) -> None:
        """Remove the rows of jobs that ended."""
        for key, row in list(self._rows.items()):
            if not row.running:
                self._remove(key)

    def refresh(self) -> None:
        """Redraw the rows that changed (the timer calls this while jobs run)."""
        for row in self._rows.values():
            row.refresh()
        if not any(r.running for r in self._rows.values()):
            self._timer.stop()

    # ---- runner signals -----------------------------------------------------------------
    def _started(self, runner: JobRunner, request: int, name: str) -> None:
        # A latest-wins runner never reports on the requests a new one replaced: drop their rows.
        for key, row in list(self._rows.items()):
            if key[0] == id(runner) and row.running:
                self._remove(key)
        row = JobRow(name, self.titles.get(name, name))
        row.cancelRequested.connect(runner.cancel)
        self._rows[(id(runner), request)] = row
        self._list_layout.insertWidget(0, row)
        self._trim()
        self.empty_text.hide()
        self._timer.start()
        self.runningChanged.emit(len(self.running()))

    def _progress(self, runner: JobRunner, request: int, report: Progress) -> None:
        row = self._rows.get((id(runner), request))
        if row is not None and row.running:
            row.take(report, time.monotonic())

    def _ended(self, runner: JobRunner, request: int, state: str, message: str = "") -> None:
        key = (id(runner), request)
        row = self._rows.get(key)
        if row is None:
            return
        row.end(state, message)
        if not self._runners[id(runner)][1] and state != "failed":  # a failure stays to be read
            self._remove(key)
        self.runningChanged.emit(len(self.running()))

    def _remove(self, key: tuple[int, int]) -> None:
        row = self._rows.pop(key)
        self._list_layout.removeWidget(row)
        row.deleteLater()
        self.empty_text.setVisible(not self._rows)

    def _trim(self) -> None:
        ended = [key for key, row in self._rows.items() if not row.running]
        for key in ended[: max(0, len(self._rows) - self.history_limit)]:
            self._remove(key)
