"""Query by an image at scale: the time `explorer similar` spends finding neighbours of one vector.

Synthetic float32 (or float16) embeddings of 100k and 1M rows, stored as the embed step stores
them (a memory-mapped .npy); in the same run: our block-wise cosine scan (what `workflow.similar`
does after embedding the query) against a FAISS exact inner-product index built on normalised
rows (build time shown apart: a one-off per map the scan never pays). Median of 5 queries.

Run: ``nice python benchmarks/similar_speed.py [--rows 100000 1000000] [--dim 128]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.workflow.embedding import _cosine_to  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    args = parser.parse_args()
    import faiss

    print("| rows | dim | our scan (memory-mapped) | FAISS flat IP search | FAISS build |\n|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            path = Path(tmp) / f"e{n}.npy"
            out = np.lib.format.open_memmap(path, mode="w+", dtype=args.dtype, shape=(n, args.dim))
            for start in range(0, n, 100_000):
                out[start : start + 100_000] = rng.normal(size=(min(100_000, n - start), args.dim))
            out.flush()
            del out
            vectors = np.load(path, mmap_mode="r")
            queries = rng.normal(size=(5, args.dim)).astype(np.float32)
            ours = []
            for q in queries:
                t = time.perf_counter()
                sims = _cosine_to(q, vectors)
                np.argpartition(-sims, 50)[:50]
                ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            x = np.array(vectors, np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            index = faiss.IndexFlatIP(args.dim)
            index.add(x)
            build = time.perf_counter() - t
            theirs = []
            for q in queries:
                t = time.perf_counter()
                index.search((q / np.linalg.norm(q))[None], 50)
                theirs.append(time.perf_counter() - t)
            del x, index
            print(
                f"| {n:,} | {args.dim} | {np.median(ours) * 1000:.0f} ms | {np.median(theirs) * 1000:.0f} ms | {build:.1f} s |",
                flush=True,
            )


if __name__ == "__main__":
    main()
