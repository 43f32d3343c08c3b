"""Self-supervised methods, one per file, behind the ``SSLMethod`` interface.

``METHODS`` maps the name a user types (``explorer train --method NAME``) to the class;
``method_choices()`` gives (name, one-line description) pairs for menus.
"""

from __future__ import annotations

from torch import nn

from explorer.ssl.methods.base import SSLMethod
from explorer.ssl.methods.byol import BYOL
from explorer.ssl.methods.dino import DINO
from explorer.ssl.methods.jigsaw import Jigsaw
from explorer.ssl.methods.mae import MAE
from explorer.ssl.methods.moco import MoCo
from explorer.ssl.methods.relative_position import RelativePosition
from explorer.ssl.methods.rotation import RotationPrediction
from explorer.ssl.methods.simclr import SimCLR
from explorer.ssl.methods.vicreg import VICReg

METHODS: dict[str, type[SSLMethod]] = {
    cls.name: cls for cls in (SimCLR, MoCo, BYOL, VICReg, DINO, MAE, RotationPrediction, RelativePosition, Jigsaw)
}


def method_class(name: str) -> type[SSLMethod]:
    """The class registered as ``name``; ValueError naming the known methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


def method_choices() -> list[tuple[str, str]]:
    """(name, one-line description) of every method, in menu order (also in ``explorer.ssl.catalog``,
    which needs no torch)."""
    return [(name, cls.description) for name, cls in METHODS.items()]


def make_method(name: str, backbone: nn.Module, feature_dim: int, **options: object) -> SSLMethod:
    """A fresh ``name`` method around ``backbone`` ((B, 3, S, S) -> (B, feature_dim)).

    ``options``: ``image_size``, ``dataset_size`` and the method's own keyword arguments.
    """
    return method_class(name)(backbone, feature_dim, **options)


__all__ = ["METHODS", "SSLMethod", "make_method", "method_choices", "method_class"]
