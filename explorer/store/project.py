"""The project: one SQLite database (WAL) plus array files, in ``ROOT/.explorer/`` by default.

Everything a person did is here; the GUI and the CLI both read and write through this class.
Each label action is one transaction and one undoable event.

Arrays belong to runs: each run writes its own folder ``runs/ID/`` and becomes current when
the database marks it done, so a crash mid-write never leaves a half-new result in use.
  embed run: ``item_ids`` (N,) int64, ``embeddings`` (N, D) float32 with L2-normalised rows;
  map run:   ``item_ids`` (N,), ``xy`` (N, 2) float32, ``knn_indices`` (N, k+1) int64 row
             positions with column 0 the row itself (-1 = none), ``knn_similarities`` (N, k+1)
             float32 cosine;
  train run: ``checkpoint.pt`` (see ``explorer.ssl``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.store.arrays import load_array, save_array
from explorer.store.schema import SCHEMA, SCHEMA_VERSION

HUMAN_SOURCES = ("seed", "accepted", "imported")

# Colour-blind-friendly first (Okabe-Ito), then Tableau 20 for many classes.
PALETTE = (
    "#e69f00 #56b4e9 #009e73 #f0e442 #0072b2 #d55e00 #cc79a7 #000000 "
    "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf "
    "#aec7e8 #ffbb78 #98df8a #ff9896 #c5b0d5 #c49c94 #f7b6d2 #c7c7c7 #dbdb8d #9edae5"
).split()


class ProjectError(Exception):
    """A problem with the project a person can act on (the message says what)."""


@dataclass(frozen=True)
class Item:
    id: int
    path: str
    bytes: int
    mtime_ns: int
    width: int | None
    height: int | None
    mode: str | None
    error: str | None

    @property
    def readable(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ScannedFile:
    """What a scan learned about one file (see ``explorer.images.scan``)."""

    path: str
    bytes: int
    mtime_ns: int
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class LabelClass:
    id: int
    name: str
    colour: str
    position: int


@dataclass(frozen=True)
class Run:
    id: int
    kind: str
    params: dict
    metrics: dict
    status: str
    started: float
    finished: float | None


@dataclass
class LabelTable:
    """Every present, readable item's label state, as arrays aligned with ``item_ids``.

    ``class_ids`` is -1 where unlabelled; ``source`` is '' then. Human labels win over
    pseudo-labels; a pseudo-label whose class the item has rejected is dropped.
    ``confidence`` is 1 for human labels, the propagation confidence for pseudo, NaN otherwise.
    """

    item_ids: np.ndarray  # (N,) int64
    class_ids: np.ndarray  # (N,) int64
    source: np.ndarray  # (N,) object: '', 'seed', 'accepted', 'imported', 'pseudo'
    confidence: np.ndarray  # (N,) float64

    def __len__(self) -> int:
        return len(self.item_ids)


class Project:
    """An image collection at ``root`` with its state in ``state_dir``."""

    def __init__(self, root: str | Path, state_dir: str | Path | None = None, create: bool = True):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise ProjectError(f"image folder not found: {self.root}")
        self.state_dir = Path(state_dir).expanduser().resolve() if state_dir else self.root / ".explorer"
        db_path = self.state_dir / "project.sqlite"
        if not create and not db_path.exists():
            raise ProjectError(f"no project in {self.state_dir}: run `explorer scan {self.root}` first")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "arrays").mkdir(exist_ok=True)
        self.db_path = db_path
        # check_same_thread=False: the GUI reads on the main thread and jobs write from workers;
        # a lock-free sqlite3 connection is safe when calls do not overlap, so we serialise.
        self._db = sqlite3.connect(db_path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self._lock = threading.RLock()

    # ---- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _query(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    class _Transaction:
        def __init__(self, project: Project):
            self.project = project

        def __enter__(self) -> sqlite3.Connection:
            self.project._lock.acquire()
            self.project._db.execute("BEGIN IMMEDIATE")
            return self.project._db

        def __exit__(self, exc_type, *_) -> None:
            try:
                self.project._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.project._lock.release()

    def transaction(self) -> _Transaction:
        """``with project.transaction() as db:`` runs its statements atomically."""
        return Project._Transaction(self)

    # ---- items ----------------------------------------------------------------------------
    def known_files(self) -> dict[str, tuple[int, int, int, bool]]:
        """path -> (item id, bytes, mtime_ns, readable) for every present item, for rescans."""
        rows = self._query("SELECT path, id, bytes, mtime_ns, error IS NULL FROM items WHERE present = 1")
        return {p: (i, b, m, bool(r)) for p, i, b, m, r in rows}

    def record_scan(self, scanned: Iterable[ScannedFile], gone: Iterable[str]) -> None:
        """Insert or update scanned files and mark ``gone`` paths missing, in one transaction."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO items(path, bytes, mtime_ns, width, height, mode, error, present) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT(path) DO UPDATE SET bytes=excluded.bytes, "
                "mtime_ns=excluded.mtime_ns, width=excluded.width, height=excluded.height, "
                "mode=excluded.mode, error=excluded.error, present=1",
                [(f.path, f.bytes, f.mtime_ns, f.width, f.height, f.mode, f.error) for f in scanned],
            )
            db.executemany("UPDATE items SET present = 0 WHERE path = ?", [(p,) for p in gone])

    def mark_unreadable(self, item_id: int, error: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE items SET error = ? WHERE id = ?", (error, item_id))

    def items(self, readable_only: bool = True) -> list[Item]:
        """Present items ordered by id (the order of every array the project saves)."""
        where = "present = 1" + (" AND error IS NULL" if readable_only else "")
        rows = self._query(
            f"SELECT id, path, bytes, mtime_ns, width, height, mode, error FROM items WHERE {where} ORDER BY id"
        )
        return [Item(*r) for r in rows]

    def unreadable(self) -> list[Item]:
        rows = self._query(
            "SELECT id, path, bytes, mtime_ns, width, height, mode, error FROM items "
            "WHERE present = 1 AND error IS NOT NULL ORDER BY path"
        )
        return [Item(*r) for r in rows]

    def item_ids(self) -> np.ndarray:
        """(N,) int64 ids of present, readable items, ascending."""
        rows = self._query("SELECT id FROM items WHERE present = 1 AND error IS NULL ORDER BY id")
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def paths_by_id(self) -> dict[int, str]:
        return dict(self._query("SELECT id, path FROM items"))

    def item_by_path(self, path: str) -> Item | None:
        rows = self._query(
            "SELECT id, path, bytes, mtime_ns, width, height, mode, error FROM items WHERE path = ?", (path,)
        )
        return Item(*rows[0]) if rows else None

    def absolute_path(self, item: Item | str) -> Path:
        return self.root / (item.path if isinstance(item, Item) else item)

    # ---- classes --------------------------------------------------------------------------
    def classes(self) -> list[LabelClass]:
        return [
            LabelClass(*r) for r in self._query("SELECT id, name, colour, position FROM classes ORDER BY position, id")
        ]

    def class_by_name(self, name: str) -> LabelClass | None:
        rows = self._query("SELECT id, name, colour, position FROM classes WHERE name = ?", (name,))
        return LabelClass(*rows[0]) if rows else None

    def add_class(self, name: str, colour: str | None = None) -> LabelClass:
        """A new class, or the existing one of that name."""
        name = name.strip()
        if not name:
            raise ProjectError("a class needs a name")
        existing = self.class_by_name(name)
        if existing:
            return existing
        with self.transaction() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM classes").fetchone()
            colour = colour or PALETTE[count % len(PALETTE)]
            cur = db.execute("INSERT INTO classes(name, colour, position) VALUES (?, ?, ?)", (name, colour, count))
            return LabelClass(cur.lastrowid, name, colour, count)

    def ensure_classes(self, names: Iterable[str]) -> dict[str, int]:
        """name -> class id, adding the missing classes (sorted by name for stable colours)."""
        return {n: self.add_class(n).id for n in sorted(set(names))}

    # ---- human labels, with undo ----------------------------------------------------------
    def _human_labels_of(self, db: sqlite3.Connection, item_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        out: dict[int, tuple[int, str]] = {}
        for chunk in _chunks(item_ids, 900):
            marks = ",".join("?" * len(chunk))
            for i, c, s in db.execute(
                f"SELECT item_id, class_id, source FROM labels WHERE item_id IN ({marks})", chunk
            ):
                out[i] = (c, s)
        return out

    def _new_event(self, db: sqlite3.Connection, action: str) -> int:
        # A new action makes the undone ones unreachable: drop them, as every editor does.
        db.execute("DELETE FROM events WHERE undone = 1")
        return db.execute("INSERT INTO events(at, action) VALUES (?, ?)", (time.time(), action)).lastrowid

    def set_labels(
        self, item_ids: Sequence[int], class_id: int | None, source: str = "seed", action: str | None = None
    ) -> int | None:
        """Give ``item_ids`` the human label ``class_id`` (None clears it) as one undoable event.

        Returns the event id, or None when nothing changed.
        """
        item_ids = [int(i) for i in dict.fromkeys(item_ids)]
        if class_id is not None:
            return self.set_labels_many(
                {i: (class_id, source) for i in item_ids}, action or f"{source} {len(item_ids)} item(s)"
            )
        with self.transaction() as db:
            before = self._human_labels_of(db, item_ids)
            changes = [(i, "label", c, s, None, None) for i, (c, s) in before.items()]
            if not changes:
                return None
            event = self._new_event(db, action or f"clear {len(changes)} label(s)")
            self._record(db, event, changes)
            return event

    def set_labels_many(self, assignments: dict[int, tuple[int, str]], action: str) -> int | None:
        """Many items, each with its own (class id, source), as one undoable event (an import,
        a bulk accept). Returns the event id, or None when nothing changed."""
        bad = {source for _, source in assignments.values()} - set(HUMAN_SOURCES)
        if bad:
            raise ProjectError(f"unknown label source(s) {sorted(bad)}; expected {', '.join(HUMAN_SOURCES)}")
        with self.transaction() as db:
            ids = [int(i) for i in assignments]
            before = self._human_labels_of(db, ids)
            changes = []
            for i in ids:
                old = before.get(i, (None, None))
                cls, source = assignments[i]
                new = (int(cls), source)
                if old != new:
                    changes.append((i, "label", old[0], old[1], new[0], new[1]))
            if not changes:
                return None
            event = self._new_event(db, action)
            self._record(db, event, changes)
            return event

    def accept_pseudo(self, item_ids: Sequence[int]) -> int | None:
        """Turn the current pseudo-labels of ``item_ids`` into ``accepted`` human labels."""
        table = self.label_table()
        pos = {int(i): k for k, i in enumerate(table.item_ids)}
        chosen = {}
        for i in item_ids:
            k = pos.get(int(i))
            if k is not None and table.source[k] == "pseudo":
                chosen[int(i)] = (int(table.class_ids[k]), "accepted")
        if not chosen:
            return None
        return self.set_labels_many(chosen, f"accept {len(chosen)} pseudo-label(s)")

    def reject_pseudo(self, item_ids: Sequence[int]) -> int | None:
        """Record "not this class" for the current pseudo-labels of ``item_ids``."""
        table = self.label_table()
        pos = {int(i): k for k, i in enumerate(table.item_ids)}
        changes = []
        for i in dict.fromkeys(int(i) for i in item_ids):
            k = pos.get(i)
            if k is not None and table.source[k] == "pseudo":
                changes.append((i, "rejection", None, None, int(table.class_ids[k]), None))
        if not changes:
            return None
        with self.transaction() as db:
            event = self._new_event(db, f"reject {len(changes)} pseudo-label(s)")
            self._record(db, event, changes)
            return event

    def _record(self, db: sqlite3.Connection, event: int, changes: Sequence[tuple]) -> None:
        """Apply ``changes`` and keep them under ``event`` for undo."""
        self._apply(db, changes)
        db.executemany(
            "INSERT INTO event_changes(event_id, item_id, kind, old_class, old_source, new_class, new_source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(event, *c) for c in changes],
        )

    @staticmethod
    def _apply(db: sqlite3.Connection, changes: Sequence[tuple], reverse: bool = False) -> None:
        now = time.time()
        for item, kind, oc, os_, nc, ns in changes:
            if reverse:
                oc, os_, nc, ns = nc, ns, oc, os_
            if kind == "label":
                if nc is None:
                    db.execute("DELETE FROM labels WHERE item_id = ?", (item,))
                else:
                    db.execute(
                        "INSERT INTO labels(item_id, class_id, source, set_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(item_id) DO UPDATE SET class_id=excluded.class_id, "
                        "source=excluded.source, set_at=excluded.set_at",
                        (item, nc, ns, now),
                    )
            else:  # rejection added (old None -> new C) or removed (reverse)
                if nc is not None:
                    db.execute("INSERT OR IGNORE INTO rejections(item_id, class_id) VALUES (?, ?)", (item, nc))
                else:
                    db.execute("DELETE FROM rejections WHERE item_id = ? AND class_id = ?", (item, oc))

    def undo(self) -> str | None:
        """Undo the latest action; returns its description, or None when there is nothing to undo."""
        return self._step(undo=True)

    def redo(self) -> str | None:
        """Redo the earliest undone action; returns its description or None."""
        return self._step(undo=False)

    def _step(self, undo: bool) -> str | None:
        with self.transaction() as db:
            if undo:
                row = db.execute("SELECT id, action FROM events WHERE undone = 0 ORDER BY id DESC LIMIT 1").fetchone()
            else:
                row = db.execute("SELECT id, action FROM events WHERE undone = 1 ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            event, action = row
            changes = db.execute(
                "SELECT item_id, kind, old_class, old_source, new_class, new_source FROM event_changes "
                "WHERE event_id = ? ORDER BY rowid",
                (event,),
            ).fetchall()
            self._apply(db, changes[::-1] if undo else changes, reverse=undo)
            db.execute("UPDATE events SET undone = ? WHERE id = ?", (1 if undo else 0, event))
            return action

    def history(self, limit: int = 50) -> list[tuple[int, float, str, bool]]:
        """Latest actions first: (event id, unix time, description, undone)."""
        return [
            (i, a, s, bool(u))
            for i, a, s, u in self._query(
                "SELECT id, at, action, undone FROM events ORDER BY id DESC LIMIT ?", (limit,)
            )
        ]

    # ---- reading labels -------------------------------------------------------------------
    def human_labels(self) -> dict[int, tuple[int, str]]:
        """item id -> (class id, source) for every human label."""
        return {i: (c, s) for i, c, s in self._query("SELECT item_id, class_id, source FROM labels")}

    def rejections(self) -> list[tuple[int, int]]:
        """(item id, class id) pairs a person said "not this class" to."""
        return [(i, c) for i, c in self._query("SELECT item_id, class_id FROM rejections")]

    def save_pseudo_labels(self, item_ids: np.ndarray, class_ids: np.ndarray, confidence: np.ndarray) -> None:
        """Replace all pseudo-labels with a propagation result (arrays aligned, class -1 = none)."""
        keep = np.asarray(class_ids) >= 0
        rows = zip(
            np.asarray(item_ids)[keep].tolist(),
            np.asarray(class_ids)[keep].tolist(),
            np.asarray(confidence, dtype=np.float64)[keep].tolist(),
        )
        with self.transaction() as db:
            db.execute("DELETE FROM pseudo_labels")
            db.executemany("INSERT INTO pseudo_labels(item_id, class_id, confidence) VALUES (?, ?, ?)", rows)

    def label_table(self) -> LabelTable:
        """The label of every present, readable item (see ``LabelTable``), built with array ops."""
        with self._lock:
            ids = self.item_ids()
            human = np.array(
                self._db.execute("SELECT item_id, class_id, source FROM labels").fetchall(), dtype=object
            ).reshape(-1, 3)
            pseudo = np.array(
                self._db.execute("SELECT item_id, class_id, confidence FROM pseudo_labels").fetchall()
            ).reshape(-1, 3)
            rejected = np.array(
                self._db.execute("SELECT item_id, class_id FROM rejections").fetchall(), np.int64
            ).reshape(-1, 2)
        n = len(ids)
        cls = np.full(n, -1, np.int64)
        src = np.full(n, "", dtype=object)
        conf = np.full(n, np.nan)
        if len(pseudo):
            p_items, p_cls = pseudo[:, 0].astype(np.int64), pseudo[:, 1].astype(np.int64)
            keep = ~np.isin(_pair_keys(p_items, p_cls), _pair_keys(rejected[:, 0], rejected[:, 1]))
            rows, found = _rows_of(ids, p_items[keep])
            cls[rows], src[rows], conf[rows] = p_cls[keep][found], "pseudo", pseudo[keep][found, 2]
        if len(human):
            rows, found = _rows_of(ids, human[:, 0].astype(np.int64))
            cls[rows], src[rows], conf[rows] = human[found, 1].astype(np.int64), human[found, 2], 1.0
        return LabelTable(ids, cls, src, conf)

    def label_counts(self) -> dict[str, int]:
        """How many items have each source of label ('' = unlabelled)."""
        table = self.label_table()
        values, counts = np.unique(table.source.astype(str), return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts)}

    # ---- runs -----------------------------------------------------------------------------
    def start_run(self, kind: str, params: dict) -> int:
        with self.transaction() as db:
            return db.execute(
                "INSERT INTO runs(kind, params, started) VALUES (?, ?, ?)", (kind, json.dumps(params), time.time())
            ).lastrowid

    def finish_run(self, run_id: int, status: str, metrics: dict | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, metrics = ?, finished = ? WHERE id = ?",
                (status, json.dumps(metrics or {}), time.time(), run_id),
            )

    def update_run_metrics(self, run_id: int, metrics: dict) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET metrics = ? WHERE id = ?", (json.dumps(metrics), run_id))

    def runs(self, kind: str | None = None) -> list[Run]:
        sql = "SELECT id, kind, params, metrics, status, started, finished FROM runs"
        args: tuple = ()
        if kind:
            sql += " WHERE kind = ?"
            args = (kind,)
        return [
            Run(i, k, json.loads(p), json.loads(m), s, st, f)
            for i, k, p, m, s, st, f in self._query(sql + " ORDER BY id", args)
        ]

    def run(self, run_id: int) -> Run | None:
        found = [r for r in self.runs() if r.id == run_id]
        return found[0] if found else None

    def run_dir(self, run_id: int) -> Path:
        path = self.state_dir / "runs" / str(run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ---- run results (arrays) -------------------------------------------------------------
    def save_run_arrays(self, run_id: int, **arrays: np.ndarray) -> None:
        """Save a run's arrays atomically into its folder; they count once the run is 'done'."""
        folder = self.run_dir(run_id)
        for name, array in arrays.items():
            save_array(folder / f"{name}.npy", array)

    def load_run_array(self, run_id: int, name: str, mmap: bool = False) -> np.ndarray | None:
        return load_array(self.state_dir / "runs" / str(run_id) / f"{name}.npy", mmap=mmap)

    def latest_run(self, kind: str) -> Run | None:
        """The newest finished run of ``kind`` ('train', 'embed', 'map', ...), or None."""
        done = [r for r in self.runs(kind) if r.status == "done"]
        return done[-1] if done else None


def _pair_keys(items: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return (np.asarray(items, np.int64) << 32) | np.asarray(classes, np.int64)


def _rows_of(sorted_ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row positions in ``sorted_ids``, mask over ``wanted``) for the wanted ids that are present."""
    rows = np.searchsorted(sorted_ids, wanted)
    rows = np.minimum(rows, max(len(sorted_ids) - 1, 0))
    found = (sorted_ids[rows] == wanted) if len(sorted_ids) else np.zeros(len(wanted), bool)
    return rows[found], found


def _chunks(seq: Sequence, size: int):
    for start in range(0, len(seq), size):
        yield list(seq[start : start + size])
