"""Confidence calibration: does a pseudo-label's confidence say how often such labels are right?

A simulated labeller labels the demo digits (raw-pixel embeddings) or the overlapping clusters of
benchmarks/labelling_effort.py through the real workflow, 5 a round from Label next
(``workflow.suggest``) or at random. At each checkpoint (human labels given) the pseudo-labels are
compared with the truth, for the confidence the app shows now (cross-validated, isotonic:
``explorer.labels.calibrate``) and, as the baseline in the same run, the diffusion's own score
(certainty x reach, what the app showed before). Per row: expected calibration error (ECE, 10
equal-width bins, weighted by pseudo-labels), the share of pseudo-labels at 0.9 or more and how
many of those are right, the same at 0.5, the share of the whole collection the app estimates
to be labelled right (``PropagationResult.estimated_right``) against the true share, and the seconds the calibration fit took against one
propagation of every class.

With ``--scale N [N ...]`` it times instead, on the synthetic graphs of
benchmarks/propagation_scale.py with 5 labels per class: one cold propagation of every class, one
calibration fit, and one propagation after one more label (what a click costs when the kept
calibration is reused), as ratios to the cold propagation.

Run: ``nice -n 10 python benchmarks/calibration.py [--collection digits|clusters] [--picks suggest random]
[--checkpoints 20 50 100 200 400] [--trials 2] [--scale 100000 1000000]``
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
from explorer.labels.calibrate import calibration_for
from explorer.store import Project
from explorer.workflow.labelling import human_evidence, map_solver


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


def ece(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: sum over equal-width bins of share x |accuracy - mean confidence|."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - confidence[inside].mean())
    return float(total)


def describe(confidence: np.ndarray, right: np.ndarray) -> str:
    cells = [f"{ece(confidence, right):.3f}"]
    for cut in (0.9, 0.5):
        sure = confidence >= cut
        cells.append(f"{sure.mean():.1%}")
        cells.append(f"{right[sure].mean():.1%}" if sure.any() else "-")
    return " | ".join(cells)


def checkpoint(project: Project, truth_rows: np.ndarray) -> tuple[str, str, float, float]:
    """(calibrated cells, raw cells, fit seconds, one propagation's seconds) for the labels now."""
    map_run, item_ids, solver = map_solver(project)
    class_ids = np.array([c.id for c in project.classes()], np.int64)
    seeds, rejected = human_evidence(project, item_ids, class_ids)
    t0 = time.perf_counter()
    raw = solver.run_apart(seeds, len(class_ids), rejected)
    solve_s = time.perf_counter() - t0
    solver.calibration_memo = None  # a fresh fit at every checkpoint, timed
    t0 = time.perf_counter()
    calibration_for(solver, seeds, len(class_ids), rejected)
    fit_s = time.perf_counter() - t0
    shown = workflow.compute_propagation(project)
    names = {c.id: c.name for c in project.classes()}
    predicted = np.array([names.get(int(c), "") for c in shown.class_ids])
    pseudo = (seeds < 0) & (shown.class_ids >= 0)
    right = predicted[pseudo] == truth_rows[pseudo]
    estimate = shown.estimated_right()
    overall = f"{estimate:.1%}" if estimate is not None else "-"
    overall += f" vs {(predicted == truth_rows).mean():.1%}"
    calibrated = describe(shown.confidence[pseudo], right) + f" | {overall}"
    return calibrated, describe(raw.confidence[pseudo], right) + " | ", fit_s, solve_s


def simulate(images: Path, truth: dict[str, str], picks: str, seed: int, args) -> None:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / images.name
        shutil.copytree(images, copy)
        with Project(copy) as project:
            paths = project.paths_by_id()
            _, item_ids, _ = map_solver(project)
            truth_rows = np.array([truth[paths[int(i)]] for i in item_ids])
            labelled: set[int] = set()
            for target in args.checkpoints:
                while len(labelled) < target:
                    if picks == "suggest":
                        chosen = workflow.suggest(project, min(5, target - len(labelled))).item_ids.tolist()
                    else:
                        pool = np.array(sorted(set(item_ids.tolist()) - labelled))
                        chosen = rng.choice(pool, size=min(5, target - len(labelled)), replace=False).tolist()
                    for item in chosen:
                        name = truth[paths[item]]
                        cls = project.class_by_name(name) or project.add_class(name)
                        project.set_labels([item], cls.id)
                        labelled.add(item)
                shown, raw, fit_s, solve_s = checkpoint(project, truth_rows)
                print(f"| {seed} | {picks} | {target} | calibrated | {shown} | {fit_s / solve_s:.1f} |")
                print(f"| {seed} | {picks} | {target} | score (before) | {raw} | |", flush=True)


def scale(n: int) -> None:
    from propagation_scale import CLASSES, synthetic_graph

    from explorer.labels.propagate import Diffusion

    graph, cluster = synthetic_graph(n)
    rng = np.random.default_rng(1)
    seeds = np.full(n, -1, np.int64)
    for c in range(CLASSES):
        seeds[rng.choice(np.flatnonzero(cluster % CLASSES == c), 5, replace=False)] = c
    solver = Diffusion(graph)
    t0 = time.perf_counter()
    solver.run(seeds, CLASSES)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    calibration = calibration_for(solver, seeds, CLASSES)
    fit = time.perf_counter() - t0
    seeds[rng.choice(np.flatnonzero((cluster % CLASSES == 3) & (seeds < 0)))] = 3
    t0 = time.perf_counter()
    solver.run(seeds, CLASSES)
    kept = calibration_for(solver, seeds, CLASSES) is calibration
    one = time.perf_counter() - t0
    print(
        f"| {n:,} | {cold:.2f} | {fit:.2f} ({fit / cold:.1f}x) | {one:.2f} ({one / cold:.2f}x, kept: {kept}) |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", choices=("digits", "clusters"), default="digits")
    parser.add_argument("--picks", nargs="+", choices=("suggest", "random"), default=["suggest", "random"])
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[20, 50, 100, 200, 400])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--folds", type=int, help="cross-validation folds (default: the app's)")
    parser.add_argument("--scale", type=int, nargs="*", help="time the fit on synthetic graphs of these sizes")
    args = parser.parse_args()
    if args.folds:
        from explorer.labels import calibrate

        calibrate.FOLDS = args.folds
    if args.scale:
        print("| items | cold propagation s | calibration fit s | one more label s |\n|---:|---:|---:|---:|")
        for n in args.scale:
            scale(n)
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{args.collection}: pseudo-labels only (human labels left out)")
        print(
            "| trial | picks | labels | confidence | ECE | share >= 0.9 | right there | share >= 0.5 | right there "
            "| whole collection right: estimated vs true | fit / one propagation |"
        )
        print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for trial in range(args.trials):
            if args.collection == "digits":
                images, truth = prepare(Path(tmp) / f"t{trial}")
            else:
                images, truth = prepare_clusters(Path(tmp) / f"t{trial}", seed=1 + trial)
            for picks in args.picks:
                simulate(images, truth, picks, trial, args)


if __name__ == "__main__":
    main()
