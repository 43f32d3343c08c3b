"""The label table and what the views show of it, worked out in one go: numpy, no Qt, so that
the worker that read or computed the labels also lines them up with the map and counts them, and
the GUI thread only takes the result (at 1M items each comparison over the object ``source``
column, or count per class, costs tens of ms there).

``LabelState`` holds the table, its map-aligned arrays, a kind code per table row (``NONE`` /
``HUMAN`` / ``PSEUDO``: int8 codes compare faster than strings), the counts per class and per
confidence bin, and the clusters' names. ``label_state`` builds one; ``merge_pseudo`` puts a
propagation's pseudo-labels into a table without reading the store's 1M rows again.

Item identity: the label table is in ascending item id; the map speaks in rows
(``map.item_ids[row]``); ``align_labels`` gives every map row its class position, kind and confidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.store import HUMAN_SOURCES, LabelClass, LabelTable
from explorer.store.ids import lookup, lookup_unsorted, pair_keys

# Codes for ``Session.map_source``: what kind of label each map row has.
NONE, HUMAN, PSEUDO = 0, 1, 2

CONFIDENCE_BINS = 20  # the confidence histogram's bins over 0..1


def empty_labels() -> LabelTable:
    return LabelTable(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, object), np.empty(0))


@dataclass(frozen=True)
class AlignedLabels:
    """Map-aligned label state, (N,) per map row."""

    class_index: np.ndarray  # int64 position in the class list, -1 none
    source: np.ndarray  # int8 NONE / HUMAN / PSEUDO
    confidence: np.ndarray  # float64, NaN unlabelled


@dataclass(frozen=True)
class LabelState:
    """The session's labels and their counts, consistent with each other."""

    labels: LabelTable
    aligned: AlignedLabels  # per map row
    kinds: np.ndarray  # (len(labels),) int8 NONE / HUMAN / PSEUDO per table row
    human: int  # human labels in the table
    pseudo: int  # pseudo-labels in the table
    class_counts: dict[int, tuple[int, int]]  # class id -> (human labels, pseudo-labels)
    confidence_counts: np.ndarray  # (classes, CONFIDENCE_BINS) map pseudo-labels per class and bin
    clusters: np.ndarray  # the (N,) map clusters ``cluster_names`` was worked out from
    cluster_names: list  # explorer.projection.clusters.ClusterName per cluster, named from these labels


def label_kinds(source: np.ndarray) -> np.ndarray:
    """(N,) int8 NONE / HUMAN / PSEUDO for the (N,) object ``source`` column of a label table."""
    kinds = np.zeros(len(source), np.int8)
    if len(source):
        kinds[np.isin(source, HUMAN_SOURCES)] = HUMAN
        kinds[source == "pseudo"] = PSEUDO
    return kinds


def class_positions(classes: list[LabelClass], class_ids: np.ndarray) -> np.ndarray:
    """Store class ids -> positions in ``classes`` (-1 for none or unknown)."""
    return lookup_unsorted(np.array([c.id for c in classes], np.int64), class_ids)[0]


def align_labels(
    graph_map, labels: LabelTable, classes: list[LabelClass], kinds: np.ndarray | None = None
) -> AlignedLabels:
    """The label of every row of ``graph_map`` (None: no rows) from ``labels``; ``kinds``: the
    table's ``label_kinds`` when already worked out."""
    n = len(graph_map.item_ids) if graph_map is not None else 0
    aligned = AlignedLabels(np.full(n, -1, np.int64), np.zeros(n, np.int8), np.full(n, np.nan))
    if n == 0 or len(labels) == 0:
        return aligned
    kinds = label_kinds(labels.source) if kinds is None else kinds
    pos, found = lookup(labels.item_ids, np.asarray(graph_map.item_ids, np.int64))
    class_ids = np.full(n, -1, np.int64)
    class_ids[found] = labels.class_ids[pos[found]]
    aligned.source[found] = kinds[pos[found]]
    aligned.confidence[found] = labels.confidence[pos[found]]
    class_index = class_positions(classes, class_ids)
    aligned.class_index[:] = class_index
    aligned.source[class_index < 0] = NONE
    return aligned


