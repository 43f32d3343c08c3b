"""Which items a person should label next.

With few labels (fewer than ``COLD_START_LABELS``): typical items of distinct clusters
(TypiClust, Hacohen, Dekel & Weinshall 2022): k-means into as many clusters as there will be
labels, and from each of the largest clusters that hold no label yet its densest item, so that
the first ten labels land in ten different groups and each stands for many others. With labels: the
unlabelled items the propagation is least sure of, in dense regions, far from human labels,
picked greedily so the suggestions are spread out rather than ten copies of one item; a fifth
of them where no label is near at all, however sure the propagation is there; and two in ten
where a classifier on the human labels disputes the pseudo-label (``explorer.labels.dispute``).

"Least sure" is margin sampling (Scheffer et al. 2001): one minus the gap between the two most
likely classes, times how well labels reach the item. Entropy (the confidence the map shows)
ranks an item torn between two classes below one thinly spread over all of them; the first is
the one whose label is likely wrong. Margins alone cannot see a mode the graph joins to a
labelled one (it is confidently wrong), hence the exploring fifth (``EXPLORE_SHARE``).

Measured with benchmarks/labelling_effort.py, mean labels over 5 trials until 95 / 98 / 99 % of
the collection is right, 10 a round: demo digits 30 / 96 / 202 against 30 / 192 / 644 ranked by
entropy without exploring (what this did before); overlapping clusters 36 / 180 / 514 against
46 / 612 / never (no trial reached 99 % in 1,000 labels).
"""

from __future__ import annotations

import numpy as np

from explorer.labels.affinity import graph_distance
from explorer.labels.propagate import REACH_HALF_LIFE, Propagation, margin
from explorer.neighbours.knn import KnnGraph, normalise_rows

EXPLORE_SHARE = 0.2
"""Share of each round's suggestions (rounded; none below 3 picks) taken for exploring: dense rows
far in the graph from every human label, instead of the least sure. benchmarks/labelling_effort.py,
5 trials, labels for 95 / 98 / 99 %: overlapping clusters 5 a round 32 / 196 / 552 against
111 / 440 / 855 with margins alone (one trial needed 425 labels for 95 %: a whole mode
confidently mislabelled), 10 a round 36 / 180 / 514 against 38 / 220 / 646; demo digits the
same within the spread (10 a round 30 / 96 / 202 against 30 / 94 / 218)."""
DISPUTE_SHARE = 0.3
"""Share of each round's non-exploring picks (rounded: 2 of 10) taken where a classifier on the
human labels disagrees with the pseudo-label (strongest disagreement first, spread out): about a
third of those are wrong, against 1-2 % of the rest (``explorer.labels.dispute``), and margins
cannot see them. benchmarks/dispute.py, suggest 10 a round, exported accuracy at 300 labels
without -> with: mnist 0.986 -> 0.991, handwriting 0.967 -> 0.969, unbalanced 0.959 -> 0.973 (95 %
at 40 labels instead of 80), shapes 0.607 -> 0.625. At 0.5 the estimate of "right" ran further
low early (handwriting 0.862 at 50 labels where 0.950 was) for little more."""
DENSITY_FLOOR = 0.05
"""Smallest density weight, so an isolated item can still be suggested once the rest is covered."""
COLD_START_LABELS = 1
"""Below this many human labels, suggestions are typical items of uncovered clusters."""
KMEANS_ITERATIONS = 50
KMEANS_RESTARTS = 3
KMEANS_SAMPLE = 20_000
"""k-means++ runs from different starts, the tightest kept: one run can merge two clusters and split
another (faiss's random starts did on 2 of 3 test collections of 10 clusters even with 20 restarts)."""
SMALL_CLUSTER = 0.1
"""Clusters with fewer items than this share of the average cluster are not covered on purpose."""


def local_density(graph: KnnGraph) -> np.ndarray:
    """(N,) float64 in [0, 1]: mean positive similarity to a row's neighbours, over its maximum."""
    sims = np.clip(graph.similarities[:, 1:].astype(np.float64), 0.0, None)
    valid = graph.indices[:, 1:] >= 0
    count = valid.sum(axis=1)
    dens = np.divide((sims * valid).sum(axis=1), count, out=np.zeros(len(graph)), where=count > 0)
    top = dens.max() if len(dens) else 0.0
    return dens / top if top > 0 else np.ones(len(graph))


