"""The Qt job runner: results arrive on the GUI thread, stale requests are dropped."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal

from explorer.gui.jobs import JobRunner
from explorer.jobs import Progress


def slow(value, delay=0.2, steps=4, threads=None):
    """A job of ``steps`` progress reports over ``delay`` seconds; it notes its thread in ``threads``."""

    def job(progress, cancel):
        if threads is not None:
            threads.append(threading.get_ident())
        for k in range(steps):
            cancel.raise_if_cancelled()
            progress(Progress("work", k + 1, steps))
            time.sleep(delay / steps)
        return value

    return job


def test_one_job_at_a_time_runs_on_a_worker_and_reports_on_the_gui_thread(qtbot):
    gui = threading.get_ident()
    assert QThread.currentThread() is QCoreApplication.instance().thread()  # the test runs on the GUI thread
    runner = JobRunner()
    seen, handlers, worker = [], [], []
    runner.progress.connect(lambda _, name, report: (seen.append(report.done), handlers.append(threading.get_ident())))
    runner.finished.connect(lambda *_: handlers.append(threading.get_ident()))
    with qtbot.waitSignal(runner.finished, timeout=5000) as finished:
        assert runner.start("first", slow("a", threads=worker))
        assert runner.start("second", slow("b")) == 0  # refused while busy
    assert finished.args[1:] == ["first", "a"]
    assert seen and seen[-1] == 4
    assert worker and gui not in worker  # the work ran off the GUI thread...
    assert len(handlers) == len(seen) + 1 and set(handlers) == {gui}  # ...and its reports arrived on it
    qtbot.waitUntil(lambda: not runner.busy)


def test_latest_request_wins(qtbot):
    runner = JobRunner(latest_wins=True)
    results = []
    runner.finished.connect(lambda request, name, value: results.append((request, value)))
    first = runner.start("p", slow("old", delay=0.3))
    second = runner.start("p", slow("older", delay=0.3))
    third = runner.start("p", slow("new", delay=0.05))
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert results == [(third, "new")]
    assert first < second < third == runner.latest


def test_cancel_and_failure_are_reported(qtbot):
    runner = JobRunner()
    with qtbot.waitSignal(runner.cancelled, timeout=5000):
        runner.start("long", slow("x", delay=2.0, steps=40))
        runner.cancel()
    qtbot.waitUntil(lambda: not runner.busy)

    def broken(progress, cancel):
        raise ValueError("bad value in photo.png")

    with qtbot.waitSignal(runner.failed, timeout=5000) as failed:
        runner.start("broken", broken)
    assert "bad value in photo.png" in failed.args[2]


def test_many_emits_do_not_exhaust_true():
    # PySide6 6.12.0 on Python 3.11 drops a reference to True per emit and aborts the interpreter
    # after a few thousand; pyproject.toml keeps us below it. This fails loudly if that comes back.
    class Chatty(QObject):
        ping = Signal()

    import sys

    chatty = Chatty()
    before = sys.getrefcount(True)
    for _ in range(50_000):
        chatty.ping.emit()
    assert sys.getrefcount(True) >= before - 100  # the bad build loses one reference per emit


def test_small_work_runs_at_once_here_and_big_work_on_the_worker(qtbot):
    gui = threading.get_ident()
    runner = JobRunner(latest_wins=True)
    results = []
    runner.finished.connect(lambda request, _name, value: results.append((request, value)))
    small = []
    request = runner.start("small", slow("here", delay=0.0, threads=small), size=runner.inline_below - 1)
    assert results == [(request, "here")] and small == [gui] and not runner.busy  # done before start returned
    big = []
    request = runner.start("big", slow("there", threads=big), size=runner.inline_below)
    assert runner.busy and len(results) == 1
    # small work while a job is queued waits its turn on the worker: it never overtakes it
    after = runner.start("small again", slow("later", delay=0.0, threads=big), size=1)
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert results[-1] == (after, "later") and request < after  # the latest wins, as ever
    assert big and gui not in big


def test_collections_pause_while_a_job_needs_them_paused():
    import gc

    from explorer.gui.jobs import collections_paused

    assert gc.isenabled()
    with collections_paused:
        assert not gc.isenabled()
        with collections_paused:  # another such job at the same time
            assert not gc.isenabled()
        assert not gc.isenabled()  # the first one is still running
    assert gc.isenabled()
