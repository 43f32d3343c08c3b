"""How good are embeddings? kNN accuracy, a linear probe, and the raw-pixel baseline."""

from __future__ import annotations

import numpy as np


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _check(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    embeddings = np.asarray(embeddings)
    labels = np.asarray(labels)
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise ValueError(f"need embeddings (N, D) and labels (N,), got {embeddings.shape} and {labels.shape}")
    if len(labels) < 2:
        raise ValueError("need at least 2 labelled embeddings")
    return embeddings, labels


def knn_accuracy(embeddings: np.ndarray, labels: np.ndarray, k: int = 20, block: int = 1024) -> float:
    """Leave-one-out kNN accuracy in [0, 1] with cosine similarity.

    embeddings (N, D), labels (N,) of any hashable kind. Each item's k most similar other items
    vote for their label with weight = similarity; ties go to the smallest class index.
    """
    embeddings, labels = _check(embeddings, labels)
    classes, y = np.unique(labels, return_inverse=True)
    x = _unit_rows(embeddings)
    n = len(x)
    k = max(1, min(k, n - 1))
    correct = 0
    for start in range(0, n, block):
        sims = x[start : start + block] @ x.T  # (b, N)
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -np.inf  # leave the item itself out
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (b, k)
        weights = np.take_along_axis(sims, idx, axis=1)
        votes = np.zeros((len(sims), len(classes)))
        np.add.at(votes, (np.repeat(rows, k), y[idx].ravel()), np.maximum(weights, 0).ravel() + 1e-6)
        correct += int((votes.argmax(axis=1) == y[start : start + block]).sum())
    return correct / n


def linear_probe_accuracy(embeddings: np.ndarray, labels: np.ndarray, seed: int = 0, test_size: float = 0.3) -> float:
    """Test accuracy of a logistic regression on standardised embeddings, stratified split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    embeddings, labels = _check(embeddings, labels)
    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        embeddings, labels, test_size=test_size, random_state=seed, stratify=stratify
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(x_train, y_train)
    return float(model.score(x_test, y_test))


def pixel_features(images: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, S*S*3) float32 raw pixels, centred and L2-normalised per image."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (N, S, S, 3) images, got {images.shape}")
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    flat -= flat.mean(axis=1, keepdims=True)
    return _unit_rows(flat)
