"""Backbones: modules mapping (B, 3, S, S) float images to (B, D) features.

``small-cnn`` is the CPU default (about 25 M multiply-adds per 32 px image); ``resnet18`` the GPU
default; ``resnet50`` for big GPUs. ResNets get the small-image stem (3x3 conv, stride 1, no max
pool, as in SimCLR's CIFAR setup) below 64 px. No pretrained weights are ever downloaded.
"""

from __future__ import annotations

import torch
from torch import nn

BACKBONES = ("small-cnn", "resnet18", "resnet50")
SMALL_STEM_BELOW = 64


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Six 3x3 conv-BN-ReLU layers, three of them stride 2, then global average pooling.

    (B, 3, S, S) -> (B, width * 8); any S >= 8. Inputs above 64 px are first downsampled by a
    strided stem so that the cost stays small.
    """

    def __init__(self, width: int = 32, image_size: int = 32) -> None:
        super().__init__()
        stem_stride = 2 if image_size > 64 else 1
        self.features = nn.Sequential(
            _conv_bn(3, width, stride=stem_stride),
            _conv_bn(width, width * 2, stride=2),
            _conv_bn(width * 2, width * 4, stride=2),
            _conv_bn(width * 4, width * 4),
            _conv_bn(width * 4, width * 8, stride=2),
            _conv_bn(width * 8, width * 8),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.feature_dim = width * 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float -> (B, D)."""
        return self.features(x)


def _resnet(name: str, image_size: int) -> tuple[nn.Module, int]:
    import torchvision

    model = getattr(torchvision.models, name)(weights=None)
    if image_size < SMALL_STEM_BELOW:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    dim = model.fc.in_features
    model.fc = nn.Identity()
    return model, dim


def make_backbone(name: str, image_size: int) -> tuple[nn.Module, int]:
    """(module mapping (B, 3, S, S) -> (B, D), D) for backbone ``name`` at ``image_size`` px."""
    if name == "small-cnn":
        model = SmallCNN(image_size=image_size)
        return model, model.feature_dim
    if name in ("resnet18", "resnet50"):
        return _resnet(name, image_size)
    raise ValueError(f"unknown backbone {name!r}; choose one of auto, {', '.join(BACKBONES)}")


def resolve_backbone(name: str, device: torch.device | str) -> str:
    """``auto`` -> ``resnet18`` on CUDA, ``small-cnn`` elsewhere; other names are checked and kept."""
    if name == "auto":
        return "resnet18" if torch.device(device).type == "cuda" else "small-cnn"
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of auto, {', '.join(BACKBONES)}")
    return name
