"""The user's path as plain functions over a project: scan, train, embed, map, propagate, export.

The CLI, the window's workers and the tests all call these. Each long one takes a progress
callback and a cancel token, records a run in the store, and only makes its result current once
it is complete (see ``explorer.store.project``). torch, faiss and umap are imported inside.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer.exchange.export import ExportReport, export, preview_export  # noqa: F401 (part of the workflow)
from explorer.exchange.manifest import ImportReport, import_labels  # noqa: F401
from explorer.images.decode import ImageError, load_rgb_array
from explorer.images.scan import ScanReport, scan_collection
from explorer.jobs import Cancelled, CancelToken, Progress, ProgressFn, no_progress
from explorer.store import HUMAN_SOURCES, Project, ProjectError

if TYPE_CHECKING:
    from explorer.labels.propagate import Propagation
    from explorer.ssl.encoder import Encoder
    from explorer.ssl.trainer import TrainConfig

# The raw-pixel baseline "encoder": no training, useful to compare against and to get a first
# map in seconds.
PIXELS = "pixels"
PIXEL_SIZE = 32


class WorkflowError(ProjectError):
    """A step cannot run yet or got bad input; the message says what to do."""


# ---- scan ---------------------------------------------------------------------------------
def scan(project: Project, progress: ProgressFn = no_progress, cancel: CancelToken | None = None) -> ScanReport:
    """Find the collection's images (see ``explorer.images.scan.scan_collection``)."""
    return scan_collection(project, progress, cancel)


