"""``python -m benchmarks.collections NAME|all DEST [--scale S] [--seed N] [--sheet]``: write test collections.

Prints one line a collection: name, items, classes, seconds. ``--sheet`` also writes ``DEST/NAME/sheet.png``,
a 10x10 contact sheet of random images grouped by class.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import SUITE, make
from ._common import contact_sheet, read_truth


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collections", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=[*SUITE, "all"], help="a collection, or all of them in suite order")
    parser.add_argument("dest", type=Path, help="folder that receives DEST/NAME/images and DEST/NAME/truth.csv")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the item counts (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", action="store_true", help="also write DEST/NAME/sheet.png")
    args = parser.parse_args(argv)
    for name in SUITE if args.name == "all" else (args.name,):
        start = time.perf_counter()
        collection = make(name, args.dest, scale=args.scale, seed=args.seed)
        seconds = time.perf_counter() - start
        if args.sheet:
            contact_sheet(collection, args.dest / name / "sheet.png")
        items = len(read_truth(collection.truth))
        print(f"{name:16} {items:6d} items {collection.classes:3d} classes {seconds:7.1f} s", flush=True)


if __name__ == "__main__":
    main()
