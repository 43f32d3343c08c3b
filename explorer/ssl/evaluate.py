"""How good are embeddings? kNN accuracy, a linear probe, and the raw-pixel baseline."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    fits = counts.min() >= 2 and int(np.ceil(test_size * len(labels))) >= len(counts)
    stratify = labels if fits else None
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


@dataclass
class EvaluationRow:
    """Scores of one set of embeddings: kNN and linear-probe accuracy in [0, 1], dimension D."""

    name: str
    knn: float
    linear: float
    dim: int


@dataclass
class EvaluationReport:
    """The current embeddings next to the baselines, on the same ``images`` labelled images."""

    rows: list[EvaluationRow]
    images: int
    classes: int
    k: int
    not_found: int = 0  # rows of the truth file whose image has no current embedding
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A plain-text table, best kNN accuracy marked, one line per embedding."""
        width = max(len(r.name) for r in self.rows)
        best = max(r.knn for r in self.rows)
        lines = [
            f"{self.images} labelled images, {self.classes} classes; kNN: k={self.k}, cosine, leave-one-out; "
            "linear probe: logistic regression, 70/30 stratified split",
            f"{'embeddings':<{width}}  {'kNN acc':>7}  {'linear':>7}  {'dim':>6}",
        ]
        for r in self.rows:
            mark = "  <- best kNN" if r.knn == best else ""
            lines.append(f"{r.name:<{width}}  {r.knn:7.3f}  {r.linear:7.3f}  {r.dim:>6}{mark}")
        if self.not_found:
            lines.append(f"{self.not_found} row(s) of the label file have no current embedding and were left out")
        lines += self.notes
        return "\n".join(lines)

    def metrics(self) -> dict[str, float]:
        """Flat numbers for the run record, e.g. ``{'current knn': 0.98, ...}``."""
        out: dict[str, float] = {}
        for r in self.rows:
            out[f"{r.name} knn"] = r.knn
            out[f"{r.name} linear"] = r.linear
        return out


def compare_embeddings(named: dict[str, np.ndarray], labels: np.ndarray, k: int = 20) -> list[EvaluationRow]:
    """One ``EvaluationRow`` per (name -> (N, D) embeddings) entry, all scored on the same (N,) labels."""
    return [
        EvaluationRow(name, knn_accuracy(x, labels, k=k), linear_probe_accuracy(x, labels), int(x.shape[1]))
        for name, x in named.items()
    ]
