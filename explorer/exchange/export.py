"""Export a project's labels in the formats people train from, with what went out counted.

``preview_export`` and ``export`` choose the rows the same way (``plan_export``), so the counts a
dialog shows before writing are the counts the export writes (less files gone since the scan,
which the export reports).
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from explorer.exchange.atomic import ExportError
from explorer.exchange.coco import write_coco
from explorer.exchange.embedding_table import write_embedding_table
from explorer.exchange.huggingface import export_huggingface
from explorer.exchange.imagefolder import export_imagefolder
from explorer.exchange.manifest import ALL_SOURCES, ManifestRow, manifest_rows, write_manifest
from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.store import LabelTable, Project

SPLIT_NAMES = ("train", "val")


@dataclass(frozen=True)
class ExportFormat:
    """What a format writes: a file (with ``suffix``) or a folder; labelled images only or every
    image; whether it takes a train/val split."""

    name: str
    title: str
    folder: bool
    suffix: str
    labelled_only: bool
    splits: bool


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("csv", "CSV label manifest", False, ".csv", False, False),
        ExportFormat("jsonl", "JSON Lines label manifest", False, ".jsonl", False, False),
        ExportFormat("imagefolder", "ImageFolder tree (a folder per class)", True, "", True, True),
        ExportFormat("huggingface", "Hugging Face imagefolder (metadata.csv)", True, "", True, True),
        ExportFormat("coco", "COCO-style JSON (classification)", False, ".json", False, False),
        ExportFormat("parquet", "Parquet: embeddings, map and labels", False, ".parquet", False, False),
    )
}


def format_for(out: Path) -> str:
    """The format a file name asks for by its suffix (csv when it says nothing)."""
    suffix = Path(out).suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "coco", ".parquet": "parquet"}.get(suffix, "csv")


@dataclass
class ExportReport:
    """What an export wrote (or, from ``preview_export``, would write).

    ``counts`` is (class name, source) -> images; ``splits`` is split -> class name -> images.
    """

    fmt: str
    out: Path
    rows: int = 0  # rows of a manifest / table, images of a tree
    counts: Counter = field(default_factory=Counter)
    splits: dict[str, Counter] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)  # class -> folder name (ImageFolder)
    missing: list[str] = field(default_factory=list)  # files gone since the scan, left out
    notes: list[str] = field(default_factory=list)
    leaks: int = 0  # near-duplicate pairs split across train and val
    preview: bool = False  # nothing was written

    @property
    def by_class(self) -> Counter:
        return self._sum_by(0)

    @property
    def by_source(self) -> Counter:
        return self._sum_by(1)

    def _sum_by(self, part: int) -> Counter:
        out: Counter = Counter()
        for key, n in self.counts.items():
            out[key[part]] += n
        return out

    @property
    def labelled(self) -> int:
        return sum(self.counts.values())

    def table(self) -> list[tuple[str, dict[str, int], int]]:
        """(class, {source: images}, total) per class, sorted by class name: the dialog's table."""
        rows = []
        for label in sorted(self.by_class):
            per_source = {s: self.counts[(label, s)] for s in ALL_SOURCES if self.counts[(label, s)]}
            rows.append((label, per_source, sum(per_source.values())))
        return rows

    def summary(self) -> str:
        verb = "would write" if self.preview else "wrote"
        what = f"{self.rows} images" if FORMATS[self.fmt].folder else f"{self.rows} rows ({self.labelled} labelled)"
        lines = [f"{verb} {what}" + ("" if self.preview else f" to {self.out}")]
        sources = [s for s in ALL_SOURCES if self.by_source[s]]
        if sources:
            shown = {c: c if c.isprintable() else repr(c)[1:-1] for c in self.by_class}  # no raw control characters
            width = max(5, *(len(c) for c in shown.values()))
            lines.append(f"{'class':<{width}}  " + "  ".join(f"{s:>8}" for s in sources) + f"  {'total':>8}")
            for label, per_source, total in self.table():
                cells = "  ".join(f"{per_source.get(s, 0):>8}" for s in sources)
                lines.append(f"{shown[label]:<{width}}  {cells}  {total:>8}")
            totals = "  ".join(f"{self.by_source[s]:>8}" for s in sources)
            lines.append(f"{'total':<{width}}  {totals}  {self.labelled:>8}")
        for split, per_class in self.splits.items():
            lines.append(f"{split}: {sum(per_class.values())} images")
        if self.missing:
            lines.append(
                f"{len(self.missing)} file(s) gone since the last scan were left out, e.g. {', '.join(self.missing[:5])}"
            )
        lines += self.notes
        return "\n".join(lines)


