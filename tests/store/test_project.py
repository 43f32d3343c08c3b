import json

import numpy as np
import pytest

from explorer.store import Project, ProjectError, ScannedFile


def test_labels_undo_redo_and_persist_across_reopen(tmp_path, project):
    cat, dog = project.add_class("cat"), project.add_class("dog")
    ids = project.item_ids()
    project.set_labels(ids[:2], cat.id)
    project.set_labels(ids[2:4], dog.id)
    project.set_labels(ids[:1], dog.id)  # relabel
    assert project.human_labels()[int(ids[0])] == (dog.id, "seed")
    assert project.undo() == "seed 1 item(s)"
    assert project.human_labels()[int(ids[0])] == (cat.id, "seed")
    project.close()

    reopened = Project(tmp_path)
    assert reopened.human_labels()[int(ids[0])] == (cat.id, "seed")
    assert reopened.redo() == "seed 1 item(s)"
    assert reopened.human_labels()[int(ids[0])] == (dog.id, "seed")
    reopened.undo()
    reopened.undo()
    assert set(reopened.human_labels()) == {int(ids[0]), int(ids[1])}
    # a new action drops what was undone
    reopened.set_labels(ids[5:], cat.id)
    assert reopened.redo() is None
    reopened.close()


def test_pseudo_labels_accept_reject_and_label_table(project):
    cat, dog = project.add_class("cat"), project.add_class("dog")
    ids = project.item_ids()
    project.set_labels(ids[:1], cat.id)
    project.save_pseudo_labels(
        ids, np.array([cat.id, cat.id, dog.id, dog.id, -1, cat.id]), np.array([1, 0.9, 0.8, 0.4, 0, 0.3])
    )
    table = project.label_table()
    assert list(table.source) == ["seed", "pseudo", "pseudo", "pseudo", "", "pseudo"]
    assert table.confidence[0] == 1.0 and np.isnan(table.confidence[4])

    project.accept_pseudo(ids[1:3])
    project.reject_pseudo(ids[3:4])
    table = project.label_table()
    assert list(table.source) == ["seed", "accepted", "accepted", "", "", "pseudo"]
    assert project.rejections() == [(int(ids[3]), dog.id)]
    # accepting something that is not a pseudo-label does nothing
    assert project.accept_pseudo(ids[4:5]) is None

    project.undo()  # the rejection
    assert project.label_table().source[3] == "pseudo"
    project.undo()  # the acceptance, as one event
    assert list(project.label_table().source[:3]) == ["seed", "pseudo", "pseudo"]


def test_clear_labels_and_bad_source(project):
    cat = project.add_class("cat")
    ids = project.item_ids()
    project.set_labels(ids, cat.id)
    assert project.set_labels(ids, cat.id) is None  # nothing changed, no event
    project.set_labels(ids[:3], None)
    assert len(project.human_labels()) == 3
    project.undo()
    assert len(project.human_labels()) == 6
    with pytest.raises(ProjectError, match="unknown label source"):
        project.set_labels(ids, cat.id, source="guess")
    with pytest.raises(ProjectError, match="needs a name"):
        project.add_class("  ")


def test_missing_items_keep_labels_and_come_back(project):
    cat = project.add_class("cat")
    project.set_labels([1], cat.id)
    project.record_scan([], gone=["0.png"])
    assert 1 not in project.item_ids()
    assert project.human_labels() == {1: (cat.id, "seed")}
    project.record_scan([ScannedFile("0.png", 10, 1, 8, 8, "RGB")], gone=[])
    assert project.label_table().source[0] == "seed"


def test_runs_and_their_arrays(project):
    run = project.start_run("embed", {"encoder": "pixels"})
    project.save_run_arrays(run, item_ids=np.arange(3), embeddings=np.eye(3, dtype=np.float32))
    assert project.latest_run("embed") is None  # not current until done
    project.finish_run(run, "done", {"items": 3})
    latest = project.latest_run("embed")
    assert latest.id == run and latest.metrics == {"items": 3}
    np.testing.assert_array_equal(project.load_run_array(run, "embeddings"), np.eye(3))
    assert project.load_run_array(run, "nothing") is None


def test_opening_without_a_project(tmp_path):
    with pytest.raises(ProjectError, match="explorer scan"):
        Project(tmp_path, create=False)
    with pytest.raises(ProjectError, match="not found"):
        Project(tmp_path / "nowhere")


def test_a_run_whose_process_died_reads_as_interrupted(project):
    import subprocess
    import sys

    run = project.start_run("embed", {})
    assert project.run(run).status == "running"  # this process is alive
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(child.stdout)
    with project.transaction() as db:
        metrics = json.dumps({**project.run(run).metrics, "pid": dead})
        db.execute("UPDATE runs SET metrics = ? WHERE id = ?", (metrics, run))
    assert project.run(run).status == "interrupted"
    project.finish_run(run, "done", {"items": 1})
    assert project.run(run).status == "done"


def test_items_in_path_order_as_python_sorts_paths(tmp_path):
    names = ["b/2.png", "a/10.png", "a/9.png", "Z.png", "é/1.png", "e/1.png", "日本/1.png", "a b/1.png", "broken.png"]
    with Project(tmp_path) as p:
        p.record_scan([ScannedFile(n, 10, 1, 8, 8, "RGB") for n in names[:-1]], gone=[])
        p.record_scan([ScannedFile(names[-1], 10, 1, None, None, None, "not an image")], gone=[])
        paths = p.paths_by_id()
        ordered = [paths[int(i)] for i in p.item_ids_by_path()]
        assert ordered == sorted(names[:-1])  # byte order of UTF-8 is code point order; unreadable left out
