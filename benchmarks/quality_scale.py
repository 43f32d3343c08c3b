"""Quality scores at 100k and 1M items: read off the map's graph, against a peer's fresh kNN search.

For each size in ``--sizes``, in a fresh process, a project is fabricated straight into the store
(``benchmarks/fabricate.py``: items, ``--dim`` 128-d clustered unit vectors as in
``benchmarks/scale_1m.py``, a map run holding the FAISS kNN graph, k=15; no UMAP, no files), with
``--duplicates`` (1 %) of the rows made near-duplicates of other rows (cosine about 0.9999).
Then, timed in the same process:

- ours: ``workflow.quality(project)`` (uniqueness = 1 - similarity to the nearest other image,
  typicality = local density, near-duplicate groups: everything read off the map's graph, arrays
  loaded from the store included); ``workflow.near_duplicates(project)`` (the pairs, as Python
  tuples) and ``Collection.quality()`` (the notebook's DataFrame, with paths);
- the peer: FiftyOne's ``compute_uniqueness`` on precomputed embeddings searches afresh (its
  sklearn similarity backend above 15,000 rows: the embeddings centred and L2-normalised,
  ``NearestNeighbors(metric="euclidean")``, which picks brute force at this dimension, then
  ``kneighbors(n_neighbors=4)`` for every row, and a weighted mean of the 3 distances); timed here
  the same way, and a FAISS exact inner-product search (``faiss.knn``, 2 neighbours: the fair
  fast exact baseline). Above ``--full-limit`` rows both searches run on ``--queries`` random
  rows against all rows and are extrapolated linearly to every row (marked "extrapolated").

Also: what the map's graph cost to build (paid once by ``explorer map``, not by ``quality``), the
accuracy of our uniqueness against the exact nearest neighbour on the sampled rows (share equal
to 1e-4, worst difference) and the planted near-duplicate pairs put in one group (recall).

Run: ``nice -n 10 python benchmarks/quality_scale.py [--sizes 100000 1000000]``
(quick: ``--sizes 20000``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fabricate import each_size_apart, fabricated_project, mib, size_options  # noqa: E402
from benchmarks.scale_1m import PeakMemory, StepClock, clustered  # noqa: E402


def plant_duplicates(x: np.ndarray, share: float, seed: int = 5) -> np.ndarray:
    """Make ``share`` of the rows near-duplicates of other rows, in place; returns the (P, 2) pairs."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    rows = rng.choice(n, size=2 * int(share * n), replace=False).reshape(-1, 2)
    copy = x[rows[:, 0]] + rng.normal(scale=0.01 / np.sqrt(d), size=(len(rows), d)).astype(np.float32)
    x[rows[:, 1]] = copy / np.linalg.norm(copy, axis=1, keepdims=True)
    return rows


def fiftyone_uniqueness(x: np.ndarray, queries: np.ndarray | None) -> tuple[np.ndarray, float]:
    """FiftyOne's uniqueness path on precomputed embeddings (sklearn backend above 15k rows):
    (uniqueness of the query rows (all rows when ``queries`` is None), search seconds)."""
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import normalize

    started = time.perf_counter()
    centred = np.asarray(x, np.float32) - np.asarray(x, np.float32).mean(axis=0, keepdims=True)
    index = NearestNeighbors(metric="euclidean").fit(normalize(centred, axis=1))
    if queries is None:
        dists, _ = index.kneighbors(n_neighbors=4)  # the index itself: each row's own hit left out
        dists = dists[:, :3]
    else:
        dists, _ = index.kneighbors(normalize(centred[queries], axis=1), n_neighbors=4)
        dists = dists[:, 1:]
    seconds = time.perf_counter() - started
    score = np.mean(dists * np.array([0.6, 0.3, 0.1]), axis=1)
    return score / score.max(), seconds


def faiss_nearest(x: np.ndarray, queries: np.ndarray | None) -> tuple[np.ndarray, float]:
    """(exact similarity to the nearest other row, for the query rows; seconds), faiss.knn."""
    import faiss

    started = time.perf_counter()
    q = x if queries is None else x[queries]
    sims, ids = faiss.knn(q, x, 2, metric=faiss.METRIC_INNER_PRODUCT)
    seconds = time.perf_counter() - started
    own = np.arange(len(x)) if queries is None else queries
    # the row itself first, unless a twin tied with it: then the other column is the twin
    nearest = np.where(ids[:, 0] == own, sims[:, 1], sims[:, 0])
    return nearest, seconds


