"""The project: one SQLite database (WAL) plus array files, in ``ROOT/.explorer/`` by default.

Everything a person did is here; the GUI and the CLI both read and write through this class.
Each label action is one transaction and one undoable event.

Arrays belong to runs: each run writes its own folder ``runs/ID/`` and becomes current when
the database marks it done, so a crash mid-write never leaves a half-new result in use.
  embed run: ``item_ids`` (N,) int64, ``embeddings`` (N, D) float32 or float16 with L2-normalised
             rows, ``file_stamps`` (N, 2) int64 (written row by row: ``explorer.store.embedding_file``);
  map run:   ``item_ids`` (N,), ``xy`` (N, 2) float32, ``knn_indices`` (N, k+1) int64 row
             positions with column 0 the row itself (-1 = none), ``knn_similarities`` (N, k+1)
             float32 cosine;
  train run: ``checkpoint.pt`` (see ``explorer.ssl``).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.store.arrays import load_array, save_array
from explorer.store.ids import lookup, pair_keys
from explorer.store.schema import SCHEMA, SCHEMA_VERSION

HUMAN_SOURCES = ("seed", "accepted", "imported")

# How long a write waits for another process (a second window, a CLI command) to finish its own.
# Every write is one short transaction, so two processes can share a project safely.
BUSY_TIMEOUT_S = 30

# Colour-blind-friendly first (Okabe-Ito), then Tableau 20 for many classes, reordered so that
# the first twelve stay far apart (Tableau's blue and orange are next to Okabe-Ito's: a 10-class
# collection once got two classes in the same blue).
PALETTE = (
    "#e69f00 #56b4e9 #009e73 #f0e442 #0072b2 #d55e00 #cc79a7 #000000 #9467bd #8c564b #ff9896 #98df8a "
    "#d62728 #17becf #bcbd22 #1f77b4 #ff7f0e #2ca02c #e377c2 #7f7f7f "
    "#aec7e8 #ffbb78 #c5b0d5 #c49c94 #f7b6d2 #c7c7c7 #dbdb8d #9edae5"
).split()


class ProjectError(Exception):
    """A problem with the project a person can act on (the message says what)."""


class StateNotWritable(ProjectError):
    """The project's state folder cannot be created or written (a read-only image folder)."""


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
class ClassUsage:
    """What a merge or a delete of ``label`` would touch, for the confirmation shown first."""

    label: LabelClass
    human: dict[str, int]  # source (seed, accepted, imported) -> human labels of the class
    pseudo: int  # pseudo-labels of the class shown now (no human label, not rejected)
    rejections: int  # items a person said "not this class" to

    @property
    def human_total(self) -> int:
        return sum(self.human.values())


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
    paths: list[str] | None = None  # N paths when asked for (``label_table(paths=True)``)

    def __len__(self) -> int:
        return len(self.item_ids)


