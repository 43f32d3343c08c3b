"""SimCLR: Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of
Visual Representations", ICML 2020, arXiv:2002.05709.

Two views of each image go through the encoder and an MLP projection head; the NT-Xent loss
pulls the two projections of an image together and pushes the other 2B - 2 apart.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from explorer.ssl import catalog, collectives
from explorer.ssl.methods.base import SSLMethod, mlp


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalised temperature-scaled cross entropy (SimCLR eq. 1), averaged over all 2B anchors.

    z1, z2: (B, P) projections of two views (row i of each comes from image i) -> scalar.
    Computed in float32 whatever the input dtype.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(
            f"nt_xent needs two (B, P) tensors of the same shape, got {tuple(z1.shape)}, {tuple(z2.shape)}"
        )
    b = z1.shape[0]
    # autocast off: under bf16 the similarities would keep 3 digits, and / temperature magnifies that
    with torch.autocast(z1.device.type, enabled=False):
        z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # (2B, P)
        team = collectives.current()
        if team is not None:
            return _nt_xent_over_ranks(z, b, temperature, team)
        logits = z @ z.T / temperature  # (2B, 2B)
        logits.fill_diagonal_(float("-inf"))
        targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
        return F.cross_entropy(logits, targets)


def _nt_xent_over_ranks(z: torch.Tensor, b: int, temperature: float, team: collectives.Team) -> torch.Tensor:
    """NT-Xent of this rank's 2b anchors (z: (2b, P) normalised, b view-1 rows then b view-2 rows)
    against the projections of every rank: the negatives of the global batch, as one process would
    see them. The mean over ranks equals the global-batch loss; gradients reach every rank's rows.
    """
    everyone = collectives.gather(z)  # (size * 2b, P): rank r's rows at r * 2b + (0 .. 2b-1)
    logits = z @ everyone.T / temperature  # (2b, size * 2b)
    mine = team.rank * 2 * b + torch.arange(2 * b, device=z.device)  # each anchor's own column
    logits[torch.arange(2 * b, device=z.device), mine] = float("-inf")
    targets = torch.cat([mine[b:], mine[:b]])  # view 1's partner is the same image's view 2, and back
    return F.cross_entropy(logits, targets)


class SimCLR(SSLMethod):
    """Encoder + projection head (D -> hidden -> 128) trained with NT-Xent.

    AdamW at 2e-3 per 256 images was the best of the few settings tried on the demo digits with a
    3-minute CPU budget; temperature 0.2 (not 0.1) on 5,000 real MNIST digits, same budget: kNN@20
    0.965 against 0.962 and the same on colour collections (benchmarks/README.md). On a CPU,
    trained from scratch, three times that rate (``cpu_lr_scale``): its batch of 64 under linear
    scaling left Adam too slow a rate; 480 CPU-s on mnist-cluttered, two seeds, kNN@20 0.542 /
    0.529 -> 0.577 / 0.575, handwriting 0.959 / 0.959 -> 0.963 / 0.963.
    """

    name: ClassVar[str] = "simclr"
    description: ClassVar[str] = catalog.METHODS["simclr"]
    base_lr: ClassVar[float] = 2e-3
    cpu_lr_scale: ClassVar[float] = 3.0
    weight_decay: ClassVar[float] = 1e-5

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        image_size: int = 32,
        dataset_size: int | None = None,
        projection_dim: int = 128,
        temperature: float = 0.2,
    ) -> None:
        super().__init__(encoder, feature_dim, image_size, dataset_size)
        self.projector = mlp(feature_dim, max(feature_dim, 256), projection_dim)
        self.temperature = temperature

    def forward_loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """Views (B, 3, S, S) -> NT-Xent over the (B, 128) projections; both views in one pass."""
        h = self.encoder(torch.cat([view1, view2]))  # (2B, D): one BN batch over both views
        z1, z2 = self.projector(h).chunk(2)
        return nt_xent(z1, z2, self.temperature)
