"""Neighbours, map and propagation of a 1M-item project, end to end through ``explorer.workflow``.

For each size in ``--n`` (default 1,000,000), in a fresh process so that memory is that size's
alone, a synthetic collection is built as a real project without image files: clustered unit
vectors (``--dim`` 128, ``--clusters`` 50 clusters overlapping in a shared 8-d subspace, see
:func:`clustered`; true class = cluster mod ``--classes`` 10), items recorded
through ``Project.record_scan`` and the vectors saved as a finished embed run's arrays
(``item_ids``, ``embeddings``: what ``workflow.embed`` leaves and ``make_map`` reads). Then, timed step by step (wall, CPU of the whole process, peak
resident memory sampled every 20 ms):

- ``workflow.make_map``: the FAISS kNN graph (k=15; its phases "index", "recall", "neighbours"
  are split out from the progress reports), UMAP fitted on a sample with the rest placed
  ("map", "place"), trustworthiness on 2,000 rows, arrays saved;
- ``workflow.propagate`` from 2 seeds per cluster (computed, then saved as pseudo-labels), and
  again after one more seed (the solver is reused, as in the window);
- ``workflow.suggest``: the 10 items to label next (what "Label next" does).

Baselines, measured in the same process as the largest size (``--no-baselines`` skips them):

- exact search (``faiss.knn``, inner product) for ``--exact-queries`` random rows against all N
  rows, extrapolated to N queries; the recall@15 of the saved map's graph on those rows;
- on a random subset of ``--baseline-n`` rows (default 100,000): plain
  ``umap.UMAP(metric="cosine").fit_transform`` against our graph + map on the same rows, and
  scikit-learn ``LabelSpreading(kernel="knn")`` against our propagation from the same seeds.

With several sizes it prints each step's exponent b in ``time ~ n^b`` (least squares on
log-log) and estimates the same steps at 10M items; ``--embed-cost`` measures ResNet-18 at
224 px on this CPU and JPEG decoding per image, for the hours to embed 10M images.

``--storage-check N`` instead builds the graph of N rows with IVF over float16 vectors (the
default) and over float32 (the previous default) in one process; ``--settle-check N`` maps N
rows (5k-row UMAP sample, the rest placed) twice with the placing epochs serial and twice in
parallel, alternating; ``--report FILE`` prints the tables of a ``--json FILE`` again.

Run: ``nice -n 10 python benchmarks/scale_1m.py [--n 250000 500000 1000000] [--embed-cost]``
(quick: ``--n 50000 --baseline-n 20000``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

K = 15
SEEDS_PER_CLUSTER = 2
TARGET = 10_000_000
"""The collection size the estimate is for."""
GPU_IMAGES_PER_S = 5_000
"""Assumed, not measured (no GPU was lent): ResNet-18 at 224 px in bf16 on one H100, the same
assumption as benchmarks/README.md's Ray section (NVIDIA's DeepLearningExamples report ResNet-50
mixed-precision inference at 3,382 img/s on one V100 at batch 256; ResNet-18 needs 0.44x its
FLOPs, and an H100 is faster than a V100, so this is on the low side)."""
CORES_PER_GPU = 8
"""CPU cores decoding images for each GPU (as in the Ray section)."""
GRAPH_CORES = 16
"""Cores of the one machine that builds the kNN graph (FAISS threads; taken as scaling linearly)."""
SPREAD = 0.55
"""Cluster centres' scale: at 0.55 (128-d, 50 clusters) 86% of each item's 15 neighbours share its
cluster (20k items: diffusion 0.983, LabelSpreading 0.981 right); at 1.0 all of them do."""


class PeakMemory:
    """Samples this process's resident memory every ``interval`` s in a thread; ``take()`` returns
    the peak since the last ``take()`` in bytes (a step's own peak)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self._page = resource.getpagesize()
        self._peak = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def now(self) -> int:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * self._page

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, self.now())

    def take(self) -> int:
        peak, self._peak = max(self._peak, self.now()), self.now()
        return peak

    def stop(self) -> None:
        self._stop.set()


