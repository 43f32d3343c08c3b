"""The interface every self-supervised method implements for the one shared trainer.

A method owns three things: its heads (modules next to ``encoder``), its view recipe
(``make_views``: what the trainer feeds it, built from a uint8 batch) and its loss
(``forward_loss``). The trainer never looks inside the views: two augmented crops (SimCLR), one
view (MAE), several global and local crops (DINO) or images plus the labels of a pretext task
(rotation, patch position, jigsaw) all travel as a tuple of tensors.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from explorer.ssl.augment import AugmentRecipe, augment, recipe_for


def mlp(dim_in: int, dim_hidden: int, dim_out: int, last_bn: bool = False) -> nn.Sequential:
    """Linear-BN-ReLU-Linear head: (B, dim_in) -> (B, dim_out)."""
    layers: list[nn.Module] = [
        nn.Linear(dim_in, dim_hidden, bias=False),
        nn.BatchNorm1d(dim_hidden),
        nn.ReLU(inplace=True),
        nn.Linear(dim_hidden, dim_out, bias=not last_bn),
    ]
    if last_bn:
        layers.append(nn.BatchNorm1d(dim_out, affine=False))
    return nn.Sequential(*layers)


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` that gets no gradients (a momentum / teacher network)."""
    import copy

    twin = copy.deepcopy(module)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


def cosine_momentum(base: float, fraction_done: float) -> float:
    """EMA momentum rising from ``base`` to 1 on a half cosine (BYOL eq. 9, DINO)."""
    t = min(max(fraction_done, 0.0), 1.0)
    return 1 - (1 - base) * (math.cos(math.pi * t) + 1) / 2


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online (parameters); buffers are copied."""
    for t_p, o_p in zip(target.parameters(), online.parameters(), strict=True):
        t_p.lerp_(o_p.detach(), 1 - momentum)
    for t_b, o_b in zip(target.buffers(), online.buffers(), strict=True):
        t_b.copy_(o_b)


class SSLMethod(nn.Module):
    """A backbone (``encoder``: (B, 3, S, S) -> (B, D)) plus the heads, views and loss of one method.

    Per step the trainer calls ``make_views(images, recipe, generator)`` on a uint8 (B, 3, S, S)
    batch, ``forward_loss(*views)`` under autocast, steps the optimiser over
    ``trainable_parameters()``, then ``after_step(fraction_done)`` (e.g. a momentum update).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""  # one line for menus and --help
    base_lr: ClassVar[float] = 1e-3  # for batch size 256; the trainer scales it linearly
    cpu_lr_scale: ClassVar[float] = 1.0  # times that on a CPU, from scratch (not fine-tuning with labels)
    weight_decay: ClassVar[float] = 1e-6
    optimizer: ClassVar[str] = "adamw"  # "adamw" or "sgd"
    # Backbone for ``backbone="auto"`` by device type ("cuda", "cpu"); None: the trainer's default.
    preferred_backbone: ClassVar[dict[str, str] | None] = None

    def __init__(self, encoder: nn.Module, feature_dim: int, image_size: int = 32, dataset_size: int | None = None):
        super().__init__()
        self.encoder = encoder
        self.feature_dim = feature_dim
        self.image_size = image_size

    def recipe(self, image_size: int, grayscale: bool) -> AugmentRecipe:
        """The augmentation strengths this method wants for the collection."""
        return recipe_for(image_size, grayscale)

    def make_views(
        self, images: torch.Tensor, recipe: AugmentRecipe, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """uint8 (B, 3, S, S) on the device -> what ``forward_loss`` takes; default: two augmented
        float (B, 3, S, S) views."""
        return augment(images, recipe, generator), augment(images, recipe, generator)

    def forward_loss(self, *views: torch.Tensor) -> torch.Tensor:
        """The views from ``make_views`` -> scalar loss."""
        raise NotImplementedError

    def forward(self, *views: torch.Tensor) -> torch.Tensor:
        """The loss is the forward pass (DistributedDataParallel syncs gradients of what forward used)."""
        return self.forward_loss(*views)

    def local_views(
        self, views: tuple[torch.Tensor, ...], start: int, stop: int, batch: int
    ) -> tuple[torch.Tensor, ...]:
        """This process's share (images ``start:stop`` of the ``batch``) of the global batch's views.

        A tensor of ``batch`` rows is sliced; one of k * ``batch`` rows is read as k blocks of
        ``batch`` (image i's copy j at row j * batch + i, as rotation lays them out). Methods that
        lay views out otherwise override this.
        """
        shares = []
        for view in views:
            if len(view) % batch:
                raise ValueError(f"{self.name}: a view of {len(view)} rows does not split into {batch} images")
            blocks = view.reshape(len(view) // batch, batch, *view.shape[1:])
            shares.append(blocks[:, start:stop].reshape(-1, *view.shape[1:]))
        return tuple(shares)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @torch.no_grad()
    def after_step(self, fraction_done: float) -> None:
        """Hook run after every optimiser step; ``fraction_done`` in (0, 1]."""
