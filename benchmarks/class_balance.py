"""Class balancing after propagation: does pushing the pseudo-labels toward class shares help?

One random seed a class can sit at the edge of its class, and then a neighbouring class takes much
of it (on handwriting, one draw in ten gave a class 2.5 % of the items where it has 10 %). Here each
propagation's per-row class distribution (``Propagation.scores``) is rescaled column by column,
Sinkhorn style, until the classes' summed scores match a target share, then each row takes its top
class. Targets: equal shares (what one seed a class can assume), the same with no class scaled by
more than ``BOUND`` up or down (a nudge rather than a rule), shares read off the map's clusters
(a cluster holding seeds goes to their classes) and the collection's true shares (an oracle: what
the best estimate of the shares could give). Seeds 1 / 3 / 10 a class, mean (and
worst) of ``--draws`` draws; unreached items count as wrong. Nothing is written to the projects.

Run: ``nice python benchmarks/class_balance.py --prepared DIR [--collections mnist ...]``
(projects made by ``labelling_effort.py --prepare-only DIR``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelling_effort import (  # noqa: E402
    draw_seeds,
    prepared_collections,
    prepared_parser,
    true_classes,
)

ITERATIONS = 10
BOUND = 2.0
"""The bounded variant: no class's scores scaled by more than this factor, up or down."""


def balanced(
    scores: np.ndarray, share: np.ndarray, iterations: int = ITERATIONS, limit: float | None = None
) -> np.ndarray:
    """(N,) top class of ``scores`` (N, C) after scaling its columns so that each class's summed
    score approaches ``share`` (C,) of the reached rows (rows renormalised after each step);
    ``limit``: no class's scale beyond that factor up or down (a bounded nudge toward the shares)."""
    reached = scores.sum(axis=1) > 0
    base = scores[reached].astype(np.float64) + 1e-12
    base /= base.sum(axis=1, keepdims=True)
    scale = np.ones(scores.shape[1])
    for _ in range(iterations):
        p = base * scale
        p /= p.sum(axis=1, keepdims=True)
        scale *= share * len(p) / p.sum(axis=0)
        if limit is not None:
            scale = np.clip(scale, 1.0 / limit, limit)
    out = np.full(len(scores), -1)
    out[reached] = (base * scale).argmax(axis=1)
    return out


def cluster_shares(clusters: np.ndarray, seeds: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(C,) class shares estimated from the map's clusters (N,): a cluster holding seeds goes to
    their classes in proportion to the seeds; one without seeds (and the rows in no cluster)
    follows the propagation's row distributions."""
    classes = scores.shape[1]
    mass = np.zeros(classes)
    rows = scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)
    for cluster in np.unique(clusters):
        members = clusters == cluster
        seeded = seeds[members & (seeds >= 0)]
        if cluster >= 0 and len(seeded):
            mass += members.sum() * np.bincount(seeded, minlength=classes) / len(seeded)
        else:
            mass += rows[members].sum(axis=0)
    return mass / mass.sum()


def main() -> None:
    parser = prepared_parser(__doc__)
    parser.add_argument("--draws", type=int, default=10)
    args = parser.parse_args()
    from explorer.store import Project
    from explorer.workflow.labelling import map_solver

    print(
        f"| collection | seeds a class | as propagated | equal shares | equal, each scale within {BOUND:g}x "
        "| cluster shares | true shares (oracle) |"
    )
    print("|---|---:|---|---|---|---|---|")
    for name, truth in prepared_collections(args):
        with Project(args.prepared / name) as project:
            run, item_ids, solver = map_solver(project)
            clusters = project.load_run_array(run, "clusters")
            names, y = true_classes(project, item_ids, truth)
        classes = len(names)
        true_share = np.bincount(y, minlength=classes) / len(y)
        equal = np.full(classes, 1.0 / classes)
        for per_class in (1, 3, 10):
            right: dict[str, list[float]] = {}
            for draw in range(args.draws):
                seeds = draw_seeds(y, classes, per_class, draw)
                result = solver.run_apart(seeds, classes)
                rest = seeds < 0
                # (column, share balanced toward or None: as propagated, bound on each class's scale)
                targets = (
                    ("as propagated", None, None),
                    ("equal", equal, None),
                    ("bounded", equal, BOUND),
                    ("clusters", cluster_shares(clusters, seeds, result.scores), None),
                    ("true", true_share, None),
                )
                for key, share, limit in targets:
                    predicted = result.predicted if share is None else balanced(result.scores, share, limit=limit)
                    right.setdefault(key, []).append(float((predicted[rest] == y[rest]).mean()))
            cells = [f"{np.mean(v):.3f} (worst {np.min(v):.3f})" for v in right.values()]
            print(f"| {name} | {per_class} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
