"""The project's SQLite database: opening it, reading, and one transaction per action.

Every write is one short ``BEGIN IMMEDIATE`` transaction, so that a second window or a CLI
command can share the project; reads never need one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from explorer.store.schema import SCHEMA, SCHEMA_VERSION

# How long a write waits for another process (a second window, a CLI command) to finish its own.
# Every write is one short transaction, so two processes can share a project safely.
BUSY_TIMEOUT_S = 30


class ProjectError(Exception):
    """A problem with the project a person can act on (the message says what)."""


class StateNotWritable(ProjectError):
    """The project's state folder cannot be created or written (a read-only image folder)."""


class Database:
    """The connection to ``db_path`` behind a lock; ``Project`` adds the tables' meaning."""

    def __init__(self, db_path: Path):
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

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _query(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection to run several reads on that must agree with each other."""
        with self._lock:
            yield self._db

    class _Transaction:
        def __init__(self, project: Database):
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
        return Database._Transaction(self)

    def note(self, key: str) -> str | None:
        """A small value the core keeps beside the labels (e.g. the fitted confidence calibration)."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", (f"note:{key}",))
        return rows[0][0] if rows else None

    def set_note(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (f"note:{key}", value))

    def data_version(self) -> int:
        """A number that changes when another connection (a second window, a CLI command)
        commits to the project; a window polls it to know when to re-read."""
        return int(self._query("PRAGMA data_version")[0][0])
