"""The ``explorer`` command.

``explorer [PROJECT]`` opens the window; ``explorer VERB PROJECT ...`` runs one step headless.
Every long step draws a progress bar and stops cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from explorer.jobs import Cancelled, CancelToken

VERBS = (
    "demo",
    "scan",
    "train",
    "embed",
    "evaluate",
    "map",
    "duplicates",
    "labels",
    "propagate",
    "refine",
    "suggest",
    "check",
    "similar",
    "quality",
    "clusters",
    "find",
    "export",
    "status",
    "open",
)


def _number(kind: type, expected: str, ok, must: str):
    """An argparse type: ``kind(text)`` that ``ok(value)`` accepts, else a message naming the flag's
    rule (``expected`` when the text is no number, ``must`` when the number breaks the rule)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{must}, got {text}")
        return value

    return parse


_positive_int = _number(int, "a whole number", lambda v: v > 0, "must be at least 1")
_positive_float = _number(float, "a number", lambda v: v > 0, "must be more than 0")
_unit_float = _number(float, "a number between 0 and 1", lambda v: 0.0 <= v <= 1.0, "must be between 0 and 1")


def add_filter_flags(parser: argparse.ArgumentParser, title: str = "which images") -> None:
    """The filter flags ``find`` and ``export`` share (see ``explorer.store.filters``)."""
    group = parser.add_argument_group("filters", title)
    group.add_argument(
        "--path",
        metavar="PATTERN",
        help="a glob over the path in the collection (cats/*, *.png; text without wildcards: paths containing it), "
        "or re:REGEX searched in the path",
    )
    group.add_argument(
        "--label",
        action="append",
        metavar="CLASS",
        help="the label shown (a person's, else the pseudo-label); repeat for more",
    )
    group.add_argument(
        "--source",
        metavar="LIST",
        help="the label's source, comma-separated: seed, accepted, imported, pseudo, unlabelled (human: the first three)",
    )
    group.add_argument("--confidence", metavar="LO:HI", help="confidence range, e.g. 0.2:0.8, 0.9: or :0.5")
    group.add_argument(
        "--size", metavar="WxH[:WxH]", help="pixels: 64x64 at least, 64x64:512x512 between, :256x256 at most"
    )
    group.add_argument("--modified-after", metavar="DATE", help="file modified on or after (ISO: 2024-01-31[T12:00])")
    group.add_argument("--modified-before", metavar="DATE", help="file modified before (ISO date or date and time)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="explorer",
        description="Turn a folder of unlabelled images into a labelled dataset. "
        "`explorer [PROJECT]` opens the window; the verbs below run each step headless.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    def project_verb(name: str, help: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help, description=help)
        sub.add_argument("project", metavar="PROJECT", help="the image folder")
        sub.add_argument("--state", metavar="DIR", help="where the project's state lives (default PROJECT/.explorer)")
        return sub

    demo = verbs.add_parser("demo", help="write the demo collection (handwritten digits) and open it")
    demo.add_argument("dir", nargs="?", metavar="DIR", help="where to write it (default: your data folder)")
    demo.add_argument("--no-window", action="store_true", help="only write and scan the collection")
    demo.add_argument("--screenshot", metavar="FILE", help="render the window offscreen to FILE and exit")

    opened = verbs.add_parser("open", help="open the window (same as `explorer [PROJECT]`)")
    opened.add_argument("project", nargs="?", metavar="PROJECT")
    opened.add_argument("--state", metavar="DIR")
    opened.add_argument("--screenshot", metavar="FILE", help="render the window offscreen to FILE and exit")

    scanning = project_verb("scan", "find the images, record them, report unreadable files")
    scanning.add_argument(
        "--labels-from-folders",
        action="store_true",
        help="label each image with the name of the folder it is in (as `imported`; people's labels are kept)",
    )

    from explorer.ssl import catalog  # names only; no torch

    train = project_verb("train", "train a self-supervised encoder on the collection")
    train.add_argument(
        "--method",
        choices=list(catalog.METHODS),
        default=catalog.DEFAULT_METHOD,
        help=f"SSL method (default {catalog.DEFAULT_METHOD}): "
        + "; ".join(text.replace("%", "%%") for text in catalog.METHODS.values()),
    )
    train.add_argument(
        "--backbone",
        default="auto",
        help="; ".join(f"{name}: {text}" for name, text in catalog.BACKBONES.items())
        + "; or torchvision:ARCH / timm:NAME",
    )
    train.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help=f"passes over the collection (default {catalog.DEFAULT_TRAIN_EPOCHS} or "
        f"{catalog.DEFAULT_TRAIN_MINUTES:g} minutes, whichever ends first; alone: all of them, no time limit)",
    )
    train.add_argument(
        "--max-minutes",
        type=_positive_float,
        default=None,
        help="stop after this much time (alone: as many epochs as fit)",
    )
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    train.add_argument("--image-size", type=_positive_int, default=None, help="training resolution in pixels")
    train.add_argument("--batch-size", type=_positive_int, default=None)
    train.add_argument(
        "--max-images",
        type=_positive_int,
        default=None,
        metavar="N",
        help="train on a random sample of at most N images (default: as many as fit decoded in a quarter "
        "of the memory available; every image is still embedded)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resume", action="store_true", help="continue the latest run from its last checkpoint")
    train.add_argument(
        "--nproc",
        type=_positive_int,
        default=1,
        metavar="N",
        help="train with DistributedDataParallel in N processes on this machine (CPU: gloo; CUDA: one GPU each); "
        "--batch-size is then the global batch, split evenly. Under torchrun leave it out",
    )
    train.add_argument(
        "--finetune",
        action="store_true",
        help="fine-tune --encoder (default: the latest trained) with the human labels and confident pseudo-labels "
        "as a supervised head next to the --method loss",
    )
    train.add_argument("--encoder", metavar="SPEC", help="with --finetune: the encoder to start from (as for embed)")
    train.add_argument(
        "--min-confidence", type=_unit_float, default=0.9, help="with --finetune: pseudo-labels used from (default 0.9)"
    )
    train.add_argument(
        "--eval-labels",
        metavar="FILE.csv",
        type=Path,
        help="true labels (path,label) to report kNN accuracy on after every epoch "
        "(default: the labels people gave in the project, when there are enough)",
    )

    embed = project_verb("embed", "embed every image with the latest (or a named) encoder")
    embed.add_argument(
        "--encoder",
        metavar="SPEC",
        help="a training run id (or run:ID), a checkpoint file, `pixels`, torchvision:ARCH=WEIGHTS.pth "
        "(or torchvision:ARCH for the file in the torch hub cache), or timm:NAME=WEIGHTS; nothing is downloaded",
    )
    embed.add_argument(
        "--image-size", type=_positive_int, default=None, help="pretrained encoders: input size (default theirs)"
    )
    embed.add_argument("--device", default="auto")
    embed.add_argument("--batch-size", type=_positive_int, default=256)
    embed.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="use vectors computed elsewhere: FILE.npy (N x D, with --paths) or FILE.parquet (path, embedding)",
    )
    embed.add_argument("--paths", metavar="FILE", help="with a .npy: the image path of each row, one per line")
    embed.add_argument(
        "--float16",
        action="store_true",
        help="store the vectors in half precision: half the disk and memory (1M x 512: 1 GB instead of 2 GB); "
        "maps, neighbours and propagation read them as before",
    )
    embed.add_argument(
        "--fresh",
        action="store_true",
        help="embed every image again. Without it there is no need for a --resume: embed always continues an "
        "interrupted or cancelled embed run with the same encoder (same weights and image size) from the rows it "
        "saved, and takes the vectors of images unchanged since the last finished run with that encoder (same size "
        "and modification time as `explorer scan` recorded: scan first to notice edited files)",
    )
    embed.add_argument(
        "--views",
        type=_positive_int,
        default=None,
        help="embed each image as the mean of N views of the encoder's training recipe (an encoder trained "
        "here; default: 8 for small colour images, fewer for a large collection on a CPU, else 1)",
    )
    embed.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="embed as a Ray Data pipeline (pip install '.[ray]'): on a local Ray instance, or on the cluster "
        "at ADDRESS (auto, HOST:6379, ray://HOST:10001; workers need the collection at the same path)",
    )

    evaluate = project_verb(
        "evaluate", "kNN and linear-probe accuracy of the current embeddings vs raw pixels and an untrained encoder"
    )
    evaluate.add_argument(
        "--labels",
        metavar="FILE.csv",
        help="true labels: path,label per image (default: the labels people gave in the project)",
    )
    evaluate.add_argument("--k", type=_positive_int, default=20, help="neighbours for kNN accuracy (default 20)")

    mapping = project_verb("map", "kNN graph (FAISS) and 2-D map (UMAP fed with that graph)")
    mapping.add_argument("--k", type=_positive_int, default=15, help="neighbours per image (default 15)")
    mapping.add_argument(
        "--fresh", action="store_true", help="lay every image out anew (default: images already on the map stay put)"
    )
    mapping.add_argument(
        "--sample-above",
        type=_positive_int,
        default=None,
        metavar="N",
        help="fit UMAP on a sample and place the rest above N images (default 10000)",
    )

    duplicates = project_verb("duplicates", "list near-duplicate image pairs (from the map's neighbour graph)")
    duplicates.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="cosine similarity at or above which two images count (default 0.9 on a trained encoder's"
        " whitened vectors, 0.98 on raw pixels or imported vectors)",
    )

    labels = verbs.add_parser("labels", help="label files in and out")
    label_verbs = labels.add_subparsers(dest="labels_verb", metavar="ACTION", required=True)
    imported = label_verbs.add_parser("import", help="set labels from a CSV or JSON Lines file (path,label[,source])")
    imported.add_argument("project", metavar="PROJECT")
    imported.add_argument("file", metavar="FILE")
    imported.add_argument("--state", metavar="DIR")
    imported.add_argument(
        "--as",
        dest="as_source",
        choices=("imported", "seed"),
        default=None,
        help="record the labels with this source (default: the file's source column, else imported)",
    )

    propagating = project_verb(
        "propagate", "pseudo-labels with confidence for every image, by diffusion over the kNN graph"
    )
    propagating.add_argument(
        "--rounds",
        type=int,
        default=0,
        metavar="N",
        help="pseudo-label rounds: train a linear head on human + confident pseudo-labels, combine (default 0)",
    )

    refining = project_verb(
        "refine",
        "teach the encoder the labels: fine-tune it on human + confident pseudo-labels, embed, map and "
        "propagate again, round after round (stops when held-out human labels stop improving)",
    )
    refining.add_argument("--rounds", type=_positive_int, default=2, help="rounds at most (default 2)")
    refining.add_argument(
        "--max-minutes",
        type=_positive_float,
        default=None,
        help="training time of all rounds together (default: 6 on a CPU, none on a GPU; 20 epochs a round at most)",
    )
    refining.add_argument("--device", default="auto")

    suggesting = project_verb("suggest", "print the images to label next, one path per line, best first")
    suggesting.add_argument(
        "--n",
        type=_positive_int,
        default=5,
        help="how many (default 5: label them, propagate, ask again; smaller rounds need fewer labels)",
    )

    checking = project_verb(
        "check", "list the labels (clicked or imported) the other labels disagree with, most suspect first"
    )
    checking.add_argument("--n", type=_positive_int, default=20, help="how many to print (default 20)")
    checking.add_argument("--out", type=Path, default=None, help="also write every checked label to this CSV")

    similar = project_verb("similar", "print the images most like an image file (from anywhere): path<TAB>similarity")
    similar.add_argument("file", metavar="FILE", type=Path, help="the query image")
    similar.add_argument("--n", type=_positive_int, default=50, help="how many (default 50)")
    similar.add_argument("--device", default="auto")

    scores = project_verb(
        "quality", "uniqueness, typicality and near-duplicate groups of every image: the least typical first"
    )
    scores.add_argument("--n", type=_positive_int, default=20, help="how many to print (default 20)")
    scores.add_argument(
        "--threshold", type=float, default=None, help="cosine similarity of near-duplicates (as `duplicates`)"
    )
    scores.add_argument("--out", type=Path, default=None, help="also write every image's scores to this CSV")

    grouping = project_verb(
        "clusters", "list the map's clusters (largest first) with their majority label; label a cluster at once"
    )
    grouping.add_argument(
        "--resolution", type=_positive_float, default=None, help="find them again: higher gives more, smaller ones"
    )
    grouping.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="N=NAME",
        help="label cluster N's images that nobody labelled as NAME (one undoable action; repeatable)",
    )
    grouping.add_argument("--out", type=Path, default=None, help="also write every image's cluster to this CSV")
    finding = project_verb(
        "find", "the images a filter keeps (path, label, source, confidence, size, file date): count and first rows"
    )
    add_filter_flags(finding)
    finding.add_argument("--n", type=_positive_int, default=20, help="how many rows to print (default 20)")
    finding.add_argument(
        "--out", type=Path, default=None, help="also write every match as a label manifest (CSV, or .jsonl)"
    )

    export = project_verb("export", "write the labelled dataset")
    export.add_argument("out", metavar="OUT", help="output file (csv, jsonl, coco, parquet) or new folder")
    export.add_argument(
        "--format",
        dest="fmt",
        choices=("csv", "jsonl", "imagefolder", "huggingface", "coco", "parquet"),
        default=None,
        help="default: by OUT's suffix (.jsonl, .json = coco, .parquet), else csv",
    )
    export.add_argument(
        "--include", default="seed,accepted,imported,pseudo", help="label sources to export (comma-separated)"
    )
    export.add_argument("--min-confidence", type=_unit_float, default=0.0, help="leave out pseudo-labels below this")
    export.add_argument("--labelled-only", action="store_true", help="manifests: leave out rows without a label")
    export.add_argument(
        "--mode", choices=("copy", "hardlink", "symlink"), default="copy", help="folders: how files get there"
    )
    export.add_argument(
        "--split",
        type=_unit_float,
        default=None,
        metavar="F",
        help="folders: share of each class in train/, rest in val/",
    )
    export.add_argument("--seed", type=int, default=0, help="random seed of the split (default 0)")
    export.add_argument(
        "--split-duplicates",
        action="store_true",
        help="let near-duplicates fall on both sides of the split (default: each group stays on one side, "
        "so val does not score memory)",
    )
    add_filter_flags(
        export, "only the images that match (--include and --min-confidence choose which labels are written)"
    )

    project_verb("status", "counts of items, unreadable files, labels by source, runs")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*VERBS, "-h", "--help"):
        argv = ["open", *argv]  # `explorer [PROJECT] [--state DIR]` opens the window
    args = build_parser().parse_args(argv)
    from explorer.store import ProjectError

    try:
        return _dispatch(args)
    except Cancelled:
        print("\nstopped; what was finished is saved", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\naborted; results of the interrupted step were not made current", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `explorer duplicates P | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except (ProjectError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"explorer: error: {exc}", file=sys.stderr)
        return 1


def _print_label_check(found, n: int, out: Path | None) -> None:
    """The most suspect labels as a table (stdout), every checked one to ``out`` as CSV."""
    if out is not None:
        import csv

        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["path", "label", "graph_says", "suspicion"])
            writer.writeheader()
            writer.writerows(found.rows())
    print(f"{'suspicion':>9}  {'label':<14} {'graph says':<14} path")
    for row in found.rows(n):
        print(f"{row['suspicion']:>9.3f}  {row['label']:<14} {row['graph_says'] or '-':<14} {row['path']}")
    checked = len(found.paths)
    note = f"; {found.unchecked} in classes with fewer than 3 labels not checked" if found.unchecked else ""
    written = f"; all {checked} written to {out}" if out is not None else ""
    print(f"{checked} labels checked{note}{written}", file=sys.stderr)


