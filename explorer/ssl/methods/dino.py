"""DINO: Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021,
arXiv:2104.14294.

Self-distillation without labels: a student (encoder + head) matches the output distribution of
a teacher whose weights are an EMA of the student's. The teacher sees only the global crops; the
student sees global and local crops (multi-crop). The teacher output is centred (a running mean
subtracted, against collapse to one dimension) and sharpened (a low temperature, against collapse
to uniform). Small images: global crops at the full side S, local crops at S/2 (at least 8 px)
from 5-40 % of the image, as the paper's 224 / 96 px crops scale down.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from explorer.ssl import catalog, collectives
from explorer.ssl.augment import AugmentRecipe, augment
from explorer.ssl.methods.base import SSLMethod, cosine_momentum, ema_update, frozen_copy


def dino_loss(
    student: list[torch.Tensor],
    teacher: list[torch.Tensor],
    center: torch.Tensor,
    student_temperature: float,
    teacher_temperature: float,
) -> torch.Tensor:
    """Cross entropy between the centred, sharpened teacher and the student (DINO Algorithm 1).

    student: V tensors (B, K) of logits, the first len(teacher) of them from the same global crops
    as ``teacher`` (G tensors (B, K)); center (1, K). Sums H(P_t(i), P_s(j)) over all pairs i != j,
    averages over the batch, divides by the number of pairs -> scalar. Teacher gets no gradient.
    """
    targets = [F.softmax((t.detach().float() - center) / teacher_temperature, dim=-1) for t in teacher]
    logs = [F.log_softmax(s.float() / student_temperature, dim=-1) for s in student]
    total, pairs = 0.0, 0
    for i, q in enumerate(targets):
        for j, log_p in enumerate(logs):
            if i == j:
                continue
            total = total + (-q * log_p).sum(dim=-1).mean()
            pairs += 1
    return total / pairs


class DINOHead(nn.Module):
    """MLP (D -> hidden -> hidden -> bottleneck), L2-normalised, then a weight-normalised linear
    layer to K prototypes with its norm fixed to 1 (a cosine): (B, D) -> (B, K)."""

    def __init__(self, dim_in: int, out_dim: int = 1024, hidden_dim: int = 512, bottleneck_dim: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(dim_in, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        self.prototypes = nn.Parameter(torch.randn(out_dim, bottleneck_dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1)
        return x @ F.normalize(self.prototypes, dim=-1).T


class DINO(SSLMethod):
    """Student encoder + DINO head; EMA teacher; centre buffer (1, K); 2 global + ``local_crops`` views."""

    name: ClassVar[str] = "dino"
    description: ClassVar[str] = catalog.METHODS["dino"]
    base_lr: ClassVar[float] = 1e-3
    weight_decay: ClassVar[float] = 1e-4

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        image_size: int = 32,
        dataset_size: int | None = None,
        out_dim: int = 1024,
        local_crops: int = 4,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.04,
        center_momentum: float = 0.9,
        base_momentum: float = 0.99,
    ) -> None:
        super().__init__(encoder, feature_dim, image_size, dataset_size)
        self.head = DINOHead(feature_dim, out_dim)
        self.teacher_encoder = frozen_copy(encoder)
        self.teacher_head = frozen_copy(self.head)
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.local_crops = local_crops
        self.local_size = max(8, image_size // 2)
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature
        self.center_momentum = center_momentum
        self.base_momentum = base_momentum
        self.momentum = base_momentum

    def make_views(
        self, images: torch.Tensor, recipe: AugmentRecipe, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """uint8 (B, 3, S, S) -> 2 global views (B, 3, S, S) then ``local_crops`` views (B, 3, S/2, S/2)."""
        low, high = recipe.crop_scale
        split = min(max(low * 2, 0.25), 0.5)  # global crops above, local crops below this area
        global_recipe = dataclasses.replace(recipe, crop_scale=(split, high))
        local_recipe = dataclasses.replace(recipe, crop_scale=(0.05, split))
        views = [augment(images, global_recipe, generator) for _ in range(2)]
        views += [augment(images, local_recipe, generator, self.local_size) for _ in range(self.local_crops)]
        return tuple(views)

    def forward_loss(self, *views: torch.Tensor) -> torch.Tensor:
        """2 global (B, 3, S, S) + local (B, 3, s, s) views -> DINO loss; updates the centre."""
        b = len(views[0])
        global_views = torch.cat(views[:2])
        student = [self.head(self.encoder(global_views))]
        if len(views) > 2:
            student.append(self.head(self.encoder(torch.cat(views[2:]))))
        student_out = list(torch.cat(student).split(b))
        with torch.no_grad():
            teacher_out = list(self.teacher_head(self.teacher_encoder(global_views)).split(b))
        loss = dino_loss(student_out, teacher_out, self.center, self.student_temperature, self.teacher_temperature)
        if self.training:
            with torch.no_grad():
                batch_center = torch.cat(teacher_out).float().mean(dim=0, keepdim=True)
                # every process keeps the same centre: the mean over the global batch
                batch_center = collectives.sum_over_ranks(batch_center) / collectives.world_size()
                self.center.mul_(self.center_momentum).add_(batch_center * (1 - self.center_momentum))
        return loss

    @torch.no_grad()
    def after_step(self, fraction_done: float) -> None:
        self.momentum = cosine_momentum(self.base_momentum, fraction_done)
        ema_update(self.teacher_encoder, self.encoder, self.momentum)
        ema_update(self.teacher_head, self.head, self.momentum)
