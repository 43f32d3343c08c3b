"""Array files beside the database, written atomically (temp name, flush, fsync, rename)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def save_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` (.npy) so that a crash leaves either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_array(path: Path, mmap: bool = False) -> np.ndarray | None:
    """The array in ``path``, or None when there is none yet."""
    if not path.exists():
        return None
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
