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
    """Scan, train (unless the latest trained encoder was trained with ``config``'s settings, or with
    any when ``config`` is None), embed and map; returns the map run id."""
    scan(project, progress, cancel)
    trained = trained_runs(project)
    if not trained or not _same_recipe(trained[-1].params, config):
        train(project, config, progress=progress, cancel=cancel)
    embed(project, progress=progress, cancel=cancel)
    return make_map(project, progress=progress, cancel=cancel)


# What changes the encoder; the device, the process count and the budget (epochs and minutes) do not
# count as a new recipe (a resumed or moved run is the same encoder; an encoder trained with
# `train --max-minutes 10` is not retrained by a window whose settings say 100 epochs or 10 minutes),
# so Build map does not retrain for them: Build > Train trains another.
_RECIPE = ("method", "backbone", "image_size", "batch_size", "learning_rate", "weight_decay", "seed")


def _same_recipe(params: dict, config: TrainConfig | None) -> bool:
    """Whether a training run stored with ``params`` used the settings of ``config`` (None: any)."""
    if config is None:
        return True
    from dataclasses import asdict

    wanted = asdict(config)
    return all(params.get(key) == wanted[key] for key in _RECIPE)
