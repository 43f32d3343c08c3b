"""Pseudo-label rounds: a linear head trained on human labels plus confident pseudo-labels.

Lee 2013 ("Pseudo-Label: the simple and efficient semi-supervised learning method") and Xie et
al. 2020 (Noisy Student): a classifier trained on the confident part of its own (here: the
graph diffusion's) predictions generalises beyond where the graph reaches and smooths out the
graph's local mistakes. Each round fits a class-balanced multinomial logistic regression on the
embeddings of the human labels (weight 1) and of the unlabelled rows whose confidence is in the
top half (weight = confidence), then averages its class distribution with the current one.
Human labels stay clamped and rejected classes stay at 0.
"""

from __future__ import annotations

import warnings

import numpy as np

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.labels.propagate import Propagation, certainty
from explorer.neighbours.knn import normalise_rows

MAX_TRAINING_ROWS = 50_000
"""Pseudo-labelled rows a round trains on at most (a random subset, weighted by confidence)."""


def pseudo_label_rounds(
    embeddings: np.ndarray,
    propagation: Propagation,
    seeds: np.ndarray,
    rounds: int,
    rejected: np.ndarray | None = None,
    head_weight: float = 0.5,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> Propagation:
    """Refine a diffusion result with ``rounds`` rounds of a pseudo-labelled linear head.

    ``embeddings`` (N, D); ``propagation`` the diffusion result over the same rows; ``seeds`` (N,)
    int64 human class or -1; ``rejected`` (R, 2) ``(row, class)`` pairs. Each round: train on
    human rows plus pseudo-labelled rows with confidence at or above the median of reached
    unlabelled rows, predict every row, and mix ``p = (1 - head_weight) p_graph + head_weight
    p_head`` (rows the graph did not reach take ``p_head``). Confidence becomes
    ``certainty(p) x (1 - head_weight (1 - reach))`` where reach is the graph's confidence over its
    certainty, so a row far from every label cannot look certain on the head's word alone.
    Returns a new :class:`Propagation`; ``rounds == 0`` returns ``propagation`` itself.
    """
    from sklearn.linear_model import LogisticRegression

    seeds = np.asarray(seeds, dtype=np.int64).ravel()
    n, n_classes = propagation.scores.shape
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    if len(seeds) != n or len(embeddings) != n:
        raise ValueError(f"embeddings ({len(embeddings)}), seeds ({len(seeds)}) and scores ({n}) must have equal rows")
    human = seeds >= 0
    present = np.unique(seeds[human])
    if rounds == 0 or len(present) < 2:
        return propagation  # a classifier needs two classes
    x = normalise_rows(embeddings)
    rej = np.zeros((0, 2), np.int64) if rejected is None else np.asarray(rejected, np.int64).reshape(-1, 2)
    graph_scores = propagation.scores.astype(np.float64)
    reached = graph_scores.sum(axis=1) > 0
    graph_certainty = certainty(graph_scores)
    reach = np.divide(propagation.confidence, graph_certainty, out=np.zeros(n), where=graph_certainty > 1e-6).clip(
        0.0, 1.0
    )
    reach[~reached] = 0.0
    reach[human] = 1.0
    current, confidence = propagation.predicted.copy(), propagation.confidence.astype(np.float64)
    scores = graph_scores
    rng = np.random.default_rng(seed)
    for done in range(rounds):
        if cancel is not None:
            cancel.raise_if_cancelled()
        pool = np.flatnonzero(~human & (current >= 0))
        if len(pool):
            pool = pool[confidence[pool] >= np.median(confidence[pool])]
        if len(pool) > MAX_TRAINING_ROWS:
            pool = rng.choice(pool, MAX_TRAINING_ROWS, replace=False, p=confidence[pool] / confidence[pool].sum())
        rows = np.concatenate([np.flatnonzero(human), pool])
        target = np.where(human[rows], seeds[rows], current[rows])
        weight = np.where(human[rows], 1.0, np.maximum(confidence[rows], 1e-3))
        head = LogisticRegression(C=10.0, class_weight="balanced", max_iter=300)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            head.fit(x[rows], target, sample_weight=weight)
        p_head = np.zeros((n, n_classes))
        p_head[:, head.classes_] = head.predict_proba(x)
        # the head speaks where the graph is far from any label; near labels the graph knows better
        mix = (head_weight * (1.0 - reach))[:, None]
        scores = np.where(reached[:, None], (1.0 - mix) * graph_scores + mix * p_head, p_head)
        scores[rej[:, 0], rej[:, 1]] = 0.0
        scores[human] = 0.0
        scores[np.flatnonzero(human), seeds[human]] = 1.0
        mass = scores.sum(axis=1, keepdims=True)
        scores = np.divide(scores, mass, out=np.zeros_like(scores), where=mass > 0)
        alive = mass.ravel() > 0
        current = np.where(alive, scores.argmax(axis=1), -1)
        current[human] = seeds[human]
        confidence = np.where(alive, certainty(scores) * (1.0 - head_weight * (1.0 - reach)), 0.0)
        confidence[human] = 1.0
        progress(Progress("rounds", done + 1, rounds, f"pseudo-label round {done + 1} of {rounds}"))
    # reach stays the graph's: the calibration curve was fitted on margin x the graph's reach, and
    # the head's word does not bring a row closer to a human label
    return Propagation(
        current.astype(np.int64), confidence.astype(np.float32), scores.astype(np.float32), propagation.reach
    )
