"""The summary's estimate of how much is right, and its range, against the truth on the suite's maps.

For each prepared suite project (``labelling_effort.py --prepare-only DIR``), human labels drawn at
random (``--draws`` draws at each of ``--labels``), propagated on the map's own solver, calibrated
on the hidden labels as the app does (``compute_propagation``): the estimate of the share right
(``PropagationResult.estimated_right``) and the range the summary gives beside it
(``calibrate.interval``: Jeffreys' interval on the effective number of checks, 90 %). Beside it, the
range a bootstrap would give: the checks resampled ``--resamples`` times, the curve fitted again
on each, the 5th and 95th percentiles of the estimates. Printed per collection and label count:
the truth, the estimate, the mean and largest miss, and for each range how often the truth fell
inside it and its mean width (points).

Run: ``nice python benchmarks/estimate.py --prepared DIR [--collections mnist ...] [--draws 4]``
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelling_effort import prepared_collections, prepared_parser, true_classes  # noqa: E402


def estimate_with_ranges(solver, seeds: np.ndarray, result, vectors: np.ndarray, resamples: int, seed: int = 0):
    """(estimate, Jeffreys range, bootstrap range) for human labels ``seeds`` (N,) propagated on
    ``solver``'s graph (``result``), or None while too few labels are checked."""
    from explorer.labels import calibrate
    from explorer.labels.dispute import second_opinion

    n_classes = result.scores.shape[1]
    disputed = second_opinion(vectors, result.predicted, seeds >= 0)[0] > 0
    checks = calibrate.held_out_checks(solver, seeds, n_classes, embeddings=vectors)
    unseen = calibrate.unseen_share(seeds)

    def estimate(curve) -> float:
        confidence = calibrate.calibrated(result, seeds, curve, disputed, unseen)
        return float(np.where(result.predicted >= 0, confidence, 0.0).mean())

    curve = calibrate.fit_calibration(*checks[:2], n_classes, checks.disputed, checks.weight, checks.lone)
    if curve is None:
        return None
    right = estimate(curve)
    rng, m, boot = np.random.default_rng(seed), len(checks.score), []
    pick = lambda a, i: None if a is None else a[i]  # noqa: E731
    for _ in range(resamples):
        i = rng.integers(0, m, m)
        again = calibrate.fit_calibration(
            checks.score[i], checks.right[i], n_classes, pick(checks.disputed, i), pick(checks.weight, i), checks.lone
        )
        boot.append(estimate(again))
    tail = 100 * (1 - calibrate.LEVEL) / 2
    return right, calibrate.interval(right, curve.effective), tuple(np.percentile(boot, [tail, 100 - tail]))


def main() -> None:
    from explorer.store import Project
    from explorer.store.current import map_embeddings
    from explorer.workflow.labelling import map_solver

    parser = prepared_parser(__doc__)
    parser.add_argument("--labels", type=int, nargs="+", default=[50, 100, 200, 300])
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--resamples", type=int, default=100, help="bootstrap resamples of the checks")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(
        "| collection | random labels | right (truth) | estimate | mean / largest miss "
        "| truth in range: Jeffreys (now) / bootstrap | mean width: Jeffreys / bootstrap |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    totals: dict[str, list] = {}
    for name, truth in prepared_collections(args):
        with Project(args.prepared / name) as project:
            map_run, item_ids, solver = map_solver(project)
            names, y = true_classes(project, item_ids, truth)
            vectors = np.asarray(map_embeddings(project, map_run, len(item_ids)))
        for count in args.labels:
            rows = []
            for draw in range(args.draws):
                rng = np.random.default_rng(100 + draw)
                seeds = np.full(len(y), -1)
                picked = rng.choice(len(y), count, replace=False)
                seeds[picked] = y[picked]
                result = solver.run_apart(seeds, len(names))
                measured = estimate_with_ranges(solver, seeds, result, vectors, args.resamples)
                if measured is None:
                    continue
                right = float(np.where(seeds >= 0, True, result.predicted == y).mean())
                estimate, (lo, hi), (blo, bhi) = measured
                rows.append((right, estimate, lo <= right <= hi, blo <= right <= bhi, hi - lo, bhi - blo))
            if not rows:
                print(f"| {name} | {count} | not calibrated | | | | |")
                continue
            a = np.array(rows, np.float64)
            totals.setdefault(name, []).extend(rows)
            miss = np.abs(a[:, 1] - a[:, 0])
            print(
                f"| {name} | {count} | {a[:, 0].mean():.3f} | {a[:, 1].mean():.3f} "
                f"| {100 * miss.mean():.1f} / {100 * miss.max():.1f} "
                f"| {a[:, 2].sum():.0f} / {a[:, 3].sum():.0f} of {len(a)} "
                f"| {100 * a[:, 4].mean():.1f} / {100 * a[:, 5].mean():.1f} |",
                flush=True,
            )
    for name, rows in totals.items():
        a = np.array(rows, np.float64)
        print(f"{name}: truth in range {a[:, 2].mean():.0%} (Jeffreys) / {a[:, 3].mean():.0%} (bootstrap) of {len(a)}")


if __name__ == "__main__":
    main()
