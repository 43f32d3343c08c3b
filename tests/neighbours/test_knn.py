import numpy as np
import pytest

from explorer.jobs import Cancelled, CancelToken
from explorer.neighbours.knn import KnnGraph, choose_index, knn_graph, near_duplicates


def brute_force(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sim, order, axis=1)


def test_exact_graph_matches_brute_force():
    x = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32) * 7.0  # unnormalised
    g = knn_graph(x, k=8)
    ids, sims = brute_force(x.astype(np.float64), 8)
    assert isinstance(g, KnnGraph) and g.k == 8 and g.index_kind == "flat-ip" and g.recall is None
    assert g.indices.dtype == np.int64 and g.similarities.dtype == np.float32
    assert g.indices.shape == (300, 9)
    np.testing.assert_array_equal(g.indices[:, 0], np.arange(300))
    np.testing.assert_allclose(g.similarities[:, 0], 1.0)
    np.testing.assert_allclose(g.similarities[:, 1:], sims, atol=1e-5)
    assert (g.indices[:, 1:] == ids).mean() > 0.99  # ties may swap


def test_self_first_with_duplicate_vectors():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(20, 8)).astype(np.float32)
    x = np.concatenate([base, base, base, base[:5] * 3.0])  # exact copies and scaled copies
    g = knn_graph(x, k=5)
    np.testing.assert_array_equal(g.indices[:, 0], np.arange(len(x)))
    assert (g.indices[:, 1:] != np.arange(len(x))[:, None]).all()  # self never repeated
    # every copy of row 0 sees the other copies as perfect neighbours
    copies = {0, 20, 40, 60}
    for r in copies:
        assert copies - {r} <= set(g.indices[r, 1:4].tolist())


@pytest.mark.parametrize("n", [1, 2, 5, 6])
def test_small_collections_shrink_k(n):
    x = np.random.default_rng(n).normal(size=(n, 4)).astype(np.float32)
    g = knn_graph(x, k=5)
    assert g.k == min(5, n - 1)
    assert g.indices.shape == (n, g.k + 1)
    np.testing.assert_array_equal(g.indices[:, 0], np.arange(n))
    for r in range(n):  # all the other rows are neighbours
        assert set(g.indices[r, 1:].tolist()) == set(range(n)) - {r}


def test_zero_rows_and_empty():
    x = np.zeros((4, 3), np.float32)
    x[1] = 1
    g = knn_graph(x, k=2)
    np.testing.assert_array_equal(g.indices[:, 0], np.arange(4))
    assert knn_graph(np.zeros((0, 3), np.float32)).indices.shape == (0, 1)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="NaN"):
        knn_graph(np.full((3, 2), np.nan, np.float32))


@pytest.mark.parametrize("approximate", ["ivf", "hnsw"])
def test_approximate_path_reports_recall_and_progress(approximate):
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(20, 32))
    # sorted by cluster, like a collection scanned folder by folder
    x = (centres[np.sort(rng.integers(0, 20, 3000))] + 0.3 * rng.normal(size=(3000, 32))).astype(np.float32)
    reports = []
    g = knn_graph(x, k=10, progress=reports.append, exact_limit=1000, recall_sample=300, approximate=approximate)
    assert g.index_kind.startswith(approximate)
    assert g.recall is not None and 0.95 <= g.recall <= 1.0
    np.testing.assert_array_equal(g.indices[:, 0], np.arange(3000))
    assert {p.step for p in reports} >= {"index", "neighbours", "recall"}
    assert reports[-1].step == "neighbours"
    assert g.details["knn_seconds"] > 0 and g.details["index_bytes"] > 0
    # the reported recall is what the whole graph achieves, not a promise
    true_ids, _ = brute_force(x.astype(np.float64), 10)
    found = (g.indices[:, 1:, None] == true_ids[:, None, :]).any(axis=1).mean()
    assert abs(found - g.recall) < 0.03


def test_index_choice_follows_size_and_memory():
    assert choose_index(1000, 128).kind == "flat-ip"
    big = choose_index(1_000_000, 128, memory_budget=10 << 30)
    # IVF stores float16 even with memory to spare: its search streams the vectors, half the bytes is faster
    assert (big.kind, big.storage) == ("ivf", "float16") and big.name == "ivf2000-float16"
    assert choose_index(1_000_000, 128, memory_budget=300 << 20).storage == "float16"
    assert choose_index(1_000_000, 128, memory_budget=200 << 20).storage == "sq8"
    small = choose_index(1_000_000, 512, memory_budget=600 << 20)
    assert small.storage == "sq8" and small.name.endswith("-sq8") and small.bytes < 4 * 1_000_000 * 512
    assert choose_index(1_000_000, 128, memory_budget=10 << 30, approximate="hnsw").name == "hnsw32"
    with pytest.raises(ValueError, match="'ivf' or 'hnsw'"):
        choose_index(10, 4, exact_limit=1, approximate="lsh")


@pytest.mark.parametrize("budget,storage", [(200_000, "float16"), (1, "sq8")])
def test_compressed_storage_when_memory_is_short(budget, storage):
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(10, 24))
    x = (centres[rng.integers(0, 10, 2000)] + 0.3 * rng.normal(size=(2000, 24))).astype(np.float32)
    g = knn_graph(x, k=8, exact_limit=500, memory_budget=budget, recall_sample=200)
    assert g.index_kind.endswith(storage)
    assert g.recall >= 0.9
    np.testing.assert_array_equal(g.indices[:, 0], np.arange(2000))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    exact = np.einsum("nd,nkd->nk", u, u[g.indices[:, 1:]])
    np.testing.assert_allclose(g.similarities[:, 1:], exact, atol=1e-5)  # true similarities, not rounded ones
    assert (np.diff(g.similarities[:, 1:], axis=1) <= 1e-6).all()


def test_cancel_stops_search():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        knn_graph(np.ones((50, 4), np.float32), k=3, cancel=token)


def test_near_duplicates_finds_planted_pairs():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 32)).astype(np.float32)
    x[150] = x[10] + 1e-4 * rng.normal(size=32)
    x[199] = x[42] * 2.0
    x[170] = x[10] * 0.5
    pairs, sims = near_duplicates(knn_graph(x, k=5), threshold=0.98)
    assert pairs.dtype == np.int64 and pairs.shape[1] == 2 and sims.shape == (len(pairs),)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    assert {tuple(p) for p in pairs.tolist()} == {(10, 150), (42, 199), (10, 170), (150, 170)}
    assert (np.diff(sims) <= 0).all() and (sims >= 0.98).all()
    assert sims[pairs.tolist().index([42, 199])] == pytest.approx(1.0, abs=1e-6)
    none, none_sims = near_duplicates(knn_graph(x, k=5), threshold=1.01)
    assert len(none) == 0 and len(none_sims) == 0


def test_near_duplicates_sorted_by_similarity():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(100, 16)).astype(np.float32)
    x[50] = x[0] + 0.05 * rng.normal(size=16)
    x[60] = x[1] + 0.001 * rng.normal(size=16)
    g = knn_graph(x, k=4)
    pairs, sims = near_duplicates(g, threshold=0.9)
    assert pairs[:2].tolist() == [[1, 60], [0, 50]]
    assert sims[0] > sims[1] >= 0.9
