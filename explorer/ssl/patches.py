"""Cutting images into a 3x3 grid of patches with gaps and jitter, for the patch pretext tasks
(relative patch position, jigsaw): whole batches at once, one ``grid_sample`` call.

Cells are numbered row by row: 0 1 2 / 3 4 5 / 6 7 8 (4 is the centre). A patch is a square of
``1 - gap`` of its cell's side, placed at a random offset inside the cell, so that neighbouring
patches never share pixels and their edges cannot simply be continued (Doersch et al. 2015). The
offset uses at most half of the patch's share of the gap, so two neighbours jittered towards
each other still keep half the gap between them.
"""

from __future__ import annotations

import torch

from explorer.ssl.augment import crop_boxes

GRID = 3


def patch_size_for(image_size: int) -> int:
    """Side in pixels that patches are resized to: half the image side, at least 8 px."""
    return max(8, image_size // 2)


def grid_patches(
    x: torch.Tensor, cells: torch.Tensor, size: int, gap: float = 0.25, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One patch per row of x: float (B, C, S, S), cells (B,) ints in 0..8 -> (B, C, size, size)."""
    b = len(x)
    cells = cells.cpu()
    cell = 2.0 / GRID  # side of a cell in [-1, 1] coordinates
    side = cell * (1 - gap)
    slack = (cell - side) / 4  # half of this patch's half of the gap
    cx = -1 + cell * (cells % GRID + 0.5) + (torch.rand(b, generator=generator) * 2 - 1) * slack
    cy = -1 + cell * (cells // GRID + 0.5) + (torch.rand(b, generator=generator) * 2 - 1) * slack
    w = torch.full((b,), side / 2)  # crop_boxes takes the side as a fraction of the image side
    return crop_boxes(x, cx, cy, w, w.clone(), size)


def standardise_each(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Give every patch of float (N, C, s, s) zero mean and unit standard deviation over its pixels
    (Noroozi & Favaro 2016: removes brightness and contrast cues that would give the answer away)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / (std + eps)
