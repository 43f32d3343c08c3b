"""A second opinion on the pseudo-labels: a linear classifier trained on the human labels alone.

The graph carries a label along neighbours, so an item the encoder placed among another class's
items gets that class with full confidence: on the handwriting collection at 300 labels from
``suggest``, the 165 wrong pseudo-labels had a median calibrated confidence of 0.991, the same as
the right ones, and their label-graph neighbours were 90 % of another class. Neither margins nor
distance to a label can find them. A classifier that draws straight class boundaries through the
embedding sees them differently. benchmarks/dispute.py, labels from ``suggest`` without disputed
picks, at 300 labels: where it disagrees with the graph, 34 % of the pseudo-labels were wrong
against 1.5 % of the rest (handwriting; unbalanced 32 % / 2.2 %, mnist 21 % / 0.9 %, shapes 61 % /
24 %), and it flagged 40-71 % of all wrong ones.

``explorer.labels.suggest`` asks people about some of these items, and
``explorer.labels.calibrate`` checks them apart, since they are wrong far more often than other
pseudo-labels of the same score.
"""

from __future__ import annotations

import warnings

import numpy as np

MAX_HEAD_ROWS = 20_000
"""Human labels the classifier trains on at most (a random subset beyond): a click must stay cheap."""
CHUNK = 65_536
"""Rows normalised and scored at a time, so a million rows need no second copy of the embeddings."""


def second_opinion(
    embeddings: np.ndarray,
    predicted: np.ndarray,
    labelled: np.ndarray,
    rows: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(strength (M,) float64, class (M,) int64) of a classifier on the human labels, for ``rows``
    (M,) (default all N).

    ``embeddings`` (N, D) (unit rows are taken); ``predicted`` (N,) int class of each row (the
    propagation's, which at labelled rows is the human label), -1 where unreached; ``labelled``
    (N,) bool, the human labels the classifier learns (a class-balanced logistic regression).
    Class: the one it finds most likely (-1 when fewer than two classes have labels). Strength:
    its probability of that class minus its probability of ``predicted``; 0 where it agrees, where
    ``predicted`` is -1, and everywhere when fewer than two classes have labels.
    """
    from sklearn.linear_model import LogisticRegression

    from explorer.neighbours.knn import normalise_rows

    predicted = np.asarray(predicted, np.int64)
    rows = np.arange(len(predicted)) if rows is None else np.asarray(rows, np.int64)
    train = np.flatnonzero(np.asarray(labelled, bool) & (predicted >= 0))
    strength, theirs = np.zeros(len(rows)), np.full(len(rows), -1, np.int64)
    if len(np.unique(predicted[train])) < 2:
        return strength, theirs
    if len(train) > MAX_HEAD_ROWS:
        train = np.sort(np.random.default_rng(seed).choice(train, MAX_HEAD_ROWS, replace=False))
    head = LogisticRegression(C=10.0, class_weight="balanced", max_iter=300)
    with warnings.catch_warnings():  # a few hundred labels may not converge fully; the ranking holds
        warnings.simplefilter("ignore")
        head.fit(normalise_rows(embeddings[train]), predicted[train])
    column = np.full(int(predicted.max()) + 1, -1)
    column[head.classes_] = np.arange(len(head.classes_))
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        p = head.predict_proba(normalise_rows(embeddings[part]))
        own = column[np.maximum(predicted[part], 0)]
        agree_p = np.where(own >= 0, p[np.arange(len(part)), np.maximum(own, 0)], 0.0)
        strength[start : start + len(part)] = np.where(predicted[part] >= 0, p.max(axis=1) - agree_p, 0.0)
        theirs[start : start + len(part)] = head.classes_[p.argmax(axis=1)]
    return strength, theirs


def disputed_by(opinion: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(N,) bool: rows whose pseudo-label ``predicted`` (N,) (-1 unreached) is not the class
    ``opinion`` (N,) the classifier finds most likely (-1: no opinion); the rows where
    :func:`second_opinion`'s strength is above 0."""
    predicted = np.asarray(predicted)
    return (predicted >= 0) & (opinion >= 0) & (opinion != predicted)
