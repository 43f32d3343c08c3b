"""COCO-style JSON for image classification: images, categories, and one annotation per labelled
image with its ``score`` (confidence) and ``source`` (seed, accepted, imported, pseudo).

Image ids are the project's item ids and category ids its class ids, so two exports of one
project agree; ``file_name`` is the path relative to the collection folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from explorer.exchange.atomic import WholeChunks, atomic_file
from explorer.exchange.manifest import ManifestRow
from explorer.jobs import CancelToken
from explorer.store import Project


def coco_document(project: Project, rows: list[ManifestRow]) -> dict:
    """The COCO dictionary for ``rows`` (unlabelled rows become images without annotations)."""
    items = {item.path: item for item in project.items()}
    classes = project.classes()
    class_id = {c.name: c.id for c in classes}
    images, annotations = [], []
    for row in rows:
        item = items[row.path]
        images.append({"id": item.id, "file_name": row.path, "width": item.width, "height": item.height})
        if row.label:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": item.id,
                    "category_id": class_id[row.label],
                    "score": float(row.confidence) if row.confidence else None,
                    "source": row.source,
                }
            )
    return {
        "info": {
            "description": f"labels of {project.root.name} from Embedding Explorer",
            "version": "1.0",
            "date_created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "licenses": [],
        "images": images,
        "categories": [{"id": c.id, "name": c.name, "supercategory": ""} for c in classes],
        "annotations": annotations,
    }


def write_coco(project: Project, rows: list[ManifestRow], out: Path, cancel: CancelToken | None = None) -> None:
    """Write ``coco_document`` to ``out`` atomically."""
    document = coco_document(project, rows)
    with atomic_file(out, "w", cancel, encoding="utf-8") as f, WholeChunks(f) as chunks:
        json.dump(document, chunks, ensure_ascii=False, indent=1)