def train_count(n: int, train_fraction: float) -> int:
    """How many of a class's ``n`` images go to train: round(fraction x n), at least one in each
    split when ``n`` >= 2; a single image goes to train."""
    return n if n < 2 else min(max(round(train_fraction * n), 1), n - 1)


def stratified_split(
    rows: list[ManifestRow], train_fraction: float, seed: int = 0, together: dict[str, int] | None = None
) -> dict[str, str]:
    """path -> 'train' or 'val' for the labelled rows, class by class (sizes from ``train_count``).

    Each class is shuffled with its own generator (``seed`` and the class name), so labelling more
    of one class does not reshuffle the others. ``together`` (path -> group) names images that
    must share a split (near-duplicates): a group the shuffle cut in two goes whole to the side
    holding most of it (train on a tie), so class sizes may move by a group's size.
    """
    _check_fraction(train_fraction)
    by_class: dict[str, list[str]] = {}
    for row in rows:
        if row.label:
            by_class.setdefault(row.label, []).append(row.path)
    out = {}
    for label, paths in by_class.items():
        paths = sorted(paths)
        order = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))]).permutation(len(paths))
        n_train = train_count(len(paths), train_fraction)
        for rank, k in enumerate(order):
            out[paths[k]] = "train" if rank < n_train else "val"
    if together:
        members: dict[int, list[str]] = {}
        for path in out:
            if path in together:
                members.setdefault(together[path], []).append(path)
        for paths in members.values():
            in_train = sum(out[p] == "train" for p in paths)
            side = "train" if 2 * in_train >= len(paths) else "val"
            out.update(dict.fromkeys(paths, side))
    return out


def _check_fraction(train_fraction: float) -> None:
    if not 0.0 < train_fraction < 1.0:
        raise ExportError(
            f"--split must be between 0 and 1, the share of each class for training (got {train_fraction})"
        )


def _check_settings(fmt: str, min_confidence: float, split: float | None) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ExportError(f"--min-confidence must be between 0 and 1 (got {min_confidence})")
    if split is not None:
        if not FORMATS[fmt].splits:
            splitting = ", ".join(f.name for f in FORMATS.values() if f.splits)
            raise ExportError(f"a train/val split applies to {splitting} exports, not {fmt}")
        _check_fraction(split)


def plan_export(
    project: Project,
    fmt: str = "csv",
    include: tuple[str, ...] = ALL_SOURCES,
    min_confidence: float = 0.0,
    labelled_only: bool = False,
    split: float | None = None,
    seed: int = 0,
    items: np.ndarray | None = None,
    twins_together: bool = True,
) -> tuple[list[ManifestRow], dict[str, str] | None, dict[str, int]]:
    """(the rows that go out, path -> split or None, path -> near-duplicate group among the
    labelled rows when splitting) for ``export``; ``items``, ``twins_together``: see ``export``."""
    _check_settings(fmt, min_confidence, split)
    rows = manifest_rows(project, include, min_confidence, item_ids=items)
    if labelled_only or FORMATS[fmt].labelled_only:
        rows = [r for r in rows if r.label]
    if split is None:
        return rows, None, {}
    labelled = {r.path for r in rows if r.label}
    twins = _shared({p: g for p, g in _by_path(project, twin_groups(project)).items() if p in labelled})
    return rows, stratified_split(rows, split, seed, twins if twins_together else None), twins


def _shared(groups: dict) -> dict:
    """``groups`` less the groups with a single member left."""
    sizes = Counter(groups.values())
    return {k: g for k, g in groups.items() if sizes[g] > 1}


