"""Jigsaw puzzles: Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving
Jigsaw Puzzles", ECCV 2016, arXiv:1603.09246.

An image is cut into a 3x3 grid of tiles (with gaps and jitter) which are shuffled by one of a
fixed set of permutations; each tile goes through the shared encoder ("context-free network"),
and a classifier over the nine feature vectors, concatenated in shuffled order, names the
permutation. The permutation set is chosen greedily for a large minimal Hamming distance (the
paper's Algorithm 1). Each tile is jittered and standardised on its own.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from explorer.ssl import catalog
from explorer.ssl.augment import AugmentRecipe, augment_unit, colour_jitter
from explorer.ssl.methods.base import SSLMethod, mlp
from explorer.ssl.methods.rotation import classification_loss
from explorer.ssl.patches import GRID, grid_patches, patch_size_for, standardise_each

TILES = GRID * GRID


@functools.lru_cache(maxsize=8)
def jigsaw_permutations(count: int = 100) -> torch.Tensor:
    """(count, 9) int64 permutations of the 9 tiles with a large minimal pairwise Hamming distance.

    Greedy (Noroozi & Favaro, Algorithm 1), deterministic: start from the identity and keep adding
    the permutation whose smallest distance to those chosen is the largest (first one on ties).
    """
    if not 2 <= count <= 1000:
        raise ValueError(f"jigsaw needs between 2 and 1000 permutations (got {count})")
    candidates = np.array(list(itertools.permutations(range(TILES))), dtype=np.int8)  # (9!, 9)
    chosen = [0]
    nearest = (candidates != candidates[0]).sum(axis=1)  # distance of each candidate to the chosen set
    for _ in range(count - 1):
        pick = int(nearest.argmax())
        chosen.append(pick)
        nearest = np.minimum(nearest, (candidates != candidates[pick]).sum(axis=1))
    return torch.from_numpy(candidates[chosen].astype(np.int64))


def shuffled_tiles(
    x: torch.Tensor, size: int, permutations: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """float (B, C, S, S) -> (tiles (B*9, C, s, s), permutation labels (B,) on x's device).

    Rows 9i..9i+8 are image i's tiles in shuffled order: slot j holds grid cell permutations[label_i][j].
    """
    b = len(x)
    labels = torch.randint(0, len(permutations), (b,), generator=generator)
    cells = permutations[labels].reshape(-1)  # (B*9,)
    tiles = grid_patches(x.repeat_interleave(TILES, dim=0), cells, size, generator=generator)
    return tiles, labels.to(x.device)


class Jigsaw(SSLMethod):
    """Shared encoder per tile, a per-tile layer (D -> 128), then an MLP over the 9 x 128 -> permutation."""

    name: ClassVar[str] = "jigsaw"
    description: ClassVar[str] = catalog.METHODS["jigsaw"]
    base_lr: ClassVar[float] = 2e-3
    weight_decay: ClassVar[float] = 1e-5

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        image_size: int = 32,
        dataset_size: int | None = None,
        permutations: int = 100,
    ) -> None:
        super().__init__(encoder, feature_dim, image_size, dataset_size)
        self.patch_size = patch_size_for(image_size)
        self.permutations = jigsaw_permutations(permutations)  # (P, 9) on the CPU, where views are drawn
        self.tile_layer = nn.Sequential(nn.Linear(feature_dim, 128), nn.ReLU(inplace=True))
        self.classifier = mlp(TILES * 128, 512, permutations)

    def recipe(self, image_size: int, grayscale: bool) -> AugmentRecipe:
        return dataclasses.replace(super().recipe(image_size, grayscale), flip_p=0.0, crop_scale=(0.6, 1.0))

    def make_views(
        self, images: torch.Tensor, recipe: AugmentRecipe, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """uint8 (B, 3, S, S) -> (tiles (B*9, 3, s, s), labels (B,)); s = S/2."""
        whole = dataclasses.replace(recipe, jitter_p=0.0)  # colour is jittered per tile
        tiles, labels = shuffled_tiles(
            augment_unit(images, whole, generator), self.patch_size, self.permutations, generator
        )
        return standardise_each(colour_jitter(tiles, recipe, generator)), labels

    def local_views(
        self, views: tuple[torch.Tensor, ...], start: int, stop: int, batch: int
    ) -> tuple[torch.Tensor, ...]:
        """Images ``start:stop`` of the batch: their 9 consecutive tiles each, and their labels."""
        tiles, labels = views
        return tiles[start * TILES : stop * TILES], labels[start:stop]

    def forward_loss(self, tiles: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        features = self.tile_layer(self.encoder(tiles))  # (B*9, 128)
        return classification_loss(self.classifier(features.reshape(len(labels), -1)), labels)
