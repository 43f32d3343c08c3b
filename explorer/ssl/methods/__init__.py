"""Self-supervised methods, one per file, behind the ``SSLMethod`` interface."""

from __future__ import annotations

from torch import nn

from explorer.ssl.methods.base import SSLMethod
from explorer.ssl.methods.byol import BYOL
from explorer.ssl.methods.simclr import SimCLR

METHODS: dict[str, type[SSLMethod]] = {"simclr": SimCLR, "byol": BYOL}


def method_class(name: str) -> type[SSLMethod]:
    """The class registered as ``name``; ValueError naming the known methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


def make_method(name: str, backbone: nn.Module, feature_dim: int, **options: object) -> SSLMethod:
    """A fresh ``name`` method around ``backbone`` ((B, 3, S, S) -> (B, feature_dim))."""
    return method_class(name)(backbone, feature_dim, **options)


__all__ = ["METHODS", "SSLMethod", "make_method", "method_class"]
