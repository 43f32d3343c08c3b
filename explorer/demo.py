"""The demo collection: scikit-learn's handwritten digits as 32x32 PNG files."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 32


@dataclass(frozen=True)
class DemoCollection:
    images: Path  # the collection to open (flat folder of PNGs)
    truth: Path  # path,label CSV of the true digits, outside the collection, for evaluation


def default_demo_dir() -> Path:
    """The platform's folder for user data (XDG_DATA_HOME on Linux, Application Support on macOS,
    AppData on Windows), ``embedding-explorer/demo`` in it."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("embedding-explorer", appauthor=False)) / "demo"


def write_demo(dest: Path | None = None, seed: int = 0) -> DemoCollection:
    """Write the 1,797 digits of ``sklearn.datasets.load_digits`` to ``dest/digits/``.

    File names are neutral (``img-0000.png`` in a shuffled order), so the digit cannot be read
    from them; the true labels go to ``dest/digits-truth.csv``. Existing files are kept, so running
    it twice does not disturb a project already started on the collection.
    """
    from sklearn.datasets import load_digits

    dest = Path(dest).expanduser() if dest else default_demo_dir()
    images_dir = dest / "digits"
    truth = dest / "digits-truth.csv"
    images_dir.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.images))
    rows = []
    for k, index in enumerate(order):
        name = f"img-{k:04d}.png"
        rows.append((name, str(int(digits.target[index]))))
        path = images_dir / name
        if path.exists():
            continue
        # Values are 0..16 ink; draw dark ink on light paper, as a scan would look.
        ink = digits.images[index] / 16.0
        small = Image.fromarray(np.uint8(255 - np.round(ink * 255)), mode="L")
        small.resize((SIZE, SIZE), Image.Resampling.BILINEAR).save(path)
    with open(truth, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return DemoCollection(images_dir, truth)