def _tally(report: ExportReport, rows: list[ManifestRow], splits: dict[str, str] | None, left_out=()) -> ExportReport:
    gone = set(left_out)
    kept = [r for r in rows if r.path not in gone]
    report.rows = sum(1 for r in kept if r.label) if FORMATS[report.fmt].folder else len(kept)
    report.missing = sorted(gone)
    for r in kept:
        if r.label:
            report.counts[(r.label, r.source)] += 1
            if splits:
                report.splits.setdefault(splits[r.path], Counter())[r.label] += 1
    if splits:
        _note_single_images(report)
    return report


def twin_groups(project: Project, item_ids: np.ndarray | None = None) -> dict[int, int]:
    """item id -> group for the near-duplicates on the current map, read off its graph as
    `explorer duplicates` reads them (``explorer.store.current.duplicate_graph``, its default
    threshold; no new search); only groups with two or more of ``item_ids`` (every item when
    None). Empty without a map."""
    from explorer.neighbours.knn import KnnGraph, duplicate_groups
    from explorer.store.current import duplicate_graph

    found = duplicate_graph(project)
    if found is None:
        return {}
    group = duplicate_groups(KnnGraph(found.indices, found.similarities, "stored", None), found.threshold)
    keep = group >= 0
    if item_ids is not None:
        keep &= np.isin(found.item_ids, np.asarray(item_ids, np.int64))
    return _shared(dict(zip(found.item_ids[keep].tolist(), group[keep].tolist(), strict=True)))


def _by_path(project: Project, groups: dict[int, int]) -> dict[str, int]:
    paths = project.paths_of(list(groups))
    return dict(zip(paths, groups.values(), strict=True))


def _note_twins(report: ExportReport, groups: dict, splits: dict[str, str] | None, keep_together: bool) -> None:
    """Say what the split does with near-duplicates: a validation image whose twin is in train
    measures memory, not generalisation."""
    if not groups:
        return
    n_groups = len(set(groups.values()))
    if keep_together:
        report.notes.append(
            f"{len(groups)} near-duplicate image(s) in {n_groups} group(s) (as `explorer duplicates` finds them) "
            "each kept on one side of the train/val split"
        )
        return
    if splits is None:  # a preview: the split is not drawn yet
        report.notes.append(
            f"{len(groups)} near-duplicate image(s) in {n_groups} group(s) may fall on both sides of the "
            "train/val split: val scores would be optimistic (keep them together to avoid it)"
        )
        return
    sides: dict[int, set] = {}
    for path, group in groups.items():
        sides.setdefault(group, set()).add(splits.get(path))
    across = sorted(p for p, g in groups.items() if len(sides[g]) > 1)
    report.leaks = sum(len(s) > 1 for s in sides.values())
    if across:
        report.notes.append(
            f"{report.leaks} near-duplicate group(s) fall on both sides of the "
            f"train/val split, e.g. {across[0]}: val scores will be optimistic (`explorer duplicates` lists them)"
        )


def _note_single_images(report: ExportReport) -> None:
    report.splits = {s: report.splits[s] for s in SPLIT_NAMES if s in report.splits}
    only_train = sorted(c for c, n in report.by_class.items() if n < 2)
    if only_train:
        report.notes.append(
            f"class(es) with a single image, in train only: {', '.join(only_train[:10])}"
            " (their class index differs between the train and val folders)"
        )


