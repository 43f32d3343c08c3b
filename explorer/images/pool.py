"""Decoding many of a project's files into one array, on a pool of threads when that pays.

A file that fails now (removed or damaged since the scan) is marked unreadable in the project
and left out; the rest go on.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from explorer.images.decode import ImageError, load_rgb_array
from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.store import Project


def decode_images(
    project: Project,
    paths: list[str],
    ids: np.ndarray,
    size: int,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids (n,), images (n, size, size, 3) uint8) of the ``paths`` (item ``ids``) that decode."""
    images = np.empty((len(paths), size, size, 3), np.uint8)
    ok = np.ones(len(paths), bool)
    workers = decode_workers(project, paths)
    step = 512
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), step):
            if cancel:
                cancel.raise_if_cancelled()
            stop = min(start + step, len(paths))
            ok[start:stop] = decode_rows(project, paths[start:stop], ids[start:stop], images[start:stop], pool, workers)
            progress(Progress("load images", stop, len(paths)))
    return ids[ok], images[ok]


def decode_workers(project: Project, paths: list[str]) -> int:
    """Threads pay off when decoding releases the GIL for long (big JPEGs); small files decode
    faster in one thread (1,797 32 px PNGs: 0.15 s alone, 0.5 s over 4 threads on 2 cores)."""
    return min(8, (os.cpu_count() or 2) * 2) if _mean_file_size(project, paths) > 32_000 else 1


def decode_rows(
    project: Project, paths: list[str], ids: np.ndarray, out: np.ndarray, pool: ThreadPoolExecutor, workers: int
) -> np.ndarray:
    """Decode ``paths`` into ``out`` (n, S, S, 3) uint8; returns (n,) bool, False where a file
    fails now (removed or damaged since the scan): that item is marked unreadable."""
    ok = np.ones(len(paths), bool)
    size = out.shape[1]

    def decode_all(rows: range) -> None:
        for k in rows:
            try:
                out[k] = load_rgb_array(project.root / paths[k], size)
            except ImageError as exc:
                ok[k] = False
                project.mark_unreadable(int(ids[k]), str(exc))

    rows = range(len(paths))
    list(pool.map(decode_all, [rows[w::workers] for w in range(workers)]))
    return ok


def _mean_file_size(project: Project, paths: list[str], sample: int = 32) -> float:
    """Mean size in bytes of up to ``sample`` of the files (0 when none can be read)."""
    sizes = []
    for item in paths[:: max(1, len(paths) // sample)][:sample]:
        try:
            sizes.append(project.absolute_path(item).stat().st_size)
        except OSError:
            pass
    return float(np.mean(sizes)) if sizes else 0.0
