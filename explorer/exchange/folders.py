"""Labels from a class-per-folder collection (the ImageFolder layout): ``cat/001.png`` is a cat.

The label of an image is the name of the folder it sits in, its immediate parent, so
``train/cat/001.png`` and ``val/cat/002.png`` are both ``cat``. Images at the top of the collection
have no class folder and stay unlabelled. When a ``classes.json`` (folder name -> class name, as
our ImageFolder exports write) sits beside the class folders, it turns folder names made safe
back into the original class names.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import PurePosixPath

from explorer.exchange.manifest import ImportReport, apply_labels
from explorer.store import Project

CLASSES_FILE = "classes.json"


def folder_labels(project: Project) -> tuple[dict[int, str], int]:
    """(item id -> class name from its folder, number of readable images with no class folder)."""
    mappings: dict[PurePosixPath, dict[str, str]] = {}
    labels: dict[int, str] = {}
    top_level = 0
    files = project.readable_files()  # arrays: a million Item objects cost seconds
    for item_id, path in zip(files.item_ids.tolist(), files.paths, strict=True):
        folder = PurePosixPath(path).parent
        if not folder.parts:
            top_level += 1
            continue
        if folder.parent not in mappings:
            mappings[folder.parent] = _class_names(project, folder.parent)
        name = unicodedata.normalize("NFC", folder.name)
        labels[item_id] = mappings[folder.parent].get(name, name)
    return labels, top_level


def _class_names(project: Project, parent: PurePosixPath) -> dict[str, str]:
    """folder name -> class name from ``parent/classes.json``, or {} when there is none or it is not one."""
    try:
        mapping = json.loads((project.root / parent / CLASSES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(mapping, dict):
        return {}
    return {str(k): v.strip() for k, v in mapping.items() if isinstance(v, str) and v.strip()}


def labels_from_folders(project: Project) -> ImportReport:
    """Give every readable image its folder name as an ``imported`` label, as one undoable event.

    Run it after a scan (``explorer scan --labels-from-folders``). Images a person labelled
    (``seed`` or ``accepted``) keep their label, so scanning again never undoes their work.
    """
    labels, top_level = folder_labels(project)
    report = ImportReport(no_folder=top_level)
    human = project.human_labels()
    keep = {item for item, (_, source) in human.items() if source != "imported"}
    report.kept_human = len(keep & labels.keys())
    chosen = {item: (name, "imported") for item, name in labels.items() if item not in keep}
    apply_labels(project, chosen, report, f"labels from folder names for {len(chosen)} image(s)")
    return report
