"""Evaluate: how well embeddings group the images people (or a truth file) labelled, against
raw pixels and an untrained encoder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer.jobs import CancelToken, ProgressFn, no_progress
from explorer.store import Project
from explorer.store.current import current_embeddings
from explorer.store.ids import rows_in
from explorer.workflow.encoders import PIXEL_SIZE, pixel_vectors
from explorer.workflow.runs import WorkflowError, record_stop
from explorer.workflow.scanning import load_images

if TYPE_CHECKING:
    from explorer.ssl.evaluate import EvaluationReport


def known_labels(project: Project, truth_csv: Path | None) -> tuple[dict[int, str], int]:
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


MIN_CHECK_LABELS = 20
"""Human labels (in two classes or more) needed before a new encoder is checked against raw pixels."""


def check_against_pixels(project: Project, run: int, progress: ProgressFn = no_progress, cancel=None) -> dict | None:
    """kNN accuracy (leave-one-out, cosine) of embed run ``run``'s vectors and of raw pixels on the
    human labels, with the margin by which pixels must win to count (two standard errors of the
    difference, at least 0.02); None with fewer than ``MIN_CHECK_LABELS`` labels in 2 classes."""
    from explorer.neighbours.whiten import fit_whitening, whitens
    from explorer.ssl.evaluate import knn_accuracy

    known, _ = known_labels(project, None)
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
    mine = np.asarray(vectors[rows], np.float32)
    if whitens(str(project.run(run).params.get("encoder", ""))):  # as the map will use them
        whitening = fit_whitening(vectors)
        mine = mine if whitening is None else whitening.apply(mine)
    encoder = knn_accuracy(mine, labels, k)
    pixels = knn_accuracy(pixel_vectors(small[[order[int(i)] for i in items]]), labels, k)
    p = (encoder + pixels) / 2
    margin = max(0.02, 2 * float(np.sqrt(2 * p * (1 - p) / len(items))))
    return {
        "labels": int(len(items)),
        "encoder": round(encoder, 4),
        "pixels": round(pixels, 4),
        "margin": round(margin, 4),
    }


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
    known, given = known_labels(project, truth_csv)
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
        record_stop(project, run, exc)
        raise
    project.finish_run(run, "done", report.metrics())
    return report
