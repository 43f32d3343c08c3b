"""Embeddings computed elsewhere (CLIP, DINOv2, ...) stored as the project's current embeddings.

Two layouts are read:
  ``.npy``     (N, D) numbers, with a paths file: one collection-relative path per line (``.txt``),
               or a CSV / JSON Lines file with a ``path`` column, in the same order as the rows;
  ``.parquet`` a table with a ``path`` column and an ``embedding`` column (a list of D numbers).
The vectors become an ``embed`` run like ``explorer embed`` makes (``item_ids`` (N,) int64 sorted,
``embeddings`` (N, D) float32 with unit rows), so ``explorer map`` and propagation use them.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from explorer.exchange.manifest import ManifestError, normalise_path
from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.store import Project
from explorer.store.arrays import read_npy

EMBEDDING_SUFFIXES = (".npy", ".parquet")


class EmbeddingFileError(ManifestError):
    """An embeddings file that cannot be used; the message names the file and the problem."""


@dataclass
class EmbeddingImport:
    """What an embeddings import stored."""

    run_id: int
    file: Path
    items: int  # images that got a vector
    dim: int
    missing: int = 0  # readable images of the collection the file has no vector for
    unknown_paths: list[str] = field(default_factory=list)  # rows naming no readable image
    empty_rows: int = 0  # Parquet rows with an empty (null) embedding, left out

    def summary(self) -> str:
        text = f"embedding run {self.run_id}: {self.items} image(s) x {self.dim} dimensions from {self.file.name}"
        if self.missing:
            text += f"\n{self.missing} image(s) of the collection have no vector and stay off the map"
        if self.unknown_paths:
            first = ", ".join(self.unknown_paths[:5])
            text += f"\n{len(self.unknown_paths)} row(s) name files not in the collection (left out), e.g. {first}"
        if self.empty_rows:
            text += f"\n{self.empty_rows} row(s) with an empty embedding left out"
        return text


def read_embedding_file(file: Path, paths_file: Path | None = None) -> tuple[list[str], np.ndarray, int]:
    """(paths as written in the file, vectors (N, D) float32, rows left out for an empty embedding)
    from a ``.npy`` + paths file or a Parquet table."""
    file = Path(file).expanduser()
    if not file.is_file():
        raise EmbeddingFileError(f"embeddings file not found: {file}")
    suffix = file.suffix.lower()
    if suffix == ".npy":
        if paths_file is None:
            raise EmbeddingFileError(f"{file}: a .npy file needs a paths file (--paths FILE, one path per row)")
        vectors = _read_npy(file)
        paths = _read_paths(Path(paths_file).expanduser())
        if len(paths) != len(vectors):
            raise EmbeddingFileError(f"{file} has {len(vectors)} rows but {paths_file} names {len(paths)} paths")
        empty = 0
    elif suffix == ".parquet":
        paths, vectors, empty = _read_parquet(file)
    else:
        raise EmbeddingFileError(f"{file}: expected a .npy (with --paths) or a .parquet file")
    if len(vectors) == 0 or vectors.shape[1] == 0:
        raise EmbeddingFileError(f"{file}: no vectors in it (shape {vectors.shape})")
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise EmbeddingFileError(f"{file}: row {int(np.argmax(bad))} ({paths[int(np.argmax(bad))]}) has NaN or inf")
    zero = ~np.any(vectors != 0, axis=1)
    if zero.any():
        k = int(np.argmax(zero))
        raise EmbeddingFileError(f"{file}: row {k} ({paths[k]}) is all zeros, so it has no direction")
    return paths, vectors, empty


def _read_npy(file: Path) -> np.ndarray:
    try:
        array = read_npy(file, mmap=True)
    except (ValueError, OSError) as exc:
        raise EmbeddingFileError(f"{file}: not a readable .npy array ({exc})") from None
    if array.ndim != 2:
        raise EmbeddingFileError(f"{file}: expected a 2-D array (images x dimensions), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise EmbeddingFileError(f"{file}: expected numbers, got {array.dtype}")
    return np.asarray(array, dtype=np.float32)


def _read_paths(file: Path) -> list[str]:
    if not file.is_file():
        raise EmbeddingFileError(f"paths file not found: {file}")
    try:
        with open(file, encoding="utf-8-sig", newline="") as f:
            if file.suffix.lower() == ".csv":
                reader = csv.DictReader(f)
                if "path" not in (reader.fieldnames or []):
                    raise EmbeddingFileError(f"{file}: a CSV paths file needs a `path` column")
                return [r["path"] or "" for r in reader]
            if file.suffix.lower() in (".jsonl", ".ndjson"):
                return [str(json.loads(line).get("path", "")) for line in f if line.strip()]
            return [line.rstrip("\r\n") for line in f if line.strip()]
    except (UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise EmbeddingFileError(f"{file}: not a readable paths file ({exc})") from None


def _read_parquet(file: Path) -> tuple[list[str], np.ndarray, int]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(file)
    except (pa.ArrowException, OSError) as exc:
        raise EmbeddingFileError(f"{file}: not a readable Parquet file ({exc})") from None
    missing = [c for c in ("path", "embedding") if c not in schema.names]
    if missing:
        raise EmbeddingFileError(
            f"{file}: needs columns path and embedding; missing {', '.join(missing)} (has {', '.join(schema.names)})"
        )
    table = pq.read_table(file, columns=["path", "embedding"])
    if table.column("path").null_count:
        raise EmbeddingFileError(f"{file}: {table.column('path').null_count} row(s) have no path")
    empty = table.column("embedding").null_count  # our own Parquet exports leave images without a vector empty
    table = table.filter(pc.is_valid(table.column("embedding")))
    column = table.column("embedding").combine_chunks()
    if not (
        pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_fixed_size_list(column.type)
    ):
        raise EmbeddingFileError(f"{file}: the embedding column must hold lists of numbers, not {column.type}")
    lengths = np.asarray(pc.list_value_length(column))
    if len(lengths) and (lengths != lengths[0]).any():
        k = int(np.argmax(lengths != lengths[0]))
        raise EmbeddingFileError(f"{file}: row {k} has {lengths[k]} numbers, row 0 has {lengths[0]}: all must match")
    try:
        flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise EmbeddingFileError(f"{file}: the embedding column must hold numbers ({exc})") from None
    dim = int(lengths[0]) if len(lengths) else 0
    return [str(p) for p in table.column("path").to_pylist()], flat.reshape(len(lengths), dim), empty


def import_embeddings(
    project: Project,
    file: Path,
    paths_file: Path | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> EmbeddingImport:
    """Store the vectors in ``file`` as the project's current embeddings (a finished ``embed`` run).

    Rows naming files that are not readable images of the collection are left out and reported;
    a file with a duplicate path, NaN, all-zero rows, ragged rows, or no row matching the
    collection is refused and nothing changes.
    """
    progress(Progress("import embeddings", 0, None, f"reading {Path(file).name}"))
    raw_paths, vectors, empty = read_embedding_file(file, paths_file)
    files = project.readable_files()
    ids_by_path = dict(zip(files.paths, files.item_ids.tolist(), strict=True))
    rows, ids, unknown, seen = [], [], [], {}
    for k, raw in enumerate(raw_paths):
        path = normalise_path(raw.strip(), project.root)
        if path in seen:
            raise EmbeddingFileError(f"{file}: {path!r} appears twice (rows {seen[path]} and {k})")
        seen[path] = k
        if path in ids_by_path:
            rows.append(k)
            ids.append(ids_by_path[path])
        else:
            unknown.append(raw)
    if not rows:
        first = ", ".join(raw_paths[:3])
        raise EmbeddingFileError(
            f"{file}: none of its {len(raw_paths)} paths is an image of {project.root} "
            f"(paths must be relative to that folder), e.g. {first}"
        )
    order = np.argsort(np.asarray(ids, np.int64), kind="stable")
    item_ids = np.asarray(ids, np.int64)[order]
    chosen = vectors[np.asarray(rows)[order]]
    chosen = (chosen / np.linalg.norm(chosen, axis=1, keepdims=True)).astype(np.float32)
    if cancel:
        cancel.raise_if_cancelled()
    file = Path(file).expanduser().resolve()
    # The encoder name tells the map whether two embedding runs share a space (positions kept,
    # graph reused): only the same vectors do, so it carries a fingerprint of them.
    fingerprint = hashlib.blake2b(np.ascontiguousarray(chosen).tobytes(), digest_size=8).hexdigest()
    run = project.start_run("embed", {"encoder": f"imported from {file} ({fingerprint})", "file": str(file)})
    try:
        project.save_run_arrays(run, item_ids=item_ids, embeddings=chosen)
    except BaseException as exc:
        project.finish_run(run, "failed", {"error": str(exc)})
        raise
    missing = len(ids_by_path) - len(item_ids)
    project.finish_run(run, "done", {"items": int(len(item_ids)), "dim": int(chosen.shape[1]), "missing": missing})
    progress(Progress("import embeddings", len(raw_paths), len(raw_paths)))
    return EmbeddingImport(run, file, len(item_ids), int(chosen.shape[1]), missing, unknown, empty)
