"""Scan: find the collection's images, and decode them for the steps that need pixels."""

from __future__ import annotations

import numpy as np

from explorer.images.pool import decode_images
from explorer.images.scan import ScanReport, scan_collection
from explorer.jobs import CancelToken, ProgressFn, no_progress
from explorer.store import Project
from explorer.workflow.runs import WorkflowError


def scan(project: Project, progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> ScanReport:
    """Find the collection's images (see ``explorer.images.scan.scan_collection``)."""
    return scan_collection(project, progress, cancel)


def load_images(
    project: Project,
    size: int,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    only: set[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids (N,), images (N, size, size, 3) uint8) of every readable item (or of the ids in ``only``).

    A file that fails now (removed or damaged since the scan) is marked unreadable and left out.
    """
    files = project.readable_files()
    rows = np.arange(len(files))
    if only is not None:
        rows = rows[np.isin(files.item_ids, np.fromiter(only, np.int64, count=len(only)))]
    if not len(rows):
        raise WorkflowError(f"no readable images in {project.root}: run `explorer scan` first, or check the folder")
    return decode_images(project, [files.paths[r] for r in rows], files.item_ids[rows], size, progress, cancel)
