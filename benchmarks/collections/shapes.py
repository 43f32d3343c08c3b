"""``shapes``: 4,000 images (400 a class) of 10 shapes, 40x40 RGB; the class is the shape.

Classes: circle, square, triangle, star, cross, hexagon, arrow, heart, crescent, ring. Each is drawn with
PIL at 4x and box-filtered down (antialiased), filled with one colour or, one time in five, as an outline
2-3 px wide. Circles and rings are always filled: an outlined circle would look like a ring.

What makes it hard: every nuisance is strong and none may decide the class: background colour, gradient
and texture (blotches, noise, stripes, checkerboards), shape colour (any colour that stands out from the
background), filled or outline-only, position, size (45-85 % of the image across) and rotation (any angle:
a square may stand on a corner, an arrow point anywhere). Small shapes at 40 px leave hexagon vs circle to a
few pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import Collection, background, composite, random_colour, save, scaled, supersampled, to_uint8

NAME = "shapes"
SIZE = 40
PER_CLASS = 400
OUTLINE = 0.2  # share of images drawn as an outline only


def _regular(corners: int, start: float = -np.pi / 2) -> np.ndarray:
    """The corners of a regular polygon on the unit circle, the first at angle ``start``."""
    angles = start + 2 * np.pi * np.arange(corners) / corners
    return np.stack([np.cos(angles), np.sin(angles)], 1)


def _star() -> np.ndarray:
    """A five-pointed star: corners alternating at radius 1 and 0.42."""
    radius = np.tile([1.0, 0.42], 5)
    return _regular(10) * radius[:, None]


def _heart() -> np.ndarray:
    """The classic parametric heart curve, point down, its box centred on 0 and its farthest point at 1."""
    t = np.linspace(0, 2 * np.pi, 80, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    points = np.stack([x, y - (y.max() + y.min()) / 2], 1)
    return points / np.hypot(*points.T).max()


def _crescent() -> np.ndarray:
    """A crescent: the unit circle's left part outside a circle of radius 0.85 moved right by 0.45."""
    outer = np.linspace(np.pi * 0.28, np.pi * 1.72, 60)
    inner_start = np.arctan2(np.sin(outer[0]), np.cos(outer[0]) - 0.45)
    inner = np.linspace(2 * np.pi - inner_start, inner_start, 60)
    return np.concatenate(
        [
            np.stack([np.cos(outer), np.sin(outer)], 1),
            np.stack([0.45 + 0.85 * np.cos(inner), 0.85 * np.sin(inner)], 1),
        ]
    )


# name -> outlines in a unit frame (radius 1 around 0, y down): the first is filled, any further one is a hole
SHAPES: dict[str, list[np.ndarray]] = {
    "circle": [_regular(72)],
    "square": [_regular(4, np.pi / 4) * 0.92],
    "triangle": [_regular(3)],
    "star": [_star()],
    "cross": [
        np.array(
            [[-1, -3], [1, -3], [1, -1], [3, -1], [3, 1], [1, 1], [1, 3], [-1, 3], [-1, 1], [-3, 1], [-3, -1], [-1, -1]]
        )
        / 3.2
    ],
    "hexagon": [_regular(6)],
    "arrow": [
        np.array([[-1, -0.22], [0.15, -0.22], [0.15, -0.6], [1, 0], [0.15, 0.6], [0.15, 0.22], [-1, 0.22]]) * 0.95
    ],
    "heart": [_heart()],
    "crescent": [_crescent()],
    "ring": [_regular(72), _regular(72) * 0.55],
}
FILLED_ONLY = {"circle", "ring"}


def shape_mask(name: str, rng: np.random.Generator) -> np.ndarray:
    """A (40, 40) antialiased mask in 0..1 of shape ``name`` at a random size, place and angle, filled or,
    for a share ``OUTLINE`` of the shapes that allow it, outline-only."""
    radius = rng.uniform(0.45, 0.85) * SIZE / 2
    centre = rng.uniform(radius + 1, SIZE - radius - 1, 2)
    angle = rng.uniform(0, 2 * np.pi)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    outlines = [points @ turn.T for points in SHAPES[name]]
    outlined = name not in FILLED_ONLY and rng.random() < OUTLINE
    width = rng.uniform(2.0, 3.0)

    def draw(pen, k):
        for n, points in enumerate(outlines):
            xy = [tuple(p) for p in (centre + radius * points) * k]
            if outlined:
                pen.line([*xy, xy[0], xy[1]], fill=255, width=round(width * k), joint="curve")
            else:
                pen.polygon(xy, fill=255 if n == 0 else 0)

    return supersampled(SIZE, draw)


def shape_image(name: str, rng: np.random.Generator) -> np.ndarray:
    """A (40, 40, 3) uint8 image of shape ``name`` in a colour that stands out from a textured background."""
    canvas, colours = background(SIZE, rng, stripes=0.35)
    mask = shape_mask(name, rng)
    return to_uint8(composite(canvas, mask, random_colour(rng, colours)), peak=255.0)


def make(dest: Path, scale: float = 1.0, seed: int = 0) -> Collection:
    """Write ``dest/shapes``: ``400 * scale`` images a class (at least 5)."""
    rng = np.random.default_rng(seed)
    labels = [name for name in SHAPES for _ in range(scaled(PER_CLASS, scale, minimum=5))]
    images = [shape_image(name, rng) for name in labels]
    return save(dest, NAME, images, labels, rng, "10 shapes on textured colour backgrounds, 40x40 RGB")