def load_images(
    project: Project, size: int, progress: ProgressFn = no_progress, cancel: CancelToken | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids (N,), images (N, size, size, 3) uint8) of every readable item.

    A file that fails now (removed or damaged since the scan) is marked unreadable and left out.
    """
    items = project.items()
    if not items:
        raise WorkflowError(f"no readable images in {project.root}: run `explorer scan` first, or check the folder")
    images = np.empty((len(items), size, size, 3), np.uint8)
    ok = np.ones(len(items), bool)

    def decode(k: int) -> None:
        try:
            images[k] = load_rgb_array(project.absolute_path(items[k]), size)
        except ImageError as exc:
            ok[k] = False
            project.mark_unreadable(items[k].id, str(exc))

    step = 512
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for start in range(0, len(items), step):
            if cancel:
                cancel.raise_if_cancelled()
            list(pool.map(decode, range(start, min(start + step, len(items)))))
            progress(Progress("load images", min(start + step, len(items)), len(items)))
    ids = np.array([item.id for item in items], np.int64)
    return ids[ok], images[ok]


# ---- train --------------------------------------------------------------------------------
def train(
    project: Project,
    config: TrainConfig | None = None,
    resume: bool = False,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> int:
    """Train a self-supervised encoder on the collection; returns the train run id.

    With ``resume``, continues the latest unfinished (or finished) training run from its last
    checkpoint with that run's settings; ``config`` may then only raise the epoch count or budget.
    """
    from explorer.ssl.trainer import TrainConfig
    from explorer.ssl.trainer import train as train_encoder

    if resume:
        previous = [r for r in project.runs("train") if (project.run_dir(r.id) / "checkpoint.pt").exists()]
        if not previous:
            raise WorkflowError("nothing to resume: no training run with a checkpoint in this project")
        run = previous[-1].id
        saved = TrainConfig(**previous[-1].params)
        if config is not None:
            saved.epochs = max(saved.epochs, config.epochs)
            saved.max_minutes = config.max_minutes
        config = saved
    else:
        config = config or TrainConfig()
    config.validate()
    if not resume:
        run = project.start_run("train", asdict(config))
    try:
        images_ids, images = load_images(project, config.image_size, progress, cancel)
        result = train_encoder(images, config, project.run_dir(run), resume=resume, progress=progress, cancel=cancel)
    except BaseException as exc:
        _stopped(project, run, exc)
        raise
    last = result.history[-1] if result.history else {}
    project.finish_run(
        run,
        "done",
        {"epochs_done": result.epochs_done, "stopped_by": result.stopped_by, "images": int(len(images_ids)), **last},
    )
    return run


def _stopped(project: Project, run: int, exc: BaseException) -> None:
    """Record why a run ended early; its arrays never became current."""
    if isinstance(exc, Cancelled | KeyboardInterrupt):
        project.finish_run(run, "cancelled")
    else:
        project.finish_run(run, "failed", {"error": str(exc)})


# ---- embed --------------------------------------------------------------------------------
def resolve_encoder(project: Project, encoder: str | None, device: str = "auto") -> tuple[Encoder | None, str]:
    """The encoder named by ``encoder`` and a description of it.

    None: the latest training run with a checkpoint; a number: that training run; ``pixels``: the
    raw-pixel baseline (returned as None); anything else: a checkpoint file.
    """
    if encoder == PIXELS:
        return None, PIXELS
    from explorer.ssl.encoder import load_encoder

    if encoder is None or encoder.isdigit():
        runs = [r for r in project.runs("train") if (project.run_dir(r.id) / "checkpoint.pt").exists()]
        if encoder is not None:
            runs = [r for r in runs if r.id == int(encoder)]
            if not runs:
                raise WorkflowError(
                    f"no training run {encoder} with a checkpoint in this project (see `explorer status`)"
                )
        if not runs:
            raise WorkflowError(
                "no trained encoder yet: run `explorer train` first, pass --encoder FILE, or --encoder pixels"
            )
        path = project.run_dir(runs[-1].id) / "checkpoint.pt"
        return load_encoder(path, device=device), f"train run {runs[-1].id}"
    path = Path(encoder).expanduser()
    if not path.exists():
        raise WorkflowError(f"encoder file not found: {path}")
    return load_encoder(path, device=device), str(path.resolve())


def embed(
    project: Project,
    encoder: str | None = None,
    batch_size: int = 256,
    device: str = "auto",
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> int:
    """Embed every readable item; returns the embed run id (arrays ``item_ids``, ``embeddings``)."""
    model, description = resolve_encoder(project, encoder, device)
    run = project.start_run("embed", {"encoder": description})
    try:
        if model is None:
            ids, images = load_images(project, PIXEL_SIZE, progress, cancel)
            vectors = pixel_vectors(images)
        else:
            ids, images = load_images(project, model.image_size, progress, cancel)
            vectors = model.embed(images, batch_size=batch_size, progress=progress, cancel=cancel)
        project.save_run_arrays(run, item_ids=ids, embeddings=vectors.astype(np.float32))
    except BaseException as exc:
        _stopped(project, run, exc)
        raise
    project.finish_run(run, "done", {"items": int(len(ids)), "dim": int(vectors.shape[1])})
    return run


def pixel_vectors(images: np.ndarray) -> np.ndarray:
    """(N, S*S*3) float32 raw pixels, centred and L2-normalised per image."""
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    flat -= flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.maximum(norms, 1e-8)


@dataclass
class Embeddings:
    run_id: int
    item_ids: np.ndarray  # (N,) int64
    vectors: np.ndarray  # (N, D) float32, unit rows


def current_embeddings(project: Project) -> Embeddings | None:
    run = project.latest_run("embed")
    if run is None:
        return None
    return Embeddings(run.id, project.load_run_array(run.id, "item_ids"), project.load_run_array(run.id, "embeddings"))


# ---- map ----------------------------------------------------------------------------------
@dataclass
class MapData:
    run_id: int
    item_ids: np.ndarray  # (N,) int64
    xy: np.ndarray  # (N, 2) float32
    knn_indices: np.ndarray  # (N, k+1) int64 row positions; column 0 is the row itself; -1 = none
    knn_similarities: np.ndarray  # (N, k+1) float32 cosine


def make_map(
    project: Project, k: int = 15, progress: ProgressFn = no_progress, cancel: CancelToken | None = None
) -> int:
    """kNN graph (FAISS) of the current embeddings and a 2-D UMAP layout fed with that graph."""
    if k < 2:
        raise WorkflowError(f"--k must be at least 2 (got {k})")
    embeddings = current_embeddings(project)
    if embeddings is None:
        raise WorkflowError("no embeddings yet: run `explorer embed` first")
    from explorer.neighbours.knn import knn_graph
    from explorer.projection import umap_layout

    run = project.start_run("map", {"embed_run": embeddings.run_id, "k": k})
    try:
        graph = knn_graph(embeddings.vectors, k=k, progress=progress, cancel=cancel)
        xy = umap_layout(embeddings.vectors, graph, n_neighbors=min(k, graph.k), progress=progress, cancel=cancel)
        project.save_run_arrays(
            run,
            item_ids=embeddings.item_ids,
            xy=xy.astype(np.float32),
            knn_indices=graph.indices,
            knn_similarities=graph.similarities,
        )
    except BaseException as exc:
        _stopped(project, run, exc)
        raise
    project.finish_run(run, "done", {"items": int(len(xy)), "index": graph.index_kind, "recall": graph.recall})
    return run


def current_map(project: Project) -> MapData | None:
    """The latest finished map, or None."""
    run = project.latest_run("map")
    if run is None:
        return None
    load = lambda name: project.load_run_array(run.id, name)  # noqa: E731
    return MapData(run.id, load("item_ids"), load("xy"), load("knn_indices"), load("knn_similarities"))


# ---- propagate ----------------------------------------------------------------------------
@dataclass
class PropagationResult:
    """Pseudo-labels for the items of one map; ``class_ids`` are store class ids (-1 = none)."""

    map_run: int
    item_ids: np.ndarray
    class_ids: np.ndarray
    confidence: np.ndarray
    seeds: int

    def summary(self) -> str:
        reached = int((self.class_ids >= 0).sum())
        if self.seeds == 0:
            return "no human labels yet: label a few images first"
        mean = float(self.confidence[self.class_ids >= 0].mean()) if reached else 0.0
        return f"{reached} of {len(self.item_ids)} items labelled from {self.seeds} human label(s); mean confidence {mean:.2f}"


def compute_propagation(
    project: Project, progress: ProgressFn = no_progress, cancel: CancelToken | None = None
) -> PropagationResult:
    """Propagate the human labels over the current map's kNN graph (nothing is written)."""
    from explorer.labels.propagate import propagate as diffuse
    from explorer.neighbours.knn import KnnGraph

    graph_map = current_map(project)
    if graph_map is None:
        raise WorkflowError("no map yet: run `explorer map` first")
    classes = project.classes()
    class_ids = np.array([c.id for c in classes], np.int64)
    column = {int(c): k for k, c in enumerate(class_ids)}
    row = {int(i): r for r, i in enumerate(graph_map.item_ids)}
    seeds = np.full(len(graph_map.item_ids), -1, np.int64)
    for item, (cls, _source) in project.human_labels().items():
        if item in row and cls in column:
            seeds[row[item]] = column[cls]
    rejected = np.array(
        [(row[i], column[c]) for i, c in project.rejections() if i in row and c in column], np.int64
    ).reshape(-1, 2)
    n_seeds = int((seeds >= 0).sum())
    if n_seeds == 0:
        empty = np.full(len(seeds), -1, np.int64)
        return PropagationResult(graph_map.run_id, graph_map.item_ids, empty, np.zeros(len(seeds), np.float32), 0)
    graph = KnnGraph(graph_map.knn_indices, graph_map.knn_similarities, "stored", None)
    result: Propagation = diffuse(graph, seeds, len(classes), rejected=rejected, progress=progress, cancel=cancel)
    predicted = np.where(result.predicted >= 0, class_ids[np.maximum(result.predicted, 0)], -1)
    return PropagationResult(graph_map.run_id, graph_map.item_ids, predicted, result.confidence, n_seeds)


