"""The propagation's bridge: seeded accuracy on the label space alone and with the bridge graph added.

For each prepared suite project (``labelling_effort.py --prepare-only DIR``; copied first, the
original is not touched): a fresh map of its trained encoder's embeddings and, with ``--pixels``,
of raw pixels; then, on each map, pseudo-label accuracy from 1 / 3 / 10 random seeds a class
(mean of ``--draws`` draws for one seed, 5 for the others; unreached items count as wrong) with
the label graph alone and with the bridge at each of ``--weights``
(``explorer.labels.propagate.Diffusion``), the same seeds for every weight. Also prints how many
pieces the label graph falls into and how many items one seed a class leaves unreached.

Run: ``nice python benchmarks/bridge.py --prepared DIR [--collections mnist ...] [--pixels]``
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelling_effort import draw_seeds, prepared_parser, read_truth, true_classes  # noqa: E402


def measure(project, truth: dict[str, str], weights: list[float], draws: int) -> list[str]:
    """Table lines for the project's current map."""
    from scipy.sparse.csgraph import connected_components

    from explorer.labels.propagate import Diffusion
    from explorer.labels.space import NEIGHBOURS
    from explorer.neighbours.knn import KnnGraph
    from explorer.store.current import map_bridge

    run = project.latest_run("map")
    load = lambda name: project.load_run_array(run.id, name)  # noqa: E731
    names, y = true_classes(project, load("item_ids"), truth)
    label = KnnGraph(load("label_indices"), load("label_similarities"), "label", None)
    bridge = KnnGraph(*map_bridge(project, run.id), "bridge", None)
    solvers = {w: Diffusion(label, power=1.0, neighbours=NEIGHBOURS, bridge=bridge, bridge_weight=w) for w in weights}
    pieces = connected_components(solvers[0.0].system, directed=False)[0]
    lines = []
    for w, solver in solvers.items():
        cells, unreached = [], []
        for per_class in (1, 3, 10):
            right = []
            for draw in range(draws if per_class == 1 else 5):
                seeds = draw_seeds(y, len(names), per_class, draw)
                result = solver.run_apart(seeds, len(names))
                rest = seeds < 0
                right.append(float((result.predicted[rest] == y[rest]).mean()))
                if per_class == 1:
                    unreached.append(int((result.predicted < 0).sum()))
            cells.append(f"{np.mean(right):.3f}")
        lines.append(f"{w:g} | {' / '.join(cells)} | {np.mean(unreached):.0f} | {pieces}")
    return lines


def main() -> None:
    from explorer import workflow
    from explorer.store import Project

    parser = prepared_parser(__doc__)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.1, 0.2])
    parser.add_argument("--draws", type=int, default=20, help="draws of one seed a class")
    parser.add_argument("--pixels", action="store_true", help="also a raw-pixel map of each collection")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    weights = sorted(set([0.0, *args.weights]))
    print("| collection | features | bridge weight | seeded 1 / 3 / 10 a class | unreached, 1 seed | pieces |")
    print("|---|---|---:|---|---:|---:|")
    for name in args.collections:
        if not (args.prepared / name).is_dir():
            print(f"| {name} | not prepared | | | | |")
            continue
        truth = read_truth(args.prepared / f"{name}.truth.csv")
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / name
            shutil.copytree(args.prepared / name, copy)
            with Project(copy) as project:
                for features in ("encoder", "pixels") if args.pixels else ("encoder",):
                    if features == "pixels":
                        workflow.embed(project, workflow.PIXELS)
                    workflow.make_map(project, fresh=True)
                    for line in measure(project, truth, weights, args.draws):
                        print(f"| {name} | {features} | {line} |", flush=True)


if __name__ == "__main__":
    main()
