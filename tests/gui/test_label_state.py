"""The label state the session's worker works out: kinds, counts per class and confidence bin,
pseudo-labels merged in memory, all matching what the store and the old per-view counts say."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from explorer.gui.label_state import (
    CONFIDENCE_BINS,
    HUMAN,
    NONE,
    PSEUDO,
    class_counts,
    label_kinds,
    label_state,
    merge_pseudo,
)
from explorer.store import LabelClass, LabelTable

CLASSES = [LabelClass(7, "cat", "#ff0000", 0), LabelClass(3, "dog", "#00ff00", 1)]


def table() -> LabelTable:
    """Items 10..15: a seed cat, an accepted dog, a pseudo cat (0.3), a pseudo dog (0.95), an
    imported cat, one unlabelled."""
    return LabelTable(
        np.arange(10, 16, dtype=np.int64),
        np.array([7, 3, 7, 3, 7, -1], np.int64),
        np.array(["seed", "accepted", "pseudo", "pseudo", "imported", ""], object),
        np.array([1.0, 1.0, 0.3, 0.95, 1.0, np.nan]),
    )


def test_kinds_and_counts_of_a_table():
    labels = table()
    assert label_kinds(labels.source).tolist() == [HUMAN, HUMAN, PSEUDO, PSEUDO, HUMAN, NONE]
    graph_map = SimpleNamespace(item_ids=np.array([15, 12, 13, 10], np.int64))  # map rows in any order
    state = label_state(graph_map, labels, CLASSES)
    assert (state.human, state.pseudo) == (3, 2)
    assert state.class_counts == {7: (2, 1), 3: (1, 1)}
    assert state.aligned.source.tolist() == [NONE, PSEUDO, PSEUDO, HUMAN]
    assert state.aligned.class_index.tolist() == [-1, 0, 1, 0]
    expected = np.zeros((2, CONFIDENCE_BINS), np.int64)
    expected[0, int(0.3 * CONFIDENCE_BINS)] = 1  # the pseudo cat
    expected[1, int(0.95 * CONFIDENCE_BINS)] = 1  # the pseudo dog
    assert np.array_equal(state.confidence_counts, expected)
    # Counts of some rows only (the selection): the same function over those rows.
    rows = np.array([0, 3])
    assert class_counts(labels.class_ids[rows], state.kinds[rows], CLASSES) == {7: (1, 0), 3: (0, 1)}


def test_an_empty_project_counts_nothing():
    empty = label_state(None, table(), [])
    assert empty.class_counts == {} and empty.confidence_counts.shape == (0, CONFIDENCE_BINS)
    assert len(empty.aligned.source) == 0 and empty.cluster_names == []


def test_merged_pseudo_labels_keep_human_labels_and_leave_rejections_out():
    labels = table()
    merged, kinds = merge_pseudo(
        labels,
        item_ids=np.array([10, 12, 13, 15]),
        class_ids=np.array([3, 3, 7, 7]),
        confidence=np.array([0.9, 0.8, 0.7, 0.6]),
        rejected=[(13, 7)],
    )
    assert merged.class_ids.tolist() == [7, 3, 3, -1, 7, 7]  # the seed stays; 13's cat was rejected
    assert list(merged.source) == ["seed", "accepted", "pseudo", "", "imported", "pseudo"]
    assert np.allclose(merged.confidence, [1.0, 1.0, 0.8, np.nan, 1.0, 0.6], equal_nan=True)
    assert kinds.tolist() == label_kinds(merged.source).tolist()
