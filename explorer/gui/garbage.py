"""Python's cyclic garbage collection on the GUI thread only.

Automatic collection runs on whichever thread happens to allocate. When it frees a Qt object
there (a widget, a runner or a window left in a reference cycle), Qt's destructor takes its own
locks and calls back into PySide for the GIL, while the GUI thread may hold the GIL and wait for
one of those locks: the process hangs. CI saw it twice, a refine job's thread stuck in
``QObject::~QObject`` under ``gc_collect_main`` and a jobs-panel test that never ended. So while
the window runs, automatic collection is off and a GUI-thread timer collects whenever Python's
own thresholds say it would have (pyqtgraph ships the same idea in
``pyqtgraph.util.garbage_collector``). Reference counting still frees everything outside cycles
at once, on any thread.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

from explorer.gui.jobs import collections_paused

INTERVAL_MS = 500

_installed: GuiThreadCollections | None = None


class GuiThreadCollections(QObject):
    """Collect on a timer on the thread that makes it (the GUI thread); ``stop()`` hands
    collection back to Python."""

    def __init__(self, interval_ms: int = INTERVAL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.was_enabled = gc.isenabled()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.collect)
        self.timer.start()

    def collect(self) -> None:
        """One generation at a time, as Python would have: young objects often, old ones rarely."""
        if collections_paused.active:  # an export building one object per row: later
            return
        counts = gc.get_count()
        generation = -1
        for level in range(3):
            if counts[level] > self.threshold[level]:
                generation = level
        if generation >= 0:
            gc.collect(generation)

    def stop(self) -> None:
        self.timer.stop()
        gc.collect()
        if self.was_enabled:
            gc.enable()


def collect_on_gui_thread() -> GuiThreadCollections:
    """Switch to GUI-thread collection (once per process; call it on the GUI thread)."""
    global _installed
    if _installed is None:
        _installed = GuiThreadCollections()
    return _installed


def collect_anywhere() -> None:
    """Back to Python's automatic collection (the tests do this after each test with Qt)."""
    global _installed
    if _installed is not None:
        _installed.stop()
        _installed.deleteLater()
        _installed = None
