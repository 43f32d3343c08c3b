"""Propagation time and peak memory at 10k, 100k and 1M items, cold and after one more seed.

A synthetic kNN graph (k=15, of which propagation uses 10, as in the app): 50 clusters, 90% of
each row's neighbours from its own cluster, similarities decreasing along the row. 10 classes
with 5 seeds each. For each size, in a fresh process (so peak memory is that size's alone):

- ``build``: the normalised graph and edge lengths (``Diffusion(graph)``), once per map;
- ``cold``: the first propagation of all 10 classes (what ``propagate`` does from scratch);
- ``one more seed``: re-propagation after one more seed, reusing the solver (what the window does
  after each click through ``explorer.workflow.compute_propagation``); ratio = cold / incremental;
- peak resident memory of the process (ru_maxrss), including the graph itself.

With ``--bridge``, the app's label-space solver instead: 20 neighbours a row at power 1, alone and
with a bridge graph of 10 more (``Diffusion(..., bridge=...)``), in the same process, printed as
times and the ratio with / without.

Run: ``nice -n 10 python benchmarks/propagation_scale.py [--sizes 10000 100000 1000000] [--bridge]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

K = 15
CLUSTERS = 50
CLASSES = 10


def synthetic_graph(n: int, seed: int = 0, k: int = K, cluster: np.ndarray | None = None):
    """A KnnGraph of n rows shaped like a clustered collection's (see the module docstring), over
    ``cluster`` (n,) sorted cluster ids when given (another graph of the same rows)."""
    from explorer.neighbours.knn import KnnGraph

    rng = np.random.default_rng(seed)
    cluster = np.sort(rng.integers(0, CLUSTERS, n)) if cluster is None else cluster
    starts = np.searchsorted(cluster, np.arange(CLUSTERS))
    sizes = np.bincount(cluster, minlength=CLUSTERS)
    own = starts[cluster][:, None] + (rng.random((n, k)) * sizes[cluster][:, None]).astype(np.int64)
    anywhere = rng.integers(0, n, (n, k))
    ids = np.where(rng.random((n, k)) < 0.9, own, anywhere)
    sims = np.sort(rng.uniform(0.55, 0.95, (n, k)), axis=1)[:, ::-1].astype(np.float32)
    indices = np.concatenate([np.arange(n)[:, None], ids], axis=1).astype(np.int64)
    similarities = np.concatenate([np.ones((n, 1), np.float32), sims], axis=1)
    return KnnGraph(indices, similarities, "synthetic", None), cluster


def one_size(n: int) -> dict:
    from explorer.labels.propagate import Diffusion

    graph, cluster = synthetic_graph(n)
    rng = np.random.default_rng(1)
    seeds = np.full(n, -1, np.int64)
    for c in range(CLASSES):  # class c lives in clusters c, c+10, ...
        rows = np.flatnonzero(cluster % CLASSES == c)
        seeds[rng.choice(rows, 5, replace=False)] = c
    t0 = time.perf_counter()
    solver = Diffusion(graph)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = solver.run(seeds, CLASSES)
    t_cold = time.perf_counter() - t0
    extra = rng.choice(np.flatnonzero((cluster % CLASSES == 3) & (seeds < 0)))
    seeds[extra] = 3
    t0 = time.perf_counter()
    solver.run(seeds, CLASSES)
    t_one = time.perf_counter() - t0
    accuracy = float((first.predicted == cluster % CLASSES).mean())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return {
        "n": n,
        "build": t_build,
        "cold": t_cold,
        "one": t_one,
        "solved": solver.solved_last,
        "peak": peak,
        "acc": accuracy,
    }


def bridged(n: int) -> dict:
    """Cold and one-more-seed times of the label-space solver alone and with a bridge."""
    from explorer.labels.propagate import Diffusion
    from explorer.neighbours.knn import KnnGraph

    label, cluster = synthetic_graph(n, k=20)
    other, _ = synthetic_graph(n, seed=1, k=10, cluster=cluster)
    bridge = KnnGraph(other.indices, other.similarities, "bridge", None)
    rng = np.random.default_rng(1)
    seeds = np.full(n, -1, np.int64)
    for c in range(CLASSES):
        seeds[rng.choice(np.flatnonzero(cluster % CLASSES == c), 5, replace=False)] = c
    extra = rng.choice(np.flatnonzero((cluster % CLASSES == 3) & (seeds < 0)))
    out = {"n": n}
    for name, solver_of in (
        ("alone", lambda: Diffusion(label, power=1.0, neighbours=20)),
        ("bridge", lambda: Diffusion(label, power=1.0, neighbours=20, bridge=bridge)),
    ):
        s = seeds.copy()
        t0 = time.perf_counter()
        solver = solver_of()
        out[f"{name} build"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        solver.run(s, CLASSES)
        out[f"{name} cold"] = time.perf_counter() - t0
        s[extra] = 3
        t0 = time.perf_counter()
        solver.run(s, CLASSES)
        out[f"{name} one"] = time.perf_counter() - t0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bridge", action="store_true", help="the label-space solver alone and with a bridge")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(bridged(args.one) if args.bridge else one_size(args.one)))
        return
    if args.bridge:
        print(
            "| items | build: alone / bridge | cold | one more seed | with / without (cold, one) |\n|---:|---|---|---|---|"
        )
        for n in args.sizes:
            command = [sys.executable, __file__, "--one", str(n), "--bridge"]
            r = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
            print(
                f"| {n:,} | {r['alone build']:.2f} / {r['bridge build']:.2f} s | {r['alone cold']:.2f} / "
                f"{r['bridge cold']:.2f} s | {r['alone one']:.3f} / {r['bridge one']:.3f} s | "
                f"{r['bridge cold'] / r['alone cold']:.2f}x, {r['bridge one'] / r['alone one']:.2f}x |",
                flush=True,
            )
        return
    print(f"synthetic kNN graph k={K} (propagation uses 10), {CLASSES} classes x 5 seeds\n")
    print(
        f"{'items':>9} | {'build s':>7} | {'cold s':>7} | {'one more seed s':>15} | {'cold/one':>8} | "
        f"{'classes re-solved':>17} | {'peak memory':>11} | accuracy"
    )
    print("-" * 108)
    for n in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, check=True
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{r['n']:>9,} | {r['build']:>7.2f} | {r['cold']:>7.2f} | {r['one']:>15.3f} | {r['cold'] / r['one']:>7.1f}x | "
            f"{r['solved']:>17} | {r['peak'] / 2**20:>8.0f} MiB | {r['acc']:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
