"""What colour each map point gets, by the "Colour by" choice, as arrays.

A ``Colouring`` gives every point a legend group (what the legend lists, counts and can hide)
and a brush code into a small palette of reused brushes (pyqtgraph draws one cached symbol per
brush; a fresh brush per point is ten times slower). Nothing here loops over points.

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
from PySide6.QtGui import QBrush, QColor

from explorer.gui import style
from explorer.gui.session import HUMAN, NONE, PSEUDO, Session

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
    codes: np.ndarray  # (N,) int: index into ``palette``
    palette: np.ndarray  # object array of QBrush; the last one is transparent (hidden points)

    def shown_codes(self, hidden: np.ndarray | None = None) -> np.ndarray:
        """(N,) palette codes, with points of hidden groups on the transparent brush."""
        if hidden is not None and hidden.any():
            return np.where(hidden[self.group], len(self.palette) - 1, self.codes)
        return self.codes

    def brushes(self, hidden: np.ndarray | None = None) -> np.ndarray:
        """(N,) brushes, with points of hidden groups drawn transparent."""
        return self.palette[self.shown_codes(hidden)]


def _brush(hex_colour: str, alpha: int = 255) -> QBrush:
    colour = QColor(style.display_colour(hex_colour)) if hex_colour.startswith("#") else QColor(hex_colour)
    colour.setAlpha(alpha)
    return QBrush(colour)


class Palettes:
    """Brush palettes by their description, built once and reused while the colours stay the same."""

    def __init__(self) -> None:
        self._cache: dict[tuple, np.ndarray] = {}

    def get(self, spec: tuple[tuple[str, int], ...]) -> np.ndarray:
        palette = self._cache.get(spec)
        if palette is None:
            brushes = [_brush(colour, alpha) for colour, alpha in spec] + [QBrush(QColor(0, 0, 0, 0))]
            palette = np.empty(len(brushes), object)
            palette[:] = brushes
            if len(self._cache) > 32:
                self._cache.clear()
            self._cache[spec] = palette
        return palette


GREY = (style.UNLABELLED, 150)


def colour_points(
    session: Session, mode: str, palettes: Palettes, folders: tuple[np.ndarray, list[str]] | None = None
) -> Colouring:
    """The colouring of the session's map rows in ``mode`` (see the module docstring).

    ``folders``: ((N,) folder index per map row, folder names), from ``folder_groups``; needed
    for the ``folder`` mode.
    """
    n = len(session.map.item_ids) if session.map is not None else 0
    source, cls, conf = session.map_source, session.map_class_index, session.map_confidence
    if len(source) != n:  # labels not aligned yet
        source, cls, conf = np.zeros(n, np.int8), np.full(n, -1), np.full(n, np.nan)
    conf = np.nan_to_num(conf, nan=0.0)
    if mode == "label":
        return _by_label(session, source, cls, conf, palettes)
    if mode == "confidence":
        bins = np.clip((conf * len(CONFIDENCE_RAMP)).astype(np.int64), 0, len(CONFIDENCE_RAMP) - 1)
        group = np.where(source == PSEUDO, bins, 0)
        group = np.where(source == HUMAN, len(CONFIDENCE_RAMP), group)
        group = np.where(source == NONE, len(CONFIDENCE_RAMP) + 1, group)
        step = 1 / len(CONFIDENCE_RAMP)
        entries = [LegendEntry(f"pseudo {k * step:.1f}–{(k + 1) * step:.1f}", c) for k, c in enumerate(CONFIDENCE_RAMP)]
        entries += [LegendEntry("human label", "#ffffff"), LegendEntry("unlabelled", GREY[0])]
        spec = tuple((c, 220) for c in CONFIDENCE_RAMP) + (("#ffffff", 255), GREY)
        return Colouring(group, entries, group, palettes.get(spec))
    if mode == "folder":
        if folders is None:
            raise ValueError("the folder colouring needs the folder of every point")
        index, names = folders
        colours = [FOLDER_COLOURS[k % len(FOLDER_COLOURS)] for k in range(len(names))]
        spec = tuple((c, 200) for c in colours)
        return Colouring(index, [LegendEntry(name, c) for name, c in zip(names, colours)], index, palettes.get(spec))
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
        return Colouring(group, entries, group, palettes.get(spec))
    if mode == "cluster":
        return _by_cluster(session, n, palettes)
    raise ValueError(f"unknown colour mode {mode!r}; choose one of {', '.join(MODES)}")


def _by_cluster(session: Session, n: int, palettes: Palettes) -> Colouring:
    clusters = session.map_clusters if len(session.map_clusters) == n else np.full(n, -1, np.int32)
    names = [c.text for c in session.cluster_names()]
    if len(names) > MAX_FOLDERS:
        names = names[: MAX_FOLDERS - 1] + [f"other clusters ({len(names) - MAX_FOLDERS + 1})"]
    group = np.where(clusters >= 0, np.minimum(clusters, len(names) - 1), len(names)).astype(np.int64)
    colours = [FOLDER_COLOURS[k % len(FOLDER_COLOURS)] for k in range(len(names))]
    entries = [LegendEntry(name, c) for name, c in zip(names, colours, strict=True)]
    entries.append(LegendEntry("in no cluster" if names else "no clusters: Build > Find clusters", GREY[0]))
    spec = tuple((c, 200) for c in colours) + (GREY,)
    return Colouring(group, entries, group, palettes.get(spec))


def _by_label(session: Session, source, cls, conf, palettes: Palettes) -> Colouring:
    classes = session.classes
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
    return Colouring(group, entries, codes, palettes.get(tuple(spec)))


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
