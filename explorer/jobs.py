"""The plain-Python contract for long work.

Every long step (scan, train, embed, map, propagate, export) is a function that takes a
``progress`` callback and a ``cancel`` token. It calls ``progress(Progress(...))`` now and then
and ``cancel.raise_if_cancelled()`` at least once per batch. The CLI draws a progress bar from
the reports, the GUI forwards them as Qt signals from a worker thread, tests pass nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


class Cancelled(Exception):
    """Raised inside a job when its cancel token was set; the job leaves no broken files."""


class CancelToken:
    """A thread-safe flag a job checks between batches. ``event``: a flag shared with another
    process (``multiprocessing`` context's ``Event()``), for a job run there."""

    def __init__(self, event=None) -> None:
        self._event = event if event is not None else threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass
class Progress:
    """One report from a job.

    ``done`` and ``total`` count the job's own units (images, batches, epochs); ``total`` is
    None when unknown. ``metrics`` carries numbers worth plotting (e.g. ``{"loss": 4.1}``).
    ``loss`` is set on the training loss curve's points only: one report per optimiser step, with
    ``done`` = the global step number (1, 2, ...) and ``loss`` = that step's training loss; other
    reports leave it None.
    """

    step: str
    done: int
    total: int | None = None
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    loss: float | None = None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressFn = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """A progress callback that ignores reports."""