def class_counts(class_ids: np.ndarray, kinds: np.ndarray, classes: list[LabelClass]) -> dict[int, tuple[int, int]]:
    """class id -> (human labels, pseudo-labels) among label-table rows with ``class_ids`` (M,)
    and ``kinds`` (M,) (a whole table or some of its rows)."""
    ids = np.array([c.id for c in classes], np.int64)
    if len(ids) == 0:
        return {}
    totals = np.zeros((len(ids), 2), np.int64)
    if len(class_ids):
        order = np.argsort(ids, kind="stable")
        pos, found = lookup(ids[order], class_ids)
        found &= kinds != NONE
        which = order[pos[found]] * 2 + (kinds[found] == PSEUDO)
        totals = np.bincount(which, minlength=2 * len(ids)).reshape(-1, 2)
    return {int(c): (int(h), int(p)) for c, (h, p) in zip(ids, totals)}


def confidence_counts(aligned: AlignedLabels, n_classes: int, bins: int = CONFIDENCE_BINS) -> np.ndarray:
    """(classes, bins) pseudo-labels on the map per class position and confidence bin."""
    source, cls, conf = aligned.source, aligned.class_index, aligned.confidence
    pseudo = (source == PSEUDO) & (cls >= 0) & np.isfinite(conf)
    if n_classes == 0 or not pseudo.any():
        return np.zeros((n_classes, bins), np.int64)
    which = np.clip((conf[pseudo] * bins).astype(np.int64), 0, bins - 1)
    return np.bincount(cls[pseudo] * bins + which, minlength=n_classes * bins).reshape(n_classes, bins)


def name_clusters(clusters: np.ndarray, aligned: AlignedLabels, classes: list[LabelClass]) -> list:
    """The clusters' names from the labels (``explorer.projection.clusters.cluster_names``); none
    when the map has no clusters."""
    if len(clusters) == 0 or len(aligned.class_index) != len(clusters):
        return []
    from explorer.projection.clusters import cluster_names

    return cluster_names(clusters, aligned.class_index, [c.name for c in classes])


def label_state(
    graph_map,
    labels: LabelTable,
    classes: list[LabelClass],
    clusters: np.ndarray | None = None,
    kinds: np.ndarray | None = None,
) -> LabelState:
    """Everything the views count of ``labels`` over ``graph_map`` (None: no map) and ``classes``;
    ``clusters``: the map's (N,) clusters, named here; ``kinds``: the table's ``label_kinds``
    when known."""
    kinds = label_kinds(labels.source) if kinds is None else kinds
    aligned = align_labels(graph_map, labels, classes, kinds)
    clusters = np.empty(0, np.int32) if clusters is None else clusters
    return LabelState(
        labels,
        aligned,
        kinds,
        int(np.count_nonzero(kinds == HUMAN)),
        int(np.count_nonzero(kinds == PSEUDO)),
        class_counts(labels.class_ids, kinds, classes),
        confidence_counts(aligned, len(classes)),
        clusters,
        name_clusters(clusters, aligned, classes),
    )


def empty_state() -> LabelState:
    return label_state(None, empty_labels(), [])


def merge_pseudo(
    table: LabelTable,
    item_ids: np.ndarray,
    class_ids: np.ndarray,
    confidence: np.ndarray,
    rejected: list[tuple[int, int]],
    kinds: np.ndarray | None = None,
) -> tuple[LabelTable, np.ndarray]:
    """(``table`` with its pseudo-labels replaced by a propagation's (already saved to the store),
    its kinds): the table the store would give back. Human labels win; ``rejected`` (item, class)
    pairs are left out. ``kinds``: ``table``'s, when known (string comparisons over 1M rows hold
    the GIL the GUI thread waits for)."""
    human = (label_kinds(table.source) if kinds is None else kinds) == HUMAN
    cls = np.where(human, table.class_ids, -1)
    src = np.where(human, table.source, "").astype(object)
    conf = np.where(human, table.confidence, np.nan)
    item_ids, class_ids = np.asarray(item_ids, np.int64), np.asarray(class_ids, np.int64)
    pos, found = lookup(table.item_ids, item_ids)
    found &= class_ids >= 0
    if rejected:
        pairs = np.array(rejected, np.int64).reshape(-1, 2)
        found &= ~np.isin(pair_keys(item_ids, class_ids), pair_keys(pairs[:, 0], pairs[:, 1]))
    rows = pos[found]
    free = ~human[rows]
    rows = rows[free]
    cls[rows] = class_ids[found][free]
    src[rows] = "pseudo"
    conf[rows] = np.asarray(confidence)[found][free]
    merged = np.where(human, HUMAN, NONE).astype(np.int8)
    merged[rows] = PSEUDO
    return LabelTable(table.item_ids, cls, src, conf), merged
