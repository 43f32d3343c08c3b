"""An instant 2-D preview of the embeddings and the shared scaling of maps."""

from __future__ import annotations

import numpy as np


def normalise_layout(xy: np.ndarray) -> np.ndarray:
    """Centre (N, 2) coordinates on their mean and scale them uniformly into [-1, 1].

    The aspect ratio is kept (one scale for both axes). Returns (N, 2) float32; a layout with
    no spread (N <= 1 or all points equal) becomes all zeros. Non-finite input becomes zeros.
    """
    out = np.array(xy, dtype=np.float64).reshape(-1, 2)
    out[~np.isfinite(out)] = 0.0
    if len(out) == 0:
        return out.astype(np.float32)
    out -= out.mean(axis=0)
    scale = np.abs(out).max()
    if scale > 0:
        out /= scale
    else:
        out[:] = 0.0
    return out.astype(np.float32)


def pca_preview(embeddings: np.ndarray) -> np.ndarray:
    """Project (N, D) embeddings on their first two principal components of the unit rows.

    Returns (N, 2) float32 scaled by :func:`normalise_layout`. Fast (one thin SVD of a
    (D, D) covariance), deterministic (component signs fixed so the largest loading is positive),
    and safe for any N (N < 3 or D < 2 pads with zeros).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {x.shape}")
    n, d = x.shape
    if n == 0:
        return np.zeros((0, 2), np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    x = x - x.mean(axis=0)
    cov = x.T @ x
    vals, vecs = np.linalg.eigh(cov)
    vecs = vecs[:, ::-1][:, :2]
    signs = np.sign(vecs[np.abs(vecs).argmax(axis=0), np.arange(vecs.shape[1])])
    vecs = vecs * np.where(signs == 0, 1.0, signs)
    xy = np.zeros((n, 2))
    xy[:, : vecs.shape[1]] = x @ vecs
    return normalise_layout(xy)
