"""The window wears what explorer/resources ships: stylesheet, application icon, toolbar icons."""

from __future__ import annotations

from importlib.resources import files


def test_the_shipped_files_are_there():
    folder = files("explorer.resources")
    assert "QMainWindow" in folder.joinpath("style.qss").read_text(encoding="utf-8")
    entry = folder.joinpath("embedding-explorer.desktop").read_text(encoding="utf-8")
    assert "Exec=explorer %f" in entry and "Type=Application" in entry
    names = {p.name for p in folder.joinpath("icons").iterdir()}
    assert {f"explorer-{s}.png" for s in (16, 32, 48, 256)} <= names


def test_window_and_toolbar_show_the_icons(window):
    from PySide6.QtWidgets import QApplication

    from explorer.gui import style

    app = QApplication.instance()
    assert not app.windowIcon().isNull() and len(app.windowIcon().availableSizes()) >= 6
    assert "$" not in app.styleSheet() and style.ACCENT in app.styleSheet()  # every colour filled in
    with_icons = [a for a in window.toolbar.actions() if not a.isSeparator()]
    assert with_icons and all(not a.icon().isNull() and a.text() for a in with_icons)  # icon and text
