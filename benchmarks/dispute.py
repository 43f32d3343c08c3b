"""Disputed pseudo-labels: what a second opinion finds, and the labelling loop with and without it.

For each prepared suite project (``labelling_effort.py --prepare-only DIR``; copied, the original
is not touched) a simulated person labels ``suggest``'s picks, 10 a round, up to ``--labels``,
with its true class, and propagates (``labelling_effort.simulate``), under three settings:

- before: no disputed picks (``DISPUTE_SHARE`` 0) and one calibration curve over every check;
- each of ``--shares``: that share of disputed picks, and the disputed checks on their own curve.

Per setting: exported accuracy and the summary's estimate of it at 50 / 100 / 200 / 300 labels,
and labels to 90 / 95 / 98 %. After the "before" loop, on its last labels: how many
pseudo-labels a classifier on the human labels disputes (``explorer.labels.dispute``), how many
of those are wrong against how many of the rest, and the share of all wrong ones it flags.

Run: ``nice python benchmarks/dispute.py --prepared DIR [--collections mnist ...] [--shares 0.3 0.5]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelling_effort import prepared_collections, prepared_parser, simulate, true_classes  # noqa: E402

CHECKPOINTS = (50, 100, 200, 300)


def flagged(project, truth: dict[str, str]) -> str:
    """What the second opinion flags on the project's labels now, as one table cell."""
    from explorer.labels.dispute import second_opinion
    from explorer.store.current import map_embeddings
    from explorer.workflow.labelling import human_evidence, map_solver

    run, item_ids, solver = map_solver(project)
    classes = project.classes()
    seeds, rejected = human_evidence(project, item_ids, np.array([c.id for c in classes]))
    result = solver.run(seeds, len(classes), rejected)
    names, y = true_classes(project, item_ids, truth)
    ours = np.array([names.index(c.name) for c in classes])
    wrong = (result.predicted < 0) | (ours[np.maximum(result.predicted, 0)] != y)
    open_rows = seeds < 0
    doubt = (
        second_opinion(map_embeddings(project, run, len(item_ids)), result.predicted, seeds >= 0)[0] > 0
    ) & open_rows
    rest = open_rows & ~doubt
    return (
        f"{doubt.sum()} disputed, {wrong[doubt].mean():.1%} wrong; rest {wrong[rest].mean():.1%} wrong; "
        f"{(doubt & wrong).sum() / max(1, (wrong & open_rows).sum()):.0%} of the wrong flagged"
    )


def main() -> None:
    import importlib

    from explorer.store import Project

    # the modules themselves (``explorer.labels`` names a function ``suggest`` too)
    calibrate = importlib.import_module("explorer.labels.calibrate")
    suggest = importlib.import_module("explorer.labels.suggest")

    parser = prepared_parser(__doc__)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.3, 0.5])
    parser.add_argument("--labels", type=int, default=300)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    loop = argparse.Namespace(
        targets=[0.9, 0.95, 0.98, 1.0],  # 1.0: the loop goes on to --labels
        batch=10,
        max_labels=args.labels,
        refine_at=[],
        refine_when_advised=False,
        refine_minutes=None,
    )
    split = calibrate.held_out_checks

    def one_curve(*a, embeddings=None, **k):  # the calibration before: no disputed curve
        return split(*a, **k)

    heads = " / ".join(str(c) for c in CHECKPOINTS)
    print(f"| collection | setting | right at {heads} labels (estimate) | labels to 90 / 95 / 98 % |")
    print("|---|---|---|---|")
    notes = []
    for name, truth in prepared_collections(args):
        for share in (0.0, *args.shares):
            suggest.DISPUTE_SHARE = share
            calibrate.held_out_checks = split if share else one_curve
            with tempfile.TemporaryDirectory() as tmp:
                result = simulate(args.prepared / name, truth, "suggest", Path(tmp), loop)
                if share == 0.0:
                    with Project(Path(tmp) / "suggest" / name) as project:
                        notes.append(
                            f"{name}, at {args.labels} labels without disputed picks: {flagged(project, truth)}"
                        )
                shutil.rmtree(tmp, ignore_errors=True)
            at = {n: (a, e) for n, a, e, *_range in result["curve"]}
            cells = [
                f"{at[c][0]:.3f} ({at[c][1]:.3f})" if c in at and at[c][1] is not None else "-" for c in CHECKPOINTS
            ]
            reached = " / ".join(
                str(result["reached"][t]) if result["reached"][t] is not None else f">{args.labels}"
                for t in (0.9, 0.95, 0.98)
            )
            setting = "before" if share == 0.0 else f"disputed share {share:g}"
            print(f"| {name} | {setting} | {' / '.join(cells)} | {reached} |", flush=True)
    calibrate.held_out_checks = split
    print()
    for line in notes:
        print(f"- {line}")


if __name__ == "__main__":
    main()
