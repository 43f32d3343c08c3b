import numpy as np
import pytest

from explorer.jobs import Cancelled, CancelToken
from explorer.labels.propagate import Propagation, propagate
from explorer.neighbours.knn import KnnGraph, knn_graph


def one_seed_each(y: np.ndarray) -> np.ndarray:
    seeds = np.full(len(y), -1, np.int64)
    for c in np.unique(y):
        seeds[np.flatnonzero(y == c)[0]] = c
    return seeds


def test_two_clusters_one_seed_each_are_labelled_perfectly(two_clusters):
    x, y, g = two_clusters
    p = propagate(g, one_seed_each(y), 2)
    assert isinstance(p, Propagation)
    assert p.predicted.dtype == np.int64 and p.confidence.dtype == np.float32 and p.scores.dtype == np.float32
    assert p.scores.shape == (len(y), 2)
    np.testing.assert_array_equal(p.predicted, y)
    np.testing.assert_allclose(p.scores.sum(axis=1), 1.0, atol=1e-5)
    assert ((p.confidence >= 0) & (p.confidence <= 1)).all()


def test_seeds_are_kept_even_against_the_graph(two_clusters):
    x, y, g = two_clusters
    seeds = one_seed_each(y)
    seeds[5] = 1  # a (wrong-looking) human label inside cluster 0 is still kept
    p = propagate(g, seeds, 2)
    labelled = seeds >= 0
    np.testing.assert_array_equal(p.predicted[labelled], seeds[labelled])
    np.testing.assert_array_equal(p.confidence[labelled], 1.0)
    assert p.scores[5, 1] == 1.0


def test_rejected_class_never_comes_back(two_clusters):
    x, y, g = two_clusters
    seeds = one_seed_each(y)
    rejected = np.array([[r, 0] for r in range(1, 11)] + [[150, 1]])
    p = propagate(g, seeds, 2, rejected=rejected)
    assert (p.predicted[1:11] != 0).all()
    assert (p.scores[1:11, 0] == 0).all()
    assert p.predicted[150] != 1 and p.scores[150, 1] == 0
    # the only class left for a row that rejects everything is nothing
    p2 = propagate(g, seeds, 2, rejected=np.array([[3, 0], [3, 1]]))
    assert p2.predicted[3] == -1 and p2.confidence[3] == 0


def test_rejection_is_negative_evidence(three_clusters):
    x, y, g = three_clusters
    seeds = one_seed_each(y)
    before = propagate(g, seeds, 3)
    rejected = np.array([[r, 0] for r in np.flatnonzero(y == 0)[1:20]])
    after = propagate(g, seeds, 3, rejected=rejected)
    others = np.flatnonzero(y == 0)[20:]  # not rejected themselves
    assert after.scores[others, 0].mean() < before.scores[others, 0].mean()


def test_confidence_higher_near_seeds_than_far():
    # a long chain of points: seed at one end, confidence must fall along the chain
    t = np.linspace(0, 1, 200)
    x = np.stack([np.cos(t * 1.2), np.sin(t * 1.2), 0.02 * np.ones_like(t)], axis=1).astype(np.float32)
    g = knn_graph(x, k=6)
    seeds = np.full(200, -1, np.int64)
    seeds[0] = 0
    seeds[199] = 1
    p = propagate(g, seeds, 2, iterations=200)
    near = p.confidence[1:6].mean()
    far = p.confidence[95:105].mean()
    assert near > far
    assert p.predicted[:60].tolist() == [0] * 60 and p.predicted[-60:].tolist() == [1] * 60


def test_confidence_reach_in_one_class(two_clusters):
    x, y, g = two_clusters
    seeds = np.full(len(y), -1, np.int64)
    seeds[0] = 0
    p = propagate(g, seeds, 1)
    d = np.linalg.norm(x[y == 0] - x[0], axis=1)
    conf = p.confidence[y == 0]
    assert conf[np.argsort(d)[1:10]].mean() > conf[np.argsort(d)[-10:]].mean()


