"""Propagation advises `refine` when the human labels have doubled since the encoder last learned from labels."""

from explorer.store import Project
from explorer.workflow.labelling import ADVISE_FROM, refine_advice
from tests.helpers import write_blobs


def _map_of(project: Project, encoder: str) -> int:
    embed = project.start_run("embed", {"encoder": encoder})
    project.finish_run(embed, "done", {})
    mapped = project.start_run("map", {"embed_run": embed})
    project.finish_run(mapped, "done", {})
    return mapped


def _trained(project: Project, metrics: dict) -> int:
    run = project.start_run("train", {})
    project.finish_run(run, "done", metrics)
    return run


def test_advice_follows_the_labels_the_encoder_learned_from(tmp_path):
    write_blobs(tmp_path / "c", per_class=2)
    with Project(tmp_path / "c") as project:
        plain = _map_of(project, f"train run {_trained(project, {'epochs_done': 3})}")
        assert refine_advice(project, plain, ADVISE_FROM - 1) == ""  # too few to check a refine
        assert "has not learned from any labels" in refine_advice(project, plain, ADVISE_FROM)
        refined = _map_of(project, f"train run {_trained(project, {'labels_seen': 30, 'human_labels': 24})}")
        assert refine_advice(project, refined, 59) == ""
        assert "60 human labels, it learned from 30" in refine_advice(project, refined, 60)
        older = _map_of(project, f"train run {_trained(project, {'human_labels': 24})}")  # before labels_seen
        assert refine_advice(project, older, 47) == "" and refine_advice(project, older, 48)
        for encoder in ("pixels", "/models/resnet.pt", "train run 999"):  # nothing to refine from
            assert refine_advice(project, _map_of(project, encoder), 500) == ""
