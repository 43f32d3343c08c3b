"""Progress bars and Ctrl-C handling for the command line."""

from __future__ import annotations

import shutil
import signal
import sys
import time
from contextlib import contextmanager
from typing import TextIO

from explorer.jobs import CancelToken, Progress


class ProgressBar:
    """A one-line progress bar with rate and ETA per step, drawn on stderr.

    On a terminal it redraws at most ten times a second, cut to the terminal's width; otherwise
    (logs, CI) it prints a whole line every few seconds and when a step ends. Kept instead of tqdm:
    tqdm writes its carriage-return redraws into logs too (one growing line in a CI log), and
    our steps report a message and metrics that tqdm's postfix would need wrapping for anyway.
    """

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._step: str | None = None
        self._started = 0.0
        self._start_done = 0
        self._last_draw = 0.0
        self._last: Progress | None = None

    def __call__(self, report: Progress) -> None:
        now = time.monotonic()
        if report.step != self._step:
            self.finish()
            self._step, self._started, self._start_done = report.step, now, report.done
        self._last = report
        ended = report.total is not None and report.done >= report.total
        if now - self._last_draw >= (0.1 if self.tty else 5.0) or ended:
            self._draw(report, now)
            self._last_draw = now

    def _draw(self, report: Progress, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = (report.done - self._start_done) / elapsed
        parts = [f"{report.step:<12}"]
        if report.total:
            frac = min(1.0, report.done / report.total)
            filled = int(frac * 24)
            parts.append(f"[{'#' * filled}{'.' * (24 - filled)}] {frac * 100:5.1f}% {report.done}/{report.total}")
            if rate > 0 and report.done < report.total:
                parts.append(f"ETA {_clock((report.total - report.done) / rate)}")
        else:
            parts.append(f"{report.done}")
        if rate > 0:
            parts.append(f"{rate:.1f}/s")
        parts += [
            f"{k}={v:.4g}" for k, v in report.metrics.items() if k in ("loss", "epoch", "images_per_s", "knn_accuracy")
        ]
        if report.message:
            parts.append(report.message)
        line = " ".join(parts)
        if self.tty:
            width = shutil.get_terminal_size((100, 24)).columns
            line = line if len(line) < width else line[: max(width - 2, 10)] + "…"  # a wrapped line cannot be redrawn
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the current step's line (draws its last state)."""
        if self._last is not None:
            self._draw(self._last, time.monotonic())
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()
        self._last = None
        self._step = None


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@contextmanager
def interrupt_cancels(token: CancelToken):
    """The first Ctrl-C asks the job to stop at its next batch; a second one aborts at once."""

    def handler(signum, frame):
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        sys.stderr.write("\nstopping after this batch (Ctrl-C again to abort now)\n")

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