@dataclass
class FileTable:
    """Present, readable items as arrays aligned by row, ordered by id (no object per item).

    ``stamps`` (N, 2) int64 is each file's size in bytes and modification time in ns as the
    last scan recorded them: a file whose stamp is unchanged is taken to be unchanged.
    """

    item_ids: np.ndarray  # (N,) int64
    paths: list[str]  # N paths relative to the collection root
    stamps: np.ndarray  # (N, 2) int64: bytes, mtime_ns

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
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            (self.state_dir / "arrays").mkdir(exist_ok=True)
        except OSError as exc:  # a read-only folder (a DVD, a shared drive, someone else's files)
            where = "--state DIR (the window asks for one)" if not state_dir else "another --state DIR"
            raise StateNotWritable(
                f"cannot keep this project's state in {self.state_dir} ({exc.strerror or exc}): the images stay "
                f"where they are; choose a folder you can write to with {where}"
            ) from None
        self.db_path = db_path
        # check_same_thread=False: the GUI reads on the main thread and jobs write from workers;
        # a lock-free sqlite3 connection is safe when calls do not overlap, so we serialise.
        self._db = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed label action survives a power cut too, not only a crash of the app
        # (one fsync of the WAL per action, about a millisecond).
        self._db.execute("PRAGMA synchronous=FULL")
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
            try:
                # IMMEDIATE takes the write lock now, so two processes never both read, then
                # both try to write (SQLite would fail one of them); the other waits (busy timeout).
                self.project._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                self.project._lock.release()
                raise ProjectError(
                    f"the project {self.project.db_path} stayed busy (another window or command writing "
                    f"to it for over {BUSY_TIMEOUT_S} s?) or cannot be written: {exc}"
                ) from None
            except BaseException:
                self.project._lock.release()
                raise
            return self.project._db

        def __exit__(self, exc_type, *_) -> None:
            db = self.project._db
            try:
                if exc_type is None:
                    try:
                        db.execute("COMMIT")
                    except BaseException:
                        if db.in_transaction:  # e.g. disk full: leave the connection usable
                            db.execute("ROLLBACK")
                        raise
                elif db.in_transaction:
                    db.execute("ROLLBACK")
            finally:
                self.project._lock.release()

    def transaction(self) -> _Transaction:
        """``with project.transaction() as db:`` runs its statements atomically."""
        return Project._Transaction(self)

    def note(self, key: str) -> str | None:
        """A small value the core keeps beside the labels (e.g. the fitted confidence calibration)."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", (f"note:{key}",))
        return rows[0][0] if rows else None

    def set_note(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (f"note:{key}", value))

    # ---- items ----------------------------------------------------------------------------
    def known_files(self) -> dict[str, tuple[int, int, int, int]]:
        """path -> (item id, bytes, mtime_ns, readable 1/0) for every present item, for rescans."""
        rows = self._query("SELECT path, id, bytes, mtime_ns, error IS NULL FROM items WHERE present = 1")
        # readable comes as 0/1; a dict straight from the rows, no tuple rebuilt per item (1M: 2.3 s -> 0.9 s)
        return {row[0]: row[1:] for row in rows}

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

    def readable_files(self) -> FileTable:
        """Every present, readable item as arrays (see ``FileTable``); at 1M items a few times
        cheaper than ``items()``, which builds one object per item."""
        rows = self._query(
            "SELECT id, path, bytes, mtime_ns FROM items WHERE present = 1 AND error IS NULL ORDER BY id"
        )
        ids = np.fromiter((r[0] for r in rows), np.int64, count=len(rows))
        stamps = np.array([r[2:] for r in rows], np.int64).reshape(-1, 2)
        return FileTable(ids, [r[1] for r in rows], stamps)

    def file_details(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """What the scan recorded about every present, readable item, by id: (item ids (N,)
        int64, N paths, (N, 3) int64 width and height in pixels (-1 where none was recorded) and
        modification time in ns). Typed columns straight from the cursor (see ``label_table``)."""
        with self._lock:
            numbers = np.fromiter(
                self._db.execute(
                    "SELECT id, COALESCE(width, -1), COALESCE(height, -1), mtime_ns FROM items "
                    "WHERE present = 1 AND error IS NULL ORDER BY id"
                ),
                np.dtype([("id", np.int64), ("w", np.int64), ("h", np.int64), ("t", np.int64)]),
            )
            paths = [
                p for (p,) in self._db.execute("SELECT path FROM items WHERE present = 1 AND error IS NULL ORDER BY id")
            ]
        details = np.stack([numbers["w"], numbers["h"], numbers["t"]], axis=1).reshape(-1, 3)
        return numbers["id"].copy(), paths, details

    def unreadable(self) -> list[Item]:
        rows = self._query(
            "SELECT id, path, bytes, mtime_ns, width, height, mode, error FROM items "
            "WHERE present = 1 AND error IS NOT NULL ORDER BY path"
        )
        return [Item(*r) for r in rows]

    def item_count(self, readable_only: bool = True) -> int:
        """How many present items (readable ones only, unless ``readable_only`` is False)."""
        where = "present = 1 AND error IS NULL" if readable_only else "present = 1"
        return int(self._query(f"SELECT COUNT(*) FROM items WHERE {where}")[0][0])

    def item_ids(self) -> np.ndarray:
        """(N,) int64 ids of present, readable items, ascending."""
        rows = self._query("SELECT id FROM items WHERE present = 1 AND error IS NULL ORDER BY id")
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def paths_by_id(self) -> dict[int, str]:
        return dict(self._query("SELECT id, path FROM items"))

    def paths_of(self, item_ids: Sequence[int] | np.ndarray) -> list[str]:
        """The paths of ``item_ids`` in that order (KeyError for an id the store does not have);
        a few looked up by id, many read with all the others."""
        wanted = np.asarray(item_ids, np.int64).tolist()
        if len(wanted) > 50_000:  # 1M items: all 1.1 s, 50k looked up 0.1 s
            found = self.paths_by_id()
        else:
            found = dict(
                self._query(
                    "SELECT id, path FROM items WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(wanted),)
                )
            )
        return [found[i] for i in wanted]

    def item_table(self) -> dict[str, np.ndarray | list[str]]:
        """Every present, readable item as columns ordered by id (one query, no object per item):
        ``item_id`` (N,) int64, ``path`` N str, ``width``, ``height`` (N,) int64 (0 where unknown),
        ``bytes`` (N,) int64."""
        rows = self._query(
            "SELECT id, path, COALESCE(width, 0), COALESCE(height, 0), bytes FROM items "
            "WHERE present = 1 AND error IS NULL ORDER BY id"
        )
        column = lambda k: np.fromiter((r[k] for r in rows), np.int64, len(rows))  # noqa: E731 (zip(*rows): 5x slower)
        return {
            "item_id": column(0),
            "path": [r[1] for r in rows],
            "width": column(2),
            "height": column(3),
            "bytes": column(4),
        }

    def item(self, item_id: int) -> Item | None:
        rows = self._query(
            "SELECT id, path, bytes, mtime_ns, width, height, mode, error FROM items WHERE id = ?", (int(item_id),)
        )
        return Item(*rows[0]) if rows else None

    def item_history(self, item_id: int, limit: int = 20) -> list[tuple[float, str, str, int | None, bool]]:
        """The label actions that touched ``item_id``, newest first: (time, action, change kind
        ('label' or 'rejection'), the class after (None = cleared), undone)."""
        rows = self._query(
            "SELECT e.at, e.action, c.kind, c.new_class, e.undone FROM event_changes c JOIN events e "
            "ON e.id = c.event_id WHERE c.item_id = ? ORDER BY e.id DESC LIMIT ?",
            (int(item_id), int(limit)),
        )
        return [(at, action, kind, new_class, bool(undone)) for at, action, kind, new_class, undone in rows]

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
            used = {c for (c,) in db.execute("SELECT colour FROM classes")}
            colour = colour or next((c for c in PALETTE if c not in used), PALETTE[count % len(PALETTE)])
            # An explicit id, never one a removed class may take back on undo.
            class_id = self._next_class_id(db)
            db.execute(
                "INSERT INTO classes(id, name, colour, position) VALUES (?, ?, ?, ?)", (class_id, name, colour, count)
            )
            return LabelClass(class_id, name, colour, count)

    def ensure_classes(self, names: Iterable[str]) -> dict[str, int]:
        """name -> class id, adding the missing classes (sorted by name for stable colours)."""
        return {n: self.add_class(n).id for n in sorted(set(names))}

    # ---- managing classes: rename, recolour, reorder (plain edits); merge, delete (undoable) --
    def rename_class(self, class_id: int, name: str) -> LabelClass:
        """Give a class a new, unique name (``merge_classes`` joins two classes)."""
        name = name.strip()
        if not name:
            raise ProjectError("a class needs a name")
        with self.transaction() as db:
            label = self._class_row(db, class_id)
            if db.execute("SELECT 1 FROM classes WHERE name = ? AND id != ?", (name, label.id)).fetchone():
                raise ProjectError(
                    f"a class named {name!r} already exists: pick another name, or merge {label.name!r} into it"
                )
            db.execute("UPDATE classes SET name = ? WHERE id = ?", (name, label.id))
            return LabelClass(label.id, name, label.colour, label.position)

    def recolour_class(self, class_id: int, colour: str) -> LabelClass:
        """Give a class the colour ``colour`` ('#rrggbb')."""
        text = str(colour).strip().lower()
        if len(text) != 7 or text[0] != "#" or any(ch not in "0123456789abcdef" for ch in text[1:]):
            raise ProjectError(f"a class colour is written #rrggbb, got {colour!r}")
        with self.transaction() as db:
            label = self._class_row(db, class_id)
            db.execute("UPDATE classes SET colour = ? WHERE id = ?", (text, label.id))
            return LabelClass(label.id, label.name, text, label.position)

    def move_class(self, class_id: int, position: int) -> LabelClass:
        """Put a class at ``position`` (0-based, clamped) of the order that number keys 1-9 follow."""
        with self.transaction() as db:
            label = self._class_row(db, class_id)
            order = [i for (i,) in db.execute("SELECT id FROM classes ORDER BY position, id") if i != label.id]
            position = max(0, min(int(position), len(order)))
            order.insert(position, label.id)
            self._renumber(db, order)
            return LabelClass(label.id, label.name, label.colour, position)

    def class_usage(self, class_id: int) -> ClassUsage:
        """Counts of what merging or deleting the class would change (see ``ClassUsage``)."""
        with self._lock:
            db = self._db
            label = self._class_row(db, class_id)
            human = dict(
                db.execute("SELECT source, COUNT(*) FROM labels WHERE class_id = ? GROUP BY source", (label.id,))
            )
            (pseudo,) = db.execute(
                "SELECT COUNT(*) FROM pseudo_labels p JOIN items i ON i.id = p.item_id "
                "WHERE p.class_id = ? AND i.present = 1 AND i.error IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.item_id = p.item_id) "
                "AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.item_id = p.item_id AND r.class_id = p.class_id)",
                (label.id,),
            ).fetchone()
            (rejections,) = db.execute("SELECT COUNT(*) FROM rejections WHERE class_id = ?", (label.id,)).fetchone()
        return ClassUsage(label, {s: int(human.get(s, 0)) for s in HUMAN_SOURCES}, int(pseudo), int(rejections))

    def merge_classes(self, sources: Iterable[int], target: int) -> int:
        """Fold the ``sources`` classes into ``target`` as one undoable event; returns its id.

        Human labels keep their source (seed, accepted, imported) and pseudo-labels their
        confidence, under the target class. Rejections of a source are dropped, not moved: "not
        a kitten" does not say "not a cat", and a wrong rejection would hide a right pseudo-label
        for good, while a dropped one only lets a pseudo-label be shown again. The source classes
        are removed; undo brings them back with their labels, rejections and pseudo-labels.
        """
        sources = list(dict.fromkeys(int(s) for s in sources))
        if not sources:
            raise ProjectError("pick at least one class to merge")
        if int(target) in sources:
            raise ProjectError("cannot merge a class into itself")
        with self.transaction() as db:
            into = self._class_row(db, target)
            merged = [self._class_row(db, s) for s in sources]
            event = self._new_event(db, f"merge {', '.join(repr(c.name) for c in merged)} into {into.name!r}")
            # Last first: each keeps the position it had, which undo restores first to last.
            for label in sorted(merged, key=lambda c: (c.position, c.id), reverse=True):
                self._remove_class(db, event, label, into.id)
            return event

    def delete_class(self, class_id: int) -> int:
        """Remove a class as one undoable event; returns its id. Its human labels are cleared,
        its rejections and pseudo-labels dropped; undo brings the class (name, colour, position)
        back with all of them."""
        with self.transaction() as db:
            label = self._class_row(db, class_id)
            event = self._new_event(db, f"delete class {label.name!r}")
            self._remove_class(db, event, label, None)
            return event

    @staticmethod
    def _class_row(db: sqlite3.Connection, class_id: int) -> LabelClass:
        row = db.execute("SELECT id, name, colour, position FROM classes WHERE id = ?", (int(class_id),)).fetchone()
        if row is None:
            raise ProjectError(f"no class with id {class_id} (deleted meanwhile?)")
        return LabelClass(*row)

    @staticmethod
    def _next_class_id(db: sqlite3.Connection) -> int:
        (top,) = db.execute(
            "SELECT MAX(id) FROM (SELECT id FROM classes UNION ALL SELECT class_id FROM event_classes)"
        ).fetchone()
        return (top or 0) + 1

    @staticmethod
    def _renumber(db: sqlite3.Connection, order: Sequence[int]) -> None:
        db.executemany("UPDATE classes SET position = ? WHERE id = ?", [(k, i) for k, i in enumerate(order)])

    def _remove_class(self, db: sqlite3.Connection, event: int, label: LabelClass, into: int | None) -> None:
        """Inside ``event``: move (``into`` a class) or clear the human labels of ``label``, drop
        its rejections, then remove the class (recorded for undo)."""
        labels = db.execute("SELECT item_id, source FROM labels WHERE class_id = ?", (label.id,)).fetchall()
        rejected = db.execute("SELECT item_id FROM rejections WHERE class_id = ?", (label.id,)).fetchall()
        changes = [(i, "label", label.id, s, into, s if into is not None else None) for i, s in labels]
        changes += [(i, "rejection", label.id, None, None, None) for (i,) in rejected]
        self._record(db, event, changes)
        self._drop_class(db, event, label.id, into)

    def _drop_class(self, db: sqlite3.Connection, event: int, class_id: int, into: int | None) -> None:
        """Remove a class no label points at any more, keeping it and its pseudo-labels under
        ``event`` for undo; its pseudo-labels move ``into`` a class or are dropped."""
        label = self._class_row(db, class_id)
        db.execute("DELETE FROM event_classes WHERE event_id = ? AND class_id = ?", (event, class_id))
        db.execute("DELETE FROM event_pseudo_labels WHERE event_id = ? AND class_id = ?", (event, class_id))
        db.execute(
            "INSERT INTO event_classes(event_id, class_id, name, colour, position, merged_into) VALUES (?, ?, ?, ?, ?, ?)",
            (event, class_id, label.name, label.colour, label.position, into),
        )
        db.execute(
            "INSERT INTO event_pseudo_labels(event_id, item_id, class_id, confidence) "
            "SELECT ?, item_id, class_id, confidence FROM pseudo_labels WHERE class_id = ?",
            (event, class_id),
        )
        if into is None:
            db.execute("DELETE FROM pseudo_labels WHERE class_id = ?", (class_id,))
        else:
            db.execute("UPDATE pseudo_labels SET class_id = ? WHERE class_id = ?", (into, class_id))
        try:
            db.execute("DELETE FROM classes WHERE id = ?", (class_id,))
        except sqlite3.IntegrityError as exc:
            raise ProjectError(f"class {label.name!r} still has labels ({exc}); nothing was changed") from None
        self._renumber(db, [i for (i,) in db.execute("SELECT id FROM classes ORDER BY position, id")])

    def _restore_classes(self, db: sqlite3.Connection, event: int) -> None:
        """Undo of a merge or delete, before its label changes are reversed: the classes come
        back at their positions (a name taken meanwhile gets ' (restored)'), then their pseudo-labels."""
        rows = db.execute(
            "SELECT class_id, name, colour, position FROM event_classes WHERE event_id = ? ORDER BY position",
            (event,),
        ).fetchall()
        for class_id, name, colour, position in rows:
            if db.execute("SELECT 1 FROM classes WHERE id = ?", (class_id,)).fetchone():
                raise ProjectError(f"cannot undo: class id {class_id} is in use again")
            free, k = name, 1
            while db.execute("SELECT 1 FROM classes WHERE name = ?", (free,)).fetchone():
                free, k = f"{name} (restored{f' {k}' if k > 1 else ''})", k + 1
            order = [i for (i,) in db.execute("SELECT id FROM classes ORDER BY position, id")]
            db.execute("INSERT INTO classes(id, name, colour, position) VALUES (?, ?, ?, -1)", (class_id, free, colour))
            order.insert(min(position, len(order)), class_id)
            self._renumber(db, order)
        if rows:
            db.execute(
                "INSERT OR REPLACE INTO pseudo_labels(item_id, class_id, confidence) "
                "SELECT item_id, class_id, confidence FROM event_pseudo_labels WHERE event_id = ?",
                (event,),
            )

    def _remove_classes_again(self, db: sqlite3.Connection, event: int) -> None:
        """Redo of a merge or delete, after its label changes were re-applied."""
        for class_id, into in db.execute(
            "SELECT class_id, merged_into FROM event_classes WHERE event_id = ? ORDER BY position DESC", (event,)
        ).fetchall():
            self._drop_class(db, event, class_id, into)

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
            return self._assign(db, assignments, lambda n: action)

    def _assign(self, db: sqlite3.Connection, assignments: dict[int, tuple[int, str]], action) -> int | None:
        """Inside a transaction: record the changed ``assignments`` as one event named ``action(n)``."""
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
        event = self._new_event(db, action(len(changes)))
        self._record(db, event, changes)
        return event

    def _shown_pseudo(self, db: sqlite3.Connection, item_ids: Sequence[int]) -> dict[int, int]:
        """item id -> class of the pseudo-label shown for it now (no human label, not rejected,
        present and readable), read inside the caller's transaction so that another window or
        command cannot change it between reading and writing."""
        out: dict[int, int] = {}
        for chunk in _chunks(list(dict.fromkeys(int(i) for i in item_ids)), 900):
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT p.item_id, p.class_id FROM pseudo_labels p JOIN items i ON i.id = p.item_id "
                f"WHERE p.item_id IN ({marks}) AND i.present = 1 AND i.error IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.item_id = p.item_id) "
                "AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.item_id = p.item_id AND r.class_id = p.class_id)",
                chunk,
            )
            out.update(rows)
        return out

    def accept_pseudo(self, item_ids: Sequence[int]) -> int | None:
        """Turn the current pseudo-labels of ``item_ids`` into ``accepted`` human labels."""
        with self.transaction() as db:
            shown = self._shown_pseudo(db, item_ids)
            chosen = {i: (shown[i], "accepted") for i in dict.fromkeys(int(i) for i in item_ids) if i in shown}
            return self._assign(db, chosen, lambda n: f"accept {n} pseudo-label(s)")

    def reject_pseudo(self, item_ids: Sequence[int]) -> int | None:
        """Record "not this class" for the current pseudo-labels of ``item_ids``."""
        with self.transaction() as db:
            shown = self._shown_pseudo(db, item_ids)
            changes = [
                (i, "rejection", None, None, shown[i], None)
                for i in dict.fromkeys(int(i) for i in item_ids)
                if i in shown
            ]
            if not changes:
                return None
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
            if undo:  # classes a merge or delete removed come back before their labels
                self._restore_classes(db, event)
            self._apply(db, changes[::-1] if undo else changes, reverse=undo)
            if not undo:
                self._remove_classes_again(db, event)
            db.execute("UPDATE events SET undone = ? WHERE id = ?", (1 if undo else 0, event))
            return action

    def data_version(self) -> int:
        """A number that changes when another connection (a second window, a CLI command)
        commits to the project; a window polls it to know when to re-read."""
        return int(self._query("PRAGMA data_version")[0][0])

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
        item_ids, class_ids = np.asarray(item_ids, np.int64), np.asarray(class_ids, np.int64)
        confidence = np.asarray(confidence, np.float64)
        if not len(item_ids) == len(class_ids) == len(confidence):
            raise ValueError(
                f"pseudo-labels need aligned arrays, got {len(item_ids)} items, {len(class_ids)} classes, "
                f"{len(confidence)} confidences"
            )
        with self.transaction() as db:
            # A propagation that started before a class was merged or deleted drops that class.
            known = np.array([c for (c,) in db.execute("SELECT id FROM classes")], np.int64)
            keep = (class_ids >= 0) & np.isin(class_ids, known)
            db.execute("DELETE FROM pseudo_labels")
            db.executemany(
                "INSERT INTO pseudo_labels(item_id, class_id, confidence) VALUES (?, ?, ?)",
                zip(item_ids[keep].tolist(), class_ids[keep].tolist(), confidence[keep].tolist()),
            )

    def label_table(self, paths: bool = False) -> LabelTable:
        """The label of every present, readable item (see ``LabelTable``), built with array ops;
        with ``paths`` their paths too, read with the ids (consistent with them)."""
        path_list = None
        with self._lock:
            if paths:
                rows = self._db.execute(
                    "SELECT id, path FROM items WHERE present = 1 AND error IS NULL ORDER BY id"
                ).fetchall()
                ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
                path_list = [r[1] for r in rows]
            else:
                ids = self.item_ids()
            human = np.array(
                self._db.execute("SELECT item_id, class_id, source FROM labels").fetchall(), dtype=object
            ).reshape(-1, 3)
            # straight into typed columns: np.array over 1M row tuples infers types per value
            pseudo = np.fromiter(
                self._db.execute("SELECT item_id, class_id, confidence FROM pseudo_labels"),
                np.dtype([("item", np.int64), ("cls", np.int64), ("conf", np.float64)]),
            )
            rejected = np.array(
                self._db.execute("SELECT item_id, class_id FROM rejections").fetchall(), np.int64
            ).reshape(-1, 2)
        n = len(ids)
        cls = np.full(n, -1, np.int64)
        src = np.full(n, "", dtype=object)
        conf = np.full(n, np.nan)
        if len(pseudo):
            p_items, p_cls = pseudo["item"], pseudo["cls"]
            keep = ~np.isin(pair_keys(p_items, p_cls), pair_keys(rejected[:, 0], rejected[:, 1]))
            rows, found = lookup(ids, p_items[keep])
            rows = rows[found]
            cls[rows], src[rows], conf[rows] = p_cls[keep][found], "pseudo", pseudo["conf"][keep][found]
        if len(human):
            rows, found = lookup(ids, human[:, 0].astype(np.int64))
            rows = rows[found]
            cls[rows], src[rows], conf[rows] = human[found, 1].astype(np.int64), human[found, 2], 1.0
        return LabelTable(ids, cls, src, conf, path_list)

    def label_counts(self) -> dict[str, int]:
        """How many items have each source of label ('' = unlabelled)."""
        # Counter over the few distinct strings: np.unique would sort 1M of them (0.3 s vs 0.05 s)
        return {str(v): int(c) for v, c in sorted(Counter(self.label_table().source.tolist()).items())}

    # ---- runs -----------------------------------------------------------------------------
    def start_run(self, kind: str, params: dict) -> int:
        """A new 'running' run; it records which process runs it, so that a run whose process was
        killed reads as 'interrupted' (see ``runs``) instead of running forever."""
        owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
        with self.transaction() as db:
            return db.execute(
                "INSERT INTO runs(kind, params, metrics, started) VALUES (?, ?, ?, ?)",
                (kind, json.dumps(params), owner, time.time()),
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
        out = []
        for i, k, p, m, s, st, f in self._query(sql + " ORDER BY id", args):
            metrics = json.loads(m)
            if s == "running" and _owner_gone(metrics):
                s = "interrupted"
            out.append(Run(i, k, json.loads(p), metrics, s, st, f))
        return out

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


def _owner_gone(metrics: dict) -> bool:
    """True when the process that started a run on this machine no longer exists (killed, crashed)."""
    pid = metrics.get("pid")
    if not isinstance(pid, int) or metrics.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists but is not ours to signal
        return False
    return False


def _chunks(seq: Sequence, size: int):
    for start in range(0, len(seq), size):
        yield list(seq[start : start + size])
