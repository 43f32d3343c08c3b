"""Map: the kNN graph of the current embeddings, its 2-D layout and clusters, and a quick preview."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.store import Project
from explorer.store.current import (
    BRIDGE_INDICES,
    BRIDGE_SIMILARITIES,
    VECTORS,
    WHITENING_MATRIX,
    WHITENING_MEAN,
    Embeddings,
    MapData,
    current_embeddings,
    current_map,
    map_bridge,
)
from explorer.store.ids import rows_in
from explorer.workflow.runs import WorkflowError, record_stop


def make_map(
    project: Project,
    k: int = 15,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    *,
    fresh: bool = False,
    sample_above: int | None = None,
) -> int:
    """kNN graph (FAISS) of the current embeddings and a 2-D map fed with that graph.

    Unless ``fresh``, items already on the latest map keep their positions when the embeddings
    come from the same encoder (the collection grew, or nothing changed): only new items are
    placed, next to their neighbours. Otherwise UMAP lays everything out anew; above
    ``sample_above`` items (default ``explorer.projection.layout.SAMPLE_ABOVE``) it is fitted on a
    sample and the rest placed. The graph of the latest map is reused when the embeddings and k
    are the same. Records the index, its measured recall and the map's trustworthiness (on a
    sample) in the run's metrics.
    """
    import time

    if k < 2:
        raise WorkflowError(f"--k must be at least 2 (got {k})")
    embeddings = current_embeddings(project)
    if embeddings is None:
        raise WorkflowError("no embeddings yet: run `explorer embed` first")
    from explorer.neighbours.knn import KnnGraph, knn_graph
    from explorer.projection.layout import SAMPLE_ABOVE, map_layout, trustworthiness_on_sample

    started = time.perf_counter()
    previous = None if fresh else _same_space_map(project, embeddings)
    run = project.start_run("map", {"embed_run": embeddings.run_id, "k": k, "fresh": fresh})
    try:
        metrics: dict = {}
        if previous is not None and previous.knn_indices.shape[1] == k + 1 and _same_items(previous, embeddings):
            old = project.run(previous.run_id).metrics
            graph = KnnGraph(
                previous.knn_indices, previous.knn_similarities, old.get("index", "stored"), old.get("recall")
            )
            metrics.update({key: old[key] for key in ("index", "recall", "index_bytes", "nprobe") if key in old})
            metrics["graph"] = f"reused from map run {previous.run_id}"
        else:
            graph = knn_graph(embeddings.vectors, k=k, progress=progress, cancel=cancel)
            metrics.update({"index": graph.index_kind, "recall": graph.recall, **graph.details})
        known_xy = known = None
        if previous is not None:
            rows, found = rows_in(embeddings.item_ids, previous.item_ids)
            known_xy = np.zeros((len(embeddings.item_ids), 2), np.float32)
            known_xy[rows] = previous.xy[found]
            known = np.zeros(len(embeddings.item_ids), bool)
            known[rows] = True
        layout = map_layout(
            embeddings.vectors,
            graph,
            n_neighbors=min(k, graph.k),
            progress=progress,
            cancel=cancel,
            known_xy=known_xy,
            known=known,
            scale=project.run(previous.run_id).metrics.get("scale") if previous is not None else None,
            sample_above=SAMPLE_ABOVE if sample_above is None else sample_above,
        )
        progress(Progress("quality", 0, 1, "measuring trustworthiness on a sample"))
        trust = trustworthiness_on_sample(embeddings.vectors, layout.xy)
        whitened = _whitened(project, previous, embeddings, metrics, progress, cancel)
        space, label, bridge = _label_space(project, previous, embeddings, graph, metrics, progress, cancel, whitened)
        found = _find_clusters(graph if label is None else label, label is not None, None, progress, cancel)
        metrics["clusters"] = int(found.max()) + 1 if len(found) else 0
        project.save_run_arrays(
            run,
            item_ids=embeddings.item_ids,
            xy=layout.xy.astype(np.float32),
            knn_indices=graph.indices,
            knn_similarities=graph.similarities,
            clusters=found,
            **({} if label is None else {"label_indices": label.indices, "label_similarities": label.similarities}),
            **({} if bridge is None else {BRIDGE_INDICES: bridge.indices, BRIDGE_SIMILARITIES: bridge.similarities}),
            **({} if space is None else {"label_space": space}),
            **({} if whitened is None else _whitening_arrays(*whitened)),
        )
    except BaseException as exc:
        record_stop(project, run, exc)
        raise
    metrics.update(
        {
            "items": int(len(layout.xy)),
            "layout": layout.method,
            "placed": layout.placed,
            "scale": layout.scale,
            "trustworthiness": None if np.isnan(trust) else round(trust, 4),
            "seconds": round(time.perf_counter() - started, 2),
        }
    )
    project.finish_run(run, "done", metrics)
    return run


def map_whitening(project: Project, map_run: int):
    """The :class:`~explorer.neighbours.whiten.Whitening` map run ``map_run`` applied to its
    embeddings, or None (raw pixels, imported vectors, maps made before whitening)."""
    from explorer.neighbours.whiten import Whitening

    mean = project.load_run_array(map_run, WHITENING_MEAN)
    return None if mean is None else Whitening(mean, project.load_run_array(map_run, WHITENING_MATRIX))


def _whitening_arrays(vectors: np.ndarray, whitening) -> dict:
    return {VECTORS: vectors, WHITENING_MEAN: whitening.mean, WHITENING_MATRIX: whitening.matrix}


def _whitened(project: Project, previous: MapData | None, embeddings: Embeddings, metrics: dict, progress, cancel):
    """(whitened vectors (N, d) float32, Whitening) that propagation and suggestions use
    (``explorer.neighbours.whiten``), or None for raw pixels, imported vectors and collections too
    small; the previous map's when the kNN graph was reused from it."""
    from explorer.neighbours.whiten import fit_whitening, whitens

    if not whitens(str(project.run(embeddings.run_id).params.get("encoder", ""))):
        return None
    if previous is not None and str(metrics.get("graph", "")).startswith("reused"):
        whitening = map_whitening(project, previous.run_id)
        if whitening is None:  # a map made before whitening: its label space is reused unwhitened
            return None
        metrics["whitened"] = int(whitening.matrix.shape[1])
        return project.load_run_array(previous.run_id, VECTORS), whitening
    progress(Progress("whiten", 0, 1, "whitening the embeddings for propagation"))
    whitening = fit_whitening(embeddings.vectors)
    if cancel is not None:
        cancel.raise_if_cancelled()
    if whitening is None:
        return None
    metrics["whitened"] = int(whitening.matrix.shape[1])
    return whitening.apply(embeddings.vectors), whitening


