"""Train: a self-supervised encoder on the collection, or one fine-tuned with the labels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.store import HUMAN_SOURCES, Project
from explorer.store.current import trained_runs
from explorer.workflow.encoders import resolve_encoder
from explorer.workflow.evaluation import known_labels
from explorer.workflow.runs import WorkflowError, record_stop
from explorer.workflow.scanning import load_images

if TYPE_CHECKING:
    from explorer.ssl.encoder import Encoder
    from explorer.ssl.trainer import TrainConfig


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
            if config.epochs is not None or config.max_minutes is not None:  # a limit given replaces the run's
                saved.epochs = None if config.epochs is None else max(config.epochs, saved.epochs or 0)
                saved.max_minutes = config.max_minutes
            saved.processes = config.processes  # a checkpoint resumes on any number of processes
        config = saved
    else:
        config = config or TrainConfig()
    config.validate()
    if eval_labels is not None:
        known_labels(project, eval_labels)  # a bad truth file fails now, before any run or decoding
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
        record_stop(project, run, exc)
        raise
    last = _last_epoch(result.history)
    project.finish_run(
        run,
        "done",
        {**_run_metrics(result, len(images_ids), readable if sample is not None else None), **last},
    )
    return run


def _run_metrics(result, images: int, sampled_from: int | None) -> dict:
    """What a finished training run records: epochs, why it stopped, precision, images, and the
    trainer's notes (a halved batch, a step that could not be compiled) so they outlive the bar."""
    return {
        "epochs_done": result.epochs_done,
        "stopped_by": result.stopped_by,
        "precision": result.precision,
        "images": int(images),
        **({"sampled_from": sampled_from} if sampled_from is not None else {}),
        **({"notes": "; ".join(result.notes)} if result.notes else {}),
    }


EVAL_SAMPLE = 2000  # labelled images embedded after each epoch: ~1 s on a CPU for the small CNN


def _last_epoch(history: list[dict]) -> dict:
    """The last epoch's figures for the run's metrics; its time as ``epoch_seconds``, since a bare
    ``seconds`` beside a run reads as the whole run's (the run's own start and end say that)."""
    last = dict(history[-1]) if history else {}
    if "seconds" in last:
        last["epoch_seconds"] = last.pop("seconds")
    return last


def _knn_during_training(
    project: Project, ids: np.ndarray, images: np.ndarray, eval_labels: Path | None, k: int = 20
) -> Callable | None:
    """The trainer's ``on_epoch``: kNN accuracy (cosine, leave-one-out) of the encoder on up to
    EVAL_SAMPLE images with known labels, or None when fewer than k+1 images in 2 classes have one.
    Few labels a class lower k to half the average class size."""
    known, _ = known_labels(project, eval_labels)
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
        record_stop(project, run, exc)
        raise
    last = _last_epoch(result.history)
    metrics = {
        **_run_metrics(result, len(ids), readable if sample is not None else None),
        "finetuned_from": description,
        **counts,
        **last,
    }
    project.finish_run(run, "done", metrics)
    return run
