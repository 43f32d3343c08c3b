"""Label manifests: ``path,label,source,confidence`` as CSV or JSON Lines (see DESIGN.md)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from explorer.exchange.atomic import WholeChunks, atomic_file
from explorer.jobs import CancelToken
from explorer.store import HUMAN_SOURCES, Project, ProjectError
from explorer.store.ids import lookup_unsorted

COLUMNS = ("path", "label", "source", "confidence")
ALL_SOURCES = (*HUMAN_SOURCES, "pseudo")
MAX_MANIFEST_BYTES = 1 << 30  # about 15 million rows; anything bigger is not a label file
MAX_LABEL_CHARS = 1000


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
    project: Project,
    include: tuple[str, ...] = ALL_SOURCES,
    min_confidence: float = 0.0,
    item_ids: np.ndarray | None = None,
) -> list[ManifestRow]:
    """One row per readable image, sorted by path; labels outside the filter are left empty.

    ``include`` names the sources that go out; ``min_confidence`` applies to pseudo-labels
    (human labels have confidence 1). ``item_ids``: only these images (a filter's or a lasso's),
    else every one.
    """
    table = project.label_table()
    names = {c.id: c.name for c in project.classes()}
    paths = project.paths_by_id()
    rows = []
    chosen = (
        np.ones(len(table.item_ids), bool)
        if item_ids is None
        else np.isin(table.item_ids, np.asarray(item_ids, np.int64))
    )
    # in path order from the store's index: a Python sort of 1M rows holds the GIL for 0.45 s
    by_path = project.item_ids_by_path()
    rank, found = lookup_unsorted(by_path, table.item_ids)
    late = np.flatnonzero(chosen & ~found)  # scanned in since the table was read: placed by Python
    rank[late] = len(by_path) + np.argsort(np.argsort([paths[int(i)] for i in table.item_ids[late]]))
    picked = np.flatnonzero(chosen)
    picked = picked[np.argsort(rank[picked], kind="stable")]
    columns = (table.item_ids[picked], table.class_ids[picked], table.source[picked], table.confidence[picked])
    for item_id, cls, source, conf in zip(*columns):
        row = ManifestRow(paths[int(item_id)])
        if cls >= 0 and source in include and (source != "pseudo" or conf >= min_confidence):
            row.label, row.source = names[int(cls)], str(source)
            row.confidence = "1" if source != "pseudo" else _format_confidence(float(conf))
        rows.append(row)
    return rows


def _format_confidence(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if np.isfinite(value) else ""


def write_manifest(rows: list[ManifestRow], out: Path, fmt: str = "csv", cancel: CancelToken | None = None) -> None:
    """Write rows as CSV (header ``path,label,source,confidence``) or JSON Lines, atomically."""
    if fmt not in ("csv", "jsonl"):
        raise ManifestError(f"unknown manifest format {fmt!r}; expected csv or jsonl")
    with atomic_file(out, "w", cancel, newline="", encoding="utf-8") as f, WholeChunks(f) as chunks:
        writer = csv.writer(chunks) if fmt == "csv" else None
        if writer:
            writer.writerow(COLUMNS)
        for k, r in enumerate(rows):
            if cancel and k % 4096 == 0:
                cancel.raise_if_cancelled()
            if writer:
                writer.writerow((r.path, r.label, r.source, r.confidence))
            else:
                record = r.as_dict()
                record["confidence"] = float(r.confidence) if r.confidence else None
                chunks.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_manifest(path: Path) -> list[tuple[int, ManifestRow]]:
    """(line number, row) for every row of a CSV or JSON Lines manifest (by file suffix).

    Needs a ``path`` and a ``label`` column; ``source`` and ``confidence`` are optional. Files
    over ``MAX_MANIFEST_BYTES``, unreadable text, missing columns and empty paths are refused
    with a message naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"label file not found: {path}")
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{path} is {size / 2**20:.0f} MiB; label files over {MAX_MANIFEST_BYTES // 2**20} MiB are refused "
            "(is it really a label manifest?)"
        )
    rows: list[tuple[int, ManifestRow]] = []
    line = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if path.suffix.lower() in (".jsonl", ".ndjson"):
                for line, text in enumerate(f, start=1):
                    if text.strip():
                        rows.append((line, _row(_json_record(path, line, text), path, line)))
            else:
                reader = csv.DictReader(f)
                header = [h.strip().lower() for h in (reader.fieldnames or [])]
                if "path" not in header or "label" not in header:
                    raise ManifestError(
                        f"{path}: the first line must name the columns path,label[,source,confidence]; "
                        f"found {','.join(reader.fieldnames or []) or 'nothing'}"
                    )
                repeated = sorted({h for h in header if header.count(h) > 1})
                if repeated:
                    raise ManifestError(f"{path}: column(s) {', '.join(repeated)} appear more than once in the header")
                reader.fieldnames = header
                for record in reader:
                    line = reader.line_num
                    if None in record:
                        raise ManifestError(f"{path}, line {line}: more values than columns")
                    rows.append((line, _row(record, path, line)))
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise ManifestError(f"{path}, line {line + 1}: not a readable CSV row ({exc})") from None
    return rows


