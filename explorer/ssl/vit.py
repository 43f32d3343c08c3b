"""A small Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021,
arXiv:2010.11929) for MAE and DINO, sized for small images.

Pre-norm blocks, a class token and learned position embeddings. Inputs of another size than the
one it was built for (DINO's local crops, jigsaw tiles) get bicubically resampled position
embeddings; sides that are not a multiple of the patch size are resized to the nearest multiple.
``forward`` returns the normalised class token (B, D); MAE uses ``patchify``/``encode`` to run
the encoder on the visible patches only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# name -> (width D, depth, heads); vit-tiny is DeiT-Ti, vit-mini a CPU-sized quarter of it.
VIT_SIZES = {"vit-mini": (128, 6, 4), "vit-tiny": (192, 12, 3)}


def patch_size_for(image_size: int) -> int:
    """4 px patches up to 64 px images (8x8 grid at 32 px), 8 up to 128 px, 16 above."""
    return 4 if image_size <= 64 else 8 if image_size <= 128 else 16


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)). (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # (B, heads, N, D/heads)
        x = x + self.proj(attended.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """(B, 3, S, S) -> (B, D) class-token features; patch grid S / patch_size on each side."""

    def __init__(self, image_size: int = 32, patch_size: int = 4, dim: int = 192, depth: int = 12, heads: int = 3):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image size {image_size} is not a multiple of the patch size {patch_size}")
        self.image_size = image_size
        self.patch_size = patch_size
        self.grid = image_size // patch_size
        self.feature_dim = dim
        self.patch_embed = nn.Conv2d(3, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid**2, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(_init_weights)

    def patch_positions(self, grid: int) -> torch.Tensor:
        """(1, grid*grid, D) position embeddings of the patches, resampled when grid differs."""
        pos = self.pos_embed[:, 1:]
        if grid == self.grid:
            return pos
        d = pos.shape[-1]
        square = pos.reshape(1, self.grid, self.grid, d).permute(0, 3, 1, 2)
        square = F.interpolate(square, size=(grid, grid), mode="bicubic", align_corners=False)
        return square.permute(0, 2, 3, 1).reshape(1, grid * grid, d)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images -> (B, N, D) patch tokens with position embeddings added."""
        side = x.shape[-1]
        if side % self.patch_size:
            side = max(1, round(side / self.patch_size)) * self.patch_size
            x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        return tokens + self.patch_positions(side // self.patch_size)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, n, D) patch tokens (any subset) -> (B, 1 + n, D): class token first, normalised."""
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(len(tokens), -1, -1)
        x = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float -> (B, D) class-token features."""
        return self.encode(self.patchify(x))[:, 0]


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):  # patch embedding: initialise like a linear layer (MAE)
        nn.init.xavier_uniform_(module.weight.view(module.weight.shape[0], -1))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def make_vit(name: str, image_size: int) -> VisionTransformer:
    """The ViT called ``name`` (see ``VIT_SIZES``) for ``image_size`` px images."""
    dim, depth, heads = VIT_SIZES[name]
    patch = patch_size_for(image_size)
    if image_size % patch:
        raise ValueError(f"{name} needs an image size that is a multiple of {patch} px (got {image_size})")
    return VisionTransformer(image_size, patch, dim, depth, heads)
