"""The gallery driven as a person would (clicks on tiles, the slider), and the thumbnail disk cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from explorer.gui import style
from explorer.gui.gallery import Gallery, decode_size
from explorer.gui.session import Session
from explorer.gui.thumbnails import Thumbnails, cache_path


def open_session(project_dir: Path, wait_opened) -> tuple[Session, Thumbnails]:
    """A session on the fixture project and thumbnails cached in its state folder."""
    session = Session()
    session.open_project(project_dir)
    wait_opened(session)
    thumbs = Thumbnails(session.absolute_path, cache_dir=session.project.state_dir / "thumbs")
    return session, thumbs


@pytest.fixture
def session(project_dir, wait_opened):
    session, thumbs = open_session(project_dir, wait_opened)
    yield session, thumbs
    thumbs.clear()
    thumbs.wait(5000)
    session.close_project()


@pytest.fixture
def gallery(qtbot, session):
    s, thumbs = session
    widget = Gallery(s, thumbs)
    widget.resize(640, 520)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def click_tile(qtbot, gallery: Gallery, item_id: int, modifier=Qt.KeyboardModifier.NoModifier, double=False):
    rect = gallery.grid.rect_of(item_id)
    assert rect.isValid(), f"item {item_id} has no tile"
    viewport = gallery.grid.viewport()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, modifier, rect.center())
    if double:
        qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, modifier, rect.center())


def test_gallery_shows_one_tile_per_selected_item(qtbot, gallery):
    s = gallery.session
    chosen = s.map.item_ids[:25]
    s.set_selection(chosen)
    assert gallery.grid.model().rowCount() == 25
    assert sorted(gallery.item_ids.tolist()) == sorted(chosen.tolist())
    assert "25 images" in gallery.count_label.text()
    tiles = {(r.x(), r.y()) for r in (gallery.grid.rect_of(i) for i in chosen) if r.isValid()}
    assert len(tiles) == 25  # 25 distinct places in the grid
    # The visible tiles get their thumbnails painted.
    first = int(gallery.item_ids[0])
    qtbot.waitUntil(lambda: gallery.grid.thumbnails.get(first, decode_size(gallery.grid.tile_size)) is not None)
    s.clear_selection()
    assert gallery.grid.model().rowCount() == 0


def test_only_visible_tiles_request_thumbnails(qtbot, session):
    s, _ = session
    files = [s.absolute_path(i) for i in s.map.item_ids]
    asked: list[int] = []

    def resolve(item_id: int):
        asked.append(item_id)
        return files[item_id % len(files)]

    thumbs = Thumbnails(resolve)
    gallery = Gallery(s, thumbs)
    gallery.resize(640, 480)
    qtbot.addWidget(gallery)
    gallery.show()
    qtbot.waitExposed(gallery)
    gallery.set_items(np.arange(5000), "5k")
    assert gallery.grid.model().rowCount() == 5000 and gallery.source == "list"
    qtbot.waitUntil(lambda: len(asked) > 0)
    visible = gallery.grid.visible_ids()
    assert 0 < len(visible) < 100
    assert set(asked) <= set(visible.tolist())
    # Scrolled to the end (once the batched layout is done): only the last page asks.
    grid = gallery.grid
    cols = grid.viewport().width() // grid.gridSize().width()
    full = -(-5000 // cols) * grid.gridSize().height() - grid.viewport().height()
    seen = [-1]

    def laid_out() -> bool:  # the batched layout reached the end and stopped growing the range
        now, before = grid.verticalScrollBar().maximum(), seen[0]
        seen[0] = now
        return now == before and now >= full - grid.gridSize().height()

    qtbot.waitUntil(laid_out)
    asked.clear()
    grid.scrollToBottom()
    qtbot.waitUntil(lambda: len(asked) > 0)
    gallery.grid.viewport().repaint()
    visible = gallery.grid.visible_ids()
    assert 4999 in visible.tolist()
    assert set(asked) <= set(visible.tolist())
    assert thumbs.requests < 3 * len(visible)
    thumbs.clear()
    thumbs.wait(5000)


def test_click_makes_current_and_multi_select_maps_to_selection(qtbot, gallery):
    s = gallery.session
    shown = s.map.item_ids[:12]
    s.set_selection(shown)
    a, b, c = (int(gallery.item_ids[k]) for k in (0, 3, 5))
    click_tile(qtbot, gallery, a)
    assert s.current == a
    assert s.selection.tolist() == [a]
    assert gallery.grid.model().rowCount() == 12  # picking inside the selection keeps the grid
    click_tile(qtbot, gallery, b, Qt.KeyboardModifier.ControlModifier)
    assert s.selection.tolist() == sorted([a, b])
    click_tile(qtbot, gallery, a, Qt.KeyboardModifier.ControlModifier)  # toggles it off again
    assert s.selection.tolist() == [b]
    click_tile(qtbot, gallery, c, Qt.KeyboardModifier.ShiftModifier)  # range from the last click (a) to c
    assert s.selection.tolist() == sorted(int(i) for i in gallery.item_ids[0:6])
    gallery.grid.setFocus()
    qtbot.keyClick(gallery.grid, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert sorted(s.selection.tolist()) == sorted(shown.tolist())
    # A selection made elsewhere (the map) replaces the tiles.
    s.set_selection(s.map.item_ids[40:43])
    assert sorted(gallery.item_ids.tolist()) == sorted(s.map.item_ids[40:43].tolist())


def test_double_click_emits_activated(qtbot, gallery):
    s = gallery.session
    s.set_selection(s.map.item_ids[:6])
    target = int(gallery.item_ids[2])
    with qtbot.waitSignal(gallery.activated) as blocker:
        click_tile(qtbot, gallery, target, double=True)
    assert blocker.args == [target]


def test_neighbours_source_follows_current(qtbot, gallery):
    s = gallery.session
    item = int(s.map.item_ids[7])
    s.set_current(item)
    gallery.source_box.setCurrentIndex(1)
    gallery.source_box.activated.emit(1)  # as when the person picks it
    assert gallery.source == "neighbours"
    assert gallery.item_ids[0] == item
    assert gallery.item_ids[1:].tolist() == s.neighbours(item)[0].tolist()
    other = int(s.map.item_ids[30])
    s.set_current(other)
    assert gallery.item_ids[0] == other
    gallery.set_items([5, 3, 1], "picked")
    assert gallery.item_ids.tolist() == [5, 3, 1] and "picked" in gallery.count_label.text()
    gallery.show_selection()
    assert gallery.source == "selection"


def test_slider_resizes_tiles(qtbot, gallery):
    s = gallery.session
    s.set_selection(s.map.item_ids)
    before = gallery.grid.rect_of(int(gallery.item_ids[0])).width()
    gallery.size_slider.setValue(64)
    after = gallery.grid.rect_of(int(gallery.item_ids[0])).width()
    assert gallery.grid.tile_size == 64 and after < before
    assert len(gallery.grid.visible_ids()) > 20


def pixel(image, x: int, y: int) -> QColor:
    return QColor(image.pixel(x, y))


def test_frames_recolour_with_labels_without_rebuilding(qtbot, gallery):
    s = gallery.session
    red = s.add_class("red")
    green = s.add_class("green")
    s.set_selection(s.map.item_ids[:8])
    human, pseudo = int(gallery.item_ids[0]), int(gallery.item_ids[1])
    resets = []
    gallery.grid.model().modelReset.connect(lambda: resets.append(1))
    s.project.set_labels([human], red.id)
    s.project.save_pseudo_labels(np.array([pseudo]), np.array([green.id]), np.array([0.42]))
    s.reload_labels()
    assert not resets
    gallery.grid.viewport().repaint()
    picture = gallery.grid.viewport().grab().toImage()
    for item, label, solid in ((human, red, True), (pseudo, green, False)):
        rect = gallery.grid.rect_of(item)
        y = rect.top() + 5  # on the frame's top edge (margin 4, frame inside the thumbnail box)
        row = [pixel(picture, x, y) for x in range(rect.left() + 10, rect.right() - 10)]
        colour = style.display_colour(label.colour)
        matches = [
            abs(p.red() - colour.red()) + abs(p.green() - colour.green()) + abs(p.blue() - colour.blue()) < 40
            for p in row
        ]
        if solid:
            assert all(matches)
        else:
            assert 0.3 < np.mean(matches) < 0.95  # dashed
    index = gallery.grid.model().index(1)
    assert gallery.grid.model().data(index) == "green 0.42"


# ---- thumbnails on disk ---------------------------------------------------------------------
def fetch(qtbot, thumbs: Thumbnails, item_id: int, size: int):
    image = thumbs.get(item_id, size)
    if image is None:
        qtbot.waitUntil(lambda: (item_id, size) in thumbs._cache, timeout=5000)
        image = thumbs.get(item_id, size)
    return image


def test_thumbnails_are_read_back_from_disk(qtbot, session):
    s, thumbs = session
    item = int(s.map.item_ids[0])
    original = s.absolute_path(item)
    image = fetch(qtbot, thumbs, item, 96)
    assert image is not None and thumbs.disk_hits == 0
    stat = original.stat()
    on_disk = cache_path(s.project.state_dir / "thumbs", item, 96, stat.st_size, stat.st_mtime_ns)
    assert on_disk.is_file()
    assert not list(on_disk.parent.glob("*.tmp"))
    # A second window (a new Thumbnails) reads the disk cache, even with the original gone.
    original.unlink()
    again = Thumbnails(s.absolute_path, cache_dir=lambda: s.project.state_dir / "thumbs")
    copy = fetch(qtbot, again, item, 96)
    assert copy is not None and again.disk_hits == 1 and item not in again.errors
    assert copy.size() == image.size()
    # Without the cache a missing original is an error named for the person.
    bare = Thumbnails(s.absolute_path)
    assert fetch(qtbot, bare, item, 96) is None and bare.errors[item]


def test_a_changed_image_is_thumbnailed_again(qtbot, session):
    s, thumbs = session
    item = int(s.map.item_ids[1])
    original = s.absolute_path(item)
    fetch(qtbot, thumbs, item, 96)
    folder = s.project.state_dir / "thumbs" / "96" / str(item // 1000)
    assert len(list(folder.glob(f"{item}-*.jpg"))) == 1
    Image.new("RGB", (40, 20), (0, 0, 0)).save(original)
    later = time.time_ns() + 10**9
    os.utime(original, ns=(later, later))
    fresh = Thumbnails(s.absolute_path, cache_dir=s.project.state_dir / "thumbs")
    image = fetch(qtbot, fresh, item, 96)
    assert fresh.disk_hits == 0  # decoded again, not the stale picture
    assert (image.width(), image.height()) == (40, 20)
    versions = list(folder.glob(f"{item}-*.jpg"))
    assert len(versions) == 1 and versions[0].stem.endswith(str(later))  # the old one is gone


def test_memory_cache_stays_bounded(qtbot, session):
    s, _ = session
    thumbs = Thumbnails(s.absolute_path, capacity_bytes=3 * 32 * 32 * 3)  # three 32x32 RGB thumbnails
    for item in s.map.item_ids[:10].tolist():
        fetch(qtbot, thumbs, item, 96)
    assert thumbs._bytes <= thumbs.capacity_bytes
    assert len(thumbs._cache) <= 3
    assert (int(s.map.item_ids[9]), 96) in thumbs._cache  # the newest stays


def test_clear_drops_results_still_in_flight(qtbot, session):
    s, thumbs = session
    seen = []
    thumbs.ready.connect(lambda i, size: seen.append(i))
    for item in s.map.item_ids[:20].tolist():
        thumbs.get(item, 160)
    thumbs.clear()
    thumbs.wait(5000)
    qtbot.wait(50)
    assert not thumbs._cache and not thumbs.busy
    assert seen == []  # decodes that finish after clear() belong to the old project
