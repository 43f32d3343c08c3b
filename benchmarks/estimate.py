"""The summary's estimate of how much is right, against the truth, on the suite's trained maps.

For each prepared suite project (``labelling_effort.py --prepare-only DIR``), human labels drawn at
random (``--draws`` draws at each of ``--labels``), propagated on the map's own solver; the
estimate is the mean calibrated confidence over the collection (human labels 1, unreached 0), as
``PropagationResult.estimated_right``, with the calibration curve the app fits now
(``explorer.labels.calibrate.fit_calibration``: each isotonic block's rate across its scores) and, in the same
run on the same held-out checks, the curve it fitted before (knots at the blocks' mean scores).
Printed: truth, estimate now, estimate before (means over draws) and the largest miss of each.
The hidden labels' own sampling error is printed beside: ``sqrt(p (1 - p) / labels)``.

Run: ``nice python benchmarks/estimate.py --prepared DIR [--collections mnist ...]``
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelling_effort import prepared_parser, read_truth, true_classes  # noqa: E402


def curve_before(score: np.ndarray, right: np.ndarray, n_classes: int):
    """The calibration curve as fitted before: knots at each isotonic block's mean score."""
    from explorer.labels.calibrate import Calibration, _block_starts

    def _isotonic_blocks(y, w, x):
        starts = _block_starts(y, w)
        return np.add.reduceat(w * y, starts), np.add.reduceat(w, starts), np.add.reduceat(w * x, starts)

    order = np.argsort(score, kind="stable")
    x, y = score[order], right[order].astype(np.float64)
    hits, counts, xs = _isotonic_blocks(y, np.ones(len(y)), x)
    smoothed = (hits + 1.0) / (counts + 2.0)
    hits, weights, xs = _isotonic_blocks(smoothed, counts + 2.0, xs / counts)
    knots, first = np.unique(xs / weights, return_index=True)
    rates = np.maximum.accumulate((hits / weights)[first])
    if knots[0] > 0.0:
        knots, rates = np.r_[0.0, knots], np.r_[min(rates[0], 1.0 / n_classes), rates]
    if knots[-1] < 1.0:
        knots, rates = np.r_[knots, 1.0], np.r_[rates, rates[-1] + 0.5 * (1.0 - rates[-1])]
    return Calibration(knots, rates, len(score), int(right.sum()))


def main() -> None:
    from explorer.labels.calibrate import calibrated, fit_calibration, held_out_checks
    from explorer.store import Project
    from explorer.workflow.labelling import map_solver

    parser = prepared_parser(__doc__)
    parser.add_argument("--labels", type=int, nargs="+", default=[50, 100, 200, 300])
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(
        "| collection | random labels | right (truth) | estimate now | before | largest miss now / before | sampling error |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.collections:
        if not (args.prepared / name).is_dir():
            continue
        truth = read_truth(args.prepared / f"{name}.truth.csv")
        with Project(args.prepared / name) as project:
            _, item_ids, solver = map_solver(project)
            names, y = true_classes(project, item_ids, truth)
        for count in args.labels:
            rows = []
            for draw in range(args.draws):
                rng = np.random.default_rng(draw)
                seeds = np.full(len(y), -1)
                picked = rng.choice(len(y), count, replace=False)
                seeds[picked] = y[picked]
                result = solver.run_apart(seeds, len(names))
                right = float(np.where(seeds >= 0, True, result.predicted == y).mean())
                score, ok, _ = held_out_checks(solver, seeds, len(names))
                now = fit_calibration(score, ok, len(names))
                if now is None:
                    continue
                before = curve_before(score, ok, len(names))
                est = [
                    float(np.where(result.predicted >= 0, calibrated(result, seeds, c), 0.0).mean())
                    for c in (now, before)
                ]
                rows.append((right, *est, float(ok.mean())))
            if not rows:
                print(f"| {name} | {count} | not calibrated | | | | |")
                continue
            a = np.array(rows)
            miss = np.abs(a[:, 1:3] - a[:, :1]).max(axis=0)
            sampling = np.sqrt(a[:, 3].mean() * (1 - a[:, 3].mean()) / count)
            print(
                f"| {name} | {count} | {a[:, 0].mean():.3f} | {a[:, 1].mean():.3f} | {a[:, 2].mean():.3f} "
                f"| {miss[0]:.3f} / {miss[1]:.3f} | {sampling:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
