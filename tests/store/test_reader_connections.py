"""Each thread reads on its own connection; writes go one at a time through the writer.

Ordering is asserted with events: a read that waited for the write would never set its event
before the write is released, and the waits' timeouts only keep a broken build from hanging.
"""

import gc
import sqlite3
import threading

import pytest

from explorer.store import Project, ProjectError

WAIT_S = 30


def in_thread(fn):
    """Run ``fn`` on a new thread and return what it returned (or raise what it raised)."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed to the caller
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(WAIT_S)
    assert not thread.is_alive(), "the thread did not finish"
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_a_write_held_open_on_a_worker_does_not_block_reads_on_another_thread(project):
    item = int(project.item_ids()[0])
    inside, release, ended = threading.Event(), threading.Event(), threading.Event()
    seen_by_writer = {}

    def worker():
        with project.transaction() as db:
            db.execute("UPDATE items SET bytes = 99 WHERE id = ?", (item,))
            seen_by_writer["bytes"] = project.item(item).bytes  # its own write shows to itself
            seen_by_writer["classes"] = len(project.classes())
            inside.set()
            release.wait(WAIT_S)
        ended.set()

    writer = threading.Thread(target=worker)
    writer.start()
    try:
        assert inside.wait(WAIT_S)
        read_done = threading.Event()
        seen_by_reader = {}

        def reader():
            seen_by_reader["bytes"] = project.item(item).bytes
            seen_by_reader["labels"] = len(project.label_table())
            seen_by_reader["version"] = project.data_version()  # not stalled either
            read_done.set()

        threading.Thread(target=reader).start()
        assert read_done.wait(WAIT_S), "the read waited for the write transaction"
        assert not ended.is_set()  # it came back while the transaction was still open
        assert seen_by_reader["bytes"] == 10  # and saw the data before it
        assert seen_by_reader["labels"] == 6
        assert project.item(item).bytes == 10  # the main thread too
    finally:
        release.set()
        writer.join(WAIT_S)
    assert seen_by_writer == {"bytes": 99, "classes": 0}
    assert project.item(item).bytes == 99  # after the commit every thread sees it
    assert in_thread(lambda: project.item(item).bytes) == 99


def test_a_rolled_back_write_is_seen_by_nobody(project):
    item = int(project.item_ids()[0])
    with pytest.raises(RuntimeError), project.transaction() as db:
        db.execute("UPDATE items SET bytes = 99 WHERE id = ?", (item,))
        raise RuntimeError("changed my mind")
    assert project.item(item).bytes == 10
    assert in_thread(lambda: project.item(item).bytes) == 10


def test_each_thread_reads_on_its_own_connection(project):
    def connection():
        with project._reading() as db:
            return db

    mine = connection()
    assert connection() is mine  # the same thread keeps its reader
    theirs = in_thread(connection)
    assert theirs is not mine and theirs is not project._writer
    with project.transaction():
        assert connection() is project._writer  # inside a transaction: the writer, to see its writes
    assert connection() is mine
    with pytest.raises(sqlite3.OperationalError, match="readonly"):  # a reader never writes
        mine.execute("UPDATE items SET bytes = 1")


def test_a_finished_threads_reader_is_closed_with_it(project):
    def connection():
        with project._reading() as db:
            return db

    gone = [in_thread(connection) for _ in range(5)]  # e.g. a pool's worker threads that expired
    gc.collect()
    for db in gone:
        with pytest.raises(sqlite3.ProgrammingError):
            db.execute("SELECT 1")
    assert not any(close.alive for close in project._readers)
    assert project.classes() == []  # the main thread's reader goes on


def test_reads_in_one_block_share_one_snapshot(project):
    item = int(project.item_ids()[0])
    with project._reading() as db:
        before = db.execute("SELECT bytes FROM items WHERE id = ?", (item,)).fetchone()[0]
        in_thread(lambda: project.mark_unreadable(item, "broken"))  # committed meanwhile
        assert project.item(item).error is None  # a nested read stays in the block's snapshot
        assert db.execute("SELECT bytes FROM items WHERE id = ?", (item,)).fetchone()[0] == before
    assert project.item(item).error == "broken"


def test_data_version_counts_other_connections_not_this_projects_own_threads(tmp_path, project):
    before = project.data_version()
    in_thread(lambda: project.add_class("from a worker"))
    project.set_labels(project.item_ids()[:2].tolist(), project.classes()[0].id)
    assert project.data_version() == before
    with Project(tmp_path) as other:
        other.add_class("from another window")
    assert project.data_version() != before


def test_close_closes_every_connection_and_reads_after_it_fail_clearly(project):
    def connection():
        with project._reading() as db:
            return db

    readers = [connection(), in_thread(connection)]
    writer = project._writer
    project.close()
    for db in [*readers, writer]:
        with pytest.raises(sqlite3.ProgrammingError):
            db.execute("SELECT 1")
    with pytest.raises(ProjectError, match="closed"):
        project.classes()
    with pytest.raises(ProjectError, match="closed"):
        in_thread(project.classes)  # a thread new to the project gets no fresh connection
    with pytest.raises(ProjectError, match="closed"):
        project.add_class("late")
    project.close()  # twice is fine