class StepClock:
    """Wall time, process CPU time and peak RSS of consecutive named steps."""

    def __init__(self, memory: PeakMemory) -> None:
        self.memory = memory
        self.rows: list[dict] = []
        self._name: str | None = None

    def start(self, name: str) -> None:
        self.stop()
        self.memory.take()
        self._name, self._wall, self._cpu = name, time.perf_counter(), time.process_time()

    def stop(self) -> None:
        if self._name is None:
            return
        self.rows.append(
            {
                "step": self._name,
                "wall": time.perf_counter() - self._wall,
                "cpu": time.process_time() - self._cpu,
                "peak": self.memory.take(),
            }
        )
        self._name = None

    def following(self, prefix: str):
        """A progress callback that starts step ``prefix + report.step`` whenever the step changes."""

        def progress(report) -> None:
            name = prefix + report.step
            if name != self._name:
                self.start(name)

        return progress


def clustered(
    n: int, d: int, clusters: int, spread: float = SPREAD, seed: int = 0, chunk: int = 50_000
) -> tuple[np.ndarray, np.ndarray]:
    """((n, d) float32 unit rows, (n,) int64 cluster): ``spread * centre_c + z W + 0.1 noise``.

    z is an 8-d latent and W (8, d) is shared by all clusters, so clusters overlap in that
    subspace and some neighbours cross clusters (with per-cluster W, as in map_umap.py, every
    neighbour is in its own cluster and every method labels all items right). Generated in chunks.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d)).astype(np.float32) * np.float32(spread)
    patch = rng.normal(size=(8, d)).astype(np.float32) * 0.3
    cluster = rng.integers(0, clusters, n)
    x = np.empty((n, d), np.float32)
    for start in range(0, n, chunk):
        c = cluster[start : start + chunk]
        z = rng.normal(size=(len(c), 8)).astype(np.float32)
        block = centres[c] + z @ patch + 0.1 * rng.normal(size=(len(c), d))
        x[start : start + len(c)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return x, cluster


def seed_rows(cluster: np.ndarray, clusters: int, per_cluster: int, seed: int) -> np.ndarray:
    """(clusters * per_cluster,) row positions: ``per_cluster`` random rows of every cluster."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(cluster == c), per_cluster, replace=False) for c in range(clusters)]
    )


def build_project(project, x: np.ndarray, clock: StepClock) -> tuple[np.ndarray, int]:
    """Record one item per row (no files) and save ``x`` as an embed run, as ``workflow.embed`` does.

    Returns ((N,) item ids, in row order; embed run id).
    """
    from explorer.store import ScannedFile

    n = len(x)
    clock.start("record items (store)")
    for start in range(0, n, 50_000):
        project.record_scan(
            [
                ScannedFile(f"{k // 1000:04d}/{k:07d}.jpg", 20_000, 1, 224, 224, "RGB")
                for k in range(start, min(n, start + 50_000))
            ],
            gone=[],
        )
    ids = project.item_ids()
    clock.start("save embed run")
    run = project.start_run("embed", {"encoder": f"synthetic clustered {x.shape[1]}-d"})
    project.save_run_arrays(run, item_ids=ids, embeddings=x)
    project.finish_run(run, "done", {"items": int(n), "dim": int(x.shape[1])})
    clock.stop()
    return ids, run


