"""What colour each map point gets, by the "Colour by" choice, as arrays.

A ``Colouring`` gives every point a legend group (what the legend lists, counts and can hide)
and a brush code into a small palette of reused brushes (pyqtgraph draws one cached symbol per
brush; a fresh brush per point is ten times slower). Nothing here loops over points, and
nothing here touches Qt: the map works its colours out on a worker (``map_colours``) and the GUI
thread turns the palette's description (``spec``: (hex colour, alpha) per entry) into brushes.

Modes:
- ``label``: class colours; human labels full strength (the map also rings them), pseudo-labels
  fainter the less sure they are; unlabelled grey.
- ``confidence``: a ramp from red (unsure) to green (sure) over pseudo-labels; human labels white.
- ``folder``: the top-level folder each image sits in (where it came from).
- ``review``: what needs a person's eye: unsure pseudo-labels loud, the rest quiet.
- ``cluster``: the map's clusters (``explorer.projection.clusters``), largest first, named by their
  majority label; past ``MAX_FOLDERS`` the rest pool as "other clusters".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.gui.label_state import HUMAN, NONE, PSEUDO, AlignedLabels

MODES = ("label", "confidence", "folder", "review", "cluster")
MODE_TITLES = {
    "label": "Label",
    "confidence": "Confidence",
    "folder": "Folder",
    "review": "Needs review",
    "cluster": "Cluster",
}
CONFIDENCE_BINS = 4  # pseudo-label shades per class, faint (unsure) to strong (sure)
PSEUDO_ALPHA = (55, 100, 150, 205)
CONFIDENCE_RAMP = ("#d64541", "#e8833a", "#e8c33a", "#9bc53d", "#3fae5a")  # unsure -> sure
REVIEW_BELOW = 0.5  # pseudo-labels under this confidence need review
CHECK_BELOW = 0.8  # ... and under this are worth a look
MAX_FOLDERS = 16  # more folders than this are pooled into "other folders"
FOLDER_COLOURS = (
    "#4c8bf5",
    "#e8833a",
    "#3fae5a",
    "#d64541",
    "#9b6bd6",
    "#8c6d4f",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#f2c14e",
    "#5fb3a1",
    "#c44e9b",
    "#7f8fa6",
    "#a0c4ff",
    "#ff9f80",
    "#b5e48c",
)


@dataclass(frozen=True)
class LegendEntry:
    name: str
    colour: str  # hex
    key: str = ""  # the number key that labels with it, if any


@dataclass
class Colouring:
    group: np.ndarray  # (N,) int: legend entry of each point
    entries: list[LegendEntry]
    codes: np.ndarray  # (N,) int: index into the palette
    spec: tuple[tuple[str, int], ...]  # the palette: (hex colour, alpha) per code; then a transparent one


GREY = ("#737a85", 150)  # style.UNLABELLED (style is Qt; this module is not)


def display_rgb(hex_colour: str) -> tuple[int, int, int]:
    """``style.display_colour`` without Qt: '#rrggbb' as drawn on the dark canvas (very dark
    colours lifted to a light grey, unreadable ones grey)."""
    try:
        text = hex_colour.lstrip("#")
        rgb = tuple(int(text[k : k + 2], 16) for k in (0, 2, 4)) if len(text) == 6 else None
    except ValueError:
        rgb = None
    if rgb is None:
        return (0xCC, 0xCC, 0xCC)
    if (max(rgb) + min(rgb)) / 510 < 0.2:  # HSL lightness, as QColor.lightnessF
        return (0xF2, 0xF2, 0xF2)
    return rgb


def spec_rgba(spec: tuple[tuple[str, int], ...]) -> np.ndarray:
    """(P + 1, 4) uint8 RGBA of a palette ``spec``, the transparent entry last (as its brushes)."""
    rows = [(*display_rgb(colour), alpha) for colour, alpha in spec] + [(0, 0, 0, 0)]
    return np.array(rows, np.uint8).reshape(-1, 4)


def colour_points(
    mode: str,
    aligned: AlignedLabels,
    classes: list,
    clusters: np.ndarray | None = None,
    cluster_names: list | None = None,
    folders: tuple[np.ndarray, list[str]] | None = None,
) -> Colouring:
    """The colouring of the map rows whose labels are ``aligned`` in ``mode`` (see the module
    docstring), with the session's ``classes``.

    ``clusters`` / ``cluster_names``: the map's (N,) clusters and their names, for the ``cluster``
    mode; ``folders``: ((N,) folder index per map row, folder names), from ``folder_groups``, for
    the ``folder`` mode.
    """
    source, cls, conf = aligned.source, aligned.class_index, aligned.confidence
    n = len(source)
    conf = np.nan_to_num(conf, nan=0.0)
    if mode == "label":
        return _by_label(classes, source, cls, conf)
    if mode == "confidence":
        bins = np.clip((conf * len(CONFIDENCE_RAMP)).astype(np.int64), 0, len(CONFIDENCE_RAMP) - 1)
        group = np.where(source == PSEUDO, bins, 0)
        group = np.where(source == HUMAN, len(CONFIDENCE_RAMP), group)
        group = np.where(source == NONE, len(CONFIDENCE_RAMP) + 1, group)
        step = 1 / len(CONFIDENCE_RAMP)
        entries = [LegendEntry(f"pseudo {k * step:.1f}–{(k + 1) * step:.1f}", c) for k, c in enumerate(CONFIDENCE_RAMP)]
        entries += [LegendEntry("human label", "#ffffff"), LegendEntry("unlabelled", GREY[0])]
        spec = tuple((c, 220) for c in CONFIDENCE_RAMP) + (("#ffffff", 255), GREY)
        return Colouring(group, entries, group, spec)
    if mode == "folder":
        if folders is None:
            raise ValueError("the folder colouring needs the folder of every point")
        index, names = folders
        colours = [FOLDER_COLOURS[k % len(FOLDER_COLOURS)] for k in range(len(names))]
        spec = tuple((c, 200) for c in colours)
        return Colouring(index, [LegendEntry(name, c) for name, c in zip(names, colours)], index, spec)
    if mode == "review":
        group = np.full(n, 4, np.int64)  # unlabelled
        group[source == HUMAN] = 3
        group[(source == PSEUDO) & (conf >= CHECK_BELOW)] = 2
        group[(source == PSEUDO) & (conf < CHECK_BELOW)] = 1
        group[(source == PSEUDO) & (conf < REVIEW_BELOW)] = 0
        entries = [
            LegendEntry(f"needs review (< {REVIEW_BELOW:.1f})", "#ff5a4e"),
            LegendEntry(f"worth a look (< {CHECK_BELOW:.1f})", "#f2b33d"),
            LegendEntry("confident pseudo", "#3f8f5a"),
            LegendEntry("human label", "#8fb8ff"),
            LegendEntry("unlabelled", GREY[0]),
        ]
        spec = (("#ff5a4e", 255), ("#f2b33d", 230), ("#3f8f5a", 110), ("#8fb8ff", 160), (GREY[0], 90))
        return Colouring(group, entries, group, spec)
    if mode == "cluster":
        clusters = clusters if clusters is not None and len(clusters) == n else np.full(n, -1, np.int32)
        return _by_cluster(clusters, [c.text for c in cluster_names or []])
    raise ValueError(f"unknown colour mode {mode!r}; choose one of {', '.join(MODES)}")


def _by_cluster(clusters: np.ndarray, names: list[str]) -> Colouring:
    if len(names) > MAX_FOLDERS:
        names = names[: MAX_FOLDERS - 1] + [f"other clusters ({len(names) - MAX_FOLDERS + 1})"]
    group = np.where(clusters >= 0, np.minimum(clusters, len(names) - 1), len(names)).astype(np.int64)
    colours = [FOLDER_COLOURS[k % len(FOLDER_COLOURS)] for k in range(len(names))]
    entries = [LegendEntry(name, c) for name, c in zip(names, colours, strict=True)]
    entries.append(LegendEntry("in no cluster" if names else "no clusters: Build > Find clusters", GREY[0]))
    spec = tuple((c, 200) for c in colours) + (GREY,)
    return Colouring(group, entries, group, spec)


def _by_label(classes: list, source, cls, conf) -> Colouring:
    n_classes = len(classes)
    stride = 1 + CONFIDENCE_BINS
    bins = np.clip((conf * CONFIDENCE_BINS).astype(np.int64), 0, CONFIDENCE_BINS - 1)
    labelled = (source != NONE) & (cls >= 0)
    base = 1 + np.maximum(cls, 0) * stride
    codes = np.where(source == HUMAN, base, base + 1 + bins)
    codes = np.where(labelled, codes, 0)
    group = np.where(labelled, cls, n_classes)
    spec: list[tuple[str, int]] = [GREY]
    for c in classes:
        spec.append((c.colour, 255))
        spec.extend((c.colour, alpha) for alpha in PSEUDO_ALPHA)
    entries = [LegendEntry(c.name, c.colour, str(k + 1) if k < 9 else "") for k, c in enumerate(classes)]
    entries.append(LegendEntry("unlabelled", GREY[0]))
    return Colouring(group, entries, codes, tuple(spec))


def folder_groups(paths: list[str]) -> tuple[np.ndarray, list[str]]:
    """(N,) folder index and the folder names for collection-relative ``paths``: the top-level
    folder (``(top level)`` for files at the root); past ``MAX_FOLDERS`` the rest pool as
    ``other folders``."""
    tops = np.array([p.split("/", 1)[0] + "/" if "/" in p else "(top level)" for p in paths], object)
    if len(tops) == 0:
        return np.empty(0, np.int64), []
    names, index, counts = np.unique(tops, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    if len(names) > MAX_FOLDERS:
        keep = order[: MAX_FOLDERS - 1]
        rank = np.full(len(names), MAX_FOLDERS - 1)
        rank[keep] = np.arange(len(keep))
        return rank[index], [str(names[k]) for k in keep] + ["other folders"]
    rank = np.empty(len(names), np.int64)
    rank[order] = np.arange(len(names))
    return rank[index], [str(names[k]) for k in order]


def group_counts(colouring: Colouring, rows: np.ndarray | None = None) -> np.ndarray:
    """(len(entries),) how many points (of ``rows``, if given) each legend entry has."""
    group = colouring.group if rows is None else colouring.group[rows]
    return np.bincount(group, minlength=len(colouring.entries))[: len(colouring.entries)]


@dataclass(frozen=True)
class MapColours:
    """The map's colours as shown (``map_colours``): worked out on a worker, drawn on the GUI thread."""

    colouring: Colouring
    hidden: np.ndarray  # (N,) bool: in a hidden legend group, or outside the filter
    codes: np.ndarray  # (N,) palette codes as drawn: hidden points on the transparent last entry
    totals: np.ndarray  # (entries,) points of each legend entry (those the filter keeps)
    folders: tuple[np.ndarray, list[str]] | None  # the folder groups used (worked out once per map)


