"""Near-duplicates on a trained encoder's map: raw cosine 0.98 (before) against whitened 0.9 (now).

For each prepared suite project (``labelling_effort.py --prepare-only DIR``; read only), in one run:

- images the collection calls near-duplicates: items in at least one pair, before (the map's raw
  kNN graph at cosine >= 0.98) and now (``store.current.duplicate_graph``: the whitened vectors'
  graph at its default threshold);
- edited copies that must count: ``--copies`` random images saved again as JPEG quality 70, 10 %
  brighter, cropped by 1 px a side, and shrunk to 3/4 and back, each embedded as ``explorer
  similar`` embeds an outside image; the share whose similarity to its original reaches the
  threshold, before and now, and the median similarity in each space;
- where the collection ships ``duplicates.csv`` (``unbalanced``: copies moved by 1-2 px with noise),
  recall and precision of those pairs.

Run: ``nice python benchmarks/duplicates.py --prepared DIR [--collections unbalanced shapes ...]``
"""

from __future__ import annotations

import csv
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelling_effort import prepared_collections, prepared_parser  # noqa: E402

BEFORE = 0.98


def edits(image: Image.Image):
    """(name, edited copy) of ``image``: what a collection holds twice without meaning to."""
    w, h = image.size
    jpeg = io.BytesIO()
    image.convert("RGB").save(jpeg, "JPEG", quality=70)
    yield "jpeg 70", Image.open(jpeg)
    yield "10 % brighter", Image.eval(image, lambda v: min(255, int(v * 1.1)))
    yield "1 px crop", image.crop((1, 1, w - 1, h - 1)).resize((w, h))
    yield "3/4 and back", image.resize((w * 3 // 4, h * 3 // 4)).resize((w, h))


def flagged(indices: np.ndarray, similarities: np.ndarray, threshold: float) -> tuple[int, int]:
    """(pairs, images in a pair) at ``threshold`` on a graph."""
    from explorer.neighbours.knn import KnnGraph, near_duplicates

    pairs, _ = near_duplicates(KnnGraph(indices, similarities, "", None), threshold)
    return len(pairs), len(np.unique(pairs))


def copies(project, space, copies: int, work: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """edit name -> ((copies,) raw cosine, (copies,) whitened cosine) of each copy to its original."""
    from explorer.store.current import current_map
    from explorer.workflow.embedding import _embed_one
    from explorer.workflow.mapping import map_whitening

    graph_map = current_map(project)
    params = project.run(project.run(graph_map.run_id).params["embed_run"]).params
    whitening = map_whitening(project, graph_map.run_id)
    paths = project.paths_by_id()
    rows = np.random.default_rng(0).choice(len(graph_map.item_ids), copies, replace=False)
    found: dict[str, list] = {}

    def cosine(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    for row in rows:
        original = project.root / paths[int(graph_map.item_ids[row])]
        base = _embed_one(project, params, original, "cpu")
        base_w = whitening.apply(base[None])[0]
        for name, edited in edits(Image.open(original)):
            file = work / "copy.png"
            edited.save(file)
            vector = _embed_one(project, params, file, "cpu")
            found.setdefault(name, []).append((cosine(vector, base), cosine(whitening.apply(vector[None])[0], base_w)))
    return {name: (np.array(v)[:, 0], np.array(v)[:, 1]) for name, v in found.items()}


def shipped_pairs(project, name: str, prepared: Path) -> set[tuple[int, int]]:
    """Row pairs of the collection's ``duplicates.csv`` (empty when it has none)."""
    from explorer.store.current import current_map

    file = prepared / "made" / name / "duplicates.csv"
    if not file.exists():
        return set()
    graph_map = current_map(project)
    paths = project.paths_by_id()
    row = {paths[int(i)]: r for r, i in enumerate(graph_map.item_ids)}
    with open(file, newline="") as f:
        return {tuple(sorted((row[r["path"]], row[r["original"]]))) for r in csv.DictReader(f)}


def recall_precision(indices, similarities, threshold: float, truth: set) -> tuple[float, float]:
    from explorer.neighbours.knn import KnnGraph, near_duplicates

    pairs, _ = near_duplicates(KnnGraph(indices, similarities, "", None), threshold)
    found = {tuple(p) for p in pairs.tolist()}
    hit = len(found & truth)
    return hit / max(len(truth), 1), hit / max(len(found), 1)


def main() -> None:
    parser = prepared_parser(__doc__)
    parser.add_argument("--copies", type=int, default=20, help="random images copied with each edit")
    args = parser.parse_args()
    from explorer.store import Project
    from explorer.store.current import current_map, duplicate_graph

    work = Path(tempfile.mkdtemp())
    print(
        "| collection | images | called near-duplicates: before (raw 0.98) / now | edit | copies found before / now "
        "| median cosine raw / whitened |"
    )
    print("|---|---:|---|---|---|---|")
    for name, _ in prepared_collections(args):
        with Project(args.prepared / name) as project:
            graph_map = current_map(project)
            space = duplicate_graph(project)
            if not space.whitened:
                print(f"| {name} | not whitened (raw pixels or imported vectors): nothing to compare |")
                continue
            n = len(graph_map.item_ids)
            _, before = flagged(graph_map.knn_indices, graph_map.knn_similarities, BEFORE)
            _, now = flagged(space.indices, space.similarities, space.threshold)
            for k, (edit, (raw, white)) in enumerate(copies(project, space, args.copies, work).items()):
                lead = f"| {name} | {n:,} | {before:,} / {now:,}" if k == 0 else "| | |"
                print(
                    f"{lead} | {edit} | {(raw >= BEFORE).mean():.2f} / {(white >= space.threshold).mean():.2f} "
                    f"| {np.median(raw):.4f} / {np.median(white):.3f} |",
                    flush=True,
                )
            truth = shipped_pairs(project, name, args.prepared)
            if truth:
                r0, p0 = recall_precision(graph_map.knn_indices, graph_map.knn_similarities, BEFORE, truth)
                r1, p1 = recall_precision(space.indices, space.similarities, space.threshold, truth)
                print(
                    f"| | | | its {len(truth)} shipped copies (1-2 px moved, noise): recall / precision | "
                    f"{r0:.2f} / {p0:.3f} before, {r1:.2f} / {p1:.3f} now | |"
                )


if __name__ == "__main__":
    main()
