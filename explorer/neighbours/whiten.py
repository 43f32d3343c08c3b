"""Whitening of learned embeddings before labels propagate through them.

A self-supervised encoder's features are far from isotropic: on the suite's trained encoders the
top three principal directions hold 55-70 % of the variance, so cosine neighbours follow those
few directions whatever they carry, and the class is often written in the quieter ones.
Regularised PCA whitening (Jegou & Chum 2012, "Negative evidences and co-occurrences in image
retrieval: the benefit of PCA and whitening") rescales every kept direction to unit variance, the
weakest ones damped by ``EPS`` times the strongest's scale.

Measured with ``benchmarks/whitening.py`` on the suite's trained encoders (fresh maps of the same
embeddings), pseudo-label accuracy from 1 / 3 / 10 seeds a class, not whitened -> whitened: mnist
0.895 / 0.943 / 0.963 -> 0.914 / 0.967 / 0.976; glyphs 0.174 / 0.217 / 0.246 -> 0.225 / 0.272 /
0.311; shapes 0.193 / 0.323 / 0.411 -> 0.196 / 0.361 / 0.429; mnist-cluttered 0.107 / 0.106 /
0.133 -> 0.113 / 0.116 / 0.148. Raw pixels lose (mnist kNN@20 0.942 -> 0.917, one seed a class
0.886 -> 0.769 in the label space): their weak directions are noise, so pixels are never whitened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIMENSIONS = 128
"""Directions kept (all when the embedding has fewer): 64 and 256 measured the same on seeded accuracy."""
EPS = 0.02
"""Damping of weak directions, as a share of the strongest direction's scale (0 to 0.1 measured within 0.01)."""
FIT_ROWS = 50_000
"""The covariance is estimated from at most this many random rows."""
MIN_ROWS = 200
CHUNK = 65_536


@dataclass(frozen=True)
class Whitening:
    """``apply(x)``: (N, D) -> (N, d) float32 unit rows, ``(x - mean) @ matrix`` normalised."""

    mean: np.ndarray  # (D,) float32
    matrix: np.ndarray  # (D, d) float32: principal directions, each divided by its damped scale

    def apply(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((len(x), self.matrix.shape[1]), np.float32)
        for start in range(0, len(x), CHUNK):
            block = (np.asarray(x[start : start + CHUNK], np.float32) - self.mean) @ self.matrix
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            out[start : start + CHUNK] = block / np.maximum(norms, 1e-12)
        return out


def fit_whitening(
    x: np.ndarray, dimensions: int = DIMENSIONS, eps: float = EPS, fit_rows: int = FIT_ROWS, seed: int = 0
) -> Whitening | None:
    """The whitening of ``x`` (N, D) (memory-mapped is fine: only a sample is read); None when
    there are fewer than ``MIN_ROWS`` rows (too few to estimate the directions)."""
    n, dim = x.shape
    if n < MIN_ROWS:
        return None
    rows = np.sort(np.random.default_rng(seed).choice(n, size=fit_rows, replace=False)) if n > fit_rows else None
    sample = np.asarray(x if rows is None else x[rows], np.float64)
    mean = sample.mean(axis=0)
    centred = sample - mean
    values, vectors = np.linalg.eigh(centred.T @ centred / len(sample))
    order = np.argsort(values)[::-1][: min(dimensions, dim)]
    scale = np.sqrt(np.maximum(values[order], 0.0))
    matrix = vectors[:, order] / (scale + eps * max(scale[0], 1e-12))
    return Whitening(mean.astype(np.float32), matrix.astype(np.float32))


def whitens(encoder: str) -> bool:
    """Whether embeddings described as ``encoder`` (an embed run's ``encoder`` param) are whitened:
    those of neural encoders (trained here, pretrained or loaded), not raw pixels (whitening
    amplifies their noise) and not imported vectors (their geometry is the maker's choice)."""
    encoder = encoder.strip().lower()
    return bool(encoder) and encoder != "pixels" and not encoder.startswith(("raw pixels", "imported"))
