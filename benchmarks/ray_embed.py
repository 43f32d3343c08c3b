"""Ray embedding: images/s of ``embed --ray`` (local Ray instance) vs ``workflow.embed``, same
machine, same files, same encoder; then an estimate of hours for 10M images on N GPUs.

1. A collection of generated PNGs (``--images``, ``--size`` px) is written and scanned.
2. ``workflow.embed`` and ``embed_with_ray`` run alternately (``--repeats`` each) with an
   untrained small-cnn checkpoint at the collection's size on CPU; Ray is started once
   (``ray.init(num_cpus=--cpus)``, timed apart). Each Ray run's wall time includes its actors'
   start (they load torch and the weights) and the merge of the shards.
3. Per-image costs for the estimate, measured here: decoding + resizing a 640x480 JPEG to 224 px
   (the local path's ``load_rgb_array``, one core), and ResNet-18 at 224 px on the CPU (bare
   inference, batch 32, ``--cpus`` threads).

    nice -n 10 .venv/bin/python benchmarks/ray_embed.py [--images 5000] [--size 32] [--repeats 2]
        [--cpus 2] [--gpu-images-per-s 5000] [--cpus-per-gpu 8]

The GPU rate is an assumption (``--gpu-images-per-s``, see benchmarks/README.md for why), not a
measurement: no GPU was used.
"""

from __future__ import annotations

import argparse
import inspect
import os
import tempfile
import time
from pathlib import Path

import numpy as np

TEN_MILLION = 10_000_000