def test_unreachable_rows_get_minus_one(two_clusters):
    x, y, g = two_clusters
    # cut every edge between the clusters: cluster 1 is its own component
    cross = y[np.where(g.indices >= 0, g.indices, 0)] != y[:, None]
    ids, sims = g.indices.copy(), g.similarities.copy()
    ids[cross], sims[cross] = -1, 0.0
    cut = KnnGraph(ids, sims, g.index_kind, g.recall)
    seeds = np.full(len(y), -1, np.int64)
    seeds[0] = 0
    p = propagate(cut, seeds, 2)
    assert (p.predicted[y == 1] == -1).all()
    assert (p.confidence[y == 1] == 0).all()
    assert (p.scores[y == 1] == 0).all()
    assert (p.predicted[y == 0] == 0).all()


def test_nothing_to_propagate(two_clusters):
    x, y, g = two_clusters
    none = propagate(g, np.full(len(y), -1), 2)
    assert (none.predicted == -1).all() and (none.confidence == 0).all() and none.scores.shape == (len(y), 2)
    zero = propagate(g, np.full(len(y), -1), 0)
    assert (zero.predicted == -1).all() and zero.scores.shape == (len(y), 0)


def test_bad_input_is_named(two_clusters):
    x, y, g = two_clusters
    with pytest.raises(ValueError, match="seed class 5"):
        propagate(g, np.full(len(y), 5), 2)
    with pytest.raises(ValueError, match="seeds has 3"):
        propagate(g, np.zeros(3), 2)
    with pytest.raises(ValueError, match="rejected pair"):
        propagate(g, one_seed_each(y), 2, rejected=np.array([[0, 7]]))


def test_progress_and_cancel(three_clusters):
    x, y, g = three_clusters
    reports = []
    propagate(g, one_seed_each(y), 3, progress=reports.append)
    assert [(r.done, r.total) for r in reports] == [(3, 3)]
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        propagate(g, one_seed_each(y), 3, cancel=token)


def test_block_solver_matches_scipy_cg(three_clusters):
    from scipy.sparse.linalg import cg

    from explorer.labels.propagate import Diffusion

    x, y, g = three_clusters
    solver = Diffusion(g)
    rhs = np.zeros((len(y), 3), np.float32)
    rhs[np.arange(3) * 80, np.arange(3)] = 1.0
    for iterations in (5, 20, 200):
        ours = solver._solve(rhs, iterations)
        for c in range(3):
            ref, _ = cg(solver.system, rhs[:, c], rtol=1e-6, maxiter=iterations)
            np.testing.assert_allclose(ours[:, c], ref, rtol=1e-3, atol=1e-6)


def test_ten_thousand_items_from_three_seeds_a_class(make_clusters):
    # how fast: benchmarks/propagation_scale.py (the suite asserts behaviour, not speed)
    x, y = make_clusters(1000, 10, d=32, spread=2.0, seed=9)
    g = knn_graph(x, k=15)
    seeds = np.full(len(y), -1, np.int64)
    rng = np.random.default_rng(0)
    for c in range(10):
        seeds[rng.choice(np.flatnonzero(y == c), 3, replace=False)] = c
    p = propagate(g, seeds, 10)
    assert (p.predicted == y).mean() > 0.95
    assert (p.predicted >= 0).all() and (p.confidence[seeds >= 0] == 1).all()


def test_incremental_runs_equal_cold_runs(three_clusters):
    from explorer.labels.propagate import Diffusion

    x, y, g = three_clusters
    solver = Diffusion(g)
    seeds = one_seed_each(y)
    first = solver.run(seeds, 3)
    assert solver.solved_last == 3
    seeds[np.flatnonzero(y == 1)[5]] = 1
    rejected = np.array([[np.flatnonzero(y == 2)[7], 0]])
    warm = solver.run(seeds, 3, rejected)
    assert solver.solved_last == 2  # class 2 and its seeds did not change: reused
    cold = propagate(g, seeds, 3, rejected)
    np.testing.assert_array_equal(warm.predicted, cold.predicted)
    np.testing.assert_allclose(warm.scores, cold.scores, atol=1e-6)
    np.testing.assert_allclose(warm.confidence, cold.confidence, atol=1e-6)
    # removing a seed (undo) is handled too
    seeds[np.flatnonzero(y == 1)[5]] = -1
    np.testing.assert_allclose(solver.run(seeds, 3).confidence, first.confidence, atol=1e-6)


