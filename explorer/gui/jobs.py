"""Running core functions off the GUI thread.

A job is any callable ``fn(progress=..., cancel=...)`` from the core (see ``explorer.jobs``).
``JobRunner`` runs it on its own worker thread with a fresh ``CancelToken``; the worker only
emits signals, which Qt delivers on the GUI thread.

Two policies:
- ``latest_wins=False`` (the heavy pipeline): one job at a time; ``start`` refuses while busy.
- ``latest_wins=True`` (re-computations such as propagation): every ``start`` cancels the
  previous request; jobs run one after another; only the newest request's result is delivered,
  the others are dropped by request id.

A latest-wins job over fewer than ``inline_below`` items (``start(..., size=n)``) runs at once on
the calling thread when nothing else is queued: a few ms, no thread hop, and its result is there
when ``start`` returns (a label on a small map shows at once; tests of small projects need no
waiting). Tests set ``inline_below`` to 0 to take the worker path.
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from explorer.jobs import Cancelled, CancelToken, Progress

log = logging.getLogger(__name__)

# A worker emits at most this often (seconds), except for a job's first and last report.
PROGRESS_INTERVAL = 0.05


class _CollectionsPaused:
    """``with collections_paused:``: no automatic garbage collection while a job builds many Python
    objects (an export: one per row). CPython's full collections walk every live object with the
    GIL held, several times while such a job grows (a CSV export of 100k rows: about 0.1 s each,
    the GUI thread waiting); reference counting still frees everything outside cycles meanwhile,
    and collections resume when the last such job ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._was_enabled = True

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._depth += 1

    def __exit__(self, *_exc) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._was_enabled:
                gc.enable()

    @property
    def active(self) -> bool:
        """Whether a job has collections paused now (the GUI thread's collector waits too)."""
        return self._depth > 0


collections_paused = _CollectionsPaused()


class _Relay(QObject):
    """Signals emitted from the worker thread; this object lives on the GUI thread."""

    progress = Signal(int, object)
    done = Signal(int, str, object)  # request id, outcome (finished/failed/cancelled), payload


class _Task(QRunnable):
    def __init__(self, request: int, fn: Callable, token: CancelToken, relay: _Relay) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.request, self.fn, self.token, self.relay = request, fn, token, relay
        self._last = 0.0

    def _progress(self, report: Progress) -> None:
        now = time.monotonic()
        final = report.total is not None and report.done >= report.total
        # Every training step's loss and every accuracy goes through (the curves need them all);
        # the rest is thinned.
        measured = report.loss is not None or any(key.endswith("accuracy") for key in report.metrics)
        if final or measured or now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self.relay.progress.emit(self.request, report)

    def run(self) -> None:
        try:
            if self.token.cancelled:
                raise Cancelled()
            result = self.fn(progress=self._progress, cancel=self.token)
        except Cancelled:
            outcome, payload = "cancelled", None
        except Exception as exc:  # shown to the person; the traceback goes to the log
            log.error("job failed:\n%s", traceback.format_exc())
            outcome, payload = "failed", _readable(exc)
        else:
            outcome, payload = "finished", result
        try:
            self.relay.done.emit(self.request, outcome, payload)
        except RuntimeError:  # the window (and its relay) went away while the job ran: nobody to tell
            log.info("job %s ended (%s) after its window closed", self.request, outcome)


def _readable(exc: Exception) -> str:
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    if type(exc).__name__ in ("ProjectError", "WorkflowError", "ImageError", "ExportError"):
        return text
    return f"{text} ({type(exc).__name__})"


class JobRunner(QObject):
    """Runs jobs on a private one-thread pool and reports on the GUI thread."""

    inline_below = 20_000  # items; see the module docstring

    started = Signal(int, str)  # request id, job name
    progress = Signal(int, str, object)  # request id, job name, Progress
    finished = Signal(int, str, object)  # request id, job name, result
    failed = Signal(int, str, str)  # request id, job name, message
    cancelled = Signal(int, str)
    busyChanged = Signal(bool)

    def __init__(self, latest_wins: bool = False, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.latest_wins = latest_wins
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._relay = _Relay(self)
        self._relay.progress.connect(self._on_progress)
        self._relay.done.connect(self._on_done)
        self._ids = itertools.count(1)
        self._running: dict[int, tuple[str, CancelToken]] = {}
        self.latest = 0

    @property
    def busy(self) -> bool:
        return bool(self._running)

    @property
    def current_name(self) -> str | None:
        return self._running[self.latest][0] if self.latest in self._running else None

    def start(self, name: str, fn: Callable, size: int | None = None) -> int:
        """Run ``fn(progress=, cancel=)``; returns the request id, or 0 when refused (busy).
        ``size``: how many items the work goes over; below ``inline_below`` (latest wins, nothing
        queued) it runs here at once and its outcome is emitted before this returns."""
        if self._running and not self.latest_wins:
            return 0
        if self.latest_wins and not self._running and size is not None and size < self.inline_below:
            return self._run_here(name, fn)
        for _, token in self._running.values():
            token.cancel()
        request = next(self._ids)
        token = CancelToken()
        was_busy = self.busy
        self._running[request] = (name, token)
        self.latest = request
        self._pool.start(_Task(request, fn, token, self._relay))
        self.started.emit(request, name)
        if not was_busy:
            self.busyChanged.emit(True)
        return request

    def _run_here(self, name: str, fn: Callable) -> int:
        """``start`` for small work: on this thread, outcome at once (no ``started``: nothing to watch)."""
        request = next(self._ids)
        self.latest = request
        try:
            result = fn(progress=lambda _report: None, cancel=CancelToken())
        except Cancelled:
            self.cancelled.emit(request, name)
        except Exception as exc:
            log.error("job failed:\n%s", traceback.format_exc())
            self.failed.emit(request, name, _readable(exc))
        else:
            self.finished.emit(request, name, result)
        return request

    def cancel(self) -> None:
        """Ask every running or queued job to stop (it reports ``cancelled``)."""
        for _, token in self._running.values():
            token.cancel()

    def wait(self, msecs: int = -1) -> bool:
        """Block until the worker is idle (used when the window closes)."""
        return self._pool.waitForDone(msecs)

    def _on_progress(self, request: int, report: Progress) -> None:
        if request == self.latest and request in self._running:
            self.progress.emit(request, self._running[request][0], report)

    def _on_done(self, request: int, outcome: str, payload) -> None:
        entry = self._running.pop(request, None)
        if entry is None:
            return
        name = entry[0]
        if request == self.latest:  # stale results are dropped, never applied
            if outcome == "finished":
                self.finished.emit(request, name, payload)
            elif outcome == "failed":
                self.failed.emit(request, name, payload)
            else:
                self.cancelled.emit(request, name)
        if not self._running:
            self.busyChanged.emit(False)
