"""Labels out: every format read back with the reader its users use, compared item by item."""

import json
import os
from collections import Counter

import numpy as np
import pytest

from explorer.cli import main
from explorer.exchange.atomic import ExportError
from explorer.exchange.embeddings import import_embeddings
from explorer.exchange.export import FORMATS, export, preview_export, stratified_split
from explorer.exchange.manifest import manifest_rows
from explorer.exchange.names import flat_file_names, safe_folder_names
from explorer.jobs import Cancelled, CancelToken
from tests.exchange.conftest import label_every_way, make_project, read_csv, read_jsonl

HOSTILE = {
    "red": "a/b",  # a path separator ...
    "green": "a_b",  # ... and the name it becomes: they must not share a folder
    "blue": "CON",  # a Windows device name
}
MORE_HOSTILE = ["..", ".", "aux.txt", "x\x01y\x1f", "Cat", "cat", "é" * 120, "trailing. ", "a\\b", "lpt1", ".hidden"]


def _expected(project, include=("seed", "accepted", "imported", "pseudo"), min_confidence=0.0):
    """path -> (label, source, confidence) of what an export with these filters holds."""
    return {
        p: v for p, v in project.expected.items() if v[1] in include and (v[1] != "pseudo" or v[2] >= min_confidence)
    }


def _confidence(value):
    return round(float(value), 4)


def _tree_labels(root, folder_of_file):
    """path in the collection -> class name, from an exported tree (file names are flattened paths)."""
    files = {name: path for path, name in flat_file_names(folder_of_file).items()}
    return files


# ---- manifests ------------------------------------------------------------------------------------
def test_csv_and_jsonl_read_back_with_csv_pandas_and_json(tmp_path, labelled):
    import pandas as pd

    want = _expected(labelled, ("seed", "pseudo"), 0.5)
    report = export(labelled, "csv", tmp_path / "out.csv", include=("seed", "pseudo"), min_confidence=0.5)
    rows = read_csv(tmp_path / "out.csv")
    assert list(rows[0]) == ["path", "label", "source", "confidence"] and len(rows) == 18
    got = {r["path"]: (r["label"], r["source"], _confidence(r["confidence"])) for r in rows if r["label"]}
    assert got == {p: (lab, s, _confidence(c)) for p, (lab, s, c) in want.items()}
    assert all(not r["source"] and not r["confidence"] for r in rows if not r["label"])
    frame = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert frame["path"].tolist() == sorted(labelled.expected) and frame["label"].tolist() == [r["label"] for r in rows]
    assert report.counts == Counter((lab, s) for lab, s, _ in want.values())

    export(labelled, "jsonl", tmp_path / "out.jsonl", include=("seed", "pseudo"), min_confidence=0.5)
    records = read_jsonl(tmp_path / "out.jsonl")
    got = {r["path"]: (r["label"], r["source"], _confidence(r["confidence"])) for r in records if r["label"]}
    assert got == {p: (lab, s, _confidence(c)) for p, (lab, s, c) in want.items()}
    assert all(r["confidence"] is None for r in records if not r["label"])
    assert pd.read_json(tmp_path / "out.jsonl", lines=True)["path"].tolist() == sorted(labelled.expected)


# ---- ImageFolder ----------------------------------------------------------------------------------
def _imagefolder_labels(folder):
    """path in the collection -> class name, as torchvision's ImageFolder and classes.json say."""
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(folder)
    mapping = json.loads((folder / "classes.json").read_text(encoding="utf-8"))
    assert sorted(mapping) == dataset.classes
    return {os.path.basename(path): mapping[dataset.classes[target]] for path, target in dataset.samples}


