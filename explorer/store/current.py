"""What is current in a project: the latest finished embed run's vectors, the latest map and the
vectors it was made from, the trained encoders.

Read straight from the store (run records and their array files), so that any layer (workflow,
exchange, the window's session) can ask without importing the steps that make them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.store.project import Project, Run


@dataclass
class Embeddings:
    run_id: int
    item_ids: np.ndarray  # (N,) int64
    vectors: np.ndarray  # (N, D) float32 or float16 (``embed --float16``), unit rows, memory-mapped read-only


def current_embeddings(project: Project) -> Embeddings | None:
    """The latest finished embed run's vectors, memory-mapped: nothing is read until used, and
    readers that need float32 convert what they take (``np.asarray(rows, np.float32)``)."""
    run = project.latest_run("embed")
    if run is None:
        return None
    vectors = project.load_run_array(run.id, "embeddings", mmap=True)
    return Embeddings(run.id, project.load_run_array(run.id, "item_ids"), vectors)


@dataclass
class MapData:
    run_id: int
    item_ids: np.ndarray  # (N,) int64
    xy: np.ndarray  # (N, 2) float32
    knn_indices: np.ndarray  # (N, k+1) int64 row positions; column 0 is the row itself; -1 = none
    knn_similarities: np.ndarray  # (N, k+1) float32 cosine


def current_map(project: Project) -> MapData | None:
    """The latest finished map, or None."""
    run = project.latest_run("map")
    if run is None:
        return None
    load = lambda name: project.load_run_array(run.id, name)  # noqa: E731
    return MapData(run.id, load("item_ids"), load("xy"), load("knn_indices"), load("knn_similarities"))


VECTORS = "vectors"  # a map's whitened embeddings (explorer.neighbours.whiten), when it has them
WHITENING_MEAN = "whitening_mean"
WHITENING_MATRIX = "whitening_matrix"
BRIDGE_INDICES = "bridge_indices"  # the propagation's bridge graph (explorer.labels.propagate.Diffusion)
BRIDGE_SIMILARITIES = "bridge_similarities"


def map_bridge(project: Project, map_run: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(indices (N, b+1), similarities (N, b+1)) of the bridge graph saved with map run
    ``map_run``, or None (raw pixels, imported vectors, a map made before bridges). Propagation
    uses it only beside a label space; near-duplicates read it alone (:func:`duplicate_graph`)."""
    ids = project.load_run_array(map_run, BRIDGE_INDICES)
    return None if ids is None else (ids, project.load_run_array(map_run, BRIDGE_SIMILARITIES))


DUPLICATE_SIMILARITY = 0.9
"""Cosine of the map's whitened vectors from which two images count as near-duplicates. A trained
encoder's raw vectors all lie in a narrow cone (5,000 handwriting-like digits: nearest neighbours
at cosine 0.987-0.997), so a raw threshold of 0.98 called 3,912 of 4,000 images duplicates;
whitened, nearest neighbours sit at 0.62-0.82 while a JPEG re-save or a 10 % brighter copy stays
above 0.98 and a 1 px crop or a 3/4 downscale above 0.9 (median 0.93-0.95): benchmarks/duplicates.py."""
EMBEDDING_DUPLICATE_SIMILARITY = 0.98
"""The same for maps without whitened vectors (raw pixels, imported vectors): their own cosine."""


@dataclass
class DuplicateGraph:
    """The neighbour graph near-duplicates are read from: ``indices`` (N, k+1) row positions into
    ``item_ids`` (N,) (column 0 the row itself, -1 none), ``similarities`` (N, k+1) cosine, and
    ``whitened`` (True: the map's whitened vectors, False: its embeddings as they are)."""

    item_ids: np.ndarray
    indices: np.ndarray
    similarities: np.ndarray
    whitened: bool

    @property
    def threshold(self) -> float:
        """The default near-duplicate cosine in this graph's space."""
        return DUPLICATE_SIMILARITY if self.whitened else EMBEDDING_DUPLICATE_SIMILARITY


def duplicate_graph(project: Project, graph_map: MapData | None = None) -> DuplicateGraph | None:
    """The current map's graph in the space near-duplicates are judged in, or None without a map:
    the whitened vectors' graph (the propagation's bridge) where the map has one, else the map's
    kNN graph of its embeddings (raw pixels, imported vectors, maps too small to whiten).
    ``graph_map``: the current map when the caller has read it already."""
    graph_map = current_map(project) if graph_map is None else graph_map
    if graph_map is None:
        return None
    bridge = map_bridge(project, graph_map.run_id)
    if bridge is not None and len(bridge[0]) == len(graph_map.item_ids):
        return DuplicateGraph(graph_map.item_ids, *bridge, True)
    return DuplicateGraph(graph_map.item_ids, graph_map.knn_indices, graph_map.knn_similarities, False)


def map_embeddings(project: Project, map_run: int, items: int, mmap: bool = False) -> np.ndarray | None:
    """(items, D) the vectors labels propagate through on map run ``map_run``: its whitened
    embeddings where it has them, else its embed run's; None when they are gone or no longer
    match the map's ``items`` rows."""
    whitened = project.load_run_array(map_run, VECTORS, mmap=mmap)
    if whitened is not None and len(whitened) == items:
        return whitened
    embed_run = project.run(map_run).params.get("embed_run")
    vectors = project.load_run_array(embed_run, "embeddings", mmap=mmap) if embed_run is not None else None
    return None if vectors is None or len(vectors) != items else vectors


def trained_runs(project: Project) -> list[Run]:
    """Training runs that left a checkpoint, oldest first: the last is the encoder used by default."""
    return [r for r in project.runs("train") if (project.run_dir(r.id) / "checkpoint.pt").exists()]
