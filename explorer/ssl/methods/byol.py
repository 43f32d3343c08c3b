"""BYOL: Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
NeurIPS 2020, arXiv:2006.07733.

An online network (encoder, projector, predictor) predicts the projection of the other view made
by a target network, whose weights are an exponential moving average of the online ones (momentum
rising from ``base_momentum`` to 1 on a cosine schedule, updated after each optimiser step).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from explorer.ssl import catalog
from explorer.ssl.methods.base import SSLMethod, cosine_momentum, ema_update, frozen_copy, mlp


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
    description: ClassVar[str] = catalog.METHODS["byol"]
    base_lr: ClassVar[float] = 2e-3
    weight_decay: ClassVar[float] = 1e-5

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        image_size: int = 32,
        dataset_size: int | None = None,
        projection_dim: int = 128,
        hidden_dim: int = 1024,
        base_momentum: float = 0.99,
    ) -> None:
        super().__init__(encoder, feature_dim, image_size, dataset_size)
        self.projector = mlp(feature_dim, hidden_dim, projection_dim)
        self.predictor = mlp(projection_dim, hidden_dim, projection_dim)
        self.target_encoder = frozen_copy(encoder)
        self.target_projector = frozen_copy(self.projector)
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
        self.momentum = cosine_momentum(self.base_momentum, fraction_done)
        ema_update(self.target_encoder, self.encoder, self.momentum)
        ema_update(self.target_projector, self.projector, self.momentum)
