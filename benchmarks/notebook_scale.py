"""The notebook API at 100k and 1M items, against reading the same project with pandas.read_sql.

For each size in ``--sizes``, in a fresh process, a project is fabricated straight into the store
(``benchmarks/fabricate.py``: items recorded through ``Project.record_scan``, 128-d embeddings as
an embed run, a map run; the map's kNN graph is ``benchmarks/propagation_scale.py``'s synthetic
one, which nothing here reads), with 20 classes, a human label on 10 % of the items (half "seed",
half "imported"), a pseudo-label with a confidence on every other item (``save_pseudo_labels``)
and 1,000 rejections. Then ``explorer.open(folder)`` and, best of ``--repeats``:

- ``items()`` against ``pd.read_sql`` of the items table (the same columns and rows);
- ``labels()`` against one ``pd.read_sql`` joining items, labels, pseudo-labels, rejections and
  classes in SQL, plus the map's x, y from its ``.npy`` file (the same frame);
- ``select(label=..., min_confidence=0.9)`` against the same query with the filter in its WHERE;
- ``embeddings()`` against ``np.load`` of the embed run's file found through ``pd.read_sql`` of the
  runs table: the open (both memory-mapped) and the open plus reading every vector as float32.

Each pair is checked to give the same rows and values, and the ratio is baseline / ours (above 1:
ours is faster). Peak RSS of the process is printed per size.

Run: ``nice -n 10 python benchmarks/notebook_scale.py [--sizes 100000 1000000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fabricate import each_size_apart, fabricated_project, size_options  # noqa: E402
from benchmarks.propagation_scale import synthetic_graph  # noqa: E402
from benchmarks.scale_1m import PeakMemory, StepClock  # noqa: E402

CLASSES = 20
PICK = "class 03"
MIN_CONFIDENCE = 0.9

ITEMS_SQL = """SELECT id AS item_id, path, COALESCE(width, 0) AS width, COALESCE(height, 0) AS height,
bytes FROM items WHERE present = 1 AND error IS NULL ORDER BY id"""

LABELS_SQL = """SELECT i.id AS item_id, i.path AS path,
  CASE WHEN l.item_id IS NOT NULL THEN hc.name ELSE pc.name END AS label,
  CASE WHEN l.item_id IS NOT NULL THEN l.source WHEN p.item_id IS NOT NULL THEN 'pseudo' ELSE '' END AS source,
  CASE WHEN l.item_id IS NOT NULL THEN 1.0 ELSE p.confidence END AS confidence
FROM items i
LEFT JOIN labels l ON l.item_id = i.id
LEFT JOIN classes hc ON hc.id = l.class_id
LEFT JOIN pseudo_labels p ON p.item_id = i.id
  AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.item_id = p.item_id AND r.class_id = p.class_id)
