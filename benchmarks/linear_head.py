"""Graph diffusion alone against diffusion plus a linear head, on the suite's trained encoders.

For each prepared suite project (``labelling_effort.py --prepare-only DIR``), the map's own
propagation graph and the vectors labels propagate through (whitened for neural encoders), seeds
drawn at random (``--per-class`` a class, ``--draws`` draws), accuracy on the items that are not
seeds (unreached = wrong) of:

- ``graph``: the diffusion alone (what ``explorer propagate`` gives);
- ``probe``: a logistic regression on the human labels alone;
- ``rounds R w``: ``explorer.labels.rounds.pseudo_label_rounds`` with R rounds and head weight w
  (the head speaks in proportion to how far a row is from any human label);
- ``mix w``: one round, the head trained as in ``rounds`` but mixed at w everywhere.

Run: ``nice python benchmarks/linear_head.py --prepared DIR [--collections shapes ...]``
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelling_effort import draw_seeds, prepared_parser, read_truth, true_classes  # noqa: E402


def fit_head(x, rows, target, weight):
    from sklearn.linear_model import LogisticRegression

    head = LogisticRegression(C=10.0, class_weight="balanced", max_iter=300)
    head.fit(x[rows], target, sample_weight=weight)
    return head


def head_scores(x, head, n_classes):
    p = np.zeros((len(x), n_classes))
    p[:, head.classes_] = head.predict_proba(x)
    return p


def variants(x, result, seeds, n_classes):
    """{variant: predicted (N,)} for one draw."""
    from explorer.labels.rounds import pseudo_label_rounds

    human = seeds >= 0
    out = {"graph": result.predicted}
    rows = np.flatnonzero(human)
    out["probe"] = head_scores(x, fit_head(x, rows, seeds[rows], np.ones(len(rows))), n_classes).argmax(1)
    for rounds, weight in ((1, 0.5), (2, 0.5), (1, 1.0)):
        mixed = pseudo_label_rounds(x, result, seeds, rounds, head_weight=weight)
        out[f"rounds {rounds} {weight}"] = mixed.predicted
    conf = result.confidence.astype(np.float64)
    pool = np.flatnonzero(~human & (result.predicted >= 0))
    pool = pool[conf[pool] >= np.median(conf[pool])]
    rows = np.concatenate([np.flatnonzero(human), pool])
    target = np.where(human[rows], seeds[rows], result.predicted[rows])
    weight = np.where(human[rows], 1.0, np.maximum(conf[rows], 1e-3))
    p_head = head_scores(x, fit_head(x, rows, target, weight), n_classes)
    for w in (0.3, 0.5, 0.7):
        p = (1 - w) * result.scores + w * p_head
        out[f"mix {w}"] = np.where(human, seeds, p.argmax(1))
    return out


def main() -> None:
    from explorer.neighbours.knn import normalise_rows
    from explorer.store import Project
    from explorer.store.current import map_embeddings
    from explorer.workflow.labelling import map_solver

    parser = prepared_parser(__doc__)
    parser.add_argument("--per-class", type=int, nargs="+", default=[1, 3, 10, 30])
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name in args.collections:
        if not (args.prepared / name).is_dir():
            print(f"{name}: not prepared")
            continue
        truth = read_truth(args.prepared / f"{name}.truth.csv")
        started = time.perf_counter()
        with Project(args.prepared / name) as project:
            map_run, item_ids, solver = map_solver(project)
            x = normalise_rows(np.asarray(map_embeddings(project, map_run, len(item_ids)), np.float64))
            names, y = true_classes(project, item_ids, truth)
        table: dict[str, dict[int, list[float]]] = {}
        for per_class in args.per_class:
            for draw in range(args.draws):
                seeds = draw_seeds(y, len(names), per_class, draw)
                rest = seeds < 0
                result = solver.run_apart(seeds, len(names))
                for variant, predicted in variants(x, result, seeds, len(names)).items():
                    right = float((predicted[rest] == y[rest]).mean())
                    table.setdefault(variant, {}).setdefault(per_class, []).append(right)
        heads = " / ".join(str(k) for k in args.per_class)
        print(
            f"\n{name} ({len(y)} items, {x.shape[1]}-d, {time.perf_counter() - started:.0f} s): seeds a class {heads}"
        )
        for variant, cells in table.items():
            print(f"  {variant:14s} " + " / ".join(f"{np.mean(cells[k]):.3f}" for k in args.per_class), flush=True)


if __name__ == "__main__":
    main()