def _json_record(path: Path, line: int, text: str) -> dict:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}, line {line}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict) or "path" not in record or "label" not in record:
        raise ManifestError(f'{path}, line {line}: needs "path" and "label" fields')
    for key in COLUMNS:
        value = record.get(key)
        if isinstance(value, bool) or (value is not None and not isinstance(value, str | int | float)):
            raise ManifestError(f"{path}, line {line}: {key!r} must be text or a number, not {type(value).__name__}")
    return record


def _row(record: dict, file: Path, line: int) -> ManifestRow:
    text = lambda key: "" if record.get(key) is None else str(record.get(key)).strip()  # noqa: E731
    row = ManifestRow(normalise_path(text("path")), text("label"), text("source").lower(), text("confidence"))
    if not row.path:
        raise ManifestError(f"{file}, line {line}: empty path")
    if "\x00" in row.path + row.label + row.source + row.confidence:
        raise ManifestError(f"{file}, line {line}: a NUL character (is this a binary file?)")
    if len(row.label) > MAX_LABEL_CHARS:
        raise ManifestError(f"{file}, line {line}: a label of {len(row.label)} characters; at most {MAX_LABEL_CHARS}")
    return row


def normalise_path(path: str, root: Path | None = None) -> str:
    """Collection-relative, forward slashes, no leading './'; absolute paths inside ``root`` are
    made relative to it."""
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    if root is not None and path.startswith("/"):
        prefix = root.as_posix().rstrip("/") + "/"
        if path.startswith(prefix):
            path = path[len(prefix) :]
    return path


@dataclass
class ImportReport:
    """What an import of labels did; ``summary()`` says it in one or two lines."""

    imported: Counter = field(default_factory=Counter)  # source -> labels set or changed
    unchanged: int = 0
    unknown_paths: list[str] = field(default_factory=list)
    empty_labels: int = 0
    pseudo_rows: int = 0
    new_classes: list[str] = field(default_factory=list)
    kept_human: int = 0  # folder labels not applied over a person's label
    no_folder: int = 0  # images at the top of the collection, with no class folder

    def summary(self) -> str:
        total = sum(self.imported.values())
        parts = [
            f"{total} label(s) set" + (f" ({', '.join(f'{n} {s}' for s, n in self.imported.items())})" if total else "")
        ]
        said = (  # (whether it happened, how to say it), in the order a person reads them
            (self.unchanged, f"{self.unchanged} already as given"),
            (self.new_classes, f"new classes: {', '.join(self.new_classes)}"),
            (self.empty_labels, f"{self.empty_labels} row(s) with an empty label skipped"),
            (self.pseudo_rows, f"{self.pseudo_rows} pseudo-label row(s) not taken as human labels"),
            (self.kept_human, f"{self.kept_human} image(s) kept the label a person gave them"),
            (self.no_folder, f"{self.no_folder} image(s) at the top level (no class folder) left unlabelled"),
        )
        parts += [text for happened, text in said if happened]
        text = "; ".join(parts)
        if self.unknown_paths:
            first = ", ".join(self.unknown_paths[:5])
            text += f"\n{len(self.unknown_paths)} row(s) name files not in the collection, e.g. {first}"
            if not total and not self.unchanged:
                text += " (paths must be relative to the collection folder)"
        return text


