"""`explorer map` on a real (tiny) project: metrics, keeping old positions, preview, duplicates."""

import shutil

import numpy as np
import pytest

from explorer import workflow
from explorer.cli import main
from explorer.store import Project
from tests.blobs import mapped_blobs, write_blobs


@pytest.fixture
def blobs(tmp_path):
    root = tmp_path / "blobs"
    truth = mapped_blobs(root)
    with Project(root) as project:
        yield project, truth, project.latest_run("map").id


def _class_of(project, truth, item_ids):
    paths = project.paths_by_id()
    return np.array([truth[paths[int(i)]] for i in item_ids])


def test_map_records_index_recall_and_trustworthiness(blobs):
    project, _truth, run = blobs
    metrics = project.run(run).metrics
    assert metrics["index"] == "flat-ip" and metrics["layout"] == "umap" and metrics["placed"] == 0
    assert 0.8 < metrics["trustworthiness"] <= 1.0
    assert metrics["items"] == 60 and metrics["knn_seconds"] >= 0 and metrics["scale"] > 0
    # 60 items: too few for a label space, propagation keeps the kNN graph
    assert metrics["label_graph"] == "the kNN graph" and project.load_run_array(run, "label_indices") is None


def test_propagation_gets_its_own_graph_kept_beside_the_map_and_reused_with_it(tmp_path):
    root = tmp_path / "more"
    mapped_blobs(root, per_class=80, map_k=15)
    with Project(root) as project:
        first = project.latest_run("map").id
        assert project.run(first).metrics["label_graph"].startswith("umap")
        label = project.load_run_array(first, "label_indices")
        assert label.shape[0] == 240 and (label[:, 0] == np.arange(240)).all()
        assert project.load_run_array(first, "label_space").shape == (240, 8)  # where the cold start clusters
        assert project.load_run_array(first, "bridge_indices") is None  # raw pixels have no bridge
        assert len(workflow.suggest(project, n=3).paths) == 3
        again = workflow.make_map(project, k=15)
        assert "reused" in project.run(again).metrics["label_graph"]
        np.testing.assert_array_equal(project.load_run_array(again, "label_indices"), label)
        assert project.load_run_array(again, "label_space").shape == (240, 8)


def test_added_images_are_placed_next_to_their_neighbours_and_old_points_stay(blobs, tmp_path):
    project, truth, first = blobs
    before = workflow.current_map(project)
    extra = write_blobs(tmp_path / "more", per_class=3, seed=7)
    for name, cls in extra.items():
        shutil.copy(tmp_path / "more" / name, project.root / f"new-{name}")
        truth[f"new-{name}"] = cls
    workflow.scan(project)
    workflow.embed(project, workflow.PIXELS)
    second = workflow.make_map(project, k=8)
    after = workflow.current_map(project)
    metrics = project.run(second).metrics
    assert metrics["layout"] == "kept" and metrics["placed"] == 9 and metrics["items"] == 69

    # every old item keeps exactly its position
    pos = {int(i): xy for i, xy in zip(after.item_ids, after.xy, strict=True)}
    for i, xy in zip(before.item_ids, before.xy, strict=True):
        np.testing.assert_array_equal(pos[int(i)], xy)
    # each new item lands among its own kind: its nearest old points on the map share its class
    classes = _class_of(project, truth, after.item_ids)
    old = np.isin(after.item_ids, before.item_ids)
    for row in np.flatnonzero(~old):
        d = np.linalg.norm(after.xy[old] - after.xy[row], axis=1)
        assert (classes[old][np.argsort(d)[:5]] == classes[row]).mean() >= 0.8
        # and close to its graph neighbours, much closer than a typical pair of points
        nb = after.knn_indices[row, 1:4]
        typical = np.median(np.linalg.norm(after.xy[old][:, None] - after.xy[old][None], axis=2))
        assert np.linalg.norm(after.xy[nb] - after.xy[row], axis=1).mean() < 0.5 * typical

    fresh = workflow.make_map(project, k=8, fresh=True)
    assert project.run(fresh).metrics["layout"] == "umap"


def test_same_embeddings_reuse_the_graph_and_keep_the_map(blobs):
    project, _truth, first = blobs
    again = workflow.make_map(project, k=8)
    metrics = project.run(again).metrics
    assert metrics["layout"] == "kept" and metrics["placed"] == 0 and "reused" in metrics["graph"]
    np.testing.assert_array_equal(workflow.current_map(project).xy, project.load_run_array(first, "xy"))


def test_preview_is_instant_pca_of_the_embeddings(blobs):
    project, _truth, _run = blobs
    preview = workflow.map_preview(project)
    assert preview.xy.shape == (60, 2) and preview.xy.dtype == np.float32
    np.testing.assert_array_equal(preview.item_ids, workflow.current_embeddings(project).item_ids)
    assert np.abs(preview.xy).max() == pytest.approx(1.0)


def test_duplicates_function_and_command(blobs, capsys):
    project, _truth, _run = blobs
    names = sorted(_truth)
    shutil.copy(project.root / names[0], project.root / "copy-of-first.png")
    workflow.scan(project)
    workflow.embed(project, workflow.PIXELS)
    workflow.make_map(project, k=8)
    pairs = workflow.near_duplicates(project, 0.999)
    paths = project.paths_by_id()
    named = {(paths[a], paths[b]) for a, b, _s in pairs}
    assert (names[0], "copy-of-first.png") in named or ("copy-of-first.png", names[0]) in named
    assert all(s >= 0.999 and a < b for a, b, s in pairs)
    assert main(["duplicates", str(project.root), "--threshold", "0.999"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(set(line.split("\t")[:2]) == {names[0], "copy-of-first.png"} for line in lines)
    with pytest.raises(workflow.WorkflowError, match="between -1 and 1"):
        workflow.near_duplicates(project, 1.5)


def test_no_map_yet_is_a_clear_error(tmp_path, capsys):
    root = tmp_path / "empty"
    write_blobs(root, per_class=2)
    assert main(["scan", str(root)]) == 0
    assert main(["duplicates", str(root)]) == 1
    assert "no map yet" in capsys.readouterr().err
    assert main(["suggest", str(root)]) == 1
