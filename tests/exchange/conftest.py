import csv
import json

import numpy as np
import pytest

from explorer.images.scan import scan_collection
from explorer.store import Project
from tests.blobs import write_blobs


def write_csv(path, rows, header=("path", "label")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def store_state(project):
    """Everything an import could change: labels, classes, undo history, runs."""
    return (project.human_labels(), project.classes(), project.history(), project.runs())


def label_every_way(project, truth, class_names=None):
    """Give the collection labels of every source; returns path -> (label, source, confidence).

    Per class (by ``truth``), in path order: 2 seed, 1 accepted, 1 imported, the rest pseudo with
    confidences spread over 0.3..0.9. ``class_names`` renames the true classes (e.g. to hostile names).
    """
    names = class_names or {}
    ids = {item.path: item.id for item in project.items()}
    expected, pseudo = {}, []
    by_class = {}
    for path in sorted(truth):
        by_class.setdefault(truth[path], []).append(path)
    for cls, paths in by_class.items():
        name = names.get(cls, cls)
        class_id = project.add_class(name).id
        for k, path in enumerate(paths):
            if k < 4:
                source = ("seed", "seed", "accepted", "imported")[k]
                project.set_labels([ids[path]], class_id, source)
                expected[path] = (name, source, 1.0)
            else:
                pseudo.append((ids[path], class_id, path, name))
    confidence = np.linspace(0.3, 0.9, len(pseudo))
    project.save_pseudo_labels(
        np.array([p[0] for p in pseudo]), np.array([p[1] for p in pseudo]), confidence.astype(np.float64)
    )
    for (_, _, path, name), c in zip(pseudo, confidence):
        expected[path] = (name, "pseudo", float(c))
    return expected


def make_project(folder, per_class=4, state=None):
    truth = write_blobs(folder, per_class=per_class)
    project = Project(folder, state)
    scan_collection(project)
    project.truth = truth
    return project


@pytest.fixture
def project(tmp_path):
    p = make_project(tmp_path / "images")
    yield p
    p.close()


@pytest.fixture
def labelled(tmp_path):
    """A project of 18 images with labels of every source; ``.expected`` is path -> (label, source, confidence)."""
    p = make_project(tmp_path / "images", per_class=6)
    p.expected = label_every_way(p, p.truth)
    yield p
    p.close()
