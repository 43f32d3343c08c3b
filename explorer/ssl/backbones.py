"""Backbones: modules mapping (B, 3, S, S) float images to (B, D) features.

``small-cnn`` is the CPU default (about 25 M multiply-adds per 32 px image); ``resnet18`` the GPU
default; ``resnet50`` for big GPUs. ResNets get the small-image stem (3x3 conv, stride 1, no max
pool, as in SimCLR's CIFAR setup) below 64 px. ``vit-mini`` / ``vit-tiny`` are small Vision
Transformers for MAE and DINO (``explorer.ssl.vit``). ``torchvision:ARCH`` and ``timm:ARCH`` name
any architecture of those libraries with its classifier removed, for pretrained weights files
(``explorer.ssl.pretrained``). No weights are ever downloaded.
"""

from __future__ import annotations

import torch
from torch import nn

BACKBONES = ("small-cnn", "resnet18", "resnet50", "vit-mini", "vit-tiny")
LIBRARY_PREFIXES = ("torchvision:", "timm:")
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
    """(module mapping (B, 3, S, S) -> (B, D), D) for backbone ``name`` at ``image_size`` px.

    ``name`` is one of ``BACKBONES`` or ``torchvision:ARCH`` / ``timm:ARCH`` (randomly initialised).
    """
    if name == "small-cnn":
        model = SmallCNN(image_size=image_size)
        return model, model.feature_dim
    if name in ("resnet18", "resnet50"):
        return _resnet(name, image_size)
    if name.startswith("vit-"):
        from explorer.ssl.vit import make_vit

        if name in ("vit-mini", "vit-tiny"):
            vit = make_vit(name, image_size)
            return vit, vit.feature_dim
    if name.startswith(LIBRARY_PREFIXES):
        from explorer.ssl.pretrained import build_architecture

        return build_architecture(name, image_size)
    raise ValueError(f"unknown backbone {name!r}; choose one of {_choices()}")


def _choices() -> str:
    return f"auto, {', '.join(BACKBONES)}, torchvision:ARCH or timm:ARCH"


def is_known_backbone(name: str) -> bool:
    """True for a name ``make_backbone`` accepts (library architectures are checked when built)."""
    return name in BACKBONES or (name.startswith(LIBRARY_PREFIXES) and len(name.split(":", 1)[1]) > 0)


def resolve_backbone(name: str, device: torch.device | str, preferred: dict[str, str] | None = None) -> str:
    """``auto`` -> the method's ``preferred`` backbone for the device type (``{"cuda": ..., "cpu": ...}``)
    when it has one, else ``resnet18`` on CUDA and ``small-cnn`` elsewhere; other names are checked and kept."""
    if name == "auto":
        kind = "cuda" if torch.device(device).type == "cuda" else "cpu"
        if preferred:
            return preferred[kind]
        return "resnet18" if kind == "cuda" else "small-cnn"
    if not is_known_backbone(name):
        raise ValueError(f"unknown backbone {name!r}; choose one of {_choices()}")
    return name
