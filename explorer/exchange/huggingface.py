"""Export in the Hugging Face ``imagefolder`` layout: ``datasets.load_dataset("imagefolder", data_dir=OUT)``.

  OUT/train/<file>            the labelled images, one flat folder per split
  OUT/train/metadata.csv      file_name, label, source, confidence, path (the collection path)
  OUT/val/...                 with a split (``datasets`` calls it the validation split)

Images sit flat in the split folder, never in class folders: ``datasets`` takes any folder named
like a split (``test``, ``val``, ``dev``, ...) anywhere in the tree for a split, so a class called
"test" would leak images into a test split. The label is the class name itself, in metadata.csv.
"""

from __future__ import annotations

import csv
from pathlib import Path

from explorer.exchange.atomic import WholeChunks, atomic_folder
from explorer.exchange.imagefolder import place_files
from explorer.exchange.manifest import ManifestRow
from explorer.exchange.names import flat_file_names
from explorer.jobs import CancelToken, ProgressFn, no_progress

METADATA_COLUMNS = ("file_name", "label", "source", "confidence", "path")


def export_huggingface(
    rows: list[ManifestRow],
    root: Path,
    out: Path,
    mode: str = "copy",
    splits: dict[str, str] | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> list[str]:
    """Write the labelled rows in the ``imagefolder`` layout, atomically; returns the paths left
    out because their file is gone since the scan. ``splits``: path -> 'train' or 'val'."""
    labelled = [r for r in rows if r.label]
    split_of = {r.path: (splits or {}).get(r.path, "train") for r in labelled}
    files = flat_file_names(r.path for r in labelled)
    with atomic_folder(out, cancel) as tmp:
        for split in set(split_of.values()):
            (tmp / split).mkdir()
        pairs = [(root / r.path, tmp / split_of[r.path] / files[r.path]) for r in labelled]
        missing = {p.relative_to(root).as_posix() for p in place_files(pairs, mode, progress, cancel)}
        for split in sorted(set(split_of.values())):
            with open(tmp / split / "metadata.csv", "w", newline="", encoding="utf-8") as f, WholeChunks(f) as out:
                writer = csv.writer(out)
                writer.writerow(METADATA_COLUMNS)
                writer.writerows(
                    (files[r.path], r.label, r.source, r.confidence, r.path)
                    for r in labelled
                    if split_of[r.path] == split and r.path not in missing
                )
    return sorted(missing)
