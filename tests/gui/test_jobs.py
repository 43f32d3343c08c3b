"""The Qt job runner: results arrive on the GUI thread, stale requests are dropped."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QThread, Signal

from explorer.gui.jobs import JobRunner
from explorer.jobs import Progress


def slow(value, delay=0.2, steps=4):
    def job(progress, cancel):
        for k in range(steps):
            cancel.raise_if_cancelled()
            progress(Progress("work", k + 1, steps))
            time.sleep(delay / steps)
        return value

    return job


def test_one_job_at_a_time_with_progress_on_the_gui_thread(qtbot):
    runner = JobRunner()
    seen, threads = [], []
    runner.progress.connect(lambda _, name, report: (seen.append(report.done), threads.append(QThread.currentThread())))
    with qtbot.waitSignal(runner.finished, timeout=5000) as finished:
        assert runner.start("first", slow("a"))
        assert runner.start("second", slow("b")) == 0  # refused while busy
    assert finished.args[1:] == ["first", "a"]
    assert seen and seen[-1] == 4
    assert all(t is QThread.currentThread() for t in threads)
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