def one_size(args) -> dict:
    """Everything for one size in this process; returns the JSON-able results."""
    from explorer import workflow
    from explorer.projection import warm_up
    from explorer.store import Project

    n = args.one
    memory = PeakMemory()
    clock = StepClock(memory)
    clock.start("make vectors")
    x, cluster = clustered(n, args.dim, args.clusters, args.spread)
    truth = cluster % args.classes
    clock.start("warm up UMAP (numba)")
    warm_up()  # the window does this in the background at startup
    result: dict = {"n": n, "dim": args.dim}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        (Path(tmp) / "collection").mkdir()
        with Project(Path(tmp) / "collection") as project:
            ids, _ = build_project(project, x, clock)
            clock.start("map: ")
            map_run = workflow.make_map(project, k=K, progress=clock.following("map: "))
            clock.stop()
            metrics = project.run(map_run).metrics
            result["map_metrics"] = {k: v for k, v in metrics.items() if not isinstance(v, dict | list)}

            classes = [project.add_class(f"class {c}").id for c in range(args.classes)]
            seeds = seed_rows(cluster, args.clusters, SEEDS_PER_CLUSTER, seed=1)
            project.set_labels_many({int(ids[r]): (classes[int(truth[r])], "seed") for r in seeds}, "seeds")
            clock.start("propagate: compute (cold)")
            propagation = workflow.compute_propagation(project)
            clock.start("propagate: save pseudo-labels")
            workflow.save_propagation(project, propagation)
            clock.stop()
            seeded = np.zeros(n, bool)
            seeded[seeds] = True
            lookup = np.full(max(classes) + 2, -1)  # store class id -> class index; -1 (none) stays -1
            lookup[classes] = np.arange(len(classes))
            predicted = lookup[propagation.class_ids]
            result["accuracy"] = float((predicted[~seeded] == truth[~seeded]).mean())
            extra = int(np.flatnonzero(~seeded & (truth == 3))[0])
            project.set_labels([int(ids[extra])], classes[3], "seed")
            clock.start("propagate: one more seed (compute + save)")
            workflow.propagate(project)
            clock.start("label next: 10 suggestions")
            workflow.suggest(project, 10)
            clock.stop()

            if args.baselines:
                graph_ids = project.load_run_array(map_run, "knn_indices", mmap=True)
                result["baselines"] = baselines(args, x, truth, cluster, graph_ids, clock)
    memory.stop()
    result["steps"] = clock.rows
    result["max_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return result


def exact_recall(x: np.ndarray, graph_ids: np.ndarray, queries: int, clock: StepClock) -> dict:
    """Exact top-K (faiss.knn, inner product) for ``queries`` random rows against all rows, timed;
    recall@K of ``graph_ids`` (N, K+1) on them (the row itself excluded from both)."""
    import faiss

    n = len(x)
    rows = np.sort(np.random.default_rng(7).choice(n, size=min(queries, n), replace=False))
    clock.start("baseline: exact kNN, sample of queries")
    _, exact = faiss.knn(x[rows], x, K + 2, metric=faiss.METRIC_INNER_PRODUCT)
    clock.stop()
    seconds = clock.rows[-1]["wall"]
    hits = 0
    for r, row in enumerate(rows):
        truth = [j for j in exact[r] if j != row and j >= 0][:K]
        found = set(np.asarray(graph_ids[row, 1:]).tolist())
        hits += sum(j in found for j in truth)
    return {
        "queries": len(rows),
        "seconds": seconds,
        "extrapolated": seconds * n / len(rows),
        "recall": hits / (K * len(rows)),
    }


def baselines(args, x, truth, cluster, graph_ids, clock: StepClock) -> dict:
    """Exact search on a sample of queries at full size, then ours vs plain UMAP and vs
    LabelSpreading on a random subset of ``args.baseline_n`` rows."""
    from sklearn.semi_supervised import LabelSpreading

    from explorer.labels.propagate import propagate
    from explorer.neighbours.knn import knn_graph
    from explorer.projection.layout import map_layout, trustworthiness_on_sample

    out: dict = {"exact": exact_recall(x, graph_ids, args.exact_queries, clock)}
    m = min(args.baseline_n, len(x))
    sub = np.sort(np.random.default_rng(3).choice(len(x), size=m, replace=False))
    xs, ts, cs = x[sub], truth[sub], cluster[sub]
    seeds = np.full(m, -1, np.int64)
    seeded = seed_rows(cs, args.clusters, SEEDS_PER_CLUSTER, seed=1)
    seeds[seeded] = ts[seeded]
    unseeded = seeds < 0

    clock.start(f"subset {m}: ours graph")
    graph = knn_graph(xs, k=K)
    clock.start(f"subset {m}: ours map")
    xy = map_layout(xs, graph, n_neighbors=K).xy
    clock.start(f"subset {m}: ours propagate")
    ours = propagate(graph, seeds, args.classes)
    import umap

    clock.start("baseline: warm up plain UMAP (numba)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # above 4,096 rows plain UMAP uses nearest-neighbour descent, which compiles separately
        umap.UMAP(n_neighbors=K, metric="cosine").fit_transform(xs[:5000])
        clock.start(f"subset {m}: plain UMAP")
        xy_plain = umap.UMAP(n_neighbors=K, metric="cosine").fit_transform(xs)
    clock.start(f"subset {m}: LabelSpreading")
    spreading = LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.99, max_iter=30).fit(xs, seeds)
    clock.stop()
    walls = {row["step"]: row["wall"] for row in clock.rows}
    prefix = f"subset {m}: "
    out["subset"] = {
        "n": m,
        "ours_map": walls[prefix + "ours graph"] + walls[prefix + "ours map"],
        "plain_umap": walls[prefix + "plain UMAP"],
        "trust_ours": trustworthiness_on_sample(xs, xy),
        "trust_plain": trustworthiness_on_sample(xs, xy_plain),
        "ours_propagate": walls[prefix + "ours propagate"],
        # like for like with LabelSpreading, which builds its own kNN graph inside fit
        "ours_graph_and_propagate": walls[prefix + "ours graph"] + walls[prefix + "ours propagate"],
        "spreading": walls[prefix + "LabelSpreading"],
        "acc_ours": float((ours.predicted[unseeded] == ts[unseeded]).mean()),
        "acc_spreading": float((spreading.transduction_[unseeded] == ts[unseeded]).mean()),
        "index": graph.index_kind,
        "recall": graph.recall,
    }
    return out


def storage_check(n: int, args) -> dict:
    """The kNN graph of ``n`` rows with IVF over float16 vectors (the default) and over float32
    (the previous default), in this process one after the other: CPU s, wall s, recall@K on 1,000
    rows against exact search."""
    import faiss

    from explorer.neighbours import knn

    x, _ = clustered(n, args.dim, args.clusters, args.spread)
    rows = np.sort(np.random.default_rng(7).choice(n, size=min(1000, n), replace=False))
    _, exact = faiss.knn(x[rows], x, K + 2, metric=faiss.METRIC_INNER_PRODUCT)
    out = {"n": n}
    default = knn.STORAGE["ivf"]
    for name, storage in (("float16", default), ("float32", (("float32", 4),))):
        knn.STORAGE["ivf"] = storage
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            graph = knn.knn_graph(x, k=K, exact_limit=0)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            knn.STORAGE["ivf"] = default
        hits = 0
        for r, row in enumerate(rows):
            truth = [j for j in exact[r] if j != row and j >= 0][:K]
            hits += len(set(truth) & set(graph.indices[row, 1:].tolist()))
        out[name] = {"index": graph.index_kind, "wall": wall, "cpu": cpu, "recall": hits / (K * len(rows))}
    return out


def settle_check(n: int, args, repeats: int = 2) -> dict:
    """Placing N - 5,000 rows around a 5k UMAP sample with UMAP's epochs serial and in parallel
    (``place.PARALLEL_ABOVE`` moved either side of N), alternating: settle wall and CPU s, and
    the map's trustworthiness on 2,000 rows."""
    from explorer.neighbours import knn
    from explorer.projection import layout, place

    x, _ = clustered(n, args.dim, args.clusters, args.spread)
    graph = knn.knn_graph(x, k=K)
    default = place.PARALLEL_ABOVE
    real = place.settle_new
    out = {"n": n, "serial": [], "parallel": []}
    times: dict = {}

    def timed(*a, **kw):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return real(*a, **kw)
        finally:
            times.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)

    layout.settle_new = timed
    try:
        for _ in range(repeats):
            for name, above in (("serial", n + 1), ("parallel", 0)):
                place.PARALLEL_ABOVE = above
                result = layout.map_layout(x, graph)
                trust = layout.trustworthiness_on_sample(x, result.xy)
                out[name].append({"wall": times["wall"], "cpu": times["cpu"], "trust": trust})
    finally:
        place.PARALLEL_ABOVE, layout.settle_new = default, real
    return out


