"""Labelling effort: human labels needed until the whole demo collection is 95% correctly labelled.

A simulated labeller works on the demo digits through the real workflow (``write_demo``, scan,
``embed --encoder pixels``, ``map``): it starts from nothing, asks for the next 10 items to
label, labels them with their true digit (adding the class the first time it sees it),
propagates, and reads the labels the export would write (human labels plus every pseudo-label;
an unlabelled item counts as wrong). It repeats until at least ``--target`` of the collection is
right. Strategies: ``suggest`` (``explorer.workflow.suggest``) and ``random`` picks among the
unlabelled items (several seeds). Prints labels needed per strategy and the ratio.

Run: ``nice -n 10 python benchmarks/labelling_effort.py [--target 0.95 --batch 10 --random-seeds 5]``
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from explorer import workflow
from explorer.demo import write_demo
from explorer.store import Project


def prepare(folder: Path) -> tuple[Path, dict[str, str]]:
    """The demo collection scanned, embedded (pixels) and mapped, and its true labels by path."""
    demo = write_demo(folder)
    with open(demo.truth, newline="", encoding="utf-8") as f:
        truth = {row["path"]: row["label"] for row in csv.DictReader(f)}
    with Project(demo.images) as project:
        workflow.scan(project)
        workflow.embed(project, workflow.PIXELS)
        workflow.make_map(project)
    return demo.images, truth


def exported_accuracy(project: Project, truth: dict[str, str]) -> float:
    """Share of all items whose exported label (human or pseudo, any confidence) is the true one."""
    table = project.label_table()
    names = {c.id: c.name for c in project.classes()}
    paths = project.paths_by_id()
    right = sum(names.get(int(c)) == truth[paths[int(i)]] for i, c in zip(table.item_ids, table.class_ids, strict=True))
    return right / len(truth)


def simulate(images: Path, truth: dict[str, str], strategy: str, seed: int, args) -> tuple[int, float, float]:
    """(labels needed, accuracy reached, seconds per round) for one labeller on a fresh copy."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "digits"
        shutil.copytree(images, copy)
        with Project(copy) as project:
            ids_by_path = {item.path: item.id for item in project.items()}
            labelled: set[int] = set()
            accuracy, rounds, spent = 0.0, 0, 0.0
            while accuracy < args.target and len(labelled) < min(args.max_labels, len(truth)):
                t0 = time.perf_counter()
                if strategy == "suggest":
                    picks = workflow.suggest(project, args.batch).item_ids.tolist()
                else:
                    pool = np.array(sorted(set(ids_by_path.values()) - labelled))
                    picks = rng.choice(pool, size=min(args.batch, len(pool)), replace=False).tolist()
                paths = project.paths_by_id()
                for item in picks:
                    name = truth[paths[item]]
                    cls = project.class_by_name(name) or project.add_class(name)
                    project.set_labels([item], cls.id)
                    labelled.add(item)
                workflow.propagate(project, rounds=args.rounds)
                spent += time.perf_counter() - t0
                rounds += 1
                accuracy = exported_accuracy(project, truth)
    return len(labelled), accuracy, spent / max(rounds, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--batch", type=int, default=10, help="items labelled between propagations")
    parser.add_argument("--random-seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=0, help="pseudo-label rounds per propagation")
    parser.add_argument("--max-labels", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        images, truth = prepare(Path(tmp))
        print(f"demo digits: {len(truth)} images, raw-pixel embeddings, target {args.target:.0%} exported labels right")
        print(f"{'strategy':>16} | {'labels needed':>13} | {'accuracy':>8} | {'s per round':>11}")
        print("-" * 60)
        needed, acc, per_round = simulate(images, truth, "suggest", 0, args)
        print(f"{'suggest':>16} | {needed:>13} | {acc:>8.3f} | {per_round:>11.2f}", flush=True)
        random_needed = []
        for seed in range(args.random_seeds):
            n, a, t = simulate(images, truth, "random", seed, args)
            random_needed.append(n)
            print(f"{f'random (seed {seed})':>16} | {n:>13} | {a:>8.3f} | {t:>11.2f}", flush=True)
        mean = float(np.mean(random_needed))
        print(
            f"\nrandom picks need {mean:.0f} ± {np.std(random_needed):.0f} labels, suggestions {needed}: "
            f"{mean / needed:.2f}x fewer labels with suggestions"
        )


if __name__ == "__main__":
    main()
