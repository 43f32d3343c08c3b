"""Labels in: CSV / JSON Lines manifests and class-per-folder collections."""

import json
import shutil

import pytest

from explorer.cli import main
from explorer.exchange import manifest
from explorer.exchange.export import export
from explorer.exchange.folders import labels_from_folders
from explorer.exchange.manifest import ManifestError, import_labels
from explorer.images.scan import scan_collection
from explorer.store import Project
from tests.blobs import write_blobs
from tests.exchange.conftest import read_csv, store_state, write_csv


def test_import_then_export_csv_round_trip(tmp_path, project):
    labels = write_csv(tmp_path / "in.csv", sorted(project.truth.items()))
    report = import_labels(project, labels)
    assert sum(report.imported.values()) == 12 and report.new_classes == ["blue", "green", "red"]
    export(project, "csv", tmp_path / "out.csv")
    rows = read_csv(tmp_path / "out.csv")
    assert [r["path"] for r in rows] == sorted(project.truth)
    assert all(
        r["label"] == project.truth[r["path"]] and r["source"] == "imported" and r["confidence"] == "1" for r in rows
    )
    # exporting and importing our own manifest changes nothing
    again = import_labels(project, tmp_path / "out.csv")
    assert again.unchanged == 12 and not again.imported
    # one undo takes the whole import back
    project.undo()
    assert project.human_labels() == {}


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_import_then_export_of_the_same_manifest_is_byte_identical(tmp_path, labelled, fmt):
    """A manifest of human labels (and unlabelled rows) survives import into a fresh project unchanged."""
    first = tmp_path / f"first.{fmt}"
    export(labelled, fmt, first, include=("seed", "accepted", "imported"))
    fresh = Project(labelled.root, tmp_path / "other-state")
    scan_collection(fresh)
    report = import_labels(fresh, first)
    assert report.imported == {"seed": 6, "accepted": 3, "imported": 3} and report.empty_labels == 6
    second = tmp_path / f"second.{fmt}"
    export(fresh, fmt, second)
    assert second.read_bytes() == first.read_bytes()
    fresh.close()


def test_import_reports_unknown_paths_and_takes_absolute_ones(tmp_path, project):
    first, second = sorted(project.truth)[:2]
    rows = [(first, "red"), ("nope.png", "red"), ("sub/gone.png", "blue"), (str(project.root / second), "blue")]
    report = import_labels(project, write_csv(tmp_path / "a.csv", rows))
    assert report.unknown_paths == ["nope.png", "sub/gone.png"] and report.imported == {"imported": 2}
    assert "2 row(s) name files not in the collection, e.g. nope.png, sub/gone.png" in report.summary()
    by_path = {project.paths_by_id()[i]: c for i, (c, _) in project.human_labels().items()}
    names = {c.id: c.name for c in project.classes()}
    assert {p: names[c] for p, c in by_path.items()} == {first: "red", second: "blue"}


def test_import_json_lines_with_sources(tmp_path, project):
    a, b, c = sorted(project.truth)[:3]
    lines = [
        {"path": a, "label": "red", "source": "seed", "confidence": 1},
        {"path": b, "label": "blue", "source": "pseudo", "confidence": 0.4},
        {"path": c, "label": 7},
    ]
    file = tmp_path / "labels.jsonl"
    file.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    report = import_labels(project, file)
    assert report.imported == {"seed": 1, "imported": 1} and report.pseudo_rows == 1
    assert "7" in {cl.name for cl in project.classes()}


BAD_FILES = [
    # (file name, content, words the message must contain)
    ("cols.csv", "file,class\na.png,red\n", "path,label"),
    ("dup-header.csv", "path,label,label\nimg-0000.png,red,red\n", "more than once"),
    ("source-no-label.csv", "path,label,source\nimg-0000.png,,seed\n", "line 2: source 'seed' but an empty label"),
    ("unknown-source.csv", "path,label,source\nimg-0000.png,red,robot\n", "line 2: unknown source 'robot'"),
    ("confidence.csv", "path,label,source,confidence\nimg-0000.png,red,seed,lots\n", "line 2: confidence 'lots'"),
    ("range.csv", "path,label,source,confidence\nimg-0000.png,red,pseudo,1.5\n", "not a number from 0 to 1"),
    ("conflict.csv", "path,label\nimg-0000.png,red\nimg-0001.png,red\n./img-0000.png,blue\n", "two different labels"),
    ("no-labels.csv", "path,label\nimg-0000.png,\nimg-0001.png,\n", "no row has a label"),
    ("empty-path.csv", "path,label\n,red\n", "line 2: empty path"),
    ("extra.csv", "path,label\nimg-0000.png,red,oops\n", "line 2: more values than columns"),
    ("nul.csv", "path,label\nimg-0000.png,r\x00ed\n", "line 2: a NUL character"),
    ("huge-field.csv", 'path,label\nimg-0000.png,"' + "x" * 200_000 + '"\n', "not a readable CSV"),
    ("long-label.csv", "path,label\nimg-0000.png," + "x" * 1001 + "\n", "at most 1000"),
    ("latin1.csv", "path,label\nimg-0000.png,caf\xe9\n".encode("latin-1"), "not UTF-8"),
    ("broken.jsonl", '{"path": "img-0000.png", "label": "red"}\n{"path": \n', "line 2: not valid JSON"),
    ("list.jsonl", '["img-0000.png", "red"]\n', 'line 1: needs "path" and "label"'),
    ("nested.jsonl", '{"path": "img-0000.png", "label": ["red"]}\n', "'label' must be text or a number"),
    ("empty.csv", "", "found nothing"),
]


