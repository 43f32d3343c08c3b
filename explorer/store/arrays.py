"""Array files beside the database, written atomically (temp name, flush, fsync, rename)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np


def save_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` (.npy) so that a crash leaves either the old or the new file."""
    write_atomically(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, and rename it to ``path``.

    A crash at any point leaves either the old file or the new one, never a partial one (a
    leftover ``.NAME.*.tmp`` from a killed process is never read). Errors remove the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; folders cannot be opened on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_array(path: Path, mmap: bool = False) -> np.ndarray | None:
    """The array in ``path``, or None when there is none yet."""
    if not path.exists():
        return None
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
