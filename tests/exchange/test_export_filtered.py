"""Exporting exactly what a filter keeps (or a lasso selected): ``export(items=...)``, the filter
flags of ``explorer export`` and ``explorer find``, row by row."""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime

import pytest

from explorer.cli import main
from explorer.exchange.export import export, preview_export
from explorer.images.scan import scan_collection
from explorer.store import Project
from explorer.store.filters import Filter, find
from tests.blobs import write_blobs
from tests.exchange.conftest import label_every_way, read_csv

OLD = datetime(2023, 6, 1).timestamp()  # a third of the files were last modified then


@pytest.fixture
def dated(tmp_path):
    """18 images (6 per class, labels of every source, see ``label_every_way``); every third
    file modified on 2023-06-01, and those also 48x24 pixels instead of 24x24."""
    from PIL import Image

    root = tmp_path / "images"
    truth = write_blobs(root, per_class=6)
    old = sorted(truth)[::3]
    for name in old:
        Image.new("RGB", (48, 24), (200, 10, 10)).save(root / name)
        os.utime(root / name, (OLD, OLD))
    project = Project(root)
    scan_collection(project)
    project.expected = label_every_way(project, truth)
    project.old = old
    yield project
    project.close()


def run(*argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def labelled_rows(path) -> dict[str, tuple[str, str]]:
    return {r["path"]: (r["label"], r["source"]) for r in read_csv(path)}


def test_export_of_items_writes_exactly_those_rows(tmp_path, labelled):
    ids = {item.path: item.id for item in labelled.items()}
    chosen = sorted(labelled.expected)[3:11]
    report = export(labelled, "csv", tmp_path / "some.csv", items=[ids[p] for p in chosen])
    rows = read_csv(tmp_path / "some.csv")
    assert [r["path"] for r in rows] == chosen and report.rows == 8
    full = {r["path"]: r for r in read_csv(export(labelled, "csv", tmp_path / "all.csv").out)}
    assert rows == [full[p] for p in chosen]  # the same rows, labels and all, as in the full export
    preview = preview_export(labelled, fmt="csv", items=[ids[p] for p in chosen])
    assert preview.counts == report.counts and preview.rows == report.rows

    report = export(labelled, "imagefolder", tmp_path / "tree", items=[ids[p] for p in chosen])
    written = sorted(f.name for f in (tmp_path / "tree").rglob("*.png"))
    assert written == sorted(chosen) and report.rows == 8
    assert preview_export(labelled, fmt="imagefolder", items=[ids[p] for p in chosen]).counts == report.counts
    assert export(labelled, "csv", tmp_path / "none.csv", items=[]).rows == 0
    assert read_csv(tmp_path / "none.csv") == []


def test_export_flags_write_exactly_the_filtered_rows(tmp_path, dated, capsys):
    root, expected = dated.root, dated.expected
    code, _, err = run("export", root, tmp_path / "red.csv", "--label", "red", "--source", "seed,pseudo", capsys=capsys)
    assert code == 0, err
    want = {p: (lab, s) for p, (lab, s, _) in expected.items() if lab == "red" and s in ("seed", "pseudo")}
    assert labelled_rows(tmp_path / "red.csv") == want

    # --include still chooses which labels are written; the filter chooses the images
    code, _, err = run(
        "export", root, tmp_path / "p.csv", "--source", "pseudo", "--confidence", "0.5:", "--include", "seed",
        capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    pseudo = {p for p, (_, s, c) in expected.items() if s == "pseudo" and c >= 0.5}
    assert labelled_rows(tmp_path / "p.csv") == {p: ("", "") for p in pseudo}

    code, _, err = run(
        "export", root, tmp_path / "old", "--format", "imagefolder", "--modified-before", "2024-01-01", capsys=capsys
    )
    assert code == 0, err
    assert sorted(f.name for f in (tmp_path / "old").rglob("*.png")) == sorted(dated.old)
    code, _, err = run("export", root, tmp_path / "wide.csv", "--size", "40x:", "--path", "img-000*", capsys=capsys)
    assert code == 0, err
    assert sorted(labelled_rows(tmp_path / "wide.csv")) == [p for p in dated.old if p.startswith("img-000")]

    code, _, err = run("export", root, tmp_path / "everything.csv", capsys=capsys)
    assert code == 0 and len(read_csv(tmp_path / "everything.csv")) == 18  # no flags: every image, as before


def test_find_prints_the_count_and_first_rows_and_writes_all(tmp_path, dated, capsys):
    code, out, err = run(
        "find", dated.root, "--source", "human", "--n", "3", "--out", tmp_path / "human.csv", capsys=capsys
    )
    assert code == 0, err
    human = sorted(p for p, (_, s, _) in dated.expected.items() if s != "pseudo")
    lines = out.splitlines()
    assert lines[0].split() == ["path", "label", "source", "confidence", "size"] and len(lines) == 4
    first = [line.split() for line in lines[1:]]
    assert [row[0] for row in first] == human[:3]
    assert all(row[1:4] == [*dated.expected[row[0]][:2], "1"] for row in first)
    assert all(row[4] == ("48x24" if row[0] in dated.old else "24x24") for row in first)
    assert f"12 of 18 images match (source human); all written to {tmp_path / 'human.csv'}" in err
    rows = read_csv(tmp_path / "human.csv")
    assert list(rows[0]) == ["path", "label", "source", "confidence"]  # the manifest's columns
    assert {r["path"]: (r["label"], r["source"]) for r in rows} == {p: dated.expected[p][:2] for p in human}

    code, out, err = run(
        "find", dated.root, "--path", r"re:000[0-4]\.png$", "--modified-after", "2024-1-1", capsys=capsys
    )
    assert code == 1 and "'2024-1-1' is not a date" in err  # ISO dates only, named
    code, out, err = run("find", dated.root, "--path", r"re:000[0-4]\.png$", capsys=capsys)
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == [f"img-000{k}.png" for k in range(5)]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--label", "purple"], "no class named 'purple'"),
        (["--source", "pseudo,mystery"], "unknown label source 'mystery'"),
        (["--confidence", "0.8:0.2"], "minimum 0.8 is above the maximum 0.2"),
        (["--confidence", "high"], "confidence 'high'"),
        (["--size", "big"], "size 'big'"),
        (["--path", "re:("], "invalid regular expression"),
    ],
)
def test_bad_filter_flags_stop_with_the_value_named(tmp_path, dated, capsys, flags, message):
    for verb in (["find", dated.root], ["export", dated.root, tmp_path / "x.csv"]):
        code, _, err = run(*verb, *flags, capsys=capsys)
        assert code == 1 and message in err
    assert not (tmp_path / "x.csv").exists()


def test_find_in_python_matches_the_cli(dated, tmp_path, capsys):
    ids = find(dated, Filter(classes=("green",), max_confidence=0.6))
    run("find", dated.root, "--label", "green", "--confidence", ":0.6", "--out", tmp_path / "g.csv", capsys=capsys)
    paths = dated.paths_by_id()
    assert sorted(paths[int(i)] for i in ids) == [r["path"] for r in read_csv(tmp_path / "g.csv")]
    assert Counter(r["source"] for r in read_csv(tmp_path / "g.csv")) == Counter(
        s for lab, s, c in dated.expected.values() if lab == "green" and c <= 0.6
    )
