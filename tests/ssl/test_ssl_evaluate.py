import numpy as np
import pytest

from explorer.ssl.evaluate import knn_accuracy, linear_probe_accuracy, pixel_features


def separable(n_per: int = 30, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(classes, 8) * 10
    x = np.concatenate([c + rng.normal(scale=0.5, size=(n_per, 8)) for c in centres])
    return x.astype(np.float32), np.repeat(np.array(["cat", "dog", "owl"][:classes]), n_per)


def slow_knn(x: np.ndarray, y: np.ndarray, k: int) -> float:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    correct = 0
    for i in range(len(x)):
        sims = [(float(x[i] @ x[j]), j) for j in range(len(x)) if j != i]
        top = sorted(sims, reverse=True)[:k]
        votes: dict = {}
        for s, j in top:
            votes[y[j]] = votes.get(y[j], 0.0) + max(s, 0) + 1e-6
        correct += max(votes, key=votes.get) == y[i]
    return correct / len(x)


def test_separable_data_scores_one():
    x, y = separable()
    assert knn_accuracy(x, y, k=5) == 1.0
    assert linear_probe_accuracy(x, y) == 1.0


def test_knn_matches_loop_reference_on_noisy_data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    assert knn_accuracy(x, y, k=7, block=16) == pytest.approx(slow_knn(x, y, 7))


def test_pixel_features_are_centred_unit_rows():
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    f = pixel_features(images)
    assert f.shape == (5, 48) and f.dtype == np.float32
    assert np.allclose(np.linalg.norm(f, axis=1), 1) and np.allclose(f.mean(axis=1), 0, atol=1e-6)


def test_bad_shapes():
    with pytest.raises(ValueError):
        knn_accuracy(np.zeros((3, 2)), np.zeros(4))
