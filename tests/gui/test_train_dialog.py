"""Training settings are remembered and reach the training job."""

from __future__ import annotations

from explorer.gui.train_dialog import TrainDialog, training_settings


def test_settings_are_remembered_and_validated(qtbot, settings):
    dialog = TrainDialog(settings)
    qtbot.addWidget(dialog)
    dialog.method.setCurrentIndex(dialog.method.findData("byol"))
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.epochs.setValue(3)
    dialog.minutes.setValue(2.5)
    dialog.processes.setValue(2)
    dialog.save()
    again = training_settings(settings)
    assert again == {
        "method": "byol",
        "backbone": "auto",
        "device": "cpu",
        "epochs": 3,
        "max_minutes": 2.5,
        "processes": 2,
    }
    settings.setValue("train/method", "telepathy")
    settings.setValue("train/epochs", "many")
    settings.setValue("train/processes", -3)
    fixed = training_settings(settings)
    assert fixed["method"] == "simclr" and fixed["epochs"] == 100 and fixed["processes"] == 1
    settings.setValue("train/epochs", 0)  # "no limit" on both: the default budget, not an endless run
    settings.setValue("train/max_minutes", 0.0)
    assert training_settings(settings)["epochs"] is None and training_settings(settings)["max_minutes"] == 10


def test_train_step_uses_the_settings(qtbot, window):
    """The remembered settings reach the trainer, which runs in a process of its own."""
    for key, value in (("method", "moco"), ("epochs", 1), ("backbone", "small-cnn"), ("device", "cpu")):
        window.settings.setValue(f"train/{key}", value)
    assert window.run_step("train")
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=120_000)
    assert window.jobs_panel.rows()[-1].state == "finished"
    run = window.session.project.runs("train")[-1]
    assert (run.params["method"], run.params["epochs"], run.params["backbone"]) == ("moco", 1, "small-cnn")


def test_training_in_the_window_plots_knn_accuracy_on_the_folder_labels(qtbot, window):
    from explorer.exchange.folders import labels_from_folders

    labels_from_folders(window.session.project)  # red/green/blue: true labels the curve can use
    window.settings.setValue("train/device", "cpu")
    window.settings.setValue("train/epochs", 2)
    window.settings.setValue("train/backbone", "small-cnn")
    assert window.run_step("train")
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=120_000)
    row = window.jobs_panel.rows()[-1]
    assert row.state == "finished", row.state_label.text()
    x, y = row.metric_curves["knn_accuracy"].getOriginalDataset()
    assert len(x) == 2 and all(0 <= a <= 1 for a in y)
    assert "kNN accuracy" in row.detail.text()


def test_evaluate_in_the_window_on_the_peoples_labels_shows_the_table(qtbot, window, monkeypatch):
    from explorer import workflow
    from explorer.exchange.folders import labels_from_folders

    project = window.session.project
    workflow.embed(project, encoder=workflow.PIXELS)
    asked = []
    monkeypatch.setattr("explorer.gui.main_window.QFileDialog.getOpenFileName", lambda *a: asked.append(a) or ("", ""))
    assert window.choose_evaluation() == 0 and len(asked) == 1  # no labels yet: it asks for a file
    labels_from_folders(project)
    assert window.choose_evaluation()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=60_000)
    assert len(asked) == 1
    text = window.evaluation_box.text()
    assert "current (pixels)" in text and "untrained small-cnn" in text and "60 labelled images" in text
    assert project.latest_run("evaluate").params["labels"] == "the labels in this project"


def test_window_trains_on_two_processes(qtbot, window):
    """The Processes setting reaches the trainer: extra training processes start from the window's
    worker thread, train with it, and the run records them."""
    for key, value in (("device", "cpu"), ("epochs", 1), ("backbone", "small-cnn"), ("processes", 2)):
        window.settings.setValue(f"train/{key}", value)
    assert window.run_step("train")
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=120_000)
    row = window.jobs_panel.rows()[-1]
    assert row.state == "finished", row.state_label.text()
    run = window.session.project.runs("train")[-1]
    assert run.status == "done" and run.params["processes"] == 2 and run.metrics["epochs_done"] == 1


def test_resume_training_from_the_window_continues_the_run(qtbot, window):
    """Build > Resume training continues the latest run from its checkpoint: the same run, with
    more epochs when the settings ask for them; it is offered only once a checkpoint exists."""
    from explorer import workflow
    from explorer.ssl.trainer import TrainConfig

    project = window.session.project
    assert not window.resume_action.isEnabled()
    config = TrainConfig(epochs=1, image_size=16, batch_size=16, backbone="small-cnn", device="cpu")
    run = workflow.train(project, config)
    window._update_state()
    assert window.resume_action.isEnabled()
    window.settings.setValue("train/epochs", 2)
    window.resume_action.trigger()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=120_000)
    assert window.jobs_panel.rows()[-1].state == "finished"
    runs = project.runs("train")
    assert [r.id for r in runs] == [run] and runs[-1].status == "done" and runs[-1].metrics["epochs_done"] == 2
