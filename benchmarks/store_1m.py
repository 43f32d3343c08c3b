"""The project store and the embeddings file at a million items.

Each figure is measured next to a baseline in the same run: the previous implementation of the
same query (kept below as ``old_*``, copied from the code before this change) or, where nothing
changed, a bare sqlite3 / numpy call doing the same work. Synthetic items (no image files: the
scan's decoding and the encoder are not what is measured here).

1. ``Project.record_scan`` of N items in the scan's batches of 256, vs bare ``executemany``
   into the same table in the same batches;
2. reads: ``items()`` (one object per item) vs ``readable_files()`` (arrays, what embed uses),
   ``item_ids``, ``paths_by_id`` vs bare fetches, ``known_files`` and ``label_table`` (N pseudo-
   labels + N/10 human labels) and ``label_counts`` old vs new, ``save_pseudo_labels`` of N old vs
   new, an item's label history after a bulk import of N/10 labels without vs with the index;
3. embeddings (N, D) float32 vs float16: written chunk by chunk through ``EmbeddingWriter`` vs
   the previous way (the whole array in memory, ``save_array``), file size, ``np.load`` vs memory-mapped open, and
   reading them back as float32 (what FAISS needs).

Run: ``nice -n 10 .venv/bin/python benchmarks/store_1m.py [--items 1000000] [--dim 128]``
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from explorer.store import Project, ScannedFile
from explorer.store.arrays import save_array
from explorer.store.embedding_file import EmbeddingWriter


def timed(fn, repeats: int = 1):
    """(best seconds of ``repeats`` calls, the last result)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def row(name: str, ours: float, base: float, base_name: str) -> None:
    print(f"| {name} | {ours:.3f} s | {base:.3f} s ({base_name}) | {base / max(ours, 1e-9):.2f}x |", flush=True)


# ---- the previous implementations, for the same-run comparison --------------------------------
def old_known_files(project: Project) -> dict:
    rows = project._query("SELECT path, id, bytes, mtime_ns, error IS NULL FROM items WHERE present = 1")
    return {p: (i, b, m, bool(r)) for p, i, b, m, r in rows}


def old_label_table_fetch(project: Project) -> np.ndarray:
    """The part of ``label_table`` that changed: reading the pseudo-labels."""
    with project._reading() as db:
        rows = db.execute("SELECT item_id, class_id, confidence FROM pseudo_labels").fetchall()
    return np.array(rows).reshape(-1, 3)


def new_label_table_fetch(project: Project) -> np.ndarray:
    with project._reading() as db:
        return np.fromiter(
            db.execute("SELECT item_id, class_id, confidence FROM pseudo_labels"),
            np.dtype([("item", np.int64), ("cls", np.int64), ("conf", np.float64)]),
        )


def old_label_counts(project: Project) -> dict:
    table = project.label_table()
    values, counts = np.unique(table.source.astype(str), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts)}


