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