def map_colours(
    mode: str,
    aligned: AlignedLabels,
    classes: list,
    *,
    paths: dict[int, str] | None = None,
    item_ids: np.ndarray | None = None,
    hidden_names: frozenset[str] = frozenset(),
    kept: np.ndarray | None = None,
    **points,
) -> MapColours:
    """Everything ``MapView`` draws of its colours: ``colour_points`` in ``mode`` (``points``: its
    clusters, cluster_names and folders), with the legend entries named in ``hidden_names`` and the
    rows outside ``kept`` ((N,) bool, None: no filter) hidden. The folder mode works the folders out
    from ``paths`` (item id -> path) of the map's ``item_ids`` when not given (a Python pass over
    every path: 1M takes about a second)."""
    if mode == "folder" and points.get("folders") is None:
        points["folders"] = folder_groups([paths.get(int(i), "") for i in item_ids])
    colouring = colour_points(mode, aligned, classes, **points)
    folders = points.get("folders")
    n = len(colouring.group)
    in_hidden = np.array([e.name in hidden_names for e in colouring.entries], bool)
    hidden = in_hidden[colouring.group] if in_hidden.any() else np.zeros(n, bool)
    if kept is not None and len(kept) == n:
        hidden |= ~kept
        totals = group_counts(colouring, np.flatnonzero(kept))
    else:
        totals = group_counts(colouring)
    codes = np.where(hidden, len(colouring.spec), colouring.codes) if hidden.any() else colouring.codes
    return MapColours(colouring, hidden, codes, totals, folders)
