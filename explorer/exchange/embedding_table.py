"""Embeddings, map coordinates and labels as one Parquet table, for notebooks (pandas, polars).

Columns, one row per image: ``path`` (collection-relative), ``embedding`` (list of D float32,
unit length; null when the image has no vector), ``x``, ``y`` (float32 map position; null when
not on the current map), ``label``, ``source``, ``confidence`` (null when unlabelled). The same
file can be read back as embeddings with ``explorer embed PROJECT --from FILE.parquet``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from explorer.exchange.atomic import ExportError, atomic_path
from explorer.exchange.manifest import ManifestRow
from explorer.jobs import CancelToken
from explorer.store import Project
from explorer.store.ids import lookup_unsorted


def write_embedding_table(
    project: Project, rows: list[ManifestRow], out: Path, cancel: CancelToken | None = None
) -> None:
    """Write the rows with the current embeddings and map to ``out`` (Parquet), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from explorer.store.current import current_embeddings, current_map

    embeddings = current_embeddings(project)
    if embeddings is None:
        raise ExportError(
            "no embeddings yet: run `explorer embed` (or `explorer embed PROJECT --from FILE`) before a Parquet export"
        )
    files = project.readable_files()
    ids_by_path = dict(zip(files.paths, files.item_ids.tolist(), strict=True))
    wanted = np.array([ids_by_path[r.path] for r in rows], np.int64)
    vectors = np.asarray(embeddings.vectors, np.float32)
    pos, found = lookup_unsorted(np.asarray(embeddings.item_ids, np.int64), wanted)
    dim = vectors.shape[1]
    flat = pa.array(vectors[pos].reshape(-1), pa.float32())
    offsets = pa.array(np.arange(len(rows) + 1, dtype=np.int32) * dim)
    embedding = pa.ListArray.from_arrays(offsets, flat, mask=pa.array(~found))
    xy = np.full((len(rows), 2), np.nan, np.float32)
    graph_map = current_map(project)
    if graph_map is not None:
        mpos, mfound = lookup_unsorted(np.asarray(graph_map.item_ids, np.int64), wanted)
        xy[mfound] = graph_map.xy[mpos[mfound]]
    text = lambda values: pa.array([v or None for v in values], pa.string())  # noqa: E731
    table = pa.table(
        {
            "path": pa.array([r.path for r in rows], pa.string()),
            "embedding": embedding,
            "x": pa.array(xy[:, 0], pa.float32(), from_pandas=True),
            "y": pa.array(xy[:, 1], pa.float32(), from_pandas=True),
            "label": text(r.label for r in rows),
            "source": text(r.source for r in rows),
            "confidence": pa.array([float(r.confidence) if r.confidence else None for r in rows], pa.float64()),
        }
    )
    with atomic_path(out, cancel) as tmp:
        pq.write_table(table, tmp)
