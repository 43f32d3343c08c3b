"""Collections for the SSL benchmarks, written to disk as PNG files and read back the way the app
reads them (``explorer.images.decode.load_rgb_array``).

- ``digits``: the demo collection (``explorer.demo.write_demo``): 1,797 handwritten digits, 32 px,
  dark ink on light paper; the class is the digit.
- ``shapes``: 8 shapes (disc, ring, square, frame, triangle, diamond, cross, star) where colour
  (ink and paper), size (35-80 % of the side) and position are nuisances and the shape is the class.

Also ``cpu_clock``: the benchmarks measure time budgets in CPU seconds of their own process, so
that five agents sharing two cores change the wall time but not what a method gets to do.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("disc", "ring", "square", "frame", "triangle", "diamond", "cross", "star")


def cpu_clock() -> float:
    """CPU seconds used by this process (all threads): with 2 busy threads, 2 per wall second."""
    return time.process_time()


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        angles = [-90, 30, 150]
    elif shape == "diamond":
        angles = [-90, 0, 90, 180]
    else:  # star: 5 outer and 5 inner points
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.45
            a = math.radians(-90 + 36 * k)
            points.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
        return points
    return [(cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a))) for a in angles]


def draw_shape(shape: str, rng: np.random.Generator, size: int = 32, supersample: int = 4) -> np.ndarray:
    """(size, size, 3) uint8: ``shape`` in a random ink colour, size and place, on random paper."""
    big = size * supersample
    paper = tuple(int(v) for v in rng.integers(0, 256, 3))
    ink = tuple(int(v) for v in rng.integers(0, 256, 3))
    while sum(abs(a - b) for a, b in zip(paper, ink, strict=True)) < 180:  # keep the shape visible
        ink = tuple(int(v) for v in rng.integers(0, 256, 3))
    image = Image.new("RGB", (big, big), paper)
    draw = ImageDraw.Draw(image)
    r = big * rng.uniform(0.35, 0.8) / 2
    cx, cy = rng.uniform(r, big - r, 2)
    box = (cx - r, cy - r, cx + r, cy + r)
    line = max(2, int(r * 0.3))
    if shape == "disc":
        draw.ellipse(box, fill=ink)
    elif shape == "ring":
        draw.ellipse(box, outline=ink, width=line)
    elif shape == "square":
        s = r * 0.8
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=ink)
    elif shape == "frame":
        s = r * 0.8
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), outline=ink, width=line)
    elif shape == "cross":
        w = r * 0.3
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=ink)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=ink)
    else:
        draw.polygon(_polygon(shape, cx, cy, r), fill=ink)
    return np.asarray(image.resize((size, size), Image.Resampling.LANCZOS))


def write_shapes(dest: Path, per_class: int = 250, size: int = 32, seed: int = 0) -> tuple[Path, Path]:
    """Write the shapes collection to ``dest/shapes/`` and its truth CSV; (images folder, truth CSV)."""
    rng = np.random.default_rng(seed)
    folder = Path(dest) / "shapes"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    labels = [shape for shape in SHAPES for _ in range(per_class)]
    for k, index in enumerate(rng.permutation(len(labels))):
        name = f"img-{k:05d}.png"
        Image.fromarray(draw_shape(labels[index], rng, size)).save(folder / name)
        rows.append((name, labels[index]))
    truth = Path(dest) / "shapes-truth.csv"
    with open(truth, "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *rows])
    return folder, truth


def read_collection(folder: Path, truth: Path, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, size, size, 3) uint8, labels (N,)) decoded from disk like the app does."""
    from explorer.images.decode import load_rgb_array

    with open(truth, newline="") as f:
        rows = list(csv.DictReader(f))
    images = np.stack([load_rgb_array(folder / row["path"], size) for row in rows])
    return images, np.array([row["label"] for row in rows])


def load_collection(name: str, dest: Path, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``digits`` or ``shapes`` written under ``dest`` and read back: (images, labels)."""
    if name == "digits":
        from explorer.demo import write_demo

        demo = write_demo(Path(dest))
        return read_collection(demo.images, demo.truth, size)
    if name == "shapes":
        return read_collection(*write_shapes(Path(dest)), size)
    raise ValueError(f"unknown collection {name!r}; choose digits or shapes")