def one_size(args) -> dict:
    import faiss

    import explorer
    from explorer import workflow

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    n = args.one
    memory = PeakMemory()
    clock = StepClock(memory)
    clock.start("make vectors")
    x, _ = clustered(n, args.dim, 50)
    planted = plant_duplicates(x, args.duplicates)
    out: dict = {"n": n, "planted": len(planted)}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        made = fabricated_project(Path(tmp) / "collection", x, clock)
        out["map"] = made.seconds | {"index": made.graph.index_kind, "recall": made.graph.recall}
        project, walls = made.project, {}
        del made
        clock.start("ours: quality")
        quality = workflow.quality(project)
        clock.start("ours: near_duplicates")
        out["pairs"] = len(workflow.near_duplicates(project))
        clock.stop()
        walls["quality"], walls["near_duplicates"] = clock.rows[-2:]
        project.close()
        with explorer.open(Path(tmp) / "collection") as collection:
            clock.start("ours: Collection.quality()")
            frame = collection.quality()
            clock.stop()
            walls["Collection.quality()"] = clock.rows[-1]
            assert len(frame) == n
        out["ours"] = {k: {"wall": v["wall"], "peak": v["peak"]} for k, v in walls.items()}
        group = quality.duplicate_group
        a, b = planted[:, 0], planted[:, 1]
        out["groups"] = int(group.max() + 1)
        out["planted_found"] = float(((group[a] >= 0) & (group[a] == group[b])).mean())

        full = n <= args.full_limit
        queries = None if full else np.sort(np.random.default_rng(7).choice(n, args.queries, replace=False))
        scale = 1.0 if full else n / args.queries
        clock.start("peer: sklearn NearestNeighbors (FiftyOne)")
        _, sk_seconds = fiftyone_uniqueness(x, queries)
        clock.start("peer: faiss.knn exact")
        nearest, faiss_seconds = faiss_nearest(x, queries)
        clock.stop()
        out["peer"] = {
            "full": full,
            "queries": n if full else args.queries,
            "sklearn": sk_seconds * scale,
            "faiss": faiss_seconds * scale,
            "sklearn_peak": clock.rows[-2]["peak"],
            "faiss_peak": clock.rows[-1]["peak"],
        }
        rows = np.arange(n) if queries is None else queries
        exact = np.clip(1.0 - nearest, 0.0, 1.0)
        diff = np.abs(quality.uniqueness[rows].astype(np.float64) - exact)
        out["uniqueness_equal"] = float((diff <= 1e-4).mean())
        out["uniqueness_worst"] = float(diff.max())
        out["uniqueness_mean_error"] = float(diff.mean())
    memory.stop()
    out["steps"] = clock.rows
    return out


def print_size(r: dict) -> None:
    m, ours, peer = r["map"], r["ours"], r["peer"]
    q = ours["quality"]["wall"]
    recall = "1 (exact)" if m["recall"] is None else f"{m['recall']:.3f}"
    how = "all rows" if peer["full"] else f"{peer['queries']:,} query rows, extrapolated to {r['n']:,}"
    print(
        f"\n{r['n']:,} items ({r['planted']:,} planted near-duplicate pairs); the map's kNN graph "
        f"(paid once by `explorer map`): {m['graph']:.1f} s ({m['index']}, recall@15 {recall})\n"
    )
    print("| items | what | ours (read off the map's graph) | peer's fresh search | peer / ours |")
    print("|---:|---|---:|---:|---:|")
    print(
        f"| {r['n']:,} | uniqueness: FiftyOne's path (sklearn NearestNeighbors, brute force, 4 neighbours; {how}) | "
        f"{q:.2f} s (`workflow.quality`, all three scores) | {peer['sklearn']:,.1f} s | **{peer['sklearn'] / q:,.0f}x** |"
    )
    print(
        f"| {r['n']:,} | uniqueness: exact FAISS flat search (faiss.knn, 2 neighbours; {how}) | {q:.2f} s | "
        f"{peer['faiss']:,.1f} s | **{peer['faiss'] / q:,.0f}x** |"
    )
    print(
        f"| {r['n']:,} | the same against what the map paid for its graph once ({m['index']}, k=15) | "
        f"{q:.2f} s + {m['graph']:.1f} s | {peer['faiss']:,.1f} s | {peer['faiss'] / (q + m['graph']):.1f}x |"
    )
    print(
        f"| {r['n']:,} | near-duplicate pairs (`workflow.near_duplicates`, {r['pairs']:,} pairs as tuples) | "
        f"{ours['near_duplicates']['wall']:.2f} s | | |"
    )
    print(
        f"| {r['n']:,} | `Collection.quality()` (DataFrame with paths) | {ours['Collection.quality()']['wall']:.2f} s | | |"
    )
    print(
        f"\nPeak RSS during: quality {mib(ours['quality']['peak'])}, Collection.quality() "
        f"{mib(ours['Collection.quality()']['peak'])}, sklearn search {mib(peer['sklearn_peak'])}, FAISS "
        f"search {mib(peer['faiss_peak'])}. Our uniqueness equals the exact one (to 1e-4) on "
        f"{r['uniqueness_equal']:.1%} of {peer['queries']:,} rows (mean error {r['uniqueness_mean_error']:.2e}, "
        f"worst {r['uniqueness_worst']:.3f}); {r['planted_found']:.1%} of the planted pairs share a "
        f"duplicate group ({r['groups']:,} groups)."
    )

    print(f"\n(this size took {r['took']:.0f} s in all)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--duplicates", type=float, default=0.01, help="share of rows made near-duplicates")
    parser.add_argument("--full-limit", type=int, default=200_000, help="above this, the peer runs on a sample")
    parser.add_argument("--queries", type=int, default=5_000)
    size_options(parser)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args)))
        return
    options = ["--dim", str(args.dim), "--tmp", args.tmp, "--duplicates", str(args.duplicates)]
    options += ["--full-limit", str(args.full_limit), "--queries", str(args.queries)]
    each_size_apart(__file__, args.sizes, options, print_size, args.json)


if __name__ == "__main__":
    main()
