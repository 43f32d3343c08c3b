"""Folder and file names that are safe on Linux, macOS and Windows, and distinct.

Class names are whatever people typed (slashes, '..', control characters, 'CON', emoji, very
long); collection paths are nested. Exports flatten both into single path components.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import PurePosixPath

WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
MAX_NAME_BYTES = 100
MAX_FILE_NAME_BYTES = 200  # most file systems allow 255; leave room for a '~N' suffix
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


def safe_name(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """One path component for ``name``: unsafe characters become '_'; never empty, '.', '..',
    hidden (leading dot), a Windows device name, or ending in a dot or space; at most ``limit``
    UTF-8 bytes."""
    base = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).strip().rstrip(". ")
    if not base:
        base = "_"
    if base.startswith(".") or base.split(".")[0].strip().upper() in WINDOWS_RESERVED:
        base = "_" + base  # hidden (scanners and file browsers skip it) or a Windows device name
    return _cut(base, limit).rstrip(". ") or "_"


def safe_folder_names(names: Iterable[str]) -> dict[str, str]:
    """class name -> a distinct folder name that is safe on Linux, macOS and Windows.

    Path separators, control and reserved characters become '_'; '.', '..', trailing dots and
    spaces and Windows device names are avoided; names are cut to 100 UTF-8 bytes; names that
    would collide (also ignoring case, for case-insensitive file systems) get a '~2' suffix.
    """
    return _distinct({name: safe_name(name) for name in names}, MAX_NAME_BYTES, keep_suffix=False)


def flat_file_names(paths: Iterable[str]) -> dict[str, str]:
    """collection path -> a distinct, safe file name for one folder: ``a/b/c.png`` -> ``a__b__c.png``.

    The file suffix is kept (readers pick files by it); collisions, also ignoring case, get '~2'
    before the suffix.
    """
    names = {}
    for path in paths:
        pure = PurePosixPath(path)
        stem = "__".join((*pure.parent.parts, pure.stem)) if pure.parent.parts else pure.stem
        suffix = "." + safe_name(pure.suffix[1:], 15) if pure.suffix else ""
        names[path] = safe_name(stem, MAX_FILE_NAME_BYTES) + suffix
    return _distinct(names, MAX_FILE_NAME_BYTES + 16, keep_suffix=True)


def _distinct(wanted: dict[str, str], limit: int, keep_suffix: bool) -> dict[str, str]:
    taken: set[str] = set()
    out: dict[str, str] = {}
    for key, base in wanted.items():
        stem, suffix = (
            (base[: -len(PurePosixPath(base).suffix)], PurePosixPath(base).suffix) if keep_suffix else (base, "")
        )
        if not stem:
            stem, suffix = base, ""
        candidate, n = base, 2
        while candidate.casefold() in taken:
            tag = f"~{n}{suffix}"
            candidate = _cut(stem, limit - len(tag.encode())) + tag
            n += 1
        taken.add(candidate.casefold())
        out[key] = candidate
    return out


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8")[:limit]
    return data.decode("utf-8", errors="ignore")
