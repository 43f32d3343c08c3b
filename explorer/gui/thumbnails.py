"""Thumbnails decoded on worker threads and kept in a bounded in-memory LRU cache.

``get(item_id, size)`` answers at once: the cached ``QImage`` or None, in which case a decode is
queued (newest requests first) and ``ready(item_id, size)`` fires when it lands. Workers build
``QImage`` objects (safe off the GUI thread); views turn them into pixmaps when they paint.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

# Queued decodes beyond this are dropped (the person has moved on); newest run first anyway.
MAX_QUEUED = 64


class _Relay(QObject):
    loaded = Signal(int, int, object, str)  # item id, size, QImage | None, error


class _Decode(QRunnable):
    def __init__(self, item_id: int, size: int, path: Path, relay: _Relay) -> None:
        super().__init__()
        self.item_id, self.size, self.path, self.relay = item_id, size, path, relay

    def run(self) -> None:
        from PIL import Image

        from explorer.images.decode import ImageError, open_image

        try:
            image = open_image(self.path)
            image.thumbnail((self.size, self.size), Image.Resampling.BILINEAR)
            data = image.tobytes("raw", "RGB")
            qimage = QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888).copy()
            self.relay.loaded.emit(self.item_id, self.size, qimage, "")
        except ImageError as exc:
            self.relay.loaded.emit(self.item_id, self.size, None, str(exc))
        except Exception as exc:  # never let a thumbnail take the window down
            self.relay.loaded.emit(self.item_id, self.size, None, f"{type(exc).__name__}: {exc}")


class Thumbnails(QObject):
    """LRU cache of decoded thumbnails keyed by (item id, size in pixels)."""

    ready = Signal(int, int)  # item id, size

    def __init__(
        self, resolve: Callable[[int], Path | None], capacity_bytes: int = 192 * 2**20, parent: QObject | None = None
    ):
        super().__init__(parent)
        self._resolve = resolve
        self.capacity_bytes = capacity_bytes
        self._bytes = 0
        self._cache: OrderedDict[tuple[int, int], QImage | None] = OrderedDict()
        self.errors: dict[int, str] = {}
        self._pending: set[tuple[int, int]] = set()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._relay = _Relay(self)
        self._relay.loaded.connect(self._on_loaded)
        self._priority = itertools.count(1)

    def clear(self) -> None:
        """Forget everything (a different project was opened)."""
        self._pool.clear()
        self._cache.clear()
        self._bytes = 0
        self._pending.clear()
        self.errors.clear()

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def get(self, item_id: int, size: int) -> QImage | None:
        """The cached thumbnail, or None (queued; ``ready`` fires when it lands, or ``errors``
        names why it cannot be read)."""
        key = (int(item_id), int(size))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if key not in self._pending:
            path = self._resolve(key[0])
            if path is None:
                return None
            if len(self._pending) >= MAX_QUEUED:
                self._pool.clear()  # drop the queued, keep the running
                self._pending.clear()
            self._pending.add(key)
            self._pool.start(_Decode(key[0], key[1], path, self._relay), min(next(self._priority), 2**30))
        return None

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def _on_loaded(self, item_id: int, size: int, image: QImage | None, error: str) -> None:
        key = (item_id, size)
        self._pending.discard(key)
        if key in self._cache:
            old = self._cache.pop(key)
            self._bytes -= old.sizeInBytes() if old is not None else 0
        self._cache[key] = image
        self._bytes += image.sizeInBytes() if image is not None else 0
        if error:
            self.errors[item_id] = error
        while self._bytes > self.capacity_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._bytes -= old.sizeInBytes() if old is not None else 0
        self.ready.emit(item_id, size)
