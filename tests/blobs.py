"""Small collections made on the fly for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_blobs(folder: Path, per_class: int = 20, size: int = 24, seed: int = 0) -> dict[str, str]:
    """Three obvious classes (red squares, green discs, blue bars) as PNGs; returns path -> class."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    yy, xx = np.mgrid[:size, :size]
    for cls, colour in (("red", (220, 30, 30)), ("green", (30, 200, 40)), ("blue", (30, 60, 220))):
        for _ in range(per_class):
            image = np.full((size, size, 3), 245, np.uint8)
            cx, cy = rng.integers(size // 3, 2 * size // 3, 2)
            r = rng.integers(size // 6, size // 3)
            if cls == "red":
                mask = (abs(xx - cx) < r) & (abs(yy - cy) < r)
            elif cls == "green":
                mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
            else:
                mask = abs(xx - cx) < max(2, r // 3)
            image[mask] = np.clip(np.array(colour) + rng.integers(-20, 20, 3), 0, 255)
            name = f"img-{len(truth):04d}.png"
            Image.fromarray(image).save(folder / name)
            truth[name] = cls
    return truth


def mapped_blobs(folder: Path, per_class: int = 20, *, map_k: int | None = 8) -> dict[str, str]:
    """``write_blobs`` scanned, embedded as raw pixels and mapped with ``map_k`` neighbours (None:
    scanned only), through the workflow; returns path -> class."""
    from explorer import workflow
    from explorer.store import Project

    truth = write_blobs(folder, per_class=per_class)
    with Project(folder) as project:
        workflow.scan(project)
        if map_k is not None:
            workflow.embed(project, workflow.PIXELS)
            workflow.make_map(project, k=map_k)
    return truth
