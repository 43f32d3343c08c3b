"""``mnist-cluttered``: the real MNIST digits of ``mnist`` on busy colour backgrounds, 48x48 RGB, labels "0".."9".

Each digit (its 28 px frame scaled to 60-100 % of the 48 px canvas, 29-48 px) is drawn at a random place in
one random colour, over a background of a smooth random colour gradient with soft blotches and pixel noise
(stripes or a checkerboard on some), with 1-3 stray strokes around it: short straight pen lines or pieces cut
from other digits, in the digit's colour or another.

What makes it hard: easy for a person (the digit is the one large, whole glyph), hard for raw pixels and for
weak encoders. Nuisances that must not decide the class: background colour, gradient and texture, ink colour,
digit size and position, the strays (which look like bits of digits) and noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import mnist
from ._common import (
    Collection,
    background,
    composite,
    paste,
    random_colour,
    resize,
    save,
    scaled,
    supersampled,
    to_uint8,
)

NAME = "mnist-cluttered"
SIZE = 48


def cluttered(digit: np.ndarray, others: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One (48, 48, 3) uint8 image of ``digit`` ((28, 28) uint8 MNIST) on clutter; ``others`` ((N, 28, 28))
    are digits that strays may be cut from."""
    canvas, colours = background(SIZE, rng, stripes=0.3)
    box = int(rng.integers(round(0.6 * SIZE), SIZE + 1))
    margin = box * 4 // 28  # MNIST leaves 4 of 28 px empty on every side: the ink may go that far out
    top, left = rng.integers(-margin, SIZE - box + margin + 1, 2)
    ink = paste((SIZE, SIZE), resize(digit / 255.0, (box, box)), int(top), int(left))
    colour = random_colour(rng, colours)
    for _ in range(rng.integers(1, 4)):
        stray = _stray(others[rng.integers(len(others))], box / 28, ink, rng)
        same = rng.random() < 0.5
        canvas = composite(canvas, stray, colour if same else random_colour(rng, colours))
    canvas = composite(canvas, ink * rng.uniform(0.85, 1.0), colour)
    return to_uint8(canvas, peak=255.0)


def _stray(other: np.ndarray, factor: float, ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A (48, 48) stroke mask in 0..1 away from ``ink``: a straight pen line or a piece of ``other`` (scaled by
    ``factor`` like the digit), at the first of up to 20 random places where it overlaps ``ink`` by under
    5 % (else the place that overlaps least)."""
    patch = _line(rng) if rng.random() < 0.5 else _piece(other, factor, rng)
    h, w = patch.shape
    best, overlap = None, np.inf
    for _ in range(20):
        top, left = rng.integers(-(h // 4), SIZE - h + h // 4 + 1), rng.integers(-(w // 4), SIZE - w + w // 4 + 1)
        mask = paste((SIZE, SIZE), patch, int(top), int(left))
        shared = float(np.minimum(mask, ink).sum())
        if shared < overlap:
            best, overlap = mask, shared
        if shared < 0.05 * mask.sum():
            break
    return best


def _line(rng: np.random.Generator) -> np.ndarray:
    """A (16, 16) patch with a straight antialiased pen line 5-14 px long and 1.2-3 px wide, through its centre."""
    half, angle = rng.uniform(2.5, 7), rng.uniform(0, np.pi)
    dx, dy = half * np.cos(angle), half * np.sin(angle)
    width = rng.uniform(1.2, 3.0)

    def draw(pen, k):
        pen.line([((8 - dx) * k, (8 - dy) * k), ((8 + dx) * k, (8 + dy) * k)], fill=255, width=round(width * k))

    return supersampled(16, draw)


def _piece(other: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """A round window of ``other`` (scaled by ``factor``) 25-40 % of the digit's size across, centred on one of
    its ink pixels and faded out towards its rim, so the cut stroke ends taper instead of stopping square."""
    side = round(28 * factor)
    scaled_other = resize(other / 255.0, (side, side))
    rows, cols = np.nonzero(scaled_other > 0.5)
    at = rng.integers(len(rows))
    radius = max(2, round(rng.uniform(0.25, 0.4) * 20 * factor / 2))
    window = paste((2 * radius + 1, 2 * radius + 1), scaled_other, radius - rows[at], radius - cols[at])
    y, x = np.indices(window.shape) - radius
    fade = np.clip((radius + 0.5 - np.hypot(y, x)) / (0.4 * radius), 0, 1)
    return window * fade


def make(dest: Path, scale: float = 1.0, seed: int = 0) -> Collection:
    """Write ``dest/mnist-cluttered``: ``500 * scale`` images a class (at least 5, at most 500, each real
    digit at most once)."""
    rng = np.random.default_rng(seed)
    digits, labels = mnist.digits()
    chosen = mnist.balanced(scaled(mnist.PER_CLASS, scale, minimum=5), rng)
    images = [cluttered(digits[i], digits, rng) for i in chosen]
    return save(
        dest,
        NAME,
        images,
        [str(labels[i]) for i in chosen],
        rng,
        "real MNIST digits at random size and place on colour clutter with stray strokes, 48x48 RGB",
    )