def preview_export(
    project: Project,
    include: tuple[str, ...] = ALL_SOURCES,
    min_confidence: float = 0.0,
    fmt: str = "csv",
    labelled_only: bool = False,
    split: float | None = None,
    seed: int = 0,
    items: np.ndarray | None = None,
    twins_together: bool = True,
) -> ExportReport:
    """What ``export`` with these settings would write, writing nothing: counts per class and
    source (``report.counts``, ``report.table()``), per split (``report.splits``) and ``rows``.

    Chooses labels exactly as ``manifest_rows`` does, with array operations (0.4 s at 100k images,
    nearly all of it reading the label table), so a dialog can call it when its filters change.
    ``seed`` does not change the counts; ``items``: see ``export``.
    """
    _check_settings(fmt, min_confidence, split)
    table = project.label_table()
    if items is not None:
        chosen = np.isin(table.item_ids, np.asarray(items, np.int64))
        table = LabelTable(
            table.item_ids[chosen], table.class_ids[chosen], table.source[chosen], table.confidence[chosen]
        )
    source = table.source.astype(str)
    keep = (
        (table.class_ids >= 0)
        & np.isin(source, include)
        & ((source != "pseudo") | (table.confidence >= min_confidence))
    )
    report = ExportReport(fmt, Path(), preview=True)
    names = {c.id: c.name for c in project.classes()}
    sources, source_code = np.unique(source[keep], return_inverse=True)
    keys, counts = np.unique(table.class_ids[keep] * max(len(sources), 1) + source_code, return_counts=True)
    for key, n in zip(keys.tolist(), counts.tolist()):
        report.counts[(names[key // len(sources)], str(sources[key % len(sources)]))] = n
    labelled = int(keep.sum())
    report.rows = labelled if labelled_only or FORMATS[fmt].labelled_only else len(table)
    if split is not None:
        for label, n in report.by_class.items():
            report.splits.setdefault("train", Counter())[label] = train_count(n, split)
            report.splits.setdefault("val", Counter())[label] = n - train_count(n, split)
        report.splits = {s: +per_class for s, per_class in report.splits.items() if +per_class}
        _note_single_images(report)
        _note_twins(report, twin_groups(project, table.item_ids[keep]), None, twins_together)
    return report


def export(
    project: Project,
    fmt: str,
    out: Path,
    include: tuple[str, ...] = ALL_SOURCES,
    min_confidence: float = 0.0,
    labelled_only: bool = False,
    mode: str = "copy",
    split: float | None = None,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    items: np.ndarray | None = None,
    twins_together: bool = True,
) -> ExportReport:
    """Write the project's labels to ``out`` as ``fmt`` (see ``FORMATS``), atomically.

    ``include`` names the label sources that go out and ``min_confidence`` drops pseudo-labels
    below it. Manifests, COCO and Parquet list every readable image (labels outside the filters
    left empty) unless ``labelled_only``; trees hold the labelled images only, copied, hard-linked
    or symlinked (``mode``), split into train/val per class when ``split`` (train share) is given.
    ``items`` ((n,) item ids: what a filter kept, or a lasso's selection) restricts the export
    to those images; None exports every one. ``twins_together``: near-duplicates (as
    `explorer duplicates` finds them) share a split, so val does not score memory.
    """
    rows, splits, twins = plan_export(
        project, fmt, include, min_confidence, labelled_only, split, seed, items, twins_together
    )
    out = Path(out).expanduser()
    report = ExportReport(fmt, out.resolve())
    if FORMATS[fmt].folder and report.out.is_relative_to(project.root):
        inside = report.out.relative_to(project.root).parts
        if not any(part.startswith(".") for part in inside):  # hidden folders are not scanned
            raise ExportError(
                f"{out} is inside the collection {project.root}: the next scan would take the exported copies "
                "for new images; choose a folder outside it"
            )
    if splits:
        _note_twins(report, twins, splits, twins_together)
    missing: list[str] = []
    progress(Progress("export", 0, None, f"writing {FORMATS[fmt].title}"))
    if fmt in ("csv", "jsonl"):
        write_manifest(rows, out, fmt, cancel)
    elif fmt == "imagefolder":
        report.folders, missing = export_imagefolder(rows, project.root, out, mode, splits, progress, cancel)
        gif = sum(1 for r in rows if r.label and Path(r.path).suffix.lower() == ".gif")
        if gif:
            report.notes.append(f"{gif} GIF image(s): torchvision's ImageFolder skips .gif files unless told otherwise")
    elif fmt == "huggingface":
        missing = export_huggingface(rows, project.root, out, mode, splits, progress, cancel)
    elif fmt == "coco":
        write_coco(project, rows, out, cancel)
    else:
        write_embedding_table(project, rows, out, cancel)
    return _tally(report, rows, splits, missing)
