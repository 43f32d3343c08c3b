"""The session's tables, read from the store and lined up with the map: numpy and the store, no
Qt, so that opening a project reads them on a worker (1M items: seconds) and the GUI thread only
takes the result.

Item identity: the label table is in ascending item id; the map speaks in rows
(``map.item_ids[row]``). ``MapOrder`` sorts the map's ids once so that ids become rows with one
``explorer.store.ids.lookup``; ``align_labels`` gives every map row its class position, source code and
confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.gui.picking import PointIndex
from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.store import HUMAN_SOURCES, LabelClass, LabelTable, Project
from explorer.store.current import current_map as newest_map
from explorer.store.ids import lookup, lookup_unsorted

# Codes for ``Session.map_source``: what kind of label each map row has.
NONE, HUMAN, PSEUDO = 0, 1, 2


def empty_labels() -> LabelTable:
    return LabelTable(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, object), np.empty(0))


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


@dataclass(frozen=True)
class AlignedLabels:
    """Map-aligned label state, (N,) per map row."""

    class_index: np.ndarray  # int64 position in the class list, -1 none
    source: np.ndarray  # int8 NONE / HUMAN / PSEUDO
    confidence: np.ndarray  # float64, NaN unlabelled


def class_positions(classes: list[LabelClass], class_ids: np.ndarray) -> np.ndarray:
    """Store class ids -> positions in ``classes`` (-1 for none or unknown)."""
    return lookup_unsorted(np.array([c.id for c in classes], np.int64), class_ids)[0]


def align_labels(graph_map, labels: LabelTable, classes: list[LabelClass]) -> AlignedLabels:
    """The label of every row of ``graph_map`` (None: no rows) from ``labels``."""
    n = len(graph_map.item_ids) if graph_map is not None else 0
    aligned = AlignedLabels(np.full(n, -1, np.int64), np.zeros(n, np.int8), np.full(n, np.nan))
    if n == 0 or len(labels) == 0:
        return aligned
    pos, found = lookup(labels.item_ids, np.asarray(graph_map.item_ids, np.int64))
    class_ids = np.full(n, -1, np.int64)
    class_ids[found] = labels.class_ids[pos[found]]
    source = np.full(n, "", object)
    source[found] = labels.source[pos[found]]
    aligned.confidence[found] = labels.confidence[pos[found]]
    class_index = class_positions(classes, class_ids)
    aligned.class_index[:] = class_index
    aligned.source[np.isin(source, HUMAN_SOURCES)] = HUMAN
    aligned.source[source == "pseudo"] = PSEUDO
    aligned.source[class_index < 0] = NONE
    return aligned


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
    clusters: np.ndarray  # (N,) int32, empty: none
    labels: LabelTable
    aligned: AlignedLabels


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
    clusters = map_clusters(project, graph_map)
    step(3)
    labels = project.label_table()
    aligned = align_labels(graph_map, labels, classes)
    cancel.raise_if_cancelled()
    progress(Progress("read", total, total))
    return ProjectTables(project, paths, recorded, classes, graph_map, order, index, clusters, labels, aligned)
