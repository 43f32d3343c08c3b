"""The user's path as plain functions over a project: scan, train, embed, map, propagate, export.

The CLI, the window's workers and the tests all call these. Each long one takes a progress
callback and a cancel token, records a run in the store, and only makes its result current once
it is complete (see ``explorer.store.project``). torch, faiss and umap are imported inside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer.exchange import manifest
from explorer.exchange.embeddings import EmbeddingImport, import_embeddings  # noqa: F401 (part of the workflow)
from explorer.exchange.export import FORMATS, ExportReport, export, format_for, preview_export  # noqa: F401
from explorer.exchange.folders import labels_from_folders  # noqa: F401
from explorer.exchange.manifest import ImportReport, ManifestError
from explorer.images.decode import ImageError, load_rgb_array
from explorer.images.pool import decode_images, decode_rows, decode_workers
from explorer.images.scan import ScanReport, scan_collection
from explorer.jobs import Cancelled, CancelToken, Progress, ProgressFn, no_progress
from explorer.store import HUMAN_SOURCES, Project, ProjectError
from explorer.store.current import (  # noqa: F401
    Embeddings,
    MapData,
    current_embeddings,
    current_map,
    map_embeddings,
    trained_runs,
)
from explorer.store.item_rows import rows_in

if TYPE_CHECKING:
    from explorer.labels.calibrate import Calibration
    from explorer.labels.propagate import Propagation
    from explorer.ssl.encoder import Encoder
    from explorer.ssl.evaluate import EvaluationReport
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
    project: Project,
    size: int,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    only: set[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids (N,), images (N, size, size, 3) uint8) of every readable item (or of the ids in ``only``).

    A file that fails now (removed or damaged since the scan) is marked unreadable and left out.
    """
    files = project.readable_files()
    rows = np.arange(len(files))
    if only is not None:
        rows = rows[np.isin(files.item_ids, np.fromiter(only, np.int64, count=len(only)))]
    if not len(rows):
        raise WorkflowError(f"no readable images in {project.root}: run `explorer scan` first, or check the folder")
    return decode_images(project, [files.paths[r] for r in rows], files.item_ids[rows], size, progress, cancel)


TRAIN_MEMORY_SHARE = 0.25
"""Decoded training images may take this share of the memory available when training starts;
a bigger collection trains on a random sample of what fits (``TrainConfig.max_images`` overrides)."""
MIN_TRAIN_SAMPLE = 1000  # however short memory is, a sample no smaller than this


