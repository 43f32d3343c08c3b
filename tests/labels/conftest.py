import numpy as np
import pytest

from explorer.neighbours.knn import knn_graph


def clusters(n_per: int, n_clusters: int, d: int = 16, spread: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, d)) * 6.0
    x = np.concatenate([c + spread * rng.normal(size=(n_per, d)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(n_clusters), n_per)


@pytest.fixture
def make_clusters():
    """The ``clusters(n_per, n_clusters, d=16, spread=1.0, seed=0) -> (x, y)`` data maker."""
    return clusters


@pytest.fixture
def two_clusters():
    x, y = clusters(100, 2)
    return x, y, knn_graph(x, k=10)


@pytest.fixture
def three_clusters():
    x, y = clusters(80, 3, seed=5)
    return x, y, knn_graph(x, k=10)
