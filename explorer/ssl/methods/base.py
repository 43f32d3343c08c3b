"""The interface every self-supervised method implements for the trainer."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


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


class SSLMethod(nn.Module):
    """A backbone (``encoder``: (B, 3, S, S) -> (B, D)) plus the heads and loss of one method.

    The trainer calls ``forward_loss`` on ``views`` augmented views of a batch, steps the
    optimiser over ``trainable_parameters()``, then calls ``after_step`` with the fraction of
    training done (0..1], e.g. for a momentum target update.
    """

    name: ClassVar[str] = ""
    views: ClassVar[int] = 2
    base_lr: ClassVar[float] = 1e-3  # for batch size 256; the trainer scales it linearly
    weight_decay: ClassVar[float] = 1e-6
    optimizer: ClassVar[str] = "adamw"  # "adamw" or "sgd"

    def __init__(self, encoder: nn.Module, feature_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.feature_dim = feature_dim

    def forward_loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """Two float (B, 3, S, S) views of the same B images -> scalar loss."""
        raise NotImplementedError

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @torch.no_grad()
    def after_step(self, fraction_done: float) -> None:
        """Hook run after every optimiser step; ``fraction_done`` in (0, 1]."""
