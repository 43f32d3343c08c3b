"""The label space: the propagation graph fitted in a few UMAP dimensions."""

import numpy as np

from explorer.labels.propagate import Diffusion
from explorer.labels.space import MIN_ROWS, label_graph
from explorer.neighbours.knn import knn_graph


def _touching_clusters(seed: int = 0):
    """Four Gaussian clusters close enough that some raw neighbours cross between them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, 16)) * 0.8
    y = np.repeat(np.arange(4), 150)
    return (centres[y] + rng.normal(size=(len(y), 16))).astype(np.float32), y


def test_the_label_graph_has_the_knn_graph_form():
    x, _ = _touching_clusters()
    graph = label_graph(x, knn_graph(x, k=15), neighbours=12)
    assert graph.indices.shape == (len(x), 13) and graph.similarities.shape == (len(x), 13)
    assert (graph.indices[:, 0] == np.arange(len(x))).all()
    assert (graph.similarities[:, 0] == 1.0).all()
    others = graph.similarities[:, 1:]
    assert ((others > 0) & (others <= 1)).all()
    assert (np.diff(others, axis=1) <= 1e-6).all()  # nearest first


def test_neighbours_in_the_label_space_stay_in_their_cluster_more_often():
    x, y = _touching_clusters()
    raw = knn_graph(x, k=20)
    label = label_graph(x, raw, neighbours=20)
    crossing = lambda g: float((y[g.indices[:, 1:]] != y[:, None]).mean())  # noqa: E731
    assert crossing(label) < crossing(raw)
    seeds = np.full(len(y), -1)
    seeds[[0, 150, 300, 450]] = [0, 1, 2, 3]
    accuracy = lambda solver: float((solver.run(seeds, 4).predicted == y).mean())  # noqa: E731
    assert accuracy(Diffusion(label, power=1.0, neighbours=None)) > accuracy(Diffusion(raw)) + 0.03


def test_a_tiny_collection_keeps_the_knn_graph():
    x, _ = _touching_clusters()
    small = x[: MIN_ROWS - 1]
    assert label_graph(small, knn_graph(small, k=10)) is None


def test_a_graph_too_thin_for_umap_keeps_the_knn_graph():
    x, _ = _touching_clusters()
    assert label_graph(x, knn_graph(x, k=5)) is None  # UMAP on 6 neighbours splits classes
