"""Calibrated confidence: a pseudo-label's confidence is the share of such pseudo-labels that are right.

The diffusion's own confidence (certainty x reach, :func:`~explorer.labels.propagate.propagate`)
ranks pseudo-labels well but is no probability: on the demo digits, pseudo-labels scoring 0.5 or
more were 99.9 % right, yet only 1 % of them scored 0.9, so "accept all at 0.9 or more" took
almost nothing. So a score, the margin (:func:`score`), is mapped to a probability learnt
from the person's own labels, by cross-validation: the human labels are split into ``FOLDS`` folds (per class, so
each class keeps labels in every fold's rest); each fold is hidden in turn and propagated from
the others; each hidden label gives one (score, right or wrong) pair. An isotonic regression of
right on score (pool adjacent violators; Zadrozny & Elkan 2002) with lightly smoothed blocks,
``(right + PRIOR) / (count + 2 PRIOR)``, turns the pairs into a rising curve, so no pseudo-label is
ever called certain, and the order of pseudo-labels by confidence is kept.

The hidden labels stand in for the unlabelled items. They are a little harder than those (many
were picked by Label next because the propagation was unsure of them, and each fold is
propagated from four fifths of the labels), so a curve over them alone runs low (see "What a
check stands for" below for what corrects it). The score is the margin (top class minus second)
rather than the entropy of the certainty: benchmarks/calibration.py, labels from Label next,
expected calibration error with margin against entropy: demo digits 0.015-0.062 against
0.027-0.111 (30-400 labels), overlapping clusters 0.013-0.216 against 0.034-0.271 (50-400 labels,
2 collections), better at every checkpoint. The margin alone, not margin x reach (the graph
distance to the nearest label, :func:`~explorer.labels.propagate.reach_of`; kept only beyond
the graph's reach, :func:`score`): a hidden label has
lost the nearest label it had (often itself the only label of its cluster), so its reach is far
lower than that of the items it stands for, and a curve over margin x reach learnt "low score,
yet right" from checks and gave it to items at the same low score that are wrong. The suite's
loops (this session's prepared projects; labels from ``suggest``, or the first 10 at random;
checkpoints at 30, 50, 70, 100, 150, 200 and 300 labels), the estimate of "right" against the
truth, mean |miss| (largest) in points, margin x reach -> margin: shapes 9.0 (18.5) -> 5.1 (13.3)
and, first 10 at random, 8.8 (15.1) -> 4.2 (9.7); glyphs 8.8 (15.4) -> 8.2 (15.2); handwriting
2.6 (9.5) -> 1.9 (6.9) and 1.5 (5.0) -> 1.1 (3.0); unbalanced 2.6 (12.4) -> 1.9 (7.5); mnist 1.2
(3.2) -> 0.9 (1.5); mnist-cluttered 9.1 either way. The calibrated confidence ranked right above
wrong better too: ROC AUC on the unlabelled items higher at 36 of 54 checkpoints (handwriting at 70
labels 0.54 -> 0.77), at worst 0.053 lower. With labels drawn at random rather than by a loop
(benchmarks/estimate.py, 3 draws at 50-300 labels) the mean miss over five collections went 1.9 ->
1.6 points (mnist alone 1.2 -> 1.7).

Labels that ``suggest`` asked for because a classifier on the human labels disputed their
pseudo-label (``explorer.labels.dispute``) are wrong far more often than other items of the same
score, and a curve over all checks then runs low. So each hidden label is also asked whether a
classifier on the other folds disputes it, and with enough checks on both sides the disputed
ones get a curve of their own, applied to the unlabelled items the classifier on all labels
disputes (``Calibration.disputed``).

What a check stands for: labels from ``suggest`` sit where the map is hard (borders, stray items,
small classes), and each stands for few unlabelled items, while a typical label stands for a
whole cluster. Where the map's vectors are at hand, each check weighs the square root of how many
items it is the nearest label to (:func:`stands_for`), so the curve leans toward the items the
collection is made of. benchmarks/estimate_loop.py, labels from ``suggest`` on the suite's trained
maps with a good encoder (two loops, 24 checkpoints from 50 to 300 labels): the estimate of
"right" missed by 3.3 points on average (up to 9.4, nearly always low) with
``(right + 1) / (count + 2)`` and equal weights, by 1.3 (up to 4.0) with the weights and ``PRIOR``.

Classes nobody has labelled yet: a pseudo-label is always a labelled class, so their items are all
wrong, and no hidden label can show it. Good-Turing estimates their share from the classes
labelled once (:func:`unseen_share`); hiding those lone labels together shows how much confidence
the curve gives such items (``Calibration.lone``), and that much is taken off (:func:`calibrated`).
On a map whose classes lie apart the curve already gives them little (they are far from every
label); on the glyphs collection (43 classes, a weak encoder, 50 labels from ``suggest``, 15
classes without one) the estimate went from 31 points high to 18.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from explorer.jobs import CancelToken
from explorer.labels.propagate import REACH_LIMIT, Diffusion, Propagation, margin, reach_of

FOLDS = 5
"""Cross-validation folds over the human labels."""
MIN_HELD_OUT = 20
"""Hidden labels needed (in classes with ``MIN_CLASS_LABELS``) before confidence is calibrated."""
MIN_CLASS_LABELS = 3
"""Labels a class needs before its labels are checked. Hiding one of two halves what the class
has: on overlapping clusters at 30 labels (16 classes) such checks made the estimate 22 % right
where 90 % was; with 3 it waits (uncalibrated) and 50 labels give ECE 0.09-0.18, not 0.12-0.22."""
PRIOR = 0.25
"""Pseudo-counts of right and of wrong added to each isotonic block. ``1`` (Laplace) held the top
block, where most unlabelled items are, at 0.97 when its 30 checks all came back right and the
items there were 99 % right: the estimate ran 4-9 points low at 50-100 labels. Chosen on
benchmarks/estimate_loop.py (mnist, handwriting, unbalanced; two loops; with weights): mean miss
1.65 / 1.31 / 1.14 points for 0.5 / 0.25 / 0.1, largest 5.6 / 4.0 / 3.0. Not lower: on
overlapping Gaussian classes (tests/labels/test_calibrate.py) the items behind 26 checks that all
came back right were 95 % right, and 0.1 put them at 99.7 %."""
STANDS_FOR_SAMPLE = 100_000
"""Items sampled at most to count what each label stands for (:func:`stands_for`), fewer where
labels x dimensions would make it more than ``STANDS_FOR_WORK`` multiply-adds (about a second)."""
STANDS_FOR_WORK = 2e9
REFIT_SHARE = 0.1
"""A kept calibration is fitted again once human labels and rejections changed by this share
(and by at least ``REFIT_MIN``), or the number of classes changed: each fit costs ``FOLDS``
propagations of every class."""
REFIT_MIN = 5
LEVEL = 0.9
"""How sure the range given beside the estimate of "right" is meant to be (:func:`interval`)."""
SCORE = "margin"
"""What the curves map (:func:`score`), written with each saved curve: one fitted over another
score is fitted again."""
_BEYOND = float(np.float32(reach_of(np.array([REACH_LIMIT]))[0]))  # the reach of a row no label reaches


@dataclass(frozen=True)
class Calibration:
    """A rising curve from the diffusion's score to the probability that a pseudo-label is right.

    ``scores`` (K,) and ``rates`` (K,): the curve's knots (both strictly increasing), straight
    lines between them; ``held_out`` labels were checked, ``right`` of them were right (all of
    them, disputed ones included). ``disputed``: the curve for pseudo-labels a classifier on the
    human labels disagrees with (``explorer.labels.dispute``), fitted on the checks it disputed,
    or None (too few such checks: this curve serves every row). ``lone``: the mean confidence the
    curve gave the labels of classes labelled once when they were hidden, as it gives the items
    of a class with no label (:func:`unseen_share`); None if no class had one label.
    ``effective``: how many equal checks the weighted ones are worth (Kish: (sum w)^2 / sum w^2),
    what the estimate's uncertainty rests on (:func:`interval`); None in curves saved before it
    (``held_out`` then stands in).
    """

    scores: np.ndarray
    rates: np.ndarray
    held_out: int
    right: int
    disputed: Calibration | None = None
    lone: float | None = None
    effective: float | None = None

    def __call__(self, score: np.ndarray, disputed: np.ndarray | None = None) -> np.ndarray:
        """(N,) float32 calibrated confidence of diffusion scores ``score`` (N,) in [0, 1];
        ``disputed`` (N,) bool picks the disputed curve for those rows, where there is one."""
        score = np.asarray(score, np.float64)
        out = np.interp(score, self.scores, self.rates)
        if self.disputed is not None and disputed is not None:
            out = np.where(disputed, np.interp(score, self.disputed.scores, self.disputed.rates), out)
        return out.astype(np.float32)

    def to_json(self) -> dict:
        return {
            "scores": self.scores.tolist(),
            "rates": self.rates.tolist(),
            "held_out": self.held_out,
            "right": self.right,
            "disputed": None if self.disputed is None else self.disputed.to_json(),
            "lone": self.lone,
            "effective": self.effective,
            "score": SCORE,
        }

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        """The calibration ``to_json`` wrote; ValueError if it is not one."""
        if data.get("score") != SCORE:  # a curve over another score (margin x reach, before): fit again
            raise ValueError(f"a curve over another score than {SCORE!r}")
        scores, rates = np.asarray(data["scores"], np.float64), np.asarray(data["rates"], np.float64)
        ok = scores.ndim == 1 and scores.shape == rates.shape and len(scores) >= 1
        if (
            not ok
            or (np.diff(scores) <= 0).any()
            or (np.diff(rates) < 0).any()
            or not ((rates >= 0) & (rates <= 1)).all()
        ):
            raise ValueError("not a rising curve in [0, 1]")
        disputed, lone, effective = data.get("disputed"), data.get("lone"), data.get("effective")
        inner = None if disputed is None else cls.from_json(disputed)
        if lone is not None and not 0.0 <= float(lone) <= 1.0:
            raise ValueError("the confidence of lone labels is not in [0, 1]")
        if effective is not None and not 0.0 < float(effective) <= int(data["held_out"]) * (1 + 1e-9):
            raise ValueError("the effective number of checks is not in (0, held out]")
        return cls(
            scores,
            rates,
            int(data["held_out"]),
            int(data["right"]),
            inner,
            None if lone is None else float(lone),
            None if effective is None else float(effective),
        )

    def describe(self) -> str:
        return f"calibrated on {self.held_out:,} hidden human labels ({self.right / self.held_out:.0%} came back right)"


def _block_starts(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B,) first position of each block of the weighted least-squares non-decreasing fit of ``y``
    (in the order given); the blocks' means are strictly increasing.

    The fit is scikit-learn's ``IsotonicRegression`` (pool adjacent violators in Cython): the same
    blocks as our own Python loop had, 5x faster from 5,000 labels (7.1 / 1.4 ms; 100k: 92 / 18 ms),
    slower only below a few hundred where both take well under a frame."""
    from sklearn.isotonic import IsotonicRegression

    fit = IsotonicRegression(increasing=True).fit_transform(np.arange(len(y)), y, sample_weight=w)
    return np.flatnonzero(np.r_[True, fit[1:] != fit[:-1]])  # equal neighbours are one block


