"""Embedding shards: what each Ray actor batch writes, and their merge into one run's arrays.

A shard is one ``.npz`` file in the run's ``shards/`` folder: ``rows`` (n,) int64 positions in the
run's item list, ``vectors`` (n, D) float32 unit rows, ``failed_rows`` (m,) int64 and ``errors``
(m,) str, why those images could not be decoded. Its name comes from its first row and its size,
so a batch that Ray retries rewrites the same file (atomically) instead of adding a duplicate.
Only numpy here: the merge runs in the driver and is tested without Ray.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.store import ProjectError
from explorer.store.arrays import read_npz, save_array, write_atomically

SHARD_PATTERN = "shard-*.npz"


class ShardError(ProjectError):
    """The shards do not add up to the whole collection (a worker's output was lost or damaged)."""


def write_shard(
    folder: Path, rows: np.ndarray, vectors: np.ndarray, failed_rows: np.ndarray, errors: list[str]
) -> Path:
    """Write one batch's result to ``folder`` atomically; returns the shard's path.

    ``rows`` (n,) and ``vectors`` (n, D) float32 for the decoded images, ``failed_rows`` (m,) and
    ``errors`` (m reasons) for the others.
    """
    rows = np.asarray(rows, np.int64)
    failed_rows = np.asarray(failed_rows, np.int64)
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2 or len(vectors) != len(rows) or len(errors) != len(failed_rows):
        raise ValueError(
            f"a shard needs one vector per row and one error per failed row: rows {rows.shape}, "
            f"vectors {vectors.shape}, failed rows {failed_rows.shape}, errors {len(errors)}"
        )
    every = np.concatenate([rows, failed_rows])
    if not len(every):
        raise ValueError("an empty batch has no shard")
    path = Path(folder) / f"shard-{int(every.min()):010d}-{len(every):06d}.npz"
    reasons = np.array([str(e) for e in errors], dtype=str).reshape(-1)

    def write(f) -> None:
        np.savez(f, rows=rows, vectors=vectors, failed_rows=failed_rows, errors=reasons)

    write_atomically(path, write)
    return path


@dataclass
class MergedShards:
    """What the merge found: ``rows`` (n_ok,) sorted positions that got a vector (the order of the
    merged vectors), ``failed`` position -> reason for the images that could not be decoded."""

    rows: np.ndarray
    failed: dict[int, str]
    shards: int


def merge_shards(folder: Path, total: int, dim: int, destination: Path) -> MergedShards:
    """Merge every shard in ``folder`` into ``destination`` (.npy, (n_ok, dim) float32, rows in item
    order), written atomically without holding all vectors in memory.

    ``total`` is the number of items the run embedded (positions 0..total-1). Raises ShardError,
    writing nothing, when a position is in no shard or a shard is damaged or of another size.
    """
    files = sorted(Path(folder).glob(SHARD_PATTERN))
    owner = np.full(total, -1, np.int64)  # the shard whose vector a position takes (first one wins)
    failed: dict[int, str] = {}
    for k, file in enumerate(files):
        rows, failed_rows, errors = _read(file, "rows", "failed_rows", "errors")
        every = np.concatenate([rows, failed_rows])
        if len(every) and (every.min() < 0 or every.max() >= total):
            raise ShardError(f"{file.name}: rows outside 0..{total - 1}: the shard is from another run")
        fresh = rows[owner[rows] < 0]
        owner[fresh] = k
        for row, reason in zip(failed_rows.tolist(), errors.tolist()):
            failed.setdefault(int(row), str(reason))
    has_vector = owner >= 0
    failed = {row: reason for row, reason in failed.items() if not has_vector[row]}  # a retry that worked wins
    missing = np.flatnonzero(~has_vector)
    missing = missing[~np.isin(missing, np.fromiter(failed, np.int64, len(failed)))]
    if len(missing):
        raise ShardError(
            f"{len(missing)} of {total} images are in no shard (first: position {int(missing[0])}): "
            "a worker's output was lost; the previous embeddings stay current, run the step again"
        )
    destination_row = np.cumsum(has_vector) - 1

    def fill(out: np.ndarray) -> None:
        for k, file in enumerate(files):
            rows, vectors = _read(file, "rows", "vectors")
            if vectors.shape != (len(rows), dim):
                raise ShardError(f"{file.name}: vectors {vectors.shape}, expected ({len(rows)}, {dim})")
            mine = owner[rows] == k
            out[destination_row[rows[mine]]] = vectors[mine]

    save_array_in_parts(Path(destination), (int(has_vector.sum()), dim), fill)
    return MergedShards(np.flatnonzero(has_vector), failed, len(files))


def _read(file: Path, *names: str) -> list[np.ndarray]:
    try:
        return read_npz(file, names)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise ShardError(f"{file.name}: damaged shard ({exc})") from None


def save_array_in_parts(path: Path, shape: tuple[int, int], fill: Callable[[np.ndarray], None]) -> None:
    """Create a float32 .npy of ``shape`` under a temporary name, let ``fill(array)`` write into it
    (memory-mapped), fsync and rename it to ``path``: a crash leaves the old file or the new one."""
    if shape[0] == 0:  # an empty file cannot be memory-mapped
        save_array(path, np.empty(shape, np.float32))
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        fill(out)
        out.flush()
        del out
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
