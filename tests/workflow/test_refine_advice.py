"""Propagation advises `refine` when the human labels have doubled since the last refine, kept or undone."""

from explorer.store import Project
from explorer.workflow.labelling import ADVISE_FROM, refine_advice
from tests.blobs import write_blobs


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


def test_advice_follows_the_labels_the_last_refine_had(tmp_path):
    write_blobs(tmp_path / "c", per_class=2)
    with Project(tmp_path / "c") as project:
        first = _trained(project, {"epochs_done": 3})
        plain = _map_of(project, f"train run {first}")
        assert refine_advice(project, plain, ADVISE_FROM - 1) == ""  # too few to check a refine
        assert "no refine yet" in refine_advice(project, plain, ADVISE_FROM)
        refined = _map_of(project, f"train run {_trained(project, {'labels_seen': 30, 'refine_round': 2})}")
        assert refine_advice(project, refined, 59) == ""
        assert "60 human labels, the last refine had 30" in refine_advice(project, refined, 60)
        # a refine that did not help was undone (the map is the plain encoder's again): no nagging
        _trained(project, {"labels_seen": 60, "human_labels": 48, "refine_round": 1})
        back = _map_of(project, f"train run {first}")
        assert refine_advice(project, back, 70) == "" and refine_advice(project, back, 120)
        _trained(project, {"human_labels": 80, "refine_round": 1})  # an older refine, before labels_seen
        assert refine_advice(project, back, 159) == "" and refine_advice(project, back, 160)
        for encoder in ("pixels", "/models/resnet.pt", "train run 999"):  # nothing to refine from
            assert refine_advice(project, _map_of(project, encoder), 500) == ""
