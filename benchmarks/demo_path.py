"""What the default path reaches on the demo digits, beside the raw-pixel baseline, in one run.

    .venv/bin/python benchmarks/demo_path.py [--epochs 30] [--minutes M] [--seeds 1 3 10] [--draws 5]

Trains the default CPU recipe (what `explorer train` does with no flags), embeds, maps, and reports:
kNN accuracy (k=20, cosine) of the embeddings, and the accuracy of pseudo-labels propagated from
N random seeds per class (mean over draws), for the trained encoder and for raw pixels.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from explorer import workflow
from explorer.demo import write_demo
from explorer.ssl.evaluate import knn_accuracy
from explorer.ssl.trainer import TrainConfig
from explorer.store import Project


def pseudo_label_accuracy(project: Project, truth: dict[str, str], per_class: int, draws: int) -> float:
    """Mean accuracy over unseeded items of propagation from ``per_class`` random seeds a class."""
    paths = project.paths_by_id()
    ids = project.item_ids()
    labels = np.array([truth[paths[int(i)]] for i in ids])
    scores = []
    for draw in range(draws):
        rng = np.random.default_rng(draw)
        seeds = np.concatenate(
            [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
        )
        project.set_labels(ids, None)
        classes = project.ensure_classes(np.unique(labels))
        project.set_labels_many({int(ids[s]): (classes[labels[s]], "seed") for s in seeds}, "benchmark seeds")
        result = workflow.compute_propagation(project)
        names = {c.id: c.name for c in project.classes()}
        predicted = np.array([names.get(int(c), "") for c in result.class_ids])
        row_labels = np.array([truth[paths[int(i)]] for i in result.item_ids])
        rest = np.ones(len(predicted), bool)
        rest[np.isin(result.item_ids, ids[seeds])] = False
        scores.append(float((predicted[rest] == row_labels[rest]).mean()))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="training epochs (default: the CLI's)")
    parser.add_argument("--minutes", type=float, default=None, help="optional wall-clock budget for training")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        demo = write_demo(Path(tmp))
        with open(demo.truth, newline="") as f:
            truth = {r["path"]: r["label"] for r in csv.DictReader(f)}
        project = Project(demo.images)
        workflow.scan(project)
        rows = []
        for name in ("pixels", "trained"):
            start = time.perf_counter()
            if name == "trained":
                config = TrainConfig(max_minutes=args.minutes, epochs=args.epochs)
                workflow.train(project, config)
                workflow.embed(project)
            else:
                workflow.embed(project, workflow.PIXELS)
            workflow.make_map(project)
            seconds = time.perf_counter() - start
            emb = workflow.current_embeddings(project)
            paths = project.paths_by_id()
            labels = np.array([truth[paths[int(i)]] for i in emb.item_ids])
            knn = knn_accuracy(emb.vectors, labels, k=20)
            accs = [pseudo_label_accuracy(project, truth, n, args.draws) for n in args.seeds]
            rows.append((name, seconds, knn, accs))
        train_run = project.latest_run("train")
        project.close()

    print(f"demo digits, 1797 images; training: {train_run.metrics}")
    header = (
        "| embeddings | minutes | kNN acc (k=20) | " + " | ".join(f"pseudo acc, {n}/class" for n in args.seeds) + " |"
    )
    print(header)
    print("|" + "---|" * (3 + len(args.seeds)))
    for name, seconds, knn, accs in rows:
        print(f"| {name} | {seconds / 60:.1f} | {knn:.3f} | " + " | ".join(f"{a:.3f}" for a in accs) + " |")
    base = rows[0]
    print(f"trained / pixels, kNN accuracy: {rows[1][2] / base[2]:.3f}")


if __name__ == "__main__":
    main()
