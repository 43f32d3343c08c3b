"""Label check at 100k and 1M items: time, peak memory and recall of flipped labels, beside cleanlab.

For each size in ``--sizes``, in a fresh process (so peak memory is that size's alone), a project
is fabricated straight into the store (``benchmarks/fabricate.py``: items, embeddings, a map run
with the FAISS kNN graph and the label space, as ``explorer map`` leaves them; no image files).
The embeddings are Gaussian blobs with overlap (:func:`blobs`: ``--classes`` 20 classes of
``--modes`` blobs each in a 10-d latent space, lifted into ``--dim`` 64 dimensions, unit rows; at
the default spread a row's 10 nearest neighbours vote its class right 95 % of the time, and a
cross-validated logistic regression is right 96 % of the time). Then for each count in
``--labels``: that many random items get an imported label (``Project.set_labels_many``, source
"imported"), ``--flip`` (5 %) of them a wrong class at random, and in the same process:

- ours: ``explorer.workflow.check_labels`` (hidden-fold propagation on the label space averaged
  with the vote of the nearest labelled neighbours, ``explorer.labels.check.disagreement``, plus
  the paths), timed with the solver built first and shown apart (``Diffusion`` of the map's label
  graph, once per map: the window keeps it, ``explorer check`` in a fresh process pays it);
- cleanlab (``find_label_issues``, confident learning, ranked by self-confidence) on out-of-sample
  probabilities from 5-fold ``cross_val_predict`` of a ``LogisticRegression`` on the labelled rows'
  embeddings (what FiftyOne's mistakenness / cleanlab users do), and with ``--knn`` the same from
  a 10-nearest-neighbour classifier; also cleanlab's full ranking (``get_label_quality_scores``);

and prints the recall of the flips in the first 5 % and 10 % of each ranking (for
``find_label_issues``: of the issues it flags, most suspect first, cut at 5 % / 10 % of the labels;
it may flag fewer), its seconds, and the peak resident memory of the process during the step
(sampled every 20 ms; the project, the map's arrays and the vectors are already held then).
cleanlab is optional: without it (``pip install cleanlab``) its rows are skipped with a note.

Run: ``nice -n 10 python benchmarks/label_check_scale.py [--sizes 100000] [--labels 10000 100000]``
(1M: ``--sizes 1000000 --labels 100000``; quick: ``--sizes 20000 --labels 2000 20000``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fabricate import each_size_apart, fabricated_project, mib, size_options  # noqa: E402
from benchmarks.scale_1m import PeakMemory, StepClock  # noqa: E402


def blobs(
    n: int, d: int, classes: int, modes: int, spread: float, latent: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """((n, d) float32 unit rows, (n,) int64 class): ``classes * modes`` Gaussian blobs in a
    ``latent``-d space (centres ~ N(0, spread^2), unit variance around them, so neighbouring blobs
    overlap), lifted into ``d`` dimensions by an orthonormal map plus 0.05 noise; blob b is class
    ``b % classes``. Both a kNN vote and a linear model see the same overlap when ``modes`` is 1."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes * modes, latent)) * spread
    lift = np.linalg.qr(rng.normal(size=(d, latent)))[0].T
    blob = rng.integers(0, classes * modes, n)
    x = np.empty((n, d), np.float32)
    for start in range(0, n, 100_000):
        b = blob[start : start + 100_000]
        z = centres[b] + rng.normal(size=(len(b), latent))
        block = z @ lift + 0.05 * rng.normal(size=(len(b), d))
        x[start : start + len(b)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return x, blob % classes


def recall_at(ranked_rows: np.ndarray, flipped: np.ndarray, cut: int) -> float:
    """Share of all flips (``flipped`` (N,) bool over rows) among the first ``cut`` ranked rows."""
    return float(flipped[ranked_rows[:cut]].sum() / max(1, flipped.sum()))


def import_labels(project, item_ids, truth, m: int, flip: float, classes: list[int], seed: int):
    """Clear the human labels, then import ``m`` random rows' labels with ``flip`` of them wrong.
    Returns (labelled rows (m,) sorted, given class index (m,), flipped (N,) bool)."""
    rng = np.random.default_rng(seed)
    n = len(item_ids)
    rows = np.sort(rng.choice(n, size=m, replace=False))
    given = truth[rows].copy()
    wrong = rng.choice(m, size=int(round(flip * m)), replace=False)
    c = len(classes)
    given[wrong] = (given[wrong] + rng.integers(1, c, len(wrong))) % c
    flipped = np.zeros(n, bool)
    flipped[rows[wrong]] = True
    with project.transaction() as db:  # a fresh label set for each count (benchmark only)
        db.execute("DELETE FROM labels")
    class_ids = np.asarray(classes, np.int64)
    project.set_labels_many(
        {int(i): (int(class_ids[g]), "imported") for i, g in zip(item_ids[rows], given, strict=True)}, "import"
    )
    return rows, given, flipped


def cleanlab_rows(x, rows, given, flipped, cut5, cut10, clock, model: str) -> list[dict]:
    """cleanlab on out-of-sample probabilities of ``model`` ("logistic regression" or "10-NN")."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    estimator = LogisticRegression(max_iter=200) if model == "logistic regression" else KNeighborsClassifier(10)
    xs = np.asarray(x[rows], np.float32)
    clock.start(f"cleanlab: 5-fold {model} probabilities")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = cross_val_predict(estimator, xs, given, cv=5, method="predict_proba")
    clock.start("cleanlab: find_label_issues")
    issues = find_label_issues(given, probs, return_indices_ranked_by="self_confidence")
    clock.start("cleanlab: get_label_quality_scores")
    ranked = np.argsort(get_label_quality_scores(given, probs), kind="stable")
    clock.stop()
    cv, find, score = clock.rows[-3:]
    flagged = rows[issues]
    out = {
        "ranking": f"cleanlab find_label_issues, {model} (flags {len(issues):,}, "
        f"precision {flipped[flagged].mean() if len(issues) else 0:.3f}, recall {recall_at(flagged, flipped, len(issues)):.3f})",
        "r5": recall_at(flagged, flipped, cut5),
        "r10": recall_at(flagged, flipped, cut10),
        "seconds": cv["wall"] + find["wall"],
        "detail": f"{cv['wall']:.1f} s probabilities + {find['wall']:.1f} s find_label_issues",
        "peak": max(cv["peak"], find["peak"]),
        "accuracy": float((probs.argmax(axis=1) == given).mean()),
    }
    full = {
        "ranking": f"cleanlab label quality scores, {model}",
        "r5": recall_at(rows[ranked], flipped, cut5),
        "r10": recall_at(rows[ranked], flipped, cut10),
        "seconds": cv["wall"] + score["wall"],
        "detail": f"{cv['wall']:.1f} s probabilities + {score['wall']:.1f} s scores",
        "peak": max(cv["peak"], score["peak"]),
    }
    return [out, full]


def one_size(args) -> dict:
    from explorer import workflow
    from explorer.workflow.labelling import map_solver

    n = args.one
    memory = PeakMemory()
    clock = StepClock(memory)
    clock.start("make vectors")
    x, truth = blobs(n, args.dim, args.classes, args.modes, args.spread)
    result: dict = {"n": n, "configs": []}
    try:
        import cleanlab  # noqa: F401

        have_cleanlab = True
    except ImportError:
        have_cleanlab = False
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        made = fabricated_project(Path(tmp) / "collection", x, clock, label_space=True)
        project = made.project
        result["map"] = made.seconds | {"index": made.graph.index_kind, "recall": made.graph.recall}
        graph_ids = made.graph.indices
        result["neighbour_purity"] = float((truth[graph_ids[:, 1:11]] == truth[:, None]).mean())
        del made
        classes = [project.add_class(f"class {c:02d}").id for c in range(args.classes)]
        for k, m in enumerate(m for m in args.labels if m <= n):
            rows, given, flipped = import_labels(project, project.item_ids(), truth, m, args.flip, classes, k)
            config: dict = {"labels": m, "flips": int(flipped.sum()), "rows": []}
            clock.start("ours: solver (once per map)")
            map_solver(project)
            clock.start("ours: check_labels")
            found = workflow.check_labels(project)
            clock.stop()
            build, check = clock.rows[-2:]
            ranked = np.searchsorted(project.item_ids(), found.item_ids)
            checked = len(ranked)
            cut5, cut10 = int(round(0.05 * checked)), int(round(0.10 * checked))
            config["checked"] = checked
            config["rows"].append(
                {
                    "ranking": "ours: `explorer check` (hidden folds on the label space + neighbours' vote)",
                    "r5": recall_at(ranked, flipped, cut5),
                    "r10": recall_at(ranked, flipped, cut10),
                    "seconds": check["wall"],
                    "detail": f"+ {build['wall']:.1f} s solver build once per map",
                    "peak": max(build["peak"], check["peak"]),
                }
            )
            if have_cleanlab:
                models = ["logistic regression"] + (["10-NN"] if args.knn and m <= args.knn_max else [])
                for model in models:
                    config["rows"] += cleanlab_rows(x, rows, given, flipped, cut5, cut10, clock, model)
            else:
                config["note"] = "cleanlab is not installed (pip install cleanlab): its rows are skipped"
            random_rows = np.random.default_rng(9).permutation(rows)
            config["rows"].append(
                {
                    "ranking": "random order",
                    "r5": recall_at(random_rows, flipped, cut5),
                    "r10": recall_at(random_rows, flipped, cut10),
                }
            )
            result["configs"].append(config)
        project.close()
    memory.stop()
    result["steps"] = clock.rows
    return result


def print_size(r: dict) -> None:
    m = r["map"]
    print(
        f"\n{r['n']:,} items; the map (paid once, not in the check): kNN graph {m['graph']:.1f} s "
        f"({m['index']}, recall {m['recall'] if m['recall'] is None else round(m['recall'], 3)}), label space "
        f"{m['label space']:.1f} s; a row's 10 nearest neighbours share its class: {r['neighbour_purity']:.3f}\n"
    )
    print("| items | labels (flipped) | ranking | flips in first 5 % / 10 % | seconds | peak RSS during |")
    print("|---:|---:|---|---|---:|---:|")
    for config in r["configs"]:
        ours = config["rows"][0]["seconds"]
        for row in config["rows"]:
            seconds = row.get("seconds")
            cell = "" if seconds is None else f"{seconds:.1f} ({row['detail']})"
            if seconds is not None and row is not config["rows"][0]:
                cell += f", **{seconds / ours:.2f}x ours**"
            peak = mib(row["peak"]) if "peak" in row else ""
            print(
                f"| {r['n']:,} | {config['labels']:,} ({config['flips']:,}) | {row['ranking']} | "
                f"{row['r5']:.3f} / {row['r10']:.3f} | {cell} | {peak} |"
            )
        if "note" in config:
            print(f"\n{config['note']}\n")

    print(f"\n(this size took {r['took']:.0f} s in all)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--labels", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--flip", type=float, default=0.05)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--modes", type=int, default=1, help="blobs per class")
    parser.add_argument("--spread", type=float, default=1.7)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--knn", action="store_true", help="also cleanlab on 10-NN probabilities")
    parser.add_argument("--knn-max", type=int, default=100_000, help="labels above which --knn is skipped")
    size_options(parser)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args)))
        return
    print(
        f"{args.classes} classes x {args.modes} blob(s), {args.dim}-d, spread {args.spread}; "
        f"{args.flip:.0%} of the imported labels flipped"
    )
    each_size_apart(__file__, args.sizes, _passed(args), print_size, args.json)


def _passed(args) -> list[str]:
    """The options a size's own process needs (everything but --sizes and --json)."""
    out = ["--labels", *map(str, args.labels), "--flip", str(args.flip), "--classes", str(args.classes)]
    out += ["--modes", str(args.modes), "--spread", str(args.spread), "--dim", str(args.dim), "--tmp", args.tmp]
    out += ["--knn-max", str(args.knn_max)] + (["--knn"] if args.knn else [])
    return out


if __name__ == "__main__":
    main()
