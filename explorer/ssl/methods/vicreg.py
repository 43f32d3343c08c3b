"""VICReg: Bardes, Ponce, LeCun, "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning", ICLR 2022, arXiv:2105.04906.

Two views go through the encoder and an expander MLP; the loss keeps the two embeddings close
(invariance), keeps every dimension's standard deviation across the batch above 1 (variance) and
decorrelates dimensions (covariance). No negatives, no momentum network, no stop-gradient.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from explorer.ssl import catalog, collectives
from explorer.ssl.methods.base import SSLMethod


def _variance(z: torch.Tensor, eps: float) -> torch.Tensor:
    """v(Z) (eq. 1): mean over dimensions of max(0, 1 - sqrt(Var(z_j) + eps)); z (B, E)."""
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(1 - std).mean()


def _covariance(z: torch.Tensor) -> torch.Tensor:
    """c(Z) (eq. 4): sum of squared off-diagonal covariances divided by E; z (B, E)."""
    b, e = z.shape
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (b - 1)  # (E, E)
    off = cov - torch.diag(torch.diag(cov))
    return off.pow(2).sum() / e


def vicreg_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    invariance_weight: float = 25.0,
    variance_weight: float = 25.0,
    covariance_weight: float = 1.0,
    eps: float = 1e-4,
    whole1: torch.Tensor | None = None,
    whole2: torch.Tensor | None = None,
) -> torch.Tensor:
    """lambda s(Z, Z') + mu [v(Z) + v(Z')] + nu [c(Z) + c(Z')] (eq. 6); z1, z2 (B, E), B >= 2 -> scalar.

    s is the mean squared distance between matching rows (averaged over rows and dimensions, as
    ``F.mse_loss``). ``whole1``, ``whole2`` (default z1, z2): the embeddings the variance and
    covariance are taken over (on several processes, the global batch's). Computed in float32.
    """
    z1, z2 = z1.float(), z2.float()
    whole1 = z1 if whole1 is None else whole1.float()
    whole2 = z2 if whole2 is None else whole2.float()
    invariance = F.mse_loss(z1, z2)
    variance = _variance(whole1, eps) + _variance(whole2, eps)
    covariance = _covariance(whole1) + _covariance(whole2)
    return invariance_weight * invariance + variance_weight * variance + covariance_weight * covariance


def expander(dim_in: int, dim: int) -> nn.Sequential:
    """The paper's three-layer expander (Linear-BN-ReLU twice, then Linear): (B, dim_in) -> (B, dim)."""
    return nn.Sequential(
        nn.Linear(dim_in, dim, bias=False),
        nn.BatchNorm1d(dim),
        nn.ReLU(inplace=True),
        nn.Linear(dim, dim, bias=False),
        nn.BatchNorm1d(dim),
        nn.ReLU(inplace=True),
        nn.Linear(dim, dim),
    )


class VICReg(SSLMethod):
    """Encoder + expander (D -> E -> E -> E; E = 1024 here, 8192 in the paper) with the VICReg loss."""

    name: ClassVar[str] = "vicreg"
    description: ClassVar[str] = catalog.METHODS["vicreg"]
    base_lr: ClassVar[float] = 1e-3
    weight_decay: ClassVar[float] = 1e-5

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        image_size: int = 32,
        dataset_size: int | None = None,
        expander_dim: int = 1024,
    ) -> None:
        super().__init__(encoder, feature_dim, image_size, dataset_size)
        self.expander = expander(feature_dim, expander_dim)

    def forward_loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """Views (B, 3, S, S) -> VICReg loss over the (B, E) expansions."""
        z1, z2 = self.expander(self.encoder(torch.cat([view1, view2]))).chunk(2)
        if collectives.current() is None:
            return vicreg_loss(z1, z2)
        # variance and covariance over the global batch, as one process would see it
        return vicreg_loss(z1, z2, whole1=collectives.gather(z1), whole2=collectives.gather(z2))
