import numpy as np
import pytest

from explorer.jobs import Cancelled, CancelToken
from explorer.neighbours.knn import knn_graph
from explorer.projection import normalise_layout, pca_preview, place_new, umap_layout
from explorer.projection.umap_layout import umap_knn_arrays


def three_clusters(n_per: int = 150, d: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * 4.0
    x = np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(3), n_per)


def knn_purity_2d(xy: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, :k]
    return float((labels[nn] == labels[:, None]).mean())


def test_umap_keeps_clusters_apart():
    x, labels = three_clusters()
    reports = []
    xy = umap_layout(x, knn_graph(x, k=15), progress=reports.append)
    assert xy.shape == (len(x), 2) and xy.dtype == np.float32
    assert np.isfinite(xy).all() and np.abs(xy).max() <= 1.0 + 1e-6
    np.testing.assert_allclose(xy.mean(axis=0), 0.0, atol=1e-5)
    assert knn_purity_2d(xy, labels) > 0.98
    assert [r.message for r in reports] == ["fitting", "done"]


def test_umap_is_reproducible_with_seed():
    x, _ = three_clusters(60, seed=1)
    g = knn_graph(x, k=10)
    np.testing.assert_allclose(umap_layout(x, g, n_neighbors=10), umap_layout(x, g, n_neighbors=10))


@pytest.mark.parametrize("n", [1, 2, 3, 10, 16, 17])
def test_tiny_collections_do_not_crash(n):
    x = np.random.default_rng(n).normal(size=(n, 8)).astype(np.float32)
    xy = umap_layout(x, knn_graph(x, k=15))
    assert xy.shape == (n, 2) and np.isfinite(xy).all()


def test_missing_neighbours_are_handled():
    x, labels = three_clusters(60, seed=2)
    g = knn_graph(x, k=15)
    g.indices[::3, 8:] = -1
    g.similarities[::3, 8:] = 0.0
    ids, dist = umap_knn_arrays(g, 15)
    assert np.isinf(dist[ids < 0]).all() and (dist[:, 0] == 0).all()
    xy = umap_layout(x, g)
    assert np.isfinite(xy).all()
    assert knn_purity_2d(xy, labels) > 0.95


def test_cancel_before_fitting():
    x, _ = three_clusters(30)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        umap_layout(x, knn_graph(x, k=5), cancel=token)


def test_pca_preview_separates_clusters_and_is_scaled():
    x, labels = three_clusters()
    xy = pca_preview(x)
    assert xy.shape == (len(x), 2) and xy.dtype == np.float32
    assert np.abs(xy).max() == pytest.approx(1.0)
    assert knn_purity_2d(xy, labels) > 0.95
    assert pca_preview(x[:1]).tolist() == [[0.0, 0.0]]
    assert pca_preview(np.zeros((0, 5))).shape == (0, 2)


def test_normalise_layout_degenerate():
    assert (normalise_layout(np.ones((5, 2))) == 0).all()


def test_place_new_weighted_mean():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    nb = np.array([[1, 2], [0, -1], [-1, -1], [1, 2]])
    sims = np.array([[0.5, 0.5], [0.9, 0.0], [0.0, 0.0], [1.0, 0.0]], np.float32)
    out = place_new(xy, nb, sims)
    assert out.shape == (4, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0.5, 0.5])
    np.testing.assert_allclose(out[1], [0.0, 0.0])
    np.testing.assert_allclose(out[2], xy.mean(axis=0))  # nothing known: the map's centre
    np.testing.assert_allclose(out[3], [1.0, 0.0])


def test_imports_stay_lazy():
    import subprocess
    import sys

    code = "import sys, explorer.projection, explorer.neighbours, explorer.labels; print('umap' in sys.modules, 'faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_place_by_graph_follows_neighbours_in_waves():
    from explorer.projection import place_by_graph

    # a chain 0-1-2-3-4: only row 0 and row 4 are placed
    ids = np.array([[0, 1, -1], [1, 0, 2], [2, 1, 3], [3, 2, 4], [4, 3, -1]])
    sims = np.where(ids >= 0, 1.0, 0.0).astype(np.float32)
    from explorer.neighbours.knn import KnnGraph

    g = KnnGraph(ids, sims, "test", None)
    xy = np.zeros((5, 2), np.float32)
    xy[4] = [4.0, 0.0]
    placed = np.array([True, False, False, False, True])
    out = place_by_graph(xy, placed, g)
    np.testing.assert_array_equal(out[[0, 4]], xy[[0, 4]])
    assert out[1, 0] == 0.0 and out[3, 0] == 4.0 and 0.0 < out[2, 0] < 4.0
    with pytest.raises(ValueError, match="no placed rows"):
        place_by_graph(xy, np.zeros(5, bool), g)


def test_sampled_map_and_settling_keep_clusters_and_fixed_points():
    from explorer.projection import map_layout, trustworthiness_on_sample

    x, labels = three_clusters(200)
    g = knn_graph(x, k=15)
    full = map_layout(x, g)
    sampled = map_layout(x, g, sample_above=300, sample_size=200)
    assert (full.method, sampled.method) == ("umap", "umap-sample")
    assert (sampled.fitted, sampled.placed) == (200, 400)
    assert knn_purity_2d(sampled.xy, labels) > 0.97
    t_full, t_sampled = trustworthiness_on_sample(x, full.xy), trustworthiness_on_sample(x, sampled.xy)
    assert t_sampled > t_full - 0.03
    # growing the collection: earlier rows keep their positions exactly
    known = np.ones(len(x), bool)
    known[::10] = False
    grown = map_layout(x, g, known_xy=np.where(known[:, None], full.xy, 0), known=known, scale=full.scale)
    assert grown.method == "kept" and grown.placed == int((~known).sum())
    np.testing.assert_array_equal(grown.xy[known], full.xy[known])
    assert knn_purity_2d(grown.xy, labels) > 0.97


@pytest.mark.parametrize("parallel", [False, True])
def test_settling_many_new_rows_on_every_core_keeps_clusters(parallel, monkeypatch):
    """Above PARALLEL_ABOVE moving rows UMAP's epochs run in parallel; the placed rows still land
    in their own cluster and the fitted rows do not move."""
    import umap.layouts

    from explorer.projection import map_layout, place

    used = []
    real = umap.layouts.optimize_layout_euclidean

    def spy(*args, **kwargs):
        used.append(kwargs["parallel"])
        return real(*args, **kwargs)

    monkeypatch.setattr(umap.layouts, "optimize_layout_euclidean", spy)
    monkeypatch.setattr(place, "PARALLEL_ABOVE", 100 if parallel else 10_000)
    x, labels = three_clusters(200)
    sampled = map_layout(x, knn_graph(x, k=15), sample_above=300, sample_size=200)
    assert used == [parallel] and sampled.placed == 400
    assert knn_purity_2d(sampled.xy, labels) > 0.97