def training_sample(
    project: Project, config, keep: np.ndarray | None = None, progress: ProgressFn = no_progress
) -> tuple[np.ndarray | None, int]:
    """(item ids to train on, or None for every readable item; how many readable items there are).

    Training holds every image it trains on decoded in memory (N x S x S x 3 bytes: 1M images at
    96 px are 27 GB), so above ``config.max_images`` (default: what fits in TRAIN_MEMORY_SHARE of
    the memory available) it takes a random sample, seeded by ``config.seed``. Ids in ``keep``
    (the labelled items of a fine-tuning run) are always in it.
    """
    from explorer.neighbours.knn import available_memory

    n = project.item_count()
    cap = config.max_images
    if cap is None:
        cap = max(MIN_TRAIN_SAMPLE, int(TRAIN_MEMORY_SHARE * available_memory()) // (3 * config.image_size**2))
    if n <= cap:
        return None, n
    ids = project.item_ids()
    chosen = np.zeros(len(ids), bool)
    if keep is not None:
        chosen[np.isin(ids, keep)] = True
    rest = np.flatnonzero(~chosen)
    extra = max(0, cap - int(chosen.sum()))
    chosen[np.random.default_rng(config.seed).choice(rest, min(extra, len(rest)), replace=False)] = True
    why = "--max-images" if config.max_images is not None else "what fits in a quarter of the memory"
    progress(
        Progress("load images", 0, int(chosen.sum()), f"training on a random {chosen.sum():,} of {n:,} images ({why})")
    )
    return ids[chosen], n


# ---- train --------------------------------------------------------------------------------
def train(
    project: Project,
    config: TrainConfig | None = None,
    resume: bool = False,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    eval_labels: Path | None = None,
) -> int:
    """Train a self-supervised encoder on the collection; returns the train run id.

    With ``resume``, continues the latest unfinished (or finished) training run from its last
    checkpoint with that run's settings; ``config`` may then only raise the epoch count or budget.
    When true labels are known (``eval_labels``, a ``path,label`` CSV, or else the people's labels
    in the project: seed, accepted, imported) every epoch reports ``knn_accuracy`` on them, so the
    curve shows whether training helps.
    """
    from explorer.ssl.distributed import train as train_encoder
    from explorer.ssl.trainer import TrainConfig

    if resume:
        previous = trained_runs(project)
        if not previous:
            raise WorkflowError("nothing to resume: no training run with a checkpoint in this project")
        run = previous[-1].id
        from explorer.ssl.checkpoint import load_checkpoint

        load_checkpoint(project.run_dir(run) / "checkpoint.pt")  # a damaged one fails here, changing nothing
        saved = TrainConfig(**previous[-1].params)
        if config is not None:
            saved.epochs = max(saved.epochs, config.epochs)
            saved.max_minutes = config.max_minutes
            saved.processes = config.processes  # a checkpoint resumes on any number of processes
        config = saved
    else:
        config = config or TrainConfig()
    config.validate()
    if eval_labels is not None:
        _known_labels(project, eval_labels)  # a bad truth file fails now, before any run or decoding
    if not resume:
        run = project.start_run("train", asdict(config))
    try:
        sample, readable = training_sample(project, config, progress=progress)
        images_ids, images = load_images(project, config.image_size, progress, cancel, only=sample)
        on_epoch = _knn_during_training(project, images_ids, images, eval_labels)
        result = train_encoder(
            images, config, project.run_dir(run), resume=resume, progress=progress, cancel=cancel, on_epoch=on_epoch
        )
    except BaseException as exc:
        _stopped(project, run, exc)
        raise
    last = result.history[-1] if result.history else {}
    project.finish_run(
        run,
        "done",
        {
            "epochs_done": result.epochs_done,
            "stopped_by": result.stopped_by,
            "images": int(len(images_ids)),
            **({"sampled_from": readable} if sample is not None else {}),
            **last,
        },
    )
    return run


EVAL_SAMPLE = 2000  # labelled images embedded after each epoch: ~1 s on a CPU for the small CNN


def _known_labels(project: Project, truth_csv: Path | None) -> tuple[dict[int, str], int]:
    """Item id -> true label, from the ``path,label`` CSV when given, else the people's labels;
    and how many labelled rows the source has (CSV rows may name files the project lacks)."""
    if truth_csv is not None:
        from explorer.exchange.manifest import normalise_path, read_manifest

        truth = {normalise_path(row.path): row.label for _, row in read_manifest(Path(truth_csv)) if row.label}
        known = {item: truth[path] for item, path in project.paths_by_id().items() if path in truth}
        return known, len(truth)
    names = {c.id: c.name for c in project.classes()}
    known = {item: names[c] for item, (c, _) in project.human_labels().items() if c in names}
    return known, len(known)


def _knn_during_training(
    project: Project, ids: np.ndarray, images: np.ndarray, eval_labels: Path | None, k: int = 20
) -> Callable | None:
    """The trainer's ``on_epoch``: kNN accuracy (cosine, leave-one-out) of the encoder on up to
    EVAL_SAMPLE images with known labels, or None when fewer than k+1 images in 2 classes have one.
    Few labels a class lower k to half the average class size."""
    known, _ = _known_labels(project, eval_labels)
    rows = np.array([r for r, item in enumerate(ids.tolist()) if item in known], np.int64)
    labels = np.array([known[int(ids[r])] for r in rows], dtype=object)
    if len(rows) <= k or len(set(labels.tolist())) < 2:
        if eval_labels is not None:
            raise WorkflowError(
                f"{eval_labels}: only {len(rows)} image(s) in {len(set(labels.tolist()))} class(es) match this "
                f"collection; accuracy during training needs more than k={k} images in at least 2 classes"
            )
        return None
    if len(rows) > EVAL_SAMPLE:
        pick = np.sort(np.random.default_rng(0).choice(len(rows), EVAL_SAMPLE, replace=False))
        rows, labels = rows[pick], labels[pick]
    sample = images[rows]
    # With a few labels a class, 20 neighbours outvote the class itself: take at most half a class.
    k = max(1, min(k, len(rows) // (2 * len(set(labels.tolist())))))

    def on_epoch(backbone) -> dict[str, float]:
        import torch

        from explorer.ssl.encoder import Encoder
        from explorer.ssl.evaluate import knn_accuracy

        device = next(backbone.parameters()).device
        size = sample.shape[1]
        with torch.inference_mode():
            dim = int(backbone(torch.zeros(1, 3, size, size, device=device)).shape[1])
        vectors = Encoder(backbone, "training", size, dim, device).embed(sample)
        return {"knn_accuracy": knn_accuracy(vectors, labels, k)}

    return on_epoch


def _stopped(project: Project, run: int, exc: BaseException) -> None:
    """Record why a run ended early; its arrays never became current."""
    if isinstance(exc, Cancelled | KeyboardInterrupt):
        project.finish_run(run, "cancelled")
    else:
        project.finish_run(run, "failed", {"error": str(exc)})


# ---- embed --------------------------------------------------------------------------------
def resolve_encoder(
    project: Project, encoder: str | None, device: str = "auto", image_size: int | None = None
) -> tuple[Encoder | None, str]:
    """The encoder named by ``encoder`` and a description of it.

    None: the latest training run with a checkpoint; a number (or ``run:N``): that training run;
    ``pixels``: the raw-pixel baseline (returned as None); ``torchvision:ARCH[=WEIGHTS.pth]`` or
    ``timm:NAME[=WEIGHTS]``: a pretrained architecture with a local weights file, at ``image_size``
    px (default: its pretraining size); anything else: a checkpoint file.
    """
    if encoder == PIXELS:
        return None, PIXELS
    from explorer.ssl.encoder import load_encoder, load_pretrained_encoder

    if encoder is not None and encoder.startswith(("torchvision:", "timm:")):
        model = load_pretrained_encoder(encoder, device=device, image_size=image_size)
        return model, encoder
    if encoder is not None and encoder.startswith("run:"):
        encoder = encoder[4:]
    if encoder is None or encoder.isdigit():
        runs = trained_runs(project)
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
        raise WorkflowError(
            f"encoder file not found: {path} (pass a training checkpoint, a run id, pixels, "
            "torchvision:ARCH=WEIGHTS.pth or timm:NAME=WEIGHTS)"
        )
    return load_encoder(path, device=device), str(path.resolve())


EMBED_CHUNK_BYTES = 64 << 20  # decoded images held at once (twice: one chunk decodes while one embeds)


def embed(
    project: Project,
    encoder: str | None = None,
    batch_size: int = 256,
    device: str = "auto",
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    image_size: int | None = None,
    *,
    dtype: str = "float32",
    fresh: bool = False,
    chunk_rows: int | None = None,
) -> int:
    """Embed every readable item; returns the embed run id (arrays ``item_ids``, ``embeddings``).

    Streams: images are decoded and embedded ``chunk_rows`` at a time (default: about
    EMBED_CHUNK_BYTES of pixels) and their rows written into a memory-mapped file, so memory does
    not grow with the collection (see ``explorer.store.embedding_file``). ``dtype`` "float16"
    stores half the bytes. Unless ``fresh``, nothing is computed twice with the same encoder
    (same weights, image size): a stopped run (cancelled, failed, killed) is continued from its
    saved rows, and items whose file is unchanged (size and mtime as the scan recorded them)
    since the latest finished run take their vectors from it. The run's params name the encoder
    and its architecture (``backbone``, ``image_size``), which ``evaluate`` uses.
    """
    from explorer.store.embedding_file import EmbeddingWriter, embedding_dtype

    try:
        target = embedding_dtype(dtype)
    except ValueError as exc:
        raise WorkflowError(str(exc)) from None
    if chunk_rows is not None and chunk_rows < 1:
        raise WorkflowError(f"chunk_rows must be at least 1 (got {chunk_rows})")
    model, description = resolve_encoder(project, encoder, device, image_size)
    files = project.readable_files()
    if not len(files):
        raise WorkflowError(f"no readable images in {project.root}: run `explorer scan` first, or check the folder")
    size = PIXEL_SIZE if model is None else model.image_size
    dim = size * size * 3 if model is None else model.feature_dim
    key = _encoder_key(model)
    params = {"encoder": description, "encoder_key": key, "dtype": target.name}
    if model is not None:
        params |= {"backbone": model.name, "image_size": model.image_size}
    earlier = [] if fresh else _earlier_vectors(project, key, target)
    run = project.start_run("embed", params)
    owner = project.run(run).metrics  # which process runs it: kept while it runs
    writer = None
    try:
        writer = EmbeddingWriter(
            project.run_dir(run),
            files.item_ids,
            files.stamps,
            dim,
            target,
            on_checkpoint=lambda n: project.update_run_metrics(run, owner | {"rows_done": n, "items": len(files)}),
        )
        counts = {"reused": 0, "resumed": 0}
        for source in earlier:
            counts["resumed" if source.partial else "reused"] += writer.reuse(source)
        writer.checkpoint()
        for source in earlier:  # every row they had is in this run's file now
            source.remove_partial(project.run_dir(source.run_id))
        used = _embed_rows(project, files, writer, model, size, batch_size, chunk_rows, progress, cancel)
        kept = writer.finish()
    except BaseException as exc:
        done = _save_what_is_done(writer)
        _stopped(project, run, exc)
        if done is not None:
            project.update_run_metrics(run, project.run(run).metrics | {"rows_done": done, "items": len(files)})
        raise
    metrics = {"items": int(len(kept)), "dim": int(dim), "dtype": target.name, **counts}
    metrics["embedded"] = int(len(kept)) - counts["reused"] - counts["resumed"]
    for source in earlier:
        metrics["resumed_from" if source.partial else "reused_from"] = source.run_id
    if used < batch_size:
        metrics["batch_size"] = used  # halved after running out of memory
    check = None if model is None else check_against_pixels(project, run, progress, cancel)
    if check is not None:
        metrics["checked_on_labels"] = check
    project.finish_run(run, "done", metrics)
    if check is not None and check["pixels"] > check["encoder"] + check["margin"]:
        # the labels people gave say raw pixels group the images better: map those, and say so
        pixels = embed(project, PIXELS, progress=progress, cancel=cancel)
        note = (
            f"raw pixels beat {description} on your {check['labels']} labels (kNN {check['pixels']:.3f} vs "
            f"{check['encoder']:.3f}): the map uses raw pixels; train longer or refine with labels"
        )
        project.update_run_metrics(pixels, project.run(pixels).metrics | {"chosen_over": run, "note": note})
        progress(Progress("embed", 1, 1, note))
        return pixels
    return run


MIN_CHECK_LABELS = 20
"""Human labels (in two classes or more) needed before a new encoder is checked against raw pixels."""


def check_against_pixels(project: Project, run: int, progress: ProgressFn = no_progress, cancel=None) -> dict | None:
    """kNN accuracy (leave-one-out, cosine) of embed run ``run``'s vectors and of raw pixels on the
    human labels, with the margin by which pixels must win to count (two standard errors of the
    difference, at least 0.02); None with fewer than ``MIN_CHECK_LABELS`` labels in 2 classes."""
    from explorer.ssl.evaluate import knn_accuracy

    known, _ = _known_labels(project, None)
    if len(known) < MIN_CHECK_LABELS or len(set(known.values())) < 2:
        return None
    ids = project.load_run_array(run, "item_ids")
    vectors = project.load_run_array(run, "embeddings", mmap=True)
    rows, found = rows_in(ids, np.fromiter(known, np.int64, count=len(known)))
    items = np.fromiter(known, np.int64, count=len(known))[found]
    pixel_ids, small = load_images(project, PIXEL_SIZE, progress, cancel, only=set(items.tolist()))
    keep = np.isin(items, pixel_ids)
    rows, items = rows[keep], items[keep]
    order = {int(i): r for r, i in enumerate(pixel_ids.tolist())}
    labels = np.array([known[int(i)] for i in items], dtype=object)
    classes = len(set(labels.tolist()))
    k = max(1, min(20, len(items) // (2 * classes)))  # a few labels a class: no more than half a class votes
    encoder = knn_accuracy(np.asarray(vectors[rows], np.float32), labels, k)
    pixels = knn_accuracy(pixel_vectors(small[[order[int(i)] for i in items]]), labels, k)
    p = (encoder + pixels) / 2
    margin = max(0.02, 2 * float(np.sqrt(2 * p * (1 - p) / len(items))))
    return {
        "labels": int(len(items)),
        "encoder": round(encoder, 4),
        "pixels": round(pixels, 4),
        "margin": round(margin, 4),
    }


def _embed_rows(project, files, writer, model, size, batch_size, chunk_rows, progress, cancel) -> int:
    """Decode and embed the writer's rows still to do, chunk by chunk, decoding the next chunk
    while the current one is embedded; returns the batch size in use at the end."""
    todo = writer.todo()
    n = len(writer)
    n_done = n - len(todo)
    if chunk_rows is None:
        batches = max(1, EMBED_CHUNK_BYTES // (size * size * 3 * batch_size))
        chunk_rows = batches * batch_size
    chunks = [todo[start : start + chunk_rows] for start in range(0, len(todo), chunk_rows)]
    workers = decode_workers(project, [files.paths[r] for r in todo[:: max(1, len(todo) // 32)][:32]])
    progress(Progress("embed", n_done, n, "decoding"))

    def decode(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.empty((len(rows), size, size, 3), np.uint8)
        ok = decode_rows(project, [files.paths[r] for r in rows], files.item_ids[rows], images, pool, workers)
        return images, ok

    with ThreadPoolExecutor(max_workers=workers) as pool, ThreadPoolExecutor(max_workers=1) as ahead:
        pending = ahead.submit(decode, chunks[0]) if chunks else None
        for k, rows in enumerate(chunks):
            if cancel:
                cancel.raise_if_cancelled()
            images, ok = pending.result()
            pending = ahead.submit(decode, chunks[k + 1]) if k + 1 < len(chunks) else None
            if model is None:
                vectors = pixel_vectors(images[ok])
            else:
                base = n_done

                def within(report: Progress, base: int = base) -> None:
                    progress(Progress("embed", base + report.done, n, report.message))

                vectors = model.embed(images[ok], batch_size=batch_size, progress=within, cancel=cancel)
                batch_size = model.batch_size_used or batch_size
            writer.write(rows[ok], vectors)
            writer.fail(rows[~ok])
            n_done += len(rows)
            progress(Progress("embed", n_done, n, "embeddings" if model is None else f"{model.name} embeddings"))
            writer.checkpoint(force=False)
    return batch_size


def _save_what_is_done(writer) -> int | None:
    """On the way out of a stopped run: checkpoint its rows so that the next run continues it."""
    if writer is None:
        return None
    try:
        writer.checkpoint()
    except Exception:  # a full disk, ...: the last checkpoint stands
        return None
    return int(writer.done.sum())


def _encoder_key(model: Encoder | None) -> str:
    """What makes two embed runs' vectors interchangeable: the architecture, the input size and
    a hash of every weight (a training run resumed later writes new weights under the same id)."""
    import hashlib

    if model is None:
        return f"pixels:{PIXEL_SIZE}"
    import torch

    digest = hashlib.sha256(f"{model.name}:{model.image_size}".encode())
    for name, tensor in sorted(model.backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"{model.name}:{model.image_size}:{digest.hexdigest()[:32]}"


def _earlier_vectors(project: Project, key: str, dtype: np.dtype) -> list:
    """Vectors earlier runs with the same encoder left (``StoredVectors``): the latest stopped
    run with saved rows, and the latest finished run. Half-precision vectors are not taken for a
    float32 run; a run still going in another process is left alone."""
    from explorer.store.embedding_file import StoredVectors

    found: list = []
    stopped_seen = False
    for run in reversed(project.runs("embed")):
        if run.params.get("encoder_key") != key or run.status == "running":
            continue
        if np.dtype(run.params.get("dtype", "float32")).itemsize < dtype.itemsize:
            continue
        finished = run.status == "done"
        if not finished and stopped_seen:
            continue
        source = StoredVectors.load(run.id, project.state_dir / "runs" / str(run.id), finished)
        if source is None:
            continue
        found.append(source)
        stopped_seen |= not finished
        if finished:
            break
    return found


def pixel_vectors(images: np.ndarray) -> np.ndarray:
    """(N, S*S*3) float32 raw pixels, centred and L2-normalised per image."""
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    flat -= flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.maximum(norms, 1e-8)


# ---- evaluate and fine-tune ------------------------------------------------------------------
def evaluate(
    project: Project,
    truth_csv: Path | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    k: int = 20,
) -> EvaluationReport:
    """kNN (cosine, ``k``) and linear-probe accuracy of the current embeddings against true labels.

    ``truth_csv`` is a ``path,label`` manifest (paths relative to the collection); without it the
    labels people gave in the project (seed, accepted, imported) are the truth. Two baselines
    are computed in the same run on the same images: raw pixels (32 px) and the current encoder's
    architecture untrained (``small-cnn`` when the current embeddings are pixels). Recorded as an
    ``evaluate`` run; returns the report (``summary()`` is the table).
    """
    from explorer.ssl.encoder import untrained_encoder
    from explorer.ssl.evaluate import EvaluationReport, compare_embeddings

    current = current_embeddings(project)
    if current is None:
        raise WorkflowError("no embeddings yet: run `explorer embed` first, then evaluate them")
    known, given = _known_labels(project, truth_csv)
    source = str(truth_csv) if truth_csv is not None else "the labels in this project"
    matched = [item for item in current.item_ids.tolist() if item in known]
    not_found = given - len(matched)
    if len(matched) <= k:
        where = f" (paths must be relative to {project.root})" if truth_csv is not None else ""
        raise WorkflowError(
            f"{source}: only {len(matched)} of its {given} labelled paths are images with current "
            f"embeddings{where}; evaluation needs more than k={k}"
        )
    embed_run = project.run(current.run_id)
    backbone = embed_run.params.get("backbone", "small-cnn")
    size = int(embed_run.params.get("image_size", PIXEL_SIZE))
    ids, small = load_images(project, PIXEL_SIZE, progress, cancel, only=set(matched))
    ids_big, big = (
        (ids, small) if size == PIXEL_SIZE else load_images(project, size, progress, cancel, only=set(matched))
    )
    readable = set(ids.tolist()) & set(ids_big.tolist())  # a file may have gone unreadable since embedding
    items = [item for item in matched if item in readable]
    labels = np.array([known[item] for item in items], dtype=object)
    if len(items) <= k or len(set(labels)) < 2:
        raise WorkflowError(
            f"{source}: only {len(items)} labelled image(s) in {len(set(labels))} class(es) match the current "
            f"embeddings; evaluation needs more than k={k} images and at least 2 classes"
        )
    row_of = {item: r for r, item in enumerate(current.item_ids.tolist())}
    at_small = {item: r for r, item in enumerate(ids.tolist())}
    at_big = {item: r for r, item in enumerate(ids_big.tolist())}
    small, big = small[[at_small[i] for i in items]], big[[at_big[i] for i in items]]
    untrained = untrained_encoder(backbone, size).embed(big, progress=progress, cancel=cancel)
    name = embed_run.params.get("encoder", "current")
    named = {
        f"current ({name})": current.vectors[[row_of[item] for item in items]],
        f"raw pixels {PIXEL_SIZE}x{PIXEL_SIZE}": pixel_vectors(small),
        f"untrained {backbone}": untrained,
    }
    run = project.start_run("evaluate", {"labels": source, "embed_run": current.run_id, "k": k})
    try:
        report = EvaluationReport(compare_embeddings(named, labels, k), len(items), len(set(labels)), k, not_found)
    except BaseException as exc:
        _stopped(project, run, exc)
        raise
    project.finish_run(run, "done", report.metrics())
    return report


def finetune(
    project: Project,
    encoder: str | None = None,
    config: TrainConfig | None = None,
    min_confidence: float = 0.9,
    supervised_weight: float = 1.0,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> int:
    """Fine-tune an encoder with the human labels (and pseudo-labels of at least ``min_confidence``,
    weighted by it) as a supervised head next to ``config.method``'s self-supervised loss.

    ``encoder`` is what ``resolve_encoder`` takes (default: the latest trained encoder); the
    result is a new training run whose checkpoint ``embed`` picks up; returns its id.
    """
    from explorer.ssl.trainer import TrainConfig

    start, description = resolve_encoder(project, encoder, (config or TrainConfig()).device)
    if start is None:
        raise WorkflowError("raw pixels cannot be fine-tuned: pass a trained or pretrained --encoder")
    config = config or TrainConfig()
    config.backbone, config.image_size = start.name, start.image_size
    config.validate()
    table = project.label_table()
    classes = {c.id: k for k, c in enumerate(project.classes())}
    human = np.isin(table.source.astype(str), HUMAN_SOURCES)
    pseudo = (table.source.astype(str) == "pseudo") & (np.nan_to_num(table.confidence) >= min_confidence)
    use = (human | pseudo) & (table.class_ids >= 0)
    if not human.any() or len(set(table.class_ids[use].tolist())) < 2:
        raise WorkflowError("fine-tuning needs human labels in at least 2 classes: label a few images first")
    weight = np.where(human, 1.0, np.nan_to_num(table.confidence))  # pseudo-labels count by their confidence
    label_of = {
        int(i): (classes[int(c)], float(w))
        for i, c, w in zip(table.item_ids[use], table.class_ids[use], weight[use], strict=True)
    }
    counts = {"human_labels": int(human.sum()), "pseudo_labels": int((pseudo & use).sum())}
    keep = table.item_ids[human & (table.class_ids >= 0)]
    return train_with_labels(
        project, start, description, config, label_of, len(classes), keep, counts, supervised_weight, progress, cancel
    )


def train_with_labels(
    project: Project,
    start: Encoder,
    description: str,
    config: TrainConfig,
    label_of: dict[int, tuple[int, float]],
    classes: int,
    keep: np.ndarray,
    counts: dict,
    supervised_weight: float = 1.0,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> int:
    """A training run from ``start`` with a supervised head on ``label_of`` (item id -> (class
    index, weight)) beside ``config.method``'s loss; the ids in ``keep`` are always trained on.
    ``counts`` join the run's metrics. Returns the run id (its checkpoint is what ``embed`` takes)."""
    from explorer.ssl.trainer import Supervision
    from explorer.ssl.trainer import train as train_encoder

    run = project.start_run("train", asdict(config))
    try:
        sample, readable = training_sample(project, config, keep=keep, progress=progress)
        ids, images = load_images(project, config.image_size, progress, cancel, only=sample)
        labels = np.array([label_of.get(int(i), (-1, 0.0))[0] for i in ids], np.int64)
        weights = np.array([label_of.get(int(i), (-1, 0.0))[1] for i in ids], np.float32)
        supervision = Supervision(labels, weights, classes, supervised_weight)
        result = train_encoder(
            images,
            config,
            project.run_dir(run),
            progress=progress,
            cancel=cancel,
            supervision=supervision,
            initial_encoder=start.backbone.state_dict(),
        )
    except BaseException as exc:
        _stopped(project, run, exc)
        raise
    last = result.history[-1] if result.history else {}
    metrics = {
        "epochs_done": result.epochs_done,
        "stopped_by": result.stopped_by,
        "images": int(len(ids)),
        **({"sampled_from": readable} if sample is not None else {}),
        "finetuned_from": description,
        **counts,
        **last,
    }
    project.finish_run(run, "done", metrics)
    return run


# ---- map ----------------------------------------------------------------------------------
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
        space, label = _label_space(project, previous, embeddings, graph, metrics, progress, cancel)
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
            **({} if space is None else {"label_space": space}),
        )
    except BaseException as exc:
        _stopped(project, run, exc)
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


def _label_space(
    project: Project, previous: MapData | None, embeddings: Embeddings, graph, metrics: dict, progress, cancel
):
    """(coordinates or None, propagation graph or None) for a new map (``explorer.labels.space``):
    the previous map's when the kNN graph was reused from it, else fitted now; (None, None) for a
    collection too small for one."""
    from explorer.labels.space import label_space
    from explorer.neighbours.knn import KnnGraph

    if previous is not None and str(metrics.get("graph", "")).startswith("reused"):
        ids = project.load_run_array(previous.run_id, "label_indices")
        if ids is not None:
            metrics["label_graph"] = f"reused from map run {previous.run_id}"
            sims = project.load_run_array(previous.run_id, "label_similarities")
            return project.load_run_array(previous.run_id, "label_space"), KnnGraph(ids, sims, "label", None)
    found = label_space(embeddings.vectors, graph, progress, cancel)
    metrics["label_graph"] = found[1].index_kind if found is not None else "the kNN graph"
    return (None, None) if found is None else found


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


def near_duplicates(project: Project, threshold: float = 0.98) -> list[tuple[int, int, float]]:
    """Pairs of items on the current map whose cosine similarity is at least ``threshold``.

    Read off the map's kNN graph (no new search): ``(item_a, item_b, similarity)`` with item ids
    ``item_a < item_b``, most similar first. Raises WorkflowError when there is no map yet.
    """
    from explorer.neighbours.knn import KnnGraph
    from explorer.neighbours.knn import near_duplicates as pairs_in

    if not -1.0 <= threshold <= 1.0:
        raise WorkflowError(f"duplicate threshold must be a cosine similarity between -1 and 1, got {threshold}")
    graph_map = current_map(project)
    if graph_map is None:
        raise WorkflowError("no map yet: run `explorer map` first")
    pairs, sims = pairs_in(KnnGraph(graph_map.knn_indices, graph_map.knn_similarities, "stored", None), threshold)
    a, b = graph_map.item_ids[pairs[:, 0]], graph_map.item_ids[pairs[:, 1]]
    return [
        (int(min(x, y)), int(max(x, y)), float(s))
        for x, y, s in zip(a.tolist(), b.tolist(), sims.tolist(), strict=True)
    ]


@dataclass
class Quality:
    """Per item on the current map (arrays aligned with ``item_ids`` (N,) int64):
    ``uniqueness`` (N,) in [0, 1], ``1 - cosine similarity to the nearest other image`` (0: an
    exact twin exists); ``typicality`` (N,) in [0, 1], the mean similarity to its graph neighbours
    over the collection's highest (1: the heart of a dense region; low: an outlier);
    ``duplicate_group`` (N,) int64, the same number for images joined by near-duplicate pairs
    (cosine >= ``threshold``), -1 for an image without any."""

    item_ids: np.ndarray
    uniqueness: np.ndarray
    typicality: np.ndarray
    duplicate_group: np.ndarray


def quality(project: Project, threshold: float = 0.98) -> Quality:
    """Uniqueness, typicality and near-duplicate groups of every item, read off the current map's
    kNN graph (no new search)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    from explorer.labels.suggest import local_density
    from explorer.neighbours.knn import KnnGraph
    from explorer.neighbours.knn import near_duplicates as pairs_in

    graph_map = current_map(project)
    if graph_map is None:
        raise WorkflowError("no map yet: run `explorer map` first")
    graph = KnnGraph(graph_map.knn_indices, graph_map.knn_similarities, "stored", None)
    n = len(graph_map.item_ids)
    others = np.where(graph.indices[:, 1:] >= 0, graph.similarities[:, 1:], -1.0)
    nearest = others.max(axis=1) if others.shape[1] else np.full(n, -1.0)
    uniqueness = np.clip(1.0 - nearest, 0.0, 1.0)
    pairs, _ = pairs_in(graph, threshold)
    group = np.full(n, -1, np.int64)
    if len(pairs):
        links = sp.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, component = connected_components(links, directed=False)
        in_pair = np.zeros(n, bool)
        in_pair[pairs.ravel()] = True
        _, group[in_pair] = np.unique(component[in_pair], return_inverse=True)
    return Quality(graph_map.item_ids, uniqueness.astype(np.float32), local_density(graph).astype(np.float32), group)


# ---- propagate ----------------------------------------------------------------------------
@dataclass
class PropagationResult:
    """Pseudo-labels for the items of one map; ``class_ids`` are store class ids (-1 = none)."""

    map_run: int
    item_ids: np.ndarray
    class_ids: np.ndarray
    confidence: np.ndarray
    seeds: int
    calibration: Calibration | None = None
    calibration_due: bool = False  # the labels changed enough to fit the calibration again

    def estimated_right(self) -> float | None:
        """Expected share of all items whose label (human or pseudo) is right: the mean calibrated
        confidence, human labels counting 1 and unreached items 0; None while not calibrated."""
        if self.calibration is None or len(self.confidence) == 0:
            return None
        return float(np.where(self.class_ids >= 0, self.confidence, 0.0).mean())

    def summary(self) -> str:
        reached = int((self.class_ids >= 0).sum())
        if self.seeds == 0:
            return "no human labels yet: label a few images first"
        head = f"{reached:,} of {len(self.item_ids):,} items labelled from {self.seeds:,} human label(s)"
        right = self.estimated_right()
        if right is None:
            from explorer.labels.calibrate import MIN_CLASS_LABELS, MIN_HELD_OUT

            mean = float(self.confidence[self.class_ids >= 0].mean()) if reached else 0.0
            return (
                f"{head}; mean confidence {mean:.2f}, "
                f"not yet calibrated: needs {MIN_HELD_OUT} labels in classes with {MIN_CLASS_LABELS} or more"
            )
        wrong = (1.0 - right) * len(self.item_ids)
        return f"{head}; about {right:.1%} right (≈{wrong:,.0f} wrong), confidence {self.calibration.describe()}"


def _map_solver(project: Project):
    """(map run id, item ids (N,), cached Diffusion) of the current map; WorkflowError if none."""
    from explorer.labels.propagate import Diffusion, cached_diffusion
    from explorer.labels.space import NEIGHBOURS
    from explorer.neighbours.knn import KnnGraph

    run = project.latest_run("map")
    if run is None:
        raise WorkflowError("no map yet: run `explorer map` first")

    def solver() -> Diffusion:
        load = lambda name: project.load_run_array(run.id, name)  # noqa: E731
        label = load("label_indices")
        if label is not None:  # the label space's graph: weights already Gaussian, all neighbours
            return Diffusion(
                KnnGraph(label, load("label_similarities"), "label", None), power=1.0, neighbours=NEIGHBOURS
            )
        return Diffusion(KnnGraph(load("knn_indices"), load("knn_similarities"), "stored", None))

    # the file's identity in the key: a project re-created at the same place starts afresh
    stamp = (project.run_dir(run.id) / "knn_indices.npy").stat()
    key = (str(project.state_dir.resolve()), run.id, stamp.st_mtime_ns, stamp.st_ino)
    solver, item_ids = cached_diffusion(key, solver, lambda: project.load_run_array(run.id, "item_ids"))
    if solver.calibration_memo is None:  # a new process or map: the curve fitted last time, if any
        solver.calibration_memo = _stored_calibration(project, run.id)
    return run.id, item_ids, solver


CALIBRATION_NOTE = "confidence calibration"


def _stored_calibration(project: Project, map_run: int):
    """The calibration memo (labels, classes, Calibration) saved for ``map_run``, or None (none
    saved, another map's, or unreadable: then it is fitted again)."""
    import json

    from explorer.labels.calibrate import Calibration

    text = project.note(CALIBRATION_NOTE)
    try:
        data = json.loads(text) if text else None
        if not data or data["map_run"] != map_run:
            return None
        curve = Calibration.from_json(data["curve"]) if data["curve"] is not None else None
        return int(data["labels"]), int(data["classes"]), curve
    except (ValueError, KeyError, TypeError):
        return None


def _save_calibration(project: Project, map_run: int, memo) -> None:
    import contextlib
    import json
    import sqlite3

    labels, classes, curve = memo
    data = {"map_run": map_run, "labels": labels, "classes": classes, "curve": curve.to_json() if curve else None}
    # a store that cannot be written now: the curve stays in memory, and is fitted again next time
    with contextlib.suppress(ProjectError, sqlite3.Error):
        project.set_note(CALIBRATION_NOTE, json.dumps(data))


def _human_evidence(project: Project, item_ids: np.ndarray, class_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(seeds (N,) class column or -1, rejected (R, 2) (row, column)) for the map's rows."""
    human = np.array([(i, c) for i, (c, _source) in project.human_labels().items()], np.int64).reshape(-1, 2)
    seeds = np.full(len(item_ids), -1, np.int64)
    rows, found = rows_in(item_ids, human[:, 0])
    cols, known = rows_in(class_ids, human[found, 1])
    seeds[rows[known]] = cols
    rej = np.array(project.rejections(), np.int64).reshape(-1, 2)
    rows, found = rows_in(item_ids, rej[:, 0])
    cols, known = rows_in(class_ids, rej[found, 1])
    return seeds, np.stack([rows[known], cols], axis=1).reshape(-1, 2)


def compute_propagation(
    project: Project,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    *,
    rounds: int = 0,
    fit_calibration: bool = True,
) -> PropagationResult:
    """Propagate the human labels over the current map's kNN graph (nothing is written).

    The normalised graph is built once per map and kept in memory, and only classes whose
    human labels or rejections changed are solved again, so calling this after every click
    is cheap (see ``explorer.labels.propagate.Diffusion``). ``rounds`` > 0 adds that many
    pseudo-label rounds (``explorer.labels.rounds``) on the map's embeddings. Confidence is
    calibrated against hidden human labels (``explorer.labels.calibrate``); the fit costs about
    five propagations and is kept (in memory and in the project) until the labels change by a
    tenth. ``fit_calibration=False`` uses the kept one even when a new fit is due
    (``calibration_due`` says so; the window then runs :func:`calibrate` in the background and
    propagates again).
    """
    map_run, item_ids, solver = _map_solver(project)
    class_ids = np.array([c.id for c in project.classes()], np.int64)
    seeds, rejected = _human_evidence(project, item_ids, class_ids)
    n_seeds = int((seeds >= 0).sum())
    if n_seeds == 0:
        empty = np.full(len(seeds), -1, np.int64)
        return PropagationResult(map_run, item_ids, empty, np.zeros(len(seeds), np.float32), 0)
    result: Propagation = solver.run(seeds, len(class_ids), rejected, progress=progress, cancel=cancel)
    if rounds > 0:
        from explorer.labels.rounds import pseudo_label_rounds

        vectors = map_embeddings(project, map_run, len(item_ids))
        if vectors is None:
            raise WorkflowError("the map's embeddings are gone: run `explorer embed` and `explorer map` again")
        result = pseudo_label_rounds(vectors, result, seeds, rounds, rejected, progress=progress, cancel=cancel)
    predicted = np.where(result.predicted >= 0, class_ids[np.maximum(result.predicted, 0)], -1)
    # fitted on the diffusion alone (also under rounds, whose confidence has the same form)
    from explorer.labels.calibrate import calibrated, calibration_due, kept_calibration

    if fit_calibration:
        calibration = _fit_calibration(project, map_run, solver, seeds, len(class_ids), rejected, progress, cancel)
    else:
        calibration = kept_calibration(solver)
    due = calibration_due(solver, seeds, len(class_ids), rejected)
    confidence = calibrated(result, seeds, calibration)
    return PropagationResult(map_run, item_ids, predicted, confidence, n_seeds, calibration, due)


def _fit_calibration(
    project: Project, map_run: int, solver, seeds, n_classes, rejected, progress: ProgressFn, cancel: CancelToken | None
):
    from explorer.labels.calibrate import calibration_for

    progress(Progress("calibrate", 0, 1, "checking confidence against hidden labels"))
    kept = solver.calibration_memo
    calibration = calibration_for(solver, seeds, n_classes, rejected, cancel=cancel)
    if solver.calibration_memo is not kept:  # fitted now: kept for the next process too
        _save_calibration(project, map_run, solver.calibration_memo)
    progress(Progress("calibrate", 1, 1, "confidence calibrated" if calibration else "too few labels to calibrate"))
    return calibration


def calibrate(project: Project, progress: ProgressFn = no_progress, cancel: CancelToken | None = None):
    """Fit the confidence calibration for the current labels if due (see :func:`compute_propagation`);
    returns it (None with too few labels). Nothing is written: the next propagation applies it."""
    map_run, item_ids, solver = _map_solver(project)
    class_ids = np.array([c.id for c in project.classes()], np.int64)
    seeds, rejected = _human_evidence(project, item_ids, class_ids)
    return _fit_calibration(project, map_run, solver, seeds, len(class_ids), rejected, progress, cancel)


def save_propagation(project: Project, result: PropagationResult) -> None:
    """Make ``result`` the project's pseudo-labels (replacing the previous ones)."""
    project.save_pseudo_labels(result.item_ids, result.class_ids, result.confidence)


def propagate(
    project: Project, progress: ProgressFn = no_progress, cancel: CancelToken | None = None, *, rounds: int = 0
) -> PropagationResult:
    """Compute and save pseudo-labels with confidence for every item of the current map."""
    result = compute_propagation(project, progress, cancel, rounds=rounds)
    save_propagation(project, result)
    return result


# ---- what to label next ---------------------------------------------------------------------
@dataclass
class Suggestions:
    """Items to label next, best first: ``item_ids`` (n,) int64, their collection-relative
    ``paths`` and ``reasons`` (why each was picked, in words); ``cold_start`` is True when nothing
    was labelled yet (typical items of distinct clusters)."""

    item_ids: np.ndarray
    paths: list[str]
    cold_start: bool
    reasons: list[str] = field(default_factory=list)


def suggest(project: Project, n: int = 5) -> Suggestions:
    """The ``n`` unlabelled items on the current map whose label would help most (see
    ``explorer.labels.suggest``): least confident, in dense regions, far from human labels; with
    no labels yet, a diverse cover of the collection. Fast after the first call on a map."""
    from explorer.labels.suggest import suggest_why as rank

    if n < 1:
        raise WorkflowError(f"the number of suggestions must be at least 1, got {n}")
    map_run, item_ids, solver = _map_solver(project)
    vectors = map_embeddings(project, map_run, len(item_ids))
    if vectors is None:
        raise WorkflowError("the map's embeddings are gone: run `explorer embed` and `explorer map` again")
    class_ids = np.array([c.id for c in project.classes()], np.int64)
    seeds, rejected = _human_evidence(project, item_ids, class_ids)
    labelled = np.zeros(len(item_ids), bool)
    rows, _found = rows_in(item_ids, np.array(list(project.human_labels()), np.int64))
    labelled[rows] = True
    propagation = solver.run(seeds, len(class_ids), rejected) if (seeds >= 0).any() else None
    distance = solver.distance_to(np.flatnonzero(labelled)) if labelled.any() else None
    space = project.load_run_array(map_run, "label_space")  # None on maps too small for one
    picks, why = rank(solver.graph, vectors, propagation, labelled, n, distance=distance, clusters=space)
    paths = project.paths_by_id()
    chosen = item_ids[picks]
    names = [c.name for c in project.classes()]
    reasons = [_reason(kind, row, propagation, names) for kind, row in zip(why, picks.tolist(), strict=True)]
    return Suggestions(chosen, [paths[int(i)] for i in chosen], not labelled.any(), reasons)


def _reason(kind: str, row: int, propagation, names: list[str]) -> str:
    """Why suggestion ``row`` was picked, in the words the window and the CLI show."""
    from explorer.labels.suggest import EXPLORE, TYPICAL

    if kind == TYPICAL:
        return "typical of a group that has no label yet"
    if kind == EXPLORE or propagation is None or propagation.predicted[row] < 0:
        return "far from every label"
    top = np.argsort(-propagation.scores[row])[:2]
    a, b = (names[c] if c < len(names) else "?" for c in top)
    share = propagation.scores[row, top]
    return f"torn between {a} ({share[0]:.0%}) and {b} ({share[1]:.0%})"


# ---- label mistakes --------------------------------------------------------------------------
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

    map_run, item_ids, solver = _map_solver(project)
    classes = project.classes()
    class_ids = np.array([c.id for c in classes], np.int64)
    seeds, rejected = _human_evidence(project, item_ids, class_ids)
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


# ---- query by an image ------------------------------------------------------------------------
@dataclass
class Similar:
    """The items most like a query image, most similar first: ``item_ids`` (n,) int64, their
    collection-relative ``paths`` and cosine ``similarities`` (n,) float32; ``encoder`` names what
    embedded the query (the map's own embedding)."""

    item_ids: np.ndarray
    paths: list[str]
    similarities: np.ndarray
    encoder: str


def similar(project: Project, file: Path, n: int = 50, device: str = "auto") -> Similar:
    """The ``n`` items on the current map nearest to the image ``file`` (from anywhere), embedded
    as the map's embeddings were (the same encoder and image size, or raw pixels)."""
    if n < 1:
        raise WorkflowError(f"the number of similar images must be at least 1, got {n}")
    run = project.latest_run("map")
    if run is None:
        raise WorkflowError("no map yet: run `explorer map` first")
    item_ids = project.load_run_array(run.id, "item_ids")
    vectors = map_embeddings(project, run.id, len(item_ids), mmap=True)
    if vectors is None:
        raise WorkflowError("the map's embeddings are gone: run `explorer embed` and `explorer map` again")
    embed_run = run.params["embed_run"]
    query = _embed_one(project, project.run(embed_run).params, Path(file), device)
    sims = _cosine_to(query, vectors)
    top = np.argpartition(-sims, min(n, len(sims)) - 1)[:n] if n < len(sims) else np.arange(len(sims))
    top = top[np.lexsort((top, -sims[top]))]
    paths = project.paths_by_id()
    chosen = item_ids[top]
    encoder = str(project.run(embed_run).params.get("encoder", ""))
    return Similar(chosen, [paths[int(i)] for i in chosen], sims[top].astype(np.float32), encoder)


def _embed_one(project: Project, params: dict, file: Path, device: str) -> np.ndarray:
    """(D,) the vector of ``file`` as the embed run with ``params`` made its vectors."""
    described = str(params.get("encoder", ""))
    if described.startswith("imported from"):
        raise WorkflowError(
            "the map's embeddings were imported from a file: there is no encoder to embed a new image with"
        )
    if described == PIXELS:
        model, size = None, PIXEL_SIZE
    else:
        spec = described.removeprefix("train run ")
        model, _ = resolve_encoder(project, spec, device, params.get("image_size"))
        size = model.image_size
    try:
        image = load_rgb_array(file, size)
    except (ImageError, OSError) as exc:
        raise WorkflowError(f"cannot read the image {file}: {exc}") from None
    if model is None:
        return pixel_vectors(image[None])[0]
    return np.asarray(model.embed(image[None], batch_size=1), np.float32)[0]


def _cosine_to(query: np.ndarray, vectors: np.ndarray, block: int = 65536) -> np.ndarray:
    """(N,) cosine similarity of each row of ``vectors`` (N, D), read a block at a time, to ``query``."""
    q = np.asarray(query, np.float32)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    out = np.empty(len(vectors), np.float32)
    for start in range(0, len(vectors), block):
        rows = np.asarray(vectors[start : start + block], np.float32)
        norms = np.maximum(np.linalg.norm(rows, axis=1), 1e-12)
        out[start : start + len(rows)] = rows @ q / norms
    return out


# ---- labels from a file ----------------------------------------------------------------------
def import_labels(project: Project, file: Path, as_source: str | None = None) -> ImportReport:
    """Set human labels from a manifest (see ``explorer.exchange.manifest.import_labels``).

    A file that is not readable CSV, or from which not one label could be taken (every row names
    a file outside the collection or has an empty label), is an error and changes nothing.
    """
    import csv

    try:
        report = manifest.import_labels(project, file, as_source)
    except csv.Error as exc:  # a field over the csv module's size limit, ...
        raise ManifestError(f"{file}: not a readable CSV file ({exc})") from None
    if not report.imported and not report.unchanged:
        raise ManifestError(f"{file}: no labels to import: {report.summary()}")
    return report


# ---- everything at once ---------------------------------------------------------------------
def run_all(
    project: Project,
    config: TrainConfig | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
) -> int:
    """Scan, train (unless a trained encoder exists), embed and map; returns the map run id."""
    scan(project, progress, cancel)
    if not trained_runs(project):
        train(project, config, progress=progress, cancel=cancel)
    embed(project, progress=progress, cancel=cancel)
    return make_map(project, progress=progress, cancel=cancel)


# ---- status -------------------------------------------------------------------------------
def status_text(project: Project) -> str:
    items = project.item_count(readable_only=False)  # a count, not a million Item objects
    unreadable = project.unreadable()
    counts = project.label_counts()
    lines = [
        f"collection: {project.root}",
        f"state:      {project.state_dir}",
        f"items:      {items} ({len(unreadable)} unreadable)",
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
