"""Rotation prediction: Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by
Predicting Image Rotations", ICLR 2018, arXiv:1803.07728.

Every image is shown at 0, 90, 180 and 270 degrees and a classifier on the encoder's features
names the rotation; recognising which way is up needs the objects. As in the paper all four
rotations of an image are in the same batch. A mild crop and colour jitter come first (the paper
used none; they help small collections).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from explorer.ssl import catalog
from explorer.ssl.augment import AugmentRecipe, augment
from explorer.ssl.methods.base import SSLMethod, mlp

ROTATIONS = 4


def rotated_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float (B, C, S, S) -> (4B, C, S, S) rotated copies and their labels (4B,) in 0..3.

    Row r * B + i is image i turned r quarter turns counter-clockwise (``torch.rot90``).
    """
    b = len(x)
    turned = torch.cat([torch.rot90(x, r, dims=(2, 3)) for r in range(ROTATIONS)])
    labels = torch.arange(ROTATIONS, device=x.device).repeat_interleave(b)
    return turned, labels


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy of logits (N, C) against integer labels (N,), in float32."""
    return F.cross_entropy(logits.float(), labels)


class RotationPrediction(SSLMethod):
    """Encoder + MLP classifier (D -> 256 -> 4) over the four rotations of each image."""

    name: ClassVar[str] = "rotation"
    description: ClassVar[str] = catalog.METHODS["rotation"]
    base_lr: ClassVar[float] = 2e-3
    weight_decay: ClassVar[float] = 1e-5

    def __init__(self, encoder: nn.Module, feature_dim: int, image_size: int = 32, dataset_size: int | None = None):
        super().__init__(encoder, feature_dim, image_size, dataset_size)
        self.classifier = mlp(feature_dim, 256, ROTATIONS)

    def recipe(self, image_size: int, grayscale: bool) -> AugmentRecipe:
        # Flips would make 90 and 270 degrees ambiguous for mirror-symmetric content: none.
        base = super().recipe(image_size, grayscale)
        return dataclasses.replace(base, flip_p=0.0, crop_scale=(max(base.crop_scale[0], 0.5), 1.0))

    def make_views(
        self, images: torch.Tensor, recipe: AugmentRecipe, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """uint8 (B, 3, S, S) -> (rotated views (4B, 3, S, S), rotation labels (4B,))."""
        return rotated_batch(augment(images, recipe, generator))

    def forward_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return classification_loss(self.classifier(self.encoder(images)), labels)
