"""Export as a class-per-folder tree (torchvision ``ImageFolder`` layout).

  OUT/<class folder>/<file>            without a split
  OUT/train/<class folder>/<file>      with a split (and OUT/val/...)
  classes.json                         beside the class folders: folder name -> class name
  OUT/manifest.csv                     path (relative to OUT), label, source, confidence

Class folders are made safe and distinct (``explorer.exchange.names``); files from different
sub-folders are kept apart by folding their folders into the file name (``a/b.png`` -> ``a__b.png``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from explorer.exchange.atomic import ExportError, atomic_folder
from explorer.exchange.manifest import ManifestRow, write_manifest
from explorer.exchange.names import flat_file_names, safe_folder_names
from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress

MODES = ("copy", "hardlink", "symlink")
CLASSES_FILE = "classes.json"

__all__ = ["MODES", "export_imagefolder", "place_files", "safe_folder_names"]


def place_files(
    pairs: Sequence[tuple[Path, Path]],
    mode: str = "copy",
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> list[Path]:
    """Copy, hard-link or symlink each (source, target); returns the sources that no longer exist.

    Checks ``cancel`` before every file.
    """
    if mode not in MODES:
        raise ExportError(f"unknown export mode {mode!r}; expected one of {', '.join(MODES)}")
    missing = []
    for k, (source, target) in enumerate(pairs):
        if cancel:
            cancel.raise_if_cancelled()
        if k % 64 == 0:
            progress(Progress("export", k, len(pairs)))
        try:
            if mode == "copy":
                shutil.copy2(source, target)
            elif mode == "hardlink":
                os.link(source, target)
            else:
                os.symlink(source.resolve(strict=True), target)
        except FileNotFoundError:
            missing.append(source)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise ExportError(
                    f"cannot hard-link {source} into {target.parent}: they are on different disks; use copy or symlink"
                ) from None
            raise ExportError(f"cannot write {target} from {source}: {exc.strerror or exc}") from None
    progress(Progress("export", len(pairs), len(pairs)))
    return missing


def export_imagefolder(
    rows: list[ManifestRow],
    root: Path,
    out: Path,
    mode: str = "copy",
    splits: dict[str, str] | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Write the labelled rows as an ImageFolder tree; returns (class -> folder name, paths left out
    because their file is gone since the scan).

    ``splits`` (path -> 'train' or 'val') puts each image under that split's folder. The tree is
    built under ``.OUT.partial`` and renamed into place at the end, so an interrupted export never
    leaves a tree that looks complete.
    """
    if mode not in MODES:
        raise ExportError(f"unknown export mode {mode!r}; expected one of {', '.join(MODES)}")
    labelled = [r for r in rows if r.label]
    folders = safe_folder_names(sorted({r.label for r in labelled}))
    files = flat_file_names(r.path for r in labelled)
    with atomic_folder(out, cancel) as tmp:
        relative = {r.path: _place(r, splits, folders, files) for r in labelled}
        parents = {Path(p).parent for p in relative.values()}
        for parent in parents:
            (tmp / parent).mkdir(parents=True, exist_ok=True)
        pairs = [(root / r.path, tmp / relative[r.path]) for r in labelled]
        missing = {p.relative_to(root).as_posix() for p in place_files(pairs, mode, progress, cancel)}
        for parent in parents:  # a class whose files are all gone: torchvision refuses empty class folders
            if not any((tmp / parent).iterdir()):
                (tmp / parent).rmdir()
        for top in {parent.parent for parent in parents}:
            used = {folder: name for name, folder in folders.items() if (tmp / top / folder).is_dir()}
            with open(tmp / top / CLASSES_FILE, "w", encoding="utf-8") as f:
                json.dump(used, f, ensure_ascii=False, indent=1, sort_keys=True)
        written = [
            ManifestRow(relative[r.path], r.label, r.source, r.confidence) for r in labelled if r.path not in missing
        ]
        write_manifest(sorted(written, key=lambda r: r.path), tmp / "manifest.csv", "csv")
    return folders, sorted(missing)


def _place(row: ManifestRow, splits: dict[str, str] | None, folders: dict[str, str], files: dict[str, str]) -> str:
    prefix = f"{splits[row.path]}/" if splits else ""
    return f"{prefix}{folders[row.label]}/{files[row.path]}"
