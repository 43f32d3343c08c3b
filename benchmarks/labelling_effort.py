"""Labelling effort: human labels needed until a whole collection is 95, 98, 99% correctly labelled.

A simulated labeller works through the real workflow on the demo digits (``write_demo``, scan,
``embed --encoder pixels``, ``map``) or, with ``--collection clusters``, on overlapping synthetic
clusters (imported embeddings): it starts from nothing, asks for the next 10 items to label,
labels them with their true class (adding the class the first time it sees it),
propagates, and reads the labels the export would write (human labels plus every pseudo-label;
an unlabelled item counts as wrong). It repeats until the highest of ``--targets`` of the
collection is right (or ``--max-labels``), noting when it passes each target. Strategies:
``suggest`` (``explorer.workflow.suggest``: margin sampling, a fifth of the picks exploring),
suggestions as they were before (ranked by entropy, no exploring), and ``random`` picks among
the unlabelled items. Prints labels
needed per strategy and target, and the ratios.

Each of ``--trials`` collections (the digits whole, then random 90 % subsets of them; or the
clusters with successive seeds) is labelled once per strategy; means and spreads over trials.

Run: ``nice -n 10 python benchmarks/labelling_effort.py [--collection digits|clusters] [--targets 0.95 0.98 0.99]
[--batch 10] [--trials 5]``
"""

from __future__ import annotations

import argparse
import csv
import importlib
import shutil
import tempfile
import time
from contextlib import contextmanager
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


def prepare_clusters(folder: Path, seed: int = 1, n: int = 3000, classes: int = 16, noise: float = 1.0):
    """A harder collection than the digits, with known answers: n tiny image files whose
    embeddings (imported, 32-d) are overlapping Gaussian clusters: 16 classes of unequal size
    (Dirichlet(2) shares), each made of 1-3 separate modes, noise ``noise`` around unit-scale
    centres. Returns (images folder, truth by path)."""
    from PIL import Image

    from explorer.exchange.embeddings import import_embeddings

    rng = np.random.default_rng(seed)
    labels = rng.choice(classes, n, p=rng.dirichlet(np.full(classes, 2.0)))
    modes = [rng.normal(0, 1, (rng.integers(1, 4), 32)) for _ in range(classes)]
    x = np.stack([modes[c][rng.integers(len(modes[c]))] for c in labels]) + rng.normal(0, noise, (n, 32))
    images = folder / "clusters"
    images.mkdir(parents=True)
    paths = [f"item-{k:05d}.png" for k in range(n)]
    for k, path in enumerate(paths):  # the pixels do not matter: the imported embeddings do
        Image.fromarray(np.full((4, 4, 3), k % 251, np.uint8)).save(images / path)
    np.save(folder / "vectors.npy", x.astype(np.float32))
    (folder / "paths.txt").write_text("\n".join(paths), encoding="utf-8")
    with Project(images) as project:
        workflow.scan(project)
        import_embeddings(project, folder / "vectors.npy", folder / "paths.txt")
        workflow.make_map(project)
    return images, {path: f"class {c}" for path, c in zip(paths, labels.tolist(), strict=True)}


def exported_accuracy(project: Project, truth: dict[str, str]) -> float:
    """Share of all items whose exported label (human or pseudo, any confidence) is the true one."""
    table = project.label_table()
    names = {c.id: c.name for c in project.classes()}
    paths = project.paths_by_id()
    right = sum(names.get(int(c)) == truth[paths[int(i)]] for i, c in zip(table.item_ids, table.class_ids, strict=True))
    return right / len(truth)


@contextmanager
def entropy_uncertainty():
    """Suggestions as they were before margin sampling and exploring: ranked by the map's
    confidence (entropy x reach), every pick by doubt."""
    module = importlib.import_module("explorer.labels.suggest")
    margins, share = module.uncertainty, module.EXPLORE_SHARE
    module.uncertainty = lambda propagation, distance: (
        np.ones(len(distance)) if propagation is None else 1.0 - np.clip(propagation.confidence, 0.0, 1.0)
    )
    module.EXPLORE_SHARE = 0.0
    try:
        yield
    finally:
        module.uncertainty, module.EXPLORE_SHARE = margins, share