def test_imagefolder_reads_back_with_torchvision(tmp_path, labelled):
    want = _expected(labelled, ("seed", "accepted", "pseudo"), 0.6)
    report = export(
        labelled, "imagefolder", tmp_path / "tree", include=("seed", "accepted", "pseudo"), min_confidence=0.6
    )
    got = _imagefolder_labels(tmp_path / "tree")
    assert got == {p: lab for p, (lab, _, _) in want.items()}
    assert report.rows == len(want) and report.counts == Counter((lab, s) for lab, s, _ in want.values())
    # the manifest inside the tree keeps the provenance, with paths relative to the tree
    inside = {
        r["path"].rsplit("/", 1)[1]: (r["label"], r["source"]) for r in read_csv(tmp_path / "tree" / "manifest.csv")
    }
    assert inside == {p: (lab, s) for p, (lab, s, _) in want.items()}
    with pytest.raises(ExportError, match="not empty"):
        export(labelled, "imagefolder", tmp_path / "tree")
    assert not list(tmp_path.glob(".tree.partial*"))


def test_imagefolder_split_is_stratified_seeded_and_readable(tmp_path, labelled):
    report = export(labelled, "imagefolder", tmp_path / "tree", split=0.75, seed=3)
    train = _imagefolder_labels(tmp_path / "tree" / "train")
    val = _imagefolder_labels(tmp_path / "tree" / "val")
    assert not train.keys() & val.keys()
    assert {**train, **val} == {p: lab for p, (lab, _, _) in labelled.expected.items()}
    assert Counter(train.values()) == {"red": 4, "green": 4, "blue": 4}  # round(0.75 x 6) per class
    assert report.splits == {"train": Counter(train.values()), "val": Counter(val.values())}
    preview = preview_export(labelled, fmt="imagefolder", split=0.75, seed=3)
    assert preview.splits == report.splits and preview.counts == report.counts
    rows = manifest_rows(labelled)
    assert stratified_split(rows, 0.75, 3) == stratified_split(rows, 0.75, 3)
    assert stratified_split(rows, 0.75, 3) != stratified_split(rows, 0.75, 4)
    # labelling more of one class leaves the other classes' split as it was
    fewer = [
        r for r in rows if not (r.label == "red" and r.path == max(p for p, c in labelled.truth.items() if c == "red"))
    ]
    before, after = stratified_split(rows, 0.75, 3), stratified_split(fewer, 0.75, 3)
    assert {p: s for p, s in before.items() if labelled.truth[p] != "red"} == {
        p: s for p, s in after.items() if labelled.truth[p] != "red"
    }
    with pytest.raises(ExportError, match="between 0 and 1"):
        stratified_split(rows, 1.0)
    with pytest.raises(ExportError, match="applies to imagefolder, huggingface"):
        export(labelled, "csv", tmp_path / "x.csv", split=0.8)


@pytest.mark.parametrize("mode", ["hardlink", "symlink"])
def test_imagefolder_links(tmp_path, labelled, mode):
    export(labelled, "imagefolder", tmp_path / "tree", mode=mode, include=("seed",))
    files = sorted((tmp_path / "tree").glob("*/*.png"))
    assert len(files) == 6
    for f in files:
        original = labelled.root / f.name
        if mode == "symlink":
            assert f.is_symlink() and f.resolve() == original.resolve()
        else:
            assert not f.is_symlink() and f.stat().st_ino == original.stat().st_ino
    assert len(_imagefolder_labels(tmp_path / "tree")) == 6


def test_files_gone_since_the_scan_are_left_out_and_reported(tmp_path, labelled):
    gone = sorted(labelled.expected)[0]
    (labelled.root / gone).unlink()
    report = export(labelled, "imagefolder", tmp_path / "tree")
    assert report.missing == [gone] and report.rows == 17 and "gone since the last scan" in report.summary()
    assert gone not in _imagefolder_labels(tmp_path / "tree") and len(_imagefolder_labels(tmp_path / "tree")) == 17


