"""Propagation, rejections, rounds and suggestions through the workflow, on a tiny real project."""

import numpy as np
import pytest

from explorer import workflow
from explorer.cli import main
from explorer.store import Project
from explorer.workflow.labelling import map_solver
from tests.blobs import mapped_blobs


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels") / "blobs"
    return root, mapped_blobs(root)


@pytest.fixture
def project(mapped, tmp_path):
    import shutil

    root, truth = mapped
    copy = tmp_path / "blobs"
    shutil.copytree(root, copy)  # every test starts from the unlabelled, mapped project
    with Project(copy) as p:
        yield p, truth


def _seed_one_each(p, truth):
    by_path = {item.path: item.id for item in p.items()}
    classes = {}
    for name in ("red", "green", "blue"):
        first = sorted(path for path, cls in truth.items() if cls == name)[0]
        classes[name] = p.add_class(name).id
        p.set_labels([by_path[first]], classes[name])
    return by_path, classes


def test_one_seed_per_class_labels_the_collection(project):
    # raw pixels of these shapes share ~4% of graph edges across classes, so not quite perfect;
    # perfectly separated clusters are labelled perfectly (tests/labels/test_propagate.py)
    p, truth = project
    by_path, classes = _seed_one_each(p, truth)
    result = workflow.propagate(p)
    paths = p.paths_by_id()
    expected = np.array([classes[truth[paths[int(i)]]] for i in result.item_ids])
    assert (result.class_ids == expected).mean() >= 0.95
    assert result.seeds == 3 and "from 3 human label" in result.summary()


def test_re_propagation_after_one_more_seed_solves_only_that_class(project):
    import sys

    module = sys.modules["explorer.labels.propagate"]

    p, truth = project
    by_path, classes = _seed_one_each(p, truth)
    workflow.compute_propagation(p)
    solver = map_solver(p)[2]
    workflow.compute_propagation(p)
    assert solver.solved_last == 0  # nothing changed: every class reused
    second_red = sorted(path for path, cls in truth.items() if cls == "red")[1]
    p.set_labels([by_path[second_red]], classes["red"])
    workflow.compute_propagation(p)
    assert solver.solved_last == 1 and module._cached[1] is solver


def test_a_rejected_class_never_comes_back(project):
    p, truth = project
    by_path, classes = _seed_one_each(p, truth)
    workflow.propagate(p)
    victims = [by_path[path] for path, cls in sorted(truth.items()) if cls == "green"][3:8]
    p.reject_pseudo(victims)
    for rounds in (0, 2):
        result = workflow.propagate(p, rounds=rounds)
        got = dict(zip(result.item_ids.tolist(), result.class_ids.tolist(), strict=True))
        assert all(got[v] != classes["green"] for v in victims)
        table = p.label_table()
        shown = dict(zip(table.item_ids.tolist(), table.class_ids.tolist(), strict=True))
        assert all(shown[v] != classes["green"] for v in victims)


def test_rounds_keep_human_labels_and_report_confidence(project, capsys):
    p, truth = project
    by_path, classes = _seed_one_each(p, truth)
    result = workflow.compute_propagation(p, rounds=2)
    got = dict(zip(result.item_ids.tolist(), zip(result.class_ids.tolist(), result.confidence.tolist())))
    for item, (cls, _source) in p.human_labels().items():
        assert got[item] == (cls, 1.0)
    assert ((result.confidence >= 0) & (result.confidence <= 1)).all()
    assert main(["propagate", str(p.root), "--rounds", "1"]) == 0
    assert "human label" in capsys.readouterr().out


def test_suggest_covers_the_clusters_then_avoids_labelled_items(project, capsys):
    p, truth = project
    cold = workflow.suggest(p, 6)
    assert cold.cold_start and len(set(cold.paths)) == 6
    assert {truth[path] for path in cold.paths} == {"red", "green", "blue"}  # a diverse cover
    assert cold.reasons == ["typical of a group that has no label yet"] * 6
    assert main(["suggest", str(p.root), "--n", "6"]) == 0
    printed = capsys.readouterr()
    assert printed.out.split() == cold.paths  # one path per line for scripts; why on stderr
    assert printed.err.count("typical of a group") == 6

    by_path, _classes = _seed_one_each(p, truth)
    warm = workflow.suggest(p, 10)
    assert not warm.cold_start and len(warm.item_ids) == 10
    assert len(warm.reasons) == 10 and "far from every label" in warm.reasons  # the exploring share
    torn = [r for r in warm.reasons if r.startswith("torn between")]
    assert torn and all(any(name in r for name in ("red", "green", "blue")) for r in torn)
    labelled = set(p.human_labels())
    assert not labelled & set(warm.item_ids.tolist())
    with pytest.raises(workflow.WorkflowError, match="at least 1"):
        workflow.suggest(p, 0)
