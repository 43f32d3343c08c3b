import numpy as np
import pytest

from explorer.labels.propagate import propagate
from explorer.labels.suggest import suggest


def test_cold_start_covers_every_cluster(three_clusters):
    x, y, g = three_clusters
    picks = suggest(g, x, None, np.zeros(len(x), bool), 6)
    assert picks.dtype == np.int64 and len(picks) == 6 and len(set(picks.tolist())) == 6
    assert set(y[picks[:3]].tolist()) == {0, 1, 2}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_first_round_covers_every_cluster_of_a_well_separated_collection(make_clusters, seed):
    from explorer.neighbours.knn import knn_graph

    x, y = make_clusters(60, 10, seed=seed)
    sizes = np.random.default_rng(seed).integers(20, 61, 10)  # unequal clusters
    keep = np.concatenate([np.flatnonzero(y == c)[:m] for c, m in enumerate(sizes)])
    x, y = x[keep], y[keep]
    picks = suggest(knn_graph(x, k=10), x, None, np.zeros(len(x), bool), 10)
    assert sorted(y[picks].tolist()) == list(range(10))  # ten labels, ten clusters


def test_cold_start_prefers_typical_items_over_outliers(make_clusters):
    x, y = make_clusters(100, 4, seed=3)
    outlier = np.full((1, x.shape[1]), 40.0, np.float32)
    x = np.concatenate([x, outlier, -outlier])
    from explorer.neighbours.knn import knn_graph

    g = knn_graph(x, k=10)
    picks = suggest(g, x, None, np.zeros(len(x), bool), 4)
    assert set(y[picks].tolist()) == {0, 1, 2, 3}


def test_with_labels_goes_where_labels_are_missing(three_clusters):
    x, y, g = three_clusters
    seeds = np.full(len(y), -1, np.int64)
    seeds[np.flatnonzero(y == 0)[:3]] = 0
    seeds[np.flatnonzero(y == 1)[:3]] = 1
    labelled = seeds >= 0
    p = propagate(g, seeds, 2)
    picks = suggest(g, x, p, labelled, 5)
    assert len(picks) == 5 and len(set(picks.tolist())) == 5
    assert not labelled[picks].any()
    assert y[picks[0]] == 2  # the unlabelled cluster first


def test_suggestions_are_diverse_not_duplicates(make_clusters):
    x, y = make_clusters(60, 3, seed=4)
    x = np.concatenate([x, np.repeat(x[:1] + 3.0, 30, axis=0)])  # 30 identical items
    from explorer.neighbours.knn import knn_graph

    g = knn_graph(x, k=10)
    labelled = np.zeros(len(x), bool)
    labelled[[0, 60, 120]] = True
    seeds = np.where(labelled, np.array([0] * 60 + [1] * 60 + [2] * 60 + [0] * 30)[: len(x)], -1)
    p = propagate(g, seeds, 3)
    picks = suggest(g, x, p, labelled, 10)
    dup_rows = set(range(180, 210))
    assert len(dup_rows & set(picks.tolist())) <= 1


def test_everything_labelled_returns_nothing(three_clusters):
    x, y, g = three_clusters
    assert len(suggest(g, x, None, np.ones(len(x), bool), 5)) == 0
    assert len(suggest(g, x, None, np.zeros(len(x), bool), 10_000)) == len(x)


def test_an_item_torn_between_two_classes_comes_before_one_spread_thin(three_clusters):
    """Margin sampling: 0.5 / 0.5 over two of ten classes is the likelier mistake than 0.82 for one
    class and 0.02 for each other, although its entropy is lower (slow reference below)."""
    from explorer.labels.propagate import Propagation, certainty
    from explorer.labels.suggest import uncertainty

    torn = np.array([0.5, 0.5] + [0.0] * 8)
    thin = np.array([0.82] + [0.02] * 9)
    assert certainty(torn[None])[0] > certainty(thin[None])[0]  # entropy would rank `thin` first
    x, y, g = three_clusters
    n = len(x)
    scores = np.tile(np.eye(10)[0], (n, 1))  # every other item sure
    a, b = np.flatnonzero(y == 2)[:2]
    scores[a], scores[b] = torn, thin
    p = Propagation(scores.argmax(axis=1), certainty(scores).astype(np.float32), scores.astype(np.float32))
    labelled = np.zeros(n, bool)
    labelled[np.flatnonzero(y == 0)[:3]] = True
    near = np.zeros(n)  # every item next to a label: reach 1, so uncertainty = 1 - margin
    u = uncertainty(p, near)
    for row in range(n):  # slow reference: 1 - (largest - second largest)
        first, second = sorted(scores[row])[-1], sorted(scores[row])[-2]
        assert u[row] == pytest.approx(1 - (first - second))
    assert u[a] == pytest.approx(1.0) and u[b] == pytest.approx(0.2)
    picks = suggest(g, x, p, labelled, 2, distance=near)
    assert picks[0] == a and b in picks.tolist()
    assert np.allclose(uncertainty(p, np.full(n, np.inf)), 1.0)  # unreached: unsure whatever the scores
    assert np.allclose(uncertainty(None, near), 1.0)


def test_one_suggestion_in_five_explores_where_no_label_is_near(monkeypatch):
    """Margins see only doubt; a region the propagation is sure about but no label is near
    (a mode joined to a labelled one) gets a fifth of the picks: the densest farthest rows."""
    import importlib

    from explorer.labels.propagate import Propagation
    from explorer.neighbours.knn import knn_graph

    module = importlib.import_module("explorer.labels.suggest")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 64)).astype(np.float32)  # rows far apart: diversity never decides
    n = len(x)
    scores = np.tile([1.0, 0.0], (n, 1))
    torn, far_away = np.arange(20, 40), np.arange(100, 110)
    scores[torn] = [0.5, 0.5]
    p = Propagation(scores.argmax(axis=1), np.ones(n, np.float32), scores.astype(np.float32))
    labelled = np.zeros(n, bool)
    labelled[:5] = True
    distance = np.ones(n)
    distance[:5], distance[far_away] = 0.0, 6.0  # sure there (margin 1), but 6 steps from a label
    g = knn_graph(x, k=10)
    picks = suggest(g, x, p, labelled, 5, distance=distance)
    assert set(picks[:4].tolist()) <= set(torn.tolist()) and picks[4] in far_away
    assert len(suggest(g, x, p, labelled, 2, distance=distance)) == 2  # below 3 picks: no exploring
    monkeypatch.setattr(module, "EXPLORE_SHARE", 0.0)
    assert set(suggest(g, x, p, labelled, 5, distance=distance).tolist()) <= set(torn.tolist())
