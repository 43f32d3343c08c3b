"""Label manifests: ``path,label,source,confidence`` as CSV or JSON Lines (see DESIGN.md)."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from explorer.store import HUMAN_SOURCES, Project, ProjectError

COLUMNS = ("path", "label", "source", "confidence")
ALL_SOURCES = (*HUMAN_SOURCES, "pseudo")


class ManifestError(ProjectError):
    """A manifest file that cannot be read as asked; the message names the file and line."""


@dataclass
class ManifestRow:
    path: str
    label: str = ""
    source: str = ""
    confidence: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "label": self.label, "source": self.source, "confidence": self.confidence}


def manifest_rows(
    project: Project, include: tuple[str, ...] = ALL_SOURCES, min_confidence: float = 0.0
) -> list[ManifestRow]:
    """One row per readable image, sorted by path; labels outside the filter are left empty.

    ``include`` names the sources that go out; ``min_confidence`` applies to pseudo-labels
    (human labels have confidence 1).
    """
    table = project.label_table()
    names = {c.id: c.name for c in project.classes()}
    paths = project.paths_by_id()
    rows = []
    for item_id, cls, source, conf in zip(table.item_ids, table.class_ids, table.source, table.confidence):
        row = ManifestRow(paths[int(item_id)])
        if cls >= 0 and source in include and (source != "pseudo" or conf >= min_confidence):
            row.label, row.source = names[int(cls)], str(source)
            row.confidence = "1" if source != "pseudo" else _format_confidence(float(conf))
        rows.append(row)
    rows.sort(key=lambda r: r.path)
    return rows


def _format_confidence(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if np.isfinite(value) else ""


def write_manifest(rows: list[ManifestRow], out: Path, fmt: str = "csv") -> None:
    """Write rows as CSV (header ``path,label,source,confidence``) or JSON Lines, atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        if fmt == "csv":
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows((r.path, r.label, r.source, r.confidence) for r in rows)
        elif fmt == "jsonl":
            for r in rows:
                record = r.as_dict()
                record["confidence"] = float(r.confidence) if r.confidence else None
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            raise ManifestError(f"unknown manifest format {fmt!r}; expected csv or jsonl")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)


def read_manifest(path: Path) -> list[tuple[int, ManifestRow]]:
    """(line number, row) for every row of a CSV or JSON Lines manifest (by file suffix).

    Needs a ``path`` and a ``label`` column; ``source`` and ``confidence`` are optional.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"label file not found: {path}")
    rows: list[tuple[int, ManifestRow]] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if path.suffix.lower() in (".jsonl", ".ndjson"):
                for number, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ManifestError(f"{path}, line {number}: not valid JSON ({exc.msg})") from None
                    if not isinstance(record, dict) or "path" not in record or "label" not in record:
                        raise ManifestError(f'{path}, line {number}: needs "path" and "label" fields')
                    rows.append((number, _row(record)))
            else:
                reader = csv.DictReader(f)
                header = [h.strip().lower() for h in (reader.fieldnames or [])]
                if "path" not in header or "label" not in header:
                    raise ManifestError(
                        f"{path}: the first line must name the columns path,label[,source,confidence]; "
                        f"found {','.join(reader.fieldnames or []) or 'nothing'}"
                    )
                reader.fieldnames = header
                for record in reader:
                    if None in record:
                        raise ManifestError(f"{path}, line {reader.line_num}: more values than columns")
                    rows.append((reader.line_num, _row(record)))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return rows


def _row(record: dict) -> ManifestRow:
    text = lambda key: "" if record.get(key) is None else str(record.get(key)).strip()  # noqa: E731
    return ManifestRow(normalise_path(text("path")), text("label"), text("source").lower(), text("confidence"))


def normalise_path(path: str) -> str:
    """Collection-relative, forward slashes, no leading './'."""
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


@dataclass
class ImportReport:
    imported: Counter = field(default_factory=Counter)  # source -> count
    unchanged: int = 0
    unknown_paths: list[str] = field(default_factory=list)
    empty_labels: int = 0
    pseudo_rows: int = 0
    new_classes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        total = sum(self.imported.values())
        parts = [
            f"{total} label(s) set" + (f" ({', '.join(f'{n} {s}' for s, n in self.imported.items())})" if total else "")
        ]
        if self.unchanged:
            parts.append(f"{self.unchanged} already as in the file")
        if self.new_classes:
            parts.append(f"new classes: {', '.join(self.new_classes)}")
        if self.empty_labels:
            parts.append(f"{self.empty_labels} row(s) with an empty label skipped")
        if self.pseudo_rows:
            parts.append(f"{self.pseudo_rows} pseudo-label row(s) not taken as human labels")
        text = "; ".join(parts)
        if self.unknown_paths:
            first = ", ".join(self.unknown_paths[:5])
            text += f"\n{len(self.unknown_paths)} row(s) name files not in the collection, e.g. {first}"
        return text


def import_labels(project: Project, file: Path, as_source: str | None = None) -> ImportReport:
    """Set human labels from a manifest as one undoable action.

    ``as_source`` ('imported' or 'seed') overrides the file's ``source`` column; without it, the
    file's human sources are kept and rows without one become 'imported'. Pseudo-label rows are
    not human labels and are skipped. The whole file is checked before anything is written.
    """
    if as_source is not None and as_source not in HUMAN_SOURCES:
        raise ManifestError(f"--as must be one of {', '.join(HUMAN_SOURCES)} (got {as_source!r})")
    rows = read_manifest(file)
    report = ImportReport()
    known = project.known_files()
    wanted: dict[str, tuple[int, str, str]] = {}  # path -> (line, label, source)
    for line, row in rows:
        if not row.label:
            report.empty_labels += 1
            continue
        if row.source == "pseudo" and as_source is None:
            report.pseudo_rows += 1
            continue
        if row.source and row.source not in ALL_SOURCES:
            raise ManifestError(
                f"{file}, line {line}: unknown source {row.source!r}; expected one of {', '.join(ALL_SOURCES)}"
            )
        if row.path not in known:
            report.unknown_paths.append(row.path)
            continue
        source = as_source or (row.source if row.source in HUMAN_SOURCES else "imported")
        previous = wanted.get(row.path)
        if previous and previous[1] != row.label:
            raise ManifestError(
                f"{file}: {row.path!r} has two different labels, {previous[1]!r} (line {previous[0]}) "
                f"and {row.label!r} (line {line})"
            )
        wanted[row.path] = (line, row.label, source)
    existing = {c.name for c in project.classes()}
    report.new_classes = sorted({label for _, label, _ in wanted.values()} - existing)
    class_ids = project.ensure_classes(label for _, label, _ in wanted.values())
    assignments = {known[path][0]: (class_ids[label], source) for path, (_, label, source) in wanted.items()}
    current = project.human_labels()
    for item, value in assignments.items():
        if current.get(item) == value:
            report.unchanged += 1
        else:
            report.imported[value[1]] += 1
    project.set_labels_many(assignments, f"import {len(assignments)} label(s) from {Path(file).name}")
    return report