def _label_space(
    project: Project,
    previous: MapData | None,
    embeddings: Embeddings,
    graph,
    metrics: dict,
    progress,
    cancel,
    whitened: tuple | None = None,
):
    """(coordinates or None, propagation graph or None, its bridge or None) for a new map
    (``explorer.labels.space``): the previous map's when the kNN graph was reused from it, else
    fitted now, from the whitened vectors and their own kNN graph when there are any; the bridge
    (``explorer.labels.propagate.Diffusion``), for whitened vectors only, is the first
    ``BRIDGE_NEIGHBOURS`` of their graph (kept without a label space too). None for what a
    collection too small does not get."""
    from explorer.labels.space import BRIDGE_NEIGHBOURS, label_space
    from explorer.neighbours.knn import KnnGraph, knn_graph

    if previous is not None and str(metrics.get("graph", "")).startswith("reused"):
        ids = project.load_run_array(previous.run_id, "label_indices")
        bridge = map_bridge(project, previous.run_id)
        if ids is not None and (bridge is not None or whitened is None):  # (a map from before bridges: anew)
            metrics["label_graph"] = f"reused from map run {previous.run_id}"
            sims = project.load_run_array(previous.run_id, "label_similarities")
            return (
                project.load_run_array(previous.run_id, "label_space"),
                KnnGraph(ids, sims, "label", None),
                None if bridge is None else KnnGraph(*bridge, "bridge", None),
            )
    vectors = embeddings.vectors
    if whitened is not None:
        vectors = whitened[0]
        # a second full graph: 1.35x the raw graph's time at 100k (isotropic vectors need a
        # broader IVF search); the 2-D map keeps the raw one
        graph = knn_graph(vectors, k=graph.k, progress=progress, cancel=cancel)
    found = label_space(vectors, graph, progress, cancel)
    metrics["label_graph"] = found[1].index_kind if found is not None else "the kNN graph"
    space, label = (None, None) if found is None else found
    if whitened is None:  # raw pixels lose with a bridge (benchmarks/bridge.py)
        return space, label, None
    # kept even without a label space: near-duplicates are read off it (store.current.duplicate_graph)
    width = min(BRIDGE_NEIGHBOURS + 1, graph.indices.shape[1])
    return space, label, KnnGraph(graph.indices[:, :width], graph.similarities[:, :width], "bridge", None)


def _find_clusters(graph, label_space: bool, resolution: float | None, progress, cancel) -> np.ndarray:
    from explorer.projection.clusters import EMBEDDING_RESOLUTION, RESOLUTION, find_clusters

    if resolution is None:
        resolution = RESOLUTION if label_space else EMBEDDING_RESOLUTION
    return find_clusters(graph, resolution, progress=progress, cancel=cancel)


