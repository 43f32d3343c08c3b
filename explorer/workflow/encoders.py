"""Which encoder a step uses: a training run's checkpoint, a file, a pretrained architecture, or
raw pixels (the baseline that needs no training)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer.store import Project
from explorer.store.current import trained_runs
from explorer.workflow.runs import WorkflowError

if TYPE_CHECKING:
    from explorer.ssl.encoder import Encoder


# The raw-pixel baseline "encoder": no training, useful to compare against and to get a first
# map in seconds.
PIXELS = "pixels"
PIXEL_SIZE = 32


def resolve_encoder(
    project: Project, encoder: str | None, device: str = "auto", image_size: int | None = None
) -> tuple[Encoder | None, str]:
    """The encoder named by ``encoder`` and a description of it.

    None: the latest training run with a checkpoint; a number (or ``run:N``): that training run;
    ``pixels``: the raw-pixel baseline (returned as None); ``torchvision:ARCH[=WEIGHTS.pth]`` or
    ``timm:NAME[=WEIGHTS]``: a pretrained architecture with a local weights file, at ``image_size``
    px (default: its pretraining size); anything else: a checkpoint file.
    """
    if encoder == PIXELS:
        return None, PIXELS
    from explorer.ssl.encoder import load_encoder, load_pretrained_encoder

    if encoder is not None and encoder.startswith(("torchvision:", "timm:")):
        model = load_pretrained_encoder(encoder, device=device, image_size=image_size)
        return model, encoder
    if encoder is not None and encoder.startswith("run:"):
        encoder = encoder[4:]
    if encoder is None or encoder.isdigit():
        runs = trained_runs(project)
        if encoder is not None:
            runs = [r for r in runs if r.id == int(encoder)]
            if not runs:
                raise WorkflowError(
                    f"no training run {encoder} with a checkpoint in this project (see `explorer status`)"
                )
        if not runs:
            raise WorkflowError(
                "no trained encoder yet: run `explorer train` first, pass --encoder FILE, or --encoder pixels"
            )
        path = project.run_dir(runs[-1].id) / "checkpoint.pt"
        return load_encoder(path, device=device), f"train run {runs[-1].id}"
    path = Path(encoder).expanduser()
    if not path.exists():
        raise WorkflowError(
            f"encoder file not found: {path} (pass a training checkpoint, a run id, pixels, "
            "torchvision:ARCH=WEIGHTS.pth or timm:NAME=WEIGHTS)"
        )
    return load_encoder(path, device=device), str(path.resolve())


def apply_views(model: Encoder | None, items: int, views: int | None = None) -> None:
    """Give an encoder trained here the views it embeds a collection of ``items`` images with:
    ``views``, or by default ``ssl.encoder.views_for``. Pretrained weights and checkpoints from
    before views (which do not say whether they learned on grayscale images) keep one plain view;
    WorkflowError if ``views`` asks them for more."""
    if model is None or model.grayscale is None:
        if views is not None and views > 1:
            raise WorkflowError(
                "--views needs an encoder trained here (its checkpoint names the recipe the views are drawn with)"
            )
        return
    from explorer.ssl.encoder import views_for

    chosen = views_for(model.image_size, model.grayscale, items, model.device.type) if views is None else views
    model.use_views(chosen, model.grayscale)


def pixel_vectors(images: np.ndarray) -> np.ndarray:
    """(N, S*S*3) float32 raw pixels, centred and L2-normalised per image."""
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    flat -= flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.maximum(norms, 1e-8)