# ---- Hugging Face ---------------------------------------------------------------------------------
def _load_hf(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    return datasets.load_dataset("imagefolder", data_dir=str(folder), cache_dir=str(tmp_path / "hf-cache"))


def test_huggingface_layout_loads_offline_with_datasets(tmp_path, labelled, monkeypatch):
    # classes named like splits must not turn into splits
    labelled.set_labels([labelled.item_by_path(sorted(labelled.expected)[-1]).id], labelled.add_class("test").id)
    labelled.expected[sorted(labelled.expected)[-1]] = ("test", "seed", 1.0)
    report = export(labelled, "huggingface", tmp_path / "hf", split=0.5, seed=1)
    loaded = _load_hf(tmp_path / "hf", tmp_path, monkeypatch)
    assert set(loaded) == {"train", "validation"}
    got = {}
    for split in loaded:
        for row in loaded[split]:
            assert row["image"].size == (24, 24)
            got[row["path"]] = (row["label"], row["source"], _confidence(row["confidence"]), split)
    assert {p: v[:3] for p, v in got.items()} == {
        p: (lab, s, _confidence(c)) for p, (lab, s, c) in labelled.expected.items()
    }
    assert Counter(v[3] for v in got.values()) == {"train": report.splits["train"].total(), "validation": 9}


# ---- COCO -----------------------------------------------------------------------------------------
def test_coco_json_has_images_categories_and_scored_annotations(tmp_path, labelled):
    export(labelled, "coco", tmp_path / "labels.json", include=("accepted", "pseudo"), min_confidence=0.5)
    coco = json.loads((tmp_path / "labels.json").read_text())
    images = {im["id"]: im for im in coco["images"]}
    categories = {c["id"]: c["name"] for c in coco["categories"]}
    assert len(images) == 18 and all(im["width"] == 24 and im["height"] == 24 for im in images.values())
    assert sorted(categories.values()) == ["blue", "green", "red"]
    got = {
        images[a["image_id"]]["file_name"]: (categories[a["category_id"]], a["source"], _confidence(a["score"]))
        for a in coco["annotations"]
    }
    want = _expected(labelled, ("accepted", "pseudo"), 0.5)
    assert got == {p: (lab, s, _confidence(c)) for p, (lab, s, c) in want.items()}
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])


# ---- Parquet --------------------------------------------------------------------------------------
def _give_embeddings_and_map(project, tmp_path):
    """Imported embeddings for every image but the first, and a map for every image but the last."""
    items = project.items()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(items) - 1, 8)).astype(np.float32)
    np.save(tmp_path / "vectors.npy", vectors)
    (tmp_path / "paths.txt").write_text("\n".join(i.path for i in items[1:]) + "\n")
    import_embeddings(project, tmp_path / "vectors.npy", tmp_path / "paths.txt")
    run = project.start_run("map", {})
    ids = np.array([i.id for i in items[:-1]], np.int64)
    xy = rng.normal(size=(len(ids), 2)).astype(np.float32)
    project.save_run_arrays(
        run,
        item_ids=ids,
        xy=xy,
        knn_indices=np.zeros((len(ids), 2), np.int64),
        knn_similarities=np.zeros((len(ids), 2), np.float32),
    )
    project.finish_run(run, "done")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return {i.path: v for i, v in zip(items[1:], unit)}, {i.path: p for i, p in zip(items[:-1], xy)}


def test_parquet_reads_back_with_pandas_and_imports_as_embeddings(tmp_path, labelled):
    import pandas as pd

    with pytest.raises(ExportError, match="no embeddings yet"):
        export(labelled, "parquet", tmp_path / "table.parquet")
    vectors, xy = _give_embeddings_and_map(labelled, tmp_path)
    export(labelled, "parquet", tmp_path / "table.parquet", include=("seed", "imported"))
    frame = pd.read_parquet(tmp_path / "table.parquet")
    assert list(frame.columns) == ["path", "embedding", "x", "y", "label", "source", "confidence"]
    want = _expected(labelled, ("seed", "imported"))
    for row in frame.itertuples():
        if row.path in vectors:
            np.testing.assert_allclose(np.asarray(row.embedding), vectors[row.path], rtol=1e-6)
        else:
            assert row.embedding is None
        if row.path in xy:
            assert (row.x, row.y) == tuple(xy[row.path])
        else:
            assert np.isnan(row.x) and np.isnan(row.y)
        if row.path in want:
            assert (row.label, row.source, row.confidence) == want[row.path]
        else:
            assert pd.isna(row.label) and pd.isna(row.source) and pd.isna(row.confidence)
    # the table is itself an embeddings file another project can start from
    other = make_project(tmp_path / "copy", per_class=6)
    report = import_embeddings(other, tmp_path / "table.parquet")
    assert report.items == 17 and report.missing == 1
    ids = {i.id: i.path for i in other.items()}
    run = other.latest_run("embed").id
    for item_id, vector in zip(other.load_run_array(run, "item_ids"), other.load_run_array(run, "embeddings")):
        np.testing.assert_allclose(vector, vectors[ids[int(item_id)]], rtol=1e-5)
    other.close()


