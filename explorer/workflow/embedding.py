"""Embed: every image as a vector, streamed into a file; and finding the images most like any
image file by the same vectors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer.images.decode import ImageError, load_rgb_array
from explorer.images.pool import decode_rows, decode_workers
from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.store import Project
from explorer.store.current import map_embeddings
from explorer.workflow.encoders import PIXEL_SIZE, PIXELS, apply_views, pixel_vectors, resolve_encoder
from explorer.workflow.evaluation import check_against_pixels
from explorer.workflow.mapping import map_whitening
from explorer.workflow.runs import WorkflowError, record_stop

if TYPE_CHECKING:
    from explorer.ssl.encoder import Encoder


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
    views: int | None = None,
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

    An encoder trained here embeds each image as the mean of ``views`` views of its training
    recipe (default ``ssl.encoder.views_for``: several for small colour images); WorkflowError
    for ``views`` above 1 with any other encoder (there is no recipe to draw them from).
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
    apply_views(model, len(files), views)
    size = PIXEL_SIZE if model is None else model.image_size
    dim = size * size * 3 if model is None else model.feature_dim
    key = _encoder_key(model)
    params = {"encoder": description, "encoder_key": key, "dtype": target.name}
    if model is not None:
        params |= {"backbone": model.name, "image_size": model.image_size}
        if model.views > 1:  # what `similar` embeds an outside image with, to land in the same space
            params |= {"views": model.views, "grayscale": model.grayscale}
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
        record_stop(project, run, exc)
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
    """What makes two embed runs' vectors interchangeable: the architecture, the input size, a
    hash of every weight (a training run resumed later writes new weights under the same id) and
    the number of views."""
    import hashlib

    if model is None:
        return f"pixels:{PIXEL_SIZE}"
    import torch

    digest = hashlib.sha256(f"{model.name}:{model.image_size}".encode())
    for name, tensor in sorted(model.backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    views = f":views={model.views}" if model.views > 1 else ""
    return f"{model.name}:{model.image_size}:{digest.hexdigest()[:32]}{views}"


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
    whitening = map_whitening(project, run.id)
    if whitening is not None:  # the map's vectors are whitened: so is the query
        query = whitening.apply(query[None])[0]
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
        if int(params.get("views", 1)) > 1:
            model.use_views(int(params["views"]), bool(params.get("grayscale")))
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
