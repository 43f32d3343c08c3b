"""How long `explorer train` trains: 100 epochs or ten minutes by default (TrainConfig's defaults),
the time alone with --max-minutes, every epoch asked for with --epochs alone, both when both are
given, and a resume that keeps the run's own end unless told otherwise."""

from explorer.cli import main
from explorer.store import Project
from tests.blobs import write_blobs

SMALL = ["--image-size", "16", "--device", "cpu", "--backbone", "small-cnn"]


def _last(folder):
    with Project(folder) as project:
        run = project.runs("train")[-1]
        return run.params, run.metrics


def test_train_flags_set_the_end_of_training(tmp_path):
    folder = tmp_path / "c"
    write_blobs(folder, per_class=8)
    assert main(["scan", str(folder)]) == 0

    # --max-minutes alone: no epoch cap (the cap of 30 used to end a ten-minute run after four)
    assert main(["train", str(folder), "--max-minutes", "0.02", *SMALL]) == 0
    params, metrics = _last(folder)
    assert params["epochs"] is None and params["max_minutes"] == 0.02
    assert metrics["stopped_by"] == "time"

    # --epochs alone: all of them, however long they take
    assert main(["train", str(folder), "--epochs", "2", *SMALL]) == 0
    params, metrics = _last(folder)
    assert (params["epochs"], params["max_minutes"]) == (2, None)
    assert (metrics["epochs_done"], metrics["stopped_by"]) == (2, "epochs")

    # resume with more epochs continues that run to them, still with no time limit
    assert main(["train", str(folder), "--resume", "--epochs", "3"]) == 0
    _, metrics = _last(folder)
    assert (metrics["epochs_done"], metrics["stopped_by"]) == (3, "epochs")

    # resume with the time alone lifts the run's epoch count: the minutes decide
    assert main(["train", str(folder), "--resume", "--max-minutes", "0.02"]) == 0
    _, metrics = _last(folder)
    assert metrics["epochs_done"] > 3 and metrics["stopped_by"] == "time"

    # --max-minutes with --epochs: both, whichever ends first
    assert main(["train", str(folder), "--epochs", "1", "--max-minutes", "5", *SMALL]) == 0
    params, metrics = _last(folder)
    assert (params["epochs"], params["max_minutes"], metrics["stopped_by"]) == (1, 5, "epochs")


def test_a_step_that_could_not_be_compiled_is_noted_in_the_run(tmp_path, monkeypatch):
    from explorer.ssl import compiled

    def broken(fn):
        def run(*args):
            raise RuntimeError("No working C++ compiler found")

        return run

    monkeypatch.setenv(compiled.COMPILE_VARIABLE, "1")
    monkeypatch.setattr(compiled.torch, "compile", broken)
    folder = tmp_path / "c"
    write_blobs(folder, per_class=8)
    assert main(["scan", str(folder)]) == 0
    assert main(["train", str(folder), "--epochs", str(compiled.CHECK_AT_STEP + 3), *SMALL]) == 0
    _, metrics = _last(folder)
    assert metrics["epochs_done"] == compiled.CHECK_AT_STEP + 3
    assert metrics["notes"].startswith("compiling the training step failed (RuntimeError: No working C++ compiler")
