"""The jobs panel: rows per job through a real JobRunner, live loss and accuracy curves, Cancel,
and the rate/ETA arithmetic."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from explorer.gui import jobs as gui_jobs
from explorer.gui.jobs import JobRunner
from explorer.gui.jobs_panel import JobsPanel, Pace, Series, duration_text, rate_and_eta
from explorer.jobs import Progress

STEPS = 200


def training(steps: int = STEPS, knn_every: int = 50, gate: threading.Event | None = None, step_s: float = 0.0):
    """A fake training job: one report per step with a decreasing loss (and ``loss`` set, as the
    trainer does), kNN accuracy every ``knn_every`` steps, an epoch summary at the end.

    ``step_s`` sleeps per step like a real step does outside the GIL: a pure-Python loop that
    reports tens of thousands of steps a second holds the GIL so that the GUI thread drains its
    queue at a few hundred slots a second, and a long job then takes minutes to reach Cancel."""

    def job(progress, cancel):
        for step in range(1, steps + 1):
            cancel.raise_if_cancelled()
            if gate is not None:
                gate.wait(5)
            if step_s:
                time.sleep(step_s)
            loss = 5.0 * np.exp(-step / 60.0) + 0.1
            metrics = {"loss": loss, "lr": 0.01, "images_per_s": 500.0}
            if step % knn_every == 0:
                metrics["knn_accuracy"] = 0.5 + step / (2 * steps)
            progress(Progress("train", step, steps, "epoch 1/1", metrics, loss=loss))
        # the per-epoch report: mean loss in metrics, no point on the curve
        progress(Progress("train", steps, steps, "epoch 1/1 done", {"loss": 9.9}))
        return "trained"

    return job


@pytest.fixture
def panel(qtbot):
    widget = JobsPanel(titles={"train": "Training the encoder"})
    qtbot.addWidget(widget)
    widget.resize(420, 500)
    widget.show()
    return widget


def test_rate_and_eta_on_known_numbers():
    # 100 units in 4 s, 400 left: 25/s, 16 s
    assert rate_and_eta(10.0, 50, 14.0, 150, 550) == (25.0, 16.0)
    assert rate_and_eta(10.0, 50, 14.0, 150, None) == (25.0, None)  # no total, no ETA
    assert rate_and_eta(10.0, 50, 10.2, 60, 550) == (None, None)  # too early to say
    assert rate_and_eta(10.0, 50, 14.0, 50, 550) == (None, None)  # no progress yet
    assert rate_and_eta(0.0, 0, 2.0, 12, 10) == (6.0, 0.0)  # past the total: no negative ETA
    assert duration_text(59.9) == "0:59"
    assert duration_text(61) == "1:01"
    assert duration_text(3 * 3600 + 62) == "3:01:02"
    assert duration_text(-5) == "0:00"


def test_pace_restarts_with_each_step():
    pace = Pace()
    assert pace.update(Progress("embed", 0, 100), now=0.0) == (None, None)
    assert pace.update(Progress("embed", 50, 100), now=2.0) == (25.0, 2.0)
    # a new step counts from where it started, not from the job's start
    assert pace.update(Progress("map", 10, 20), now=10.0) == (None, None)
    assert pace.update(Progress("map", 15, 20), now=11.0) == (5.0, 1.0)


def test_series_grows_and_replaces_a_repeated_x():
    series = Series(capacity=2)
    for k in range(5):
        series.append(k, 10 - k)
    series.append(4, 0.5)
    assert series.x.tolist() == [0, 1, 2, 3, 4] and series.y.tolist() == [10, 9, 8, 7, 0.5]


def test_training_job_draws_every_loss_point_and_knn_accuracy(qtbot, panel, monkeypatch):
    # Every report crosses to the GUI thread (the runner's throttle off), so every step is a point.
    monkeypatch.setattr(gui_jobs, "PROGRESS_INTERVAL", 0.0)
    runner = JobRunner()
    panel.watch(runner)
    with qtbot.waitSignal(runner.finished, timeout=10_000):
        request = runner.start("train", training())
    row = panel.row(runner, request)
    assert row.state == "finished" and row.cancel_button.isHidden()
    x, y = row.loss_curve.getOriginalDataset()
    assert x.tolist() == list(range(1, STEPS + 1))  # the epoch summary added no point
    assert np.all(np.diff(y) < 0) and y[-1] == pytest.approx(5.0 * np.exp(-STEPS / 60.0) + 0.1)
    ax, ay = row.metric_curves["knn_accuracy"].getOriginalDataset()
    assert ax.tolist() == [50, 100, 150, 200] and ay.tolist() == pytest.approx([0.625, 0.75, 0.875, 1.0])
    assert "finished" in row.state_label.text()
    assert "kNN accuracy 1" in row.detail.text()
    assert panel.rows() == [row] and not panel.empty_text.isVisible()


def test_with_the_runner_throttle_the_curve_still_ends_at_the_last_step(qtbot, panel):
    runner = JobRunner()
    panel.watch(runner)
    with qtbot.waitSignal(runner.finished, timeout=10_000):
        request = runner.start("train", training())
    x, y = panel.row(runner, request).loss_curve.getOriginalDataset()
    assert 1 <= len(x) <= STEPS and x[-1] == STEPS and np.all(np.diff(x) > 0) and np.all(np.diff(y) < 0)


def test_live_progress_then_cancel_from_the_panel_button(qtbot, panel, monkeypatch):
    monkeypatch.setattr(gui_jobs, "PROGRESS_INTERVAL", 0.0)
    runner = JobRunner()
    panel.watch(runner)
    gate = threading.Event()
    request = runner.start("train", training(steps=100_000, gate=gate, step_s=0.002))
    row = panel.row(runner, request)
    assert row.running
    qtbot.waitUntil(row.cancel_button.isVisible)
    gate.set()
    qtbot.waitUntil(lambda: row.loss_curve is not None and len(row.loss_curve.getOriginalDataset()[0]) > 5)
    assert row.bar.maximum() == 1000 and "/100,000" in row.bar.format()
    assert row.state_label.text().startswith("train")
    with qtbot.waitSignal(runner.cancelled, timeout=5000):
        qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    assert row.state == "cancelled" and "cancelled" in row.state_label.text()
    qtbot.waitUntil(lambda: not runner.busy)
    assert len(row.loss) < 100_000


def test_failed_and_history_and_several_runners(qtbot, panel):
    pipeline, propagation = JobRunner(), JobRunner(latest_wins=True)
    panel.watch(pipeline)
    panel.watch(propagation, history=False)

    def broken(progress, cancel):
        progress(Progress("embed", 1, 10))
        raise ValueError("bad value in photo.png")

    with qtbot.waitSignal(pipeline.failed, timeout=5000):
        failed = pipeline.start("embed", broken)
    row = panel.row(pipeline, failed)
    assert row.state == "failed" and "bad value in photo.png" in row.detail.text()
    assert row.bar.value() == 100 and row.bar.format() == "1/10"  # where it stopped

    def quick(progress, cancel):
        progress(Progress("propagate", 1, 1))
        return 1

    with qtbot.waitSignal(propagation.finished, timeout=5000) as done:
        propagation.start("propagate", quick)
    assert panel.row(propagation, done.args[0]) is None  # no history for this runner
    with qtbot.waitSignal(pipeline.finished, timeout=5000):
        second = pipeline.start("export", quick)
    assert [r.name for r in panel.rows()] == ["export", "embed"]
    assert panel.row(pipeline, second).state == "finished"
    panel.clear_history()
    assert panel.rows() == [] and panel.empty_text.isVisible()


def test_a_replaced_latest_wins_request_leaves_no_stuck_row(qtbot, panel):
    runner = JobRunner(latest_wins=True)
    panel.watch(runner)
    gate = threading.Event()

    def waiting(progress, cancel):
        gate.wait(5)
        cancel.raise_if_cancelled()
        return 0

    runner.start("propagate", waiting)
    with qtbot.waitSignal(runner.finished, timeout=5000):
        last = runner.start("propagate", lambda progress, cancel: 1)
        gate.set()
    assert [r.state for r in panel.rows()] == ["finished"]
    assert panel.rows()[0] is panel.row(runner, last) and panel.running() == []


def test_history_keeps_the_newest_rows(qtbot):
    panel = JobsPanel(history_limit=2)
    qtbot.addWidget(panel)
    runner = JobRunner()
    panel.watch(runner)
    for k in range(3):
        with qtbot.waitSignal(runner.finished, timeout=5000):
            runner.start(f"job{k}", lambda progress, cancel: None)
        qtbot.waitUntil(lambda: not runner.busy)
    assert [r.name for r in panel.rows()] == ["job2", "job1"]
