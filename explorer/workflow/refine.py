"""Refine with labels: the encoder learns from the labels people gave and the ones they spread to.

The seeds' Noisy Student loop (Xie et al. 2020, after Lee 2013's pseudo-labels): each round
propagates the human labels over the current map, fine-tunes the current encoder on the human
labels plus the most confident pseudo-labels of every class (hard labels; the same share of each
class, so a big class does not swallow a small one), with the training augmentations as the noise
and the self-supervised loss kept beside the supervised one as a regulariser (each step's
supervised batch is drawn from the labelled images alone, as FixMatch's labelled stream: Sohn et al.
2020), then embeds every image with the new encoder, maps again and propagates again. Errors the graph made are partly
unlearnt because the encoder sees many confident, correct examples of each class under heavy
augmentation, and the next graph is built from features that separate the classes.

With enough human labels (``MIN_CHECKED``), a fifth of each class's labels is set aside for the
whole run (with many classes of few labels, one from each of some more: :func:`held_out_rows`):
never trained on and never a seed while checking. After every round the propagation
from the rest is scored on them; when a round does worse than the best so far, the loop stops and
the best round's encoder is made current again (its vectors and map are reused, not recomputed). A
round that ties is kept: a check of a few dozen labels often cannot tell two encoders apart, and
undoing ties threw gains away (mnist-cluttered, 300 labels: a round that made 54 % -> 64 % of the
collection right tied on its 60 checks and was undone).
With fewer labels it runs the rounds asked for: there is nothing honest to check against.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from explorer.jobs import Cancelled, CancelToken, Progress, ProgressFn, no_progress
from explorer.store import Project
from explorer.store.current import current_embeddings
from explorer.store.ids import rows_in
from explorer.workflow.embedding import embed
from explorer.workflow.encoders import PIXELS, resolve_encoder
from explorer.workflow.labelling import (
    TRAINED_LABELS,
    PropagationResult,
    human_evidence,
    map_solver,
    propagate,
    unseen_labels,
)
from explorer.workflow.mapping import make_map
from explorer.workflow.runs import WorkflowError
from explorer.workflow.training import train_with_labels

ROUNDS = 2
MAX_MINUTES = 6.0
"""Default training budget of a whole refine on a CPU (each round gets its share); embedding and
mapping come on top. A GPU has no time budget by default."""
EPOCHS = 20
"""Epochs a round at most (what a GPU gets through with no budget), but at least ``MIN_STEPS``
optimiser steps: a small collection's epoch is a step or two."""
MIN_STEPS = 300
PSEUDO_SHARE = 0.6
"""Share of each class's pseudo-labels (the most confident) that the encoder is trained on."""
PSEUDO_MIN_RIGHT = 0.8
"""Calibrated confidence a pseudo-label needs to be trained on (when there is a calibration)."""
MIN_CHECKED = 20
"""Human labels needed before a fifth of them is set aside to check each round."""
CHECK_FOLDS = 5
SPARE_FROM = 4
"""Labels a class with fewer than ``CHECK_FOLDS`` needs to give one to the check (it keeps 3 to
learn from), and then only to make up what the calibration needs (:func:`held_out_rows`)."""
MIN_HELD_OUT = 5
"""Labels a check needs, else there is none and every round is kept (as below ``MIN_CHECKED``): one
label right before refining can only stay right or turn wrong, so a check that small decides on a
coin's worth of evidence (shapes, 30 labels from `suggest`: 1 label set aside, every refine undone
while ties were)."""


@dataclass
class RefineRound:
    train_run: int
    embed_run: int
    map_run: int
    pseudo_labels: int
    held_out_accuracy: float | None


