"""Build > Refine with labels: runs in the background, the map it makes is shown, cancel keeps the old one."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def trained(window):
    """The window's project trained for one epoch, embedded and mapped, its folders as labels."""
    from explorer import workflow
    from explorer.exchange.folders import labels_from_folders
    from explorer.ssl.trainer import TrainConfig

    project = window.session.project
    workflow.train(project, TrainConfig(epochs=1, image_size=16, batch_size=20, device="cpu"))
    workflow.embed(project, device="cpu")
    workflow.make_map(project)
    labels_from_folders(project)
    window.session.reload_map()
    return window


def test_refine_from_the_window_shows_the_new_map(qtbot, trained):
    window = trained
    project = window.session.project
    window.settings.setValue("train/device", "cpu")
    before = project.latest_run("map").id
    assert window.refine_action.isEnabled()
    window.refine_action.trigger()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=300_000)
    row = window.jobs_panel.rows()[-1]
    assert row.state == "finished", row.state_label.text()
    after = project.latest_run("map").id
    assert after > before and window.session.map.run_id == after  # the window shows the refined map
    assert project.runs("train")[-1].metrics["refine_round"] >= 1
    assert "held-out" in window.statusBar().currentMessage()


def test_cancelling_refine_keeps_the_map_that_was_there(qtbot, trained):
    window = trained
    project = window.session.project
    before = project.latest_run("map").id
    window.refine_action.trigger()
    qtbot.waitUntil(lambda: window.jobs.busy, timeout=10_000)
    window.cancel_action.trigger()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=120_000)
    assert project.latest_run("map").id == before and window.session.map.run_id == before
    assert project.runs("train")[-1].status in ("cancelled", "done")
