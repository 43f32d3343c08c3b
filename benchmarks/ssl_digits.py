"""SimCLR on scikit-learn's handwritten digits: is the default CPU recipe better than raw pixels?

1797 8x8 digits, upscaled to 32x32 with PIL bilinear and turned grey -> RGB (as a PNG folder of
them would be decoded), train the default config for a wall-clock budget, then compare
leave-one-out kNN accuracy (k=20, cosine) of the trained encoder against raw pixels and the same
backbone untrained (baselines measured in the same run).

    .venv/bin/python benchmarks/ssl_digits.py [--minutes 3] [--epochs N] [--batch-size B] [--lr X]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def digits_images(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, size, size, 3) uint8, labels (1797,)) from sklearn's load_digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = (digits.images / 16.0 * 255.0).round().astype(np.uint8)  # (N, 8, 8), 0..16 -> 0..255
    big = [np.asarray(Image.fromarray(g, mode="L").resize((size, size), Image.Resampling.BILINEAR)) for g in grey]
    rgb = np.repeat(np.stack(big)[..., None], 3, axis=-1)
    return np.ascontiguousarray(rgb), digits.target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget (max_minutes)")
    parser.add_argument("--epochs", type=int, default=None, help="override TrainConfig.epochs")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from explorer.ssl.encoder import load_encoder, untrained_encoder
    from explorer.ssl.evaluate import knn_accuracy, linear_probe_accuracy, pixel_features
    from explorer.ssl.trainer import TrainConfig, train

    torch.set_num_threads(2)  # the target machine: two CPU cores
    images, labels = digits_images(32)
    config = TrainConfig(method=args.method, max_minutes=args.minutes, device="cpu", seed=args.seed)
    if args.epochs is not None:
        config.epochs = args.epochs
    if args.batch_size is not None:
        config.batch_size = args.batch_size
    if args.lr is not None:
        config.learning_rate = args.lr

    rows: list[tuple[str, float, float, str]] = []
    pixels = pixel_features(images)
    rows.append(("raw pixels 32x32", knn_accuracy(pixels, labels), linear_probe_accuracy(pixels, labels), ""))
    base = untrained_encoder(
        config.backbone if config.backbone != "auto" else "small-cnn", 32, seed=args.seed, device="cpu"
    )
    untrained = base.embed(images)
    rows.append(
        (f"untrained {base.name}", knn_accuracy(untrained, labels), linear_probe_accuracy(untrained, labels), "")
    )

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train(images, config, Path(tmp))
        seconds = time.perf_counter() - start
        encoder = load_encoder(result.checkpoint, device="cpu")
        trained = encoder.embed(images)
    note = (
        f"{result.epochs_done} epochs in {seconds:.0f} s ({result.stopped_by}), "
        f"final loss {result.history[-1]['loss']:.3f}, {result.history[-1]['images_per_s']:.0f} img/s"
    )
    rows.append(
        (f"{config.method} {encoder.name}", knn_accuracy(trained, labels), linear_probe_accuracy(trained, labels), note)
    )

    print(f"digits: {len(images)} images 32x32, config {config}")
    print(f"{'embedding':<22} {'kNN@20':>7} {'linear':>7}  notes")
    for name, knn, linear, extra in rows:
        print(f"{name:<22} {knn:7.3f} {linear:7.3f}  {extra}")
    print(f"ratio trained/raw-pixels kNN: {rows[2][1] / rows[0][1]:.3f}")


if __name__ == "__main__":
    main()
