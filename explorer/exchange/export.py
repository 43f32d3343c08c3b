"""Export a project's labels in the formats people train from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from explorer.exchange.imagefolder import export_imagefolder
from explorer.exchange.manifest import ALL_SOURCES, ManifestError, ManifestRow, manifest_rows, write_manifest
from explorer.jobs import CancelToken, ProgressFn, no_progress
from explorer.store import Project

FORMATS = ("csv", "jsonl", "imagefolder")


@dataclass
class ExportReport:
    fmt: str
    out: Path
    rows: int = 0
    by_class: Counter = field(default_factory=Counter)
    by_source: Counter = field(default_factory=Counter)

    @property
    def labelled(self) -> int:
        return sum(self.by_source.values())

    def summary(self) -> str:
        what = "rows" if self.fmt != "imagefolder" else "images"
        count = self.rows if self.fmt != "imagefolder" else self.labelled
        lines = [f"wrote {count} {what} to {self.out} ({self.labelled} labelled)"]
        if self.by_source:
            lines.append("by source: " + ", ".join(f"{s} {n}" for s, n in sorted(self.by_source.items())))
        if self.by_class:
            lines.append("by class:  " + ", ".join(f"{c} {n}" for c, n in sorted(self.by_class.items())))
        return "\n".join(lines)


def preview_export(
    project: Project, include: tuple[str, ...] = ALL_SOURCES, min_confidence: float = 0.0
) -> ExportReport:
    """What an export with these filters would write (counts per class and source), writing nothing."""
    return _tally(ExportReport("preview", Path()), manifest_rows(project, include, min_confidence))


def _tally(report: ExportReport, rows: list[ManifestRow]) -> ExportReport:
    report.rows = len(rows)
    for r in rows:
        if r.label:
            report.by_class[r.label] += 1
            report.by_source[r.source] += 1
    return report


def export(
    project: Project,
    fmt: str,
    out: Path,
    include: tuple[str, ...] = ALL_SOURCES,
    min_confidence: float = 0.0,
    labelled_only: bool = False,
    mode: str = "copy",
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> ExportReport:
    """Write the project's labels to ``out`` as ``fmt`` (csv, jsonl or imagefolder).

    Manifests list every readable image (labels outside the filters left empty) unless
    ``labelled_only``; an ImageFolder tree holds the labelled images only.
    """
    if fmt not in FORMATS:
        raise ManifestError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ManifestError(f"--min-confidence must be between 0 and 1 (got {min_confidence})")
    rows = manifest_rows(project, include, min_confidence)
    if labelled_only:
        rows = [r for r in rows if r.label]
    out = Path(out).expanduser()
    if fmt == "imagefolder":
        export_imagefolder(rows, project.root, out, mode=mode, progress=progress, cancel=cancel)
    else:
        write_manifest(rows, out, fmt)
    return _tally(ExportReport(fmt, out.resolve()), rows)
