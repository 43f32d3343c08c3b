"""Embedding extraction: images/s of ``explorer embed`` from PNG files on disk vs bare inference.

The file side is the whole user step, ``workflow.embed`` on a scanned project of the demo digits
(1,797 PNG files, 32 px): decoding, resizing, the small-cnn encoder from a checkpoint, and the
atomic save of the embeddings. The bare side runs the same model on the same images already
decoded and normalised as tensors in memory (``model(x)`` under inference mode, same batch size).
Best of ``--repeats`` runs each, alternating, in wall and in CPU time. Target: ratio >= 0.8 on CPU.

    nice -n 10 .venv/bin/python benchmarks/ssl_embed_speed.py [--repeats 3] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ssl_data import cpu_clock, read_collection  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--backbone", default="small-cnn")
    args = parser.parse_args()

    import torch

    from explorer import workflow
    from explorer.demo import write_demo
    from explorer.ssl.augment import normalise, to_batch
    from explorer.ssl.checkpoint import save_checkpoint
    from explorer.ssl.encoder import untrained_encoder
    from explorer.store import Project

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp) / "demo")
        encoder = untrained_encoder(args.backbone, 32, device="cpu")
        checkpoint = Path(tmp) / "encoder.pt"
        save_checkpoint(
            {
                "encoder": encoder.backbone.state_dict(),
                "backbone": args.backbone,
                "feature_dim": encoder.feature_dim,
                "image_size": 32,
                "epoch": 0,
                "config": {},
            },
            checkpoint,
        )
        images, _ = read_collection(demo.images, demo.truth)
        tensors = [normalise(to_batch(images[s : s + args.batch_size])) for s in range(0, len(images), args.batch_size)]
        model = encoder.backbone
        n = len(images)
        best = {"files": (0.0, 0.0), "bare": (0.0, 0.0)}
        with Project(demo.images) as project:
            workflow.scan(project)
            for repeat in range(args.repeats):
                wall, cpu = time.perf_counter(), cpu_clock()
                workflow.embed(project, str(checkpoint), batch_size=args.batch_size, device="cpu", fresh=True)
                wall, cpu = time.perf_counter() - wall, cpu_clock() - cpu
                best["files"] = (max(best["files"][0], n / wall), max(best["files"][1], n / cpu))
                wall, cpu = time.perf_counter(), cpu_clock()
                with torch.inference_mode():
                    for x in tensors:
                        model(x)
                wall, cpu = time.perf_counter() - wall, cpu_clock() - cpu
                best["bare"] = (max(best["bare"][0], n / wall), max(best["bare"][1], n / cpu))
                print(
                    f"  run {repeat + 1}: files {best['files'][0]:.0f} img/s, bare {best['bare'][0]:.0f} img/s",
                    flush=True,
                )
    files, bare = best["files"], best["bare"]
    print(f"\n{args.backbone}, {n} demo digits at 32 px, batch {args.batch_size}")
    print("| path | img/s (wall) | img/CPU-s |")
    print("|---|---:|---:|")
    print(f"| bare inference, tensors in memory | {bare[0]:.0f} | {bare[1]:.0f} |")
    print(f"| explorer embed from PNG files | {files[0]:.0f} | {files[1]:.0f} |")
    print(f"| ratio files / bare | {files[0] / bare[0]:.3f} | {files[1] / bare[1]:.3f} |")


if __name__ == "__main__":
    main()