@dataclass
class RefineReport:
    """What refine did: ``rounds`` in order; ``kept`` the index of the round whose encoder is
    current (-1: the starting one); ``held_out`` labels checked; ``start_accuracy`` on them
    before the first round; ``stopped_by`` "rounds", "worse" or "cancelled"."""

    rounds: list[RefineRound] = field(default_factory=list)
    kept: int = -1
    held_out: int = 0
    start_accuracy: float | None = None
    stopped_by: str = "rounds"
    seconds: float = 0.0
    propagation: PropagationResult | None = None  # the pseudo-labels saved at the end

    def summary(self) -> str:
        lines = []
        if self.held_out:
            lines.append(
                f"held-out check: {self.held_out} human labels, {self.start_accuracy:.1%} right before refining"
            )
        else:
            lines.append(
                f"no held-out check yet (from {MIN_CHECKED} human labels, one in {CHECK_FOLDS} of each class's"
                f" is set aside, and {MIN_HELD_OUT} must be): every round is kept"
            )
        for k, r in enumerate(self.rounds):
            check = f", held-out {r.held_out_accuracy:.1%} right" if r.held_out_accuracy is not None else ""
            lines.append(
                f"round {k + 1}: trained on {r.pseudo_labels:,} pseudo-labels (train run {r.train_run}){check}"
            )
        kept = "the starting encoder" if self.kept < 0 else f"round {self.kept + 1}'s encoder"
        lines.append(f"current: {kept} (stopped: {self.stopped_by}, {self.seconds:.0f} s)")
        if self.propagation is not None:
            lines.append(self.propagation.summary())
        return "\n".join(lines)


def refine(
    project: Project,
    rounds: int = ROUNDS,
    max_minutes: float | None = None,
    progress: ProgressFn = no_progress,
    cancel: CancelToken | None = None,
    *,
    device: str = "auto",
    seed: int = 0,
) -> RefineReport:
    """Run up to ``rounds`` rounds of refining (see the module); returns what happened.

    ``max_minutes`` is the training budget of all rounds together (default ``MAX_MINUTES`` on a
    CPU, none on a GPU); a round stops after ``EPOCHS`` epochs in any case. Every step is a normal run (train,
    embed, map), so a cancelled refine leaves the last completed round current; the pseudo-labels
    are propagated and saved at the end. Raises WorkflowError when there is no map, no encoder to
    start from or fewer than two labelled classes.
    """
    from explorer.ssl.devices import pick_device
    from explorer.ssl.trainer import TrainConfig

    if rounds < 1:
        raise WorkflowError(f"--rounds must be at least 1 (got {rounds})")
    if max_minutes is not None and not max_minutes > 0:
        raise WorkflowError(f"--max-minutes must be a positive number (got {max_minutes})")
    started = time.perf_counter()
    spec = _current_encoder(project)
    start, description = resolve_encoder(project, None if spec == PIXELS else spec, device)
    if start is None:
        raise WorkflowError("refining needs an encoder: run `explorer train` first")
    map_run, item_ids, _solver = map_solver(project)
    class_ids = np.array([c.id for c in project.classes()], np.int64)
    seeds, rejected = human_evidence(project, item_ids, class_ids)
    if len(set(seeds[seeds >= 0].tolist())) < 2:
        raise WorkflowError("refining needs human labels in at least 2 classes: label a few images first")
    checked = item_ids[held_out_rows(seeds, seed)]  # item ids: rows may differ between maps
    report = RefineReport(held_out=len(checked))
    if len(checked):
        report.start_accuracy = _held_out_accuracy(project, checked)
    best = report.start_accuracy if report.start_accuracy is not None else -1.0
    best_spec = spec
    on_gpu = pick_device(device).type != "cpu"
    budget = max_minutes if max_minutes is not None else (None if on_gpu else MAX_MINUTES)
    try:
        for k in range(rounds):
            progress(Progress("refine", k, rounds, f"round {k + 1} of {rounds}"))
            label_of, pseudo = _round_labels(project, checked)
            config = TrainConfig(
                backbone=start.name,
                image_size=start.image_size,
                device=device,
                seed=seed + k,
                epochs=_epochs(project.item_count(), TrainConfig(device=device)),
                max_minutes=None if budget is None else budget / rounds,
            )
            keep = np.fromiter(label_of, np.int64, count=len(label_of))
            counts = {
                "human_labels": int(len(label_of) - pseudo),
                "pseudo_labels": pseudo,
                "refine_round": k + 1,
                "labels_seen": int((seeds >= 0).sum()),  # checked ones included: what refine advice counts
            }
            train_run = train_with_labels(
                project, start, description, config, label_of, len(class_ids), keep, counts, 1.0, progress, cancel
            )
            taught = np.union1d(_taught(project, best_spec), np.setdiff1d(item_ids[seeds >= 0], checked))
            project.save_run_arrays(train_run, **{TRAINED_LABELS: taught.astype(np.int64)})
            embed_run = embed(project, str(train_run), device=device, progress=progress, cancel=cancel)
            map_run = make_map(project, progress=progress, cancel=cancel)
            accuracy = _held_out_accuracy(project, checked) if len(checked) else None
            report.rounds.append(RefineRound(train_run, embed_run, map_run, pseudo, accuracy))
            if accuracy is not None and accuracy < best:
                report.stopped_by = "worse"
                break
            best, best_spec, report.kept = (accuracy if accuracy is not None else best), str(train_run), k
            start, description = resolve_encoder(project, str(train_run), device)
    except Cancelled:
        report.stopped_by = "cancelled"
        raise
    finally:
        report.seconds = time.perf_counter() - started
    if report.stopped_by == "worse":  # the best round's vectors and map become current again
        progress(Progress("refine", rounds, rounds, "the last round did worse on the check: back to the best encoder"))
        embed(project, best_spec, device=device, progress=progress, cancel=cancel)
        make_map(project, progress=progress, cancel=cancel)
    report.propagation = propagate(project, progress, cancel)
    report.seconds = time.perf_counter() - started
    return report


