"""``handwriting``: 5,000 handwriting-like digits (500 a class), 28x28 grayscale like MNIST, labels "0".."9";
made from scikit-learn's 1,797 8x8 digits, no download and no mlxtend.

Each image starts from one 8x8 digit (each used 2-3 times): smoothed up to a 48 px field (cubic) and sharpened
so that loops dip below the strokes; thresholded at a random level and thinned to a one-pixel trace (Zhang &
Suen 1984), which a round pen of random width (a dilation of the trace by a disc) redraws; solid blobs of the
source (loops written filled) are kept as blobs. Then slanted, turned, stretched and bent by an elastic field
(Simard et al. 2003), given uneven ink pressure, and finally sized and centred like MNIST: longer side 20 px,
centre of mass at the centre of the 28x28 frame.

What makes it hard: the same digit comes in many shapes (slant, width, wobble, proportions), and the 8x8
sources are few and coarse, so some are ambiguous. Nuisances that must not decide the class: slant, rotation
(within +-12 degrees), stroke width, pressure, elastic wobble, aspect.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ._common import Collection, elastic_alpha, elastic_field, fit, paste, pick, save, scaled, to_uint8, warp

NAME = "handwriting"
PER_CLASS = 500
FRAME = 28  # MNIST's frame
BOX = 20  # MNIST's box for the longer side
UP = 4  # 8x8 cells to field pixels


@lru_cache(maxsize=1)
def sources() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: float images (1797, 8, 8) in 0..1 and int labels (1797,), read-only."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images / 16.0
    images.setflags(write=False)
    return images, digits.target


def handwritten(source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A (28, 28) uint8 handwriting-like digit (0 background, 255 ink) from one (8, 8) ``source`` in 0..1."""
    from scipy.ndimage import distance_transform_edt, gaussian_filter, zoom

    field = np.clip(zoom(np.pad(source, 2), UP, order=3), 0, 1)  # 48x48, the digit in the middle 32x32
    field = field + 2.0 * (field - gaussian_filter(field, 4.0))  # sharpened: loops dip below the strokes
    trace = thin(field > rng.uniform(0.35, 0.5))
    pen = rng.uniform(1.2, 3.4)  # radius in field pixels: strokes 2-5 px wide once the digit is 20 px tall
    ink = np.clip(pen + 0.5 - distance_transform_edt(~trace), 0, 1)
    # where the 8x8 source is a solid blob (a 9's or 6's loop drawn filled), keep the blob: a heavy pen
    ink = np.maximum(ink, 1 / (1 + np.exp(-(field - rng.uniform(0.7, 0.85)) / 0.04)))
    bend = elastic_field(ink.shape, elastic_alpha(rng.uniform(0.8, 2.0), 6.0), 6.0, rng)
    stretch = np.exp(rng.normal(0, 0.1, 2))
    ink = warp(ink, rotation=rng.uniform(-12, 12), shear=rng.uniform(-0.4, 0.4), zoom=tuple(stretch), field=bend)
    pressure = 1 - 0.25 * np.clip(elastic_field(ink.shape, elastic_alpha(1.0, 8.0), 8.0, rng)[0], 0, 1)
    return to_uint8(_centre_of_mass(fit(ink * pressure, BOX)), peak=1.0)


def thin(binary: np.ndarray) -> np.ndarray:
    """The one-pixel skeleton of a (H, W) bool image, by Zhang & Suen's thinning (CACM 1984): two alternating
    sub-steps peel boundary pixels that keep the shape connected, until none can go."""
    b = np.pad(binary.astype(bool), 1)
    while True:
        changed = False
        for step in (0, 1):
            # neighbours P2..P9 clockwise from north
            p = [b[:-2, 1:-1], b[:-2, 2:], b[1:-1, 2:], b[2:, 2:], b[2:, 1:-1], b[2:, :-2], b[1:-1, :-2], b[:-2, :-2]]
            count = np.sum(p, axis=0)
            rises = np.sum([~p[i] & p[(i + 1) % 8] for i in range(8)], axis=0)
            # step 0 peels south-east boundary and north-west corner pixels, step 1 the north-west and south-east ones
            keep_a = ~(p[0] & p[2] & p[4]) if step == 0 else ~(p[0] & p[2] & p[6])
            keep_b = ~(p[2] & p[4] & p[6]) if step == 0 else ~(p[0] & p[4] & p[6])
            peel = b[1:-1, 1:-1] & (count >= 2) & (count <= 6) & (rises == 1) & keep_a & keep_b
            if peel.any():
                b[1:-1, 1:-1] &= ~peel
                changed = True
        if not changed:
            return b[1:-1, 1:-1]


def _centre_of_mass(glyph: np.ndarray) -> np.ndarray:
    """``glyph`` placed in the 28x28 frame with its centre of mass (to the nearest pixel) at the centre."""
    weight = glyph.sum()
    if weight == 0:
        return paste((FRAME, FRAME), glyph, (FRAME - glyph.shape[0]) // 2, (FRAME - glyph.shape[1]) // 2)
    y, x = np.indices(glyph.shape)
    cy, cx = (glyph * y).sum() / weight, (glyph * x).sum() / weight
    return paste((FRAME, FRAME), glyph, round(FRAME / 2 - 0.5 - cy), round(FRAME / 2 - 0.5 - cx))


def make(dest: Path, scale: float = 1.0, seed: int = 0) -> Collection:
    """Write ``dest/handwriting``: ``500 * scale`` digits a class (at least 5)."""
    rng = np.random.default_rng(seed)
    images, labels = sources()
    chosen = pick(labels, dict.fromkeys(range(10), scaled(PER_CLASS, scale, minimum=5)), rng)
    return save(
        dest,
        NAME,
        [handwritten(images[i], rng) for i in chosen],
        [str(labels[i]) for i in chosen],
        rng,
        "handwriting-like digits grown from scikit-learn's 8x8 digits, 28x28 grey, MNIST-centred",
    )