def write_collection(folder: Path, n: int, size: int) -> None:
    """``n`` PNGs of ``size`` px: a coloured disc or bar on a noisy background (like real small files)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    yy, xx = np.mgrid[:size, :size]
    for k in range(n):
        image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        cx, cy, r = rng.integers(size // 4, 3 * size // 4, 3)
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < (r // 2 + 2) ** 2 if k % 2 else abs(xx - cx) < r // 3 + 1
        image[mask] = rng.integers(120, 256, 3)
        sub = folder / f"{k // 1000:03d}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(image).save(sub / f"img-{k:06d}.png")


def write_checkpoint(path: Path, size: int) -> None:
    from explorer.ssl.checkpoint import save_checkpoint
    from explorer.ssl.encoder import untrained_encoder

    encoder = untrained_encoder("small-cnn", size, device="cpu")
    state = {"encoder": encoder.backbone.state_dict(), "backbone": "small-cnn", "feature_dim": encoder.feature_dim}
    save_checkpoint({**state, "image_size": size, "epoch": 0, "config": {}}, path)


def time_ray_run(project, checkpoint: str, batch_size: int) -> tuple[float, float]:
    """(wall seconds of the whole run, seconds until the first batch came back: actor start-up)."""
    from explorer.cluster.ray_embed import embed_with_ray

    first: list[float] = []

    def note(report) -> None:
        if report.step == "embed" and report.done > 0 and not first:
            first.append(time.perf_counter())

    start = time.perf_counter()
    embed_with_ray(project, checkpoint, batch_size=batch_size, device="cpu", progress=note)
    end = time.perf_counter()
    return end - start, (first[0] - start) if first else float("nan")


def decode_cost(tmp: Path, repeats: int = 40) -> float:
    """Seconds to decode and resize one 640x480 JPEG to 224 px (one core)."""
    from PIL import Image

    from explorer.images.decode import load_rgb_array

    yy, xx = np.mgrid[:480, :640]
    rng = np.random.default_rng(1)
    photo = np.stack([np.sin(xx / 37.0 + c) * np.cos(yy / 23.0 - c) for c in range(3)], axis=-1) * 90 + 128
    photo = np.clip(photo + rng.normal(0, 12, photo.shape), 0, 255).astype(np.uint8)
    path = tmp / "photo.jpg"
    Image.fromarray(photo).save(path, quality=90)
    load_rgb_array(path, 224)
    start = time.process_time()
    for _ in range(repeats):
        load_rgb_array(path, 224)
    return (time.process_time() - start) / repeats


def resnet18_cpu_cost(threads: int, batch: int = 32, rounds: int = 3) -> float:
    """Wall seconds per image of ResNet-18 (standard stem) at 224 px on the CPU, bare inference."""
    import torch

    from explorer.ssl.encoder import untrained_encoder

    torch.set_num_threads(threads)
    model = untrained_encoder("resnet18", 224, device="cpu").backbone
    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        model(x)
        start = time.perf_counter()
        for _ in range(rounds):
            model(x)
    return (time.perf_counter() - start) / (rounds * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2, help="Ray's CPUs and torch's threads")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--gpu-images-per-s", type=float, default=5000.0, help="assumed ResNet-18 224 px rate per GPU")
    parser.add_argument("--cpus-per-gpu", type=int, default=8, help="CPUs decoding for each GPU in the estimate")
    args = parser.parse_args()
    # Before torch loads, for this process and the Ray workers it starts: under load, torch with
    # only set_num_threads(2) ran this model at half the speed it reached with OMP_NUM_THREADS=2
    # (254 vs 460 img/s), and Ray sets the variable for its workers itself.
    os.environ["OMP_NUM_THREADS"] = str(args.cpus)

    import ray
    import torch

    from explorer import workflow
    from explorer.store import Project

    torch.set_num_threads(args.cpus)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "collection"
        start = time.perf_counter()
        write_collection(folder, args.images, args.size)
        print(f"wrote {args.images} PNGs of {args.size} px in {time.perf_counter() - start:.1f} s", flush=True)
        checkpoint = tmp / "encoder.pt"
        write_checkpoint(checkpoint, args.size)
        start = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING")
        ray_start = time.perf_counter() - start
        print(f"ray.init(num_cpus={args.cpus}): {ray_start:.1f} s", flush=True)
        local_rates, ray_rates, first_batch = [], [], []
        with Project(folder) as project:
            workflow.scan(project)
            n = project.item_count()
            # workflow.embed may reuse an earlier run's vectors; every run here must compute its own
            fresh = {"fresh": True} if "fresh" in inspect.signature(workflow.embed).parameters else {}
            for repeat in range(args.repeats):
                start = time.perf_counter()
                local_run = workflow.embed(project, str(checkpoint), batch_size=args.batch_size, device="cpu", **fresh)
                local_rates.append(n / (time.perf_counter() - start))
                wall, first = time_ray_run(project, str(checkpoint), args.batch_size)
                ray_rates.append(n / wall)
                first_batch.append(first)
                print(
                    f"  run {repeat + 1}: local {local_rates[-1]:.0f} img/s, ray {ray_rates[-1]:.0f} img/s "
                    f"(first batch back after {first:.1f} s)",
                    flush=True,
                )
            ray_run = project.latest_run("embed").id
            difference = np.abs(
                project.load_run_array(ray_run, "embeddings") - project.load_run_array(local_run, "embeddings")
            ).max()
        ray.shutdown()
        decode_s = decode_cost(tmp)
    resnet_s = resnet18_cpu_cost(args.cpus)

    local, ray_best = max(local_rates), max(ray_rates)
    print(
        f"\n{n} PNGs at {args.size} px, small-cnn, batch {args.batch_size}, {args.cpus} CPUs (load {os.getloadavg()[0]:.1f})"
    )
    print(f"local workflow.embed:        {local:8.0f} img/s (best of {args.repeats})")
    print(f"embed --ray, whole run:      {ray_best:8.0f} img/s   ratio {ray_best / local:.2f}")
    print(f"embed --ray, first batch back after {min(first_batch):.1f} s (actors start, load torch and weights)")
    print(f"ray.init: {ray_start:.1f} s; max |ray - local| = {difference:.2e}")
    print(
        f"\nper image: decode + resize 640x480 JPEG -> 224 px {decode_s * 1e3:.1f} ms (one core); "
        f"ResNet-18 224 px on {args.cpus} CPU threads {resnet_s * 1e3:.1f} ms"
    )
    print(f"10M images on this machine's CPUs: {TEN_MILLION * (resnet_s + decode_s / args.cpus) / 3600:.0f} h")
    feed = args.cpus_per_gpu / decode_s  # images/s the decoding CPUs of one GPU deliver
    per_gpu = min(args.gpu_images_per_s, feed)
    print(
        f"one GPU: min(assumed {args.gpu_images_per_s:.0f} img/s, {args.cpus_per_gpu} CPUs decoding "
        f"{feed:.0f} img/s) = {per_gpu:.0f} img/s"
    )
    for gpus in (1, 4, 8, 32, 64):
        print(f"  {gpus:3d} GPU(s): {TEN_MILLION / (gpus * per_gpu) / 3600:6.2f} h for 10M images")


if __name__ == "__main__":
    main()
