"""Clusters on the map: groups of images a person can see, name, select and label in one action.

Leiden community detection (Traag, Waltman & van Eck 2019, "From Louvain to Leiden:
guaranteeing well-connected communities") on the graph labels propagate through: the label
space's kNN graph (``explorer.labels.space``) when the map has one, else the embedding's kNN
graph. Measured against HDBSCAN on the label-space coordinates (benchmarks/clusters.py), on
raw pixels of 5,000 real MNIST digits: Leiden on the label graph gives 17 clusters, 91 % of
images in their cluster's majority class; HDBSCAN gives 7 clusters at 68 % (excess of mass) or
half the images left as noise (leaf); Leiden on the embedding's graph 5 clusters at 49 %.

Clusters are numbered by size, 0 the largest; images in clusters under ``min_size`` get -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.neighbours.knn import KnnGraph

RESOLUTION = 0.1
"""Leiden's resolution on the label-space graph (Gaussian weights): about 1.5 clusters a class on
the suite's digits; 0.03 merges neighbouring classes, 0.3 splits each class in two or three."""
EMBEDDING_RESOLUTION = 1.0
"""... on an embedding's cosine kNN graph (weights near 1 everywhere need a higher resolution)."""
SMALL_SHARE = 0.001
"""Clusters smaller than this share of the collection (at least ``SMALL_ROWS`` images) are not
named: their images get -1."""
SMALL_ROWS = 5


def find_clusters(
    graph: KnnGraph,
    resolution: float,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """(N,) int32 cluster of each row of ``graph`` (N, k+1; column 0 the row itself, -1 no
    neighbour), 0 the largest cluster, -1 for rows in clusters under the small size.

    The directed kNN graph is made undirected with the larger weight of a pair. Raises
    ValueError for a resolution that is not positive.
    """
    import igraph
    import scipy.sparse as sp

    if not resolution > 0:
        raise ValueError(f"the cluster resolution must be above 0 (got {resolution})")
    n = len(graph.indices)
    if n == 0:
        return np.empty(0, np.int32)
    progress(Progress("clusters", 0, 2, "joining the neighbour graph"))
    source = np.repeat(np.arange(n), graph.indices.shape[1] - 1)
    target = graph.indices[:, 1:].ravel()
    weight = np.maximum(graph.similarities[:, 1:].ravel().astype(np.float64), 1e-6)
    keep = (target >= 0) & (target != source)
    joined = sp.coo_matrix((weight[keep], (source[keep], target[keep])), shape=(n, n)).tocsr()
    upper = sp.triu(joined.maximum(joined.T), 1).tocoo()
    if cancel is not None:
        cancel.raise_if_cancelled()
    progress(Progress("clusters", 1, 2, f"Leiden on {n:,} images"))
    network = igraph.Graph(n=n, edges=np.stack([upper.row, upper.col], axis=1), directed=False)
    import random

    state = random.getstate()
    random.seed(seed)  # igraph draws from Python's generator; leave it as it was found
    try:
        parts = network.community_leiden(
            objective_function="modularity", weights=upper.data, resolution=resolution, n_iterations=-1
        )
    finally:
        random.setstate(state)
    progress(Progress("clusters", 2, 2, "done"))
    return by_size(np.asarray(parts.membership, np.int64), min_size=max(SMALL_ROWS, int(SMALL_SHARE * n)))


def by_size(membership: np.ndarray, min_size: int) -> np.ndarray:
    """(N,) int32: ``membership`` renumbered 0 = largest, clusters under ``min_size`` -> -1."""
    valid = membership >= 0
    sizes = np.bincount(membership[valid]) if valid.any() else np.zeros(0, np.int64)
    order = np.argsort(-sizes, kind="stable")
    rank = np.full(len(sizes), -1, np.int64)
    big = order[sizes[order] >= min_size]
    rank[big] = np.arange(len(big))
    out = np.full(len(membership), -1, np.int32)
    out[valid] = rank[membership[valid]]
    return out


@dataclass(frozen=True)
class ClusterName:
    """What a cluster is called: its majority label when more than half of its labelled images
    (human or pseudo) share one, else ``cluster N``; with its size."""

    cluster: int
    size: int
    label: str  # the majority label, '' when none
    share: float  # of the labelled images in the cluster that carry ``label`` (0 when none)
    labelled: int  # images in the cluster with any label

    @property
    def text(self) -> str:
        return f"{self.label} ({self.size:,})" if self.label else f"cluster {self.cluster} ({self.size:,})"


def cluster_names(clusters: np.ndarray, class_index: np.ndarray, class_names: list[str]) -> list[ClusterName]:
    """Names of clusters 0..max from (N,) cluster per row and (N,) class position per row (-1
    unlabelled) into ``class_names``. No loop over rows."""
    n_clusters = int(clusters.max()) + 1 if len(clusters) and clusters.max() >= 0 else 0
    inside = clusters >= 0
    sizes = np.bincount(clusters[inside], minlength=n_clusters)
    labelled = inside & (class_index >= 0)
    n_classes = max(len(class_names), 1)
    table = np.bincount(
        clusters[labelled].astype(np.int64) * n_classes + class_index[labelled], minlength=n_clusters * n_classes
    ).reshape(n_clusters, n_classes)
    totals = table.sum(axis=1)
    top = table.argmax(axis=1) if n_classes else np.zeros(n_clusters, np.int64)
    names = []
    for k in range(n_clusters):
        share = float(table[k, top[k]] / totals[k]) if totals[k] else 0.0
        label = class_names[top[k]] if share > 0.5 and top[k] < len(class_names) else ""
        names.append(ClusterName(k, int(sizes[k]), label, share, int(totals[k])))
    return names