def test_rounds_label_what_the_graph_cannot_reach(two_clusters):
    from explorer.labels.rounds import pseudo_label_rounds

    x, y, g = two_clusters
    # cut half of cluster 1 off the graph: diffusion cannot reach it, the head can
    ids, sims = g.indices.copy(), g.similarities.copy()
    island = np.flatnonzero(y == 1)[50:]
    cross = np.isin(ids, island) != np.isin(np.arange(len(y)), island)[:, None]
    ids[cross], sims[cross] = -1, 0.0
    ids[:, 0], sims[:, 0] = np.arange(len(y)), 1.0
    cut = KnnGraph(ids, sims, g.index_kind, g.recall)
    seeds = one_seed_each(y)
    graph_only = propagate(cut, seeds, 2)
    assert (graph_only.predicted[island] == -1).all()
    refined = pseudo_label_rounds(x, graph_only, seeds, rounds=2)
    assert (refined.predicted == y).mean() == 1.0
    assert (refined.confidence[island] < refined.confidence[np.flatnonzero(y == 1)[1:50]].mean()).all()
    np.testing.assert_array_equal(refined.confidence[seeds >= 0], 1.0)
    # beyond the graph's reach the calibration maps margin x that reach: the head's word must not raise it
    np.testing.assert_array_equal(refined.reach, graph_only.reach)
    from explorer.labels.calibrate import score

    assert (score(refined)[island] < 0.01).all()  # beyond the graph: about the lowest calibrated confidence
    rejected = np.array([[island[0], 1]])
    again = pseudo_label_rounds(x, propagate(cut, seeds, 2, rejected), seeds, 1, rejected)
    assert again.predicted[island[0]] != 1 and again.scores[island[0], 1] == 0
    assert pseudo_label_rounds(x, graph_only, seeds, 0) is graph_only
    with pytest.raises(ValueError, match="rounds"):
        pseudo_label_rounds(x, graph_only, seeds, -1)


def test_graph_distance_matches_dijkstra_and_updates_incrementally(make_clusters):
    from scipy.sparse.csgraph import dijkstra

    from explorer.labels.affinity import graph_distance, relax, step_lengths

    x, _y = make_clusters(150, 3, seed=11)
    g = knn_graph(x, k=6)
    lengths = step_lengths(g)
    assert (lengths != lengths.T).nnz == 0
    sources = np.array([0, 200, 333])
    ref = dijkstra(lengths, directed=False, indices=sources, min_only=True)
    np.testing.assert_allclose(graph_distance(g, sources), ref)
    capped = graph_distance(lengths, sources, limit=3.0)
    np.testing.assert_allclose(capped[ref <= 3.0], ref[ref <= 3.0])
    assert np.isinf(capped[ref > 3.0]).all()
    # adding a source: relaxing from it alone gives the same as starting over
    dist = graph_distance(lengths, sources)
    dist[77] = 0.0
    relax(lengths, dist, np.array([77]))
    np.testing.assert_allclose(dist, dijkstra(lengths, directed=False, indices=[0, 200, 333, 77], min_only=True))


def test_a_column_solved_in_a_block_equals_it_solved_alone(make_clusters):
    # the block's one sparse product sums each column as a product of that column alone does;
    # a class re-solved alone after a click matches the same class in a cold run
    from explorer.labels.propagate import Diffusion

    x, _ = make_clusters(200, 6, d=16, spread=2.0, seed=3)
    solver = Diffusion(knn_graph(x, k=10))
    block = np.random.default_rng(0).random((len(x), 6), dtype=np.float32)
    product = solver.system @ block
    for c in range(6):
        np.testing.assert_array_equal(product[:, c], solver.system @ np.ascontiguousarray(block[:, c]))
    rhs = np.zeros((len(x), 6), np.float32)
    rhs[np.arange(6) * 150, np.arange(6)] = 1.0
    rhs[np.arange(6) * 150 + 7, np.arange(6)[::-1]] = -0.5  # rejections: columns converge unevenly
    for iterations in (3, 20, 200):
        together = solver._solve(rhs, iterations)
        assert together.dtype == np.float32
        for c in range(6):
            alone = solver._solve(rhs[:, [c]], iterations)[:, 0]
            np.testing.assert_allclose(together[:, c], alone, rtol=1e-5, atol=1e-7)


