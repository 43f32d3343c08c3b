"""MoCo v2: Chen, Fan, Girshick, He, "Improved Baselines with Momentum Contrastive Learning",
arXiv:2003.04297 (2020), on He et al., "Momentum Contrast for Unsupervised Visual Representation
Learning", CVPR 2020, arXiv:1911.05722.

A query encoder with an MLP head is trained to pick the key of its own image, made by a momentum
(EMA) copy of the encoder and head, among the keys of earlier batches kept in a queue. As in
MoCo v2: MLP head, temperature 0.2, the SimCLR augmentations. The loss is symmetrised (each view is
once query, once key; MoCo v3 does the same), which makes better use of small batches on a CPU.
There is no shuffling BN; both views share one BN batch. On several processes BatchNorm uses the
global batch's statistics, as one process would, and the queue takes every process's keys.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from explorer.ssl import catalog, collectives
from explorer.ssl.methods.base import SSLMethod, cosine_momentum, ema_update, frozen_copy, mlp


def moco_loss(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE of MoCo (eq. 1): queries q (B, P), their keys k (B, P), negatives queue (K, P) -> scalar.

    Rows are L2-normalised here; the positive logit is q_i . k_i, the negatives q_i . queue_j;
    cross entropy with the positive as class 0. Keys and queue get no gradient.
    """
    q = F.normalize(q.float(), dim=1)
    k = F.normalize(k.detach().float(), dim=1)
    queue = F.normalize(queue.detach().float(), dim=1)
    positive = (q * k).sum(dim=1, keepdim=True)  # (B, 1)
    negative = q @ queue.T  # (B, K)
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def queue_size_for(dataset_size: int | None, batch_size_guess: int = 256) -> int:
    """4096 keys (MoCo v2 uses 65536 on ImageNet), but at most half the collection, so that the
    queue rarely holds a stale key of the query's own image."""
    if dataset_size is None:
        return 4096
    return int(max(batch_size_guess // 4, min(4096, dataset_size // 2)))


class MoCo(SSLMethod):
    """Query encoder + MLP head; momentum key encoder + head; a queue of (K, 128) keys."""

    name: ClassVar[str] = "moco"
    description: ClassVar[str] = catalog.METHODS["moco"]
    base_lr: ClassVar[float] = 2e-3
    weight_decay: ClassVar[float] = 1e-5

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        image_size: int = 32,
        dataset_size: int | None = None,
        projection_dim: int = 128,
        temperature: float = 0.2,
        base_momentum: float = 0.99,
        queue_size: int | None = None,
    ) -> None:
        super().__init__(encoder, feature_dim, image_size, dataset_size)
        self.projector = mlp(feature_dim, max(feature_dim, 512), projection_dim)
        self.key_encoder = frozen_copy(encoder)
        self.key_projector = frozen_copy(self.projector)
        self.temperature = temperature
        self.base_momentum = base_momentum
        self.momentum = base_momentum
        size = queue_size or queue_size_for(dataset_size)
        self.register_buffer("queue", F.normalize(torch.randn(size, projection_dim), dim=1))
        self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))

    def forward_loss(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """Views (B, 3, S, S) -> symmetric MoCo loss; the B keys of view 2 then join the queue."""
        q1, q2 = self.projector(self.encoder(torch.cat([view1, view2]))).chunk(2)
        with torch.no_grad():
            k1, k2 = self.key_projector(self.key_encoder(torch.cat([view1, view2]))).chunk(2)
        loss = (moco_loss(q1, k2, self.queue, self.temperature) + moco_loss(q2, k1, self.queue, self.temperature)) / 2
        if self.training:
            self._enqueue(collectives.gather(k2))  # on several processes: every rank's keys, in rank order
        return loss

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest len(keys) entries (a ring buffer; wraps around the end)."""
        keys = F.normalize(keys.float(), dim=1)[: len(self.queue)]
        slots = (self.queue_pointer + torch.arange(len(keys), device=self.queue.device)) % len(self.queue)
        self.queue[slots] = keys.to(self.queue.dtype)
        self.queue_pointer.copy_((self.queue_pointer + len(keys)) % len(self.queue))

    @torch.no_grad()
    def after_step(self, fraction_done: float) -> None:
        self.momentum = cosine_momentum(self.base_momentum, fraction_done)
        ema_update(self.key_encoder, self.encoder, self.momentum)
        ema_update(self.key_projector, self.projector, self.momentum)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # A resumed run over a collection that grew has a differently sized queue: keep ours.
        key = prefix + "queue"
        if key in state_dict and state_dict[key].shape != self.queue.shape:
            state_dict[key] = self.queue.clone()
            state_dict[prefix + "queue_pointer"] = torch.zeros((), dtype=torch.long)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