def _print_quality(project, found, n: int, out: Path | None) -> None:
    """The least typical images (stdout: typicality, uniqueness, group, path); all to ``out``."""
    import numpy as np

    paths = project.paths_by_id()
    names = [paths[int(i)] for i in found.item_ids]
    if out is not None:
        import csv

        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "uniqueness", "typicality", "duplicate_group"])
            for k, name in enumerate(names):
                writer.writerow(
                    [name, f"{found.uniqueness[k]:.4f}", f"{found.typicality[k]:.4f}", int(found.duplicate_group[k])]
                )
    print(f"{'typicality':>10} {'uniqueness':>10} {'group':>6}  path")
    for k in np.argsort(found.typicality, kind="stable")[:n].tolist():
        group = int(found.duplicate_group[k])
        print(
            f"{found.typicality[k]:>10.3f} {found.uniqueness[k]:>10.3f} {group if group >= 0 else '-':>6}  {names[k]}"
        )
    grouped = int((found.duplicate_group >= 0).sum())
    groups = len(set(found.duplicate_group[found.duplicate_group >= 0].tolist()))
    written = f"; all written to {out}" if out is not None else ""
    print(f"{len(names)} images; {grouped} in {groups} near-duplicate group(s){written}", file=sys.stderr)


def _cluster_label(text: str) -> tuple[int, str]:
    number, sep, name = text.partition("=")
    if not sep or not number.strip().isdigit() or not name.strip():
        raise ValueError(f"--label expects CLUSTER=NAME, e.g. 3=cat (got {text!r})")
    return int(number), name.strip()


