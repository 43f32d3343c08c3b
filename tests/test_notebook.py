"""explorer.open(...): the command line's steps from Python, selections as DataFrames."""

import numpy as np
import pandas as pd
import pytest

import explorer
from tests.blobs import write_blobs


@pytest.fixture
def collection(tmp_path):
    truth = write_blobs(tmp_path / "blobs", per_class=20)
    with explorer.open(tmp_path / "blobs") as c:
        yield c, truth


def test_the_whole_path_from_python(collection, tmp_path):
    c, truth = collection
    report = c.scan()
    assert report.total == 60 and not report.unreadable
    items = c.items()
    assert isinstance(items, pd.DataFrame) and len(items) == 60 and set(items["path"]) == set(truth)
    c.embed("pixels")
    c.map(k=8)
    first = c.suggest(6)
    assert list(first.columns) == ["item_id", "path", "why"] and len(first) == 6
    for colour in ("red", "green", "blue"):
        assert c.label([p for p in sorted(truth) if truth[p] == colour][:3], colour) == 3
    labels = c.propagate()
    assert (labels["label"] == labels["path"].map(truth)).mean() > 0.9
    assert (labels.loc[labels["source"] == "seed", "confidence"] == 1).all() and labels[["x", "y"]].notna().all().all()

    sure = c.select(source="pseudo", min_confidence=0.5)
    assert len(sure) and (sure["confidence"] >= 0.5).all() and (sure["source"] == "pseudo").all()
    reds = c.select(label="red", path="img-00*")
    assert set(reds["label"]) == {"red"} and all(p.startswith("img-00") for p in reds["path"])
    assert len(c.select(label=["red", "green"])) == (labels["label"].isin(["red", "green"])).sum()

    # select filters the label table first: the same rows and values as filtering labels()
    for filters, keep in [
        ({"label": "red", "min_confidence": 0.5}, (labels["label"] == "red") & (labels["confidence"] >= 0.5)),
        ({"source": ["seed", "pseudo"], "max_confidence": 0.99}, labels["confidence"] <= 0.99),
        (
            {"label": ["green"], "path": "*1*"},
            (labels["label"] == "green") & labels["path"].str.contains("1"),
        ),
    ]:
        pd.testing.assert_frame_equal(c.select(**filters), labels[keep].reset_index(drop=True))
    ids, vectors = c.embeddings()
    assert len(ids) == 60 and vectors.shape[0] == 60
    assert c.similar(c.project.root / sorted(truth)[0], n=5)["path"].iloc[0] == sorted(truth)[0]
    assert {"label", "graph_says", "suspicion"} <= set(c.check().columns)
    assert list(c.quality().columns) == ["item_id", "path", "uniqueness", "typicality", "duplicate_group"]
    report = c.export(tmp_path / "out.csv")
    assert report.rows == 60
    assert len(pd.read_csv(tmp_path / "out.csv")) == 60


def test_labels_by_id_or_dataframe_and_unknown_paths_are_named(collection):
    c, truth = collection
    c.scan()
    items = c.items()
    assert c.label(items.head(4), "first") == 4
    assert c.label(items["item_id"].iloc[4:6].tolist(), "second") == 2
    assert c.label(items.head(1), None) == 1  # cleared
    labels = c.labels()
    assert (labels["label"] == "first").sum() == 3 and (labels["label"] == "second").sum() == 2
    with pytest.raises(explorer.workflow.WorkflowError, match="not in this collection"):
        c.label(["no/such.png"], "first")


def test_show_opens_the_window_with_the_selection(collection, qtbot):
    c, truth = collection
    c.scan()
    c.embed("pixels")
    c.map(k=8)
    chosen = c.items().head(5)
    window = c.show(chosen, block=False)
    qtbot.addWidget(window)
    assert sorted(window.session.selection.tolist()) == sorted(chosen["item_id"].tolist())
    assert window.session.map is not None and np.isin(chosen["item_id"], window.session.map.item_ids).all()


def test_select_by_size_and_file_date_and_export_exactly_a_selection(collection, tmp_path):
    import os
    import time
    from datetime import date

    from PIL import Image

    c, truth = collection
    wide = sorted(truth)[:10]
    march = time.mktime(date(2023, 3, 1).timetuple())
    for name in wide:  # ten images 40x24, last modified on 2023-03-01
        Image.new("RGB", (40, 24), (10, 200, 10)).save(c.project.root / name)
        os.utime(c.project.root / name, (march, march))
    c.scan()
    red = [p for p in sorted(truth) if truth[p] == "red"][:6]
    c.label(red, "red")
    assert sorted(c.select(min_width=30)["path"]) == wide
    assert sorted(c.select(max_width=24, max_height=24)["path"]) == sorted(set(truth) - set(wide))
    assert sorted(c.select(modified_before="2024-01-01")["path"]) == wide
    assert sorted(c.select(modified_after=date(2024, 1, 1))["path"]) == sorted(set(truth) - set(wide))
    both = c.select(label="red", min_width=30, path="re:^img-000")
    assert list(both.columns) == list(c.labels().columns)  # rows of labels(), as before
    assert set(both["path"]) == {p for p in wide if p in red and p.startswith("img-000")} and len(both)
    assert len(c.select(source="unlabelled")) == 54 and len(c.select(source="")) == 54
    with pytest.raises(ValueError, match="no class named 'blue'"):
        c.select(label="blue")
    with pytest.raises(ValueError, match="minimum 50 is above the maximum 10"):
        c.select(min_width=50, max_width=10)

    report = c.export(tmp_path / "wide.csv", images=c.select(min_width=30))
    frame = pd.read_csv(tmp_path / "wide.csv", keep_default_na=False)
    assert sorted(frame["path"]) == wide and report.rows == 10
    assert frame.set_index("path")["label"].to_dict() == {p: "red" if p in red else "" for p in wide}
    c.export(tmp_path / "two.csv", images=wide[:2])
    assert pd.read_csv(tmp_path / "two.csv")["path"].tolist() == wide[:2]


def test_train_with_one_limit_drops_the_other_default(collection, monkeypatch):
    """``c.train(epochs=N)`` trains every epoch with no time limit, as ``explorer train --epochs N``."""
    c, _ = collection
    seen = []
    monkeypatch.setattr(explorer.notebook.workflow, "train", lambda project, config, progress: seen.append(config))
    c.train(epochs=3)
    c.train(max_minutes=2)
    c.train()
    assert [(x.epochs, x.max_minutes) for x in seen] == [(3, None), (None, 2), (100, 10)]
