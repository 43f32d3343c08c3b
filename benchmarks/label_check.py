"""Label mistakes: how many flipped labels the top of `explorer check`'s ranking holds.

For each suite collection (raw-pixel embeddings, as ``explorer embed --encoder pixels`` makes
them) every item gets its true label, except ``--flip`` of them (5 %) that get another class at
random, as an imported label file with mistakes would. In the same run it ranks the labels by

- ours (``explorer check``): out-of-sample propagation on the label-space graph averaged with the
  vote of the embedding's neighbours (``explorer.labels.check``);
- the propagation alone, on the label space and on the embedding's kNN graph;
- kNN vote: the share of a row's 10 nearest neighbours (embedding graph) whose label differs
  (the usual simple baseline);
- random order;

and prints the recall of the flips in the first 5 % and 10 % of the ranking (1.0 at 10 % means
every mistake is among the first tenth a person reviews) and the seconds.

Run: ``nice python benchmarks/label_check.py [--collections mnist handwriting] [--flip 0.05]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.collections import SUITE  # noqa: E402
from benchmarks.label_graph import pixel_vectors_of  # noqa: E402
from explorer.labels.check import disagreement  # noqa: E402
from explorer.labels.propagate import Diffusion  # noqa: E402
from explorer.labels.space import NEIGHBOURS, label_space  # noqa: E402
from explorer.neighbours.knn import knn_graph  # noqa: E402


def recall_at(order: np.ndarray, flipped: np.ndarray, share: float) -> float:
    top = order[: int(round(share * len(order)))]
    return float(flipped[top].sum() / max(1, flipped.sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="+", default=["mnist", "handwriting"], choices=SUITE)
    parser.add_argument("--flip", type=float, default=0.05)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("| collection | ranking | flips in first 5 % / 10 % | s |\n|---|---|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.collections:
            x, y = pixel_vectors_of(name, Path(tmp))
            classes = int(y.max()) + 1
            rng = np.random.default_rng(0)
            flipped = np.zeros(len(y), bool)
            flipped[rng.choice(len(y), int(args.flip * len(y)), replace=False)] = True
            given = y.copy()
            given[flipped] = (y[flipped] + rng.integers(1, classes, flipped.sum())) % classes
            graph = knn_graph(x, k=15)
            rankings = {}
            _, label = label_space(x, graph)  # built with the map, so not timed here
            started = time.perf_counter()
            solver = Diffusion(label, power=1.0, neighbours=NEIGHBOURS)
            found = disagreement(solver, given, classes, neighbours=graph.indices)
            rankings["ours: propagation + vote"] = (found.rows, started)
            started = time.perf_counter()
            rankings["propagation alone, label space"] = (disagreement(solver, given, classes).rows, started)
            started = time.perf_counter()
            rankings["hidden folds, embedding graph"] = (disagreement(Diffusion(graph), given, classes).rows, started)
            started = time.perf_counter()
            votes = (given[graph.indices[:, 1:11]] != given[:, None]).mean(axis=1)
            rankings["kNN vote (10 neighbours)"] = (np.lexsort((np.arange(len(y)), -votes)), started)
            rankings["random order"] = (rng.permutation(len(y)), time.perf_counter())
            for label_text, (order, t0) in rankings.items():
                seconds = time.perf_counter() - t0
                cells = f"{recall_at(order, flipped, 0.05):.3f} / {recall_at(order, flipped, 0.10):.3f}"
                print(f"| {name} | {label_text} | {cells} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
