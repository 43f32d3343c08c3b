"""The session model: the one object the views read from and act through.

It holds the open ``Project`` (the source of truth), the current map, the label table with its
counts (``state``, ``explorer.gui.label_state``), the selection and the current item. Every label
action goes to the store first, then the model reads back what changed and emits a signal; views
listen and never talk to each other.

Reading back (``_update``) runs on a worker, latest request wins, the way opening does: after a
label action the labels (and classes), after a propagation its pseudo-labels merged into the
table, after a scan or a build every table; the worker also lines the labels up with the map and
counts them, so the GUI thread only takes the result. Work on a small project (under
``JobRunner.inline_below`` items) runs at once instead: its result is there when the call returns.
A landing emits its signals inside ``batch()``: slots made with ``coalesced`` run once per landing.

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

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from explorer.gui.cluster_shapes import ClusterShapes, cluster_shapes
from explorer.gui.jobs import JobRunner
from explorer.gui.label_state import HUMAN, NONE, PSEUDO, class_counts, empty_state, name_clusters
from explorer.gui.tables import MapOrder, ProjectTables, read_labels, read_tables, with_pseudo_labels
from explorer.store import LabelClass, LabelTable, Project, ProjectError
from explorer.store.filters import FileFacts, Filter, matching_ids, read_file_facts
from explorer.store.ids import lookup

__all__ = ["HUMAN", "NONE", "PSEUDO", "ItemInfo", "Session"]  # the label codes, for the views

# What ``Session._update`` reads again, each including the ones before it.
MERGE, LABELS, TABLES = 1, 2, 3
NO_CLUSTERS: ClusterShapes = cluster_shapes(np.empty((0, 2)), np.empty(0, np.int32))


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
        self.state = empty_state()  # the labels and their counts (``explorer.gui.label_state``)
        self.classes: list[LabelClass] = []
        self.selection = np.empty(0, np.int64)  # sorted unique item ids
        self.current: int | None = None
        self._paths: dict[int, str] = {}
        self.recorded = 0  # items the project has recorded, readable or not (0: never scanned)
        self.map_clusters = np.empty(0, np.int32)  # (N,) cluster per map row, -1 none; empty: not found
        self.map_cluster_shapes = NO_CLUSTERS  # where they are drawn, worked out with them
        self._map_order = MapOrder.of(None)  # map.item_ids sorted, for ids -> rows
        self.map_index = None  # a PointIndex over map.xy built on the worker; None: not built
        self.map_bounds: tuple | None = None  # ((2,) lowest, (2,) highest) of map.xy, from the worker
        # The filter: the rule asked for, and (once worked out) the rule shown and what it keeps.
        self.filter: Filter | None = None
        self.filtered: np.ndarray | None = None  # sorted item ids; None = no filter
        self._asked: Filter | None = None
        self._files: FileFacts | None = None  # read on the worker once, kept until a scan
        self._filter_rows: tuple | None = None  # (filtered, map, (N,) bool) cache
        self._filtering = JobRunner(latest_wins=True, parent=self)
        self._filtering.finished.connect(self._filter_done)
        self._filtering.failed.connect(lambda _r, _n, text: self.message.emit(f"filter: {text}"))
        # The store read again (opening, after a scan or label action), latest request wins
        # (``reading.progress`` says how far); ``_update``.
        self.reading = JobRunner(latest_wins=True, parent=self)
        self.reading.finished.connect(self._updated)
        self.reading.failed.connect(self._update_failed)
        self.reading.cancelled.connect(self._update_failed)
        self._opening = 0  # the request reading the tables of the project being opened; 0: none
        self._pending = (0, False)  # (level, edited) of the request in flight
        self._batching = 0
        self._due: dict[Callable[[], None], None] = {}  # coalesced slots to run when the batch ends
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
        self._opening = -1  # the request below is the opening one
        request = self._update(TABLES)  # lands on this thread, after the signals below
        with self.batch():
            self._emit_all()  # an empty project until the tables land
        return request

    @property
    def opening(self) -> bool:
        """A project is open but its tables are still being read."""
        return self._opening != 0

    @property
    def busy(self) -> bool:
        """The store is being read again (the views show the state before until it lands)."""
        return self.reading.busy

    def _update(self, level: int, edited: bool = False, pseudo: tuple | None = None) -> int:
        """Catch up with the store, latest request wins: ``TABLES`` reads everything again (items,
        classes, map, labels), ``LABELS`` the classes and labels, ``MERGE`` puts ``pseudo`` (a
        saved propagation's item ids, class ids, confidence) into the labels in memory. On a worker
        (at once for a small project); a request replaces the one in flight, so it reads what that
        one would have. ``edited``: a person changed labels (``labelsEdited`` follows the landing).
        Returns the request id (0: no project)."""
        project = self.project
        if project is None:
            return 0
        if self.reading.busy:
            level, edited = max(level, self._pending[0]), edited or self._pending[1]
        opening = self._opening != 0
        level = TABLES if opening else level
        self._pending = (level, edited)
        graph_map, classes, clusters, base = self.map, self.classes, self.map_clusters, self.state
        if level == TABLES:
            size = None if opening else max(len(base.labels), self.recorded)
            if size is not None and size < self.reading.inline_below:  # a first scan may have found many
                size = max(size, project.item_count(readable_only=False))
            name = "open" if opening else "reload"

            def job(progress, cancel):
                return read_tables(project, progress=progress, cancel=cancel)

        elif level == LABELS:
            size, name = len(base.labels), "labels"

            def job(progress, cancel):
                return read_labels(project, graph_map, clusters)

        else:
            size, name = len(base.labels), "labels"

            def job(progress, cancel):
                return with_pseudo_labels(project, base, pseudo, graph_map, classes, clusters)

        request = self.reading.start(name, job, size=size)
        if opening:
            self._opening = request
        return request

    def _updated(self, request: int, _name: str, result) -> None:
        if result.project is not self.project:
            return  # a project opened (or closed) since
        opened, self._opening = request == self._opening, 0
        edited, self._pending = self._pending[1], (0, False)
        with self.batch():
            if isinstance(result, ProjectTables):
                self._take_tables(result, opened)
            else:
                classes_changed = result.classes != self.classes
                self.classes = result.classes
                self.state = result.state
                if classes_changed:
                    self.classesChanged.emit()
                self.labelsChanged.emit()
            if edited:
                self.labelsEdited.emit()
        if opened:
            self.projectOpened.emit()

    def _take_tables(self, tables: ProjectTables, opened: bool) -> None:
        old = self.map
        new_map = (
            opened or (old is None) != (tables.map is None) or (old is not None and old.run_id != tables.map.run_id)
        )
        classes_changed = tables.classes != self.classes
        self._paths, self.recorded, self.classes = tables.paths, tables.recorded, tables.classes
        if new_map:  # else the map shown stays (same run: same rows), and nothing is redrawn
            self.map, self._map_order, self.map_index = tables.map, tables.map_order, tables.map_index
            self.map_bounds = tables.map_bounds
        clusters_changed = not new_map and not np.array_equal(tables.clusters, self.map_clusters)
        self.map_clusters, self.map_cluster_shapes = tables.clusters, tables.cluster_shapes
        self.state = tables.state
        if opened:
            self._emit_all()
            return
        self._files = None  # a scan (a build scans first) may have changed the files
        if new_map and self.map is not None:
            self.selection = self.selection[np.isin(self.selection, self.map.item_ids)]
        self.itemsChanged.emit()
        if classes_changed:
            self.classesChanged.emit()
        if new_map:
            self.mapChanged.emit()
        elif clusters_changed:
            self.clustersChanged.emit()
        self.labelsChanged.emit()
        if new_map:
            self.selectionChanged.emit()
            self.currentChanged.emit(self.current if self.current is not None else -1)

    def _update_failed(self, request: int, _name: str, text: str = "cancelled") -> None:
        self._pending = (0, False)
        if request == self._opening:
            root = self.project.root if self.project is not None else ""
            self.close_project()
            self.openFailed.emit(f"Cannot open {root}: {text}")
        elif text != "cancelled":
            self.message.emit(f"reading the project failed: {text}")

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
        if self.reading.busy:
            self.reading.cancel()  # it lands as stale: ``_updated`` drops it
        self._opening, self._pending = 0, (0, False)
        if self.project is not None:
            self.project.close()
        self.project = None
        self.map = None
        self._map_order, self.map_index, self.map_bounds = MapOrder.of(None), None, None
        self.map_clusters, self.map_cluster_shapes = np.empty(0, np.int32), NO_CLUSTERS
        self._paths = {}
        self.recorded = 0
        self.classes = []
        self.state = empty_state()
        self.selection = np.empty(0, np.int64)
        self.current = None
        self._forget_filter()
        if emit:
            with self.batch():
                self.filterChanged.emit()
                self.projectChanged.emit()
                self.mapChanged.emit()
                self.labelsChanged.emit()
                self.selectionChanged.emit()
                self.currentChanged.emit(-1)

    def reload_items(self) -> None:
        """After a scan: new paths, new counts (read on a worker: ``TABLES``)."""
        self._update(TABLES)

    def reload_map(self) -> None:
        """After a map run finished: show the newest map (read on a worker: ``TABLES``)."""
        self._update(TABLES)

    def reload_labels(self, edited: bool = False) -> None:
        """Re-read the label table (after any outside change); ``edited``: by a person."""
        self._update(LABELS, edited)

    def apply_pseudo_labels(self, item_ids: np.ndarray, class_ids: np.ndarray, confidence: np.ndarray) -> None:
        """New pseudo-labels (already saved to the store) into the label table in memory, on a
        worker: the same table the store would give back, without reading 1M rows again after
        every propagation. Human labels win; rejected (item, class) pairs are left out."""
        self._update(MERGE, pseudo=(item_ids, class_ids, confidence))

    # The label state and its map-aligned arrays, (N,) per map row: read from ``state``.
    @property
    def labels(self) -> LabelTable:
        return self.state.labels

    @property
    def map_class_index(self) -> np.ndarray:
        """Position in ``classes``, -1 none."""
        return self.state.aligned.class_index

    @property
    def map_source(self) -> np.ndarray:
        """NONE / HUMAN / PSEUDO."""
        return self.state.aligned.source

    @property
    def map_confidence(self) -> np.ndarray:
        return self.state.aligned.confidence

    # ---- batches: one landing emits several signals, each view refreshes once ---------------
    @contextmanager
    def batch(self):
        """Signals emitted inside run the ``coalesced`` slots once, when the outermost batch ends."""
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1
            while not self._batching and self._due:
                due, self._due = self._due, {}
                for fn in due:
                    fn()

    def coalesced(self, fn: Callable[[], None]) -> Callable[..., None]:
        """A slot for any of the session's signals: ``fn()`` at once, or once at the end of the
        batch they fire in."""

        def slot(*_args) -> None:
            if self._batching:
                self._due[fn] = None  # a dict: ordered, once each
            else:
                fn()

        return slot

    # ---- lookups ------------------------------------------------------------------------
    def rows_of(self, item_ids) -> np.ndarray:
        """Map row positions of ``item_ids`` (ids not on the map are left out)."""
        return self._map_order.rows_of(item_ids)

    @property
    def map_order(self) -> MapOrder:
        """The map's ids sorted (``rows_of`` without the session, for a worker)."""
        return self._map_order

    def ids_of(self, rows) -> np.ndarray:
        if self.map is None:
            return np.empty(0, np.int64)
        return np.asarray(self.map.item_ids, np.int64)[np.atleast_1d(np.asarray(rows, np.int64))]

    @property
    def paths(self) -> dict[int, str]:
        """item id -> path relative to the root (replaced, never changed in place: workers may read it)."""
        return self._paths

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
        state = self.state
        return {
            "items": len(state.labels),
            "human": state.human,
            "pseudo": state.pseudo,
            "unlabelled": len(state.labels) - state.human - state.pseudo,
            "selected": len(self.selection),
            "classes": len(self.classes),
            "on_map": len(self.map.item_ids) if self.map is not None else 0,
        }

    def class_counts(self, item_ids: np.ndarray | None = None) -> dict[int, tuple[int, int]]:
        """class id -> (human labels, pseudo-labels), over all items or over ``item_ids``."""
        if item_ids is None:
            return self.state.class_counts
        table = self.labels
        pos, found = lookup(table.item_ids, np.asarray(item_ids, np.int64))
        return class_counts(table.class_ids[pos[found]], self.state.kinds[pos[found]], self.classes)

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
        graph_map, order = self.map, self._map_order

        def job(progress, cancel):
            facts = files if files is not None else read_file_facts(project)
            ids = matching_ids(asked, facts, labels, classes)
            return project, asked, facts, ids, (ids, graph_map, order.kept(ids))  # the map rows too, here

        return self._filtering.start("filter", job)

    def _filter_done(self, _request: int, _name: str, result) -> None:
        project, rule, files, ids, rows = result
        if project is not self.project or rule is not self._asked:
            return
        self._files = files
        self.filter, self.filtered, self._filter_rows = rule, ids, rows
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
            self._filter_rows = cached = (self.filtered, self.map, self._map_order.kept(self.filtered))
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
        self._update(LABELS)
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
        action = self.project.undo()  # undoing a class merge or delete brings the class back: LABELS reads it
        self._after_edit(1 if action else None, f"undid: {action}", none="nothing to undo")
        return action

    def redo(self) -> str | None:
        if self.project is None:
            return None
        action = self.project.redo()
        self._after_edit(1 if action else None, f"redid: {action}", none="nothing to redo")
        return action

    def reload_classes(self, edited: bool = False) -> None:
        """After a class was renamed, recoloured, moved, merged or deleted in the store."""
        self._update(LABELS, edited)

    def _after_edit(self, event: int | None, text: str, none: str = "nothing changed") -> int:
        if event is None:
            self.message.emit(none)
            return 0
        self._update(LABELS, edited=True)  # ``labelsEdited`` fires when the labels landed
        self.message.emit(text)
        return 1

    # ---- clusters -----------------------------------------------------------------------
    def reload_clusters(self) -> None:
        """After the clusters of the current map were found again: read with the tables (on a
        worker: where they are drawn is worked out there too), ``clustersChanged`` when they land."""
        self._update(TABLES)

    def cluster_names(self) -> list:
        """``explorer.projection.clusters.ClusterName`` of each cluster, named from the labels now
        (on the worker that counted the labels, unless the clusters were found again since)."""
        state = self.state
        if state.clusters is not self.map_clusters:
            names = name_clusters(self.map_clusters, state.aligned, self.classes)
            self.state = state = replace(state, clusters=self.map_clusters, cluster_names=names)
        return state.cluster_names

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
