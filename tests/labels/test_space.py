"""The label space: the propagation graph fitted in a few UMAP dimensions."""

import numpy as np

from explorer.labels.propagate import Diffusion
from explorer.labels.space import MIN_ROWS, label_space
from explorer.neighbours.knn import knn_graph


def _touching_clusters(seed: int = 0):
    """Four Gaussian clusters close enough that some raw neighbours cross between them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 16)) * 0.8
    y = np.repeat(np.arange(4), 150)
    return (centres[y] + rng.normal(size=(len(y), 16))).astype(np.float32), y


def test_the_label_graph_has_the_knn_graph_form():
    x, _ = _touching_clusters()
    _, graph = label_space(x, knn_graph(x, k=15), neighbours=12)
    assert graph.indices.shape == (len(x), 13) and graph.similarities.shape == (len(x), 13)
    assert (graph.indices[:, 0] == np.arange(len(x))).all()
    assert (graph.similarities[:, 0] == 1.0).all()
    others = graph.similarities[:, 1:]
    assert ((others > 0) & (others <= 1)).all()
    assert (np.diff(others, axis=1) <= 1e-6).all()  # nearest first


def test_neighbours_in_the_label_space_stay_in_their_cluster_more_often():
    x, y = _touching_clusters()
    raw = knn_graph(x, k=20)
    _, label = label_space(x, raw, neighbours=20)
    crossing = lambda g: float((y[g.indices[:, 1:]] != y[:, None]).mean())  # noqa: E731
    assert crossing(label) < crossing(raw)
    seeds = np.full(len(y), -1)
    seeds[[0, 150, 300, 450]] = [0, 1, 2, 3]
    accuracy = lambda solver: float((solver.run(seeds, 4).predicted == y).mean())  # noqa: E731
    assert accuracy(Diffusion(label, power=1.0, neighbours=None)) > accuracy(Diffusion(raw)) + 0.03


def test_a_tiny_collection_keeps_the_knn_graph():
    x, _ = _touching_clusters()
    small = x[: MIN_ROWS - 1]
    assert label_space(small, knn_graph(small, k=10)) is None


def test_a_graph_too_thin_for_umap_keeps_the_knn_graph():
    x, _ = _touching_clusters()
    assert label_space(x, knn_graph(x, k=5)) is None  # UMAP on 6 neighbours splits classes


def _one_wide_three_tight(seed: int):
    """One wide class of 500 and three tight classes of 120 close to each other: k-means on the
    raw rows spends its centres on the wide one."""
    rng = np.random.default_rng(seed)
    d = 16
    centres = np.zeros((4, d))
    centres[0, 0], centres[2, 1], centres[3, 1] = 6.0, 1.5, -1.5
    centres[:, 2] = 10.0  # away from the origin, so cosine neighbours mean something
    sizes, spreads = [500, 120, 120, 120], [1.0, 0.25, 0.25, 0.25]
    y = np.repeat(np.arange(4), sizes)
    x = centres[y] + rng.normal(size=(len(y), d)) * np.repeat(spreads, sizes)[:, None]
    return x.astype(np.float32), y


def test_the_cold_start_clusters_in_the_label_space_and_finds_every_class():
    from explorer.labels.suggest import TYPICAL, suggest_why

    for seed in range(2):
        x, y = _one_wide_three_tight(seed)
        graph = knn_graph(x, k=15)
        coordinates, label = label_space(x, graph)
        assert coordinates.shape == (len(x), 8) and len(label) == len(x)
        nothing = np.zeros(len(x), bool)
        picks, why = suggest_why(graph, x, None, nothing, 4, clusters=coordinates)
        assert why == [TYPICAL] * 4 and sorted(y[picks]) == [0, 1, 2, 3]
        raw, _ = suggest_why(graph, x, None, nothing, 4)
        assert len(set(y[raw])) < 4  # what the embedding alone gives: the wide class twice
