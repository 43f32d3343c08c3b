"""Array files beside the database, written atomically (temp name, flush, fsync, rename)."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np

T = TypeVar("T")


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
    return read_npy(path, mmap=mmap)


# CPython 3.11 keeps the AST builder's recursion counter per interpreter, not per thread, so two
# threads parsing .npy headers (numpy uses ast.literal_eval) at the same moment can fail with a
# spurious "AST constructor recursion depth mismatch" SystemError (python/cpython#106905): seen
# when the window's map job and another job read arrays together. Our reads take one lock, and a
# read that another library's thread disturbed is tried once more.
_READ_LOCK = threading.Lock()


def read_npy(file: Path, mmap: bool = False) -> np.ndarray:
    """``np.load`` of one .npy array (memory-mapped when ``mmap``), safe to call from any thread."""
    return _read_locked(lambda: np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False))


def read_npz(file: Path, names: tuple[str, ...]) -> list[np.ndarray]:
    """The arrays ``names`` of one .npz file, safe to call from any thread (KeyError if one is missing)."""

    def read() -> list[np.ndarray]:
        with np.load(file, allow_pickle=False) as data:
            return [data[name] for name in names]

    return _read_locked(read)


def _read_locked(read: Callable[[], T]) -> T:
    with _READ_LOCK:
        try:
            return read()
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc):
                raise
            return read()
