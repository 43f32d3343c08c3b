"""BYOL: Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
NeurIPS 2020, arXiv:2006.07733.

An online network (encoder, projector, predictor) predicts the projection of the other view made
by a target network, whose weights are an exponential moving average of the online ones (momentum
rising from ``base_momentum`` to 1 on a cosine schedule, updated after each optimiser step).
"""

from __future__ import annotations

import copy
import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from explorer.ssl.methods.base import SSLMethod, mlp


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(p_i, z_i) averaged over rows: prediction p (B, P), target z (B, P) -> scalar.

    The target is detached (no gradient flows into the target network).
    """
    p = F.normalize(p.float(), dim=1)
    z = F.normalize(z.detach().float(), dim=1)
    return (2 - 2 * (p * z).sum(dim=1)).mean()


class BYOL(SSLMethod):
    """Online encoder + projector + predictor; EMA target encoder + projector."""

    name: ClassVar[str] = "byol"
    base_lr: ClassVar[float] = 2e-3
    weight_decay: ClassVar[float] = 1e-5

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        projection_dim: int = 128,
        hidden_dim: int = 1024,
        base_momentum: float = 0.99,
    ) -> None:
        super().__init__(encoder, feature_dim)
        self.projector = mlp(feature_dim, hidden_dim, projection_dim)
        self.predictor = mlp(projection_dim, hidden_dim, projection_dim)
        self.target_encoder = copy.deepcopy(encoder)
        self.target_projector = copy.deepcopy(self.projector)
        for p in [*self.target_encoder.parameters(), *self.target_projector.parameters()]:
            p.requires_grad_(False)
        self.base_momentum = base_momentum
        self.momentum = base_momentum

    def forward_loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """Views (B, 3, S, S) -> symmetric BYOL loss (view1 predicts view2's target and back)."""
        both = torch.cat([view1, view2])
        p1, p2 = self.predictor(self.projector(self.encoder(both))).chunk(2)
        with torch.no_grad():
            z1, z2 = self.target_projector(self.target_encoder(both)).chunk(2)
        return byol_loss(p1, z2) + byol_loss(p2, z1)

    @torch.no_grad()
    def after_step(self, fraction_done: float) -> None:
        """EMA update of the target; momentum 1 - (1 - m0) (cos(pi t) + 1) / 2 at fraction t."""
        t = min(max(fraction_done, 0.0), 1.0)
        self.momentum = 1 - (1 - self.base_momentum) * (math.cos(math.pi * t) + 1) / 2
        pairs = [(self.target_encoder, self.encoder), (self.target_projector, self.projector)]
        for target, online in pairs:
            for t_p, o_p in zip(target.parameters(), online.parameters(), strict=True):
                t_p.lerp_(o_p.detach(), 1 - self.momentum)
            for t_b, o_b in zip(target.buffers(), online.buffers(), strict=True):
                t_b.copy_(o_b)
