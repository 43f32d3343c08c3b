"""Placing items added after the map was fitted, without refitting UMAP."""

from __future__ import annotations

import numpy as np


def place_new(xy_known: np.ndarray, neighbours: np.ndarray, similarities: np.ndarray) -> np.ndarray:
    """Position new items at the similarity-weighted mean of their known neighbours' positions.

    ``xy_known`` (N, 2) map positions of the items already placed; ``neighbours`` (M, k) int64 row
    positions into ``xy_known`` of each new item's nearest known items (-1 = missing);
    ``similarities`` (M, k) their cosine similarities. Weights are ``max(s, 0)``; when all of
    a row's weights are 0 its valid neighbours count equally; a row with no valid neighbour goes
    to the centre of the known map. Returns (M, 2) float32.
    """
    xy = np.asarray(xy_known, dtype=np.float64).reshape(-1, 2)
    nb = np.atleast_2d(np.asarray(neighbours, dtype=np.int64))
    sim = np.atleast_2d(np.asarray(similarities, dtype=np.float64))
    if nb.shape != sim.shape:
        raise ValueError(f"neighbours {nb.shape} and similarities {sim.shape} must have the same shape")
    if len(xy) == 0:
        return np.zeros((len(nb), 2), np.float32)
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
