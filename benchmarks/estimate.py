"""The summary's estimate of how much is right, against the truth, on the suite's trained maps.

For each prepared suite project (``labelling_effort.py --prepare-only DIR``), human labels drawn at
random (``--draws`` draws at each of ``--labels``), propagated on the map's own solver; the
estimate is the mean calibrated confidence over the collection (human labels 1, unreached 0), as
``PropagationResult.estimated_right``, as the app makes it now (a curve over the margin) and as
before (a curve over margin x reach): ``estimate_loop.estimates_for``. Printed: truth, estimate now,
estimate before (means over draws)
and the largest miss of each, and beside them the sampling error of that many checks of a
labelling as right as the truth: ``sqrt(p (1 - p) / labels)``.

Run: ``nice python benchmarks/estimate.py --prepared DIR [--collections mnist ...]``
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.estimate_loop import estimates_for  # noqa: E402
from benchmarks.labelling_effort import prepared_collections, prepared_parser, true_classes  # noqa: E402


def main() -> None:
    from explorer.store import Project
    from explorer.store.current import map_embeddings
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
    for name, truth in prepared_collections(args):
        with Project(args.prepared / name) as project:
            map_run, item_ids, solver = map_solver(project)
            names, y = true_classes(project, item_ids, truth)
            vectors = np.asarray(map_embeddings(project, map_run, len(item_ids)))
        for count in args.labels:
            rows = []
            for draw in range(args.draws):
                rng = np.random.default_rng(draw)
                seeds = np.full(len(y), -1)
                picked = rng.choice(len(y), count, replace=False)
                seeds[picked] = y[picked]
                result = solver.run_apart(seeds, len(names))
                right = float(np.where(seeds >= 0, True, result.predicted == y).mean())
                names_of = np.array(names)
                before, now = (
                    estimates_for(solver, seeds, names_of, names_of[y], vectors, None, way)[0]
                    for way in ("before", "now")
                )
                if np.isnan(now):
                    continue
                rows.append((right, now, before, right))
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