# ---- every format -----------------------------------------------------------------------------------
def _out(tmp_path, fmt):
    return tmp_path / (f"out{FORMATS[fmt].suffix}" if not FORMATS[fmt].folder else "out")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_preview_counts_what_the_export_writes(tmp_path, labelled, fmt):
    _give_embeddings_and_map(labelled, tmp_path)
    settings = {"include": ("seed", "imported", "pseudo"), "min_confidence": 0.55}
    preview = preview_export(labelled, fmt=fmt, **settings)
    report = export(labelled, fmt, _out(tmp_path, fmt), **settings)
    want = Counter((lab, s) for lab, s, _ in _expected(labelled, **settings).values())
    assert preview.counts == report.counts == want
    assert preview.rows == report.rows == (sum(want.values()) if FORMATS[fmt].folder else 18)
    assert preview.table() == report.table() and preview.table()[0][0] == "blue"
    assert "would write" in preview.summary() and "wrote" in report.summary()


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_cancelled_export_leaves_nothing_that_looks_complete(tmp_path, labelled, fmt):
    _give_embeddings_and_map(labelled, tmp_path)
    before = set(os.listdir(tmp_path))

    class CancelMidway(CancelToken):
        """Cancels itself once the export has started writing: a temporary file, or an image in the tree."""

        started = False

        def raise_if_cancelled(self):
            temporary = [p for p in tmp_path.glob(".out*") if p.is_file()] or list(tmp_path.glob(".out*/**/*.png"))
            if temporary:
                self.started = True
                self.cancel()
            super().raise_if_cancelled()

    token = CancelMidway()
    with pytest.raises(Cancelled):
        export(labelled, fmt, _out(tmp_path, fmt), cancel=token)
    assert token.started and set(os.listdir(tmp_path)) == before


def test_hostile_class_names_become_distinct_safe_folders():
    names = ["a/b", "..", ".", "CON", "con.txt", "x\x00y", "A", "a", "é" * 80, "trailing. ", "a\\b", "", " aux "]
    folders = safe_folder_names(names)
    values = list(folders.values())
    assert len({v.casefold() for v in values}) == len(names)
    for v in values:
        assert v and not v.startswith(".") and "/" not in v and "\\" not in v and "\x00" not in v
        assert len(v.encode()) <= 100 and not v.endswith((".", " "))
        assert v.split(".")[0].strip().upper() not in {"CON", "PRN", "AUX", "NUL"}
    files = flat_file_names(["a/b.png", "a__b.png", "A/B.png", "con.png", "x/" + "é" * 200 + ".jpg"])
    assert len({f.casefold() for f in files.values()}) == 5
    assert all(f.endswith((".png", ".jpg")) and len(f.encode()) <= 255 for f in files.values())
    assert files["con.png"] == "_con.png" and files["a/b.png"] == "a__b.png"


def test_hostile_class_names_survive_imagefolder_and_huggingface(tmp_path, monkeypatch):
    project = make_project(tmp_path / "images", per_class=8)
    project.expected = label_every_way(project, project.truth, HOSTILE)
    pseudo = [p for p, (_, source, _) in sorted(project.expected.items()) if source == "pseudo"]
    extra = dict(zip(pseudo, MORE_HOSTILE, strict=False))  # one image each, taken from the pseudo-labelled
    ids = {item.path: item.id for item in project.items()}
    classes = project.ensure_classes(extra.values())
    project.set_labels_many({ids[p]: (classes[name], "seed") for p, name in extra.items()}, "hostile")
    want = {p: lab for p, (lab, _, _) in project.expected.items()}
    want.update({p: project.class_by_name(n.strip()).name for p, n in extra.items()})
    report = export(project, "imagefolder", tmp_path / "tree")
    assert _imagefolder_labels(tmp_path / "tree") == want
    assert len(set(report.folders.values())) == len(report.folders) == len(project.classes()) == 14
    export(project, "huggingface", tmp_path / "hf")
    loaded = _load_hf(tmp_path / "hf", tmp_path, monkeypatch)
    assert {row["path"]: row["label"] for row in loaded["train"]} == want
    project.close()


