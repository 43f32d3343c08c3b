"""Graph label propagation: human labels diffuse through the kNN graph as pseudo-labels.

Diffusion of Zhou et al. 2004 ("Learning with local and global consistency") on the sparse,
power-weighted kNN graph of Iscen et al. 2019 ("Label propagation for deep semi-supervised
learning"): solve ``(I - alpha S) F = Y`` per class by conjugate gradient, where
``S = D^-1/2 W D^-1/2``. Rejections ("this item is not class c") enter Y as negative sources.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.labels.affinity import affinity, graph_distance, normalised, relax, step_lengths
from explorer.neighbours.knn import KnnGraph

REACH_HALF_LIFE = 4.0
"""Typical neighbour steps beyond the first after which the reach factor halves."""


@dataclass
class Propagation:
    """Pseudo-labels for every row.

    ``predicted`` (N,) int64 class index 0..C-1, -1 where nothing reached the row;
    ``confidence`` (N,) float32 in [0, 1] (see :func:`propagate`), 1 for seeds, 0 for -1 rows;
    ``scores`` (N, C) float32 per-row class distribution (rows sum to 1; all 0 for -1 rows);
    ``reach`` (N,) float32 how well human labels reach each row (see :func:`reach_of`), or None.
    """

    predicted: np.ndarray
    confidence: np.ndarray
    scores: np.ndarray
    reach: np.ndarray | None = None


def _empty(n: int, n_classes: int) -> Propagation:
    return Propagation(
        np.full(n, -1, np.int64),
        np.zeros(n, np.float32),
        np.zeros((n, max(n_classes, 0)), np.float32),
        np.zeros(n, np.float32),
    )


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


BRIDGE_WEIGHT = 0.02
"""Weight of the bridge graph against the label graph (:class:`Diffusion`), each at its mean row
mass. The label space of a good encoder falls apart into about one piece a class (5,000 MNIST
digits: 12 pieces), so one seed a class that lands in the wrong piece left a whole class
unlabelled (230 items on average). benchmarks/bridge.py, the suite's trained encoders, seeds 1 / 3
/ 10 a class, weight 0 -> 0.02: mnist 0.919 / 0.968 / 0.975 -> 0.934 / 0.973 / 0.977, handwriting
0.846 / 0.901 / 0.942 -> 0.889 / 0.922 / 0.945, unbalanced 0.666 / 0.832 / 0.904 -> 0.730 / 0.842 /
0.900, shapes 0.306 / 0.476 / 0.608 -> 0.316 / 0.482 / 0.613, glyphs and mnist-cluttered within
0.004. Heavier bridges gain a little more where classes are balanced and lose at ten seeds a class
on the unbalanced collection (0.889 at 0.05, 0.878 at 0.2). Raw pixels' own graph is a poor
bridge (mnist, one seed: 0.808 -> 0.762), so maps of raw pixels have none."""

SOLVE_BLOCK = 16
"""Classes solved together in one block (between blocks: progress and cancel)."""
REACH_LIMIT = 40.0
"""Graph distances are searched up to this many typical steps; beyond, reach is ~0.001 anyway."""


def _check_neighbours(neighbours: int | None) -> None:
    if neighbours is not None and neighbours < 1:
        raise ValueError(f"neighbours must be >= 1 or None, got {neighbours}")


class Diffusion:
    """The propagation solver for one kNN graph, keeping what can be reused between runs.

    Building the normalised graph costs more than one class's solve, and after a click only the
    class that got the new seed (or rejection) changes: its column is solved again, every other
    class's column is reused as it was (so the result equals a cold run's). Distances to the
    nearest human label are updated from the new seeds only. Thread-safe (runs are serialised).
    See :func:`propagate` for the method and arguments.

    ``bridge`` (another kNN graph over the same rows, weights ``s ** 3``) is added to the graph's
    affinity at ``bridge_weight`` of its mean row mass: a label graph that falls apart into
    pieces (the label space, ``explorer.labels.space``) still carries labels, weakly, into a piece
    no seed is in. ``graph`` alone gives the distances to the seeds (reach), so a row reached only
    over the bridge has a reach near 0.
    """

    def __init__(
        self,
        graph: KnnGraph,
        alpha: float = 0.99,
        power: float = 3.0,
        neighbours: int | None = 10,
        *,
        bridge: KnnGraph | None = None,
        bridge_weight: float = BRIDGE_WEIGHT,
    ):
        _check_neighbours(neighbours)
        if neighbours is not None and neighbours < graph.k:
            graph = KnnGraph(graph.indices[:, : neighbours + 1], graph.similarities[:, : neighbours + 1], "", None)
        if bridge is not None and len(bridge) != len(graph):
            raise ValueError(f"the bridge graph has {len(bridge)} rows but the graph has {len(graph)}")
        self.graph = graph
        self.alpha = float(alpha)
        n = len(graph)
        w = affinity(graph, power)
        if bridge is not None and bridge_weight > 0:
            b = affinity(bridge, 3.0)
            # each graph at its own mean row mass, so the weight means the same on any collection
            w = w * (1.0 / _mean_mass(w)) + b * (bridge_weight / _mean_mass(b))
        # float32: CG is memory-bound, and single precision is ~4x faster at no visible cost
        self.system = (sp.identity(n, format="csr") - alpha * normalised(w.tocsr())).tocsr()
        self.system = self.system.astype(np.float32)
        self.lengths = step_lengths(graph)
        self._columns: dict[int, tuple[bytes, np.ndarray]] = {}
        self._dist_sources = np.zeros(0, np.int64)
        self._dist = np.full(n, np.inf)
        self._lock = threading.Lock()
        self.solved_last = 0  # classes solved (not reused) by the latest run, for tests and benchmarks
        self.calibration_memo = None  # (labels, classes, Calibration) kept by explorer.labels.calibrate
        self.opinion_memo = None  # (labels, classes, classes a classifier gives each row): see labels.dispute

    def __len__(self) -> int:
        return self.system.shape[0]

    def distance_to(self, sources: np.ndarray) -> np.ndarray:
        """(N,) graph distance to the nearest of ``sources``, capped at ``REACH_LIMIT`` (inf if none).

        Incremental: when the sources only grew since the last call, only the new ones are searched.
        """
        sources = np.unique(np.asarray(sources, dtype=np.int64))
        if len(sources) == 0:
            return np.full(len(self), np.inf)
        with self._lock:
            if len(self._dist_sources) and np.isin(self._dist_sources, sources).all():
                new = np.setdiff1d(sources, self._dist_sources)
                if len(new):  # only the region where a new source is nearest changes
                    self._dist[new] = 0.0
                    relax(self.lengths, self._dist, new, REACH_LIMIT)
            else:
                self._dist = graph_distance(self.lengths, sources, REACH_LIMIT)
            self._dist_sources = sources
            out = np.minimum(self._dist, REACH_LIMIT)
        return out

    def _solve(self, y: np.ndarray, iterations: int) -> np.ndarray:
        """Conjugate gradient for ``(I - alpha S) F = Y`` on all columns of ``y`` (N, C) at once.

        The same recurrences as ``scipy.sparse.linalg.cg`` from zero, stopping a column once its
        residual is below 1e-6 of its right-hand side; the vector work is vectorised over classes.
        """
        x = np.zeros_like(y)
        r = y.copy()
        p = r.copy()
        rs = np.einsum("nc,nc->c", r, r)
        tol = (1e-6**2) * rs
        for _ in range(iterations):
            active = rs > tol
            if not active.any():
                break
            # one sparse product for the active columns together: the matrix is read once for all
            # of them (2.3x / 3.9x / 4.5x faster than a product per column at 10 / 20 / 40
            # columns, 100k rows; benchmarks/label_check_scale.py), each column summed in the
            # same order as alone, so a column solved in a block equals the column solved alone
            cols = np.flatnonzero(active)
            if len(cols) == p.shape[1]:
                ap = self.system @ p
            else:
                ap = np.zeros_like(p)
                ap[:, cols] = self.system @ p[:, cols]
            curvature = np.einsum("nc,nc->c", p, ap)
            alpha = np.divide(rs, curvature, out=np.zeros_like(rs), where=active & (curvature > 0))
            x += alpha * p
            r -= alpha * ap
            new = np.einsum("nc,nc->c", r, r)
            beta = np.divide(new, rs, out=np.zeros_like(rs), where=active & (rs > 0))
            p = r + beta * p
            rs = np.where(active, new, rs)
        return x

    def run(
        self,
        seeds: np.ndarray,
        n_classes: int,
        rejected: np.ndarray | None = None,
        iterations: int = 20,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
    ) -> Propagation:
        """Propagate ``seeds`` (N,) with ``rejected`` (R, 2) pairs; see :func:`propagate`."""
        n = len(self)
        seeds, rej = _check_inputs(n, seeds, n_classes, rejected)
        seeded = seeds >= 0
        if n_classes == 0 or not seeded.any():
            progress(Progress("propagate", 1, 1, "nothing to propagate"))
            return _empty(n, n_classes)
        if cancel is not None:
            cancel.raise_if_cancelled()
        counts = np.bincount(seeds[seeded], minlength=n_classes)
        f = np.zeros((n, n_classes), dtype=np.float64)
        active = np.flatnonzero(counts)
        with self._lock:
            self.solved_last = 0
            for c in list(self._columns):
                if c >= n_classes or counts[c] == 0:
                    del self._columns[c]
            todo, keys, columns = [], {}, []
            for c in active:
                rows = np.flatnonzero(seeds == c)
                negative = np.sort(rej[rej[:, 1] == c, 0])
                keys[c] = rows.tobytes() + b"|" + negative.tobytes() + b"|" + str(iterations).encode()
                cached = self._columns.get(int(c))
                if cached is not None and cached[0] == keys[c]:
                    f[:, c] = cached[1]
                    continue
                todo.append(int(c))
                columns.append(_sources(n, rows, negative, counts[c]))
            # classes in blocks, so that cancel is checked and progress reported between blocks
            for start in range(0, len(todo), SOLVE_BLOCK):
                if cancel is not None:
                    cancel.raise_if_cancelled()
                block = todo[start : start + SOLVE_BLOCK]
                solved = self._solve(np.stack(columns[start : start + SOLVE_BLOCK], axis=1), iterations)
                for j, c in enumerate(block):
                    self._columns[c] = (keys[c], solved[:, j].copy())
                    f[:, c] = solved[:, j]
                self.solved_last += len(block)
                done = start + len(block)
                progress(Progress("propagate", done, len(todo), f"class {done} of {len(todo)}"))
            if not todo:
                progress(Progress("propagate", 1, 1, "nothing changed"))
        return _finish(f, seeds, rej, reach_of(self.distance_to(np.flatnonzero(seeded))))

    def run_apart(
        self,
        seeds: np.ndarray,
        n_classes: int,
        rejected: np.ndarray | None = None,
        iterations: int = 20,
        *,
        confidence_reach: bool = True,
    ):
        """As :meth:`run`, but every class solved afresh and nothing cached or reused: for
        what-if runs (e.g. with some labels hidden, ``explorer.labels.calibrate``) that must not
        disturb the solver's state for the real labels. ``confidence_reach=False`` skips the graph
        distance to the seeds (reach 1 everywhere: confidence is then the certainty alone), for
        callers that read only ``scores`` and ``predicted`` (a fifth of the time at 1M rows)."""
        n = len(self)
        seeds, rej = _check_inputs(n, seeds, n_classes, rejected)
        seeded = seeds >= 0
        if n_classes == 0 or not seeded.any():
            return _empty(n, n_classes)
        counts = np.bincount(seeds[seeded], minlength=n_classes)
        active = np.flatnonzero(counts)
        y = np.stack([_sources(n, np.flatnonzero(seeds == c), rej[rej[:, 1] == c, 0], counts[c]) for c in active], 1)
        f = np.zeros((n, n_classes), dtype=np.float64)
        for start in range(0, len(active), SOLVE_BLOCK):
            f[:, active[start : start + SOLVE_BLOCK]] = self._solve(y[:, start : start + SOLVE_BLOCK], iterations)
        if confidence_reach:
            reach = reach_of(graph_distance(self.lengths, np.flatnonzero(seeded), REACH_LIMIT))
        else:
            reach = np.ones(n)
        return _finish(f, seeds, rej, reach)


def _mean_mass(w: sp.csr_matrix) -> float:
    """Mean row sum of an affinity (1 for an empty one, so scaling by it is safe)."""
    mass = float(w.sum()) / max(w.shape[0], 1)
    return mass if mass > 0 else 1.0


def _sources(n: int, rows: np.ndarray, negative: np.ndarray, count: int) -> np.ndarray:
    """(N,) float32 right-hand side of one class: ``+1/count`` at its seeds ``rows``, ``-1/count``
    at each of its rejections ``negative`` (class-balanced: every class injects the same mass)."""
    y = np.zeros(n, dtype=np.float32)
    y[rows] = 1.0 / count
    np.subtract.at(y, negative, 1.0 / count)
    return y


def reach_of(distance: np.ndarray) -> np.ndarray:
    """(N,) ``2 ** -(max(0, g - 1) / REACH_HALF_LIFE)`` for graph distances g (N,) to the nearest seed."""
    return np.exp2(-np.maximum(0.0, np.minimum(distance, REACH_LIMIT) - 1.0) / REACH_HALF_LIFE)


def _finish(f: np.ndarray, seeds: np.ndarray, rej: np.ndarray, reach: np.ndarray) -> Propagation:
    """Turn per-class diffusion mass ``f`` (N, C) into distributions, predictions and confidence."""
    seeded = seeds >= 0
    np.clip(f, 0.0, None, out=f)
    f[rej[:, 0], rej[:, 1]] = 0.0
    f[seeded] = 0.0
    f[np.flatnonzero(seeded), seeds[seeded]] = 1.0
    mass = f.sum(axis=1)
    reached = mass > 1e-12 * mass.max()
    scores = np.zeros_like(f)
    scores[reached] = f[reached] / mass[reached, None]
    confidence = np.zeros(len(f))
    confidence[reached] = certainty(scores[reached]) * reach[reached]
    confidence[seeded] = 1.0
    predicted = np.where(reached, scores.argmax(axis=1), -1).astype(np.int64)
    predicted[seeded] = seeds[seeded]
    return Propagation(predicted, confidence.astype(np.float32), scores.astype(np.float32), reach.astype(np.float32))


def margin(p: np.ndarray) -> np.ndarray:
    """(M,) top class score minus the second of distributions ``p`` (M, C); the top score when C == 1."""
    if p.shape[1] >= 2:
        top = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
        return top[:, 1] - top[:, 0]
    return p[:, 0].copy() if p.shape[1] else np.zeros(len(p), p.dtype)


def certainty(p: np.ndarray) -> np.ndarray:
    """(M,) ``1 - H(p) / log C`` of distributions ``p`` (M, C), in [0, 1]; 1 when C == 1."""
    n_classes = p.shape[1]
    if n_classes <= 1:
        return np.ones(len(p))
    logp = np.log(p, out=np.zeros_like(p), where=p > 0)
    return np.clip(1.0 + (p * logp).sum(axis=1) / np.log(n_classes), 0.0, 1.0)


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
    steps at most, all classes in one block: :meth:`Diffusion._solve`). F is clipped at 0, rejected entries zeroed, rows normalised to a
    distribution ``p``; ``predicted = argmax p``.

    Confidence = certainty x reach, with certainty ``1 - H(p) / log C`` (1 when C == 1) and
    reach ``2 ** -(max(0, g - 1) / REACH_HALF_LIFE)``, where g is the graph distance to the
    nearest seed in typical-neighbour steps (:func:`~explorer.labels.affinity.graph_distance`):
    a direct neighbour of a seed keeps full reach, a row 5 typical steps away half of it.
    Rows no positive mass reached (other components, beyond ``iterations`` hops, or only
    negative evidence) get -1 and confidence 0. Zero classes or zero seeds: all -1.

    ``neighbours`` uses only each row's first that many graph neighbours (None: all), so one
    graph built for the map (k=15) also serves propagation, which is best with about 10 on
    benchmarks/propagation_digits.py. Progress step "propagate" counts classes solved; ``cancel``
    is checked before each block of ``SOLVE_BLOCK`` classes. To propagate again after a label edit, keep a :class:`Diffusion`
    and call its ``run`` (the window does, through ``explorer.workflow``).
    """
    n = len(graph)
    _check_inputs(n, seeds, n_classes, rejected)
    _check_neighbours(neighbours)
    if n_classes == 0 or not (np.asarray(seeds) >= 0).any():
        progress(Progress("propagate", 1, 1, "nothing to propagate"))
        return _empty(n, n_classes)
    solver = Diffusion(graph, alpha, power, neighbours)
    return solver.run(seeds, n_classes, rejected, iterations, progress, cancel)


_cached: tuple[object, Diffusion, object] | None = None
_cache_lock = threading.Lock()


def cached_diffusion(key: object, make_solver, make_extra=None) -> tuple[Diffusion, object]:
    """The :class:`Diffusion` for ``key`` (e.g. project and map run), built once per process.

    ``make_solver()`` returns the :class:`Diffusion` when the cache misses; ``make_extra()`` (if
    given) something to keep beside it (e.g. the map's item ids), returned with it. One entry: a
    new key replaces the old one, so memory holds one graph's solver at a time.
    """
    global _cached
    with _cache_lock:
        if _cached is not None and _cached[0] == key:
            return _cached[1], _cached[2]
        _cached = None  # free the old solver before building the new one
        solver = make_solver()
        extra = make_extra() if make_extra is not None else None
        _cached = (key, solver, extra)
        return solver, extra
