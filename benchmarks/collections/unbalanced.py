"""``unbalanced``: about 4,000 handwriting-like digits (``handwriting``'s generator), 28x28 grayscale, labels
"0".."9", in class sizes from 1 to 20 and with near-duplicates.

Class sizes fall geometrically: the largest class holds 20 times the smallest (59 to 1,175 images at full
size); which digit gets which size is drawn from the seed. About 10 % of each class are near-duplicates:
another image of the same class saved again with a 1-2 px shift, a brightness change of up to 10 % and a
little noise. ``duplicates.csv`` beside ``truth.csv`` lists them (path of the copy, path of the original).

What makes it hard: the rare classes get few neighbours and few random picks, so a labelling loop that
samples uniformly or propagates by majority drowns them; near-duplicates make clusters look denser and
purer than they are and should each cost no extra label. Nuisances: as in ``handwriting`` (slant, width,
wobble, aspect), plus the duplicate's shift, brightness and noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import handwriting
from ._common import Collection, pick, save, scaled

NAME = "unbalanced"
TOTAL = 4000
RATIO = 20.0  # largest class over smallest
SHARE = 0.1  # share of each class that are near-duplicates
MINIMUM = 3  # images a class at the least (smoke-test scales)


def class_sizes(total: int = TOTAL, classes: int = 10, ratio: float = RATIO, minimum: int = MINIMUM) -> list[int]:
    """Sizes of ``classes`` classes, smallest first, growing geometrically so that the largest is ``ratio`` times
    the smallest, summing to about ``total``; each at least ``minimum``."""
    weights = ratio ** (np.arange(classes) / (classes - 1))
    return [max(minimum, round(total * w / weights.sum())) for w in weights]


def near_duplicate(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (uint8, (H, W) or (H, W, 3)) moved by 1-2 px (zeros come in), its brightness scaled by
    0.9-1.1 and a little Gaussian noise (std 2-5) added."""
    dy, dx = 0, 0
    while (dy, dx) == (0, 0):
        dy, dx = (int(d) for d in rng.integers(-2, 3, 2))
    moved = np.zeros_like(image)
    h, w = image.shape[:2]
    moved[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    changed = moved * rng.uniform(0.9, 1.1) + rng.normal(0, rng.uniform(2, 5), image.shape)
    return np.clip(np.rint(changed), 0, 255).astype(np.uint8)


def make(dest: Path, scale: float = 1.0, seed: int = 0) -> Collection:
    """Write ``dest/unbalanced``: ``class_sizes(4000 * scale)`` images a class (at least 3), of which
    ``round(0.1 * size)`` are near-duplicates, plus ``duplicates.csv``."""
    rng = np.random.default_rng(seed)
    sources, source_labels = handwriting.sources()
    sizes = dict(zip(rng.permutation(10).tolist(), class_sizes(scaled(TOTAL, scale))))
    originals = {c: n - round(SHARE * n) for c, n in sizes.items()}
    chosen = pick(source_labels, originals, rng)
    images = [handwriting.handwritten(sources[i], rng) for i in chosen]
    labels = [int(source_labels[i]) for i in chosen]
    duplicates = []
    for label, n in sizes.items():
        members = [k for k, m in enumerate(labels) if m == label]
        for original in rng.choice(members, n - originals[label], replace=n - originals[label] > len(members)):
            duplicates.append((len(images), int(original)))
            images.append(near_duplicate(images[original], rng))
            labels.append(label)
    return save(
        dest,
        NAME,
        images,
        [str(m) for m in labels],
        rng,
        "handwriting-like digits, class sizes 1:20, 10 % near-duplicates, 28x28 grey",
        duplicates=duplicates,
    )