def _print_clusters(project, found, out: Path | None) -> None:
    """One line a cluster (stdout); every image's cluster to ``out`` as CSV."""
    if out is not None:
        import csv

        paths = project.paths_by_id()
        names = [c.text for c in found.names]
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "cluster", "cluster_name"])
            for item, cluster in zip(found.item_ids.tolist(), found.cluster.tolist(), strict=True):
                writer.writerow([paths.get(item, item), cluster, names[cluster] if cluster >= 0 else ""])
    print(f"{'cluster':>7} {'images':>7} {'labelled':>8}  name")
    for row in found.rows():
        share = f"  ({row['share']:.0%} of its labelled images)" if row["label"] else ""
        print(f"{row['cluster']:>7} {row['images']:>7} {row['labelled']:>8}  {row['name']}{share}")
    outside = int((found.cluster < 0).sum())
    written = f"; every image's cluster written to {out}" if out is not None else ""
    print(f"{len(found.names)} cluster(s); {outside} image(s) in clusters too small to list{written}", file=sys.stderr)


def _filter_of(args):
    """The ``Filter`` the filter flags describe (empty when none is given)."""
    from explorer.store.filters import Filter

    return Filter.parse(
        path=args.path,
        classes=args.label,
        sources=args.source,
        confidence=args.confidence,
        size=args.size,
        modified_after=args.modified_after,
        modified_before=args.modified_before,
    )


