"""MoCo v2: Chen, Fan, Girshick, He, "Improved Baselines with Momentum Contrastive Learning",
arXiv:2003.04297 (2020), on He et al., "Momentum Contrast for Unsupervised Visual Representation
Learning", CVPR 2020, arXiv:1911.05722.

A query encoder with an MLP head is trained to pick the key of its own image, made by a momentum
(EMA) copy of the encoder and head, among the keys of earlier batches kept in a queue. As in
MoCo v2: MLP head, temperature 0.2, the SimCLR augmentations. The loss is symmetrised (each view is
once query, once key; MoCo v3 does the same), which makes better use of small batches on a CPU.

Shuffled BN groups (MoCo v1's "shuffling BN", Section 3.3, on one process): if a key is
normalised with the statistics of the very batch its query was, the positive carries a mark of the
current batch that the queue's keys (from earlier batches) lack, and the encoder learns to find
that mark instead of the image. MoCo v1 shuffles the keys over 8 GPUs, each normalising its own
share. Here the 2B keys of a step are dealt at random into ``key_groups`` groups (at least
MIN_GROUP_ROWS keys each) drawn with the run's generator; the key encoder runs on each group on its
own, so its BatchNorm sees that group's statistics, and the keys are put back in image order (the
queries stay one BN batch of all 2B views, so no key shares its query's statistics). On
several processes each rank runs every group on its own rows of it and BatchNorm sums the group's
statistics over the ranks, so the groups, and the run, are those of one process with the global
batch; the queue takes every process's keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from explorer.ssl import catalog, collectives
from explorer.ssl.augment import AugmentRecipe
from explorer.ssl.methods.base import SSLMethod, cosine_momentum, ema_update, frozen_copy, mlp


def moco_loss(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE of MoCo (eq. 1): queries q (B, P), their keys k (B, P), negatives queue (K, P) -> scalar.

    Rows are L2-normalised here; the positive logit is q_i . k_i, the negatives q_i . queue_j;
    cross entropy with the positive as class 0. Keys and queue get no gradient.
    """
    with torch.autocast(q.device.type, enabled=False):  # float32 logits under bf16 training too
        q = F.normalize(q.float(), dim=1)
        k = F.normalize(k.detach().float(), dim=1)
        queue = F.normalize(queue.detach().float(), dim=1)
        positive = (q * k).sum(dim=1, keepdim=True)  # (B, 1)
        negative = q @ queue.T  # (B, K)
        logits = torch.cat([positive, negative], dim=1) / temperature
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


MIN_GROUP_ROWS = 16  # fewer keys than this give BatchNorm statistics too noisy to normalise with


def key_group_count(rows: int, wanted: int) -> int:
    """How many BN groups the ``rows`` keys of a global batch are dealt into: ``wanted``, but each
    group keeps at least MIN_GROUP_ROWS keys (one group for fewer than 2 * MIN_GROUP_ROWS)."""
    return max(1, min(wanted, rows // MIN_GROUP_ROWS))


def shuffled_groups(rows: int, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The BN group of each of ``rows`` keys: (rows,) int64 in 0..count-1, a random permutation of
    the rows cut into ``count`` groups whose sizes differ by at most one."""
    order = torch.randperm(rows, generator=generator)
    groups = torch.empty(rows, dtype=torch.long)
    groups[order] = torch.arange(rows) * count // rows
    return groups


def forward_in_groups(
    net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, groups: torch.Tensor, count: int
) -> torch.Tensor:
    """``net`` on each group of x's rows on its own, outputs back in x's row order (row i's output
    at row i): x (N, ...), groups (N,) in 0..count-1 -> (N, ...). A BatchNorm in ``net`` normalises
    each group with that group's statistics. Every group is run, even one with no rows here: on
    several processes each BatchNorm call is a collective that sums the group over the ranks."""
    if count == 1:
        return net(x)
    if len(groups) != len(x) or int(groups.max()) >= count:
        raise ValueError(f"moco: key groups {tuple(groups.shape)} do not fit {len(x)} keys in {count} groups")
    parts, rows = [], []
    for g in range(count):
        picked = (groups == g).nonzero().squeeze(1)
        parts.append(net(x[picked]))
        rows.append(picked)
    return torch.cat(parts)[torch.cat(rows).argsort()]  # unshuffle: the inverse of the grouped order


def queue_size_for(dataset_size: int | None, batch_size_guess: int = 256) -> int:
    """4096 keys (MoCo v2 uses 65536 on ImageNet), but at most half the collection, so that the
    queue rarely holds a stale key of the query's own image."""
    if dataset_size is None:
        return 4096
    return int(max(batch_size_guess // 4, min(4096, dataset_size // 2)))


class MoCo(SSLMethod):
    """Query encoder + MLP head; momentum key encoder + head, run in shuffled BN groups; a queue of (K, 128) keys."""

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
        key_groups: int = 8,
    ) -> None:
        super().__init__(encoder, feature_dim, image_size, dataset_size)
        self.projector = mlp(feature_dim, max(feature_dim, 512), projection_dim)
        self.key_encoder = frozen_copy(encoder)
        self.key_projector = frozen_copy(self.projector)
        self.temperature = temperature
        self.base_momentum = base_momentum
        self.momentum = base_momentum
        self.key_groups = key_groups  # MoCo v1 shuffled over 8 GPUs
        size = queue_size or queue_size_for(dataset_size)
        self.register_buffer("queue", F.normalize(torch.randn(size, projection_dim), dim=1))
        self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))

    def make_views(
        self, images: torch.Tensor, recipe: AugmentRecipe, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """uint8 (B, 3, S, S) -> (view 1 (B, 3, S, S), view 2 (B, 3, S, S), key groups (2B,) int64):
        the BN group of the key of each row of view 1 then view 2 (``shuffled_groups``)."""
        view1, view2 = super().make_views(images, recipe, generator)
        rows = 2 * len(images)
        groups = shuffled_groups(rows, key_group_count(rows, self.key_groups), generator)
        return view1, view2, groups.to(images.device)

    @torch.no_grad()
    def keys(
        self, view1: torch.Tensor, view2: torch.Tensor, key_groups: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Views (b, 3, S, S) -> their keys (b, P) each from the momentum encoder and head, run in
        the BN groups ``key_groups`` (2b,) from ``make_views`` (None: all 2b keys in one group)."""
        x = torch.cat([view1, view2])
        if key_groups is None:
            return self.key_projector(self.key_encoder(x)).chunk(2)
        count = key_group_count(len(x) * collectives.world_size(), self.key_groups)  # the global batch's
        return forward_in_groups(lambda v: self.key_projector(self.key_encoder(v)), x, key_groups, count).chunk(2)

    def forward_loss(
        self, view1: torch.Tensor, view2: torch.Tensor, key_groups: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Views (B, 3, S, S) and key groups (2B,) -> symmetric MoCo loss; the B keys of view 2 then
        join the queue."""
        q1, q2 = self.projector(self.encoder(torch.cat([view1, view2]))).chunk(2)
        k1, k2 = self.keys(view1, view2, key_groups)
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
