"""Whitened embeddings for propagation: seeded accuracy on a map made without and with whitening.

For each prepared suite project (``labelling_effort.py --prepare-only DIR`` leaves DIR/NAME with a
trained encoder, its embeddings and map, and DIR/NAME.truth.csv), in the same run on the same
embeddings: pseudo-label accuracy from 1 / 3 / 10 random seeds a class (mean of ``--draws``
draws) on a fresh map with whitening switched off and on (``explorer.neighbours.whiten``). The
projects are copied first; the originals are not touched.

Run: ``nice python benchmarks/whitening.py --prepared DIR [--collections mnist glyphs ...]``
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelling_effort import prepared_parser, read_truth, seeded_accuracy  # noqa: E402


def main() -> None:
    import explorer.neighbours.whiten as whiten
    from explorer import workflow
    from explorer.store import Project

    parser = prepared_parser(__doc__)
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    policy = whiten.whitens
    print("| collection | seeded 1 / 3 / 10 a class, not whitened | whitened |\n|---|---|---|")
    for name in args.collections:
        if not (args.prepared / name).is_dir():
            print(f"| {name} | not prepared | |")
            continue
        truth = read_truth(args.prepared / f"{name}.truth.csv")
        cells = []
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / name
            shutil.copytree(args.prepared / name, copy)
            with Project(copy) as project:
                for on in (False, True):
                    whiten.whitens = policy if on else (lambda _encoder: False)
                    workflow.make_map(project, fresh=True)
                    cells.append(
                        " / ".join(f"{seeded_accuracy(project, truth, k, args.draws):.3f}" for k in (1, 3, 10))
                    )
        whiten.whitens = policy
        print(f"| {name} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
