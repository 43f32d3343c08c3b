"""The review queue driven with keys and clicks: order, accept, reject, relabel, bulk accept, undo."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget

from explorer import workflow
from explorer.gui.review import ReviewQueue, queue_order, reliance
from explorer.gui.session import HUMAN
from tests.gui.test_gallery import open_session

CLUSTERS = ("red", "green", "blue")


def seed_and_propagate(session, per_cluster: int = 2) -> None:
    """Three classes, ``per_cluster`` human labels in each cluster, pseudo-labels for the rest."""
    existing = {c.name for c in session.classes}
    for name in CLUSTERS:
        if name not in existing:
            session.add_class(name)
    project = session.project
    by_name = {c.name: c.id for c in session.classes}
    for name in CLUSTERS:
        ids = [i for i in session.map.item_ids.tolist() if session.path_of(i).startswith(name + "/")]
        project.set_labels(ids[:per_cluster], by_name[name])
    propagate(session)


def propagate(session) -> None:
    workflow.save_propagation(session.project, workflow.compute_propagation(session.project))
    session.reload_labels()


def source_of(session, item_id: int) -> tuple[int, str]:
    info = session.info(item_id)
    return info.class_id, info.source


@pytest.fixture
def review(qtbot, project_dir, wait_opened):
    session, thumbs = open_session(project_dir, wait_opened)
    seed_and_propagate(session)
    widget = ReviewQueue(session, thumbs)
    widget.resize(520, 760)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    widget.activateWindow()
    widget.picture.setFocus()
    yield widget
    thumbs.clear()
    thumbs.wait(5000)
    session.close_project()


def press(qtbot, review: ReviewQueue, key) -> None:
    review.picture.setFocus()
    qtbot.keyClick(review.picture, key)


def test_queue_is_ordered_by_confidence(review):
    s = review.session
    ids = review.queue_ids()
    assert len(ids) == 54  # 60 items, 6 human labels
    conf = np.array([s.info(i).confidence for i in ids])
    assert (np.diff(conf) >= 0).all()
    assert review.current_item() == ids[0]
    assert s.current == ids[0]  # the map and the image view follow the queue
    review.order_box.setCurrentIndex(review.order_box.findData("highest"))
    conf = np.array([s.info(i).confidence for i in review.queue_ids()])
    assert (np.diff(conf) <= 0).all()
    review.set_order("useful")
    useful = review.queue_ids()
    lean = reliance(s)[s.rows_of(useful)]
    score = (1 - np.array([s.info(i).confidence for i in useful])) * (1 + lean)
    assert sorted(useful.tolist()) == sorted(ids.tolist())
    assert (np.diff(score) <= 1e-9).all()
    with pytest.raises(ValueError, match="unknown review order 'best'"):
        queue_order(s, useful, score, "best")


def test_reliance_counts_unlabelled_neighbours_only(review):
    s = review.session
    lean = reliance(s)
    indices, sims = s.map.knn_indices, s.map.knn_similarities
    expected = np.zeros(len(indices))
    for row in range(len(indices)):  # the plain loop the vectorised version must match
        if s.map_source[row] == HUMAN:
            continue
        for j in range(1, indices.shape[1]):
            if indices[row, j] >= 0:
                expected[indices[row, j]] += sims[row, j]
    assert np.allclose(lean, expected)
    assert (s.map_source == HUMAN).sum() == 6


def test_a_accepts_and_moves_to_next(qtbot, review):
    s = review.session
    first, second = review.queue_ids()[:2].tolist()
    cls = s.info(first).class_id
    press(qtbot, review, Qt.Key.Key_A)
    assert source_of(s, first) == (cls, "accepted")
    assert review.current_item() == second
    assert first not in review.queue_ids()
    assert s.history(1)[0][2] == "accept 1 pseudo-label(s)"


def test_r_rejects_and_propagation_does_not_give_it_back(qtbot, review):
    s = review.session
    first, second = review.queue_ids()[:2].tolist()
    rejected = s.info(first).class_id
    press(qtbot, review, Qt.Key.Key_R)
    assert s.info(first).class_id != rejected
    assert review.current_item() == second
    propagate(s)
    assert s.info(first).class_id != rejected
    assert review.current_item() == second  # the place is kept across the refresh
    assert (first, rejected) in s.project.rejections()


def test_number_key_relabels(qtbot, review):
    s = review.session
    first, second = review.queue_ids()[:2].tolist()
    press(qtbot, review, Qt.Key.Key_3)
    assert source_of(s, first) == (s.classes[2].id, "seed")
    assert review.current_item() == second
    press(qtbot, review, Qt.Key.Key_9)  # no ninth class: nothing happens, a message says why
    assert review.current_item() == second


def test_next_and_previous_keys(qtbot, review):
    ids = review.queue_ids().tolist()
    for key, expected in (
        (Qt.Key.Key_N, 1),
        (Qt.Key.Key_Space, 2),
        (Qt.Key.Key_Right, 3),
        (Qt.Key.Key_Left, 2),
        (Qt.Key.Key_P, 1),
    ):
        press(qtbot, review, key)
        assert review.current_item() == ids[expected]
    assert review.count_label.text().startswith("2 of 54")
    qtbot.mouseClick(review.next_button, Qt.MouseButton.LeftButton)
    assert review.current_item() == ids[2]


def test_keys_do_nothing_while_typing_in_a_field(qtbot, review):
    s = review.session
    first = review.current_item()
    before = source_of(s, first)
    review.threshold.setFocus()
    review.threshold.lineEdit().selectAll()
    qtbot.keyClicks(review.threshold.lineEdit(), "0.5")
    qtbot.keyClick(review.threshold.lineEdit(), Qt.Key.Key_A)
    qtbot.keyClick(review.threshold.lineEdit(), Qt.Key.Key_Right)
    assert review.current_item() == first and source_of(s, first) == before
    assert review.threshold.value() == pytest.approx(0.5)


def test_accept_all_above_is_one_undoable_event(qtbot, review):
    s = review.session
    pseudo = s.labels.source == "pseudo"
    threshold = round(float(np.median(s.labels.confidence[pseudo])), 2)
    review.threshold.setValue(threshold)
    expected = review.preview_accept_above()
    assert 0 < expected == int((pseudo & (s.labels.confidence >= threshold)).sum()) < pseudo.sum()
    above = pseudo & (s.labels.confidence >= threshold)
    wrong = float((1.0 - s.labels.confidence[above].astype(np.float64)).sum())
    assert review.expected_wrong_above() == pytest.approx(wrong) and wrong > 0
    assert review.accept_above_button.text() == f"Accept {expected:,} (≈{wrong:,.0f} wrong)"
    human_before = s.counts()["human"]
    qtbot.mouseClick(review.accept_above_button, Qt.MouseButton.LeftButton)
    assert s.counts()["human"] == human_before + expected
    assert review.preview_accept_above() == 0
    assert s.undo() == f"accept {expected} pseudo-label(s)"  # one undo reverts the whole bulk accept
    assert s.counts()["human"] == human_before
    assert review.preview_accept_above() == expected


def test_accept_above_in_selection_only(qtbot, review):
    s = review.session
    red = [i for i in s.map.item_ids.tolist() if s.path_of(i).startswith("red/")]
    s.set_selection(red)
    assert set(review.queue_ids().tolist()) <= set(red)
    review.threshold.setValue(0.0)
    n = review.preview_accept_above()
    assert review.accept_above_button.text().startswith(f"Accept {n:,} in selection (≈")
    assert review.accept_above() == n
    accepted = s.labels.item_ids[s.labels.source == "accepted"]
    assert set(accepted.tolist()) <= set(red) and len(accepted) == n
    review.in_selection.setChecked(False)  # the whole collection again
    assert len(review.queue_ids()) == 54 - n


def test_undo_shows_the_reviewed_item_again(qtbot, review):
    s = review.session
    first, second, third = review.queue_ids()[:3].tolist()
    press(qtbot, review, Qt.Key.Key_A)
    press(qtbot, review, Qt.Key.Key_R)
    assert review.current_item() == third
    s.undo()  # the reject
    assert review.current_item() == second
    s.undo()  # the accept
    assert review.current_item() == first
    s.redo()
    assert review.current_item() == second


def test_review_keys_win_over_the_window_shortcuts(qtbot, window):
    """Inside the real window the panel binds A / R / 1-9 to the selection; with the focus in the
    queue the same keys act on the queue item only, and on the map they still act on the selection."""
    window.auto_action.setChecked(False)
    s = window.session
    seed_and_propagate(s)
    queue = ReviewQueue(s, window.thumbnails)
    dock = QDockWidget("Review", window)
    dock.setWidget(queue)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    qtbot.waitUntil(queue.isVisible)
    first, second = queue.queue_ids()[:2].tolist()
    others = [int(i) for i in queue.queue_ids()[5:8]]
    queue.in_selection.setChecked(False)  # the whole queue, while the selection is elsewhere
    s.set_selection(others)
    assert queue.current_item() == first
    before = {i: source_of(s, i) for i in others}
    press(qtbot, queue, Qt.Key.Key_A)
    assert source_of(s, first)[1] == "accepted"
    assert {i: source_of(s, i) for i in others} == before  # the selection was not touched
    assert queue.current_item() == second
    # On the map, A is the panel's: it accepts the selection.
    window.map_view.plot.setFocus()
    qtbot.keyClick(window.map_view.plot, Qt.Key.Key_A)
    assert {source_of(s, i)[1] for i in others} == {"accepted"}