def _found_ids(project, rule):
    from explorer.store.filters import find

    return find(project, rule)


def _print_found(project, rule, n: int, out: Path | None) -> None:
    """The first ``n`` matches by path (stdout: path, label, source, confidence, size); every
    match to ``out`` as a label manifest; the count on stderr."""
    import heapq

    import numpy as np

    from explorer.exchange.manifest import manifest_rows, write_manifest
    from explorer.store.filters import matching_mask, read_file_facts

    files = read_file_facts(project)
    matched = np.flatnonzero(matching_mask(rule, files, project.label_table(), project.classes()))
    if out is not None:
        rows = manifest_rows(project, item_ids=files.item_ids[matched])
        write_manifest(rows, out, "jsonl" if out.suffix.lower() in (".jsonl", ".ndjson") else "csv")
    first = heapq.nsmallest(n, matched.tolist(), key=files.paths.__getitem__)
    shown = manifest_rows(project, item_ids=files.item_ids[first])  # sorted by path, as ``first``
    width = max([4, *(len(r.path) for r in shown)])
    label_width = max([5, *(len(r.label) for r in shown)])
    print(f"{'path':<{width}}  {'label':<{label_width}}  {'source':<8}  {'confidence':>10}  size")
    for k, r in zip(first, shown, strict=True):
        w, h = int(files.width[k]), int(files.height[k])
        pixels = f"{w}x{h}" if w >= 0 and h >= 0 else "?"
        print(f"{r.path:<{width}}  {r.label:<{label_width}}  {r.source:<8}  {r.confidence:>10}  {pixels}")
    written = f"; all written to {out}" if out is not None else ""
    print(f"{len(matched):,} of {len(files):,} images match ({rule.describe()}){written}", file=sys.stderr)