def old_save_pseudo_labels(project: Project, item_ids, class_ids, confidence) -> None:
    keep = np.asarray(class_ids) >= 0
    rows = zip(
        np.asarray(item_ids)[keep].tolist(),
        np.asarray(class_ids)[keep].tolist(),
        np.asarray(confidence, dtype=np.float64)[keep].tolist(),
    )
    with project.transaction() as db:
        known = {c for (c,) in db.execute("SELECT id FROM classes")}
        db.execute("DELETE FROM pseudo_labels")
        db.executemany(
            "INSERT INTO pseudo_labels(item_id, class_id, confidence) VALUES (?, ?, ?)",
            (r for r in rows if r[1] in known),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    n, dim = args.items, args.dim
    rng = np.random.default_rng(0)
    print(f"{n:,} items, embeddings {n:,} x {dim}\n")
    print("| step | ours | baseline | baseline / ours |\n| --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = Path(tmp) / "collection"
        root.mkdir()
        project = Project(root)
        files = [
            ScannedFile(f"{k // 1000:04d}/{k:07d}.jpg", 50_000 + k % 977, 1_700_000_000 * 10**9 + k, 224, 224, "RGB")
            for k in range(n)
        ]

        def record() -> None:
            for start in range(0, n, 256):
                project.record_scan(files[start : start + 256], gone=[])

        bare = sqlite3.connect(Path(tmp) / "bare.sqlite", isolation_level=None)
        bare.execute("PRAGMA journal_mode=WAL")
        bare.execute("PRAGMA synchronous=FULL")
        bare.execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, bytes INTEGER NOT NULL, "
            "mtime_ns INTEGER NOT NULL, width INTEGER, height INTEGER, mode TEXT, error TEXT, present INTEGER)"
        )

        def bare_record() -> None:
            for start in range(0, n, 256):
                bare.execute("BEGIN IMMEDIATE")
                bare.executemany(
                    "INSERT INTO items(path, bytes, mtime_ns, width, height, mode, error, present) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                    [
                        (f.path, f.bytes, f.mtime_ns, f.width, f.height, f.mode, f.error)
                        for f in files[start : start + 256]
                    ],
                )
                bare.execute("COMMIT")

        t_bare, _ = timed(bare_record)
        t_ours, _ = timed(record)
        row("record_scan, batches of 256 (new items)", t_ours, t_bare, "bare executemany")
        files.clear()

        t_items, items = timed(project.items)
        t_files, table = timed(project.readable_files)
        assert len(items) == len(table) == n
        del items
        row("readable files: readable_files() vs items()", t_files, t_items, "items()")
        t_ids, _ = timed(project.item_ids, 2)
        t_bare, _ = timed(lambda: bare.execute("SELECT id FROM items ORDER BY id").fetchall(), 2)
        row("item_ids()", t_ids, t_bare, "bare fetch")
        t_paths, _ = timed(project.paths_by_id, 2)
        t_bare, _ = timed(lambda: dict(bare.execute("SELECT id, path FROM items").fetchall()), 2)
        row("paths_by_id()", t_paths, t_bare, "bare fetch into a dict")
        t_old, _ = timed(lambda: old_known_files(project), 2)
        t_new, _ = timed(project.known_files, 2)
        row("known_files()", t_new, t_old, "previous")

        classes = np.array([project.add_class(f"class {k}").id for k in range(10)], np.int64)
        ids = project.item_ids()
        pseudo = classes[rng.integers(0, 10, n)]
        confidence = rng.random(n)
        t_old, _ = timed(lambda: old_save_pseudo_labels(project, ids, pseudo, confidence))
        t_new, _ = timed(lambda: project.save_pseudo_labels(ids, pseudo, confidence))
        row(f"save_pseudo_labels of {n:,}", t_new, t_old, "previous")

        # a bulk import of n/10 labels, then an item's history (shown on every click)
        labelled = {int(i): (int(classes[int(i) % 10]), "imported") for i in ids[: n // 10]}
        t_import, _ = timed(lambda: project.set_labels_many(labelled, "import"))
        probes = ids[: n // 10 : max(1, n // 1000)][:100]
        t_new, _ = timed(lambda: [project.item_history(int(i)) for i in probes])
        with project.transaction() as db:
            db.execute("DROP INDEX changes_by_item")
        t_old, _ = timed(lambda: [project.item_history(int(i)) for i in probes])
        with project.transaction() as db:
            db.execute("CREATE INDEX changes_by_item ON event_changes(item_id)")
        row(f"item_history x{len(probes)} (after importing {len(labelled):,} labels)", t_new, t_old, "no index")
        print(f"|   (the import of {len(labelled):,} labels itself, with the index: {t_import:.2f} s) | | | |")

        t_old, _ = timed(lambda: old_label_table_fetch(project), 2)
        t_new, _ = timed(lambda: new_label_table_fetch(project), 2)
        row("label_table(): reading the pseudo-labels", t_new, t_old, "previous")
        t_table, _ = timed(project.label_table, 2)
        print(f"|   (label_table() whole: {t_table:.2f} s) | | | |")
        t_old, before = timed(lambda: old_label_counts(project), 2)
        t_new, after = timed(project.label_counts, 2)
        assert before == after
        row("label_counts()", t_new, t_old, "previous")
        project.close()
        bare.close()

        # ---- embeddings -----------------------------------------------------------------------
        print(
            "\n| embeddings | file | written in chunks | previous: all in memory, one save | np.load | mmap open | read as float32 |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        vectors = rng.standard_normal((n, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        stamps = np.zeros((n, 2), np.int64)
        chunk = 4096
        for dtype in (np.float32, np.float16):
            folder = Path(tmp) / np.dtype(dtype).name
            folder.mkdir()

            def stream(folder: Path = folder, dtype: type = dtype) -> None:
                writer = EmbeddingWriter(folder, ids, stamps, dim, np.dtype(dtype))
                for start in range(0, n, chunk):
                    rows = np.arange(start, min(start + chunk, n))
                    writer.write(rows, vectors[rows])
                    writer.checkpoint(force=False)
                writer.finish()

            t_stream, _ = timed(stream)
            # the previous embed: every vector in memory, then one atomic save
            t_save, _ = timed(
                lambda folder=folder, dtype=dtype: save_array(folder / "whole.npy", vectors.astype(dtype))
            )
            path = folder / "embeddings.npy"
            size = path.stat().st_size
            t_load, _ = timed(lambda path=path: np.load(path), 2)
            t_mmap, mapped = timed(lambda path=path: np.load(path, mmap_mode="r"), 2)
            t_f32, as32 = timed(lambda mapped=mapped: np.array(mapped, np.float32), 2)  # a copy, as FAISS gets
            err = float(np.abs(as32 - vectors).max())
            del as32, mapped
            print(
                f"| {np.dtype(dtype).name} | {size / 1e6:,.0f} MB | {t_stream:.2f} s | {t_save:.2f} s | "
                f"{t_load:.2f} s | {t_mmap * 1000:.2f} ms | {t_f32:.2f} s (max error {err:.1e}) |",
                flush=True,
            )
    print(f"\npeak RSS {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
