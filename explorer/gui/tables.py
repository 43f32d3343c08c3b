"""The session's tables, read from the store and lined up with the map: numpy and the store, no
Qt, so that opening a project, reloading after a scan or a build, and re-reading the labels after
a label action run on a worker (1M items: seconds) and the GUI thread only takes the result.

``MapOrder`` sorts the map's ids once so that ids become rows with one
``explorer.store.ids.lookup``; the labels are lined up and counted by ``explorer.gui.label_state``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.gui.cluster_shapes import ClusterShapes, cluster_shapes
from explorer.gui.label_state import LabelState, label_state, merge_pseudo
from explorer.gui.picking import PointIndex
from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.store import LabelClass, Project
from explorer.store.current import current_map as newest_map
from explorer.store.ids import lookup


@dataclass(frozen=True)
class MapOrder:
    """The map's item ids sorted: ``order`` (N,) the argsort, ``sorted`` (N,) the ids in order."""

    order: np.ndarray
    sorted: np.ndarray

    @classmethod
    def of(cls, graph_map) -> MapOrder:
        """Of ``graph_map`` (``explorer.store.current.MapData``, or None: empty)."""
        if graph_map is None:
            return cls(np.empty(0, np.int64), np.empty(0, np.int64))
        ids = np.asarray(graph_map.item_ids, np.int64)
        order = np.argsort(ids, kind="stable")
        return cls(order, ids[order])

    def rows_of(self, item_ids) -> np.ndarray:
        """Map row positions of ``item_ids`` (ids not on the map are left out)."""
        ids = np.atleast_1d(np.asarray(item_ids, np.int64))
        pos, found = lookup(self.sorted, ids)
        return self.order[pos[found]]

    def kept(self, item_ids) -> np.ndarray:
        """(N,) bool per map row: its item is one of ``item_ids``."""
        inside = np.zeros(len(self.order), bool)
        inside[self.rows_of(item_ids)] = True
        return inside


def map_clusters(project: Project, graph_map) -> np.ndarray:
    """(N,) int32 cluster per row of ``graph_map``; empty when it has none (or no map)."""
    found = project.load_run_array(graph_map.run_id, "clusters") if graph_map is not None else None
    ok = found is not None and len(found) == len(graph_map.item_ids)
    return np.asarray(found, np.int32) if ok else np.empty(0, np.int32)


def current_map(project: Project):
    """The project's newest map (``MapData`` with contiguous float32 ``xy``), or None."""
    graph_map = newest_map(project)
    if graph_map is not None:
        graph_map.xy = np.ascontiguousarray(graph_map.xy, dtype=np.float32)
    return graph_map


@dataclass
class ProjectTables:
    """Everything the session shows of a project, read in one go (``read_tables``)."""

    project: Project
    paths: dict[int, str]  # item id -> path relative to the root
    recorded: int  # items recorded, readable or not (0: never scanned)
    classes: list[LabelClass]
    map: object  # explorer.store.current.MapData | None
    map_order: MapOrder
    map_index: PointIndex | None  # over map.xy, for picking (1M points: 0.4 s to build)
    map_bounds: tuple | None  # ((2,) lowest, (2,) highest) of map.xy; None: no map
    clusters: np.ndarray  # (N,) int32, empty: none
    cluster_shapes: ClusterShapes  # where they are drawn
    state: LabelState


@dataclass
class LabelUpdate:
    """New labels (and the classes they were counted with) for the project the session shows."""

    project: Project
    classes: list[LabelClass]
    state: LabelState


READ_STEPS = ("items", "classes", "map", "labels")


def read_tables(
    project: Project, progress: ProgressFn = no_progress, cancel: CancelToken | None = None
) -> ProjectTables:
    """Read ``project``'s items, classes, newest map and label table, and line them up; a job
    (``explorer.jobs``): reports one step each, checks ``cancel`` between them."""
    cancel = cancel or CancelToken()
    total = len(READ_STEPS)

    def step(k: int) -> None:
        cancel.raise_if_cancelled()
        progress(Progress(f"reading {READ_STEPS[k]}", k, total))

    step(0)
    paths = project.paths_by_id()
    recorded = project.item_count(readable_only=False)
    step(1)
    classes = project.classes()
    step(2)
    graph_map = current_map(project)
    order = MapOrder.of(graph_map)
    index = PointIndex(graph_map.xy) if graph_map is not None else None
    bounds = (
        (graph_map.xy.min(axis=0), graph_map.xy.max(axis=0)) if graph_map is not None and len(graph_map.xy) else None
    )
    clusters = map_clusters(project, graph_map)
    shapes = cluster_shapes(graph_map.xy if graph_map is not None else np.empty((0, 2)), clusters)
    step(3)
    state = label_state(graph_map, project.label_table(), classes, clusters)
    cancel.raise_if_cancelled()
    progress(Progress("read", total, total))
    return ProjectTables(project, paths, recorded, classes, graph_map, order, index, bounds, clusters, shapes, state)


def read_labels(project: Project, graph_map, clusters: np.ndarray) -> LabelUpdate:
    """The classes and the label table again (after a label action, an undo, a change from another
    window), lined up with ``graph_map`` and counted."""
    classes = project.classes()
    return LabelUpdate(project, classes, label_state(graph_map, project.label_table(), classes, clusters))


def with_pseudo_labels(
    project: Project, base: LabelState, pseudo: tuple, graph_map, classes: list[LabelClass], clusters: np.ndarray
) -> LabelUpdate:
    """``base``'s labels with a propagation's ``pseudo`` (item ids, class ids, confidence), already
    saved to the store, in place of their pseudo-labels (``merge_pseudo``), lined up and counted."""
    table, kinds = merge_pseudo(base.labels, *pseudo, project.rejections(), kinds=base.kinds)
    return LabelUpdate(project, classes, label_state(graph_map, table, classes, clusters, kinds))
