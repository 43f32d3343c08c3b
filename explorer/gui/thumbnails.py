"""Thumbnails decoded on worker threads, kept in a bounded in-memory LRU cache and on disk.

``get(item_id, size)`` answers at once: the cached ``QImage`` or None, in which case a decode is
queued (newest requests first) and ``ready(item_id, size)`` fires when it lands. Workers build
``QImage`` objects (safe off the GUI thread); views turn them into pixmaps when they paint.

Disk cache: with a ``cache_dir`` (a folder, or a callable returning one, e.g. the project's
``<state_dir>/thumbs``), each thumbnail is written once as
``<cache_dir>/<size>/<item_id // 1000>/<item_id>-<file bytes>-<file mtime_ns>.jpg`` (to a temporary
name, then renamed, so a crash never leaves half a file under the real name) and read back before
the original is decoded. A changed original has another size or mtime, so it is thumbnailed
again and the old file is removed; an original that is gone (unplugged drive) is still shown from
the newest thumbnail on disk.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

# Requests waiting beyond this are dropped oldest first (the person has scrolled on); a view asks
# again when it repaints. A full gallery page of small tiles must fit.
MAX_QUEUED = 512
JPEG_QUALITY = 90


def cache_path(cache_dir: Path, item_id: int, size: int, file_bytes: int, mtime_ns: int) -> Path:
    """Where the thumbnail of one version of an item's file lives on disk."""
    return cache_dir / str(size) / str(item_id // 1000) / f"{item_id}-{file_bytes}-{mtime_ns}.jpg"


def _cached_versions(cache_dir: Path, item_id: int, size: int) -> list[Path]:
    folder = cache_dir / str(size) / str(item_id // 1000)
    return list(folder.glob(f"{item_id}-*.jpg")) if folder.is_dir() else []


def load_thumbnail(path: Path, item_id: int, size: int, cache_dir: Path | None) -> tuple[QImage, bool]:
    """(thumbnail of at most ``size`` x ``size`` pixels, whether it came from the disk cache).

    Raises ``explorer.images.decode.ImageError`` (or OSError) when neither the cache nor the
    original can give one."""
    from explorer.images.decode import open_image

    try:
        stat = path.stat()
    except OSError:
        stat = None
    if cache_dir is not None:
        if stat is not None:
            candidates = [cache_path(cache_dir, item_id, size, stat.st_size, stat.st_mtime_ns)]
        else:  # the original is gone: the newest thumbnail we have of it
            candidates = sorted(_cached_versions(cache_dir, item_id, size), key=_mtime_of_name, reverse=True)
        for candidate in candidates:
            image = QImage(str(candidate))
            if not image.isNull():
                return image, True
    from PIL import Image

    image = open_image(path)
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    if cache_dir is not None and stat is not None:
        _store(image, cache_dir, item_id, size, stat.st_size, stat.st_mtime_ns)
    data = image.tobytes("raw", "RGB")
    return QImage(data, image.width, image.height, 3 * image.width, QImage.Format.Format_RGB888).copy(), False


def _mtime_of_name(path: Path) -> int:
    try:
        return int(path.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _store(image, cache_dir: Path, item_id: int, size: int, file_bytes: int, mtime_ns: int) -> None:
    """Write atomically (temporary name, then rename) and drop older versions of the same item.
    A cache that cannot be written (read-only drive, full disk) only costs a decode next time."""
    final = cache_path(cache_dir, item_id, size, file_bytes, mtime_ns)
    tmp = final.with_name(f".{final.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        image.convert("RGB").save(tmp, "JPEG", quality=JPEG_QUALITY)
        os.replace(tmp, final)
        for old in _cached_versions(cache_dir, item_id, size):
            if old != final:
                old.unlink(missing_ok=True)
    except OSError:
        tmp.unlink(missing_ok=True)


class _Relay(QObject):
    loaded = Signal(int, int, int, object, str, bool)  # generation, item id, size, QImage | None, error, from disk


class _Queue:
    """Requests shared by the workers, newest first; each worker run takes the newest one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: OrderedDict[tuple[int, int], tuple[Path, Path | None, int]] = OrderedDict()

    def pop_newest(self):
        with self.lock:
            return self.jobs.popitem(last=True) if self.jobs else None


class _Worker(QRunnable):
    def __init__(self, queue: _Queue, relay: _Relay) -> None:
        super().__init__()
        self.queue, self.relay = queue, relay

    def run(self) -> None:
        from explorer.images.decode import ImageError

        job = self.queue.pop_newest()
        if job is None:  # its request was dropped or already served
            return
        (item_id, size), (path, cache_dir, generation) = job
        try:
            image, from_disk = load_thumbnail(path, item_id, size, cache_dir)
            self.relay.loaded.emit(generation, item_id, size, image, "", from_disk)
        except (ImageError, OSError) as exc:
            self.relay.loaded.emit(generation, item_id, size, None, str(exc), False)
        except Exception as exc:  # never let a thumbnail take the window down
            self.relay.loaded.emit(generation, item_id, size, None, f"{type(exc).__name__}: {exc}", False)


class Thumbnails(QObject):
    """LRU cache of decoded thumbnails keyed by (item id, size in pixels), backed by a disk cache.

    ``resolve(item_id) -> Path | None`` finds an item's file; ``cache_dir`` is a folder or a
    callable returning the folder for the open project (None: no disk cache)."""

    ready = Signal(int, int)  # item id, size

    def __init__(
        self,
        resolve: Callable[[int], Path | None],
        capacity_bytes: int = 192 * 2**20,
        parent: QObject | None = None,
        cache_dir: Path | Callable[[], Path | None] | None = None,
    ):
        super().__init__(parent)
        self._resolve = resolve
        self._cache_dir = cache_dir
        self.capacity_bytes = capacity_bytes
        self._bytes = 0
        self._cache: OrderedDict[tuple[int, int], QImage | None] = OrderedDict()
        self.errors: dict[int, str] = {}
        self.requests = 0  # decodes or disk reads queued so far (views are judged by it)
        self.disk_hits = 0  # thumbnails read from the disk cache instead of decoded
        self._queue = _Queue()
        self._pending: set[tuple[int, int]] = set()
        self._generation = 0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._relay = _Relay(self)
        self._relay.loaded.connect(self._on_loaded)
        self._priority = itertools.count(1)

    def cache_dir(self) -> Path | None:
        folder = self._cache_dir() if callable(self._cache_dir) else self._cache_dir
        return Path(folder) if folder is not None else None

    def clear(self) -> None:
        """Forget everything in memory (a different project was opened); results still in flight
        from before are dropped when they land."""
        self._generation += 1
        with self._queue.lock:
            self._queue.jobs.clear()
        self._pool.clear()
        self._pending.clear()
        self._cache.clear()
        self._bytes = 0
        self.errors.clear()

    @property
    def busy(self) -> bool:
        with self._queue.lock:
            return bool(self._pending or self._queue.jobs)

    def get(self, item_id: int, size: int) -> QImage | None:
        """The cached thumbnail, or None (queued; ``ready`` fires when it lands, or ``errors``
        names why it cannot be read)."""
        key = (int(item_id), int(size))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        with self._queue.lock:
            if key in self._queue.jobs:
                self._queue.jobs.move_to_end(key)  # asked again: newest again
                return None
            if key in self._pending:
                return None
        path = self._resolve(key[0])
        if path is None:
            return None
        with self._queue.lock:
            self._queue.jobs[key] = (Path(path), self.cache_dir(), self._generation)
            self._pending.add(key)
            while len(self._queue.jobs) > MAX_QUEUED:
                dropped, _ = self._queue.jobs.popitem(last=False)
                self._pending.discard(dropped)
        self.requests += 1
        self._pool.start(_Worker(self._queue, self._relay), min(next(self._priority), 2**30))
        return None

    def wait(self, msecs: int = -1) -> bool:
        return self._pool.waitForDone(msecs)

    def _on_loaded(self, generation: int, item_id: int, size: int, image, error: str, from_disk: bool) -> None:
        if generation != self._generation:
            return
        key = (item_id, size)
        with self._queue.lock:
            self._pending.discard(key)
        if key in self._cache:
            old = self._cache.pop(key)
            self._bytes -= old.sizeInBytes() if old is not None else 0
        self._cache[key] = image
        self._bytes += image.sizeInBytes() if image is not None else 0
        self.disk_hits += int(from_disk)
        if error:
            self.errors[item_id] = error
        while self._bytes > self.capacity_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._bytes -= old.sizeInBytes() if old is not None else 0
        self.ready.emit(item_id, size)
