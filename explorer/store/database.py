"""The project's SQLite database: one connection that writes, one more per thread that reads.

Every write is one short ``BEGIN IMMEDIATE`` transaction on the writer connection, so that a
second window or a CLI command can share the project. Reads run on a connection of their own
thread: in WAL mode they go on beside a write, so a worker's long transaction (saving 1M
pseudo-labels) never stalls the window's reads, and no thread waits on another's connection.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
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


class _Reader:
    """One thread's reading connection. ``lock`` is held while it reads, so that ``close`` from
    another thread waits for the read instead of closing the connection under it."""

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection
        self.lock = threading.RLock()
        self.depth = 0  # nested reading blocks share the outer block's snapshot


def _close_reader(connection: sqlite3.Connection, lock: threading.RLock) -> None:
    with lock:
        connection.close()


class Database:
    """The connections to ``db_path``; ``Project`` adds what the tables mean."""

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed label action survives a power cut too, not only a crash of the app
        # (one fsync of the WAL per action, about a millisecond).
        self._writer.execute("PRAGMA synchronous=FULL")
        self._writer.execute("PRAGMA foreign_keys=ON")
        self._writer.executescript(SCHEMA)
        self._writer.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        self._write_lock = threading.RLock()  # one transaction at a time in this process
        self._writing: int | None = None  # the thread inside a transaction, which reads on the writer
        self._local = threading.local()
        self._readers: list[weakref.finalize] = []  # each closes a reader (when its thread ends)
        self._readers_lock = threading.Lock()
        self._closed = False
        self._data_version = int(self._writer.execute("PRAGMA data_version").fetchone()[0])

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only so that ``close`` can close every thread's reader
        return sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)

    def close(self) -> None:
        """Close every connection, waiting for a transaction or a read in flight."""
        with self._readers_lock:
            self._closed = True
            readers, self._readers = self._readers, []
        with self._write_lock:
            self._writer.close()
        for close_reader in readers:
            close_reader()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ProjectError(f"the project {self.db_path} was closed")

    def _reader(self) -> _Reader:
        reader = getattr(self._local, "reader", None)
        if reader is None:
            with self._readers_lock:
                self._check_open()
                connection = self._connect()
                connection.execute("PRAGMA query_only=ON")
                reader = _Reader(connection)
                self._readers = [f for f in self._readers if f.alive]
                self._readers.append(weakref.finalize(reader, _close_reader, connection, reader.lock))
            self._local.reader = reader
        return reader

    @contextmanager
    def _reading(self, snapshot: bool = True) -> Iterator[sqlite3.Connection]:
        """A connection to read on: the writer on the thread inside a transaction, so that it
        sees its own writes; else this thread's reader, with one snapshot for the whole block
        (reads that must agree; a single statement needs none: ``snapshot=False``)."""
        if self._writing == threading.get_ident():
            yield self._writer
            return
        reader = self._reader()
        with reader.lock:
            self._check_open()
            if reader.depth or not snapshot:
                yield reader.connection
                return
            reader.connection.execute("BEGIN")
            reader.depth += 1
            try:
                yield reader.connection
            finally:
                reader.depth -= 1
                if not self._closed:  # this thread may have closed the project inside the block
                    reader.connection.execute("COMMIT")

    def _query(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._reading(snapshot=False) as db:
            return db.execute(sql, args).fetchall()

    class _Transaction:
        def __init__(self, database: Database):
            self.database = database

        def __enter__(self) -> sqlite3.Connection:
            database = self.database
            database._write_lock.acquire()
            try:
                database._check_open()
                # IMMEDIATE takes the write lock now, so two processes never both read, then
                # both try to write (SQLite would fail one of them); the other waits (busy timeout).
                database._writer.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                database._write_lock.release()
                raise ProjectError(
                    f"the project {database.db_path} stayed busy (another window or command writing "
                    f"to it for over {BUSY_TIMEOUT_S} s?) or cannot be written: {exc}"
                ) from None
            except BaseException:
                database._write_lock.release()
                raise
            database._writing = threading.get_ident()
            return database._writer

        def __exit__(self, exc_type, *_) -> None:
            db = self.database._writer
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
                self.database._writing = None
                self.database._write_lock.release()

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
        commits to the project; a window polls it to know when to re-read.

        Read on the writer, so that this project's own commits, from any thread, do not count.
        While one of them is in flight it is not waited for: the number last read comes back,
        and a change by another process shows at the next call."""
        if not self._write_lock.acquire(blocking=False):
            return self._data_version
        try:
            self._check_open()
            self._data_version = int(self._writer.execute("PRAGMA data_version").fetchone()[0])
            return self._data_version
        finally:
            self._write_lock.release()
