"""A 100k-image project under a labelling session's load, with memory measured.

Steps (each timed, resident memory after each): write N tiny PNG files (8x8, 20 colour groups)
and scan them with the real scan path (``explorer.images.scan.scan_collection``: list, decode,
record); give every item a synthetic 64-d embedding (its colour group's centre plus noise: decoding
and embedding 100k images is the embed benchmark's business, not the store's) saved as an embed
run; build the FAISS kNN graph (k=15) and a PCA layout saved as a map run (UMAP at 100k takes
minutes and is not what is measured here); label ``--labels`` items in ``--bursts`` bursts (one
undoable action each, as a lasso + key press), accepting and rejecting some pseudo-labels in
between, propagating after every burst; then ``--rounds`` more propagations with nothing changed;
undo the last burst; export a CSV manifest.

Prints the time per step, resident memory (RSS) after every propagation, the peak RSS, and the
ratios of the last propagation round to the first (the baseline measured in the same run): memory
that stays at 1.00x grows with nothing over repeated propagations.

Run: ``nice -n 10 python benchmarks/load_100k.py [--items 100000] [--records-only]``
(``--records-only`` records the items through ``Project.record_scan`` without writing files.)
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from explorer import workflow
from explorer.images.scan import scan_collection
from explorer.neighbours.knn import knn_graph
from explorer.projection.pca import pca_preview
from explorer.store import Project, ScannedFile

GROUPS = 20


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # Linux: KiB


def write_files(root: Path, n: int, rng: np.random.Generator) -> None:
    """N 8x8 PNGs in folders of 1,000, each a flat colour of its group (path -> group by index)."""
    colours = rng.integers(0, 256, (GROUPS, 3))
    for k in range(n):
        folder = root / f"{k // 1000:03d}"
        if k % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), tuple(int(c) for c in colours[k % GROUPS])).save(folder / f"{k:06d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10, help="extra propagations with nothing changed")
    parser.add_argument("--records-only", action="store_true", help="record items without writing image files")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    timings: list[tuple[str, float, float]] = []  # (step, seconds, RSS MB after)

    def step(name: str, started: float) -> None:
        timings.append((name, time.perf_counter() - started, rss_mb()))
        print(f"{name:<50} {timings[-1][1]:8.2f} s   RSS {timings[-1][2]:7.0f} MB", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "collection"
        root.mkdir()
        print(f"start: RSS {rss_mb():.0f} MB")
        with Project(root) as project:
            t = time.perf_counter()
            if args.records_only:
                files = [ScannedFile(f"{k // 1000:03d}/{k:06d}.png", 100, 1, 8, 8, "RGB") for k in range(args.items)]
                for start in range(0, len(files), 5000):
                    project.record_scan(files[start : start + 5000], gone=[])
                step(f"record {args.items} items (no files)", t)
            else:
                write_files(root, args.items, rng)
                step(f"write {args.items} PNG files", t)
                t = time.perf_counter()
                report = scan_collection(project)
                assert report.added == args.items, report.summary()
                step(f"scan {args.items} files", t)

            t = time.perf_counter()
            ids = project.item_ids()
            group = np.array([int(p.rsplit("/", 1)[1][:6]) % GROUPS for p in map(project.paths_by_id().get, ids)])
            centres = rng.normal(size=(GROUPS, 64)) * 3
            vectors = (centres[group] + rng.normal(size=(len(ids), 64))).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            run = project.start_run("embed", {"encoder": "synthetic 64-d"})
            project.save_run_arrays(run, item_ids=ids, embeddings=vectors)
            project.finish_run(run, "done", {"items": len(ids), "dim": 64})
            step("embeddings (synthetic) saved as a run", t)

            t = time.perf_counter()
            graph = knn_graph(vectors, k=15)
            run = project.start_run("map", {"embed_run": run, "k": 15})
            project.save_run_arrays(
                run,
                item_ids=ids,
                xy=pca_preview(vectors),
                knn_indices=graph.indices,
                knn_similarities=graph.similarities,
            )
            project.finish_run(run, "done", {"items": len(ids), "index": graph.index_kind})
            del graph, vectors
            step(f"kNN graph ({project.run(run).metrics['index']}) + PCA map", t)

            classes = [project.add_class(f"group {g}").id for g in range(GROUPS)]
            order = rng.permutation(len(ids))
            per_burst = args.labels // args.bursts
            rounds_rss, rounds_s = [], []
            for b in range(args.bursts):
                chosen = order[b * per_burst : (b + 1) * per_burst]
                noisy = np.where(
                    rng.uniform(size=len(chosen)) < 0.05, rng.integers(0, GROUPS, len(chosen)), group[chosen]
                )
                t = time.perf_counter()
                project.set_labels_many(
                    {int(ids[i]): (classes[int(g)], "seed") for i, g in zip(chosen, noisy)}, f"burst {b}"
                )
                step(f"burst {b + 1}: label {len(chosen)} items (one action)", t)
                t = time.perf_counter()
                result = workflow.propagate(project)
                rounds_s.append(time.perf_counter() - t)
                rounds_rss.append(rss_mb())
                step(f"burst {b + 1}: propagate", t)
                t = time.perf_counter()
                pseudo = ids[order[args.labels + b * 700 : args.labels + b * 700 + 700]]
                project.accept_pseudo(pseudo[:500])
                project.reject_pseudo(pseudo[500:])
                step(f"burst {b + 1}: accept 500 + reject 200 pseudo-labels", t)
            assert (result.class_ids >= 0).sum() > 0.9 * len(ids)
            for r in range(args.rounds):
                t = time.perf_counter()
                workflow.propagate(project)
                rounds_s.append(time.perf_counter() - t)
                rounds_rss.append(rss_mb())
                step(f"propagate again ({r + 1}/{args.rounds}, nothing changed)", t)

            t = time.perf_counter()
            project.undo()
            step("undo the last action", t)
            t = time.perf_counter()
            report = workflow.export(project, "csv", Path(tmp) / "labels.csv")
            step("export CSV manifest", t)
            counts = project.label_counts()

    print()
    print(f"labels at the end: {counts}")
    print("RSS after each propagation (MB): " + " ".join(f"{m:.0f}" for m in rounds_rss))
    steady = rounds_rss[-max(args.rounds - 1, 1) :]  # the unchanged rounds after the first of them
    print(
        f"propagation rounds 1..{len(rounds_rss)}: RSS last/first {rounds_rss[-1] / rounds_rss[0]:.2f}x "
        f"({rounds_rss[-1] - rounds_rss[0]:+.0f} MB); last {len(steady)} unchanged rounds spread "
        f"{max(steady) - min(steady):.0f} MB; time last/first {rounds_s[-1] / rounds_s[0]:.2f}x "
        f"({rounds_s[0]:.2f} s -> {rounds_s[-1]:.2f} s)"
    )
    print(f"peak RSS: {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