LEFT JOIN classes pc ON pc.id = p.class_id
WHERE i.present = 1 AND i.error IS NULL"""


def best(fn, repeats: int):
    """(best wall seconds of ``repeats`` calls, the last result)."""
    seconds, result = float("inf"), None
    for _ in range(repeats):
        result = None  # the previous result is freed before the next call, as a notebook would
        start = time.perf_counter()
        result = fn()
        seconds = min(seconds, time.perf_counter() - start)
    return seconds, result


def with_xy(frame, state_dir: Path, db: sqlite3.Connection):
    """The baseline's x, y: the latest map's arrays, matched to ``frame.item_id``."""
    import pandas as pd

    run = pd.read_sql("SELECT id FROM runs WHERE kind = 'map' AND status = 'done' ORDER BY id DESC LIMIT 1", db)
    folder = state_dir / "runs" / str(int(run["id"].iloc[0]))
    ids, xy = np.load(folder / "item_ids.npy"), np.load(folder / "xy.npy")
    order = np.argsort(ids, kind="stable")
    wanted = frame["item_id"].to_numpy()
    pos = np.minimum(np.searchsorted(ids[order], wanted), len(ids) - 1)
    found = ids[order][pos] == wanted
    x = np.full(len(frame), np.nan)
    y = np.full(len(frame), np.nan)
    x[found], y[found] = xy[order[pos[found]], 0], xy[order[pos[found]], 1]
    return frame.assign(x=x, y=y)


def fabricate(folder: Path, n: int, dim: int, clock: StepClock):
    """The project described in the module docstring; returns the open Project."""
    rng = np.random.default_rng(0)
    clock.start("make vectors")
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    graph, _ = synthetic_graph(n)
    made = fabricated_project(folder, x, clock, graph=graph)
    project, ids = made.project, made.item_ids
    del x, graph, made
    clock.start("labels")
    classes = np.array([project.add_class(f"class {c:02d}").id for c in range(CLASSES)], np.int64)
    truth = classes[rng.integers(0, CLASSES, n)]
    human = np.sort(rng.choice(n, n // 10, replace=False))
    sources = np.where(np.arange(len(human)) % 2 == 0, "seed", "imported")
    project.set_labels_many(
        {int(ids[r]): (int(truth[r]), str(s)) for r, s in zip(human, sources, strict=True)}, "import"
    )
    project.save_pseudo_labels(ids, truth, rng.uniform(0.3, 1.0, n))
    rejected = rng.choice(np.setdiff1d(np.arange(n), human), 1000, replace=False)
    with project.transaction() as db:  # "not this class" on 1,000 pseudo-labels (benchmark only)
        db.executemany(
            "INSERT INTO rejections(item_id, class_id) VALUES (?, ?)",
            [(int(ids[r]), int(truth[r])) for r in rejected],
        )
    clock.stop()
    return project


def same(ours, theirs, columns) -> bool:
    """Both frames hold the same rows and values in ``columns`` (NaN equal to NaN, None to NaN)."""
    if len(ours) != len(theirs):
        return False
    a = ours.sort_values("item_id").reset_index(drop=True)
    b = theirs.sort_values("item_id").reset_index(drop=True)
    for c in columns:
        left, right = a[c].to_numpy(), b[c].to_numpy()
        if left.dtype.kind == "f" or right.dtype.kind == "f":
            if not np.allclose(left.astype(float), right.astype(float), equal_nan=True):
                return False
        elif not (a[c].fillna("").astype(str).to_numpy() == b[c].fillna("").astype(str).to_numpy()).all():
            return False
    return True


def one_size(args) -> dict:
    import pandas as pd

    import explorer

    n, repeats = args.one, args.repeats
    memory = PeakMemory()
    clock = StepClock(memory)
    out: dict = {"n": n, "rows": []}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        folder = Path(tmp) / "collection"
        fabricate(folder, n, args.dim, clock).close()
        collection = explorer.open(folder)
        state_dir = collection.project.state_dir
        db = sqlite3.connect(f"file:{collection.project.db_path}?mode=ro", uri=True)

        def add(name: str, ours_fn, base_fn, base_name: str, columns=None) -> None:
            t_ours, ours = best(ours_fn, repeats)
            t_base, base = best(base_fn, repeats)
            ok = same(ours, base, columns) if columns else True
            rows = len(ours) if hasattr(ours, "columns") else ""
            out["rows"].append(
                {"what": name, "ours": t_ours, "base": t_base, "base_name": base_name, "rows": rows, "same": ok}
            )

        add(
            "`items()`",
            collection.items,
            lambda: pd.read_sql(ITEMS_SQL, db),
            "`pd.read_sql` of the items table",
            ["item_id", "path", "width", "height", "bytes"],
        )
        add(
            "`labels()`",
            collection.labels,
            lambda: with_xy(pd.read_sql(LABELS_SQL + " ORDER BY i.id", db), state_dir, db),
            "`pd.read_sql`, one join in SQL, + x, y from the map's `.npy`",
            ["item_id", "path", "label", "source", "confidence", "x", "y"],
        )
        add(
            f'`select(label="{PICK}", min_confidence={MIN_CONFIDENCE})`',
            lambda: collection.select(label=PICK, min_confidence=MIN_CONFIDENCE),
            lambda: with_xy(
                pd.read_sql(
                    f"SELECT * FROM ({LABELS_SQL}) WHERE label = ? AND confidence >= ? ORDER BY item_id",
                    db,
                    params=(PICK, MIN_CONFIDENCE),
                ),
                state_dir,
                db,
            ),
            "the same query, filtered in its WHERE",
            ["item_id", "path", "label", "source", "confidence", "x", "y"],
        )

        def embed_file() -> Path:
            run = pd.read_sql(
                "SELECT id FROM runs WHERE kind = 'embed' AND status = 'done' ORDER BY id DESC LIMIT 1", db
            )
            return state_dir / "runs" / str(int(run["id"].iloc[0]))

        add(
            "`embeddings()`: open (memory-mapped)",
            collection.embeddings,
            lambda: (np.load(embed_file() / "item_ids.npy"), np.load(embed_file() / "embeddings.npy", mmap_mode="r")),
            "`pd.read_sql` of the runs table + `np.load(mmap_mode='r')`",
        )
        add(
            "`embeddings()` + read every vector as float32",
            lambda: np.asarray(collection.embeddings()[1], np.float32).sum(),
            lambda: np.load(embed_file() / "embeddings.npy").sum(),
            "the same + `np.load` of the file",
        )
        db.close()
        collection.close()
    memory.stop()
    out["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["setup"] = clock.rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dim", type=int, default=128)
    size_options(parser)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args)))
        return
    print("| items | call | rows | ours | baseline | baseline / ours | same result |")
    print("|---:|---|---:|---:|---|---:|---|")
    options = ["--repeats", str(args.repeats), "--dim", str(args.dim), "--tmp", args.tmp]
    results = each_size_apart(__file__, args.sizes, options, print_size, args.json)
    for r in results:
        print(f"\n{r['n']:,} items: peak RSS of the process {r['peak'] / 2**20:,.0f} MiB")


def print_size(r: dict) -> None:
    for row in r["rows"]:
        rows = f"{row['rows']:,}" if row["rows"] != "" else ""
        print(
            f"| {r['n']:,} | {row['what']} | {rows} | {_t(row['ours'])} | {_t(row['base'])} ({row['base_name']}) | "
            f"{row['base'] / max(row['ours'], 1e-9):.2f}x | {'yes' if row['same'] else '**no**'} |",
            flush=True,
        )


def _t(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds:.2f} s"


if __name__ == "__main__":
    main()
