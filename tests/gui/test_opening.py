"""Opening a project reads its tables on a worker, latest request wins; the window shows
"Opening…" until they land, then the map."""

from __future__ import annotations

import threading

import pytest

from explorer.gui.picking import PointIndex
from explorer.gui.session import Session
from explorer.store import Project, ProjectError


@pytest.fixture
def reads(monkeypatch):
    """The thread each heavy read of the store ran on: {what: [thread, ...]}."""
    seen: dict[str, list] = {}
    for name in ("paths_by_id", "classes", "label_table", "load_run_array", "item_count"):
        original = getattr(Project, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            seen.setdefault(_name, []).append(threading.current_thread())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Project, name, spy)
    original_index = PointIndex.__init__

    def index_spy(self, xy):
        seen.setdefault("PointIndex", []).append(threading.current_thread())
        original_index(self, xy)

    monkeypatch.setattr(PointIndex, "__init__", index_spy)
    return seen


def test_opening_reads_the_tables_off_the_gui_thread(qtbot, project_dir, reads):
    s = Session()
    with qtbot.waitSignal(s.projectOpened, timeout=15000):
        assert s.open_project(project_dir)
        assert s.opening and s.project is not None and s.map is None  # open at once, tables to come
    assert not s.opening
    assert set(reads) == {"paths_by_id", "classes", "label_table", "load_run_array", "item_count", "PointIndex"}
    main = threading.main_thread()
    assert all(thread is not main for threads in reads.values() for thread in threads), reads
    assert len(s.map.item_ids) == 60 and len(s.labels) == 60 and s.path_of(int(s.map.item_ids[0]))
    assert len(s.map_source) == 60 and s.rows_of(s.map.item_ids[:3]).tolist() == [0, 1, 2]
    assert s.map_index.xy is s.map.xy and s.map_index.nearest(*map(float, s.map.xy[5]), radius=1e-6) == 5
    s.close_project()


def test_the_latest_open_wins(qtbot, tmp_path, make_project, wait_opened):
    make_project(tmp_path / "first").close()
    make_project(tmp_path / "second", with_map=False).close()
    s = Session()
    opened = []
    s.projectOpened.connect(lambda: opened.append(s.project.root.name))
    s.open_project(tmp_path / "first")
    s.open_project(tmp_path / "second")
    wait_opened(s)
    qtbot.waitUntil(lambda: not s.reading.busy, timeout=5000)
    assert opened == ["second"] and s.map is None and s.counts()["items"] == 60
    s.close_project()


def test_closing_while_opening_drops_the_tables(qtbot, project_dir):
    s = Session()
    opened = []
    s.projectOpened.connect(lambda: opened.append(True))
    s.open_project(project_dir)
    s.close_project()
    qtbot.waitUntil(lambda: not s.reading.busy, timeout=5000)
    assert opened == [] and s.project is None and s.map is None and not s.opening


def test_a_class_added_while_opening_is_in_the_tables(qtbot, project_dir, wait_opened):
    s = Session()
    s.open_project(project_dir)
    assert s.add_class("early") is not None  # written at once; the tables are read again
    wait_opened(s)
    assert [c.name for c in s.classes] == ["early"]


def test_tables_that_cannot_be_read_close_the_project_and_say_why(qtbot, project_dir, monkeypatch):
    from explorer.gui import session as session_module

    def broken(project, progress, cancel):
        raise ProjectError("the map arrays are damaged")

    monkeypatch.setattr(session_module, "read_tables", broken)
    s = Session()
    with qtbot.waitSignal(s.openFailed, timeout=15000) as failed:
        s.open_project(project_dir)
    assert failed.args == [f"Cannot open {project_dir.resolve()}: the map arrays are damaged"]
    assert s.project is None and not s.opening


def test_the_window_says_opening_then_shows_the_map(qtbot, project_dir, settings, wait_opened):
    from explorer.gui.main_window import MainWindow

    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    shown = []
    assert window.open_project(project_dir, then=lambda: shown.append(window.session.map is not None))
    assert window.map_stack.currentWidget() is window.empty
    assert window.empty.title.text() == f"Opening {project_dir.name}/…" and not window.settled()
    wait_opened(window.session)
    assert shown == [True]
    assert window.map_stack.currentWidget() is window.map_view and window.map_view.drawn
    assert window.map_view.index is window.session.map_index  # picking uses the index built on the worker
    assert "60 images" in window.counts_label.text()
    window.close()
