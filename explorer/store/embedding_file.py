"""An embed run's vectors written chunk by chunk into a memory-mapped file, so that a million
images never sit in memory at once, a stopped run can be continued, and unchanged files keep
their vectors.

Files in the run's folder (``runs/ID/``):
  ``item_ids.npy`` (N,) int64 and ``file_stamps.npy`` (N, 2) int64 (file size in bytes, mtime in
  ns, as the scan recorded them): written first, they say which file each row is;
  ``.embeddings.partial.npy`` (N, D) float32 or float16: rows written as they are computed;
  ``rows_done.npy`` (N,) bool: the rows of the partial file that are on disk, saved atomically
  after the partial file is flushed (every few seconds, and when the run stops), so it never
  claims a row a crash lost;
  ``embeddings.npy``: the partial file renamed once every row is done (rows of files that could
  not be decoded are dropped first). Only then may the run be marked done.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.store.arrays import _fsync_folder, load_array, save_array
from explorer.store.ids import lookup_unsorted

PARTIAL = ".embeddings.partial.npy"
ROWS_DONE = "rows_done.npy"
DTYPES = ("float32", "float16")
CHECKPOINT_S = 5.0  # at most this much work is lost when the process is killed
COPY_ROWS = 65_536  # rows copied at once when reusing vectors: bounded memory at any width


def embedding_dtype(dtype: str | np.dtype | type) -> np.dtype:
    """np.float32 or np.float16; anything else is a ValueError naming the choices."""
    try:
        found = np.dtype(dtype)
    except TypeError:
        found = None
    if found is None or found.name not in DTYPES:
        raise ValueError(f"embeddings are stored as {' or '.join(DTYPES)}, not {dtype!r}")
    return found


@dataclass
class StoredVectors:
    """The vectors an earlier embed run left: all of them (finished) or the rows it had done
    (stopped). ``valid`` (N,) bool marks usable rows; ``vectors`` is memory-mapped."""

    run_id: int
    item_ids: np.ndarray  # (N,) int64, ascending
    stamps: np.ndarray  # (N, 2) int64
    vectors: np.ndarray  # (N, D), memory-mapped
    valid: np.ndarray  # (N,) bool
    partial: bool

    @classmethod
    def load(cls, run_id: int, folder: Path, finished: bool) -> StoredVectors | None:
        """What ``folder`` holds, or None when its files are missing or do not fit together."""
        try:
            ids = load_array(folder / "item_ids.npy")
            stamps = load_array(folder / "file_stamps.npy")
            if finished:
                vectors = load_array(folder / "embeddings.npy", mmap=True)
                valid = None if vectors is None else np.ones(len(vectors), bool)
            else:
                vectors = load_array(folder / PARTIAL, mmap=True)
                valid = load_array(folder / ROWS_DONE)
        except (OSError, ValueError, EOFError):  # a damaged (or empty) file is not worth failing the new run for
            return None
        if ids is None or stamps is None or vectors is None or valid is None:
            return None
        n = len(ids)
        if vectors.ndim != 2 or stamps.shape != (n, 2) or len(vectors) != n or valid.shape != (n,):
            return None
        return cls(run_id, ids.astype(np.int64), stamps.astype(np.int64), vectors, valid.astype(bool), not finished)

    def remove_partial(self, folder: Path) -> None:
        """Delete a stopped run's partial files once a newer run holds every row they had."""
        if self.partial:
            (folder / ROWS_DONE).unlink(missing_ok=True)
            (folder / PARTIAL).unlink(missing_ok=True)


