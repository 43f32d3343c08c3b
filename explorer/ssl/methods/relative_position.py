"""Relative patch position: Doersch, Gupta, Efros, "Unsupervised Visual Representation Learning
by Context Prediction", ICCV 2015, arXiv:1505.05192.

A centre patch and one of its eight neighbours (from a 3x3 grid with gaps and jitter) go through
the shared encoder; a classifier on the two feature vectors names where the neighbour was. Each
patch gets its own colour jitter and is standardised on its own, so that colour and brightness
continuity (and chromatic aberration) cannot give the answer away.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from explorer.ssl import catalog
from explorer.ssl.augment import AugmentRecipe, augment_unit, colour_jitter
from explorer.ssl.methods.base import SSLMethod, mlp
from explorer.ssl.methods.rotation import classification_loss
from explorer.ssl.patches import grid_patches, patch_size_for, standardise_each

CENTRE = 4
NEIGHBOURS = torch.tensor([0, 1, 2, 3, 5, 6, 7, 8])  # label k means cell NEIGHBOURS[k]


def position_pairs(
    x: torch.Tensor, size: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """float (B, C, S, S) -> (centre patches (B, C, s, s), neighbour patches (B, C, s, s), labels (B,)
    in 0..7 on x's device); neighbour i comes from grid cell NEIGHBOURS[labels[i]]."""
    b = len(x)
    labels = torch.randint(0, len(NEIGHBOURS), (b,), generator=generator)
    centre = grid_patches(x, torch.full((b,), CENTRE), size, generator=generator)
    neighbour = grid_patches(x, NEIGHBOURS[labels], size, generator=generator)
    return centre, neighbour, labels.to(x.device)


class RelativePosition(SSLMethod):
    """Shared encoder on both patches; classifier MLP on the concatenated (B, 2D) features -> 8 positions."""

    name: ClassVar[str] = "relative-position"
    description: ClassVar[str] = catalog.METHODS["relative-position"]
    base_lr: ClassVar[float] = 2e-3
    weight_decay: ClassVar[float] = 1e-5

    def __init__(self, encoder: nn.Module, feature_dim: int, image_size: int = 32, dataset_size: int | None = None):
        super().__init__(encoder, feature_dim, image_size, dataset_size)
        self.patch_size = patch_size_for(image_size)
        self.classifier = mlp(2 * feature_dim, 512, len(NEIGHBOURS))

    def recipe(self, image_size: int, grayscale: bool) -> AugmentRecipe:
        # No flips (left and right are the answer) and a mild crop (the grid needs most of the image).
        return dataclasses.replace(super().recipe(image_size, grayscale), flip_p=0.0, crop_scale=(0.6, 1.0))

    def make_views(
        self, images: torch.Tensor, recipe: AugmentRecipe, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """uint8 (B, 3, S, S) -> (centre (B, 3, s, s), neighbour (B, 3, s, s), labels (B,)); s = S/2."""
        whole = dataclasses.replace(recipe, jitter_p=0.0)  # colour is jittered per patch below
        centre, neighbour, labels = position_pairs(augment_unit(images, whole, generator), self.patch_size, generator)
        centre = standardise_each(colour_jitter(centre, recipe, generator))
        neighbour = standardise_each(colour_jitter(neighbour, recipe, generator))
        return centre, neighbour, labels

    def forward_loss(self, centre: torch.Tensor, neighbour: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        a, b = self.encoder(torch.cat([centre, neighbour])).chunk(2)
        return classification_loss(self.classifier(torch.cat([a, b], dim=1)), labels)
