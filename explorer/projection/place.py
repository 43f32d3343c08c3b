"""Placing items added after the map was fitted, without refitting UMAP."""

from __future__ import annotations

import numpy as np

from explorer.neighbours.knn import KnnGraph

PARALLEL_ABOVE = 50_000
"""Settle on every core when more rows than this move. Parallel epochs race on shared positions,
so two runs place rows a little differently (maps below this stay reproducible to the bit).
Measured with benchmarks/scale_1m.py --settle-check 200000 on 2 shared cores: 8.5 / 7.8 s serial
against 5.2 / 4.3 s parallel (1.8x, the same CPU time), trustworthiness 0.866 / 0.868; the gain
grows with cores."""


def place_new(xy_known: np.ndarray, neighbours: np.ndarray, similarities: np.ndarray) -> np.ndarray:
    """Position new items at the similarity-weighted mean of their known neighbours' positions.

    ``xy_known`` (N, 2) map positions of the items already placed (or (N, d) in any space); ``neighbours`` (M, k) int64 row
    positions into ``xy_known`` of each new item's nearest known items (-1 = missing);
    ``similarities`` (M, k) their cosine similarities. Weights are ``max(s, 0)``; when all of
    a row's weights are 0 its valid neighbours count equally; a row with no valid neighbour goes
    to the centre of the known map. Returns (M, 2) (or (M, d)) float32.
    """
    xy = np.asarray(xy_known, dtype=np.float64)
    xy = xy.reshape(-1, 2) if xy.ndim < 2 else xy
    nb = np.atleast_2d(np.asarray(neighbours, dtype=np.int64))
    sim = np.atleast_2d(np.asarray(similarities, dtype=np.float64))
    if nb.shape != sim.shape:
        raise ValueError(f"neighbours {nb.shape} and similarities {sim.shape} must have the same shape")
    if len(xy) == 0:
        return np.zeros((len(nb), xy.shape[1]), np.float32)
    valid = (nb >= 0) & (nb < len(xy))
    w = np.where(valid, np.clip(np.nan_to_num(sim), 0.0, None), 0.0)
    no_weight = w.sum(axis=1) == 0
    w[no_weight] = valid[no_weight].astype(np.float64)
    total = w.sum(axis=1, keepdims=True)
    pos = xy[np.where(valid, nb, 0)]  # (M, k, 2)
    out = np.einsum("mk,mkc->mc", w, pos)
    centre = xy.mean(axis=0)
    out = np.divide(out, total, out=np.broadcast_to(centre, out.shape).copy(), where=total > 0)
    return out.astype(np.float32)


def place_by_graph(xy: np.ndarray, placed: np.ndarray, graph: KnnGraph) -> np.ndarray:
    """Give every unplaced row a position from its graph neighbours that already have one.

    ``xy`` (N, 2) positions (or (N, d)), read only where ``placed`` (N,) bool is True; ``graph`` (N, k+1).
    Rows are placed in waves: first those with a placed neighbour, at the similarity-weighted
    mean of their placed neighbours (:func:`place_new`), then rows next to those, and so on; a
    row no path reaches goes to the centre of the placed rows. Placed rows never move.
    Returns (N, 2) (or (N, d)) float32.
    """
    out = np.array(xy, dtype=np.float32)
    out = out.reshape(-1, 2) if out.ndim < 2 else out
    done = np.asarray(placed, dtype=bool).copy()
    if len(out) != len(graph) or len(done) != len(graph):
        raise ValueError(f"xy has {len(out)} rows, placed {len(done)}, graph {len(graph)}")
    if not done.any():
        raise ValueError("no placed rows to place the others from")
    ids, sims = graph.indices[:, 1:], graph.similarities[:, 1:]
    while not done.all():
        todo = np.flatnonzero(~done)
        nb = ids[todo]
        known = (nb >= 0) & done[np.maximum(nb, 0)]
        ready = known.any(axis=1)
        if not ready.any():
            out[todo] = out[done].mean(axis=0)
            break
        rows = todo[ready]
        out[rows] = place_new(out, np.where(known[ready], nb[ready], -1), sims[rows])
        done[rows] = True
    return out


def settle_new(
    xy: np.ndarray,
    placed: np.ndarray,
    graph: KnnGraph,
    scale: float,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    epochs: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Refine the positions of rows that were not fitted by UMAP, keeping the fitted rows fixed.

    This is what ``umap.UMAP.transform`` does (fuzzy memberships of each new row's neighbours,
    then a few epochs of UMAP's attraction/repulsion with only the new points moving), but fed
    with our FAISS graph: new rows are pulled towards their graph neighbours (old and new) and
    pushed from random rows. ``xy`` (N, 2) in map units
    with every row positioned (e.g. by :func:`place_by_graph`); ``placed`` (N,) bool, the rows that
    stay put; ``scale`` UMAP's own units per map unit (UMAP's curve parameters are
    scale-dependent). ``epochs`` defaults to UMAP's transform choice (100 up to 10k rows, 30
    above). Above ``PARALLEL_ABOVE`` moving rows the epochs run on every core (not bit-reproducible).
    Returns (N, 2) float32; placed rows are returned unchanged.
    """
    import umap.umap_ as uu
    from umap.layouts import optimize_layout_euclidean

    from explorer.projection.umap_layout import umap_knn_arrays

    placed = np.asarray(placed, dtype=bool)
    out = np.array(xy, dtype=np.float32).reshape(-1, 2)
    n = len(out)
    nn = min(int(n_neighbors), graph.k + 1)
    if placed.all() or nn < 2 or n < 3:
        return out
    moving = np.flatnonzero(~placed)
    ids, dist = umap_knn_arrays(KnnGraph(graph.indices[moving], graph.similarities[moving], "", None), nn)
    ids, dist = np.ascontiguousarray(ids[:, 1:]), np.ascontiguousarray(dist[:, 1:])  # not the row itself
    # UMAP's transform: fuzzy memberships of the moving rows' own neighbours only (no union
    # over the whole graph, so the cost follows the number of moving rows)
    sigmas, rhos = uu.smooth_knn_dist(dist, float(nn - 1), local_connectivity=0.0)
    rows, tail, weight, _ = uu.compute_membership_strengths(ids, dist, sigmas, rhos, bipartite=True)
    head = moving[rows]
    real = (tail >= 0) & (tail != head) & (weight > 0)
    head, tail, weight = head[real], tail[real], weight[real]
    rng = np.random.RandomState(seed)
    if epochs is None:
        epochs = 100 if n <= 10_000 else 30
    keep = weight >= weight.max() / epochs if len(weight) else np.zeros(0, bool)
    head, tail, weight = head[keep], tail[keep], weight[keep]
    if len(head) == 0:
        return out
    a, b = uu.find_ab_params(1.0, min_dist)
    raw = np.ascontiguousarray(out * np.float32(scale), dtype=np.float32)
    rng_state = rng.randint(np.iinfo(np.int32).min + 1, np.iinfo(np.int32).max - 1, 3).astype(np.int64)
    raw = optimize_layout_euclidean(
        raw,
        raw,  # the same array: new rows see each other's updated positions
        head.astype(np.int32),
        tail.astype(np.int32),
        int(epochs),
        n,
        uu.make_epochs_per_sample(weight, int(epochs)),
        a,
        b,
        rng_state,
        1.0,
        0.25,  # UMAP's transform starts at a quarter of the fitting learning rate
        5.0,
        parallel=len(moving) > PARALLEL_ABOVE,
        move_other=False,
    )
    settled = raw / np.float32(scale)
    settled[placed] = out[placed]
    return settled.astype(np.float32)