def _epochs(items: int, config) -> int:
    """Epochs a round: ``EPOCHS``, or more when that would be fewer than ``MIN_STEPS`` steps."""
    from explorer.ssl.devices import pick_device
    from explorer.ssl.trainer import default_batch_size

    batch = min(config.batch_size or default_batch_size(pick_device(config.device)), max(items, 1))
    return max(EPOCHS, -(-MIN_STEPS // max(1, items // batch)))


def held_out_rows(seeds: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rows (sorted) of the human labels set aside for checking: every ``CHECK_FOLDS``-th of each
    class's labels in a seeded random order (classes with fewer than ``CHECK_FOLDS`` keep all
    theirs); none below ``MIN_CHECKED`` labels or when fewer than ``MIN_HELD_OUT`` would be set
    aside.

    Where that sets aside fewer than the calibration needs (``calibrate.MIN_HELD_OUT``) and one
    label from each of enough classes with ``SPARE_FROM`` labels or more would make it up, those
    are set aside too: the labels the new encoder never learned are what the summary's estimate of
    "right" checks against afterwards, and with too few it checks the encoder's memory instead
    (43 classes, 160 labels from `suggest`, a refine: 99.6 % said where 94.1 % was)."""
    from explorer.labels.calibrate import MIN_HELD_OUT as CALIBRATION_NEEDS

    labelled = np.flatnonzero(seeds >= 0)
    if len(labelled) < MIN_CHECKED:
        return np.zeros(0, np.int64)
    rng = np.random.default_rng(seed)
    out, spare = [], []
    for c in np.unique(seeds[labelled]):
        rows = rng.permutation(labelled[seeds[labelled] == c])
        if len(rows) >= CHECK_FOLDS:
            out.append(rows[::CHECK_FOLDS])
        elif len(rows) >= SPARE_FROM:
            spare.append(rows[0])
    short = CALIBRATION_NEEDS - sum(len(rows) for rows in out)
    if 0 < short <= len(spare):
        out.append(rng.permutation(np.array(spare, np.int64))[:short])
    rows = np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)
    return rows if len(rows) >= MIN_HELD_OUT else np.zeros(0, np.int64)


def _taught(project: Project, spec: str | None) -> np.ndarray:
    """Item ids whose human labels the encoder ``spec`` (a train run id) was fine-tuned on, its
    own starting encoders' included (each refine starts from the last)."""
    if spec is None or not spec.isdigit():
        return np.zeros(0, np.int64)
    seen = project.load_run_array(int(spec), TRAINED_LABELS)
    return np.zeros(0, np.int64) if seen is None else np.asarray(seen, np.int64)


def _current_encoder(project: Project) -> str | None:
    """What the current map's vectors came from, as ``embed`` takes it: a train run's id, a file, a
    pretrained spec or ``pixels``; None when unknown (the latest trained encoder)."""
    embeddings = current_embeddings(project)
    if embeddings is None:
        raise WorkflowError("no embeddings yet: run `explorer embed` and `explorer map` first")
    used = str(project.run(embeddings.run_id).params.get("encoder", ""))
    if used.startswith("train run "):
        return used.removeprefix("train run ")
    return used or None


def _evidence(project: Project, hidden_items: np.ndarray):
    """(solver, item ids, seeds, rejected, hidden rows) on the current map, with the human labels of
    ``hidden_items`` (and their own rejections) taken out of seeds and rejected."""
    _, item_ids, solver = map_solver(project)
    class_ids = np.array([c.id for c in project.classes()], np.int64)
    seeds, rejected = human_evidence(project, item_ids, class_ids)
    rows, _found = rows_in(item_ids, hidden_items)
    truth = seeds[rows].copy()
    seeds[rows] = -1
    rejected = rejected[~np.isin(rejected[:, 0], rows)]
    return solver, item_ids, seeds, rejected, rows, truth, len(class_ids)


def _held_out_accuracy(project: Project, checked_items: np.ndarray) -> float:
    """Share of the checked human labels that propagation from the other human labels gets right
    on the current map."""
    solver, _ids, seeds, rejected, rows, truth, classes = _evidence(project, checked_items)
    result = solver.run_apart(seeds, classes, rejected)
    return float((result.predicted[rows] == truth).mean()) if len(rows) else 0.0


def _round_labels(project: Project, checked_items: np.ndarray) -> tuple[dict[int, tuple[int, float]], int]:
    """(item id -> (class index, weight) to train on, how many of them are pseudo-labels).

    Human labels (less the checked ones) weigh 1. Pseudo-labels, propagated from those human
    labels: of each class's, the ``PSEUDO_SHARE`` most confident; when the human labels are enough
    to calibrate the confidence, only those expected right at least ``PSEUDO_MIN_RIGHT`` of the
    time, each weighted by that expectation (a weak map's guesses would otherwise teach the
    encoder its own mistakes: on the shapes collection they made refine worse than no refine)."""
    from explorer.labels.calibrate import calibrated, fit_calibration, held_out_checks

    solver, item_ids, seeds, rejected, _rows, _truth, classes = _evidence(project, checked_items)
    result = solver.run_apart(seeds, classes, rejected)
    # fitted here, not through the solver's kept curve: these seeds lack the checked labels; and on
    # labels an earlier refine did not teach, where there are enough
    checkable = unseen_labels(project, project.latest_run("map").id, item_ids)
    checks = held_out_checks(solver, seeds, classes, rejected, checkable=checkable)
    calibration = fit_calibration(checks.score, checks.right, classes)
    expected = calibrated(result, seeds, calibration) if calibration is not None else None
    chosen = np.zeros(len(seeds), bool)
    for c in range(classes):
        rows = np.flatnonzero((result.predicted == c) & (seeds < 0))
        if expected is not None:
            rows = rows[expected[rows] >= PSEUDO_MIN_RIGHT]
        take = int(round(PSEUDO_SHARE * len(rows)))
        chosen[rows[np.argsort(-result.confidence[rows], kind="stable")[:take]]] = True
    weight = np.ones(len(seeds)) if expected is None else expected
    out = {int(item_ids[r]): (int(seeds[r]), 1.0) for r in np.flatnonzero(seeds >= 0)}
    out |= {int(item_ids[r]): (int(result.predicted[r]), float(weight[r])) for r in np.flatnonzero(chosen)}
    return out, int(chosen.sum())