def simulate(
    images: Path, truth: dict[str, str], strategy: str, seed: int, args
) -> tuple[dict[float, int | None], float, float]:
    """({target: labels needed, None if not reached}, final accuracy, seconds per round) for one
    labeller on a fresh copy."""
    rng = np.random.default_rng(seed)
    reached: dict[float, int | None] = dict.fromkeys(args.targets)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / images.name
        shutil.copytree(images, copy)
        with Project(copy) as project:
            ids_by_path = {item.path: item.id for item in project.items()}
            labelled: set[int] = set()
            accuracy, rounds, spent = 0.0, 0, 0.0
            while accuracy < max(args.targets) and len(labelled) < min(args.max_labels, len(truth)):
                t0 = time.perf_counter()
                if strategy == "suggest":
                    picks = workflow.suggest(project, args.batch).item_ids.tolist()
                elif strategy == "suggest-entropy":
                    with entropy_uncertainty():
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
                for target in args.targets:
                    if reached[target] is None and accuracy >= target:
                        reached[target] = len(labelled)
    return reached, accuracy, spent / max(rounds, 1)


def trial_collection(tmp: Path, args, trial: int, base: tuple[Path, dict[str, str]] | None):
    """The collection of one trial: the digits (trial 0 whole, later trials a random 90 % of them,
    rescanned, embedded and mapped again), or the clusters made with seed ``clusters_seed + trial``."""
    if args.collection == "clusters":
        return prepare_clusters(tmp / f"trial-{trial}", seed=args.clusters_seed + trial)
    images, truth = base
    if trial == 0:
        return images, truth
    folder = tmp / f"trial-{trial}" / images.name
    shutil.copytree(images, folder)
    paths = sorted(truth)
    drop = np.random.default_rng(100 + trial).choice(len(paths), len(paths) // 10, replace=False)
    for k in drop:
        (folder / paths[k]).unlink()
    with Project(folder) as project:
        workflow.scan(project)
        workflow.embed(project, workflow.PIXELS)
        workflow.make_map(project)
    kept = set(paths) - {paths[k] for k in drop}
    return folder, {path: truth[path] for path in kept}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", choices=("digits", "clusters"), default="digits")
    parser.add_argument("--clusters-seed", type=int, default=1, help="first synthetic clusters collection")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.95, 0.98, 0.99])
    parser.add_argument("--batch", type=int, default=10, help="items labelled between propagations")
    parser.add_argument(
        "--trials",
        type=int,
        default=5,
        help="collections to try: the digits whole, then random 90 %% subsets; the clusters with successive seeds",
    )
    parser.add_argument("--rounds", type=int, default=0, help="pseudo-label rounds per propagation")
    parser.add_argument("--max-labels", type=int, default=1000)
    parser.add_argument(
        "--compare-entropy",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run suggestions as they were before margin sampling and exploring",
    )
    args = parser.parse_args()
    args.targets = sorted(args.targets)
    strategies = ["suggest", *(["suggest-entropy"] if args.compare_entropy else []), "random"]
    names = {
        "suggest": "suggest",
        "suggest-entropy": "suggest as before (entropy, no exploring)",
        "random": "random picks",
    }

    with tempfile.TemporaryDirectory() as tmp:
        base = prepare(Path(tmp) / "base") if args.collection == "digits" else None
        what = "demo digits, raw-pixel embeddings" if base else "overlapping clusters, 16 classes"
        print(f"{what}, {args.batch} labels per round, {args.trials} trial(s)")
        heads = " | ".join(f"labels for {t:.0%}" for t in args.targets)
        print(f"| trial | items | strategy | {heads} | final accuracy | s per round |")
        print("|---|---:|---|" + "---:|" * (len(args.targets) + 2))
        needed: dict[str, list[dict]] = {name: [] for name in strategies}
        for trial in range(args.trials):
            images, truth = trial_collection(Path(tmp), args, trial, base)
            for strategy in strategies:
                reached, acc, per_round = simulate(images, truth, strategy, trial, args)
                needed[strategy].append(reached)
                cells = " | ".join(
                    f"{reached[t]}" if reached[t] is not None else f">{args.max_labels}" for t in args.targets
                )
                print(
                    f"| {trial} | {len(truth):,} | {names[strategy]} | {cells} | {acc:.3f} | {per_round:.2f} |",
                    flush=True,
                )
        print(f"\nmean +- std over {args.trials} trial(s) (a run that never got there counts as {args.max_labels}):")
        print(f"| strategy | {heads} |\n|---|" + "---:|" * len(args.targets))
        means = {}
        for strategy in strategies:
            cells = []
            for t in args.targets:
                values = [r[t] if r[t] is not None else args.max_labels for r in needed[strategy]]
                short = sum(r[t] is None for r in needed[strategy])
                means[strategy, t] = float(np.mean(values))
                cells.append(f"{np.mean(values):.0f} +- {np.std(values):.0f}" + (f" ({short} never)" if short else ""))
            print(f"| {names[strategy]} | {' | '.join(cells)} |")
        for t in args.targets:
            ratio = means["random", t] / max(means["suggest", t], 1.0)
            print(f"{t:.0%}: suggestions need {ratio:.1f}x fewer labels than random picks")


if __name__ == "__main__":
    main()
