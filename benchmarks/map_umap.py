"""Our map (FAISS kNN graph + UMAP fed with it, sampled above a size) vs plain UMAP.

For each size, synthetic clustered 128-d vectors (50 clusters, each a noisy 8-d linear patch, so
there is structure inside clusters to preserve) are mapped twice on the same vectors:
``ours`` = ``knn_graph`` + ``map_layout`` with seed 0 (what ``explorer map`` runs; UMAP then
runs single-threaded, which measured faster than its parallel mode on two shared cores), and plain
``umap.UMAP(metric="cosine").fit_transform`` (its own nearest-neighbour descent). Prints wall
times, the speed-up, and trustworthiness of both (sklearn, 10 neighbours, cosine, among the same
2,000 random rows). Both pay numba compilation before timing (a warm-up on 5,000 other rows:
above 4,096 rows plain UMAP switches to nearest-neighbour descent, which compiles separately).

Run: ``nice -n 10 python benchmarks/map_umap.py [--sizes 5000 50000 200000]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from explorer.neighbours.knn import knn_graph
from explorer.projection.layout import SAMPLE_ABOVE, SAMPLE_SIZE, map_layout, trustworthiness_on_sample


def clustered(n: int, d: int = 128, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """(n, d) float32: 50 clusters, each ``centre + z W_c + noise`` with an 8-d latent z."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d)).astype(np.float32)
    patches = rng.normal(size=(clusters, 8, d)).astype(np.float32) * 0.3
    label = rng.integers(0, clusters, n)
    z = rng.normal(size=(n, 8)).astype(np.float32)
    x = centres[label] + np.einsum("nl,nld->nd", z, patches[label]) + 0.1 * rng.normal(size=(n, d)).astype(np.float32)
    return x.astype(np.float32)


def ours(x: np.ndarray, k: int, seed: int | None, sample_above: int, sample_size: int):
    graph = knn_graph(x, k=k)
    layout = map_layout(x, graph, n_neighbors=k, seed=seed, sample_above=sample_above, sample_size=sample_size)
    return layout.xy, f"{graph.index_kind} recall {graph.recall or 1.0:.3f}, {layout.method}"


def plain(x: np.ndarray, k: int, seed: int | None):
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return umap.UMAP(n_neighbors=k, metric="cosine", random_state=seed).fit_transform(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000, 200000])
    parser.add_argument("--k", type=int, default=15)
    parser.add_argument("--sample-above", type=int, default=SAMPLE_ABOVE)
    parser.add_argument("--sample-size", type=int, default=SAMPLE_SIZE)
    parser.add_argument(
        "--plain-seed", type=int, default=None, help="plain UMAP's random_state (default None: parallel, its default)"
    )
    parser.add_argument("--skip-plain", action="store_true", help="time only ours")
    args = parser.parse_args()

    warm = clustered(5000, seed=99)
    ours(warm, args.k, 0, args.sample_above, args.sample_size)
    ours(warm, args.k, 0, 3000, 2000)  # the sampled path: placing compiles its own numba code
    if not args.skip_plain:
        plain(warm, args.k, args.plain_seed)
    print(
        f"{'items':>8} | {'ours s':>7} | {'plain s':>7} | {'speed-up':>8} | {'trust ours':>10} | {'trust plain':>11} | ours"
    )
    print("-" * 100)
    for n in args.sizes:
        x = clustered(n)
        t0 = time.perf_counter()
        xy, how = ours(x, args.k, 0, args.sample_above, args.sample_size)
        t_ours = time.perf_counter() - t0
        trust_ours = trustworthiness_on_sample(x, xy)
        if args.skip_plain:
            print(
                f"{n:>8} | {t_ours:>7.1f} | {'-':>7} | {'-':>8} | {trust_ours:>10.4f} | {'-':>11} | {how}", flush=True
            )
            continue
        t0 = time.perf_counter()
        xy_plain = plain(x, args.k, args.plain_seed)
        t_plain = time.perf_counter() - t0
        trust_plain = trustworthiness_on_sample(x, xy_plain)
        print(
            f"{n:>8} | {t_ours:>7.1f} | {t_plain:>7.1f} | {t_plain / t_ours:>7.1f}x | {trust_ours:>10.4f} | "
            f"{trust_plain:>11.4f} | {how}",
            flush=True,
        )


if __name__ == "__main__":
    main()
