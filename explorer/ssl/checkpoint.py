"""Trainer checkpoints: one ``checkpoint.pt`` per training run, written atomically.

A checkpoint is a plain dict (loadable with ``torch.load(weights_only=True)``) holding the
method's state (backbone + heads), the backbone alone (``encoder``), optimiser and scaler state,
the number of completed epochs, the config as a dict, the history, the backbone name, feature
dimension and image size.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from explorer.store.arrays import write_atomically

FORMAT = "embedding-explorer/ssl-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "encoder", "backbone", "feature_dim", "image_size", "epoch", "config")


class CheckpointError(ValueError):
    """A checkpoint file that is missing, not a checkpoint, or damaged; the message names it."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` so that a crash leaves the old checkpoint or the new one
    (``explorer.store.arrays.write_atomically``: temporary file, fsync, rename)."""
    state = {"format": FORMAT, "version": VERSION, **state}
    write_atomically(Path(path), lambda f: torch.save(state, f))


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