def test_run_apart_without_reach_gives_the_same_classes(three_clusters):
    # the label check reads only scores and predictions, so it skips the graph distance
    from explorer.labels.propagate import Diffusion

    x, y, g = three_clusters
    solver = Diffusion(g)
    seeds = one_seed_each(y)
    rejected = np.array([[np.flatnonzero(y == 2)[7], 0]])
    full = solver.run_apart(seeds, 3, rejected)
    bare = solver.run_apart(seeds, 3, rejected, confidence_reach=False)
    np.testing.assert_array_equal(bare.scores, full.scores)
    np.testing.assert_array_equal(bare.predicted, full.predicted)
    np.testing.assert_array_equal(bare.reach, 1.0)
    assert (bare.confidence >= full.confidence).all() and (full.reach < 1).any()


def _two_pieces_of_one_class():
    """Three classes whose label graph falls into four pieces: class 0 in two pieces (0a, 0b), no
    edge between any pieces; a bridge graph joins each piece to its nearest one (0b to 0a)."""
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    piece = np.repeat(np.arange(4), 60)
    x = centres[piece] + rng.normal(scale=0.3, size=(len(piece), 2))
    y = np.array([0, 0, 1, 2])[piece]
    within = KnnGraph(*_knn_within(x, piece, 8, width=1.0), "label", None)
    # wide enough to cross between pieces: piece 0b's nearest outside rows are in 0a
    bridge = KnnGraph(*_knn_within(x, np.zeros(len(x)), 70, width=10.0), "bridge", None)
    return y, piece, within, bridge


def _knn_within(x, piece, k, width):
    """(ids, Gaussian similarities) of each row's k nearest rows of its own piece, itself first."""
    ids = np.zeros((len(x), k + 1), np.int64)
    sims = np.zeros((len(x), k + 1), np.float32)
    for i in range(len(x)):
        same = np.flatnonzero(piece == piece[i])
        order = same[np.argsort(np.linalg.norm(x[same] - x[i], axis=1))][: k + 1]
        ids[i] = order
        sims[i] = np.exp(-(np.linalg.norm(x[order] - x[i], axis=1) ** 2) / width)
    return ids, sims


def test_a_bridge_carries_labels_into_a_piece_no_seed_is_in():
    from explorer.labels.propagate import Diffusion

    y, piece, within, bridge = _two_pieces_of_one_class()
    seeds = np.full(len(y), -1)
    seeds[[0, 120, 180]] = [0, 1, 2]  # class 0's seed is in piece 0a; 0b has none
    alone = Diffusion(within, power=1.0, neighbours=None).run(seeds, 3)
    assert (alone.predicted[piece == 1] == -1).all()  # the label graph alone cannot reach 0b
    bridged = Diffusion(within, power=1.0, neighbours=None, bridge=bridge).run(seeds, 3)
    np.testing.assert_array_equal(bridged.predicted, y)
    # reach is measured on the label graph: a row reached over the bridge only is far from every seed
    assert bridged.reach[piece == 1].max() < min(0.01, bridged.reach[piece == 0].min())
    assert bridged.confidence[piece == 1].max() < 0.01


def test_a_bridge_of_weight_zero_changes_nothing():
    from explorer.labels.propagate import Diffusion

    y, piece, within, bridge = _two_pieces_of_one_class()
    seeds = np.full(len(y), -1)
    seeds[[0, 70, 120, 180]] = [0, 0, 1, 2]
    plain = Diffusion(within, power=1.0, neighbours=None).run(seeds, 3)
    zero = Diffusion(within, power=1.0, neighbours=None, bridge=bridge, bridge_weight=0.0).run(seeds, 3)
    np.testing.assert_array_equal(plain.predicted, zero.predicted)
    np.testing.assert_allclose(plain.scores, zero.scores, atol=1e-6)


def test_a_bridge_must_cover_the_same_rows():
    from explorer.labels.propagate import Diffusion

    y, piece, within, bridge = _two_pieces_of_one_class()
    short = KnnGraph(bridge.indices[:10], bridge.similarities[:10], "bridge", None)
    with pytest.raises(ValueError, match="bridge graph has 10 rows"):
        Diffusion(within, bridge=short)
