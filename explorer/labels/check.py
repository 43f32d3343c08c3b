"""Label mistakes: human and imported labels the graph disagrees with, most suspect first.

Confident learning (Northcutt, Jiang & Chuang 2021) ranks a given label by how likely a model that
never saw it finds it: out-of-sample probabilities, then the labels whose own class gets the
least. Here the model is the propagation itself: the labels are dealt into ``FOLDS`` folds (each
class spread over all of them), each fold is hidden in turn and propagated from the others
(``Diffusion.run_apart``), and a label's suspicion is the share of the other labels' evidence
that goes to another class: ``1 - p[given]`` for the hidden item's class distribution p (rows sum
to 1). Where the embedding's own neighbours are given, that is averaged with their vote: the
share of a label's ``VOTERS`` nearest labelled neighbours whose label differs. The vote sees the
fine grain the label space smooths over; the propagation sees past a neighbourhood of mistakes.
Measured with benchmarks/label_check.py (5 % of labels flipped, raw pixels; flips in the first
5 % of the ranking): mnist 0.704 propagation alone, 0.808 vote alone; handwriting 0.688, 0.836,
and 0.868 for the average. An item nothing reached gets no suspicion from the propagation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.jobs import CancelToken
from explorer.labels.calibrate import MIN_CLASS_LABELS, hidden_folds
from explorer.labels.propagate import Diffusion

FOLDS = 10
"""More folds keep more of each class while one is hidden (a tenth is gone, not a fifth)."""
VOTERS = 10
# a class needs MIN_CLASS_LABELS labels to be checked, as for calibration: hiding one of two
# halves the class's evidence


@dataclass(frozen=True)
class Disagreement:
    """Checked labels, most suspect first.

    ``rows`` (M,) int64 row positions of the labels checked; ``suspicion`` (M,) float64 in [0, 1]
    (``1 - p[given]``); ``given`` (M,) int64 the label's class column; ``graph_says`` (M,) int64
    the class the other labels give the row (-1 where nothing reached it); ``unchecked`` the number
    of labels in classes with fewer than ``MIN_CLASS_LABELS``.
    """

    rows: np.ndarray
    suspicion: np.ndarray
    given: np.ndarray
    graph_says: np.ndarray
    unchecked: int


def disagreement(
    solver: Diffusion,
    seeds: np.ndarray,
    n_classes: int,
    rejected: np.ndarray | None = None,
    *,
    neighbours: np.ndarray | None = None,
    folds: int = FOLDS,
    cancel: CancelToken | None = None,
) -> Disagreement:
    """Rank the labels ``seeds`` (N,) (class column or -1) by how strongly the rest disagree.

    ``rejected`` (R, 2) (row, column) pairs: a hidden label's own rejections are hidden with it.
    ``neighbours`` (N, k+1) the embedding's kNN graph (column 0 the row itself, -1 for none) for
    the vote. One propagation of every class per fold.
    """
    seeds = np.asarray(seeds, np.int64)
    counts = np.bincount(seeds[seeds >= 0], minlength=n_classes)
    small = (seeds >= 0) & (counts[np.maximum(seeds, 0)] < MIN_CLASS_LABELS)
    rows_out, suspicion, says = [], [], []
    # only the class distributions are read: the reach of the confidence is not computed
    for hidden, result in hidden_folds(solver, seeds, n_classes, rejected, folds, cancel, confidence_reach=False):
        p = np.asarray(result.scores[hidden], np.float64)
        reached = result.predicted[hidden] >= 0
        own = p[np.arange(len(hidden)), seeds[hidden]]
        rows_out.append(hidden)
        suspicion.append(np.where(reached, 1.0 - own, 0.0))
        says.append(result.predicted[hidden])
    if not rows_out:
        empty = np.zeros(0, np.int64)
        return Disagreement(empty, np.zeros(0), empty, empty, int(small.sum()))
    rows = np.concatenate(rows_out)
    score = np.concatenate(suspicion)
    if neighbours is not None:
        vote = _vote(np.asarray(neighbours)[rows, 1:], seeds, rows)
        score = np.where(np.isnan(vote), score, 0.5 * score + 0.5 * np.nan_to_num(vote))
    order = np.lexsort((rows, -score))  # most suspect first, ties by row for a stable ranking
    rows, score = rows[order], score[order]
    return Disagreement(rows, score, seeds[rows], np.concatenate(says)[order], int(small.sum()))


def _vote(neighbours: np.ndarray, seeds: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(M,) share of each row's first ``VOTERS`` labelled neighbours (M, k) whose label differs
    from its own; NaN where none is labelled."""
    valid = neighbours >= 0
    theirs = np.where(valid, seeds[np.maximum(neighbours, 0)], -1)
    labelled = theirs >= 0
    counted = labelled & (np.cumsum(labelled, axis=1) <= VOTERS)
    differ = (counted & (theirs != seeds[rows][:, None])).sum(axis=1)
    total = counted.sum(axis=1)
    return np.divide(differ, total, out=np.full(len(rows), np.nan), where=total > 0)