def print_settle_check(check: dict) -> None:
    print(f"\n## Placing {check['n']:,} items: UMAP's epochs serial vs parallel (alternating)\n")
    print("| epochs | settle wall s | settle CPU s | trustworthiness |\n|---|---:|---:|---:|")
    for name in ("serial", "parallel"):
        for r in check[name]:
            print(f"| {name} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['trust']:.5f} |")
    best = {name: min(r["wall"] for r in check[name]) for name in ("serial", "parallel")}
    print(f"\nserial / parallel, best wall: {best['serial'] / best['parallel']:.2f}x")


def print_storage_check(check: dict) -> None:
    print(f"\n## IVF storage at {check['n']:,} items (same process, one after the other)\n")
    print("| storage | index | CPU s | wall s | recall@15 |\n|---|---|---:|---:|---:|")
    for name in ("float16", "float32"):
        r = check[name]
        print(f"| {name} | {r['index']} | {r['cpu']:.1f} | {r['wall']:.1f} | {r['recall']:.4f} |")
    f16, f32 = check["float16"], check["float32"]
    print(f"\nfloat32 / float16: CPU {f32['cpu'] / f16['cpu']:.2f}x, wall {f32['wall'] / f16['wall']:.2f}x")


def embed_cost(tmp: str | None) -> dict:
    """ResNet-18 at 224 px on this CPU (images in memory), and decoding + resizing a 640x480 JPEG."""
    import torch
    from PIL import Image

    from explorer.images.decode import load_rgb_array
    from explorer.ssl.encoder import untrained_encoder

    rng = np.random.default_rng(0)
    encoder = untrained_encoder("resnet18", 224, device="cpu")
    images = rng.integers(0, 256, (64, 224, 224, 3), dtype=np.uint8)
    encoder.embed(images[:16], batch_size=16)  # first call allocates and picks kernels
    wall, cpu = time.perf_counter(), time.process_time()
    encoder.embed(images, batch_size=32)
    model = {"images": len(images), "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    model["threads"] = torch.get_num_threads()
    with tempfile.TemporaryDirectory(dir=tmp) as folder:
        paths = []
        for k in range(32):  # smooth gradients + noise: about the size of a real photo's JPEG
            base = np.linspace(0, 255, 640 * 480 * 3).reshape(480, 640, 3)
            pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            path = Path(folder) / f"{k}.jpg"
            Image.fromarray(pixels).save(path, quality=90)
            paths.append(path)
        load_rgb_array(paths[0], 224)
        wall, cpu = time.perf_counter(), time.process_time()
        for path in paths:
            load_rgb_array(path, 224)
        decode = {"images": len(paths), "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
        decode["bytes"] = int(np.mean([p.stat().st_size for p in paths]))
    return {"resnet18_224": model, "decode_jpeg_640x480": decode}


# ---- the report ----------------------------------------------------------------------------
def _mb(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def print_size(r: dict) -> None:
    m = r["map_metrics"]
    print(
        f"\n## {r['n']:,} items x {r['dim']} d: index {m.get('index')} (nprobe {m.get('nprobe', '-')}, "
        f"recall@{K} measured by the graph builder {m.get('recall')}), map {m.get('layout')} "
        f"(placed {m.get('placed'):,}), trustworthiness {m.get('trustworthiness')}, "
        f"propagation accuracy {r['accuracy']:.4f}, process peak RSS {_mb(r['max_rss'])}\n"
    )
    print("| step | wall s | CPU s | CPU/wall | peak RSS |\n|---|---:|---:|---:|---:|")
    for s in r["steps"]:
        ratio = s["cpu"] / s["wall"] if s["wall"] > 0 else 0.0
        print(f"| {s['step']} | {s['wall']:.2f} | {s['cpu']:.2f} | {ratio:.2f} | {_mb(s['peak'])} |")


def print_baselines(r: dict) -> None:
    b = r["baselines"]
    walls = {s["step"]: s["wall"] for s in r["steps"]}
    graph = sum(walls.get(f"map: {p}", 0.0) for p in ("index", "recall", "neighbours"))
    e = b["exact"]
    print(f"\n## Baselines at {r['n']:,} items (same run)\n")
    print(
        f"kNN graph: ours {graph:.1f} s (recall@{K} {e['recall']:.4f} against exact search on {e['queries']:,} "
        f"random rows); exact search of {e['queries']:,} queries {e['seconds']:.2f} s, extrapolated to all "
        f"{r['n']:,} rows {e['extrapolated']:.0f} s: ours is {e['extrapolated'] / graph:.1f}x faster"
    )
    s = b["subset"]
    print(
        f"\nOn a random subset of {s['n']:,} rows (ours: {s['index']}, recall {s['recall']}):\n\n"
        f"| | ours | baseline | baseline / ours | quality ours | quality baseline |\n|---|---:|---:|---:|---:|---:|\n"
        f"| graph + map vs plain UMAP | {s['ours_map']:.1f} s | {s['plain_umap']:.1f} s | "
        f"{s['plain_umap'] / s['ours_map']:.1f}x | trust {s['trust_ours']:.4f} | trust {s['trust_plain']:.4f} |\n"
        f"| graph + propagation vs LabelSpreading (knn, its own graph; k 10, alpha 0.99) "
        f"| {s['ours_graph_and_propagate']:.2f} s | {s['spreading']:.2f} s | "
        f"{s['spreading'] / s['ours_graph_and_propagate']:.1f}x | acc {s['acc_ours']:.4f} | acc {s['acc_spreading']:.4f} |"
    )


SCALING_STEPS = {
    "kNN graph (index + recall + search)": ("map: index", "map: recall", "map: neighbours"),
    "map layout (UMAP on sample + place + settle)": ("map: map", "map: place"),
    "whole make_map": ("map: ",),
    "propagate: compute (cold)": ("propagate: compute (cold)",),
    "propagate: save pseudo-labels": ("propagate: save pseudo-labels",),
    "propagate: one more seed": ("propagate: one more seed (compute + save)",),
    "label next (10 suggestions)": ("label next: 10 suggestions",),
}


def _step_time(r: dict, parts: tuple[str, ...], key: str = "cpu") -> float:
    if parts == ("map: ",):
        return sum(s[key] for s in r["steps"] if s["step"].startswith("map: "))
    return sum(s[key] for s in r["steps"] if s["step"] in parts)


def print_scaling(results: list[dict], target: int = TARGET) -> dict:
    """Exponent b of CPU time ~ n^b per step over the sizes measured, and the CPU time at ``target``.

    CPU time, not wall: on a machine shared with other work the wall time of the same step moves
    by 2-3x, its CPU time much less (and CPU time is the wall time of an idle machine for the
    single-threaded steps: everything but FAISS).
    """
    ns = np.array([r["n"] for r in results], float)
    largest = results[int(ns.argmax())]
    print(f"\n## Scaling over {', '.join(f'{int(n):,}' for n in ns)} items (CPU s), and {target:,} extrapolated\n")
    print(
        "| step | " + " | ".join(f"{int(n):,}" for n in ns) + f" | exponent b | per item at {int(ns.max()):,} | "
        f"{target:,} (x n^max(b,1)) |"
    )
    print("|---|" + "---:|" * (len(ns) + 3))
    estimate = {}
    for name, parts in SCALING_STEPS.items():
        t = np.array([_step_time(r, parts) for r in results])
        b = float(np.polyfit(np.log(ns), np.log(np.maximum(t, 1e-6)), 1)[0]) if len(ns) > 1 else 1.0
        at = _step_time(largest, parts) * (target / ns.max()) ** max(b, 1.0)
        estimate[name] = {"b": b, "cpu_seconds": at}
        cells = " | ".join(f"{v:.1f}" for v in t)
        per_item = _step_time(largest, parts) / ns.max() * 1e6
        print(f"| {name} | {cells} | {b:.2f} | {per_item:.0f} CPU-us | {at / 3600:.2f} CPU-h |")
    peaks = np.array([r["max_rss"] for r in results], float)
    b = float(np.polyfit(np.log(ns), np.log(peaks), 1)[0]) if len(ns) > 1 else 1.0
    at = peaks.max() * (target / ns.max()) ** max(b, 1.0)
    print(
        "| process peak RSS | " + " | ".join(_mb(p) for p in peaks) + f" | {b:.2f} | "
        f"{peaks.max() / ns.max():,.0f} B | {at / 2**30:.1f} GiB |"
    )
    estimate["peak_rss"] = {"b": b, "bytes": at}
    return estimate


def print_estimate(estimate: dict, cost: dict, target: int = TARGET) -> None:
    """Hours for ``target`` images: embedding on 1-8 GPUs (assumed rate, measured decoding) plus
    the CPU steps extrapolated by :func:`print_scaling`."""
    m, d = cost["resnet18_224"], cost["decode_jpeg_640x480"]
    cpu_rate = m["images"] / m["wall"]
    decode_s = d["cpu"] / d["images"]  # CPU seconds per image, one core
    per_gpu = min(GPU_IMAGES_PER_S, CORES_PER_GPU / decode_s)
    bound = "the GPU" if per_gpu == GPU_IMAGES_PER_S else f"JPEG decoding on {CORES_PER_GPU} cores per GPU"
    steps = ("kNN graph (index + recall + search)", "map layout (UMAP on sample + place + settle)")
    graph_h = estimate[steps[0]]["cpu_seconds"] / 3600
    layout_h = estimate[steps[1]]["cpu_seconds"] / 3600
    prop_h = estimate["propagate: compute (cold)"]["cpu_seconds"] / 3600
    print(f"\n## Estimate for {target:,} images\n")
    print(
        f"Embedding (ResNet-18, 224 px): this CPU {cpu_rate:.1f} img/s -> {target / cpu_rate / 3600:,.0f} h. "
        f"Per GPU assumed {GPU_IMAGES_PER_S:,} img/s (model only), decoding measured {decode_s * 1000:.1f} CPU-ms "
        f"per image -> {CORES_PER_GPU / decode_s:,.0f} img/s on {CORES_PER_GPU} cores; bound by {bound}: "
        f"{per_gpu:,.0f} img/s per GPU machine.\n"
    )
    print("| GPUs | embed | kNN graph (FAISS CPU, threads) | map (1 thread) | propagate (1 thread) | total |")
    print("|---:|---:|---:|---:|---:|---:|")
    for gpus in (1, 2, 4, 8):
        embed_h = target / (gpus * per_gpu) / 3600
        graph_wall = graph_h / GRAPH_CORES  # FAISS uses every core of one machine
        total = embed_h + graph_wall + layout_h + prop_h
        print(
            f"| {gpus} | {embed_h:.2f} h | {graph_wall:.2f} h on {GRAPH_CORES} cores | {layout_h:.2f} h | "
            f"{prop_h:.2f} h | {total:.2f} h |"
        )


def print_embed_cost(cost: dict) -> None:
    m, d = cost["resnet18_224"], cost["decode_jpeg_640x480"]
    print(
        f"\n## Embedding cost per image on this CPU\n\nResNet-18 at 224 px ({m['threads']} torch threads, "
        f"{m['images']} images in memory): {m['images'] / m['wall']:.1f} img/s wall, "
        f"{m['cpu'] / m['images'] * 1000:.0f} CPU-ms per image\nJPEG 640x480 ({d['bytes'] / 1000:.0f} kB) "
        f"decode + resize to 224 px, one thread: {d['wall'] / d['images'] * 1000:.1f} ms per image "
        f"({d['cpu'] / d['images'] * 1000:.1f} CPU-ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, nargs="+", default=[1_000_000], help="collection sizes, each in its own process"
    )
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--spread", type=float, default=SPREAD, help="cluster centres' scale (smaller: more overlap)")
    parser.add_argument("--baseline-n", type=int, default=100_000, help="subset size for plain UMAP / LabelSpreading")
    parser.add_argument("--exact-queries", type=int, default=1000, help="queries searched exactly at full size")
    parser.add_argument("--no-baselines", dest="baselines", action="store_false")
    parser.add_argument("--embed-cost", action="store_true", help="also measure ResNet-18 224 px and JPEG decoding")
    parser.add_argument("--tmp", default=None, help="folder for the temporary project (default: the system's)")
    parser.add_argument("--json", type=Path, help="also write all results to this JSON file")
    parser.add_argument("--storage-check", type=int, metavar="N", help="compare IVF float16 and float32 at N rows")
    parser.add_argument("--settle-check", type=int, metavar="N", help="placing N rows: serial vs parallel epochs")
    parser.add_argument("--report", type=Path, help="print the tables again from a --json file, running nothing")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("dim", "clusters", "classes", "baseline_n", "exact_queries"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not args.spread > 0:
        parser.error(f"--spread must be above 0, got {args.spread}")
    if args.classes > args.clusters:
        parser.error(f"--classes ({args.classes}) cannot exceed --clusters ({args.clusters})")
    if args.one:
        print(json.dumps(one_size(args)))
        return
    if args.report:
        print_report(json.loads(args.report.read_text()))
        return
    smallest = args.clusters * SEEDS_PER_CLUSTER * 20
    if min(args.n) < smallest:
        parser.error(f"--n must be at least {smallest:,} (20 rows per seed), got {min(args.n):,}")

    if args.settle_check is not None:
        if args.settle_check < 20_000:
            parser.error(f"--settle-check needs at least 20,000 rows, got {args.settle_check:,}")
        print_settle_check(settle_check(args.settle_check, args))
        return
    if args.storage_check is not None:
        if args.storage_check < 1000:
            parser.error(f"--storage-check needs at least 1,000 rows, got {args.storage_check:,}")
        check = storage_check(args.storage_check, args)
        if args.json:
            args.json.write_text(json.dumps({"storage_check": check}, indent=1))
        print_storage_check(check)
        return
    sizes = sorted(args.n)
    results = []
    for n in sizes:
        command = [sys.executable, __file__, "--one", str(n), "--dim", str(args.dim), "--clusters", str(args.clusters)]
        command += ["--classes", str(args.classes), "--spread", str(args.spread), "--baseline-n", str(args.baseline_n)]
        command += ["--exact-queries", str(args.exact_queries)] + (["--tmp", args.tmp] if args.tmp else [])
        if not args.baselines or n != sizes[-1]:
            command.append("--no-baselines")
        print(f"running {n:,} items ...", file=sys.stderr, flush=True)
        done = subprocess.run(command, capture_output=True, text=True, env=os.environ)
        if done.returncode != 0:
            sys.exit(f"the {n:,}-item run failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    report = {"sizes": results}
    if args.embed_cost:
        report["embed_cost"] = embed_cost(args.tmp)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print_report(report)


def print_report(report: dict) -> None:
    results = report["sizes"]
    for r in results:
        print_size(r)
    if "baselines" in results[-1]:
        print_baselines(results[-1])
    estimate = print_scaling(results) if len(results) > 1 else None
    if "embed_cost" in report:
        print_embed_cost(report["embed_cost"])
        if estimate is not None:
            print_estimate(estimate, report["embed_cost"])


if __name__ == "__main__":
    main()