@dataclass
class Clusters:
    """The current map's clusters (``explorer.projection.clusters``): ``item_ids`` (N,) int64 in
    map order, ``cluster`` (N,) int32 (-1 in none), and ``names`` (one per cluster, 0 the largest),
    named from the labels as they are now."""

    map_run: int
    item_ids: np.ndarray
    cluster: np.ndarray
    names: list

    def rows(self) -> list[dict]:
        """One dict a cluster (cluster, name, images, labelled, majority label and its share)."""
        return [
            {
                "cluster": c.cluster,
                "name": c.text,
                "images": c.size,
                "labelled": c.labelled,
                "label": c.label,
                "share": round(c.share, 3),
            }
            for c in self.names
        ]


def clusters(
    project: Project,
    resolution: float | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> Clusters:
    """The clusters of the current map, named by their majority label (human or pseudo).

    With ``resolution`` (higher: more, smaller clusters) they are found again and saved with the
    map; without, the map's own are used (found again only for a map made before clusters were).
    """
    from explorer.neighbours.knn import KnnGraph
    from explorer.projection.clusters import cluster_names

    graph_map = current_map(project)
    if graph_map is None:
        raise WorkflowError("no map yet: run `explorer map` first")
    if resolution is not None and not resolution > 0:
        raise WorkflowError(f"--resolution must be above 0 (got {resolution})")
    found = None if resolution is not None else project.load_run_array(graph_map.run_id, "clusters")
    if found is None or len(found) != len(graph_map.item_ids):
        ids = project.load_run_array(graph_map.run_id, "label_indices")
        if ids is not None:
            sims = project.load_run_array(graph_map.run_id, "label_similarities")
            graph = KnnGraph(ids, sims, "label", None)
        else:
            graph = KnnGraph(graph_map.knn_indices, graph_map.knn_similarities, "stored", None)
        found = _find_clusters(graph, ids is not None, resolution, progress, cancel)
        project.save_run_arrays(graph_map.run_id, clusters=found)
        metrics = project.run(graph_map.run_id).metrics
        project.update_run_metrics(graph_map.run_id, {**metrics, "clusters": int(found.max()) + 1 if len(found) else 0})
    classes = project.classes()
    table = project.label_table()
    class_index = np.full(len(graph_map.item_ids), -1, np.int64)
    rows, present = rows_in(table.item_ids, graph_map.item_ids)
    positions, known = rows_in(np.array([c.id for c in classes], np.int64), table.class_ids[rows])
    on_map = np.flatnonzero(present)
    class_index[on_map[known]] = positions
    names = cluster_names(found, class_index, [c.name for c in classes])
    return Clusters(graph_map.run_id, graph_map.item_ids, found, names)


def label_cluster(project: Project, cluster: int, name: str) -> int:
    """Label every image of the current map's ``cluster`` that no person has labelled yet as
    ``name`` (a new class if needed), as one undoable event; labels people gave stay. Returns how
    many images it labelled."""
    found = clusters(project)
    if not 0 <= cluster < len(found.names):
        raise WorkflowError(f"no cluster {cluster}: the map has clusters 0 to {len(found.names) - 1}")
    name = name.strip()
    if not name:
        raise WorkflowError("a cluster needs a label name")
    members = found.item_ids[found.cluster == cluster]
    humans = project.human_labels()
    todo = [int(i) for i in members.tolist() if int(i) not in humans]
    if not todo:
        return 0
    class_id = project.ensure_classes([name])[name]
    project.set_labels(todo, class_id, "seed", action=f"label cluster {cluster} as {name} ({len(todo)} images)")
    return len(todo)


def _same_items(graph_map: MapData, embeddings: Embeddings) -> bool:
    return len(graph_map.item_ids) == len(embeddings.item_ids) and bool(
        (graph_map.item_ids == embeddings.item_ids).all()
    )


def _same_space_map(project: Project, embeddings: Embeddings) -> MapData | None:
    """The latest map if its embeddings came from the same encoder as ``embeddings``, else None."""
    latest = current_map(project)
    if latest is None:
        return None
    then = project.run(latest.run_id).params.get("embed_run")
    if then == embeddings.run_id:
        return latest
    old, new = project.run(then) if then is not None else None, project.run(embeddings.run_id)
    if old is None or new is None or old.params.get("encoder") != new.params.get("encoder"):
        return None
    return latest


@dataclass
class MapPreview:
    item_ids: np.ndarray  # (N,) int64
    xy: np.ndarray  # (N, 2) float32 in [-1, 1]


def map_preview(project: Project) -> MapPreview | None:
    """An instant map to show while ``make_map`` runs: PCA of the current embeddings (None if none).

    Costs one pass over the embeddings (about a second at 1M x 128) and imports nothing heavy.
    """
    from explorer.projection.pca import pca_preview

    embeddings = current_embeddings(project)
    if embeddings is None:
        return None
    return MapPreview(embeddings.item_ids, pca_preview(embeddings.vectors))
