"""Finding the images of a collection and recording them in the project."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from explorer.images.decode import IMAGE_SUFFIXES, ImageError, probe
from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.store import Project, ScannedFile

BATCH = 256


@dataclass
class ScanReport:
    total: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), this scan's

    def summary(self) -> str:
        lines = [
            f"{self.total} image files: {self.added} new, {self.changed} changed, "
            f"{self.unchanged} unchanged, {self.removed} gone since the last scan"
        ]
        if self.unreadable:
            lines.append(f"{len(self.unreadable)} unreadable file(s) (left out):")
            lines += [f"  {path}: {reason}" for path, reason in self.unreadable[:20]]
            if len(self.unreadable) > 20:
                lines.append(f"  ... and {len(self.unreadable) - 20} more (see `explorer status`)")
        return "\n".join(lines)


def find_image_files(root: Path, skip: Path | None = None) -> Iterator[tuple[str, os.stat_result, str | None]]:
    """(relative path with forward slashes, stat, problem) of every image file under ``root``, sorted.

    Hidden folders and ``skip`` (the project's own state folder) are left out; symlinked folders
    are not followed, so a symlink loop cannot trap the scan. ``problem`` is None, or why the
    file cannot be an item whatever its contents: a symlink loop, a broken symlink, a name that
    is not valid UTF-8 (then the path shows the bad bytes as ``\\xNN``; the project stores paths
    as text, as the manifest does). Files that vanish while listing are left out.
    """
    skip = skip.resolve() if skip else None
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or (here / d).resolve() != skip))
        for name in sorted(files):
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES or name.startswith("."):
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            problem = None
            try:
                stat = path.stat()
            except OSError as exc:
                try:
                    stat = path.lstat()
                except OSError:
                    continue  # vanished since the listing
                problem = _link_problem(path, exc)
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                rel = os.fsencode(rel).decode("utf-8", "backslashreplace")
                problem = "file name is not valid UTF-8: rename the file to include it"
            yield rel, stat, problem


def _link_problem(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if path.is_symlink():
        return f"broken symbolic link (points to {os.readlink(path)!r}, which does not exist)"
    return f"cannot read file information ({exc.strerror or exc})"


def _inspect(root: Path, rel: str, stat: os.stat_result, problem: str | None) -> ScannedFile:
    if problem is not None:
        return ScannedFile(rel, stat.st_size, stat.st_mtime_ns, error=problem)
    try:
        width, height, mode = probe(root / rel)
        return ScannedFile(rel, stat.st_size, stat.st_mtime_ns, width, height, mode)
    except ImageError as exc:
        return ScannedFile(rel, stat.st_size, stat.st_mtime_ns, error=str(exc))


def scan_collection(
    project: Project, progress: ProgressFn = no_progress, cancel: CancelToken | None = None
) -> ScanReport:
    """Record every image under the project's root, decoding new and changed files once.

    Unreadable files are recorded with their reason and the scan goes on. Files that were
    recorded before and are gone now are marked missing (their labels are kept). Work is saved
    in batches, so an interrupted scan keeps what it did and the next scan continues.
    """
    known = project.known_files()
    report = ScanReport()
    progress(Progress("scan", 0, None, "listing files"))
    listing = list(find_image_files(project.root, skip=project.state_dir))
    report.total = len(listing)
    todo = []
    for rel, stat, problem in listing:
        previous = known.get(rel)
        # Unreadable files are looked at again every time: a permission fixed or a file put back
        # changes neither size nor mtime.
        same = previous is not None and previous[1] == stat.st_size and previous[2] == stat.st_mtime_ns
        if same and previous[3]:
            report.unchanged += 1
        else:
            todo.append((rel, stat, problem, "unchanged" if same else "changed" if previous else "added"))
    done = report.unchanged
    progress(Progress("scan", done, report.total, "decoding"))
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for start in range(0, len(todo), BATCH):
            if cancel:
                cancel.raise_if_cancelled()
            batch = todo[start : start + BATCH]
            scanned = list(pool.map(lambda t: _inspect(project.root, *t[:3]), batch))
            project.record_scan(scanned, gone=[])
            for (*_, how), result in zip(batch, scanned):
                setattr(report, how, getattr(report, how) + 1)
                if result.error:
                    report.unreadable.append((result.path, result.error))
            done += len(batch)
            progress(Progress("scan", done, report.total, "decoding"))
    found = {rel for rel, *_ in listing}
    gone = [path for path in known if path not in found]
    project.record_scan([], gone=gone)
    report.removed = len(gone)
    return report
