"""Check: near-duplicates, uniqueness and typicality off the current map's graph, and the labels
the rest of the labels disagree with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.jobs import CancelToken
from explorer.store import Project
from explorer.store.current import MapData, current_map, duplicate_graph
from explorer.workflow.labelling import human_evidence, map_solver
from explorer.workflow.runs import WorkflowError


def near_duplicates(project: Project, threshold: float | None = None) -> list[tuple[int, int, float]]:
    """Pairs of items on the current map whose cosine similarity is at least ``threshold``.

    Read off the map's graph in the space near-duplicates are judged in (no new search:
    :func:`~explorer.store.current.duplicate_graph`; its whitened vectors where it has them),
    ``threshold`` None for that space's default: ``(item_a, item_b, similarity)`` with item ids
    ``item_a < item_b``, most similar first. Raises WorkflowError when there is no map yet.
    """
    return near_duplicates_where(project, threshold)[0]


def near_duplicates_where(project: Project, threshold: float | None = None) -> tuple[list, float, bool]:
    """(:func:`near_duplicates`' pairs, the threshold used, whether in the whitened vectors)."""
    from explorer.neighbours.knn import near_duplicates as pairs_in

    item_ids, graph, threshold = _duplicate_graph(project, threshold)
    pairs, sims = pairs_in(graph, threshold)
    a, b = item_ids[pairs[:, 0]], item_ids[pairs[:, 1]]
    found = [
        (int(min(x, y)), int(max(x, y)), float(s))
        for x, y, s in zip(a.tolist(), b.tolist(), sims.tolist(), strict=True)
    ]
    return found, threshold, graph.index_kind == "whitened"


def _duplicate_graph(project: Project, threshold: float | None, graph_map: MapData | None = None):
    """(the map's item ids (N,), the KnnGraph near-duplicates are read from, the threshold to use);
    WorkflowError without a map or for a threshold outside [-1, 1]. ``graph_map``: the current
    map, when already read."""
    from explorer.neighbours.knn import KnnGraph

    if threshold is not None and not -1.0 <= threshold <= 1.0:
        raise WorkflowError(f"duplicate threshold must be a cosine similarity between -1 and 1, got {threshold}")
    found = duplicate_graph(project, graph_map)
    if found is None:
        raise WorkflowError("no map yet: run `explorer map` first")
    graph = KnnGraph(found.indices, found.similarities, "whitened" if found.whitened else "stored", None)
    return found.item_ids, graph, found.threshold if threshold is None else threshold


@dataclass
class Quality:
    """Per item on the current map (arrays aligned with ``item_ids`` (N,) int64):
    ``uniqueness`` (N,) in [0, 1], ``1 - cosine similarity to the nearest other image`` (0: an
    exact twin exists); ``typicality`` (N,) in [0, 1], the mean similarity to its graph neighbours
    over the collection's highest (1: the heart of a dense region; low: an outlier);
    ``duplicate_group`` (N,) int64, the same number for images joined by near-duplicate pairs
    (:func:`near_duplicates`), -1 for an image without any."""

    item_ids: np.ndarray
    uniqueness: np.ndarray
    typicality: np.ndarray
    duplicate_group: np.ndarray


def quality(project: Project, threshold: float | None = None) -> Quality:
    """Uniqueness, typicality and near-duplicate groups of every item, read off the current map's
    graphs (no new search): uniqueness and duplicates in the space near-duplicates are judged in
    (:func:`near_duplicates`; ``threshold`` None for its default), typicality in the map's kNN graph."""
    from explorer.labels.suggest import local_density
    from explorer.neighbours.knn import KnnGraph, duplicate_groups

    graph_map = current_map(project)  # read once: the duplicates' graph and typicality's
    item_ids, twins, threshold = _duplicate_graph(project, threshold, graph_map)
    n = len(item_ids)
    others = np.where(twins.indices[:, 1:] >= 0, twins.similarities[:, 1:], -1.0)
    nearest = others.max(axis=1) if others.shape[1] else np.full(n, -1.0)
    uniqueness = np.clip(1.0 - nearest, 0.0, 1.0)
    group = duplicate_groups(twins, threshold)
    density = local_density(KnnGraph(graph_map.knn_indices, graph_map.knn_similarities, "stored", None))
    return Quality(item_ids, uniqueness.astype(np.float32), density.astype(np.float32), group)


@dataclass
class LabelCheck:
    """Human and imported labels the rest of the labels disagree with, most suspect first
    (``explorer.labels.check``): per label the ``item_ids`` (M,) int64, collection-relative
    ``paths``, the class it has (``given``), the class the other labels give it (``graph_says``,
    "" where nothing reached it) and ``suspicion`` (M,) in [0, 1], the share of the other labels'
    evidence against it. ``unchecked``: labels in classes too small to check."""

    item_ids: np.ndarray
    paths: list[str]
    given: list[str]
    graph_says: list[str]
    suspicion: np.ndarray
    unchecked: int

    def rows(self, limit: int | None = None) -> list[dict]:
        """One dict a label (path, label, graph_says, suspicion), for CSV and printing."""
        end = len(self.paths) if limit is None else min(limit, len(self.paths))
        return [
            {
                "path": self.paths[i],
                "label": self.given[i],
                "graph_says": self.graph_says[i],
                "suspicion": round(float(self.suspicion[i]), 4),
            }
            for i in range(end)
        ]


def check_labels(project: Project, cancel: CancelToken | None = None) -> LabelCheck:
    """Rank every human label (clicked or imported) by how strongly the graph, propagated from
    the other labels, disagrees with it; nothing is written."""
    from explorer.labels.check import disagreement

    map_run, item_ids, solver = map_solver(project)
    classes = project.classes()
    class_ids = np.array([c.id for c in classes], np.int64)
    seeds, rejected = human_evidence(project, item_ids, class_ids)
    if not (seeds >= 0).any():
        raise WorkflowError("no labels to check: label some images or import a label file first")
    embedding_graph = project.load_run_array(map_run, "knn_indices", mmap=True)
    found = disagreement(solver, seeds, len(class_ids), rejected, neighbours=embedding_graph, cancel=cancel)
    paths = project.paths_by_id()
    names = [c.name for c in classes]
    chosen = item_ids[found.rows]
    return LabelCheck(
        chosen,
        [paths[int(i)] for i in chosen],
        [names[int(c)] for c in found.given],
        [names[int(c)] if c >= 0 else "" for c in found.graph_says],
        found.suspicion,
        found.unchecked,
    )