def import_labels(project: Project, file: Path, as_source: str | None = None) -> ImportReport:
    """Set human labels from a manifest as one undoable action.

    ``as_source`` ('imported' or 'seed') overrides the file's ``source`` column; without it, the
    file's human sources are kept and rows without one become 'imported'. Pseudo-label rows are
    not human labels and are skipped, and so are unlabelled rows (empty label, source and
    confidence, as exports write them). The whole file is checked before anything is written:
    a row with a source but no label, an unknown source, a confidence outside 0..1, a path given
    two different labels, or a file without a single label changes nothing and names the problem.
    Rows naming files that are not in the collection are counted in the report.
    """
    if as_source is not None and as_source not in HUMAN_SOURCES:
        raise ManifestError(f"--as must be one of {', '.join(HUMAN_SOURCES)} (got {as_source!r})")
    rows = read_manifest(file)
    report = ImportReport()
    known = project.known_files()
    wanted: dict[str, tuple[int, str, str]] = {}  # path -> (line, label, source)
    labelled = 0
    for line, row in rows:
        _check_row(file, line, row)
        if not row.label:
            report.empty_labels += 1
            continue
        labelled += 1
        if row.source == "pseudo" and as_source is None:
            report.pseudo_rows += 1
            continue
        path = normalise_path(row.path, project.root)
        if path not in known:
            report.unknown_paths.append(row.path)
            continue
        source = as_source or (row.source if row.source in HUMAN_SOURCES else "imported")
        previous = wanted.get(path)
        if previous and previous[1] != row.label:
            raise ManifestError(
                f"{file}: {path!r} has two different labels, {previous[1]!r} (line {previous[0]}) "
                f"and {row.label!r} (line {line})"
            )
        wanted.setdefault(path, (line, row.label, source))
    if not labelled:
        raise ManifestError(f"{file}: no row has a label (the label column is empty everywhere)")
    apply_labels(
        project,
        {known[p][0]: (label, source) for p, (_, label, source) in wanted.items()},
        report,
        f"import {len(wanted)} label(s) from {Path(file).name}",
    )
    return report


def _check_row(file: Path, line: int, row: ManifestRow) -> None:
    if row.source and row.source not in ALL_SOURCES:
        raise ManifestError(
            f"{file}, line {line}: unknown source {row.source!r}; expected one of {', '.join(ALL_SOURCES)}"
        )
    if not row.label and row.source:
        raise ManifestError(f"{file}, line {line}: source {row.source!r} but an empty label")
    if row.confidence:
        try:
            value = float(row.confidence)
        except ValueError:
            value = float("nan")
        if not 0.0 <= value <= 1.0:
            raise ManifestError(f"{file}, line {line}: confidence {row.confidence!r} is not a number from 0 to 1")


def apply_labels(project: Project, labels: dict[int, tuple[str, str]], report: ImportReport, action: str) -> None:
    """Give items (id -> (class name, source)) their labels as one undoable event, counting in ``report``."""
    existing = {c.name for c in project.classes()}
    report.new_classes = sorted({label for label, _ in labels.values()} - existing)
    class_ids = project.ensure_classes(label for label, _ in labels.values())
    assignments = {item: (class_ids[label], source) for item, (label, source) in labels.items()}
    current = project.human_labels()
    for item, value in assignments.items():
        if current.get(item) == value:
            report.unchanged += 1
        else:
            report.imported[value[1]] += 1
    project.set_labels_many(assignments, action)
