"""MAE: He, Chen, Xie, Li, Dollar, Girshick, "Masked Autoencoders Are Scalable Vision Learners",
CVPR 2022, arXiv:2111.06377.

A Vision Transformer encoder sees a random 25 % of the patches of one mildly augmented view; a
light transformer decoder gets the encoded patches plus mask tokens at every position and
reconstructs the pixels of the hidden patches, each patch normalised by its own mean and variance
(the paper's best target). The loss is the mean squared error on the hidden patches only. Needs a
ViT backbone (``vit-mini`` on the CPU, ``vit-tiny`` on a GPU when ``backbone="auto"``).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from explorer.ssl import catalog
from explorer.ssl.augment import AugmentRecipe, augment
from explorer.ssl.methods.base import SSLMethod
from explorer.ssl.vit import Block, VisionTransformer


def patch_pixels(x: torch.Tensor, patch: int) -> torch.Tensor:
    """float (B, C, S, S) -> (B, N, patch*patch*C) with N = (S/patch)^2, patches in row order."""
    b, c, s, _ = x.shape
    g = s // patch
    x = x.reshape(b, c, g, patch, g, patch).permute(0, 2, 4, 3, 5, 1)  # (B, g, g, p, p, C)
    return x.reshape(b, g * g, patch * patch * c)


def mae_loss(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean squared error over hidden patches: prediction, target (B, N, P), mask (B, N) 1 = hidden -> scalar.

    The target is normalised per patch (mean 0, variance 1 over its P values; eps added to the
    variance). Per-patch MSE is averaged over the P values, then over the hidden patches.
    """
    target = target.float()
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    target = (target - mean) / (var + eps).sqrt()
    per_patch = (prediction.float() - target).pow(2).mean(dim=-1)  # (B, N)
    return (per_patch * mask).sum() / mask.sum().clamp(min=1)


def random_masking(noise: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep (B, n_keep) indices of the visible patches, mask (B, N) float with 1 = hidden).

    ``noise`` (B, N) uniform draws, one per patch (drawn with the run's seeded generator, so a
    seed gives the same masks in one process or several); the n_keep = max(1, round(N * (1 -
    ratio))) patches with the smallest draws stay visible: a fresh random subset per image.
    """
    b, n = noise.shape
    keep_count = max(1, int(round(n * (1 - ratio))))
    order = noise.argsort(dim=1)
    keep = order[:, :keep_count]
    mask = torch.ones(b, n, device=noise.device)
    mask.scatter_(1, keep, 0.0)
    return keep, mask


class MAE(SSLMethod):
    """ViT encoder on visible patches; decoder (width 128, 2 blocks) -> pixels of every patch."""

    name: ClassVar[str] = "mae"
    description: ClassVar[str] = catalog.METHODS["mae"]
    base_lr: ClassVar[float] = 1.5e-3
    weight_decay: ClassVar[float] = 0.05
    preferred_backbone: ClassVar[dict[str, str] | None] = {"cuda": "vit-tiny", "cpu": "vit-mini"}

    def __init__(
        self,
        encoder: nn.Module,
        feature_dim: int,
        image_size: int = 32,
        dataset_size: int | None = None,
        mask_ratio: float = 0.75,
        decoder_dim: int = 128,
        decoder_depth: int = 2,
    ) -> None:
        if not isinstance(encoder, VisionTransformer):
            raise ValueError(
                f"MAE needs a Vision Transformer backbone (vit-mini or vit-tiny), not {type(encoder).__name__}; "
                "use --backbone auto, vit-mini or vit-tiny"
            )
        super().__init__(encoder, feature_dim, image_size, dataset_size)
        self.mask_ratio = mask_ratio
        n, patch = encoder.grid**2, encoder.patch_size
        self.decoder_embed = nn.Linear(feature_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos = nn.Parameter(torch.zeros(1, n, decoder_dim))
        self.decoder = nn.ModuleList(Block(decoder_dim, 4) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.to_pixels = nn.Linear(decoder_dim, patch * patch * 3)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_pos, std=0.02)

    def recipe(self, image_size: int, grayscale: bool) -> AugmentRecipe:
        """The paper's: random resized crop (scale 0.2-1, milder on small images) and flip only."""
        base = super().recipe(image_size, grayscale)
        return dataclasses.replace(base, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)

    def make_views(
        self, images: torch.Tensor, recipe: AugmentRecipe, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """uint8 (B, 3, S, S) -> (one view (B, 3, S, S), mask noise (B, N) for N patches)."""
        patches = (images.shape[-1] // self.encoder.patch_size) ** 2
        noise = torch.rand(len(images), patches, generator=generator).to(images.device)
        return augment(images, recipe, generator), noise

    def forward_loss(self, view: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One view (B, 3, S, S) and its mask noise (B, N) -> reconstruction loss on a random 75 % mask."""
        vit: VisionTransformer = self.encoder
        tokens = vit.patchify(view)  # (B, N, D), with positions
        b, n, d = tokens.shape
        if noise.shape != (b, n):
            raise ValueError(f"mae: mask noise {tuple(noise.shape)} does not match {b} images of {n} patches")
        keep, mask = random_masking(noise, self.mask_ratio)
        visible = torch.gather(tokens, 1, keep.unsqueeze(-1).expand(-1, -1, d))
        encoded = self.decoder_embed(vit.encode(visible))  # (B, 1 + n_keep, Dd)
        full = self.mask_token.expand(b, n, -1).to(encoded.dtype).clone()
        full.scatter_(1, keep.unsqueeze(-1).expand(-1, -1, full.shape[-1]), encoded[:, 1:])
        x = torch.cat([encoded[:, :1], full + self.decoder_pos.to(full.dtype)], dim=1)
        for block in self.decoder:
            x = block(x)
        prediction = self.to_pixels(self.decoder_norm(x[:, 1:]))  # (B, N, p*p*3)
        return mae_loss(prediction, patch_pixels(view, vit.patch_size), mask)
