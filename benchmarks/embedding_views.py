"""Embedding views: one plain view against the mean of several views, on the same trained encoder.

For each prepared suite project (``labelling_effort.py --prepare-only DIR``; copied, the original
is not touched), the encoder of its training run embeds every image twice in one run: as itself
(one view, as before) and as the mean of ``--views`` views of its training recipe
(``Encoder.use_views``, each view one transform for every image). Each set of vectors is mapped
afresh (``make_map(fresh=True)``, so whitening, the label space and the bridge come with it), then:
kNN@20 (leave-one-out, cosine) of the raw and the whitened vectors, seeded accuracy from 1 / 3 / 10
random seeds a class (``--draws`` draws), and the labelling loop following ``suggest``, 10 a round,
exported accuracy at 50 / 100 / 200 / 300 labels (the estimate of "right" in brackets).

Run: ``nice python benchmarks/embedding_views.py --prepared DIR [--collections shapes ...] [--views 8]``
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelling_effort import (  # noqa: E402
    exported_accuracy,
    label,
    prepared_collections,
    prepared_parser,
    seeded_accuracy,
    true_classes,
)

CHECKPOINTS = (50, 100, 200, 300)


def embed_as(project, views: int) -> tuple[np.ndarray, float]:
    """Write the training run's encoder's vectors with ``views`` views into the latest embed run's
    file (rows in its order) and map them afresh; returns (the vectors, seconds to embed)."""
    from explorer import workflow
    from explorer.ssl.augment import is_grayscale

    train = workflow.resolve_encoder(project, None, "cpu")[0]
    ids, images = workflow.load_images(project, train.image_size)
    train.use_views(views, is_grayscale(images))
    started = time.perf_counter()
    vectors = train.embed(images)
    seconds = time.perf_counter() - started
    run = project.latest_run("embed")
    order = project.load_run_array(run.id, "item_ids")
    at = {int(i): k for k, i in enumerate(ids)}
    vectors = vectors[[at[int(i)] for i in order]]
    np.save(project.run_dir(run.id) / "embeddings.npy", vectors)
    workflow.make_map(project, fresh=True)
    return vectors, seconds


def loop(project, truth: dict[str, str]) -> list[str]:
    from explorer import workflow

    cells, labelled = [], 0
    while labelled < max(CHECKPOINTS):
        picks = workflow.suggest(project, 10).item_ids.tolist()
        label(project, picks, truth)
        labelled += len(picks)
        result = workflow.propagate(project)
        if labelled in CHECKPOINTS:
            estimate = result.estimated_right()
            said = "-" if estimate is None else f"{estimate:.2f}"
            cells.append(f"{exported_accuracy(project, truth):.3f} ({said})")
    return cells


def main() -> None:
    from explorer.neighbours.whiten import fit_whitening
    from explorer.ssl.evaluate import knn_accuracy
    from explorer.store import Project

    parser = prepared_parser(__doc__)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(
        "| collection | views | kNN@20 raw / whitened | seeded 1 / 3 / 10 a class | suggest: right at 50 / 100 / 200 / 300 labels | embed s |"
    )
    print("|---|---:|---|---|---|---:|")
    for name, truth in prepared_collections(args):
        for views in (1, args.views):
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / name
                shutil.copytree(args.prepared / name, copy)
                with Project(copy) as project:
                    vectors, seconds = embed_as(project, views)
                    order = project.load_run_array(project.latest_run("embed").id, "item_ids")
                    _, y = true_classes(project, order, truth)
                    knn = (knn_accuracy(vectors, y), knn_accuracy(fit_whitening(vectors).apply(vectors), y))
                    seeded = [seeded_accuracy(project, truth, k, args.draws) for k in (1, 3, 10)]
                    cells = loop(project, truth)
            print(
                f"| {name} | {views} | {knn[0]:.3f} / {knn[1]:.3f} | {' / '.join(f'{s:.3f}' for s in seeded)} "
                f"| {' / '.join(cells)} | {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
