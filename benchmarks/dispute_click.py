"""What the second opinion adds to a click, before and now, at 100k and 1M items.

Once a calibration has a disputed curve (``explorer.labels.calibrate``), every propagation needs to
know which pseudo-labels a classifier on the human labels disagrees with. Before, each click fitted
that classifier (``dispute.second_opinion``) and applied it to every row; now its choices are kept
on the solver and fitted again only when the labels changed as much as a calibration waits for
(``workflow.labelling._disputed``). Synthetic 128-d unit vectors of ``--classes`` classes (class
centres plus noise, the whitened map vectors' size), ``--labels`` human labels, pseudo-labels right
for 90 % of rows; in one process, best of ``--repeats``:

- before: ``second_opinion`` on all rows, as every click did;
- now, a click: the kept choices compared with the new pseudo-labels (``dispute.disputed_by``);
- now, a refit: a click after the labels changed by ``calibrate.REFIT_SHARE`` (the "before" cost
  again, once every tenth more labels).

Run: ``nice python benchmarks/dispute_click.py [--sizes 100000 1000000] [--labels 3000]``
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(n: int, labels: int, classes: int, repeats: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """(before, now a click, now a refit click) seconds at ``n`` items."""
    from explorer.labels.dispute import second_opinion
    from explorer.workflow import labelling

    truth = rng.integers(0, classes, n)
    x = rng.normal(0, 1, (classes, 128)).astype(np.float32)[truth]
    x += rng.normal(0, 1.5, x.shape).astype(np.float32)
    predicted = np.where(rng.random(n) < 0.9, truth, rng.integers(0, classes, n))
    seeds = np.full(n, -1)
    labelled = rng.choice(n, labels, replace=False)
    seeds[labelled] = predicted[labelled] = truth[labelled]
    labelling.map_embeddings = lambda *a, **k: x  # the map's vectors, without a project
    before = best(repeats, lambda: second_opinion(x, predicted, seeds >= 0))
    solver = SimpleNamespace(opinion_memo=None)
    labelling._disputed(None, 0, solver, seeds, predicted, classes, None)  # the fit, kept
    now = best(repeats, lambda: labelling._disputed(None, 0, solver, seeds, predicted, classes, None))

    def refit() -> None:  # as if the kept fit had half the labels
        solver.opinion_memo = (solver.opinion_memo[0] // 2, classes, solver.opinion_memo[2])
        labelling._disputed(None, 0, solver, seeds, predicted, classes, None)

    return before, now, best(repeats, refit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--labels", type=int, default=3000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    print("| items | labels | before: every click (s) | now: a click (s) | now: a refit click (s) | before / now |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        before, now, again = measure(n, args.labels, args.classes, args.repeats, rng)
        print(f"| {n:,} | {args.labels:,} | {before:.2f} | {now:.4f} | {again:.2f} | {before / now:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