def _open_project(args, create: bool = False):
    from explorer.store import Project

    return Project(args.project, args.state, create=create)


def _dispatch(args) -> int:
    from explorer import workflow
    from explorer.terminal import ProgressBar, interrupt_cancels

    if args.verb == "open":
        from explorer.gui.app import run

        return run(args.project, args.state, screenshot=args.screenshot)
    if args.verb == "demo":
        return _demo(args)

    bar = ProgressBar()
    cancel = CancelToken()
    with interrupt_cancels(cancel):
        if args.verb == "scan":
            with _open_project(args, create=True) as project:
                report = workflow.scan(project, bar, cancel)
                bar.finish()
                print(report.summary())
                if args.labels_from_folders:
                    print(workflow.labels_from_folders(project).summary())
        elif args.verb == "train":
            from explorer.ssl import collectives, distributed
            from explorer.ssl.trainer import TrainConfig

            config = TrainConfig(method=args.method, backbone=args.backbone, device=args.device, seed=args.seed)
            for name in ("epochs", "max_minutes", "image_size", "batch_size", "max_images"):
                if getattr(args, name) is not None:
                    setattr(config, name, getattr(args, name))
            if args.resume or args.epochs is not None or args.max_minutes is not None:
                # a limit given replaces both defaults (epochs alone: all of them; minutes alone: as many as
                # fit); resume keeps the run's own unless one is given
                config.epochs, config.max_minutes = args.epochs, args.max_minutes
            config.processes = args.nproc
            if collectives.launched_by_torchrun():
                if args.nproc > 1:
                    raise ValueError("under torchrun, leave out --nproc (torchrun's --nproc-per-node sets it)")
                config.processes = collectives.world_size_from_env()
                if not collectives.is_rank_zero_from_env():  # rank 0 runs the project; this rank only trains
                    distributed.follow_from_env(config.device)
                    return 0
            with _open_project(args) as project:
                if args.finetune:
                    if config.processes > 1:
                        raise ValueError("--finetune runs in one process; leave out --nproc")
                    if args.eval_labels:
                        raise ValueError("--eval-labels goes with training from scratch, not with --finetune")
                    if args.resume:
                        raise ValueError(
                            "--finetune starts a new run from --encoder; it cannot be combined with --resume"
                        )
                    run = workflow.finetune(
                        project, args.encoder, config, args.min_confidence, progress=bar, cancel=cancel
                    )
                elif args.encoder:
                    raise ValueError(
                        "--encoder goes with --finetune (training from scratch starts from random weights)"
                    )
                else:
                    run = workflow.train(
                        project,
                        config if not args.resume or args.epochs or args.max_minutes or args.nproc > 1 else None,
                        resume=args.resume,
                        progress=bar,
                        cancel=cancel,
                        eval_labels=args.eval_labels,
                    )
                bar.finish()
                print(f"training run {run} done: {_metrics(project.run(run).metrics)}")
        elif args.verb == "embed":
            with _open_project(args) as project:
                if args.paths and not args.from_file or args.from_file and args.encoder:
                    raise ValueError("--paths goes with --from FILE.npy; --from and --encoder exclude each other")
                if args.from_file and args.ray:
                    raise ValueError("--from imports vectors computed elsewhere; it cannot be combined with --ray")
                if (args.from_file or args.ray) and (args.float16 or args.fresh or args.views):
                    raise ValueError("--float16, --fresh and --views go with embedding here, not with --from or --ray")
                if args.from_file:
                    imported = workflow.import_embeddings(project, Path(args.from_file), args.paths, bar, cancel)
                    bar.finish()
                    print(imported.summary())
                    return 0
                if args.ray:
                    from explorer.cluster.ray_embed import embed_with_ray

                    run = embed_with_ray(
                        project, args.encoder, args.ray, args.batch_size, args.device, bar, cancel, args.image_size
                    )
                else:
                    run = workflow.embed(
                        project,
                        args.encoder,
                        args.batch_size,
                        args.device,
                        bar,
                        cancel,
                        image_size=args.image_size,
                        dtype="float16" if args.float16 else "float32",
                        fresh=args.fresh,
                        views=args.views,
                    )
                bar.finish()
                print(f"embedding run {run}: {_metrics(project.run(run).metrics)}")
        elif args.verb == "evaluate":
            with _open_project(args) as project:
                truth = Path(args.labels) if args.labels else None
                report = workflow.evaluate(project, truth, bar, cancel, k=args.k)
                bar.finish()
                print(report.summary())
        elif args.verb == "map":
            with _open_project(args) as project:
                run = workflow.make_map(
                    project, k=args.k, progress=bar, cancel=cancel, fresh=args.fresh, sample_above=args.sample_above
                )
                bar.finish()
                print(f"map run {run}: {_metrics(project.run(run).metrics)}")
        elif args.verb == "duplicates":
            from explorer.workflow.checking import near_duplicates_where

            with _open_project(args) as project:
                pairs, threshold, whitened = near_duplicates_where(project, args.threshold)
                paths = project.paths_by_id()
                for a, b, similarity in pairs:
                    print(f"{paths.get(a, a)}\t{paths.get(b, b)}\t{similarity:.4f}")
                where = "the map's whitened vectors" if whitened else "the embeddings"
                print(f"{len(pairs)} near-duplicate pair(s) at cosine >= {threshold} in {where}", file=sys.stderr)
        elif args.verb == "labels":
            with _open_project(args) as project:
                report = workflow.import_labels(project, Path(args.file), args.as_source)
                print(report.summary())
        elif args.verb == "propagate":
            with _open_project(args) as project:
                if args.rounds < 0:
                    raise ValueError(f"--rounds must be 0 or more, got {args.rounds}")
                result = workflow.propagate(project, bar, cancel, rounds=args.rounds)
                bar.finish()
                print(result.summary())
        elif args.verb == "refine":
            from explorer.workflow.refine import refine

            with _open_project(args) as project:
                report = refine(project, args.rounds, args.max_minutes, bar, cancel, device=args.device)
                bar.finish()
                print(report.summary())
        elif args.verb == "suggest":
            with _open_project(args) as project:
                found = workflow.suggest(project, args.n)
                for path, why in zip(found.paths, found.reasons, strict=True):
                    print(path)
                    print(f"  {why}", file=sys.stderr)  # stdout stays one path per line
        elif args.verb == "check":
            with _open_project(args) as project:
                _print_label_check(workflow.check_labels(project), args.n, args.out)
        elif args.verb == "similar":
            with _open_project(args) as project:
                found = workflow.similar(project, args.file, args.n, args.device)
                for path, sim in zip(found.paths, found.similarities.tolist(), strict=True):
                    print(f"{path}\t{sim:.4f}")
        elif args.verb == "quality":
            with _open_project(args) as project:
                _print_quality(project, workflow.quality(project, args.threshold), args.n, args.out)
        elif args.verb == "clusters":
            with _open_project(args) as project:
                for cluster, name in map(_cluster_label, args.label):
                    done = workflow.label_cluster(project, cluster, name)
                    print(f"cluster {cluster}: {done} image(s) labelled {name}", file=sys.stderr)
                found = workflow.clusters(project, args.resolution, bar, cancel)
                bar.finish()
                _print_clusters(project, found, args.out)
        elif args.verb == "find":
            with _open_project(args) as project:
                _print_found(project, _filter_of(args), args.n, args.out)
        elif args.verb == "export":
            with _open_project(args) as project:
                include = workflow.parse_sources(args.include)
                rule = _filter_of(args)
                report = workflow.export(
                    project,
                    args.fmt or workflow.format_for(Path(args.out)),
                    Path(args.out),
                    include,
                    args.min_confidence,
                    labelled_only=args.labelled_only,
                    mode=args.mode,
                    split=args.split,
                    seed=args.seed,
                    progress=bar,
                    cancel=cancel,
                    items=_found_ids(project, rule) if rule.active else None,
                    twins_together=not args.split_duplicates,
                )
                bar.finish()
                print(report.summary())
        elif args.verb == "status":
            with _open_project(args) as project:
                print(workflow.status_text(project))
    return 0


def _demo(args) -> int:
    from explorer import workflow
    from explorer.demo import write_demo
    from explorer.store import Project

    demo = write_demo(Path(args.dir) if args.dir else None)
    with Project(demo.images) as project:
        report = workflow.scan(project)
    print(f"demo collection: {demo.images} ({report.total} images)")
    print(f"true labels (for `explorer evaluate`, kept outside the collection): {demo.truth}")
    if args.no_window:
        return 0
    from explorer.gui.app import run

    # A first map from raw pixels in seconds, so a newcomer has something to click at once.
    return run(str(demo.images), None, screenshot=args.screenshot, first_map="quick map")


def _metrics(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()) or "done"


if __name__ == "__main__":
    sys.exit(main())