def _greedy_diverse(
    x: np.ndarray, base: np.ndarray, n: int, scale: float, first_spreads: bool, taken: np.ndarray | None = None
) -> np.ndarray:
    """Pick n rows greedily by ``base * spread``; spread grows with cosine distance to picks.

    ``x`` (N, D) unit rows, ``base`` (N,) scores (-inf = never pick). With ``first_spreads`` the
    spread is the plain distance to the nearest pick (farthest-first traversal); otherwise it is
    ``min(1, distance / scale)``. ``taken`` rows picked before count as picks for the spread and
    are not picked again (nor returned).
    """
    picks: list[int] = []
    mindist = np.full(len(x), np.inf)
    base = np.array(base, dtype=np.float64)
    for row in [] if taken is None else np.asarray(taken, np.int64).tolist():
        base[row] = -np.inf
        mindist = np.minimum(mindist, np.clip(1.0 - x @ x[row], 0.0, 2.0))
    open_rows = np.isfinite(base)
    for _ in range(n):
        if np.isfinite(mindist).any():
            spread = mindist if first_spreads else np.minimum(1.0, mindist / scale)
            score = np.full(len(base), -np.inf)
            score[open_rows] = base[open_rows] * spread[open_rows]
        else:
            score = base.copy()
        score[picks] = -np.inf
        best = int(np.argmax(score))
        if not np.isfinite(score[best]):
            break
        picks.append(best)
        mindist = np.minimum(mindist, np.clip(1.0 - x @ x[best], 0.0, 2.0))
    return np.asarray(picks, dtype=np.int64)


def typical_cover(
    x: np.ndarray, density: np.ndarray, labelled: np.ndarray, n: int, seed: int = 0, *, units: np.ndarray | None = None
) -> np.ndarray:
    """TypiClust's pick: (n,) rows, the densest unlabelled row of each of the n largest clusters
    without a label, for a k-means of ``x`` (N, D) rows into labelled + n clusters.

    ``density`` (N,) is the typicality (:func:`local_density`); ``labelled`` (N,) bool. Clusters
    that run out, and clusters smaller than ``SMALL_CLUSTER`` of the average, leave their place
    to the next largest; if fewer than n clusters are uncovered,
    the rest are filled by a density-weighted farthest-first traversal from the picks, by cosine
    distance between the unit rows ``units`` (N, D') (default ``x``, then unit rows itself).
    """
    k = min(len(x), int(labelled.sum()) + n)
    assign = _kmeans_groups(x, k, seed)
    sizes = np.bincount(assign, minlength=k)
    covered = np.zeros(k, bool)
    covered[assign[labelled]] = True
    score = np.where(labelled, -np.inf, density)
    best = np.full(k, -1, np.int64)  # the densest unlabelled row of each cluster
    order = np.lexsort((-score, assign))  # by cluster, densest first
    first = np.r_[True, assign[order][1:] != assign[order][:-1]]
    best[assign[order][first]] = order[first]
    small = sizes < max(2.0, SMALL_CLUSTER * len(x) / k)  # an outlier's own cluster stands for nobody
    open_clusters = [c for c in np.argsort(-sizes, kind="stable") if not (covered[c] or small[c]) and best[c] >= 0]
    picks = [int(best[c]) for c in open_clusters if np.isfinite(score[best[c]])][:n]
    if len(picks) < n:
        taken = np.concatenate([np.flatnonzero(labelled), np.asarray(picks, np.int64)])
        rows = x if units is None else units
        more = _greedy_diverse(rows, np.where(labelled, -np.inf, density), n - len(picks), 1.0, True, taken=taken)
        picks += more.tolist()
    return np.asarray(picks, dtype=np.int64)


