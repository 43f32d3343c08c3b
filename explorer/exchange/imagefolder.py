"""Export as a class-per-folder tree (torchvision ``ImageFolder`` layout)."""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from explorer.exchange.manifest import ManifestError, ManifestRow
from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress

WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
MAX_NAME_BYTES = 100
MODES = ("copy", "hardlink", "symlink")


def safe_folder_names(names: Iterable[str]) -> dict[str, str]:
    """class name -> a distinct folder name that is safe on Linux, macOS and Windows.

    Path separators, control and reserved characters become '_'; '.', '..', trailing dots and
    spaces and Windows device names are avoided; names are cut to 100 UTF-8 bytes; names that
    would collide (also ignoring case, for case-insensitive file systems) get a '~2' suffix.
    """
    taken: set[str] = set()
    out: dict[str, str] = {}
    for name in names:
        base = unicodedata.normalize("NFC", name)
        base = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]', "_", base).strip().rstrip(". ")
        if not base or set(base) <= {"."}:
            base = "_" + base.replace(".", "_") if base else "_"
        if base.split(".")[0].upper() in WINDOWS_RESERVED:
            base = "_" + base
        base = _cut(base, MAX_NAME_BYTES)
        candidate, n = base, 2
        while candidate.casefold() in taken:
            suffix = f"~{n}"
            candidate = _cut(base, MAX_NAME_BYTES - len(suffix)) + suffix
            n += 1
        taken.add(candidate.casefold())
        out[name] = candidate
    return out


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8")[:limit]
    return data.decode("utf-8", errors="ignore")


def export_imagefolder(
    rows: list[ManifestRow],
    root: Path,
    out: Path,
    mode: str = "copy",
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> dict[str, str]:
    """Write the labelled rows as ``out/<class folder>/<file>``; returns class -> folder name.

    The tree is built under a temporary name beside ``out`` and renamed into place at the end, so an
    interrupted export never leaves a tree that looks complete. ``classes.json`` beside the class
    folders maps folder names back to class names. Files from different sub-folders that share a
    name are kept apart by folding their folder into the file name.
    """
    if mode not in MODES:
        raise ManifestError(f"unknown export mode {mode!r}; expected one of {', '.join(MODES)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ManifestError(f"{out} already exists and is not empty: choose a new folder")
    labelled = [r for r in rows if r.label]
    folders = safe_folder_names(sorted({r.label for r in labelled}))
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        for folder in folders.values():
            (tmp / folder).mkdir()
        for k, row in enumerate(labelled):
            if cancel and k % 256 == 0:
                cancel.raise_if_cancelled()
            target = tmp / folders[row.label] / row.path.replace("/", "__")
            source = root / row.path
            if mode == "copy":
                shutil.copy2(source, target)
            elif mode == "hardlink":
                os.link(source, target)
            else:
                os.symlink(source.resolve(), target)
            if k % 256 == 0:
                progress(Progress("export", k, len(labelled)))
        with open(tmp / "classes.json", "w", encoding="utf-8") as f:
            json.dump({folder: name for name, folder in folders.items()}, f, ensure_ascii=False, indent=1)
        progress(Progress("export", len(labelled), len(labelled)))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folders
