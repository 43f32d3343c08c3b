import csv
import json

import numpy as np
import pytest

from explorer.exchange.export import export, preview_export
from explorer.exchange.imagefolder import safe_folder_names
from explorer.exchange.manifest import ManifestError, import_labels
from explorer.images.scan import scan_collection
from explorer.store import Project
from tests.helpers import write_blobs


@pytest.fixture
def project(tmp_path):
    truth = write_blobs(tmp_path / "images", per_class=4)
    p = Project(tmp_path / "images")
    scan_collection(p)
    p.truth = truth
    yield p
    p.close()


def _write_csv(path, rows, header=("path", "label")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_import_then_export_csv_round_trip(tmp_path, project):
    labels = _write_csv(tmp_path / "in.csv", sorted(project.truth.items()))
    report = import_labels(project, labels)
    assert sum(report.imported.values()) == 12 and report.new_classes == ["blue", "green", "red"]
    export(project, "csv", tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == sorted(project.truth)
    assert all(
        r["label"] == project.truth[r["path"]] and r["source"] == "imported" and r["confidence"] == "1" for r in rows
    )
    # exporting and importing our own manifest changes nothing
    again = import_labels(project, tmp_path / "out.csv")
    assert again.unchanged == 12 and not again.imported
    # one undo takes the whole import back
    project.undo()
    project.undo()
    assert project.human_labels() == {}


def test_import_reports_unknown_paths_and_rejects_bad_files(tmp_path, project):
    first = sorted(project.truth)[0]
    report = import_labels(
        project, _write_csv(tmp_path / "a.csv", [(first, "red"), ("nope.png", "red"), (first.upper(), "")])
    )
    assert report.unknown_paths == ["nope.png"] and report.empty_labels == 1
    assert "nope.png" in report.summary()
    before = project.human_labels()
    with pytest.raises(ManifestError, match="path,label"):
        import_labels(project, _write_csv(tmp_path / "b.csv", [("x", "y")], header=("file", "class")))
    with pytest.raises(ManifestError, match="two different labels"):
        import_labels(project, _write_csv(tmp_path / "c.csv", [(first, "red"), (first, "blue")]))
    with pytest.raises(ManifestError, match="not found"):
        import_labels(project, tmp_path / "missing.csv")
    assert project.human_labels() == before


def test_export_filters_by_source_and_confidence(tmp_path, project):
    red = project.add_class("red")
    ids = project.item_ids()
    project.set_labels(ids[:2], red.id)
    project.save_pseudo_labels(ids, np.full(len(ids), red.id), np.linspace(0, 1, len(ids)))
    report = export(project, "jsonl", tmp_path / "out.jsonl", include=("seed", "pseudo"), min_confidence=0.5)
    records = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    assert len(records) == len(ids)
    labelled = [r for r in records if r["label"]]
    assert all(r["source"] == "seed" or r["confidence"] >= 0.5 for r in labelled)
    assert report.by_source["seed"] == 2 and report.labelled == len(labelled)
    assert preview_export(project, ("seed",)).labelled == 2
    only = export(project, "csv", tmp_path / "seed.csv", include=("seed",), labelled_only=True)
    assert only.rows == 2


def test_imagefolder_export_reads_back_with_torchvision(tmp_path, project):
    from torchvision.datasets import ImageFolder

    import_labels(project, _write_csv(tmp_path / "in.csv", sorted(project.truth.items())))
    export(project, "imagefolder", tmp_path / "tree")
    dataset = ImageFolder(tmp_path / "tree")
    assert len(dataset) == 12
    mapping = json.loads((tmp_path / "tree" / "classes.json").read_text())
    for path, target in dataset.samples:
        name = path.rsplit("/", 1)[1]
        assert project.truth[name] == mapping[dataset.classes[target]]
    with pytest.raises(ManifestError, match="not empty"):
        export(project, "imagefolder", tmp_path / "tree")
    assert not list(tmp_path.glob(".tree.partial*"))


def test_hostile_class_names_become_distinct_safe_folders():
    names = ["a/b", "..", ".", "CON", "con.txt", "x\x00y", "A", "a", "é" * 80, "trailing. ", "a\\b", ""]
    folders = safe_folder_names(names)
    values = list(folders.values())
    assert len({v.casefold() for v in values}) == len(names)
    for v in values:
        assert v and v not in (".", "..") and "/" not in v and "\\" not in v and "\x00" not in v
        assert len(v.encode()) <= 100 and not v.endswith((".", " "))
        assert v.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL"}
