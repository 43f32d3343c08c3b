"""Every step at once, for a first map from a folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from explorer.jobs import CancelToken, ProgressFn, no_progress
from explorer.store import Project
from explorer.store.current import trained_runs
from explorer.workflow.embedding import embed
from explorer.workflow.mapping import make_map
from explorer.workflow.scanning import scan
from explorer.workflow.training import train

if TYPE_CHECKING:
    from explorer.ssl.trainer import TrainConfig


def run_all(
    project: Project,
    config: TrainConfig | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> int:
    """Scan, train (unless a trained encoder exists), embed and map; returns the map run id."""
    scan(project, progress, cancel)
    if not trained_runs(project):
        train(project, config, progress=progress, cancel=cancel)
    embed(project, progress=progress, cancel=cancel)
    return make_map(project, progress=progress, cancel=cancel)
