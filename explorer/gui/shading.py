""" "Where to label": a soft shade over the parts of the map that no human label covers and
whose pseudo-labels are unsure, so the person sees where the next click helps most."""

from __future__ import annotations

import numpy as np

from explorer.gui.label_state import HUMAN, NONE, PSEUDO

CELLS = 96  # grid cells along the map's longer side
UNSURE_BELOW = 0.5
SHADE_RGB = (255, 120, 60)
SHADE_ALPHA = 110


def unlabelled_regions(
    xy: np.ndarray, source: np.ndarray, confidence: np.ndarray
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """An RGBA image (W, H, 4) uint8 for a pyqtgraph ``ImageItem`` and the map rectangle
    (x, y, width, height) it covers.

    A cell is shaded by how many unsure points it holds (unlabelled, or pseudo-labelled under
    ``UNSURE_BELOW``), unless a human label lies in it or next to it.
    """
    lo = xy.min(axis=0) if len(xy) else np.zeros(2, np.float32)
    hi = xy.max(axis=0) if len(xy) else np.ones(2, np.float32)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-6))
    cell = span / CELLS
    shape = (int(np.ceil((hi[0] - lo[0]) / cell)) + 3, int(np.ceil((hi[1] - lo[1]) / cell)) + 3)
    origin = lo - cell  # one empty cell of margin on each side
    image = np.zeros((*shape, 4), np.uint8)
    if len(xy) == 0 or len(source) != len(xy):
        return image, (float(origin[0]), float(origin[1]), shape[0] * cell, shape[1] * cell)
    from scipy import ndimage  # only when the shade is asked for

    ij = np.clip(((xy - origin) / cell).astype(np.int64), 0, np.array(shape) - 1)
    conf = np.nan_to_num(confidence, nan=0.0)
    unsure = (source == NONE) | ((source == PSEUDO) & (conf < UNSURE_BELOW))
    counts = np.zeros(shape, np.float32)
    np.add.at(counts, (ij[unsure, 0], ij[unsure, 1]), 1.0)
    covered = np.zeros(shape, bool)
    covered[ij[source == HUMAN, 0], ij[source == HUMAN, 1]] = True
    covered = ndimage.binary_dilation(covered, iterations=1)
    counts[covered] = 0
    density = ndimage.gaussian_filter(counts, 1.0)
    density[covered] = 0  # the blur must not spill back over a human label
    top = float(np.percentile(density[density > 0], 95)) if (density > 0).any() else 1.0
    alpha = np.clip(density / max(top, 1e-6), 0, 1) * SHADE_ALPHA
    image[..., 0], image[..., 1], image[..., 2] = SHADE_RGB
    image[..., 3] = alpha.astype(np.uint8)
    return image, (float(origin[0]), float(origin[1]), shape[0] * cell, shape[1] * cell)
