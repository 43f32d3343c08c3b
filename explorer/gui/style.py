"""The window's look: one dark theme shared by the Qt widgets and the pyqtgraph map."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
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

STYLESHEET = f"""
QWidget {{ color: {TEXT}; font-size: 10pt; }}
QMainWindow, QDialog {{ background: {BACKGROUND}; }}
QToolBar {{ background: {PANEL}; border: none; border-bottom: 1px solid {BORDER}; spacing: 4px; padding: 4px; }}
QToolBar QToolButton {{ padding: 4px 10px; border-radius: 4px; }}
QToolBar QToolButton:hover {{ background: #323640; }}
QToolBar QToolButton:disabled {{ color: #5c6068; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {BORDER}; }}
QStatusBar QLabel {{ color: {MUTED}; padding: 0 6px; }}
QSplitter::handle {{ background: {BORDER}; }}
QSplitter::handle:horizontal {{ width: 1px; }}
QSplitter::handle:vertical {{ height: 1px; }}
QFrame#Panel, QWidget#Panel {{ background: {PANEL}; }}
QLabel#Heading {{ font-size: 9pt; font-weight: bold; color: {MUTED}; letter-spacing: 1px; padding-top: 6px; }}
QLabel#Title {{ font-size: 12pt; font-weight: bold; }}
QLabel#Muted {{ color: {MUTED}; }}
QLabel#EmptyTitle {{ font-size: 18pt; font-weight: bold; }}
QLabel#EmptyText {{ font-size: 11pt; color: {MUTED}; }}
QPushButton {{ background: #30343b; border: 1px solid {BORDER}; border-radius: 4px; padding: 5px 12px; }}
QPushButton:hover {{ background: #3a3f48; }}
QPushButton:pressed {{ background: #2a2d33; }}
QPushButton:disabled {{ color: #5c6068; background: #2a2d32; }}
QPushButton#Primary {{ background: {ACCENT}; border-color: {ACCENT}; color: white; font-weight: bold; }}
QPushButton#Primary:hover {{ background: #5d98f7; }}
QToolButton:checked {{ background: #3a4a66; border-radius: 4px; }}
QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox {{ background: {PLOT}; border: 1px solid {BORDER}; border-radius: 4px;
    padding: 4px 6px; selection-background-color: {ACCENT}; }}
QTreeWidget, QListWidget {{ background: {PLOT}; border: 1px solid {BORDER}; border-radius: 4px;
    alternate-background-color: #1f2226; outline: none; }}
QTreeWidget::item, QListWidget::item {{ padding: 3px; }}
QTreeWidget::item:selected, QListWidget::item:selected {{ background: #2f4060; }}
QHeaderView::section {{ background: {PANEL}; color: {MUTED}; border: none; border-bottom: 1px solid {BORDER};
    padding: 3px 4px; }}
QProgressBar {{ background: {PLOT}; border: 1px solid {BORDER}; border-radius: 3px; text-align: center;
    max-height: 14px; font-size: 8pt; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 2px; }}
QFrame#Legend {{ background: rgba(37, 40, 45, 215); border: 1px solid {BORDER}; border-radius: 6px; }}
QFrame#Legend QToolButton {{ padding: 1px 4px; border: none; text-align: left; }}
QFrame#Legend QToolButton:!checked {{ color: #5c6068; background: transparent; }}
QFrame#Legend QToolButton:checked {{ background: transparent; }}
QFrame#HoverCard {{ background: rgba(37, 40, 45, 235); border: 1px solid #4a4f58; border-radius: 6px; }}
QMenu {{ background: {PANEL}; border: 1px solid {BORDER}; }}
QMenu::item:selected {{ background: #2f4060; }}
QMenuBar {{ background: {PANEL}; }}
QMenuBar::item:selected {{ background: #323640; }}
"""


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
    app.setStyleSheet(STYLESHEET)


def display_colour(hex_colour: str) -> QColor:
    """The colour a class is drawn with on the dark canvas: very dark class colours (the palette's
    black) are lifted to a light grey so they stay visible."""
    colour = QColor(hex_colour)
    if not colour.isValid():
        return QColor("#cccccc")
    if colour.lightnessF() < 0.2:
        return QColor("#f2f2f2")
    return colour
