"""The summary's estimate of "right" along the labelling loop, against the truth, before and now.

For each prepared suite project (``labelling_effort.py --prepare-only DIR``; copied, the original
is not touched) a simulated person labels ``suggest``'s picks, 10 a round, with their true class,
and propagates, up to 300 labels (``--first random``: the first 10 labels drawn at random, as a
person who starts from a few images they know). At 50 / 100 / 200 / 300 labels, on the same labels
and the same held-out checks, the estimate of how much of the collection is right
(``PropagationResult.estimated_right``: the mean calibrated confidence, human labels 1) is
computed two ways:

- before: the curve alone (``calibrate.PRIOR``, each check weighted by the square root of what its
  label stands for, disputed checks on their own curve);
- now: as the app does, the same curve times the chance that an item is not in a class with no
  label yet (``calibrate.unseen_share``, Good-Turing).

Printed: the truth (share of the export that is right), each estimate and its miss in points.

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

CHECKPOINTS = (50, 100, 200, 300)


def estimates(project) -> tuple[float, float]:
    """(before, now) estimates of the share right for the project's labels now."""
    from explorer.store.current import map_embeddings
    from explorer.workflow.labelling import human_evidence, map_solver

    map_run, item_ids, solver = map_solver(project)
    class_ids = np.array([c.id for c in project.classes()], np.int64)
    seeds, rejected = human_evidence(project, item_ids, class_ids)
    vectors = np.asarray(map_embeddings(project, map_run, len(item_ids)))
    return estimates_for(solver, seeds, len(class_ids), vectors, rejected)


def estimates_for(solver, seeds: np.ndarray, n_classes: int, vectors: np.ndarray, rejected=None) -> tuple[float, float]:
    """(before, now) estimates of the share right for human labels ``seeds`` (N,) on ``solver``'s
    graph, the map's ``vectors`` (N, D) at hand, as ``compute_propagation`` makes them; on the same
    curve: before without the share of unlabelled classes, now with it, as the app does."""
    from explorer.labels import calibrate
    from explorer.labels.dispute import second_opinion

    result = solver.run_apart(seeds, n_classes, rejected)
    disputed = second_opinion(vectors, result.predicted, seeds >= 0)[0] > 0
    checks = calibrate.held_out_checks(solver, seeds, n_classes, rejected, embeddings=vectors)
    curve = calibrate.fit_calibration(
        checks.score, checks.right, n_classes, checks.disputed, checks.weight, checks.lone
    )
    if curve is None:
        return float("nan"), float("nan")
    out = []
    for unseen in (0.0, calibrate.unseen_share(seeds)):
        confidence = calibrate.calibrated(result, seeds, curve, disputed, unseen)
        out.append(float(np.where(result.predicted >= 0, confidence, 0.0).mean()))
    return out[0], out[1]


def main() -> None:
    from explorer import workflow
    from explorer.store import Project

    parser = prepared_parser(__doc__)
    parser.add_argument("--first", choices=("suggest", "random"), default="suggest")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"first 10 labels: {args.first}\n")
    print("| collection | labels | truth | before (miss) | now (miss) |\n|---|---:|---:|---:|---:|")
    misses = {"before": [], "now": []}
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
                    workflow.propagate(project)
                    if labelled in CHECKPOINTS:
                        right = exported_accuracy(project, truth)
                        before, now = estimates(project)
                        if not np.isnan(now):  # not calibrated yet: too few labels in classes with 3
                            misses["before"].append(abs(before - right))
                            misses["now"].append(abs(now - right))
                        print(
                            f"| {name} | {labelled} | {right:.3f} | {before:.3f} ({100 * (before - right):+.1f}) "
                            f"| {now:.3f} ({100 * (now - right):+.1f}) |",
                            flush=True,
                        )
    for key, values in misses.items():
        if values:
            print(f"\n{key}: mean miss {100 * np.mean(values):.1f} points, largest {100 * np.max(values):.1f}", end="")
    print()


if __name__ == "__main__":
    main()
