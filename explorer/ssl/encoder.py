"""An ``Encoder``: a backbone in eval mode that maps images to L2-normalised embeddings.

Where one comes from: a training checkpoint (``load_encoder``), a torchvision / timm weights file
(``load_pretrained_encoder``, see ``explorer.ssl.pretrained``), or nowhere (``untrained_encoder``,
the baseline).

Views: an encoder trained here on small colour images embeds each image as the mean of several
views drawn with its training recipe (``Encoder.use_views``, :func:`views_for`). Ten minutes of
SimCLR on two cores leave it only partly blind to what the recipe varies (tint, background, crop);
the mean over views is blind to more of it. benchmarks/README.md ("Embedding views"), the same
encoders with one plain view and with 8: kNN@20 of the whitened vectors 0.740 -> 0.801 on the
shapes collection and 0.571 -> 0.619 on mnist-cluttered; following ``suggest``, the export at 50
labels 0.516 -> 0.606 and 0.273 -> 0.314. Small grayscale images gained nothing (glyphs 0.533 ->
0.533, handwriting 0.968 -> 0.965), so they keep one plain view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.ssl.augment import AugmentRecipe, SameForAll, augment, normalise, recipe_for, to_batch
from explorer.ssl.backbones import make_backbone
from explorer.ssl.checkpoint import CheckpointError, load_checkpoint
from explorer.ssl.devices import free_device_memory, is_out_of_memory, pick_device

VIEWS = 8
"""Views a small colour image is embedded as the mean of (see the module docstring)."""
VIEW_BUDGET_CPU = 400_000
"""Views at most for a whole collection on a CPU (about 3 minutes of the small CNN on two cores at
32 px): a larger collection gets fewer views each, and above 200,000 items one plain view."""
VIEW_SEED = 0


def views_for(image_size: int, grayscale: bool, items: int, device: str) -> int:
    """How many views an encoder trained here embeds each of ``items`` images as: ``VIEWS`` for
    small colour images (under 64 px), fewer on a CPU when the collection is large
    (``VIEW_BUDGET_CPU``); 1 (the image itself) otherwise."""
    if grayscale or image_size >= 64:
        return 1
    if device == "cuda":
        return VIEWS
    return max(1, min(VIEWS, VIEW_BUDGET_CPU // max(items, 1)))


class Encoder:
    """A backbone ``name`` taking (B, 3, image_size, image_size) images to (B, feature_dim).

    ``name`` is what ``make_backbone`` builds the same architecture from (``small-cnn``,
    ``torchvision:resnet18``, ...), so an untrained twin is ``untrained_encoder(name, image_size)``.
    ``batch_size_used`` is the batch the last ``embed`` ended with (halved after running out of memory).
    ``grayscale``: whether the collection it was trained on was grayscale (None: not known, as for
    pretrained weights and older checkpoints). ``views``: each image is embedded as the mean of that
    many views drawn with ``view_recipe`` (1: the image itself; see :meth:`use_views`).
    """

    def __init__(
        self,
        backbone: nn.Module,
        name: str,
        image_size: int,
        feature_dim: int,
        device: torch.device,
        grayscale: bool | None = None,
    ) -> None:
        self.backbone = backbone.to(device).eval()
        self.name = name
        self.image_size = image_size
        self.feature_dim = feature_dim
        self.device = device
        self.batch_size_used = 0
        self.grayscale = grayscale
        self.views = 1
        self.view_recipe: AugmentRecipe | None = None

    def use_views(self, views: int, grayscale: bool) -> None:
        """Embed each image as the mean of ``views`` views drawn with the training recipe for
        ``grayscale`` images of this size (``augment.recipe_for``); 1: the image itself. View k
        is the same transform for every image (``augment.SameForAll``), so an image's vector does
        not depend on its batch, and near-duplicates stay near."""
        if views < 1:
            raise ValueError(f"views must be at least 1 (got {views})")
        self.views = int(views)
        self.view_recipe = recipe_for(self.image_size, grayscale) if views > 1 else None

    def __repr__(self) -> str:
        return f"Encoder({self.name!r}, image_size={self.image_size}, feature_dim={self.feature_dim}, device={self.device})"

    def embed(
        self,
        images: np.ndarray,
        batch_size: int = 256,
        progress: ProgressFn = no_progress,
        cancel: CancelToken | None = None,
    ) -> np.ndarray:
        """(N, S, S, 3) uint8 with S = image_size -> (N, feature_dim) float32 with unit rows."""
        images = np.asarray(images)
        s = self.image_size
        if images.ndim != 4 or images.shape[1:] != (s, s, 3) or images.dtype != np.uint8:
            raise ValueError(
                f"{self.name} encoder expects (N, {s}, {s}, 3) uint8 images, got {images.shape} {images.dtype}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
        n = len(images)
        out = np.empty((n, self.feature_dim), np.float32)
        start = 0
        while start < n:
            if cancel is not None:
                cancel.raise_if_cancelled()
            chunk = images[start : start + batch_size]
            try:
                out[start : start + len(chunk)] = self._features(chunk)
            except (torch.OutOfMemoryError, RuntimeError) as exc:
                if not is_out_of_memory(exc) or batch_size == 1:
                    raise
                free_device_memory(self.device)
                batch_size //= 2
                message = f"out of {self.device.type} memory: embedding in batches of {batch_size}"
                progress(Progress("embed", done=start, total=n, message=message))
                continue
            start += len(chunk)
            progress(Progress("embed", done=start, total=n, message=f"{self.name} embeddings"))
        self.batch_size_used = batch_size
        return out

    def _features(self, chunk: np.ndarray) -> np.ndarray:
        """(b, S, S, 3) uint8 -> (b, D) float32 unit rows (the mean over ``views``, normalised)."""
        with torch.inference_mode():
            images = to_batch(chunk).to(self.device, non_blocking=True)
            if self.views == 1:
                return self._unit(normalise(images)).cpu().numpy()
            # view k is one fixed transform for every image: a vector never depends on its batch
            views = (augment(images, self.view_recipe, SameForAll(VIEW_SEED + k)) for k in range(self.views))
            return F.normalize(sum(self._unit(view) for view in views), dim=1).cpu().numpy()

    def _unit(self, x: torch.Tensor) -> torch.Tensor:
        """(b, 3, S, S) standardised images -> (b, D) float32 unit rows."""
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.cuda.is_bf16_supported()):
                return F.normalize(self.backbone(x).float(), dim=1)
        return F.normalize(self.backbone(x).float(), dim=1)


def load_encoder(path: Path, device: str = "auto") -> Encoder:
    """The trained backbone in the trainer checkpoint at ``path``.

    Raises CheckpointError (a ValueError) naming the file when it is missing, not a checkpoint,
    or corrupt.
    """
    target = pick_device(device)
    state = load_checkpoint(Path(path), map_location="cpu")
    try:
        backbone, dim = make_backbone(state["backbone"], int(state["image_size"]))
        backbone.load_state_dict(state["encoder"])
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not match its backbone {state.get('backbone')!r}: {exc}"
        ) from None
    grayscale = state.get("grayscale")  # checkpoints from before views lack it
    return Encoder(
        backbone,
        state["backbone"],
        int(state["image_size"]),
        dim,
        target,
        None if grayscale is None else bool(grayscale),
    )


def untrained_encoder(backbone: str, image_size: int, seed: int = 0, device: str = "auto") -> Encoder:
    """A randomly initialised ``backbone`` (a baseline to compare trained encoders against)."""
    target = pick_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, dim = make_backbone(backbone, image_size)
    return Encoder(model, backbone, image_size, dim, target)


def load_pretrained_encoder(spec: str, device: str = "auto", image_size: int | None = None) -> Encoder:
    """``torchvision:ARCH[=PATH]`` or ``timm:NAME[=PATH]`` with its local weights (PretrainedError otherwise)."""
    from explorer.ssl.pretrained import load_pretrained

    model, dim, name, size, _ = load_pretrained(spec, image_size)
    return Encoder(model, name, size, dim, pick_device(device))
