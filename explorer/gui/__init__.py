"""The desktop window (PySide6 + pyqtgraph). Start it with ``explorer.gui.app.run()``."""
