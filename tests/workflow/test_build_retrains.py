"""Build map (``run_all``) trains again when the chosen training settings differ from the last encoder's."""

from dataclasses import asdict

from explorer.ssl.trainer import TrainConfig
from explorer.store import Project
from explorer.workflow import pipeline
from tests.blobs import write_blobs


def _run_all(project: Project, config, monkeypatch) -> list:
    """run_all with training recorded (a run with a checkpoint file) instead of done; the calls made."""
    calls = []

    def fake_train(project, config=None, progress=None, cancel=None):
        config = config or TrainConfig()
        run = project.start_run("train", asdict(config))
        (project.run_dir(run) / "checkpoint.pt").write_bytes(b"x")
        project.finish_run(run, "done", {})
        calls.append(config)
        return run

    monkeypatch.setattr(pipeline, "train", fake_train)
    monkeypatch.setattr(pipeline, "embed", lambda *a, **k: calls.append("embed"))
    monkeypatch.setattr(pipeline, "make_map", lambda *a, **k: 0)
    pipeline.run_all(project, config)
    return calls


def test_build_trains_only_when_the_recipe_changed(tmp_path, monkeypatch):
    write_blobs(tmp_path / "c", per_class=3)
    with Project(tmp_path / "c") as project:
        first = _run_all(project, TrainConfig(method="simclr", epochs=5), monkeypatch)
        assert [type(c) for c in first] == [TrainConfig, str]  # trained, then embedded
        # the same recipe on another device or budget: the encoder is reused
        again = _run_all(project, TrainConfig(method="simclr", epochs=5, device="cpu", max_minutes=3), monkeypatch)
        assert again == ["embed"]
        longer = _run_all(project, TrainConfig(method="simclr", epochs=None, max_minutes=10), monkeypatch)
        assert longer == ["embed"]  # `train --max-minutes 10` on the command line, then the window's Build
        assert _run_all(project, None, monkeypatch) == ["embed"]  # no settings given: any encoder will do
        changed = _run_all(project, TrainConfig(method="byol", epochs=5), monkeypatch)
        assert [c.method for c in changed if isinstance(c, TrainConfig)] == ["byol"]
        assert len(project.runs("train")) == 2
