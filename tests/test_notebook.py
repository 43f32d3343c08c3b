"""explorer.open(...): the command line's steps from Python, selections as DataFrames."""

import numpy as np
import pandas as pd
import pytest

import explorer
from tests.helpers import write_blobs


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
            {"label": ["green", "nobody"], "path": "*1*"},
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