def score(propagation: Propagation) -> np.ndarray:
    """(N,) float64 margin (top class minus second) of a propagation's rows: what the calibration
    maps (not x reach: see the module's docstring), except on rows beyond the graph's reach
    (``REACH_LIMIT`` steps or more from every label: reached over the bridge only, or labelled by
    ``propagate --rounds``' classifier), where it is margin x reach, near 0: no check speaks for
    them, and a class with no label at all sits there."""
    top = margin(np.asarray(propagation.scores, np.float64))
    if propagation.reach is None:
        return top
    reach = np.asarray(propagation.reach, np.float64)
    return np.where(reach > _BEYOND * (1.0 + 1e-4), top, top * reach)


def fit_calibration(
    score: np.ndarray,
    right: np.ndarray,
    n_classes: int,
    disputed: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    lone: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> Calibration | None:
    """The rising curve of ``right`` (M,) bool on ``score`` (M,) in [0, 1]; None below ``MIN_HELD_OUT``.

    ``disputed`` (M,) bool marks the checks a classifier on the other labels disagreed with
    (:func:`held_out_checks`): with ``MIN_HELD_OUT`` of them and of the others, the curve is
    fitted on the others and the disputed get their own (``Calibration.disputed``). Labels from
    ``suggest`` are often disputed ones, wrong far more often than unlabelled items of the same
    score: handwriting, 300 labels from ``suggest``, one curve over all checks estimated 0.917
    right where 0.969 was, two curves 0.969.

    ``weight`` (M,) > 0: what each check counts for (:func:`held_out_checks`); equal when None.
    ``lone``: (scores (L,), disputed flags (L,) or None) of the labels of classes labelled once,
    hidden together (:func:`held_out_checks`): their mean confidence on the curve is
    ``Calibration.lone``.

    Isotonic blocks get ``(right + PRIOR) / (count + 2 PRIOR)`` (weighted, the weights scaled to
    a mean of 1) and are pooled again where smoothing made them fall. The curve runs across each
    block's scores (from its lowest to its highest) at the block's rate, rising only slightly so that order is kept, and in a straight line between
    blocks, as scikit-learn's isotonic prediction. Knots at the blocks' mean
    scores instead drew a line from the first block's middle down to score 0, which put half of
    that block's scores far below its rate: mnist, 100 random labels, all but one right, 0.922
    estimated where 0.969 was. Below the lowest checked score the curve falls to ``min(first rate,
    1 / n_classes)`` at score 0 (a guess among the classes); above the highest it rises half-way
    to 1 at score 1. Nowhere below ``1 / n_classes`` (two classes or more): a pseudo-label is at
    least a guess among the labelled classes, though on a weak map at few labels the checks, picked
    by ``suggest`` where the map is hardest, came back almost all wrong (mnist-cluttered, 30 labels:
    0 of 26 right, the items there 16-46 % right, the estimate of "right" 20 points low).
    benchmarks/estimate_loop.py's loops: mnist-cluttered mean miss 9.1 -> 6.5 points (largest 19.9
    -> 13.8); the other collections within 0.1 points. A tenth of the rate rides on the floor, so
    that below it the curve still rises and the review queue keeps its order (a flat floor took
    mnist-cluttered's ROC AUC at 50 labels from 0.69 to 0.59).
    """
    score = np.asarray(score, np.float64).ravel()
    right = np.asarray(right, bool).ravel()
    weight = np.ones(len(score)) if weight is None else np.asarray(weight, np.float64).ravel()
    if len(score) < MIN_HELD_OUT:
        return None
    curve = _curve(score, right, n_classes, weight)
    if disputed is not None:
        disputed = np.asarray(disputed, bool).ravel()
        if min(disputed.sum(), (~disputed).sum()) >= MIN_HELD_OUT:
            agreed = _curve(score[~disputed], right[~disputed], n_classes, weight[~disputed])
            inner = _curve(score[disputed], right[disputed], n_classes, weight[disputed])
            curve = Calibration(agreed.scores, agreed.rates, len(score), int(right.sum()), inner)
    if lone is not None and len(lone[0]):
        curve = replace(curve, lone=float(curve(lone[0], lone[1]).mean()))
    return replace(curve, effective=float(weight.sum() ** 2 / (weight**2).sum()))


def interval(estimate: float, checks: float, level: float = LEVEL) -> tuple[float, float]:
    """(low, high): where the share right likely lies (``level``, two-sided) when an estimate of
    ``estimate`` rests on ``checks`` (effective) hidden labels: the equal-tailed interval of
    Beta(estimate x checks + 1/2, (1 - estimate) x checks + 1/2) (Jeffreys' interval, as if the
    estimate were the share of the checks that came back right).

    The estimate is the curve's rates spread over the collection, and each rate is a share of
    checks, so its spread is about that of a share of that many. Resampling the checks and fitting
    the curve again (a bootstrap) said the same where checks came back mixed, but a zero-width
    interval where all came back right, and covered the truth less often (benchmarks/estimate.py
    on the suite's maps: 88-94 % of the time against 56-92 %)."""
    from scipy.stats import beta

    estimate, checks = float(np.clip(estimate, 0.0, 1.0)), max(float(checks), 1.0)
    tail = (1.0 - level) / 2.0
    low, high = beta.ppf([tail, 1.0 - tail], estimate * checks + 0.5, (1.0 - estimate) * checks + 0.5)
    return float(low), float(high)


def _curve(score: np.ndarray, right: np.ndarray, n_classes: int, weight: np.ndarray) -> Calibration:
    """:func:`fit_calibration`'s curve of ``right`` on ``score`` (at least one check)."""
    order = np.argsort(score, kind="stable")
    x, y, w = score[order], right[order].astype(np.float64), weight[order] / weight.mean()
    starts = _block_starts(y, w)
    ends = np.r_[starts[1:], len(y)] - 1
    hits, counts = np.add.reduceat(w * y, starts), np.add.reduceat(w, starts)
    smoothed, weights = (hits + PRIOR) / (counts + 2 * PRIOR), counts + 2 * PRIOR
    pooled = _block_starts(smoothed, weights)
    rate = np.add.reduceat(weights * smoothed, pooled) / np.add.reduceat(weights, pooled)
    low, high = x[starts[pooled]], x[ends[np.r_[pooled[1:], len(starts)] - 1]]
    # a slight rise across each block (a tenth of the step to its nearer neighbour, 1 above the
    # last, 0 below the first: never outside [0, 1]) keeps the order of the scores: the review
    # queue sorts by confidence, and a flat block would leave most pseudo-labels tied
    steps = np.diff(np.r_[rate, 1.0])
    rise = 0.1 * np.minimum(steps, np.r_[rate[0], steps[:-1]])
    knots, rates = np.column_stack([low, high]).ravel(), np.column_stack([rate - rise, rate + rise]).ravel()
    keep = np.r_[True, np.diff(knots) > 0]  # a block of one score (or touching its neighbour): one knot
    knots, rates = knots[keep], np.maximum.accumulate(rates[keep])
    if knots[0] > 0.0:
        knots, rates = np.r_[0.0, knots], np.r_[min(rates[0], 1.0 / max(n_classes, 1)), rates]
    if knots[-1] < 1.0:
        knots, rates = np.r_[knots, 1.0], np.r_[rates, rates[-1] + 0.5 * (1.0 - rates[-1])]
    if n_classes >= 2:  # a pseudo-label is at least a guess among the labelled classes; the tenth
        # of the rate on top keeps the order below that floor (the review queue sorts by it)
        rates = np.maximum(rates, 1.0 / n_classes + 0.1 * rates)
    return Calibration(knots, rates, int(len(score)), int(right.sum()))


def folds_of(seeds: np.ndarray, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """(N,) fold 0..folds-1 of each seeded row (-1 elsewhere): each class's seeds shuffled and
    dealt round the folds, so a class with m >= 2 seeds keeps m - 1 when any fold is hidden."""
    rng = np.random.default_rng(seed)
    out = np.full(len(seeds), -1, np.int64)
    for c in np.unique(seeds[seeds >= 0]):
        rows = rng.permutation(np.flatnonzero(seeds == c))
        out[rows] = np.arange(len(rows)) % folds
    return out


def hidden_folds(
    solver: Diffusion,
    seeds: np.ndarray,
    n_classes: int,
    rejected: np.ndarray | None = None,
    folds: int = FOLDS,
    cancel: CancelToken | None = None,
    *,
    confidence_reach: bool = True,
):
    """Yield (hidden rows (m,), propagation from the other folds) for each fold of the human labels
    ``seeds`` (N,) in classes with ``MIN_CLASS_LABELS`` or more; each hidden label's own rejections
    are hidden with it (``solver.run_apart``, with ``confidence_reach``)."""
    seeds = np.asarray(seeds, np.int64)
    rejections = np.zeros((0, 2), np.int64) if rejected is None else np.asarray(rejected, np.int64).reshape(-1, 2)
    fold = folds_of(seeds, folds)
    counts = np.bincount(seeds[seeds >= 0], minlength=n_classes)
    fold[(seeds >= 0) & (counts[np.maximum(seeds, 0)] < MIN_CLASS_LABELS)] = -1
    for k in np.unique(fold[fold >= 0]):
        if cancel is not None:
            cancel.raise_if_cancelled()
        hidden = np.flatnonzero(fold == k)
        rest = seeds.copy()
        rest[hidden] = -1
        # a hidden label's own rejections go with it: "not a 4" on an item labelled 9 gave its answer away
        kept = rejections[~np.isin(rejections[:, 0], hidden)]
        yield hidden, solver.run_apart(rest, n_classes, kept, confidence_reach=confidence_reach)


class Checks(NamedTuple):
    """The hidden human labels' checks (M each): ``score`` float64, ``right`` bool, ``disputed``
    bool or None, ``weight`` float64 (what each stands for) or None; ``lone``: (score (L,),
    disputed (L,) or None) of the labels of classes labelled once, hidden together, or None
    (no such class); see :func:`held_out_checks`."""

    score: np.ndarray
    right: np.ndarray
    disputed: np.ndarray | None = None
    weight: np.ndarray | None = None
    lone: tuple[np.ndarray, np.ndarray | None] | None = None


def held_out_checks(
    solver: Diffusion,
    seeds: np.ndarray,
    n_classes: int,
    rejected: np.ndarray | None = None,
    folds: int | None = None,
    cancel: CancelToken | None = None,
    checkable: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
) -> Checks:
    """The checks of the human labels in classes with ``MIN_CLASS_LABELS`` or more, each hidden in
    its fold and propagated from the other folds (:func:`hidden_folds`): its score and whether its
    pseudo-label came back right.

    ``checkable`` (N,) bool: only these rows' pairs count (every label is still hidden in turn),
    when at least ``MIN_HELD_OUT`` of them are labelled. An encoder fine-tuned on some labels
    (``refine``) places exactly those near their class, so hiding them checks the encoder's memory,
    not the propagation: on shapes after a refine the estimate said 72 % right where 64 % was.
    ``embeddings`` (N, D): also whether a classifier on the other folds' labels disputes each
    hidden label's pseudo-label (``explorer.labels.dispute``), as it would an unlabelled item's,
    and each check's weight: the square root of how many items its label is the nearest label to
    (:func:`stands_for`).

    The labels of classes labelled once are hidden together in one more propagation (``lone``):
    each then stands for an item of a class with no label."""
    from explorer.labels.dispute import second_opinion

    seeds = np.asarray(seeds, np.int64)
    if checkable is not None and int((checkable & (seeds >= 0)).sum()) < MIN_HELD_OUT:
        checkable = None  # too few unseen labels to check on: all of them (the estimate errs high)
    rows, scores, right, disputed = [], [], [], []
    for fold, result in hidden_folds(solver, seeds, n_classes, rejected, FOLDS if folds is None else folds, cancel):
        hidden = fold if checkable is None else fold[checkable[fold]]
        rows.append(hidden)
        scores.append(score(result)[hidden])
        right.append(result.predicted[hidden] == seeds[hidden])
        if embeddings is not None:  # the classifier learns what the propagation did: the other folds
            rest = seeds >= 0
            rest[fold] = False
            disputed.append(second_opinion(embeddings, result.predicted, rest, rows=hidden)[0] > 0)
    if not scores:
        none = None if embeddings is None else np.zeros(0)
        return Checks(np.zeros(0), np.zeros(0, bool), None if none is None else none.astype(bool), none)
    if cancel is not None:
        cancel.raise_if_cancelled()
    lone = _lone_checks(solver, seeds, n_classes, rejected, embeddings)
    flags = weight = None
    if embeddings is not None:
        flags = np.concatenate(disputed)
        labelled = np.flatnonzero(seeds >= 0)
        counts = np.zeros(len(seeds))
        counts[labelled] = stands_for(embeddings, labelled)
        weight = np.sqrt(np.maximum(counts[np.concatenate(rows)], 1.0))
    return Checks(np.concatenate(scores).astype(np.float64), np.concatenate(right), flags, weight, lone)


def _lone_checks(solver: Diffusion, seeds: np.ndarray, n_classes: int, rejected, embeddings):
    """(scores (L,), disputed (L,) or None) of the labels of classes labelled once, all hidden
    in one propagation from the rest (their rejections with them); None when there are none."""
    from explorer.labels.dispute import second_opinion

    counts = np.bincount(seeds[seeds >= 0], minlength=n_classes)
    lone = np.flatnonzero((seeds >= 0) & (counts[np.maximum(seeds, 0)] == 1))
    if not len(lone):
        return None
    rest = seeds.copy()
    rest[lone] = -1
    rejections = np.zeros((0, 2), np.int64) if rejected is None else np.asarray(rejected, np.int64).reshape(-1, 2)
    result = solver.run_apart(rest, n_classes, rejections[~np.isin(rejections[:, 0], lone)])
    flags = None if embeddings is None else second_opinion(embeddings, result.predicted, rest >= 0, rows=lone)[0] > 0
    return score(result)[lone], flags


def stands_for(embeddings: np.ndarray, rows: np.ndarray, sample: int = STANDS_FOR_SAMPLE, seed: int = 0) -> np.ndarray:
    """(len(rows),) float64: how many of the collection's items each of ``rows`` is the nearest
    (cosine on ``embeddings`` (N, D)) of them to, itself included; counted on a random sample of at
    most ``sample`` items and scaled up to N."""
    from explorer.neighbours.knn import normalise_rows

    rows = np.asarray(rows, np.int64)
    n = len(embeddings)
    if not len(rows):
        return np.zeros(0)
    sample = min(sample, max(10_000, int(STANDS_FOR_WORK / (len(rows) * max(embeddings.shape[1], 1)))))
    picked = np.arange(n) if n <= sample else np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
    anchors = normalise_rows(embeddings[rows])
    counts = np.zeros(len(rows))
    for start in range(0, len(picked), 8192):  # (8192, L) similarities at a time
        chunk = normalise_rows(embeddings[picked[start : start + 8192]])
        counts += np.bincount(np.argmax(chunk @ anchors.T, axis=1), minlength=len(rows))
    return counts * (n / len(picked))


def calibration_for(
    solver: Diffusion,
    seeds: np.ndarray,
    n_classes: int,
    rejected: np.ndarray | None = None,
    cancel: CancelToken | None = None,
    checkable: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
) -> Calibration | None:
    """The calibration for these labels on ``solver``'s graph, fitted again only when the labels
    changed enough since the one kept on the solver (``REFIT_SHARE``); None when there are too
    few labels to check (``MIN_HELD_OUT``). ``checkable``, ``embeddings``: see
    :func:`held_out_checks` (with embeddings, disputed pseudo-labels get their own curve)."""
    if not calibration_due(solver, seeds, n_classes, rejected):
        return kept_calibration(solver)
    checks = held_out_checks(
        solver, seeds, n_classes, rejected, cancel=cancel, checkable=checkable, embeddings=embeddings
    )
    calibration = fit_calibration(*checks[:2], n_classes, checks.disputed, checks.weight, checks.lone)
    solver.calibration_memo = (evidence(seeds, rejected), n_classes, calibration)
    return calibration


def evidence(seeds: np.ndarray, rejected: np.ndarray | None) -> int:
    return int((np.asarray(seeds) >= 0).sum()) + (0 if rejected is None else len(rejected))


def calibration_due(solver: Diffusion, seeds: np.ndarray, n_classes: int, rejected: np.ndarray | None = None) -> bool:
    """Whether :func:`calibration_for` would fit again: nothing kept on ``solver``, another number
    of classes, or human labels and rejections changed by ``REFIT_SHARE`` (at least ``REFIT_MIN``)."""
    return solver.calibration_memo is None or labels_changed(solver.calibration_memo, seeds, n_classes, rejected)


def labels_changed(memo: tuple, seeds: np.ndarray, n_classes: int, rejected: np.ndarray | None = None) -> bool:
    """Whether what was fitted on ``memo`` ((labels and rejections, classes, ...) as kept on the
    solver) is due again: another number of classes, or the human labels and rejections changed by
    ``REFIT_SHARE`` (at least ``REFIT_MIN``)."""
    fitted_on, classes = memo[0], memo[1]
    return classes != n_classes or abs(evidence(seeds, rejected) - fitted_on) >= max(REFIT_MIN, REFIT_SHARE * fitted_on)


def kept_calibration(solver: Diffusion) -> Calibration | None:
    """The calibration last fitted on ``solver`` (None if none, or too few labels then)."""
    return None if solver.calibration_memo is None else solver.calibration_memo[2]


def unseen_share(seeds: np.ndarray) -> float:
    """Good-Turing's estimate of the share of the collection in classes with no human label yet:
    the classes with exactly one label, over the labels (``seeds`` (N,) class or -1).

    A pseudo-label is always one of the labelled classes, so an item of a class nobody has
    labelled is wrong whatever the curve says, and hidden labels cannot show it: a class seen once
    is not checked (``MIN_CLASS_LABELS``). Good (1953) holds for labels drawn at random; on the
    suite's labels from ``suggest`` it tracked the truth too (glyphs, 43 classes: 0.32 / 0.20 /
    0.12 / 0.05 at 50 / 70 / 100 / 150 labels where 0.35 / 0.21 / 0.09 / 0.05 of the items were in
    unlabelled classes); with what the curve gives such items (``Calibration.lone``) it took the
    estimate of "right" there from 31 points high to 18 at 50 labels. Where every class has a
    label it can only err low: 0.04 on the unbalanced collection at 50 random labels, whose rare
    classes had one label each (the estimate 1.3 points lower there)."""
    labelled = np.asarray(seeds)[np.asarray(seeds) >= 0]
    if not len(labelled):
        return 0.0
    per_class = np.bincount(labelled)
    return float((per_class == 1).sum() / len(labelled))


def calibrated(
    propagation: Propagation,
    seeds: np.ndarray,
    calibration: Calibration | None,
    disputed: np.ndarray | None = None,
    unseen: float = 0.0,
) -> np.ndarray:
    """(N,) float32 confidence of a propagation's rows: its :func:`score` mapped through
    ``calibration`` (its disputed curve where ``disputed`` (N,) bool is True); human labels
    (``seeds`` >= 0) 1, unreached rows 0; without a calibration, the propagation's own confidence.

    ``unseen``: the share of the collection in classes with no label (:func:`unseen_share`).
    Every such item is wrong, and the curve gave each about ``calibration.lone``; that much
    confidence is taken off the pseudo-labels in proportion (the order is kept). Where lone labels
    sat apart (a good map: their items unreached, or far) the curve already said so and little
    is taken; where they sat among other classes (a weak map) much is. Without ``lone`` the
    unseen items are taken to be like any other."""
    if calibration is None:
        return np.asarray(propagation.confidence, np.float32)
    human = np.asarray(seeds) >= 0
    out = np.where(propagation.predicted >= 0, calibration(score(propagation), disputed), 0.0)
    out[human] = 0.0
    given = out.sum()
    if unseen > 0 and given > 0:
        each = calibration.lone if calibration.lone is not None else given / max(int((~human).sum()), 1)
        out *= max(0.0, 1.0 - unseen * len(out) * each / given)
    out = out.astype(np.float32)
    out[human] = 1.0
    return out
