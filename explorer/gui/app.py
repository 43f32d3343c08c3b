"""Starting the window: ``run()``, or ``explorer [FOLDER] [--screenshot PNG]`` from the shell.

Imports stay light here: Qt and the window only; torch, umap and faiss load inside the jobs.
"""

from __future__ import annotations

import os
import sys

APP_NAME = "Embedding Explorer"
ORG_NAME = "Embedding Explorer"
SCREENSHOT_TIMEOUT_S = 180.0  # waits for a running first map (UMAP compiles on first use)


def _headless() -> bool:
    return sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _warm_up_in_background() -> None:
    """Compile UMAP's numba code while the person looks around, so the first map does not pay
    for it in front of them (a daemon thread: it never holds the app open)."""
    import threading

    def warm() -> None:
        try:
            from explorer.projection import warm_up

            warm_up()
        except Exception:  # noqa: BLE001 (a failed warm-up only means the first map compiles)
            pass

    threading.Thread(target=warm, name="umap-warm-up", daemon=True).start()


def _app_and_window():
    """The QApplication (made once, themed) and a new main window, not shown yet."""
    # No Python Qt message handler: Qt calls it from worker threads, where it broke jobs.
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationDisplayName(APP_NAME)

    import pyqtgraph as pg

    from explorer.gui import style
    from explorer.gui.garbage import collect_on_gui_thread
    from explorer.gui.main_window import MainWindow

    pg.setConfigOptions(background=style.PLOT, foreground=style.TEXT, antialias=False)
    style.apply_theme(app)
    collect_on_gui_thread()  # a Qt object freed by a worker's collection can hang the process
    return app, MainWindow()


def window_on(project, state_dir=None, selection=None, *, block: bool = True):
    """The window on the image folder ``project`` with the item ids ``selection`` (n,) selected,
    for Python callers (``explorer.notebook``). ``block`` runs the event loop until it closes;
    otherwise the window is returned at once (a notebook with ``%gui qt`` keeps it alive)."""
    if _headless():
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app, window = _app_and_window()
    window.show()
    app.processEvents()
    then = None
    if selection is not None:
        import numpy as np

        def then() -> None:  # once the project's tables landed (a selection before would be dropped)
            window.session.set_selection(np.asarray(selection, np.int64))

    if not window.open_project(project, state_dir, then=then):
        raise RuntimeError(f"could not open {project}: {window.last_error}")
    if block:
        app.exec()
    elif not _until_opened(window):
        raise RuntimeError(f"could not open {project}: {window.last_error}")
    return window


def _until_opened(window) -> bool:
    """Run the event loop until the window's project has been read (the window keeps drawing
    meanwhile); False when it could not be."""
    from PySide6.QtCore import QEventLoop

    session = window.session
    if session.opening:
        loop = QEventLoop()
        session.projectOpened.connect(loop.quit)
        session.openFailed.connect(loop.quit)
        loop.exec()
        session.projectOpened.disconnect(loop.quit)
        session.openFailed.disconnect(loop.quit)
    return session.project is not None and not session.opening


def run(
    project: str | None = None, state_dir: str | None = None, screenshot: str | None = None, first_map: str = ""
) -> int:
    """Show the main window and run the event loop; returns the exit code.

    ``project``: a folder of images to open (else the last one opened, unless taking a
    screenshot). ``state_dir``: where the project keeps its state (default FOLDER/.explorer).
    ``screenshot``: save a picture of the window to this PNG once it has drawn, then exit 0.
    ``first_map``: a pipeline step ("quick map", "build") to start when the project has no map yet.
    """
    if _headless():
        if not screenshot and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
            print(
                "explorer: no screen here (DISPLAY is not set). Run under a display, e.g. "
                "`xvfb-run -a explorer ...`, or add `--screenshot FILE` to render the window to a picture.",
                file=sys.stderr,
            )
            return 2
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer

    app, window = _app_and_window()
    if screenshot:
        window.resize(1280, 800)  # the same picture whatever size was remembered
    window.show()
    app.processEvents()  # on screen first; the project (and scipy, for picking) loads after
    if project:

        def then() -> None:  # once the project's tables landed
            if first_map and window.session.map is None:
                window.run_step(first_map)

        if not window.open_project(project, state_dir, then=then) and screenshot:
            return 2
    elif not screenshot:
        window.restore_last_project()
    if not screenshot:
        _warm_up_in_background()

    if screenshot:
        import time

        deadline = time.monotonic() + SCREENSHOT_TIMEOUT_S
        result = {"code": 0}

        def take() -> None:
            # Two rounds of "settled" in a row, so queued paints and thumbnails have landed.
            if not window.settled() and time.monotonic() < deadline:
                take.calm = 0
                return
            take.calm += 1
            if take.calm < 3 and time.monotonic() < deadline:
                return
            timer.stop()
            app.processEvents()
            ok = window.grab().save(str(screenshot))
            result["code"] = 0 if ok else 1
            if not ok:
                print(f"could not write the screenshot to {screenshot}", file=sys.stderr)
            window.close()
            app.exit(result["code"])

        take.calm = 0
        timer = QTimer(window, interval=100, timeout=take)
        timer.start()
        app.exec()
        window.deleteLater()
        return result["code"]
    return app.exec()
