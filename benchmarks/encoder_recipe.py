"""Augmentation recipes for colour collections where colour, texture and place are nuisances.

For each suite collection given, the images are decoded as the product decodes them (``--size``
px); raw pixels and, for each recipe, the default method (SimCLR, small-cnn) trained for the same
budget of CPU seconds of this process (CPU time rather than wall time: the machine is shared) are
scored in one run. CPU time is not proof against load either: with a second training beside it on
the two cores, SimCLR on mnist-cluttered got 9-10 epochs out of 480 CPU-s where alone it got 29
(2026-12-07), so run it alone, and compare rows of one run only.

- kNN@20 (cosine, leave-one-out, all labels) and a linear probe (70/30 split);
- pseudo-label accuracy from 1 / 3 / 10 random seeds a class (mean of ``--draws`` draws), by
  diffusion on the label space the product builds (UMAP 8-d of the FAISS graph).

Recipes (only colour images use them; grayscale collections keep their own):

- ``now``: what ``recipe_for`` gives colour images today;
- ``simclr``: SimCLR's colour distortion at strength 1 (brightness, contrast, saturation 0.8,
  hue 0.2, random grayscale 0.2);
- ``simclr-grey``: the same with random grayscale 0.5 (colour carries no class at all);
- ``simclr-affine``: the same plus small rotation, shear and shift (position and pose are
  nuisances too);
- ``simclr-wide-crop``: SimCLR's colour distortion with crops from 0.2 of the area;
- ``grey-narrow-crop``: ``simclr-grey`` with crops from 0.6 of the area (a small object stays in
  both views more often);
- ``grey-mostly``: SimCLR's colour distortion with random grayscale 0.8.

``--batch-sizes 64 128 256`` trains each recipe at each batch size (pairs of views a step).

Run: ``nice python benchmarks/encoder_recipe.py --collections mnist-cluttered shapes
[--recipes now simclr ...] [--budget-cpu-s 240] [--size 32] [--batch-sizes 64 128]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.collections import SUITE, make  # noqa: E402
from benchmarks.collections._common import read_truth  # noqa: E402
from benchmarks.label_graph import seeded  # noqa: E402
from benchmarks.ssl_data import cpu_clock  # noqa: E402

SIMCLR_COLOUR = dict(jitter_p=0.8, brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, grayscale_p=0.2)


def recipes():
    from explorer.ssl.augment import recipe_for

    def now(size, grey):
        return recipe_for(size, grey)

    def simclr(size, grey):
        return recipe_for(size, grey) if grey else dataclasses.replace(recipe_for(size, grey), **SIMCLR_COLOUR)

    def simclr_grey(size, grey):
        return simclr(size, grey) if grey else dataclasses.replace(simclr(size, grey), grayscale_p=0.5)

    def simclr_affine(size, grey):
        if grey:
            return recipe_for(size, grey)
        return dataclasses.replace(simclr(size, grey), rotation=15.0, shear=0.15, shift=0.1)

    def simclr_wide_crop(size, grey):
        return simclr(size, grey) if grey else dataclasses.replace(simclr(size, grey), crop_scale=(0.2, 1.0))

    def grey_narrow_crop(size, grey):
        return simclr_grey(size, grey) if grey else dataclasses.replace(simclr_grey(size, grey), crop_scale=(0.6, 1.0))

    def grey_mostly(size, grey):
        return simclr(size, grey) if grey else dataclasses.replace(simclr(size, grey), grayscale_p=0.8)

    return {
        "now": now,
        "simclr": simclr,
        "simclr-grey": simclr_grey,
        "simclr-affine": simclr_affine,
        "simclr-wide-crop": simclr_wide_crop,
        "grey-narrow-crop": grey_narrow_crop,
        "grey-mostly": grey_mostly,
    }


def scores(x: np.ndarray, y: np.ndarray, draws: int) -> str:
    from explorer.labels.propagate import Diffusion
    from explorer.labels.space import label_space
    from explorer.neighbours.knn import knn_graph
    from explorer.ssl.evaluate import knn_accuracy, linear_probe_accuracy

    x = np.ascontiguousarray(x, np.float32)
    knn, linear = knn_accuracy(x, y, k=20), linear_probe_accuracy(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = knn_graph(x, k=30)
        solver = Diffusion(label_space(x, graph)[1], power=1.0, neighbours=None)
    cells = " / ".join(f"{seeded(solver, y, k, draws):.3f}" for k in (1, 3, 10))
    return f"{knn:.3f} | {linear:.3f} | {cells}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="+", default=["mnist-cluttered", "shapes"], choices=SUITE)
    parser.add_argument("--recipes", nargs="+", default=list(recipes()), choices=list(recipes()))
    parser.add_argument("--budget-cpu-s", type=float, default=240.0, help="training budget per recipe")
    parser.add_argument("--size", type=int, default=32, help="training and embedding image size")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[0], help="train each recipe at each (0: the default)"
    )
    parser.add_argument(
        "--lr-scales",
        type=float,
        nargs="+",
        default=[1.0],
        help="train at each multiple of the trainer's default learning rate (trainer.default_learning_rate)",
    )
    args = parser.parse_args()

    import torch

    import explorer.ssl.methods.base as base
    from explorer.images.decode import load_rgb_array
    from explorer.ssl.encoder import load_encoder
    from explorer.ssl.evaluate import pixel_features
    from explorer.ssl.methods import METHODS
    from explorer.ssl.trainer import TrainConfig, default_batch_size, default_learning_rate, train

    torch.set_num_threads(2)
    made_recipes = recipes()
    print(f"budget {args.budget_cpu_s:.0f} CPU-s a recipe, {args.size} px, seeds mean of {args.draws} draws")
    print(
        "| collection | embedding | kNN@20 | linear | seeded 1 / 3 / 10 a class | notes |\n|---|---|---:|---:|---|---|"
    )
    for name in args.collections:
        with tempfile.TemporaryDirectory() as tmp:
            made = make(name, Path(tmp))
            rows = read_truth(made.truth)
            classes = sorted({label for _, label in rows})
            images = np.stack([load_rgb_array(made.images / path, args.size) for path, _ in rows])
            y = np.array([classes.index(label) for _, label in rows])
        print(f"| {name} | raw pixels | {scores(pixel_features(images), y, args.draws)} | |", flush=True)
        runs = ((r, b, x) for r in args.recipes for b in args.batch_sizes for x in args.lr_scales)
        for recipe, batch, scale in runs:
            base.recipe_for = made_recipes[recipe]  # what every method's ``recipe`` asks for
            config = TrainConfig(epochs=10_000, max_minutes=args.budget_cpu_s / 60, device="cpu", seed=args.seed)
            config.image_size, config.batch_size = args.size, batch or None
            if scale != 1.0:  # a multiple of the trainer's own default (its rule reads class attributes only)
                cpu = torch.device("cpu")
                config.learning_rate = scale * default_learning_rate(
                    METHODS[config.method], batch or default_batch_size(cpu), cpu
                )
            with tempfile.TemporaryDirectory() as tmp:
                wall, cpu = time.perf_counter(), cpu_clock()
                result = train(images, config, Path(tmp), clock=cpu_clock)
                wall, cpu = time.perf_counter() - wall, cpu_clock() - cpu
                vectors = load_encoder(result.checkpoint, device="cpu").embed(images)
            note = f"{result.epochs_done} epochs, {cpu:.0f} CPU-s / {wall:.0f} s wall"
            label = (
                recipe + (f", batch {batch}" if batch else "") + (f", {scale:g}x learning rate" if scale != 1 else "")
            )
            print(f"| {name} | {label} | {scores(vectors, y, args.draws)} | {note} |", flush=True)


if __name__ == "__main__":
    main()
