"""The session model: the one object the views read from and act through.

It holds the open ``Project`` (the source of truth), the current map, the label table, the
selection and the current item. Every label action goes to the store first, then the model
reloads what changed and emits a signal; views listen and never talk to each other.

Item identity: views speak in item ids; the map speaks in row positions (``map.item_ids[row]``).
``rows_of`` and ``ids_of`` translate, vectorised.

Opening a project (``open_project``) creates the ``Project`` at once (a bad folder raises there)
and reads its tables on a worker (``explorer.gui.tables.read_tables``, latest request wins):
``opening`` is true meanwhile and the session looks like an empty project; ``projectOpened``
fires when the tables landed (``openFailed`` when they could not be read). A label action or an
outside change while they are read makes them be read again.

The filter (``set_filter``, see ``explorer.store.filters``) is worked out on a worker thread,
latest request wins; ``filtered`` holds the item ids it keeps (None: no filter) and follows label,
class and item changes. Views hide what is outside it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from explorer.gui.jobs import JobRunner
from explorer.gui.tables import (
    HUMAN,
    NONE,
    PSEUDO,
    MapOrder,
    ProjectTables,
    align_labels,
    current_map,
    empty_labels,
    map_clusters,
    read_tables,
)
from explorer.store import HUMAN_SOURCES, LabelClass, LabelTable, Project, ProjectError
from explorer.store.filters import FileFacts, Filter, matching_ids, read_file_facts
from explorer.store.ids import lookup, pair_keys

__all__ = ["HUMAN", "NONE", "PSEUDO", "ItemInfo", "Session"]  # the label codes, for the views


@dataclass(frozen=True)
class ItemInfo:
    """What the views show about one item."""

    item_id: int
    path: str
    class_id: int  # -1 when unlabelled
    class_name: str
    colour: str  # the class colour, '' when unlabelled
    source: str  # '', seed, accepted, imported, pseudo
    confidence: float  # NaN when unlabelled


class Session(QObject):
    projectChanged = Signal()  # a project was opened or closed (everything else reloads too)
    projectOpened = Signal()  # an opened project's tables landed (after projectChanged and the rest)
    openFailed = Signal(str)  # its tables could not be read (the project is closed again): why
    itemsChanged = Signal()  # the item list changed (after a scan)
    mapChanged = Signal()  # a new map (or none)
    clustersChanged = Signal()  # the map's clusters were found again
    classesChanged = Signal()
    labelsChanged = Signal()  # the label table was reloaded, for any reason
    labelsEdited = Signal()  # a person changed labels (propagation should re-run)
    selectionChanged = Signal()
    currentChanged = Signal(int)  # item id, -1 for none
    message = Signal(str)  # a short line for the status bar
    filterChanged = Signal()  # ``filter`` / ``filtered`` changed (a new rule, or what it keeps)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.map = None  # explorer.workflow.MapData | None
        self.labels = empty_labels()
        self.classes: list[LabelClass] = []
        self.selection = np.empty(0, np.int64)  # sorted unique item ids
        self.current: int | None = None
        self._paths: dict[int, str] = {}
        self.recorded = 0  # items the project has recorded, readable or not (0: never scanned)
        self._label_counts: tuple | None = None
        # Map-aligned label state (N,), recomputed with the label table.
        self.map_class_index = np.empty(0, np.int64)  # position in ``classes``, -1 none
        self.map_source = np.empty(0, np.int8)  # NONE / HUMAN / PSEUDO
        self.map_confidence = np.empty(0, np.float64)
        self.map_clusters = np.empty(0, np.int32)  # (N,) cluster per map row, -1 none; empty: not found
        self._map_order = MapOrder.of(None)  # map.item_ids sorted, for ids -> rows
        self.map_index = None  # a PointIndex over map.xy built on the worker when opening; None: not built
        # The filter: the rule asked for, and (once worked out) the rule shown and what it keeps.
        self.filter: Filter | None = None
        self.filtered: np.ndarray | None = None  # sorted item ids; None = no filter
        self._asked: Filter | None = None
        self._files: FileFacts | None = None  # read on the worker once, kept until a scan
        self._filter_rows: tuple | None = None  # (filtered, map, (N,) bool) cache
        self._filtering = JobRunner(latest_wins=True, parent=self)
        self._filtering.finished.connect(self._filter_done)
        self._filtering.failed.connect(lambda _r, _n, text: self.message.emit(f"filter: {text}"))
        # Opening: the tables are read here, latest request wins (``reading.progress`` says how far).
        self.reading = JobRunner(latest_wins=True, parent=self)
        self.reading.finished.connect(self._tables_read)
        self.reading.failed.connect(self._tables_failed)
        self.reading.cancelled.connect(self._tables_failed)
        self._opening = 0  # the request reading the tables of the project being opened; 0: none
        self.labelsChanged.connect(lambda: self._refilter(labels_only=True))
        self.classesChanged.connect(lambda: self._refilter(labels_only=True))
        self.itemsChanged.connect(self._refilter)
        self.mapChanged.connect(self._refilter)

    # ---- project ------------------------------------------------------------------------
    def open_project(self, root: str | Path, state_dir: str | Path | None = None) -> int:
        """Open (or create) the project for the folder ``root``: at once (raises ProjectError, or
        StateNotWritable for a folder it cannot keep its state in), with its tables read on a
        worker; ``projectOpened`` fires when they landed. Returns the reading's request id."""
        project = Project(root, state_dir)
        self.close_project(emit=False)
        self.project = project
        request = self._read_tables()  # lands on this thread, after the signals below
        self._emit_all()  # an empty project until the tables land
        return request

    @property
    def opening(self) -> bool:
        """A project is open but its tables are still being read."""
        return self._opening != 0

    def _read_tables(self) -> int:
        project = self.project
        self._opening = self.reading.start(
            "open", lambda progress, cancel: read_tables(project, progress=progress, cancel=cancel)
        )
        return self._opening

    def _read_again(self) -> bool:
        """While opening, the store changed (a label action, an outside change): read the tables
        again, latest request wins. True when it did (the caller then has nothing to reload)."""
        if not self.opening:
            return False
        self._read_tables()
        return True

    def _tables_read(self, request: int, _name: str, tables: ProjectTables) -> None:
        if request != self._opening or tables.project is not self.project:
            return  # a project opened (or closed) since
        self._opening = 0
        self._paths = tables.paths
        self.recorded = tables.recorded
        self.classes = tables.classes
        self.map = tables.map
        self._map_order = tables.map_order
        self.map_index = tables.map_index
        self.map_clusters = tables.clusters
        self.labels = tables.labels
        self._set_aligned(tables.aligned)
        self._emit_all()
        self.projectOpened.emit()

    def _tables_failed(self, request: int, _name: str, text: str = "cancelled") -> None:
        if request != self._opening:
            return
        root = self.project.root if self.project is not None else ""
        self.close_project()
        self.openFailed.emit(f"Cannot open {root}: {text}")

    def _emit_all(self) -> None:
        self.projectChanged.emit()
        self.itemsChanged.emit()
        self.classesChanged.emit()
        self.mapChanged.emit()
        self.labelsChanged.emit()
        self.selectionChanged.emit()
        self.currentChanged.emit(-1)
        self.filterChanged.emit()

    def close_project(self, emit: bool = True) -> None:
        if self._opening:
            self.reading.cancel()  # it lands as stale: ``_tables_read`` drops it
            self._opening = 0
        if self.project is not None:
            self.project.close()
        self.project = None
        self.map = None
        self._paths = {}
        self.recorded = 0
        self.classes = []
        self.selection = np.empty(0, np.int64)
        self.current = None
        self._forget_filter()
        self._align_map()
        self._reload_labels()
        if emit:
            self.filterChanged.emit()
            self.projectChanged.emit()
            self.mapChanged.emit()
            self.labelsChanged.emit()
            self.selectionChanged.emit()
            self.currentChanged.emit(-1)

    def reload_items(self) -> None:
        """After a scan: new paths, new counts."""
        if self.project is None or self._read_again():
            return
        self._paths = self.project.paths_by_id()
        self._files = None
        self._reload_labels()
        self.itemsChanged.emit()
        self.labelsChanged.emit()

    def reload_map(self) -> None:
        """After a map run finished: show the newest map."""
        if self.project is None or self._read_again():
            return
        self._paths = self.project.paths_by_id()
        self._files = None  # a build scans first
        self._load_map()
        self._reload_labels()
        keep = self.selection
        self.selection = keep[np.isin(keep, self.map.item_ids)] if self.map is not None else keep
        self.mapChanged.emit()
        self.labelsChanged.emit()
        self.selectionChanged.emit()
        self.currentChanged.emit(self.current if self.current is not None else -1)

    def reload_labels(self, edited: bool = False) -> None:
        """Re-read the label table (after propagation, or any outside change)."""
        if self._read_again():
            return
        self._reload_labels()
        self.labelsChanged.emit()
        if edited:
            self.labelsEdited.emit()

    def apply_pseudo_labels(self, item_ids: np.ndarray, class_ids: np.ndarray, confidence: np.ndarray) -> None:
        """New pseudo-labels (already saved to the store) into the label table in memory: the
        same table the store would give back, without reading 100k rows again after every
        propagation. Human labels win; rejected (item, class) pairs are left out."""
        if self.project is None or self._read_again():
            return
        table = self.labels
        human = np.isin(table.source, HUMAN_SOURCES)
        cls = np.where(human, table.class_ids, -1)
        src = np.where(human, table.source, "").astype(object)
        conf = np.where(human, table.confidence, np.nan)
        item_ids, class_ids = np.asarray(item_ids, np.int64), np.asarray(class_ids, np.int64)
        pos, found = lookup(table.item_ids, item_ids)
        found &= class_ids >= 0
        rejected = self.project.rejections()
        if rejected:
            pairs = np.array(rejected, np.int64).reshape(-1, 2)
            found &= ~np.isin(pair_keys(item_ids, class_ids), pair_keys(pairs[:, 0], pairs[:, 1]))
        rows = pos[found]
        free = ~human[rows]
        rows = rows[free]
        cls[rows] = class_ids[found][free]
        src[rows] = "pseudo"
        conf[rows] = np.asarray(confidence)[found][free]
        self.labels = LabelTable(table.item_ids, cls, src, conf)
        self._align_labels()
        self.labelsChanged.emit()

    def _load_map(self) -> None:
        self.map = current_map(self.project) if self.project is not None else None
        self._align_map()

    def _load_clusters(self) -> None:
        self.map_clusters = map_clusters(self.project, self.map) if self.project is not None else np.empty(0, np.int32)

    def _align_map(self) -> None:
        self.map_index = None  # the map view builds one for a map loaded here
        self._load_clusters()
        self._map_order = MapOrder.of(self.map)

    def _reload_classes(self) -> None:
        self.classes = self.project.classes() if self.project is not None else []

    def _reload_labels(self) -> None:
        self.labels = self.project.label_table() if self.project is not None else empty_labels()
        self._align_labels()

    def _align_labels(self) -> None:
        self._set_aligned(align_labels(self.map, self.labels, self.classes))

    def _set_aligned(self, aligned) -> None:
        self.map_class_index = aligned.class_index
        self.map_source = aligned.source
        self.map_confidence = aligned.confidence

    # ---- lookups ------------------------------------------------------------------------
    def rows_of(self, item_ids) -> np.ndarray:
        """Map row positions of ``item_ids`` (ids not on the map are left out)."""
        ids = np.atleast_1d(np.asarray(item_ids, np.int64))
        pos, found = lookup(self._map_order.sorted, ids)
        return self._map_order.order[pos[found]]

    def ids_of(self, rows) -> np.ndarray:
        if self.map is None:
            return np.empty(0, np.int64)
        return np.asarray(self.map.item_ids, np.int64)[np.atleast_1d(np.asarray(rows, np.int64))]

    def path_of(self, item_id: int) -> str:
        return self._paths.get(int(item_id), "")

    def absolute_path(self, item_id: int) -> Path | None:
        path = self._paths.get(int(item_id))
        if path is None or self.project is None:
            return None
        return self.project.absolute_path(path)

    def class_of(self, class_id: int) -> LabelClass | None:
        for c in self.classes:
            if c.id == class_id:
                return c
        return None

    def info(self, item_id: int) -> ItemInfo:
        pos, found = lookup(self.labels.item_ids, np.array([item_id], np.int64))
        cls, source, conf = -1, "", float("nan")
        if found[0]:
            k = pos[0]
            cls, source, conf = (
                int(self.labels.class_ids[k]),
                str(self.labels.source[k]),
                float(self.labels.confidence[k]),
            )
        label = self.class_of(cls) if cls >= 0 else None
        return ItemInfo(
            int(item_id),
            self.path_of(item_id),
            cls,
            label.name if label else "",
            label.colour if label else "",
            source,
            conf,
        )

    def neighbours(self, item_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, cosine similarities) of the map's nearest neighbours of ``item_id``,
        nearest first, without the item itself; empty when it is not on the map."""
        rows = self.neighbour_rows(item_id)
        return self.ids_of(rows[0]), rows[1]

    def neighbour_rows(self, item_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(map rows, similarities) of ``item_id``'s neighbours (see ``neighbours``)."""
        if self.map is None:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        rows = self.rows_of([item_id])
        if len(rows) == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        row = int(rows[0])
        indices = np.asarray(self.map.knn_indices[row], np.int64)
        sims = np.asarray(self.map.knn_similarities[row], np.float32)
        keep = (indices >= 0) & (indices != row)
        return indices[keep], sims[keep]

    def counts(self) -> dict[str, int]:
        """items, human, pseudo, unlabelled, selected, classes."""
        if self._label_counts is None or self._label_counts[0] is not self.labels:
            src = self.labels.source
            human = int(np.isin(src, HUMAN_SOURCES).sum()) if len(src) else 0
            pseudo = int((src == "pseudo").sum()) if len(src) else 0
            self._label_counts = (self.labels, human, pseudo)  # per label table: many views ask
        _, human, pseudo = self._label_counts
        return {
            "items": len(self.labels),
            "human": human,
            "pseudo": pseudo,
            "unlabelled": len(self.labels) - human - pseudo,
            "selected": len(self.selection),
            "classes": len(self.classes),
            "on_map": len(self.map.item_ids) if self.map is not None else 0,
        }

    def class_counts(self, item_ids: np.ndarray | None = None) -> dict[int, tuple[int, int]]:
        """class id -> (human labels, pseudo-labels), over all items or over ``item_ids``."""
        cls, src = self.labels.class_ids, self.labels.source
        if item_ids is not None:
            pos, found = lookup(self.labels.item_ids, np.asarray(item_ids, np.int64))
            cls, src = cls[pos[found]], src[pos[found]]
        human = np.isin(src, HUMAN_SOURCES)
        pseudo = src == "pseudo"
        out = {}
        for c in self.classes:
            mine = cls == c.id
            out[c.id] = (int((mine & human).sum()), int((mine & pseudo).sum()))
        return out

    # ---- filter -------------------------------------------------------------------------
    def set_filter(self, rule: Filter | None) -> int:
        """Show only what ``rule`` keeps (None or an empty rule: everything). Worked out on a
        worker, latest request wins; ``filterChanged`` fires when ``filtered`` holds the result.
        Returns the request id (0 when applied at once: no filter, or no project)."""
        self._asked = rule if rule is not None and rule.active else None
        if self._asked is None or self.project is None:
            self._filtering.cancel()  # one still running is dropped when it lands (``_filter_done``)
            changed = self.filter is not None or self.filtered is not None
            self.filter, self.filtered = None, None
            if changed:
                self.filterChanged.emit()
            return 0
        project, files, labels, classes, asked = self.project, self._files, self.labels, self.classes, self._asked

        def job(progress, cancel):
            facts = files if files is not None else read_file_facts(project)
            return project, asked, facts, matching_ids(asked, facts, labels, classes)

        return self._filtering.start("filter", job)

    def _filter_done(self, _request: int, _name: str, result) -> None:
        project, rule, files, ids = result
        if project is not self.project or rule is not self._asked:
            return
        self._files = files
        self.filter, self.filtered = rule, ids
        self.filterChanged.emit()

    def _refilter(self, labels_only: bool = False) -> None:
        """Work the asked-for filter out again after the labels, classes, items or map changed
        (class names that no longer exist are dropped from it)."""
        rule = self._asked
        if rule is None or (labels_only and not rule.reads_labels):
            return
        if rule.classes is not None:
            names = {c.name for c in self.classes}
            rule = replace(rule, classes=tuple(n for n in rule.classes if n in names))
        self.set_filter(rule)

    def _forget_filter(self) -> None:
        self._filtering.cancel()
        self.filter = self.filtered = self._asked = self._files = self._filter_rows = None

    @property
    def filtering(self) -> bool:
        """A filter request is being worked out."""
        return self._filtering.busy

    def rows_in_filter(self) -> np.ndarray | None:
        """(N,) bool per map row: kept by the filter; None when there is no filter (or no map)."""
        if self.filtered is None or self.map is None:
            return None
        cached = self._filter_rows
        if cached is None or cached[0] is not self.filtered or cached[1] is not self.map:
            inside = np.zeros(len(self.map.item_ids), bool)
            inside[self.rows_of(self.filtered)] = True
            self._filter_rows = cached = (self.filtered, self.map, inside)
        return cached[2]

    # ---- selection ----------------------------------------------------------------------
    def set_selection(self, item_ids, mode: str = "replace") -> None:
        """``mode``: replace, add, toggle or remove."""
        ids = np.unique(np.asarray(item_ids, np.int64))
        if mode == "add":
            ids = np.union1d(self.selection, ids)
        elif mode == "toggle":
            ids = np.setxor1d(self.selection, ids)
        elif mode == "remove":
            ids = np.setdiff1d(self.selection, ids)
        if np.array_equal(ids, self.selection):
            return
        self.selection = ids
        self.selectionChanged.emit()

    def select_rows(self, rows, mode: str = "replace") -> None:
        self.set_selection(self.ids_of(rows), mode)

    def clear_selection(self) -> None:
        self.set_selection(np.empty(0, np.int64))

    def set_current(self, item_id: int | None) -> None:
        item_id = None if item_id is None or item_id < 0 else int(item_id)
        if item_id == self.current:
            return
        self.current = item_id
        self.currentChanged.emit(-1 if item_id is None else item_id)

    def targets(self) -> np.ndarray:
        """The items a label action applies to: the selection, else the current item."""
        if len(self.selection):
            return self.selection
        if self.current is not None:
            return np.array([self.current], np.int64)
        return np.empty(0, np.int64)

    # ---- label actions (each one undoable event in the store) ---------------------------
    def add_class(self, name: str) -> LabelClass | None:
        if self.project is None:
            self.message.emit("open a folder first")
            return None
        try:
            label = self.project.add_class(name)
        except ProjectError as exc:
            self.message.emit(str(exc))
            return None
        if self._read_again():
            return label
        self._reload_classes()
        self._reload_labels()
        self.classesChanged.emit()
        self.labelsChanged.emit()
        return label

    def label_targets(self, class_id: int | None) -> int:
        """Give the selection (or current item) the human label ``class_id`` (None clears)."""
        ids = self.targets()
        if self.project is None or len(ids) == 0:
            self.message.emit("select images on the map first")
            return 0
        event = self.project.set_labels(ids.tolist(), class_id, source="seed")
        name = self.class_of(class_id).name if class_id is not None and self.class_of(class_id) else "no label"
        return self._after_edit(
            event, f"labelled {len(ids)} image(s) as {name}" if class_id is not None else f"cleared {len(ids)} label(s)"
        )

    def label_with_key(self, key: int) -> int:
        """Number key ``key`` (1-9) labels the targets with the class at that position."""
        if not 1 <= key <= len(self.classes):
            self.message.emit(f"no class on key {key}: add classes in the panel first")
            return 0
        return self.label_targets(self.classes[key - 1].id)

    def accept_targets(self) -> int:
        ids = self.targets()
        if self.project is None or len(ids) == 0:
            self.message.emit("select pseudo-labelled images to accept")
            return 0
        return self._after_edit(
            self.project.accept_pseudo(ids.tolist()),
            "accepted pseudo-label(s)",
            none="nothing to accept: no pseudo-labels in the selection",
        )

    def reject_targets(self) -> int:
        ids = self.targets()
        if self.project is None or len(ids) == 0:
            self.message.emit("select pseudo-labelled images to reject")
            return 0
        return self._after_edit(
            self.project.reject_pseudo(ids.tolist()),
            "rejected pseudo-label(s)",
            none="nothing to reject: no pseudo-labels in the selection",
        )

    def undo(self) -> str | None:
        if self.project is None:
            return None
        action = self.project.undo()
        self._classes_may_have_changed(action)
        self._after_edit(1 if action else None, f"undid: {action}", none="nothing to undo")
        return action

    def redo(self) -> str | None:
        if self.project is None:
            return None
        action = self.project.redo()
        self._classes_may_have_changed(action)
        self._after_edit(1 if action else None, f"redid: {action}", none="nothing to redo")
        return action

    def _classes_may_have_changed(self, action: str | None) -> None:
        # Undoing a class delete or merge brings the class back (and redo removes it again).
        if action and not self.opening and [c.id for c in self.project.classes()] != [c.id for c in self.classes]:
            self._reload_classes()
            self.classesChanged.emit()

    def reload_classes(self, edited: bool = False) -> None:
        """After a class was renamed, recoloured, moved, merged or deleted in the store."""
        if self._read_again():
            return
        self._reload_classes()
        self._reload_labels()
        self.classesChanged.emit()
        self.labelsChanged.emit()
        if edited:
            self.labelsEdited.emit()

    def _after_edit(self, event: int | None, text: str, none: str = "nothing changed") -> int:
        if event is None:
            self.message.emit(none)
            return 0
        if not self._read_again():
            self._reload_labels()
            self.labelsChanged.emit()
        self.labelsEdited.emit()
        self.message.emit(text)
        return 1

    # ---- clusters -----------------------------------------------------------------------
    def reload_clusters(self) -> None:
        """After the clusters of the current map were found again."""
        if self._read_again():
            return
        self._load_clusters()
        self.clustersChanged.emit()

    def cluster_names(self) -> list:
        """``explorer.projection.clusters.ClusterName`` of each cluster, named from the labels now."""
        from explorer.projection.clusters import cluster_names

        if len(self.map_clusters) == 0 or len(self.map_class_index) != len(self.map_clusters):
            return []
        return cluster_names(self.map_clusters, self.map_class_index, [c.name for c in self.classes])

    def cluster_of(self, item_id: int) -> int:
        """The cluster of ``item_id`` on the map, -1 for none."""
        rows = self.rows_of([item_id])
        return int(self.map_clusters[rows[0]]) if len(rows) and len(self.map_clusters) else -1

    def cluster_members(self, cluster: int) -> np.ndarray:
        """Sorted item ids of ``cluster``."""
        if len(self.map_clusters) == 0 or cluster < 0:
            return np.empty(0, np.int64)
        return np.sort(np.asarray(self.map.item_ids, np.int64)[self.map_clusters == cluster])

    def select_cluster(self, cluster: int, mode: str = "replace") -> int:
        members = self.cluster_members(cluster)
        if len(members) == 0:
            self.message.emit("no cluster there: the map has no clusters, or that image is in none")
            return 0
        self.set_selection(members, mode)
        self.message.emit(f"selected cluster {cluster}: {len(members):,} images")
        return len(members)

    def label_cluster(self, cluster: int, class_id: int) -> int:
        """Give ``cluster``'s images that no person labelled the human label ``class_id``, as one
        undoable event (labels people gave stay). Returns how many it labelled."""
        members = self.cluster_members(cluster)
        label = self.class_of(class_id)
        if self.project is None or len(members) == 0 or label is None:
            self.message.emit("no cluster or no class to label it with")
            return 0
        rows = self.rows_of(members)
        todo = members[self.map_source[rows] != HUMAN] if len(self.map_source) == len(self.map_clusters) else members
        action = f"label cluster {cluster} as {label.name} ({len(todo)} images)"
        event = self.project.set_labels(todo.tolist(), class_id, "seed", action=action) if len(todo) else None
        self._after_edit(event, f"labelled {len(todo):,} image(s) of cluster {cluster} as {label.name}")
        return len(todo) if event is not None else 0

    def history(self, limit: int = 1) -> list[tuple[int, float, str, bool]]:
        return self.project.history(limit) if self.project is not None else []