class EmbeddingWriter:
    """Rows of (N, D) vectors for the files ``item_ids`` / ``stamps``, written in any order.

    ``on_checkpoint(rows_done)`` is called after each checkpoint (e.g. to show it in the run's
    metrics). Call ``finish`` when ``todo()`` is empty; until then nothing is current.
    """

    def __init__(
        self,
        folder: Path,
        item_ids: np.ndarray,
        stamps: np.ndarray,
        dim: int,
        dtype: np.dtype,
        checkpoint_s: float | None = None,
        on_checkpoint: Callable[[int], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.item_ids = np.asarray(item_ids, np.int64)
        self.stamps = np.asarray(stamps, np.int64).reshape(-1, 2)
        n = len(self.item_ids)
        if len(self.stamps) != n or (n > 1 and not (np.diff(self.item_ids) > 0).all()):
            raise ValueError("item ids must be ascending and aligned with their file stamps")
        save_array(self.folder / "item_ids.npy", self.item_ids)
        save_array(self.folder / "file_stamps.npy", self.stamps)
        self.vectors = np.lib.format.open_memmap(self.folder / PARTIAL, mode="w+", dtype=dtype, shape=(n, int(dim)))
        self.done = np.zeros(n, bool)
        self.failed = np.zeros(n, bool)
        self.checkpoint_s = CHECKPOINT_S if checkpoint_s is None else checkpoint_s
        self.on_checkpoint = on_checkpoint
        self._last_checkpoint = time.monotonic()

    def __len__(self) -> int:
        return len(self.item_ids)

    def reuse(self, source: StoredVectors) -> int:
        """Copy the rows of ``source`` whose file is unchanged (same item, same stamp) and not
        done yet; returns how many. Sources of another width are ignored."""
        if source.vectors.shape[1] != self.vectors.shape[1] or not len(source.item_ids) or not len(self):
            return 0
        at, found = lookup_unsorted(source.item_ids, self.item_ids)
        usable = found & ~self.done & source.valid[at] & (source.stamps[at] == self.stamps).all(axis=1)
        rows = np.flatnonzero(usable)
        for start in range(0, len(rows), COPY_ROWS):
            chunk = rows[start : start + COPY_ROWS]
            self.vectors[chunk] = source.vectors[at[chunk]]
        self.done[rows] = True
        return len(rows)

    def todo(self) -> np.ndarray:
        """Row positions still to compute (neither done nor failed), ascending."""
        return np.flatnonzero(~self.done & ~self.failed)

    def write(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Store ``vectors`` (len(rows), D) at ``rows``; saved for good at the next checkpoint."""
        if len(rows):
            self.vectors[rows] = vectors
            self.done[rows] = True

    def fail(self, rows: np.ndarray) -> None:
        """Rows whose file could not be decoded: left out of the finished file."""
        self.failed[rows] = True

    def checkpoint(self, force: bool = True) -> None:
        """Flush the rows written so far, then record them as done (atomically)."""
        if not force and time.monotonic() - self._last_checkpoint < self.checkpoint_s:
            return
        self.vectors.flush()
        save_array(self.folder / ROWS_DONE, self.done)
        self._last_checkpoint = time.monotonic()
        if self.on_checkpoint is not None:
            self.on_checkpoint(int(self.done.sum()))

    def finish(self) -> np.ndarray:
        """Make the file final: ``embeddings.npy`` with the done rows; returns their item ids."""
        if len(self.todo()):
            raise RuntimeError(f"{len(self.todo())} rows are not embedded yet")
        self.vectors.flush()
        final = self.folder / "embeddings.npy"
        if self.failed.any():
            keep = np.flatnonzero(self.done)
            tmp = self.folder / ".embeddings.compact.npy"
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=self.vectors.dtype, shape=(len(keep), self.dim))
            for start in range(0, len(keep), COPY_ROWS):
                out[start : start + COPY_ROWS] = self.vectors[keep[start : start + COPY_ROWS]]
            out.flush()
            del out
            _fsync_file(tmp)
            save_array(self.folder / "item_ids.npy", self.item_ids[keep])
            save_array(self.folder / "file_stamps.npy", self.stamps[keep])
            os.replace(tmp, final)
            del self.vectors
            (self.folder / PARTIAL).unlink(missing_ok=True)
            kept = self.item_ids[keep]
        else:
            del self.vectors
            _fsync_file(self.folder / PARTIAL)
            os.replace(self.folder / PARTIAL, final)
            kept = self.item_ids
        (self.folder / ROWS_DONE).unlink(missing_ok=True)
        _fsync_folder(self.folder)
        return kept

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
