"""Projects for the scale benchmarks, fabricated straight into the store: no image files, no UMAP.

``fabricated_project`` records one item per row of ``x`` (``scale_1m.build_project``: items through
``Project.record_scan``, ``x`` saved as a finished embed run), then a finished map run whose arrays
are what ``workflow.make_map`` leaves: the FAISS kNN graph of ``x`` (``knn_graph``, k=15, the map's
own index choice), ``xy`` the first two coordinates (the 2-D layout is not what these benchmarks
measure) and, with ``label_space=True``, the label space and its graph
(``explorer.labels.space.label_space``, which the window's propagation and ``explorer check`` use).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.scale_1m import StepClock, build_project

K = 15


@dataclass
class Fabricated:
    project: object  # explorer.store.Project
    item_ids: np.ndarray  # (N,) int64 in row order
    map_run: int
    graph: object  # explorer.neighbours.knn.KnnGraph of the map
    seconds: dict  # step -> wall seconds of the fabrication (the map's cost, paid once per map)


def fabricated_project(
    folder: Path, x: np.ndarray, clock: StepClock, *, label_space: bool = False, k: int = K, graph=None
) -> Fabricated:
    """A project in ``folder`` (created) holding ``x`` (N, D) unit rows as embeddings and a map;
    ``graph`` a ready KnnGraph for the map instead of searching (where the graph is not measured)."""
    from explorer.neighbours.knn import knn_graph
    from explorer.store import Project

    folder.mkdir(parents=True, exist_ok=True)
    project = Project(folder)
    seconds: dict = {}
    started = time.perf_counter()
    ids, embed_run = build_project(project, x, clock)
    seconds["store"] = time.perf_counter() - started
    clock.start("map: kNN graph")
    started = time.perf_counter()
    graph = knn_graph(x, k=k) if graph is None else graph
    seconds["graph"] = time.perf_counter() - started
    arrays = {"knn_indices": graph.indices, "knn_similarities": graph.similarities}
    if label_space:
        from explorer.labels.space import label_space as fit_label_space

        clock.start("map: label space")
        started = time.perf_counter()
        space, label = fit_label_space(x, graph)
        seconds["label space"] = time.perf_counter() - started
        arrays |= {"label_indices": label.indices, "label_similarities": label.similarities, "label_space": space}
    clock.start("map: save run")
    run = project.start_run("map", {"embed_run": embed_run, "k": k, "fresh": True})
    project.save_run_arrays(run, item_ids=ids, xy=np.ascontiguousarray(x[:, :2], np.float32), **arrays)
    project.finish_run(run, "done", {"items": len(x), "index": graph.index_kind, "recall": graph.recall})
    clock.stop()
    return Fabricated(project, ids, run, graph, seconds)


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def size_options(parser) -> None:
    """The options every scale benchmark takes: ``--tmp``, ``--json`` and the hidden ``--one N``."""
    parser.add_argument("--tmp", default="/var/tmp", help="where the fabricated projects go")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)


def each_size_apart(script: str, sizes: list[int], options: list[str], report, json_path: Path | None) -> list:
    """Run ``script --one N *options`` for each size N in a fresh process (so that peak memory is
    that size's alone); ``report(result)`` prints each size's result (the JSON its last line
    holds, with ``took`` its seconds in all) as it lands; all of them are written to ``json_path`` when given."""
    results = []
    for n in sizes:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, script, "--one", str(n), *options], capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"size {n} failed:\n{done.stderr[-4000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]) | {"took": time.perf_counter() - started})
        report(results[-1])
    if json_path:
        json_path.write_text(json.dumps(results, indent=1))
    return results
