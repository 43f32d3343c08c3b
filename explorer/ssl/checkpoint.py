"""Trainer checkpoints: one ``checkpoint.pt`` per training run, written atomically.

A checkpoint is a plain dict (loadable with ``torch.load(weights_only=True)``) holding the
method's state (backbone + heads), the backbone alone (``encoder``), optimiser and scaler state,
the number of completed epochs, the config as a dict, the history, the backbone name, feature
dimension and image size.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "embedding-explorer/ssl-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "encoder", "backbone", "feature_dim", "image_size", "epoch", "config")


class CheckpointError(ValueError):
    """A checkpoint file that is missing, not a checkpoint, or damaged; the message names it."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "version": VERSION, **state}
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path``; CheckpointError naming the file when it cannot be used."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"not a checkpoint file (a directory?): {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: corrupt or not a torch file ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an Embedding Explorer encoder checkpoint")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete (missing {', '.join(missing)})")
    if state["version"] > VERSION:
        raise CheckpointError(f"checkpoint {path} was written by a newer version (format {state['version']})")
    return state
