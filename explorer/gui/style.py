"""The window's look: one dark theme shared by the Qt widgets and the pyqtgraph map.

The colours are here (the map and the palette use them); the stylesheet and the icons are files in
``explorer/resources``, read with ``importlib.resources`` so they come with the installed package.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from string import Template

from PySide6.QtGui import QColor, QFont, QIcon, QPalette
from PySide6.QtWidgets import QApplication

BACKGROUND = "#1d1f23"  # window
PANEL = "#25282d"  # panels, lists
PLOT = "#17191c"  # the map's canvas
BORDER = "#363a41"
TEXT = "#e2e4e8"
MUTED = "#9aa0a9"
ACCENT = "#4c8bf5"
DANGER = "#e5534b"
UNLABELLED = "#737a85"  # map points without any label


def apply_theme(app: QApplication) -> None:
    """Fusion style with a dark palette and the stylesheet above, on the whole application."""
    app.setStyle("Fusion")
    palette = QPalette()
    for role, colour in (
        (QPalette.ColorRole.Window, BACKGROUND),
        (QPalette.ColorRole.WindowText, TEXT),
        (QPalette.ColorRole.Base, PLOT),
        (QPalette.ColorRole.AlternateBase, PANEL),
        (QPalette.ColorRole.Text, TEXT),
        (QPalette.ColorRole.Button, "#30343b"),
        (QPalette.ColorRole.ButtonText, TEXT),
        (QPalette.ColorRole.Highlight, ACCENT),
        (QPalette.ColorRole.HighlightedText, "#ffffff"),
        (QPalette.ColorRole.ToolTipBase, PANEL),
        (QPalette.ColorRole.ToolTipText, TEXT),
        (QPalette.ColorRole.PlaceholderText, MUTED),
    ):
        palette.setColor(role, QColor(colour))
    app.setPalette(palette)
    font = QFont(app.font())
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
    app.setFont(font)
    app.setStyleSheet(stylesheet())
    app.setWindowIcon(app_icon())


def stylesheet() -> str:
    """resources/style.qss with the colours above filled in."""
    text = files("explorer.resources").joinpath("style.qss").read_text(encoding="utf-8")
    colours = {name: value for name, value in globals().items() if name.isupper() and str(value).startswith("#")}
    return Template(text).substitute(colours)


@cache
def app_icon() -> QIcon:
    """The application icon in every size shipped (16 to 256 px)."""
    icon = QIcon()
    for path in sorted(files("explorer.resources").joinpath("icons").iterdir(), key=lambda p: p.name):
        if path.name.startswith("explorer-"):
            icon.addFile(str(path))
    return icon


@cache
def tool_icon(name: str) -> QIcon:
    """A toolbar icon (``resources/icons/NAME.png``, and NAME@2x.png for dense screens)."""
    folder = files("explorer.resources").joinpath("icons")
    icon = QIcon(str(folder.joinpath(f"{name}.png")))
    icon.addFile(str(folder.joinpath(f"{name}@2x.png")))
    return icon


def display_colour(hex_colour: str) -> QColor:
    """The colour a class is drawn with on the dark canvas: very dark class colours (the palette's
    black) are lifted to a light grey so they stay visible."""
    colour = QColor(hex_colour)
    if not colour.isValid():
        return QColor("#cccccc")
    if colour.lightnessF() < 0.2:
        return QColor("#f2f2f2")
    return colour
