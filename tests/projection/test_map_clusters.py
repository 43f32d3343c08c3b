"""Clusters on the map: Leiden on the propagation graph, named by their majority label."""

import numpy as np
import pytest

from explorer import workflow
from explorer.cli import main
from explorer.labels.space import _l2_neighbours
from explorer.neighbours.knn import KnnGraph
from explorer.projection.clusters import RESOLUTION, by_size, cluster_names, find_clusters
from explorer.store import Project
from tests.blobs import mapped_blobs


def _blob_graph(sizes, seed=0, dims=8, spread=12.0):
    """A Gaussian-weighted L2 kNN graph (as the label space makes it) of blobs of ``sizes``."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    centres = rng.normal(size=(len(sizes), dims)) * spread
    z = (centres[truth] + rng.normal(size=(len(truth), dims))).astype(np.float32)
    ids, sq = _l2_neighbours(z, 20, seed)
    sims = np.exp(-sq / np.median(sq[:, 10])).astype(np.float32)
    return KnnGraph(ids, sims, "test", None), truth


def test_well_separated_blobs_are_found_whole_largest_first():
    graph, truth = _blob_graph([400, 250, 150, 100])
    found = find_clusters(graph, RESOLUTION)
    assert found.dtype == np.int32 and len(found) == len(truth)
    # each blob is one cluster (no blob split, no two merged), numbered by size
    pairs = set(zip(truth.tolist(), found.tolist(), strict=True))
    assert pairs == {(0, 0), (1, 1), (2, 2), (3, 3)}


def test_the_same_seed_gives_the_same_clusters_and_python_random_is_left_alone():
    import random

    graph, _ = _blob_graph([200, 200, 200], seed=1)
    random.seed(5)
    expected = random.random()
    random.seed(5)
    first = find_clusters(graph, RESOLUTION, seed=3)
    assert random.random() == expected
    assert (find_clusters(graph, RESOLUTION, seed=3) == first).all()


def test_bad_resolution_is_named():
    graph, _ = _blob_graph([50, 50])
    with pytest.raises(ValueError, match="resolution"):
        find_clusters(graph, 0.0)


def test_small_clusters_get_minus_one_and_the_rest_are_renumbered_by_size():
    membership = np.array([4, 4, 4, 1, 1, 7, 7, 7, 7, 2, -1])
    assert by_size(membership, min_size=3).tolist() == [1, 1, 1, -1, -1, 0, 0, 0, 0, -1, -1]


def test_names_follow_the_majority_label_or_say_cluster_and_size():
    clusters = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, -1])
    labels = np.array([0, 0, 1, -1, 1, 0, -1, -1, -1, 1])  # -1 unlabelled
    names = cluster_names(clusters, labels, ["cat", "dog"])
    assert [n.text for n in names] == ["cat (4)", "cluster 1 (3)", "cluster 2 (2)"]
    assert names[0].share == pytest.approx(2 / 3) and names[0].labelled == 3
    assert names[1].label == "" and names[1].share == pytest.approx(0.5)  # a tie is no majority
    assert names[2].labelled == 0


def test_map_finds_clusters_and_a_cluster_is_labelled_in_one_undoable_action(tmp_path, capsys):
    root = tmp_path / "blobs"
    truth = mapped_blobs(root, per_class=30)
    with Project(root) as project:
        found = workflow.clusters(project)
        paths = project.paths_by_id()
        classes = np.array([truth[paths[int(i)]] for i in found.item_ids])
        inside = found.cluster >= 0
        assert inside.mean() > 0.9
        for k in range(len(found.names)):  # every cluster is one kind of blob
            assert len(set(classes[found.cluster == k])) == 1
        assert set(classes[inside]) == {"red", "green", "blue"}
        project.set_labels([int(found.item_ids[found.cluster == 0][0])], project.add_class("keep").id)
        kept = int(found.item_ids[found.cluster == 0][0])
        before = project.history(limit=100)

        assert main(["clusters", str(root), "--label", "0=first"]) == 0
        humans = project.human_labels()
        members = found.item_ids[found.cluster == 0].tolist()
        first = project.class_by_name("first").id
        assert humans[kept][0] != first  # a person's label stays
        assert all(humans[i] == (first, "seed") for i in members if i != kept)
        assert len(project.history(limit=100)) == len(before) + 1
        assert workflow.clusters(project).names[0].text == f"first ({len(members)})"
        project.undo()
        assert all(i not in project.human_labels() for i in members if i != kept)
    out = capsys.readouterr().out
    assert "first (" in out


def test_cli_lists_clusters_writes_every_image_and_names_bad_input(tmp_path, capsys):
    root = tmp_path / "blobs"
    mapped_blobs(root, per_class=30)
    table = tmp_path / "clusters.csv"
    assert main(["clusters", str(root), "--resolution", "2.0", "--out", str(table)]) == 0
    rows = table.read_text().splitlines()
    assert rows[0] == "path,cluster,cluster_name" and len(rows) == 91
    assert main(["clusters", str(root), "--label", "cat"]) == 1
    assert "CLUSTER=NAME" in capsys.readouterr().err
    assert main(["clusters", str(root), "--label", "99=cat"]) == 1
    assert "no cluster 99" in capsys.readouterr().err


def test_clusters_from_python(tmp_path):
    import explorer

    root = tmp_path / "blobs"
    truth = mapped_blobs(root, per_class=30)
    with explorer.open(root) as c:
        table = c.clusters()
        assert list(table.columns) == ["cluster", "name", "images", "labelled", "label", "share"]
        assert table["images"].is_monotonic_decreasing and table["name"].iloc[0].startswith("cluster 0 (")
        each = c.cluster_of()
        biggest = each[each["cluster"] == 0]
        assert len(biggest) == table["images"].iloc[0]
        kind = truth[biggest["path"].iloc[0]]
        assert c.label_cluster(0, kind) == len(biggest)
        assert c.clusters()["name"].iloc[0] == f"{kind} ({len(biggest)})"
        assert (c.labels().set_index("path").loc[biggest["path"], "label"] == kind).all()
