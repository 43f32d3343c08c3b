"""Graph label propagation: human labels diffuse through the kNN graph as pseudo-labels.

Diffusion of Zhou et al. 2004 ("Learning with local and global consistency") on the sparse,
power-weighted kNN graph of Iscen et al. 2019 ("Label propagation for deep semi-supervised
learning"): solve ``(I - alpha S) F = Y`` per class by conjugate gradient, where
``S = D^-1/2 W D^-1/2``. Rejections ("this item is not class c") enter Y as negative sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.labels.affinity import affinity, graph_distance, normalised
from explorer.neighbours.knn import KnnGraph

REACH_HALF_LIFE = 4.0
"""Typical neighbour steps beyond the first after which the reach factor halves."""


@dataclass
class Propagation:
    """Pseudo-labels for every row.

    ``predicted`` (N,) int64 class index 0..C-1, -1 where nothing reached the row;
    ``confidence`` (N,) float32 in [0, 1] (see :func:`propagate`), 1 for seeds, 0 for -1 rows;
    ``scores`` (N, C) float32 per-row class distribution (rows sum to 1; all 0 for -1 rows).
    """

    predicted: np.ndarray
    confidence: np.ndarray
    scores: np.ndarray


def _empty(n: int, n_classes: int) -> Propagation:
    return Propagation(np.full(n, -1, np.int64), np.zeros(n, np.float32), np.zeros((n, max(n_classes, 0)), np.float32))


def _check_inputs(n: int, seeds: np.ndarray, n_classes: int, rejected: np.ndarray | None):
    seeds = np.asarray(seeds, dtype=np.int64).ravel()
    if len(seeds) != n:
        raise ValueError(f"seeds has {len(seeds)} entries but the graph has {n} rows")
    if n_classes < 0:
        raise ValueError(f"n_classes must be >= 0, got {n_classes}")
    if ((seeds < -1) | (seeds >= n_classes)).any():
        bad = seeds[(seeds < -1) | (seeds >= n_classes)][0]
        raise ValueError(f"seed class {bad} is outside 0..{n_classes - 1} (or -1 for unlabelled)")
    rej = np.zeros((0, 2), np.int64) if rejected is None else np.asarray(rejected, dtype=np.int64).reshape(-1, 2)
    bad = (rej[:, 0] < 0) | (rej[:, 0] >= n) | (rej[:, 1] < 0) | (rej[:, 1] >= n_classes)
    if bad.any():
        raise ValueError(f"rejected pair {tuple(rej[bad][0])} names a row or class that does not exist")
    rej = rej[seeds[rej[:, 0]] != rej[:, 1]]  # a seed of the same class on the same row wins
    return seeds, rej


def propagate(
    graph: KnnGraph,
    seeds: np.ndarray,
    n_classes: int,
    rejected: np.ndarray | None = None,
    alpha: float = 0.99,
    power: float = 3.0,
    iterations: int = 20,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    *,
    neighbours: int | None = 10,
) -> Propagation:
    """Spread human labels through the kNN graph.

    ``graph`` (N, k+1) kNN graph; ``seeds`` (N,) int64 class per row or -1 (human labels,
    clamped: a seeded row keeps its class with confidence 1); ``rejected`` (R, 2) int64
    ``(row, class)`` pairs meaning "row is not class": that class's score for the row is 0, and
    each rejection is a negative source for its class in the diffusion. A seed overrides a
    rejection of the same class on the same row.

    Method: W = s**power on kNN edges with s > 0, symmetrised (W + W^T), no self-loops;
    ``S = D^-1/2 W D^-1/2``; per class c with at least one seed, Y_c is ``+1/n_c`` at its seeds
    and ``-1/n_c`` at its rejections (class-balanced: every class injects the same total
    mass), and ``(I - alpha S) F_c = Y_c`` is solved by conjugate gradient (``iterations``
    steps at most). F is clipped at 0, rejected entries zeroed, rows normalised to a
    distribution ``p``; ``predicted = argmax p``.

    Confidence = certainty x reach, with certainty ``1 - H(p) / log C`` (1 when C == 1) and
    reach ``2 ** -(max(0, g - 1) / REACH_HALF_LIFE)``, where g is the graph distance to the
    nearest seed in typical-neighbour steps (:func:`~explorer.labels.affinity.graph_distance`):
    a direct neighbour of a seed keeps full reach, a row 5 typical steps away half of it.
    Rows no positive mass reached (other components, beyond ``iterations`` hops, or only
    negative evidence) get -1 and confidence 0. Zero classes or zero seeds: all -1.

    ``neighbours`` uses only each row's first that many graph neighbours (None: all), so one
    graph built for the map (k=15) also serves propagation, which is best with about 10 on
    benchmarks/propagation_digits.py. Progress step "propagate" counts classes; ``cancel`` is checked before each class.
    """
    n = len(graph)
    seeds, rej = _check_inputs(n, seeds, n_classes, rejected)
    seeded = seeds >= 0
    if n_classes == 0 or not seeded.any():
        progress(Progress("propagate", 1, 1, "nothing to propagate"))
        return _empty(n, n_classes)
    if cancel is not None:
        cancel.raise_if_cancelled()

    from scipy.sparse.linalg import cg

    if neighbours is not None and neighbours < 1:
        raise ValueError(f"neighbours must be >= 1 or None, got {neighbours}")
    if neighbours is not None and neighbours < graph.k:
        graph = KnnGraph(
            graph.indices[:, : neighbours + 1], graph.similarities[:, : neighbours + 1], graph.index_kind, graph.recall
        )
    counts = np.bincount(seeds[seeded], minlength=n_classes)
    # float32: CG is memory-bound, and single precision is ~4x faster at no visible cost
    a = (sp.identity(n, format="csr") - alpha * normalised(affinity(graph, power))).tocsr().astype(np.float32)
    f = np.zeros((n, n_classes), dtype=np.float64)
    active = np.flatnonzero(counts)
    for done, c in enumerate(active):
        if cancel is not None:
            cancel.raise_if_cancelled()
        y = np.zeros(n, dtype=np.float32)
        y[seeds == c] = 1.0 / counts[c]
        y[rej[rej[:, 1] == c, 0]] -= 1.0 / counts[c]
        f[:, c], _ = cg(a, y, rtol=1e-6, maxiter=iterations)
        progress(Progress("propagate", done + 1, len(active), f"class {done + 1} of {len(active)}"))

    np.clip(f, 0.0, None, out=f)
    f[rej[:, 0], rej[:, 1]] = 0.0
    f[seeded] = 0.0
    f[np.flatnonzero(seeded), seeds[seeded]] = 1.0
    mass = f.sum(axis=1)
    reached = mass > 1e-12 * mass.max()
    scores = np.zeros_like(f)
    scores[reached] = f[reached] / mass[reached, None]

    if n_classes > 1:
        p = scores[reached]
        logp = np.log(p, out=np.zeros_like(p), where=p > 0)
        certainty = 1.0 + (p * logp).sum(axis=1) / np.log(n_classes)
    else:
        certainty = np.ones(int(reached.sum()))
    g = graph_distance(graph, np.flatnonzero(seeded))[reached]
    reach = np.exp2(-np.maximum(0.0, g - 1.0) / REACH_HALF_LIFE)
    confidence = np.zeros(n)
    confidence[reached] = np.clip(certainty, 0.0, 1.0) * reach
    confidence[seeded] = 1.0

    predicted = np.where(reached, scores.argmax(axis=1), -1).astype(np.int64)
    predicted[seeded] = seeds[seeded]
    return Propagation(predicted, confidence.astype(np.float32), scores.astype(np.float32))