def save_propagation(project: Project, result: PropagationResult) -> None:
    """Make ``result`` the project's pseudo-labels (replacing the previous ones)."""
    project.save_pseudo_labels(result.item_ids, result.class_ids, result.confidence)


def propagate(
    project: Project, progress: ProgressFn = no_progress, cancel: CancelToken | None = None
) -> PropagationResult:
    """Compute and save pseudo-labels with confidence for every item of the current map."""
    result = compute_propagation(project, progress, cancel)
    save_propagation(project, result)
    return result


# ---- everything at once ---------------------------------------------------------------------
def run_all(
    project: Project,
    config: TrainConfig | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> int:
    """Scan, train (unless a trained encoder exists), embed and map; returns the map run id."""
    scan(project, progress, cancel)
    if not any((project.run_dir(r.id) / "checkpoint.pt").exists() for r in project.runs("train")):
        train(project, config, progress=progress, cancel=cancel)
    embed(project, progress=progress, cancel=cancel)
    return make_map(project, progress=progress, cancel=cancel)


# ---- status -------------------------------------------------------------------------------
def status_text(project: Project) -> str:
    items = project.items(readable_only=False)
    unreadable = project.unreadable()
    counts = project.label_counts()
    lines = [
        f"collection: {project.root}",
        f"state:      {project.state_dir}",
        f"items:      {len(items)} ({len(unreadable)} unreadable)",
        f"classes:    {', '.join(c.name for c in project.classes()) or '(none)'}",
        "labels:     "
        + ", ".join(f"{counts.get(s, 0)} {s}" for s in (*HUMAN_SOURCES, "pseudo"))
        + f", {counts.get('', 0)} unlabelled",
    ]
    for run in project.runs():
        metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in run.metrics.items() if not isinstance(v, dict | list))
        lines.append(f"run {run.id:>3} {run.kind:<9} {run.status:<9} {metrics}")
    for item in unreadable[:20]:
        lines.append(f"unreadable: {item.path}: {item.error}")
    if len(unreadable) > 20:
        lines.append(f"unreadable: ... and {len(unreadable) - 20} more")
    return "\n".join(lines)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def parse_sources(text: str | Sequence[str]) -> tuple[str, ...]:
    """'seed,accepted' -> ('seed', 'accepted'), with a clear error for unknown names."""
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    allowed = (*HUMAN_SOURCES, "pseudo")
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise WorkflowError(f"unknown label source(s) {', '.join(bad) or '(none)'}; choose from {','.join(allowed)}")
    return tuple(names)
