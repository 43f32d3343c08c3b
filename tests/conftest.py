import os
import sys

import pytest

# Qt without a screen, and torch kept to the machine's two cores so tests do not oversubscribe.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread(request):
    """Tests with Qt collect garbage as the app does: on the GUI thread only (a worker's collection
    that frees a Qt object can hang the process); afterwards Python collects by itself again."""
    gui = "qtbot" in request.fixturenames or "qapp" in request.fixturenames
    if gui:
        request.getfixturevalue("qapp")
        from explorer.gui.garbage import collect_on_gui_thread

        collect_on_gui_thread()
    yield
    if "explorer.gui.garbage" in sys.modules:  # also after a test that opened the app its own way
        sys.modules["explorer.gui.garbage"].collect_anywhere()