@pytest.mark.parametrize("name,content,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_label_files_name_the_problem_and_change_nothing(tmp_path, project, name, content, message):
    import_labels(project, write_csv(tmp_path / "good.csv", [("img-0005.png", "green")]))
    before = store_state(project)
    file = tmp_path / name
    (file.write_bytes if isinstance(content, bytes) else file.write_text)(content)
    with pytest.raises(ManifestError) as exc:
        import_labels(project, file)
    assert message in str(exc.value) and name in str(exc.value)
    assert store_state(project) == before


def test_huge_and_missing_label_files_are_refused(tmp_path, project, monkeypatch):
    file = write_csv(tmp_path / "big.csv", [(p, "red") for p in project.truth])
    monkeypatch.setattr(manifest, "MAX_MANIFEST_BYTES", 100)
    with pytest.raises(ManifestError, match="MiB are refused"):
        import_labels(project, file)
    with pytest.raises(ManifestError, match="not found"):
        import_labels(project, tmp_path / "missing.csv")
    assert project.human_labels() == {}


def test_cli_labels_import_errors_exit_1_and_change_nothing(tmp_path, project, capsys):
    bad = write_csv(tmp_path / "bad.csv", [("img-0000.png", "red"), ("img-0000.png", "blue")])
    assert main(["labels", "import", str(project.root), str(bad)]) == 1
    assert "two different labels" in capsys.readouterr().err
    assert project.human_labels() == {}


# ---- class-per-folder collections -----------------------------------------------------------------
def _folder_collection(root):
    """train/<class>/..., val/<class>/... and one image at the top; returns path -> class."""
    truth = {}
    for split, per_class in (("train", 3), ("val", 1)):
        blobs = write_blobs(root / "_tmp", per_class=per_class, seed=len(truth))
        for name, cls in blobs.items():
            target = root / split / cls / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(root / "_tmp" / name, target)
            truth[f"{split}/{cls}/{name}"] = cls
        shutil.rmtree(root / "_tmp")
    write_blobs(root / "_tmp", per_class=1)
    shutil.move(root / "_tmp" / "img-0000.png", root / "loose.png")
    shutil.rmtree(root / "_tmp")
    return truth


def _labels_by_path(project):
    names = {c.id: c.name for c in project.classes()}
    paths = project.paths_by_id()
    return {paths[i]: (names[c], s) for i, (c, s) in project.human_labels().items()}


def test_scan_labels_from_folders_uses_the_immediate_parent(tmp_path, capsys):
    root = tmp_path / "photos"
    truth = _folder_collection(root)
    assert main(["scan", str(root), "--labels-from-folders"]) == 0
    out = capsys.readouterr().out
    assert "12 label(s) set (12 imported)" in out and "1 image(s) at the top level" in out
    with Project(root) as project:
        assert _labels_by_path(project) == {p: (c, "imported") for p, c in truth.items()}
        assert len(project.history()) == 1  # one undoable event
        # a person's label survives scanning again
        item = project.item_by_path("train/red/img-0000.png")
        project.set_labels([item.id], project.add_class("green").id, "seed")
        report = labels_from_folders(project)
        assert report.kept_human == 1 and report.unchanged == 11 and not report.imported
        assert _labels_by_path(project)["train/red/img-0000.png"] == ("green", "seed")
        project.undo()
        project.undo()
        assert project.human_labels() == {}


def test_exported_tree_scanned_with_labels_from_folders_gives_the_class_names_back(tmp_path, project):
    hostile = {"red": "a/b", "green": "CON", "blue": "..\x01"}
    names = project.ensure_classes(hostile.values())
    ids = {item.path: item.id for item in project.items()}
    project.set_labels_many({ids[p]: (names[hostile[c]], "seed") for p, c in project.truth.items()}, "seed")
    export(project, "imagefolder", tmp_path / "tree", split=0.5)
    with Project(tmp_path / "tree", tmp_path / "tree-state") as copy:
        scan_collection(copy)
        report = labels_from_folders(copy)
        assert report.imported == {"imported": 12} and report.no_folder == 0
        by_file = {p.rsplit("/", 1)[1]: label for p, (label, _) in _labels_by_path(copy).items()}
    assert by_file == {p: hostile[c] for p, c in project.truth.items()}
