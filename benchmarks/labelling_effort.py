"""Labelling effort on the benchmark suite: how many human labels until a whole collection is right.

For each collection of ``benchmarks/collections`` it takes the default path of the command line
(``scan``, ``train --max-minutes M``, ``embed``, ``map``) and, in the same run, the raw-pixel path
(``embed --encoder pixels``, ``map``), then measures:

- kNN@20 of the trained encoder against raw pixels (``explorer evaluate`` with the truth file);
- seeded accuracy: pseudo-labels propagated from 1 / 3 / 10 random seeds a class, right among the
  items that are not seeds (an unreached item counts as wrong), mean over ``--draws`` draws; with
  ``--refine``, once more for one seed a class after ``explorer refine``;
- the summary's estimate of how much is right (calibrated confidence), beside the truth, per round;
- labels to each of ``--targets``: a simulated person asks ``explorer suggest`` for the next
  ``--batch`` images, labels them with their true class, propagates, and reads what the export
  would write (human labels plus every pseudo-label); the same with random picks, and with
  suggestions on the raw-pixel map (``--no-random``, ``--no-pixels`` leave those out, e.g. when
  only refine changes between two loops on one encoder); ``--refine-at N ...`` runs ``explorer
  refine`` once the person has given N labels; ``--refine-when-advised`` whenever ``propagate`` advises it (the
  person who follows the tool's advice).

Prints one table row per collection and writes every figure as JSON lines to ``--out``.

Run: ``nice -n 10 python benchmarks/labelling_effort.py [--collections mnist handwriting ...]
[--train-minutes 10] [--refine] [--refine-at 10 50] [--scale 1.0] [--out effort.jsonl]
[--prepared DIR]``; ``--prepared`` takes the default-path projects from an earlier run (the
same collections, trained the same way) so that several loops can be measured on one encoder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/labelling_effort.py`

from benchmarks.collections import SUITE, make  # noqa: E402
from explorer import workflow  # noqa: E402
from explorer.store import Project  # noqa: E402
from explorer.workflow.labelling import map_solver  # noqa: E402


def prepare(folder: Path, truth_csv: Path, train_minutes: float | None, epochs: int | None = None) -> None:
    """The default command-line path (or, with ``train_minutes`` None, the raw-pixel one) on ``folder``
    (``epochs``: an epoch cap beside the time, as ``train --epochs``)."""
    with Project(folder) as project:
        workflow.scan(project)
        if train_minutes is None:
            workflow.embed(project, workflow.PIXELS)
        else:
            from explorer.ssl.trainer import TrainConfig

            workflow.train(project, TrainConfig(max_minutes=train_minutes, epochs=epochs))
            workflow.embed(project)
        workflow.make_map(project)


def read_truth(truth_csv: Path) -> dict[str, str]:
    with open(truth_csv, newline="", encoding="utf-8") as f:
        return {row["path"]: row["label"] for row in csv.DictReader(f)}


def exported_accuracy(project: Project, truth: dict[str, str]) -> float:
    """Share of all items whose exported label (human or pseudo, any confidence) is the true one."""
    table = project.label_table()
    return labels_right(project, table.item_ids, table.class_ids, truth)


def labels_right(project: Project, item_ids, class_ids, truth: dict[str, str]) -> float:
    """Share of all items (``truth``'s) whose class id in ``class_ids`` names their true class;
    items not in ``item_ids`` count as wrong."""
    names = {c.id: c.name for c in project.classes()}
    paths = project.paths_by_id()
    right = sum(names.get(int(c)) == truth[paths[int(i)]] for i, c in zip(item_ids, class_ids, strict=True))
    return right / len(truth)


def true_classes(project: Project, item_ids: np.ndarray, truth: dict[str, str]) -> tuple[list[str], np.ndarray]:
    """(class names sorted, (N,) index of each of ``item_ids``' true class in them)."""
    paths = project.paths_by_id()
    names = sorted(set(truth.values()))
    return names, np.array([names.index(truth[paths[int(i)]]) for i in item_ids])


def prepared_parser(doc: str) -> argparse.ArgumentParser:
    """A parser for a benchmark over projects made by ``--prepare-only``: ``--prepared DIR`` and
    ``--collections``, described by the first line of ``doc``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--prepared", type=Path, required=True, help="folder of prepared projects")
    parser.add_argument("--collections", nargs="+", default=list(SUITE), choices=SUITE)
    return parser


def prepared_collections(args: argparse.Namespace):
    """Yield (name, truth by path) of each of ``args.collections`` prepared under ``args.prepared``
    (:func:`prepared_parser`), skipping those not prepared."""
    for name in args.collections:
        if (args.prepared / name).is_dir():
            yield name, read_truth(args.prepared / f"{name}.truth.csv")


def draw_seeds(y: np.ndarray, classes: int, per_class: int, draw: int) -> np.ndarray:
    """(N,) ``per_class`` random rows of each class seeded with it (draw ``draw``), -1 elsewhere."""
    rng = np.random.default_rng(draw)
    seeds = np.full(len(y), -1)
    for c in range(classes):
        rows = np.flatnonzero(y == c)
        seeds[rng.choice(rows, min(per_class, len(rows)), replace=False)] = c
    return seeds


def seeded_accuracy(project: Project, truth: dict[str, str], per_class: int, draws: int) -> float:
    """Mean over ``draws`` random draws of ``per_class`` seeds a class: share of the other items the
    propagation labels right (nothing is written to the project)."""
    _, item_ids, solver = map_solver(project)
    names, y = true_classes(project, item_ids, truth)
    scores = []
    for draw in range(draws):
        seeds = draw_seeds(y, len(names), per_class, draw)
        result = solver.run_apart(seeds, len(names))
        rest = seeds < 0
        scores.append(float((result.predicted[rest] == y[rest]).mean()))
    return float(np.mean(scores))


def label(project: Project, items: list[int], truth: dict[str, str]) -> None:
    paths = project.paths_by_id()
    for item in items:
        name = truth[paths[item]]
        cls = project.class_by_name(name) or project.add_class(name)
        project.set_labels([item], cls.id)


def refined_one_seed(folder: Path, truth: dict[str, str], work: Path, minutes: float | None) -> float:
    """Accuracy of the export after one random seed a class and ``explorer refine``."""
    from explorer.workflow.refine import refine

    copy = work / "refine-seeded" / folder.name
    shutil.copytree(folder, copy)
    with Project(copy) as project:
        by_class: dict[str, list[int]] = {}
        paths = project.paths_by_id()
        for item, path in sorted(paths.items()):
            by_class.setdefault(truth[path], []).append(item)
        rng = np.random.default_rng(0)
        label(project, [int(rng.choice(items)) for items in by_class.values()], truth)
        refine(project, max_minutes=minutes)
        return exported_accuracy(project, truth)


def simulate(folder: Path, truth: dict[str, str], strategy: str, work: Path, args) -> dict:
    """Label a fresh copy of ``folder`` round by round; {target: labels needed or None}, final accuracy,
    (labels, accuracy, the summary's estimate of it, its range's low and high; None before it is
    calibrated) after each round, and seconds."""
    copy = work / strategy / folder.name
    shutil.copytree(folder, copy)
    rng = np.random.default_rng(0)
    reached: dict[float, int | None] = dict.fromkeys(args.targets)
    curve: list[tuple] = []
    started = time.perf_counter()
    refine_at = sorted(args.refine_at) if strategy == "suggest" else []
    refined_at: list[int] = []
    with Project(copy) as project:
        labelled: set[int] = set()
        all_items = sorted(project.paths_by_id())
        accuracy = 0.0
        while accuracy < max(args.targets) and len(labelled) < min(args.max_labels, len(truth)):
            if strategy == "random":
                pool = np.array(sorted(set(all_items) - labelled))
                picks = rng.choice(pool, size=min(args.batch, len(pool)), replace=False).tolist()
            else:
                picks = workflow.suggest(project, args.batch).item_ids.tolist()
            label(project, picks, truth)
            labelled.update(picks)
            if refine_at and len(labelled) >= refine_at[0]:
                from explorer.workflow.refine import refine

                refine_at.pop(0)
                refine(project, max_minutes=args.refine_minutes)
            result = workflow.propagate(project)
            if args.refine_when_advised and strategy == "suggest" and result.advice:
                from explorer.workflow.refine import refine

                result = refine(project, max_minutes=args.refine_minutes).propagation
                refined_at.append(len(labelled))
            estimate, bounds = result.estimated_right(), result.right_range()
            accuracy = exported_accuracy(project, truth)
            low, high = (None, None) if bounds is None else (round(bounds[0], 4), round(bounds[1], 4))
            curve.append(
                (len(labelled), round(accuracy, 4), None if estimate is None else round(estimate, 4), low, high)
            )
            for target in args.targets:
                if reached[target] is None and accuracy >= target:
                    reached[target] = len(labelled)
    seconds = time.perf_counter() - started
    return {"reached": reached, "final": accuracy, "curve": curve, "refined_at": refined_at, "seconds": seconds}


def path_figures(
    images: Path, truth_csv: Path, folder: Path, minutes: float, draws: int, epochs=None, environment=None
) -> dict:
    """The default path (``prepare``) on a fresh copy of ``images`` at ``folder``, with the variables
    of ``environment`` set (the training process inherits them): epochs done, training images a
    second, kNN@20 of the encoder, seeded accuracy 1 / 3 / 10 a class, seconds."""
    shutil.copytree(images, folder)
    before = {name: os.environ.get(name) for name in environment or {}}
    os.environ.update(environment or {})
    started = time.perf_counter()
    try:
        prepare(folder, truth_csv, minutes, epochs)
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value
    seconds = time.perf_counter() - started
    truth = read_truth(truth_csv)
    with Project(folder) as project:
        train = project.latest_run("train").metrics
        seeded = [seeded_accuracy(project, truth, k, draws) for k in (1, 3, 10)]
    return {
        "epochs": train.get("epochs_done"),
        "images_per_s": round(float(train.get("images_per_s", 0.0)), 1),
        "knn": {k: round(v, 4) for k, v in knn_figures(folder, truth_csv).items()},
        "seeded": [round(s, 4) for s in seeded],
        "seconds": round(seconds, 1),
    }


def report_row(row: dict, out: Path | None) -> None:
    """Print ``row`` as a JSON line, and append it to ``out`` when given."""
    print(json.dumps(row), flush=True)
    if out is not None:
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def knn_figures(folder: Path, truth_csv: Path) -> dict[str, float]:
    with Project(folder) as project:
        report = workflow.evaluate(project, truth_csv)
    return {row.name: row.knn for row in report.rows}


def cell(reached: dict, target: float, most: int) -> str:
    return f"{reached[target]}" if reached[target] is not None else f">{most}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="+", default=list(SUITE), choices=SUITE)
    parser.add_argument("--scale", type=float, default=1.0, help="collection sizes (1.0: the full suite)")
    parser.add_argument("--train-minutes", type=float, default=10.0, help="`explorer train --max-minutes`")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.90, 0.95, 0.98])
    parser.add_argument("--batch", type=int, default=10, help="labels a round (`explorer suggest --n`)")
    parser.add_argument("--max-labels", type=int, default=300)
    parser.add_argument("--draws", type=int, default=5, help="random seed draws for seeded accuracy")
    parser.add_argument("--refine", action="store_true", help="also: one seed a class + `explorer refine`")
    parser.add_argument("--refine-at", type=int, nargs="*", default=[], help="label counts at which to refine")
    parser.add_argument(
        "--refine-when-advised", action="store_true", help="run `explorer refine` whenever propagation advises it"
    )
    parser.add_argument("--refine-minutes", type=float, default=None, help="`explorer refine --max-minutes`")
    parser.add_argument("--no-random", action="store_true", help="skip the random-picks baseline")
    parser.add_argument(
        "--no-pixels", action="store_true", help="skip the raw-pixel path (e.g. when only refine changes)"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON lines with every figure")
    parser.add_argument("--work", type=Path, default=None, help="folder for the collections (default: temporary)")
    parser.add_argument(
        "--prepared",
        type=Path,
        default=None,
        help="reuse default-path projects made earlier: PREPARED/NAME (the project) and PREPARED/NAME.truth.csv",
    )
    parser.add_argument(
        "--prepare-only",
        type=Path,
        default=None,
        help="only make the default-path projects in this folder (for --prepared)",
    )
    args = parser.parse_args()
    args.targets = sorted(args.targets)
    if args.prepare_only is not None:
        for name in args.collections:
            made = make(name, args.prepare_only / "made", scale=args.scale)
            shutil.copytree(made.images, args.prepare_only / name)
            shutil.copy(made.truth, args.prepare_only / f"{name}.truth.csv")
            prepare(args.prepare_only / name, made.truth, args.train_minutes)
        return

    heads = " / ".join(f"{t:.0%}" for t in args.targets)
    when = "when advised" if args.refine_when_advised else (args.refine_at or "never")
    print(f"train {args.train_minutes} min, {args.batch} labels a round, refine at {when}")
    print(
        f"| collection | items | classes | kNN encoder / pixels | seeded 1 / 3 / 10 a class | 1 a class + refine "
        f"| labels to {heads}: suggest | raw pixels + suggest | random picks |"
    )
    print("|---|---:|---:|---|---|---:|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for name in args.collections:
            started = time.perf_counter()
            made = make(name, work / "made", scale=args.scale)
            truth = read_truth(made.truth)
            folders = {}
            paths = (("default", args.train_minutes),) + (() if args.no_pixels else (("pixels", None),))
            for path_name, minutes in paths:
                folders[path_name] = work / path_name / name
                if args.prepared is not None and path_name == "default":
                    if read_truth(args.prepared / f"{name}.truth.csv") != truth:
                        raise SystemExit(f"{args.prepared / name} is not this collection (another scale or seed)")
                    shutil.copytree(args.prepared / name, folders[path_name])
                    continue
                shutil.copytree(made.images, folders[path_name])
                prepare(folders[path_name], made.truth, minutes)
            knn = knn_figures(folders["default"], made.truth)
            with Project(folders["default"]) as project:
                seeded = {k: seeded_accuracy(project, truth, k, args.draws) for k in (1, 3, 10)}
            refined = (
                refined_one_seed(folders["default"], truth, work / name, args.refine_minutes) if args.refine else None
            )
            runs = {"suggest": simulate(folders["default"], truth, "suggest", work / name, args)}
            if not args.no_pixels:
                runs["pixels"] = simulate(folders["pixels"], truth, "pixels-suggest", work / name, args)
            if not args.no_random:
                runs["random"] = simulate(folders["default"], truth, "random", work / name, args)
            current = next(v for k, v in knn.items() if k.startswith("current"))
            pixels = next(v for k, v in knn.items() if k.startswith("raw pixels"))
            row = {
                "collection": name,
                "items": len(truth),
                "classes": made.classes,
                "knn": knn,
                "seeded": seeded,
                "refined_one_seed": refined,
                "runs": runs,
                "train_minutes": args.train_minutes,
                "refine_at": args.refine_at,
                "seconds": round(time.perf_counter() - started),
            }
            # where a target is not reached, the accuracy at the last round says how far off it is
            cells = {
                key: " / ".join(cell(run["reached"], t, args.max_labels) for t in args.targets)
                + (
                    ""
                    if run["reached"][args.targets[-1]] is not None
                    else f" ({run['final']:.2f} at {run['curve'][-1][0]})"
                )
                for key, run in runs.items()
            }
            print(
                f"| {name} | {len(truth):,} | {made.classes} | {current:.3f} / {pixels:.3f} "
                f"| {seeded[1]:.3f} / {seeded[3]:.3f} / {seeded[10]:.3f} "
                f"| {'-' if refined is None else f'{refined:.3f}'} | {cells['suggest']} | {cells.get('pixels', '-')} "
                f"| {cells.get('random', '-')} |",
                flush=True,
            )
            if args.out:
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row, default=str) + "\n")
            for folder in (work / "default", work / "pixels", work / name, work / "made"):
                shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