def test_cli_export_formats_split_and_summary(tmp_path, labelled, capsys):
    root = str(labelled.root)
    assert main(["export", root, str(tmp_path / "out.json"), "--include", "seed"]) == 0
    out = capsys.readouterr().out
    assert "wrote 18 rows (6 labelled)" in out and "red" in out
    assert json.loads((tmp_path / "out.json").read_text())["annotations"]  # .json means COCO
    assert (
        main(["export", root, str(tmp_path / "tree"), "--format", "imagefolder", "--split", "0.5", "--seed", "2"]) == 0
    )
    assert "train: 9 images" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "tree").iterdir()) == ["manifest.csv", "train", "val"]
    assert main(["export", root, str(tmp_path / "x.csv"), "--split", "0.5"]) == 1
    assert "applies to imagefolder" in capsys.readouterr().err
    assert main(["export", root, str(tmp_path / "t.parquet")]) == 1
    assert "no embeddings yet" in capsys.readouterr().err
    assert not (tmp_path / "t.parquet").exists()


def test_export_refuses_bad_settings(tmp_path, labelled):
    with pytest.raises(ExportError, match="unknown export format 'zip'"):
        export(labelled, "zip", tmp_path / "x.zip")
    with pytest.raises(ExportError, match="min-confidence"):
        export(labelled, "csv", tmp_path / "x.csv", min_confidence=2)
    with pytest.raises(ExportError, match="unknown export mode"):
        export(labelled, "imagefolder", tmp_path / "t", mode="teleport")
    with pytest.raises(ExportError, match="inside the collection"):
        export(labelled, "huggingface", labelled.root / "export")
    (tmp_path / "d").mkdir()
    with pytest.raises(ExportError, match="is a folder"):
        export(labelled, "csv", tmp_path / "d")
    assert not (tmp_path / "t").exists() and not (labelled.root / "export").exists()  # nothing written


def test_preview_of_an_unlabelled_project(project):
    preview = preview_export(project, fmt="huggingface", split=0.8)
    assert preview.rows == 0 and not preview.counts and not preview.splits and preview.table() == []
    assert (
        preview_export(project).rows == 12 and "would write 12 rows (0 labelled)" in preview_export(project).summary()
    )
    with pytest.raises(ExportError, match="applies to imagefolder"):
        preview_export(project, fmt="coco", split=0.5)


def test_whole_chunks_hand_the_file_few_large_writes_in_order():
    from explorer.exchange.atomic import WholeChunks

    class File:  # records what the file is handed
        def __init__(self):
            self.writes = []

        def write(self, text):
            self.writes.append(text)

    file = File()
    pieces = [f"row {k}\n" for k in range(10_000)]
    with WholeChunks(file, size=1000) as out:
        for piece in pieces:
            out.write(piece)
    assert "".join(file.writes) == "".join(pieces)
    total = sum(map(len, pieces))
    assert len(file.writes) <= total // 1000 + 1  # one write per 1,000 characters, not one per row
    assert all(len(w) >= 1000 for w in file.writes[:-1])


def test_manifest_rows_come_in_path_order_even_for_items_the_path_index_missed(project, monkeypatch):
    rows = manifest_rows(project)
    paths = [r.path for r in rows]
    assert paths == sorted(paths) and len(paths) == len(project.item_ids())
    # an item scanned in between the reads (absent from the path order) still goes out, in its place
    by_path = project.item_ids_by_path()
    monkeypatch.setattr(type(project), "item_ids_by_path", lambda self: by_path[1::2])
    again = [r.path for r in manifest_rows(project)]
    assert sorted(again) == paths and len(again) == len(paths)
    kept = set(project.paths_of(by_path[1::2]))
    assert [p for p in again if p in kept] == sorted(kept)
