"""Near-duplicates are judged in the map's whitened space, where a trained encoder's narrow cone of
vectors (every cosine near 1) is spread out and only real twins stay close."""

import importlib

import numpy as np
from PIL import Image

from explorer import workflow
from explorer.cli import main
from explorer.exchange.embeddings import import_embeddings
from explorer.exchange.export import twin_groups
from explorer.neighbours.knn import KnnGraph, near_duplicates
from explorer.store import Project
from explorer.store.current import DUPLICATE_SIMILARITY, current_map, duplicate_graph

N, TWINS = 240, 6


def _cone(n: int, dim: int = 24, seed: int = 0) -> np.ndarray:
    """(n, dim) vectors along one shared direction with small own parts, as a self-supervised
    encoder leaves them (raw cosine of unrelated rows above 0.98); rows 1, 3, .. 2*TWINS-1 are
    near copies of the row before (their own part moved by 1 %)."""
    rng = np.random.default_rng(seed)
    own = rng.normal(size=(n, dim)) * np.linspace(1.0, 0.2, dim)
    for k in range(TWINS):
        own[2 * k + 1] = own[2 * k] + 0.01 * rng.normal(size=dim)
    shared = np.zeros(dim)
    shared[0] = 40.0
    return (shared + own).astype(np.float32)


def _project(tmp_path, monkeypatch) -> Project:
    root = tmp_path / "cone"
    root.mkdir()
    for k in range(N):
        Image.fromarray(np.full((8, 8), k % 256, np.uint8)).save(root / f"img-{k:04d}.png")
    project = Project(root)
    workflow.scan(project)
    vectors = _cone(N)
    np.save(tmp_path / "v.npy", vectors)
    (tmp_path / "paths.txt").write_text("\n".join(f"img-{k:04d}.png" for k in range(N)) + "\n")
    import_embeddings(project, tmp_path / "v.npy", tmp_path / "paths.txt")
    # imported vectors are not whitened (their geometry is their maker's); these stand in for a
    # trained encoder's, which are
    whiten = importlib.import_module("explorer.neighbours.whiten")
    monkeypatch.setattr(whiten, "whitens", lambda encoder: True)
    workflow.make_map(project, k=8)
    return project


def test_a_trained_encoders_cone_yields_only_its_twins(tmp_path, monkeypatch):
    project = _project(tmp_path, monkeypatch)
    with project:
        graph_map = current_map(project)
        raw = KnnGraph(graph_map.knn_indices, graph_map.knn_similarities, "raw", None)
        raw_pairs, _ = near_duplicates(raw, 0.98)
        assert len(np.unique(raw_pairs)) > N // 2  # the premise: a raw threshold calls most images twins

        space = duplicate_graph(project)
        assert space.whitened and space.threshold == DUPLICATE_SIMILARITY
        pairs = workflow.near_duplicates(project)
        paths = project.paths_by_id()
        found = {tuple(sorted((paths[a], paths[b]))) for a, b, _ in pairs}
        want = {(f"img-{2 * k:04d}.png", f"img-{2 * k + 1:04d}.png") for k in range(TWINS)}
        assert found == want

        groups = twin_groups(project)
        assert len(groups) == 2 * TWINS and len(set(groups.values())) == TWINS
        quality = workflow.quality(project)
        assert (quality.duplicate_group >= 0).sum() == 2 * TWINS
        twins = np.isin(quality.item_ids, [a for pair in pairs for a in pair[:2]])
        assert quality.uniqueness[twins].max() < quality.uniqueness[~twins].min()  # spread, not all ~0
        # an explicit threshold still rules, in the same space
        assert len(workflow.near_duplicates(project, -1.0)) > len(pairs)


def test_the_command_says_which_space_and_threshold(tmp_path, monkeypatch, capsys):
    project = _project(tmp_path, monkeypatch)
    project.close()
    assert main(["duplicates", str(project.root)]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == TWINS
    assert f"{TWINS} near-duplicate pair(s) at cosine >= {DUPLICATE_SIMILARITY} in the map's whitened vectors" in err