def _kmeans_groups(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(N,) cluster of each unit row of ``x`` (N, D): k-means++ (``KMEANS_RESTARTS`` starts, the
    tightest kept) on up to ``KMEANS_SAMPLE`` random rows, every row then sent to its nearest centre."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    sample = rng.choice(len(x), size=min(len(x), KMEANS_SAMPLE), replace=False)
    model = KMeans(k, n_init=KMEANS_RESTARTS, max_iter=KMEANS_ITERATIONS, random_state=seed)
    model.fit(np.asarray(x[sample], np.float32))
    centres = model.cluster_centers_.astype(np.float32)
    assign = np.empty(len(x), np.int64)
    half = 0.5 * (centres**2).sum(axis=1)
    for start in range(0, len(x), 65536):  # nearest centre = largest x.c - |c|^2 / 2
        block = np.asarray(x[start : start + 65536], np.float32)
        assign[start : start + len(block)] = np.argmax(block @ centres.T - half, axis=1)
    return assign


def uncertainty(propagation: Propagation | None, distance: np.ndarray) -> np.ndarray:
    """(N,) in [0, 1]: ``1 - margin x reach``; margin = top class score - second class score of
    the propagation (0 where nothing reached), reach = ``2 ** -(max(0, g - 1) / REACH_HALF_LIFE)``
    for graph distance g (N,) to the nearest human label, as the propagation's own reach. 1
    everywhere without a propagation."""
    if propagation is None:
        return np.ones(len(distance))
    reach = np.exp2(-np.maximum(0.0, distance - 1.0) / REACH_HALF_LIFE)
    return np.clip(1.0 - margin(np.asarray(propagation.scores, np.float64)) * reach, 0.0, 1.0)


TYPICAL, UNSURE, EXPLORE, DISPUTED = "typical", "unsure", "explore", "disputed"
"""Why a row was suggested: it stands for a cluster no label covers (cold start), the propagation
is torn over it, no label is near it, or a classifier on the human labels disagrees with its
pseudo-label (``explorer.labels.dispute``)."""


def suggest(graph: KnnGraph, embeddings: np.ndarray, propagation: Propagation | None, labelled, n: int, **options):
    """Rows to label next, best first: :func:`suggest_why`'s rows without its reasons (the same
    keyword options: ``distance``, ``clusters``, ``dispute``)."""
    return suggest_why(graph, embeddings, propagation, labelled, n, **options)[0]


def suggest_why(
    graph: KnnGraph,
    embeddings: np.ndarray,
    propagation: Propagation | None,
    labelled: np.ndarray,
    n: int,
    *,
    distance: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
    dispute: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Rows to label next, best first: (min(n, unlabelled rows),) int64 row positions, distinct,
    and for each the reason it was picked (``TYPICAL``, ``DISPUTED``, ``UNSURE`` or ``EXPLORE``).

    ``graph`` (N, k+1) kNN graph of ``embeddings`` (N, D); ``propagation`` the latest result
    (or None); ``labelled`` (N,) bool, True where a person gave a label (never suggested).

    Fewer than ``COLD_START_LABELS`` labels: :func:`typical_cover` (TypiClust) on ``clusters``
    (N, d), the coordinates to cluster in (the label space, where k-means finds the classes more
    often: 9 of 10 digit classes in 10 picks against 5-8 in the pixels), else on the embeddings;
    density from :func:`local_density`, floored at ``DENSITY_FLOOR``. Otherwise: each
    unlabelled row scores ``uncertainty x density x (0.5 + 0.5 far)`` (:func:`uncertainty`), ``far`` =
    ``1 - 2 ** -(g / REACH_HALF_LIFE)`` for graph distance g to the nearest human label; rows are
    taken greedily, the score damped by ``min(1, d / d0)`` for cosine distance d to the nearest
    earlier pick, d0 the median cosine distance between random pairs of rows: a second pick
    next to a first one must be much less certain to win over a region not yet covered. A fifth
    of the picks (``EXPLORE_SHARE``, from 3 picks up) instead go, by the same greedy spread, to
    the rows scoring highest on ``density x far`` alone: where no label is near, however sure
    the propagation is there. Before the least sure, ``DISPUTE_SHARE`` of the other picks go to
    the rows where a classifier on the human labels disagrees most with the pseudo-label
    (``explorer.labels.dispute``), spread the same way. ``distance`` (N,) the graph distances to the nearest human label when already known (e.g.
    from :meth:`~explorer.labels.propagate.Diffusion.distance_to`), to save the search;
    ``dispute`` (N,) the strength of :func:`~explorer.labels.dispute.second_opinion` for
    ``propagation`` when already known.
    """
    x = normalise_rows(embeddings)
    count = len(x)
    labelled = np.asarray(labelled, dtype=bool).ravel()
    if len(labelled) != count or len(graph) != count:
        raise ValueError(f"labelled has {len(labelled)} rows, graph {len(graph)}, embeddings {count}")
    n = int(min(max(n, 0), int((~labelled).sum())))
    if n == 0:
        return np.zeros(0, np.int64), []
    density = np.maximum(local_density(graph), DENSITY_FLOOR)

    if labelled.sum() < COLD_START_LABELS:
        space = x if clusters is None else np.asarray(clusters, np.float32)
        if len(space) != count:
            raise ValueError(f"clusters has {len(space)} rows, embeddings {count}")
        return typical_cover(space, density, labelled, n, units=x), [TYPICAL] * n

    g = graph_distance(graph, np.flatnonzero(labelled)) if distance is None else np.asarray(distance, np.float64)
    far = 1.0 - np.exp2(-g / REACH_HALF_LIFE)  # inf -> 1
    base = uncertainty(propagation, g) * density * (0.5 + 0.5 * far)
    base[labelled] = -np.inf
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, count, size=(2, min(2000, count * count)))
    scale = float(np.median(1.0 - (x[a] * x[b]).sum(axis=1)))
    explore = int(round(n * EXPLORE_SHARE))
    disputed = np.zeros(0, np.int64)
    if propagation is not None and n - explore > 0:
        if dispute is None:
            from explorer.labels.dispute import second_opinion

            dispute = second_opinion(embeddings, propagation.predicted, labelled)[0]
        doubt = np.where(labelled, 0.0, dispute)
        want = min(int(round((n - explore) * DISPUTE_SHARE)), int((doubt > 0).sum()))
        if want:
            disputed = _greedy_diverse(x, np.where(doubt > 0, doubt, -np.inf), want, max(scale, 1e-3), False)
    unsure = _greedy_diverse(x, base, n - explore - len(disputed), max(scale, 1e-3), False, taken=disputed)
    why = [DISPUTED] * len(disputed) + [UNSURE] * len(unsure)
    unsure = np.concatenate([disputed, unsure])
    if explore == 0:
        return unsure, why
    # Margins cannot see a mode the graph joins to a labelled one: it is confidently wrong.
    # The densest places farthest (in the graph) from every label catch it.
    away = density * far
    away[labelled] = -np.inf
    wide = _greedy_diverse(x, away, explore, 1.0, first_spreads=False, taken=unsure)
    return np.concatenate([unsure, wide]), why + [EXPLORE] * len(wide)
