"""One refine from random labels: exported accuracy before and after ``explorer refine``.

On a copy of a project made by ``labelling_effort.py --prepare-only DIR`` (DIR/NAME and
DIR/NAME.truth.csv), ``--per-class`` random human labels a class (seeded), propagate, then
``refine`` with its defaults (or ``--max-minutes``); prints the refine report and the share of all
items whose exported label is right, before and after. Run with the code before and after a change
to refine to compare the two on the same encoder.

Run: ``nice python benchmarks/refine_once.py DIR NAME [--per-class 10] [--max-minutes M]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelling_effort import exported_accuracy, label, labels_right, read_truth  # noqa: E402
from explorer import workflow  # noqa: E402
from explorer.store import Project  # noqa: E402
from explorer.workflow.refine import refine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prepared", type=Path, help="folder of --prepare-only projects")
    parser.add_argument("name", help="collection name (a project folder in PREPARED)")
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    truth = read_truth(args.prepared / f"{args.name}.truth.csv")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / args.name
        shutil.copytree(args.prepared / args.name, copy)
        with Project(copy) as project:
            by_class: dict[str, list[int]] = {}
            for item, path in sorted(project.paths_by_id().items()):
                by_class.setdefault(truth[path], []).append(item)
            rng = np.random.default_rng(args.seed)
            picks = [int(i) for items in by_class.values() for i in rng.choice(items, args.per_class, replace=False)]
            label(project, picks, truth)
            workflow.propagate(project)
            before = exported_accuracy(project, truth)
            started = time.perf_counter()
            _say_truth_at_each_check(truth)
            report = refine(project, max_minutes=args.max_minutes)
            print(report.summary())
            after = exported_accuracy(project, truth)
    print(
        f"{args.name}, {args.per_class} a class: exported {before:.3f} -> {after:.3f} "
        f"({time.perf_counter() - started:.0f} s)"
    )


def _say_truth_at_each_check(truth: dict[str, str]) -> None:
    """Print, at each of refine's held-out checks, what share of all items the propagation from every
    human label gets right on the map then current: a round that the check undoes is measured too."""
    import explorer.workflow.refine as module
    from explorer.workflow.labelling import compute_propagation

    checked = module._held_out_accuracy

    def check(project: Project, checked_items: np.ndarray) -> float:
        result = compute_propagation(project, fit_calibration=False)
        right = labels_right(project, result.item_ids, result.class_ids, truth)
        held = checked(project, checked_items)
        print(f"check on map run {result.map_run}: held-out {held:.1%}, all items {right:.1%} right", flush=True)
        return held

    module._held_out_accuracy = check


if __name__ == "__main__":
    main()
