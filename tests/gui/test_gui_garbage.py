"""Garbage in reference cycles is freed on the GUI thread, never by a worker that allocates."""

from __future__ import annotations

import gc
import threading

from explorer.gui.garbage import collect_on_gui_thread
from explorer.gui.jobs import collections_paused


def _cycle(freed_on: list) -> None:
    """Leave one object in a reference cycle that notes the thread that frees it."""

    class Cycle:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            freed_on.append(threading.get_ident())

    Cycle()


def _churn(results: list) -> None:
    """Allocate as a job does: enough containers, kept, for many automatic collections."""
    results.append([[k] for k in range(200_000)])


def test_cycles_are_freed_on_the_gui_thread_not_by_a_worker(qtbot):
    collect_on_gui_thread()
    assert not gc.isenabled()
    freed_on: list = []
    _cycle(freed_on)
    results: list = []
    worker = threading.Thread(target=_churn, args=(results,))
    worker.start()
    worker.join()
    assert results and freed_on == []  # the worker allocated plenty and collected nothing
    qtbot.waitUntil(lambda: bool(freed_on), timeout=5000)
    assert freed_on == [threading.get_ident()]


def test_the_gui_collector_waits_while_a_job_has_collections_paused(qtbot):
    collector = collect_on_gui_thread()
    freed_on: list = []
    results: list = []
    with collections_paused:
        _cycle(freed_on)
        _churn(results)
        qtbot.wait(3 * collector.timer.interval())
        assert freed_on == []
    qtbot.waitUntil(lambda: bool(freed_on), timeout=5000)
