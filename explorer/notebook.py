"""Embedding Explorer from Python (a notebook, a script): the command line's steps as methods,
selections as pandas DataFrames, and the window on a selection.

    import explorer
    c = explorer.open("photos/")          # a folder of images (its state in photos/.explorer)
    c.scan(); c.train(max_minutes=10); c.embed(); c.map()
    c.label(["cats/001.jpg", "cats/002.jpg"], "cat")
    c.propagate()
    unsure = c.select(source="pseudo", max_confidence=0.6)
    c.show(unsure)                        # the window, with those images selected

Every method runs in the calling thread and returns what the command line prints, as data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer import workflow
from explorer.jobs import ProgressFn, no_progress
from explorer.store import Project
from explorer.store.ids import lookup_unsorted

if TYPE_CHECKING:
    import pandas as pd

    from explorer.ssl.trainer import TrainConfig


class Collection:
    """One folder of images and its project state; use as a context manager, or ``close()``."""

    def __init__(self, folder: str | Path, state_dir: str | Path | None = None, progress: ProgressFn = no_progress):
        self.project = Project(Path(folder).expanduser(), state_dir=Path(state_dir) if state_dir else None)
        self.progress = progress

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.project.close()

    def __repr__(self) -> str:
        return f"Collection({str(self.project.root)!r}: {len(self.project.item_ids())} images)"

    # ---- the steps ---------------------------------------------------------------------------
    def scan(self):
        """Find the images (again); returns the scan report (counts, unreadable files)."""
        return workflow.scan(self.project, self.progress)

    def train(self, config: TrainConfig | None = None, **settings) -> int:
        """Train a self-supervised encoder; ``settings`` are ``TrainConfig`` fields
        (``method``, ``backbone``, ``max_minutes``, ``epochs``, ``device`` ...). With neither limit it
        stops at 100 epochs or ten minutes, whichever comes first; one limit given replaces both, as
        ``explorer train`` does. Returns the run id."""
        from dataclasses import replace

        from explorer.ssl.trainer import TrainConfig

        base = config or TrainConfig()
        if config is None and ("epochs" in settings) != ("max_minutes" in settings):
            settings = {"epochs": None, "max_minutes": None, **settings}  # one limit replaces both, as on the CLI
        return workflow.train(self.project, replace(base, **settings) if settings else base, progress=self.progress)

    def embed(self, encoder: str | None = None, **options) -> int:
        """Embed every image (``encoder``: None for the latest trained one, "pixels", a file ...)."""
        return workflow.embed(self.project, encoder, progress=self.progress, **options)

    def map(self, k: int = 15, fresh: bool = False) -> int:
        """The kNN graph and the 2-D map of the current embeddings; returns the run id."""
        return workflow.make_map(self.project, k=k, fresh=fresh, progress=self.progress)

    def propagate(self, rounds: int = 0) -> pd.DataFrame:
        """Pseudo-labels for every image from the human labels, saved; returns :meth:`labels`."""
        workflow.propagate(self.project, self.progress, rounds=rounds)
        return self.labels()

    def refine(self, rounds: int = 2, max_minutes: float | None = None):
        """Fine-tune the encoder on the labels, embed, map and propagate again (``explorer refine``)."""
        from explorer.workflow.refine import refine

        return refine(self.project, rounds=rounds, max_minutes=max_minutes, progress=self.progress)

    def suggest(self, n: int = 5) -> pd.DataFrame:
        """The images to label next, best first: item_id, path, why."""
        found = workflow.suggest(self.project, n)
        return _frame({"item_id": found.item_ids, "path": found.paths, "why": found.reasons})

    def check(self) -> pd.DataFrame:
        """Labels the other labels disagree with, most suspect first: item_id, path, label,
        graph_says, suspicion (``explorer check``)."""
        found = workflow.check_labels(self.project)
        rows = {"item_id": found.item_ids, "path": found.paths, "label": found.given}
        return _frame(rows | {"graph_says": found.graph_says, "suspicion": found.suspicion})

    def similar(self, file: str | Path, n: int = 50) -> pd.DataFrame:
        """The images most like ``file`` (from anywhere): item_id, path, similarity."""
        found = workflow.similar(self.project, Path(file), n)
        return _frame({"item_id": found.item_ids, "path": found.paths, "similarity": found.similarities})

    def export(self, out: str | Path, format: str | None = None, images=None, **options):  # noqa: A002 (the CLI's word)
        """Write the labelled dataset (``explorer export``); ``images`` (paths, item ids or a
        DataFrame such as :meth:`select` returns) exports only those, else every image;
        ``options``: include, min_confidence, labelled_only, mode, split, seed. Returns the
        export report."""
        out = Path(out)
        items = None if images is None else self._ids_of(images)
        fmt = format or workflow.format_for(out)
        return workflow.export(self.project, fmt, out, progress=self.progress, items=items, **options)

    # ---- the data ----------------------------------------------------------------------------
    def items(self) -> pd.DataFrame:
        """Every readable image: item_id, path, width, height, bytes."""
        return _frame(self.project.item_table())

    def labels(self) -> pd.DataFrame:
        """Every readable image's label: item_id, path, label (None where there is none), source
        (seed, accepted, imported, pseudo or ""), confidence (1 for people's labels, NaN where none),
        and x, y on the current map (NaN off the map)."""
        return self._label_frame()

    def quality(self, threshold: float | None = None) -> pd.DataFrame:
        """Per image on the map: item_id, path, uniqueness (0: it has an exact twin), typicality
        (low: an outlier) and duplicate_group (-1: none; else the same number for near-duplicates
        at cosine >= ``threshold``, None for the map's default: ``workflow.near_duplicates``)."""
        found = workflow.quality(self.project, threshold)
        paths = self.project.paths_by_id()
        return _frame(
            {
                "item_id": found.item_ids,
                "path": [paths[int(i)] for i in found.item_ids],
                "uniqueness": found.uniqueness,
                "typicality": found.typicality,
                "duplicate_group": found.duplicate_group,
            }
        )

    def clusters(self, resolution: float | None = None) -> pd.DataFrame:
        """One row a cluster of the map, largest first: cluster, name (its majority label, or
        ``cluster N (size)``), images, labelled, label, share. ``resolution`` finds them again
        (higher: more, smaller clusters). ``cluster_of()`` gives each image's."""
        import pandas as pd

        rows = workflow.clusters(self.project, resolution, self.progress).rows()
        return pd.DataFrame(rows, columns=["cluster", "name", "images", "labelled", "label", "share"])

    def cluster_of(self) -> pd.DataFrame:
        """Per image on the map: item_id, path, cluster (-1: in a cluster too small to list)."""
        found = workflow.clusters(self.project)
        paths = self.project.paths_by_id()
        return _frame(
            {"item_id": found.item_ids, "path": [paths[int(i)] for i in found.item_ids], "cluster": found.cluster}
        )

    def label_cluster(self, cluster: int, name: str) -> int:
        """Label cluster ``cluster``'s images that no person labelled as ``name``, as one undoable
        action; returns how many."""
        return workflow.label_cluster(self.project, cluster, name)

    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(item_ids (N,) int64, vectors (N, D)) of the current embeddings (memory-mapped)."""
        current = workflow.current_embeddings(self.project)
        if current is None:
            raise workflow.WorkflowError("no embeddings yet: call embed() first")
        return current.item_ids, current.vectors

    def select(
        self,
        label: str | Iterable[str] | None = None,
        source: str | Iterable[str] | None = None,
        min_confidence: float | None = None,
        max_confidence: float | None = None,
        path: str | None = None,
        *,
        min_width: int | None = None,
        max_width: int | None = None,
        min_height: int | None = None,
        max_height: int | None = None,
        modified_after: str | date | None = None,
        modified_before: str | date | None = None,
    ) -> pd.DataFrame:
        """The rows of :meth:`labels` that match every filter given: ``label`` and ``source`` one
        name or several (sources: seed, accepted, imported, pseudo, unlabelled), a confidence
        range, ``path`` a glob (``"cats/*"``, ``"*.png"``) or ``"re:"`` and a regular expression,
        width and height in pixels (inclusive), and the file's modification time
        (``modified_after`` inclusive, ``modified_before`` exclusive; dates, datetimes or ISO text).
        The same rule as ``explorer find`` and the window's filter bar (``explorer.store.filters``)."""
        from explorer.store.filters import Filter, find

        rule = Filter(
            path=path,
            classes=label,
            sources=source,
            min_confidence=min_confidence,
            max_confidence=max_confidence,
            min_width=min_width,
            max_width=max_width,
            min_height=min_height,
            max_height=max_height,
            modified_after=modified_after,
            modified_before=modified_before,
        )
        return self._label_frame(find(self.project, rule))

    def _label_frame(self, items: np.ndarray | None = None):
        """:meth:`labels`, only for the item ids ``items`` when given: paths, names and map
        positions are looked up for the rows kept only."""
        classes = self.project.classes()
        table = self.project.label_table(paths=items is None)
        rows = np.arange(len(table)) if items is None else np.flatnonzero(np.isin(table.item_ids, items))
        ids = table.item_ids[rows]
        paths = table.paths if table.paths is not None else self.project.paths_of(ids)
        class_ids = np.array([c.id for c in classes], np.int64)
        names = np.array([None] + [c.name for c in classes], dtype=object)
        name_rows = lookup_unsorted(class_ids, table.class_ids[rows])[0] + 1  # 0: no label (or a class that is gone)
        xy = np.full((len(rows), 2), np.nan)
        current = self.project.latest_run("map")
        if current is not None:  # only the positions: the map's graph is not needed here
            map_ids = self.project.load_run_array(current.id, "item_ids")
            at, found = lookup_unsorted(map_ids, ids)
            xy[found] = self.project.load_run_array(current.id, "xy")[at[found]]
        return _frame(
            {
                "item_id": ids,
                "path": paths,
                "label": names[name_rows],
                "source": table.source[rows],  # str objects, as pandas keeps them
                "confidence": table.confidence[rows],
                "x": xy[:, 0],
                "y": xy[:, 1],
            }
        )

    def label(self, images, name: str | None) -> int:
        """Give ``images`` (paths, item ids, or a DataFrame with item_id) the label ``name`` as a
        person's label (None clears it; one undoable step). Returns how many were labelled."""
        ids = self._ids_of(images)
        class_id = None if name is None else self.project.add_class(name).id
        self.project.set_labels(ids.tolist(), class_id)
        return len(ids)

    def show(self, selection=None, *, block: bool = True):
        """The window on this collection, with ``selection`` (paths, ids or a DataFrame) selected.
        ``block`` runs the event loop until the window closes (from a script); in a notebook
        running ``%gui qt``, ``block=False`` returns the window at once."""
        from explorer.gui.app import window_on

        ids = None if selection is None else self._ids_of(selection)
        return window_on(self.project.root, self.project.state_dir, ids, block=block)

    def _ids_of(self, images) -> np.ndarray:
        """(n,) int64 item ids of paths, ids or a DataFrame with an item_id column."""
        if hasattr(images, "columns") and "item_id" in images.columns:
            return images["item_id"].to_numpy(np.int64)
        values = list(images) if not isinstance(images, str | Path | int | np.integer) else [images]
        if all(isinstance(v, int | np.integer) for v in values):
            return np.asarray(values, np.int64)
        by_path = {p: i for i, p in self.project.paths_by_id().items()}
        missing = [str(v) for v in values if str(v) not in by_path]
        if missing:
            raise workflow.WorkflowError(
                f"{len(missing)} path(s) not in this collection, e.g. {missing[0]!r} (paths are relative to the folder)"
            )
        return np.array([by_path[str(v)] for v in values], np.int64)


def open(folder: str | Path, state_dir: str | Path | None = None, progress: ProgressFn = no_progress) -> Collection:  # noqa: A001
    """The :class:`Collection` of the images in ``folder`` (created on first use)."""
    return Collection(folder, state_dir, progress)


def _frame(columns: dict) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns)
