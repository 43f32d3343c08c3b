"""Store queries that must stay indexed and array-based at a million items, and the embedding file."""

import numpy as np
import pytest

from explorer.store import Project, ScannedFile
from explorer.store.embedding_file import PARTIAL, ROWS_DONE, EmbeddingWriter, StoredVectors, embedding_dtype


def scanned(n, unreadable=()):
    return [
        ScannedFile(f"d/{k:05d}.png", 100 + k, 10_000 + k, 8, 8, "RGB", "broken" if k in unreadable else None)
        for k in range(n)
    ]


def test_readable_files_are_the_readable_items_as_arrays(tmp_path):
    with Project(tmp_path) as project:
        project.record_scan(scanned(50, unreadable={3, 7}), gone=["d/00010.png"])
        project.record_scan([], gone=["d/00010.png"])
        files = project.readable_files()
        items = project.items()
        assert files.item_ids.dtype == np.int64 and files.stamps.shape == (len(items), 2)
        assert files.item_ids.tolist() == [i.id for i in items] == project.item_ids().tolist()
        assert files.paths == [i.path for i in items]
        assert files.stamps.tolist() == [[i.bytes, i.mtime_ns] for i in items]
        assert len(files) == 47
        known = project.known_files()
        assert known["d/00003.png"][3] == 0 and known["d/00004.png"][1:] == (104, 10_004, 1)
        assert "d/00010.png" not in known


def test_item_table_paths_of_and_label_table_paths_agree_with_the_items(tmp_path):
    with Project(tmp_path) as project:
        project.record_scan(scanned(50, unreadable={3, 7}) + [ScannedFile("x.png", 5, 6)], gone=[])
        items = project.items()
        table = project.item_table()
        assert list(table) == ["item_id", "path", "width", "height", "bytes"]
        assert table["item_id"].dtype == np.int64 and table["item_id"].tolist() == [i.id for i in items]
        assert table["path"] == [i.path for i in items] and table["bytes"].tolist() == [i.bytes for i in items]
        assert table["width"].tolist() == [i.width or 0 for i in items]  # x.png: size unknown -> 0
        labels = project.label_table(paths=True)
        assert labels.paths == table["path"] and labels.item_ids.tolist() == table["item_id"].tolist()
        assert project.label_table().paths is None
        some = table["item_id"][[40, 2, 9]]
        assert project.paths_of(some) == [table["path"][k] for k in (40, 2, 9)]
        assert project.paths_of([]) == []
        with pytest.raises(KeyError):
            project.paths_of([10_000])
    (tmp_path / "empty").mkdir()
    with Project(tmp_path / "empty") as empty:
        assert empty.item_table()["path"] == [] and len(empty.label_table(paths=True).paths) == 0


def test_an_items_label_history_is_read_through_an_index(tmp_path):
    with Project(tmp_path) as project:
        project.record_scan(scanned(20), gone=[])
        cls = project.add_class("cat").id
        project.set_labels(project.item_ids()[:10].tolist(), cls)
        item = int(project.item_ids()[3])
        assert [h[2] for h in project.item_history(item)] == ["label"]
        plan = " ".join(
            str(row)
            for row in project._query(
                "EXPLAIN QUERY PLAN SELECT e.at FROM event_changes c JOIN events e ON e.id = c.event_id "
                "WHERE c.item_id = ?",
                (item,),
            )
        )
        assert "changes_by_item" in plan


def test_pseudo_labels_of_unknown_classes_are_dropped_and_misaligned_arrays_refused(tmp_path):
    with Project(tmp_path) as project:
        project.record_scan(scanned(6), gone=[])
        ids = project.item_ids()
        a, b = project.add_class("a").id, project.add_class("b").id
        project.save_pseudo_labels(ids, np.array([a, b, -1, 99, a, b]), np.linspace(0.5, 1, 6))
        table = project.label_table()
        assert table.class_ids.tolist() == [a, b, -1, -1, a, b]
        assert table.source.tolist() == ["pseudo", "pseudo", "", "", "pseudo", "pseudo"]
        assert table.confidence[0] == pytest.approx(0.5)
        assert project.label_counts() == {"": 2, "pseudo": 4}
        with pytest.raises(ValueError, match="aligned"):
            project.save_pseudo_labels(ids, np.array([a]), np.ones(6))


