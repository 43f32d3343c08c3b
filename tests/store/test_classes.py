"""Managing classes in the store: rename, recolour, reorder, and merge and delete as undoable events."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from explorer.store import Project, ProjectError, ScannedFile


@pytest.fixture
def project(tmp_path):
    p = Project(tmp_path)
    p.record_scan([ScannedFile(f"{k}.png", 10, 1, 8, 8, "RGB") for k in range(12)], gone=[])
    yield p
    p.close()


def _state(project: Project):
    """Everything a class operation may touch, comparable with ==."""
    return (
        project.classes(),
        project.human_labels(),
        sorted(project.rejections()),
        sorted(project._query("SELECT item_id, class_id, confidence FROM pseudo_labels")),
    )


@pytest.fixture
def labelled(project):
    """cat, kitten, dog with seed, accepted and imported labels, pseudo-labels and a rejection."""
    cat, kitten, dog = (project.add_class(n) for n in ("cat", "kitten", "dog"))
    ids = project.item_ids()
    project.set_labels(ids[:2], cat.id)
    project.set_labels(ids[2:4], kitten.id)
    project.set_labels_many({int(ids[4]): (kitten.id, "imported")}, "import 1")
    project.set_labels(ids[5:6], dog.id)
    # pseudo: items 6-9 kitten, 10-11 dog
    classes = np.array([kitten.id] * 4 + [dog.id] * 2)
    project.save_pseudo_labels(ids[6:], classes, np.linspace(0.5, 0.9, 6))
    project.accept_pseudo(ids[6:7])  # item 6 becomes an accepted kitten
    project.reject_pseudo(ids[7:8])  # item 7: "not a kitten"
    return project, (cat, kitten, dog), ids


def test_rename_recolour_and_clear_errors(project):
    cat, dog = project.add_class("cat"), project.add_class("dog")
    assert project.rename_class(cat.id, "  feline ").name == "feline"
    assert project.class_by_name("feline").id == cat.id and project.class_by_name("cat") is None
    with pytest.raises(ProjectError, match="'dog' already exists.*merge 'feline' into it"):
        project.rename_class(cat.id, "dog")
    with pytest.raises(ProjectError, match="needs a name"):
        project.rename_class(cat.id, "   ")
    with pytest.raises(ProjectError, match="no class with id 999"):
        project.rename_class(999, "x")
    assert project.rename_class(cat.id, "feline").name == "feline"  # same name: allowed, no change

    assert project.recolour_class(dog.id, "#A0B1C2").colour == "#a0b1c2"
    assert project.classes()[1].colour == "#a0b1c2"
    for bad in ("red", "#12345", "#1234567", "#gg0000"):
        with pytest.raises(ProjectError, match="#rrggbb"):
            project.recolour_class(dog.id, bad)


def test_move_class_changes_the_key_order(project):
    a, b, c = (project.add_class(n) for n in "abc")
    project.move_class(c.id, 0)
    assert [x.name for x in project.classes()] == ["c", "a", "b"]
    assert [x.position for x in project.classes()] == [0, 1, 2]
    project.move_class(c.id, 99)  # clamped to the end
    assert [x.name for x in project.classes()] == ["a", "b", "c"]
    project.move_class(a.id, 1)
    assert [x.name for x in project.classes()] == ["b", "a", "c"]


def test_class_usage_counts_what_an_operation_touches(labelled):
    project, (cat, kitten, dog), _ = labelled
    usage = project.class_usage(kitten.id)
    assert usage.label == kitten
    assert usage.human == {"seed": 2, "accepted": 1, "imported": 1}
    assert usage.human_total == 4
    assert usage.pseudo == 2  # items 8, 9 (6 accepted, 7 rejected)
    assert usage.rejections == 1
    assert project.class_usage(dog.id).pseudo == 2 and project.class_usage(cat.id).pseudo == 0


def test_delete_undo_restores_class_name_colour_position_and_labels(labelled):
    project, (cat, kitten, dog), ids = labelled
    project.recolour_class(kitten.id, "#123456")
    before = _state(project)
    event = project.delete_class(kitten.id)
    assert project.history(1)[0][:1] == (event,)
    assert [c.name for c in project.classes()] == ["cat", "dog"]
    assert [c.position for c in project.classes()] == [0, 1]  # dog moved up to key 2
    assert kitten.id not in {c for c, _ in project.human_labels().values()}
    assert not [r for r in project.rejections() if r[1] == kitten.id]
    table = project.label_table()
    assert set(table.class_ids.tolist()) == {-1, cat.id, dog.id}

    assert project.undo() == "delete class 'kitten'"
    assert _state(project) == before
    assert project.class_by_name("kitten") == project.classes()[1]
    assert project.classes()[1].colour == "#123456"

    assert project.redo() == "delete class 'kitten'"
    assert [c.name for c in project.classes()] == ["cat", "dog"]
    assert project.undo() == "delete class 'kitten'"
    assert _state(project) == before


def test_undo_survives_reopen_and_new_classes_never_take_a_removed_id(tmp_path, labelled):
    project, (cat, kitten, dog), ids = labelled
    before = _state(project)
    project.delete_class(dog.id)  # the newest id: SQLite alone would hand it out again
    bird = project.add_class("bird")
    assert bird.id not in {cat.id, kitten.id, dog.id}
    assert bird.colour != cat.colour and bird.colour != kitten.colour
    project.close()

    reopened = Project(tmp_path)
    assert reopened.undo() == "delete class 'dog'"
    assert [c.name for c in reopened.classes()] == ["cat", "kitten", "dog", "bird"]
    assert reopened.human_labels() == before[1]
    reopened.close()


def test_undo_of_a_delete_when_the_name_was_taken_meanwhile(labelled):
    project, (cat, kitten, dog), _ = labelled
    project.delete_class(dog.id)
    project.add_class("dog")  # not an undoable event: the delete can still be undone
    project.undo()
    names = [c.name for c in project.classes()]
    assert names == ["cat", "kitten", "dog (restored)", "dog"]
    assert project.class_by_name("dog (restored)").id == dog.id


def test_merge_moves_labels_and_pseudo_labels_drops_rejections_and_undoes(labelled):
    project, (cat, kitten, dog), ids = labelled
    before = _state(project)
    kitten_labels = {i: s for i, (c, s) in project.human_labels().items() if c == kitten.id}
    project.merge_classes([kitten.id], cat.id)
    assert [c.name for c in project.classes()] == ["cat", "dog"]
    human = project.human_labels()
    for item, source in kitten_labels.items():
        assert human[item] == (cat.id, source)  # the source is kept
    assert project.rejections() == []  # "not a kitten" is not "not a cat"
    table = project.label_table()
    row = {int(i): k for k, i in enumerate(table.item_ids)}
    assert table.class_ids[row[int(ids[7])]] == cat.id  # the rejected one shows as cat now
    assert table.source[row[int(ids[8])]] == "pseudo" and table.class_ids[row[int(ids[8])]] == cat.id
    assert project.class_usage(cat.id).human_total == 2 + len(kitten_labels)

    assert project.undo() == "merge 'kitten' into 'cat'"
    assert _state(project) == before
    project.redo()
    assert [c.name for c in project.classes()] == ["cat", "dog"]
    assert project.rejections() == []


def test_merge_several_sources_restores_their_order_on_undo(labelled):
    project, (cat, kitten, dog), ids = labelled
    bird = project.add_class("bird")
    project.set_labels(ids[11:], bird.id)
    before = _state(project)
    project.merge_classes([cat.id, dog.id], bird.id)
    assert [c.name for c in project.classes()] == ["kitten", "bird"]
    assert project.class_usage(bird.id).human_total == 2 + 1 + 1
    project.undo()
    assert _state(project) == before


def test_merge_and_delete_reject_bad_requests_and_change_nothing(labelled):
    project, (cat, kitten, dog), _ = labelled
    before = _state(project)
    with pytest.raises(ProjectError, match="into itself"):
        project.merge_classes([cat.id], cat.id)
    with pytest.raises(ProjectError, match="at least one"):
        project.merge_classes([], cat.id)
    with pytest.raises(ProjectError, match="no class with id 999"):
        project.merge_classes([kitten.id, 999], cat.id)
    with pytest.raises(ProjectError, match="no class with id 999"):
        project.delete_class(999)
    assert _state(project) == before


def test_a_new_label_action_after_undo_drops_the_redo_and_its_snapshot(labelled):
    project, (cat, kitten, dog), ids = labelled
    project.delete_class(kitten.id)
    project.undo()
    project.set_labels(ids[:1], dog.id)
    assert project.redo() is None
    assert project._query("SELECT COUNT(*) FROM event_classes")[0][0] == 0
    assert project.class_by_name("kitten") is not None


def test_redo_drops_pseudo_labels_a_propagation_made_after_the_undo(labelled):
    project, (cat, kitten, dog), ids = labelled
    project.delete_class(dog.id)
    project.undo()
    project.save_pseudo_labels(ids[8:], np.array([dog.id] * 4), np.full(4, 0.7))
    project.redo()  # would fail on the foreign key if the new dog pseudo-labels stayed
    assert project.class_by_name("dog") is None
    project.undo()  # brings back what was there at the redo
    assert sorted(c for _, c, _ in project._query("SELECT * FROM pseudo_labels")) == [dog.id] * 4


def test_stale_propagation_result_with_a_removed_class_is_saved_without_it(labelled):
    project, (cat, kitten, dog), ids = labelled
    project.delete_class(dog.id)
    project.save_pseudo_labels(ids[8:], np.array([cat.id, dog.id, dog.id, cat.id]), np.full(4, 0.6))
    assert sorted(c for _, c, _ in project._query("SELECT * FROM pseudo_labels")) == [cat.id, cat.id]


def test_an_old_project_without_the_new_tables_opens_and_deletes(tmp_path):
    old = Project(tmp_path)
    old.record_scan([ScannedFile("a.png", 10, 1, 8, 8, "RGB")], gone=[])
    old.add_class("cat")
    old.close()
    with sqlite3.connect(tmp_path / ".explorer" / "project.sqlite") as db:  # as version 1 wrote it
        db.execute("DROP TABLE event_classes")
        db.execute("DROP TABLE event_pseudo_labels")
    project = Project(tmp_path)
    project.delete_class(project.class_by_name("cat").id)
    assert project.undo() == "delete class 'cat'" and project.class_by_name("cat") is not None
    project.close()
