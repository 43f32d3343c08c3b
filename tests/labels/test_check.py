"""Label mistakes: the labels the rest of the labels disagree with come first."""

import csv

import numpy as np
import pytest

from explorer import workflow
from explorer.cli import main
from explorer.labels.check import MIN_CLASS_LABELS, disagreement
from explorer.labels.propagate import Diffusion
from explorer.neighbours.knn import knn_graph
from explorer.store import Project
from tests.blobs import mapped_blobs


def _clusters(seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 16)) * 1.5
    y = np.repeat(np.arange(4), 150)
    return (centres[y] + rng.normal(size=(len(y), 16))).astype(np.float32), y


def test_flipped_labels_rank_first():
    x, y = _clusters()
    rng = np.random.default_rng(1)
    flipped = np.zeros(len(y), bool)
    flipped[rng.choice(len(y), 30, replace=False)] = True  # 5 %
    given = y.copy()
    given[flipped] = (y[flipped] + rng.integers(1, 4, 30)) % 4
    graph = knn_graph(x, k=15)
    with_vote = disagreement(Diffusion(graph), given, 4, neighbours=graph.indices)
    assert flipped[with_vote.rows[:60]].sum() >= 27
    found = disagreement(Diffusion(graph), given, 4)
    assert sorted(found.rows.tolist()) == list(range(len(y)))  # every label checked once
    assert (np.diff(found.suspicion) <= 0).all() and ((found.suspicion >= 0) & (found.suspicion <= 1)).all()
    top = found.rows[:60]  # the first tenth a person would review
    assert flipped[top].sum() >= 27
    # what the graph says of a flipped label is, mostly, its true class
    says = found.graph_says[np.isin(found.rows, np.flatnonzero(flipped))]
    assert (says == y[found.rows[np.isin(found.rows, np.flatnonzero(flipped))]]).mean() > 0.8


def test_the_vote_counts_only_labelled_neighbours():
    from explorer.labels.check import _vote

    seeds = np.array([0, 0, 1, -1, 1])
    neighbours = np.array([[1, 2, 3], [0, 3, -1], [3, -1, -1]])  # rows 0, 1, 2 (self column dropped)
    vote = _vote(neighbours, seeds, np.array([0, 1, 2]))
    np.testing.assert_allclose(vote[:2], [0.5, 0.0])  # row 0: one of two labelled differs
    assert np.isnan(vote[2])  # no labelled neighbour: no vote


def test_classes_too_small_to_check_are_counted_not_ranked():
    x, y = _clusters()
    seeds = np.full(len(y), -1)
    seeds[:20], seeds[150 : 150 + MIN_CLASS_LABELS - 1] = 0, 1
    found = disagreement(Diffusion(knn_graph(x, k=15)), seeds, 4)
    assert len(found.rows) == 20 and found.unchecked == MIN_CLASS_LABELS - 1


@pytest.fixture
def imported(tmp_path):
    root = tmp_path / "blobs"
    truth = mapped_blobs(root)
    paths = sorted(truth)
    wrong = {
        paths[3]: "blue" if truth[paths[3]] != "blue" else "red",
        paths[45]: "green" if truth[paths[45]] != "green" else "red",
    }
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        writer.writerows((path, wrong.get(path, truth[path])) for path in paths)
    assert main(["labels", "import", str(root), str(labels)]) == 0
    return root, wrong


def test_check_finds_imported_mistakes_from_the_cli_and_python(imported, tmp_path, capsys):
    root, wrong = imported
    capsys.readouterr()
    out = tmp_path / "check.csv"
    assert main(["check", str(root), "--n", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    lines = printed.out.strip().splitlines()
    assert lines[0].split()[:2] == ["suspicion", "label"] and len(lines) == 5
    assert set(wrong) <= {line.split()[-1] for line in lines[1:3]}  # both mistakes first
    assert "60 labels checked" in printed.err
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 60 and {rows[0]["path"], rows[1]["path"]} == set(wrong)
    with Project(root) as project:
        found = workflow.check_labels(project)
        assert set(found.paths[:2]) == set(wrong) and all(
            g != s for g, s in zip(found.given[:2], found.graph_says[:2], strict=True)
        )


def test_check_without_labels_says_so(tmp_path, capsys):
    root = tmp_path / "blobs"
    mapped_blobs(root)
    assert main(["check", str(root)]) != 0
    assert "no labels to check" in capsys.readouterr().err