def test_embedding_writer_reuses_only_unchanged_files_and_drops_failed_rows(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    ids = np.array([1, 2, 3, 5], np.int64)
    stamps = np.array([[10, 1], [20, 2], [30, 3], [50, 5]], np.int64)
    writer = EmbeddingWriter(old, ids, stamps, 3, np.dtype("float32"))
    writer.write(np.array([0, 1, 2, 3]), np.arange(12, dtype=np.float32).reshape(4, 3))
    writer.finish()
    source = StoredVectors.load(7, old, finished=True)

    new = tmp_path / "new"
    new.mkdir()
    # item 2 changed (other size), item 4 is new, item 5 unchanged, item 3 gone
    writer = EmbeddingWriter(new, [1, 2, 4, 5], [[10, 1], [21, 2], [40, 4], [50, 5]], 3, np.dtype("float16"))
    assert writer.reuse(source) == 2
    assert writer.todo().tolist() == [1, 2]
    writer.write(np.array([1]), np.full((1, 3), 0.5, np.float32))
    writer.fail(np.array([2]))
    writer.checkpoint()
    assert np.load(new / ROWS_DONE).tolist() == [True, True, False, True]
    kept = writer.finish()
    assert kept.tolist() == [1, 2, 5]
    vectors = np.load(new / "embeddings.npy")
    assert vectors.dtype == np.float16
    np.testing.assert_array_equal(vectors, [[0, 1, 2], [0.5, 0.5, 0.5], [9, 10, 11]])
    assert np.load(new / "item_ids.npy").tolist() == [1, 2, 5]
    assert np.load(new / "file_stamps.npy").tolist() == [[10, 1], [21, 2], [50, 5]]
    assert not (new / PARTIAL).exists() and not (new / ROWS_DONE).exists()


def test_a_stopped_writer_leaves_rows_another_run_can_take(tmp_path):
    writer = EmbeddingWriter(tmp_path, [1, 2, 3], [[1, 1], [2, 2], [3, 3]], 2, np.dtype("float32"))
    writer.write(np.array([0, 2]), np.ones((2, 2), np.float32))
    writer.checkpoint()
    writer.write(np.array([1]), np.ones((1, 2), np.float32))  # not checkpointed: not claimed
    source = StoredVectors.load(1, tmp_path, finished=False)
    assert source.partial and source.valid.tolist() == [True, False, True]
    source.remove_partial(tmp_path)
    assert not (tmp_path / PARTIAL).exists()
    assert StoredVectors.load(1, tmp_path, finished=False) is None


@pytest.mark.parametrize("cut", [0, 5, 60, 200])
def test_a_partial_file_cut_short_by_a_kill_is_dropped_not_fatal(tmp_path, cut):
    writer = EmbeddingWriter(tmp_path, np.arange(1, 101), np.ones((100, 2)), 16, np.dtype("float32"))
    writer.write(np.arange(50), np.ones((50, 16), np.float32))
    writer.checkpoint()
    data = (tmp_path / PARTIAL).read_bytes()
    (tmp_path / PARTIAL).write_bytes(data[:cut])  # killed while the file was being made
    assert StoredVectors.load(1, tmp_path, finished=False) is None


@pytest.mark.parametrize("bad", ["float64", "int8", "half-ish", None])
def test_embedding_dtype_names_the_choices(bad):
    with pytest.raises(ValueError, match="float32 or float16"):
        embedding_dtype(bad)
    assert embedding_dtype("float16") == np.float16
