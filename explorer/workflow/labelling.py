"""Label: propagate the people's labels over the current map with a calibrated confidence, say
what to label next, and take labels from a file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer.exchange import manifest
from explorer.exchange.manifest import ImportReport, ManifestError
from explorer.jobs import CancelToken, Progress, ProgressFn, no_progress
from explorer.store import HUMAN_SOURCES, Project, ProjectError
from explorer.store.current import map_bridge, map_embeddings
from explorer.store.ids import rows_in
from explorer.workflow.runs import WorkflowError

if TYPE_CHECKING:
    from explorer.labels.calibrate import Calibration
    from explorer.labels.propagate import Propagation


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
    advice: str = ""  # what would help next, in words (see :func:`refine_advice`)
    unchecked_classes: int = 0  # classes with labels, too few (< MIN_CLASS_LABELS) to be checked
    unseen_share: float = 0.0  # of the collection, likely in classes with no label (calibrate.unseen_share)

    def estimated_right(self) -> float | None:
        """Expected share of all items whose label (human or pseudo) is right: the mean calibrated
        confidence, human labels counting 1 and unreached items 0; None while not calibrated."""
        if self.calibration is None or len(self.confidence) == 0:
            return None
        return float(np.where(self.class_ids >= 0, self.confidence, 0.0).mean())

    def right_range(self) -> tuple[float, float] | None:
        """(low, high): where the share right likely lies (``calibrate.LEVEL``) given how many
        hidden labels the estimate rests on; None while not calibrated. At 50 labels it spans
        about ten points on a good map, twenty on a weak one: fewer checks cannot say more."""
        right = self.estimated_right()
        if right is None:
            return None
        from explorer.labels.calibrate import interval

        checks = self.calibration.effective if self.calibration.effective is not None else self.calibration.held_out
        return interval(right, checks)

    def summary(self) -> str:
        text = self._summary()
        return f"{text}\n{self.advice}" if self.advice else text

    def _summary(self) -> str:
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
        from explorer.labels.calibrate import LEVEL

        wrong = (1.0 - right) * len(self.item_ids)
        low, high = self.right_range()
        text = (
            f"{head}; about {right:.1%} right ({low:.1%} to {high:.1%} at {LEVEL:.0%} certainty; ≈{wrong:,.0f} wrong),"
            f" confidence {self.calibration.describe()}"
        )
        if self.unseen_share > 0:
            lone = round(self.unseen_share * self.seeds)
            text += (
                f"; {lone} class(es) have a single label, so about {self.unseen_share:.0%} of the items may be"
                " in classes with no label yet (allowed for above)"
            )
        if self.unchecked_classes:
            from explorer.labels.calibrate import MIN_CLASS_LABELS

            # their pseudo-labels get the checked classes' curve; on the glyphs collection (43
            # classes, 50 labels, 21 of 28 classes unchecked) that ran 30 points high
            text += (
                f"; {self.unchecked_classes} class(es) with fewer than {MIN_CLASS_LABELS} labels are not"
                " checked, so this may run high"
            )
        return text


def map_solver(project: Project):
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
            bridge = map_bridge(project, run.id)
            return Diffusion(
                KnnGraph(label, load("label_similarities"), "label", None),
                power=1.0,
                neighbours=NEIGHBOURS,
                bridge=None if bridge is None else KnnGraph(*bridge, "bridge", None),
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


def human_evidence(project: Project, item_ids: np.ndarray, class_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    map_run, item_ids, solver = map_solver(project)
    class_ids = np.array([c.id for c in project.classes()], np.int64)
    seeds, rejected = human_evidence(project, item_ids, class_ids)
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
    from explorer.labels.calibrate import (
        MIN_CLASS_LABELS,
        calibrated,
        calibration_due,
        kept_calibration,
        unseen_share,
    )

    if fit_calibration:
        calibration = _fit_calibration(
            project, map_run, item_ids, solver, seeds, len(class_ids), rejected, progress, cancel
        )
    else:
        calibration = kept_calibration(solver)
    due = calibration_due(solver, seeds, len(class_ids), rejected)
    disputed = None
    if calibration is not None and calibration.disputed is not None:
        disputed = _disputed(project, map_run, solver, seeds, result.predicted, len(class_ids), rejected)
    unseen = unseen_share(seeds) if calibration is not None else 0.0
    confidence = calibrated(result, seeds, calibration, disputed, unseen)
    advice = refine_advice(project, map_run, n_seeds)
    per_class = np.bincount(seeds[seeds >= 0], minlength=len(class_ids))
    unchecked = int(((per_class > 0) & (per_class < MIN_CLASS_LABELS)).sum())
    return PropagationResult(
        map_run, item_ids, predicted, confidence, n_seeds, calibration, due, advice, unchecked, unseen
    )


def _disputed(project: Project, map_run: int, solver, seeds, predicted, n_classes, rejected) -> np.ndarray | None:
    """(N,) bool: pseudo-labels a classifier on the human labels disagrees with
    (``explorer.labels.dispute``), or None without the map's embeddings.

    The classifier's choices are kept on the solver and made again only when the labels changed as
    much as a calibration waits for (``calibrate.labels_changed``), as the disputed curve does: at
    1M items, fitting and applying it took about 5 s a click, against 2.2 s for the propagation."""
    from explorer.labels.calibrate import evidence, labels_changed
    from explorer.labels.dispute import disputed_by, second_opinion

    memo = solver.opinion_memo
    if memo is None or labels_changed(memo, seeds, n_classes, rejected):
        vectors = map_embeddings(project, map_run, len(seeds), mmap=True)
        if vectors is None:
            return None
        memo = (evidence(seeds, rejected), n_classes, second_opinion(vectors, predicted, seeds >= 0)[1])
        solver.opinion_memo = memo
    return disputed_by(memo[2], predicted)


ADVISE_FROM = 20
"""Human labels before refining is advised (``refine`` sets a fifth aside to check its rounds on
from 20 on; with fewer it cannot tell a worse encoder from a better one)."""


def refine_advice(project: Project, map_run: int, labels: int) -> str:
    """A line advising ``refine`` when the map comes from a trained encoder and the human labels
    (``labels``) are at least ``ADVISE_FROM`` and twice what the last refine (kept or undone) had;
    else "".

    Doubling keeps the cost of refining (minutes) in step with what it gains. On the shapes
    collection (benchmarks/README.md) refining at 20, 40, 80 and 160 labels made 85 % right at 300
    labels, against 63 % for refines at 30, 100 and 200, and 51 % for none."""
    if labels < ADVISE_FROM:
        return ""
    runs = project.runs()  # one read: this runs after every click in the window
    if map_encoder_run(project, map_run, runs) is None:
        return ""  # raw pixels or a loaded encoder: refine starts from a trained one
    # the labels at the last refine, kept or undone: after one that did not help, wait for twice as many
    refines = [r.metrics for r in runs if r.kind == "train" and "refine_round" in r.metrics]
    last = refines[-1] if refines else {}
    seen = int(last.get("labels_seen", last.get("human_labels", 0)))  # older refines lack labels_seen
    if labels < 2 * seen:
        return ""
    since = f"the last refine had {seen:,}" if seen else "no refine yet"
    return f"refine with labels could help: {labels:,} human labels, {since} (`explorer refine`, Build > Refine with labels)"


def map_encoder_run(project: Project, map_run: int, runs=None):
    """The training run whose encoder made map ``map_run``'s vectors, or None (raw pixels, a loaded
    encoder, a run that is gone); ``runs``: ``project.runs()`` when the caller has read them."""
    by_id = {r.id: r for r in (project.runs() if runs is None else runs)}
    mapped = by_id.get(map_run)
    embedded = by_id.get(mapped.params.get("embed_run", -1)) if mapped is not None else None
    encoder = str(embedded.params.get("encoder", "")) if embedded is not None else ""
    number = encoder.removeprefix("train run ")
    return by_id.get(int(number)) if encoder.startswith("train run ") and number.isdigit() else None


TRAINED_LABELS = "trained_labels"
"""Run array of a training run: the item ids whose human labels its encoder learned from (refine)."""


def unseen_labels(project: Project, map_run: int, item_ids: np.ndarray) -> np.ndarray | None:
    """(N,) bool over the map's rows: not among the human labels the map's encoder was fine-tuned
    on; None when it learned from none (every label is a fair check)."""
    trained = map_encoder_run(project, map_run)
    seen = project.load_run_array(trained.id, TRAINED_LABELS) if trained is not None else None
    if seen is None or not len(seen):
        return None
    rows, _found = rows_in(item_ids, np.asarray(seen, np.int64))
    out = np.ones(len(item_ids), bool)
    out[rows] = False
    return out


def _fit_calibration(
    project: Project,
    map_run: int,
    item_ids: np.ndarray,
    solver,
    seeds,
    n_classes,
    rejected,
    progress: ProgressFn,
    cancel: CancelToken | None,
):
    from explorer.labels.calibrate import calibration_due, calibration_for

    progress(Progress("calibrate", 0, 1, "checking confidence against hidden labels"))
    kept = solver.calibration_memo
    checkable = vectors = None  # not fitted again: no need to read which labels the encoder saw
    if calibration_due(solver, seeds, n_classes, rejected):
        checkable = unseen_labels(project, map_run, item_ids)
        # pseudo-labels a classifier on the labels disputes are checked apart (labels.dispute)
        vectors = map_embeddings(project, map_run, len(item_ids), mmap=True)
    calibration = calibration_for(
        solver, seeds, n_classes, rejected, cancel=cancel, checkable=checkable, embeddings=vectors
    )
    if solver.calibration_memo is not kept:  # fitted now: kept for the next process too
        _save_calibration(project, map_run, solver.calibration_memo)
    progress(Progress("calibrate", 1, 1, "confidence calibrated" if calibration else "too few labels to calibrate"))
    return calibration


def calibrate(project: Project, progress: ProgressFn = no_progress, cancel: CancelToken | None = None):
    """Fit the confidence calibration for the current labels if due (see :func:`compute_propagation`);
    returns it (None with too few labels). Nothing is written: the next propagation applies it."""
    map_run, item_ids, solver = map_solver(project)
    class_ids = np.array([c.id for c in project.classes()], np.int64)
    seeds, rejected = human_evidence(project, item_ids, class_ids)
    return _fit_calibration(project, map_run, item_ids, solver, seeds, len(class_ids), rejected, progress, cancel)


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
    map_run, item_ids, solver = map_solver(project)
    vectors = map_embeddings(project, map_run, len(item_ids))
    if vectors is None:
        raise WorkflowError("the map's embeddings are gone: run `explorer embed` and `explorer map` again")
    class_ids = np.array([c.id for c in project.classes()], np.int64)
    seeds, rejected = human_evidence(project, item_ids, class_ids)
    labelled = np.zeros(len(item_ids), bool)
    rows, _found = rows_in(item_ids, np.array(list(project.human_labels()), np.int64))
    labelled[rows] = True
    propagation = solver.run(seeds, len(class_ids), rejected) if (seeds >= 0).any() else None
    distance = solver.distance_to(np.flatnonzero(labelled)) if labelled.any() else None
    space = project.load_run_array(map_run, "label_space")  # None on maps too small for one
    strength = theirs = None  # a classifier on the labels, fitted once for the picks and the reasons
    if propagation is not None:
        from explorer.labels.dispute import second_opinion

        strength, theirs = second_opinion(vectors, propagation.predicted, labelled)
    picks, why = rank(
        solver.graph, vectors, propagation, labelled, n, distance=distance, clusters=space, dispute=strength
    )
    paths = project.paths_by_id()
    chosen = item_ids[picks]
    names = [c.name for c in project.classes()]
    reasons = [
        _reason(kind, row, propagation, names, None if theirs is None else int(theirs[row]))
        for kind, row in zip(why, picks.tolist(), strict=True)
    ]
    return Suggestions(chosen, [paths[int(i)] for i in chosen], not labelled.any(), reasons)


def _reason(kind: str, row: int, propagation, names: list[str], theirs: int | None = None) -> str:
    """Why suggestion ``row`` was picked, in the words the window and the CLI show; ``theirs``
    the class a classifier on the human labels gives a disputed one."""
    from explorer.labels.suggest import DISPUTED, EXPLORE, TYPICAL

    if kind == TYPICAL:
        return "typical of a group that has no label yet"
    if kind == EXPLORE or propagation is None or propagation.predicted[row] < 0:
        return "far from every label"
    if kind == DISPUTED:
        name = lambda c: names[c] if 0 <= c < len(names) else "?"  # noqa: E731
        other = "disagrees" if theirs is None else f"says {name(theirs)}"
        return f"the map says {name(propagation.predicted[row])}, a classifier on your labels {other}"
    top = np.argsort(-propagation.scores[row])[:2]
    a, b = (names[c] if c < len(names) else "?" for c in top)
    share = propagation.scores[row, top]
    return f"torn between {a} ({share[0]:.0%}) and {b} ({share[1]:.0%})"


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


def parse_sources(text: str | Sequence[str]) -> tuple[str, ...]:
    """'seed,accepted' -> ('seed', 'accepted'), with a clear error for unknown names."""
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    allowed = (*HUMAN_SOURCES, "pseudo")
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise WorkflowError(f"unknown label source(s) {', '.join(bad) or '(none)'}; choose from {','.join(allowed)}")
    return tuple(names)
