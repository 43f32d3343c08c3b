"""A new encoder that groups the labelled images worse than raw pixels is not mapped silently."""

import shutil

import pytest
import torch

from explorer import workflow
from explorer.cli import main
from explorer.exchange.folders import labels_from_folders
from explorer.ssl.checkpoint import load_checkpoint, save_checkpoint
from explorer.ssl.trainer import TrainConfig
from explorer.store import Project

pytestmark = pytest.mark.slow


def _blind_encoder(project: Project, out) -> str:
    """A trained checkpoint with every conv weight zeroed: it maps every image to the same vector."""
    run = workflow.train(project, TrainConfig(epochs=1, image_size=16, batch_size=20, device="cpu"))
    state = load_checkpoint(project.run_dir(run) / "checkpoint.pt")
    state["encoder"] = {k: torch.zeros_like(v) if v.ndim == 4 else v for k, v in state["encoder"].items()}
    save_checkpoint(state, out)
    return str(out)


@pytest.fixture
def labelled(tmp_path):
    from tests.gui.conftest import build_project

    project = build_project(tmp_path / "shapes", with_map=False)  # red discs, green squares, blue triangles
    labels_from_folders(project)  # 60 labels: enough to check
    yield project
    project.close()


def test_raw_pixels_are_mapped_when_they_beat_the_encoder_on_the_labels(labelled, tmp_path, capsys):
    blind = _blind_encoder(labelled, tmp_path / "blind.pt")
    run = workflow.embed(labelled, blind, device="cpu")
    current = labelled.run(run)
    assert current.params["encoder"] == workflow.PIXELS and "raw pixels beat" in current.metrics["note"]
    lost = labelled.run(current.metrics["chosen_over"])
    check = lost.metrics["checked_on_labels"]
    assert check["labels"] == 60 and check["pixels"] > check["encoder"] + check["margin"]
    assert workflow.current_embeddings(labelled).run_id == run
    shutil.rmtree(labelled.state_dir / "runs" / str(run))  # the CLI says so too
    assert main(["embed", str(labelled.root), "--encoder", blind, "--device", "cpu", "--fresh"]) == 0
    assert "raw pixels beat" in capsys.readouterr().out


def test_a_good_encoder_is_kept_and_its_check_recorded(labelled):
    run = workflow.train(labelled, TrainConfig(epochs=2, image_size=16, batch_size=20, device="cpu"))
    embedded = workflow.embed(labelled, str(run), device="cpu")
    metrics = labelled.run(embedded).metrics
    assert labelled.run(embedded).params["encoder"] == f"train run {run}"
    assert (
        metrics["checked_on_labels"]["encoder"]
        >= metrics["checked_on_labels"]["pixels"] - metrics["checked_on_labels"]["margin"]
    )
