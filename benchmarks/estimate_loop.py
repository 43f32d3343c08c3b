"""The summary's estimate of "right" along the labelling loop, against the truth, before and now.

For each prepared suite project (``labelling_effort.py --prepare-only DIR``; copied, the original
is not touched) a simulated person labels ``suggest``'s picks, 10 a round, with their true class,
and propagates, up to 300 labels (``--first random``: the first 10 labels drawn at random, as a
person who starts from a few images they know). At 30 / 50 / 70 / 100 / 150 / 200 / 300 labels, on
the same labels, the estimate of how much of the collection is right
(``PropagationResult.estimated_right``: the mean calibrated confidence, human labels 1, with the
share of unlabelled classes taken off) is computed two ways:

- before: the curve over margin x reach (the graph distance to the nearest label), as the app did;
- now: the curve over the margin alone within the graph's reach (``calibrate.score``).

Printed: the truth (share of the export that is right), each estimate and its miss in points, the
ROC AUC of the calibrated confidence of the unlabelled items against right / wrong (how well it
ranks them: the review queue's order), and the range the summary gives beside its estimate
(``PropagationResult.right_range``) with whether the truth fell inside; at the end, the mean and
largest miss of each and how often the truth was inside the range.

Run: ``nice python benchmarks/estimate_loop.py --prepared DIR [--collections mnist ...] [--first random]``
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelling_effort import exported_accuracy, label, prepared_collections, prepared_parser  # noqa: E402

CHECKPOINTS = (30, 50, 70, 100, 150, 200, 300)


def estimates(project, truth: dict[str, str]) -> list[tuple[float, float]]:
    """[(estimate, ROC AUC) before, (estimate, ROC AUC) now] for the project's labels now."""
    from explorer.store.current import map_embeddings
    from explorer.workflow.labelling import human_evidence, map_solver

    map_run, item_ids, solver = map_solver(project)
    classes = project.classes()
    class_ids = np.array([c.id for c in classes], np.int64)
    seeds, rejected = human_evidence(project, item_ids, class_ids)
    vectors = np.asarray(map_embeddings(project, map_run, len(item_ids)))
    paths = project.paths_by_id()
    names = np.array([c.name for c in classes])
    y = np.array([truth[paths[int(i)]] for i in item_ids])
    return [estimates_for(solver, seeds, names, y, vectors, rejected, way) for way in ("before", "now")]


def margin_x_reach(propagation) -> np.ndarray:
    """The score the curve mapped before: margin x reach."""
    from explorer.labels.propagate import margin

    return margin(np.asarray(propagation.scores, np.float64)) * np.asarray(propagation.reach, np.float64)


def estimates_for(solver, seeds, names, y, vectors, rejected, way: str) -> tuple[float, float]:
    """(estimate of the share right, ROC AUC of the unlabelled items' confidence) for human labels
    ``seeds`` (N,) (classes ``names``; true names ``y`` (N,)) on ``solver``'s graph, as
    ``compute_propagation`` makes them, with the score of ``way``."""
    from sklearn.metrics import roc_auc_score

    from explorer.labels import calibrate
    from explorer.labels.dispute import second_opinion

    now = calibrate.score
    calibrate.score = margin_x_reach if way == "before" else now
    try:
        result = solver.run_apart(seeds, len(names), rejected)
        disputed = second_opinion(vectors, result.predicted, seeds >= 0)[0] > 0
        checks = calibrate.held_out_checks(solver, seeds, len(names), rejected, embeddings=vectors)
        curve = calibrate.fit_calibration(
            checks.score, checks.right, len(names), checks.disputed, checks.weight, checks.lone
        )
        if curve is None:
            return float("nan"), float("nan")
        confidence = calibrate.calibrated(result, seeds, curve, disputed, calibrate.unseen_share(seeds))
    finally:
        calibrate.score = now
    reached = result.predicted >= 0
    right = reached & (names[np.maximum(result.predicted, 0)] == y)
    rest = (seeds < 0) & reached
    auc = roc_auc_score(right[rest], confidence[rest]) if 0 < right[rest].mean() < 1 else float("nan")
    return float(np.where(reached, confidence, 0.0).mean()), float(auc)


def main() -> None:
    from explorer import workflow
    from explorer.store import Project

    parser = prepared_parser(__doc__)
    parser.add_argument("--first", choices=("suggest", "random"), default="suggest")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"first 10 labels: {args.first}\n")
    print("| collection | labels | truth | before (miss) | now (miss) | AUC before / now | the summary's range |")
    print("|---|---:|---:|---:|---:|---|---|")
    misses = {"before": [], "now": []}
    inside: list[bool] = []
    for name, truth in prepared_collections(args):
        rng = np.random.default_rng(args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / name
            shutil.copytree(args.prepared / name, copy)
            with Project(copy) as project:
                labelled = 0
                while labelled < max(CHECKPOINTS):
                    if args.first == "random" and labelled == 0:
                        picks = rng.choice(sorted(project.paths_by_id()), 10, replace=False).tolist()
                    else:
                        picks = workflow.suggest(project, 10).item_ids.tolist()
                    label(project, picks, truth)
                    labelled += len(picks)
                    bounds = workflow.propagate(project).right_range()
                    if labelled in CHECKPOINTS:
                        right = exported_accuracy(project, truth)
                        (before, auc0), (now, auc1) = estimates(project, truth)
                        if not np.isnan(now):  # not calibrated yet: too few labels in classes with 3
                            misses["before"].append(abs(before - right))
                            misses["now"].append(abs(now - right))
                        span = "-"
                        if bounds is not None:
                            inside.append(bounds[0] <= right <= bounds[1])
                            span = f"{bounds[0]:.3f}-{bounds[1]:.3f} ({'in' if inside[-1] else 'OUT'})"
                        print(
                            f"| {name} | {labelled} | {right:.3f} | {before:.3f} ({100 * (before - right):+.1f}) "
                            f"| {now:.3f} ({100 * (now - right):+.1f}) | {auc0:.3f} / {auc1:.3f} | {span} |",
                            flush=True,
                        )
    for key, values in misses.items():
        if values:
            print(f"\n{key}: mean miss {100 * np.mean(values):.1f} points, largest {100 * np.max(values):.1f}", end="")
    if inside:
        print(f"\nthe truth inside the summary's range: {sum(inside)} of {len(inside)}", end="")
    print()


if __name__ == "__main__":
    main()
