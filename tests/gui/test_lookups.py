"""Label next, near-duplicates, and the quick preview while a map is computed."""

from __future__ import annotations

import numpy as np


def test_label_next_selects_suggestions_and_shows_them(qtbot, window):
    from explorer import workflow

    s = window.session
    with_embeddings(s.project)
    workflow.make_map(s.project)  # a real map, which knows its embeddings
    s.reload_map()
    assert window.suggest_next(5)
    qtbot.waitUntil(lambda: len(window.gallery.item_ids) == 5, timeout=30000)
    assert window.side_tabs.currentWidget() is window.gallery
    assert "this one: typical of a group that has no label yet" in window.statusBar().currentMessage()
    suggested = window.gallery.item_ids.tolist()
    assert suggested == workflow.suggest(s.project, 5).item_ids.tolist()
    # one at a time: a class key labels the suggestion shown, never the five at once
    s.add_class("first")
    s.add_class("second")
    for k, item in enumerate(suggested):
        assert s.selection.tolist() == [item] and s.current == item
        assert s.label_with_key(1 + k % 2)
    human = dict(zip(s.labels.item_ids.tolist(), s.labels.source.tolist(), strict=True))
    assert all(human[i] == "seed" for i in suggested)
    qtbot.waitUntil(lambda: "every suggestion has a label" in window.statusBar().currentMessage(), timeout=5000)
    # a label given elsewhere does not move the person on
    assert window.suggest_next(5)
    qtbot.waitUntil(lambda: window.gallery.item_ids.tolist() != suggested, timeout=30000)
    first = s.current
    elsewhere = next(i for i in s.labels.item_ids.tolist() if i not in window.gallery.item_ids.tolist())
    s.set_selection([elsewhere])
    s.set_current(elsewhere)
    s.label_with_key(2)
    assert s.current == elsewhere and first in window.gallery.item_ids.tolist()


def test_near_duplicates_side_by_side(qtbot, window):
    assert window.find_duplicates(threshold=0.9)
    qtbot.waitUntil(lambda: not window.lookups.busy, timeout=15000)
    shown = window.gallery.item_ids
    assert len(shown) % 2 == 0 and len(shown) > 0
    from explorer import workflow

    pairs = workflow.near_duplicates(window.session.project, 0.9)
    assert shown.tolist() == [i for a, b, _ in pairs for i in (a, b)]
    assert "near-duplicate" in window.statusBar().currentMessage()


def test_preview_shows_while_the_map_is_computed(qtbot, tmp_path, settings, make_project, wait_opened):
    from explorer.gui.main_window import MainWindow

    project = make_project(tmp_path / "p", with_map=False)
    with_embeddings(project)
    project.close()
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(tmp_path / "p")
    wait_opened(window.session)
    seen = []
    original = window.map_view.show_preview
    window.map_view.show_preview = lambda ids, xy: (seen.append(len(ids)), original(ids, xy))
    assert window.run_step("map")
    qtbot.waitUntil(lambda: window.session.map is not None, timeout=120000)
    if seen:  # the preview lands unless the whole map was quicker than it
        assert seen[0] == 60
    assert not window.map_view.previewing
    assert np.isfinite(window.map_view.xy).all() and len(window.map_view.xy) == 60
    window.close()


def with_embeddings(project) -> None:
    from explorer import workflow

    workflow.embed(project, workflow.PIXELS)


def test_check_labels_shows_the_most_suspect_labels_first(qtbot, window):
    from explorer import workflow

    s = window.session
    s.add_class("first")
    s.add_class("second")
    items = s.map.item_ids.tolist()
    for item in items[:6]:  # three labels a class: enough for both to be checked
        s.set_selection([item])
        s.set_current(item)
        s.label_with_key(1 if item in items[:3] else 2)
    assert window.check_labels()
    qtbot.waitUntil(lambda: not window.lookups.busy, timeout=30000)
    expected = workflow.check_labels(s.project).item_ids
    assert window.gallery.item_ids.tolist() == expected.tolist() and len(expected) == 6
    assert window.side_tabs.currentWidget() is window.gallery
    assert "most suspect first" in window.statusBar().currentMessage()


def test_an_image_dropped_on_the_window_selects_the_ones_like_it(qtbot, window, tmp_path):
    from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    from explorer import workflow

    s = window.session
    with_embeddings(s.project)
    workflow.make_map(s.project)  # a real map, which knows its embeddings
    s.reload_map()
    name = s.project.paths_by_id()[int(s.map.item_ids[7])]
    query = tmp_path / "query.png"
    query.write_bytes((s.project.root / name).read_bytes())  # a copy from outside the collection
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(query))])
    drop = QDropEvent(
        QPoint(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(drop)
    qtbot.waitUntil(lambda: len(window.gallery.item_ids) > 0 and not window.lookups.busy, timeout=30000)
    expected = workflow.similar(s.project, query, 50).item_ids
    assert window.gallery.item_ids.tolist() == expected.tolist()
    assert sorted(s.selection.tolist()) == sorted(expected.tolist())
    assert (
        int(expected[0]) == int(s.map.item_ids[7])
        and "most like it are selected" in window.statusBar().currentMessage()
    )


def test_find_outliers_shows_the_least_typical_first(qtbot, window):
    from explorer import workflow

    window.outliers_action.trigger()
    qtbot.waitUntil(lambda: window.gallery.item_ids.size > 0, timeout=15000)
    found = workflow.quality(window.session.project)
    expected = found.item_ids[np.argsort(found.typicality, kind="stable")]
    assert window.gallery.item_ids.tolist() == expected[: len(window.gallery.item_ids)].tolist()
    assert window.side_tabs.currentWidget() is window.gallery
    assert "least typical" in window.statusBar().currentMessage()
