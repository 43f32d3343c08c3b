"""What every collection module shares: the ``Collection`` record, the writer of PNG files + truth CSV, and
the image pieces more than one generator draws with (class-balanced picks, warps, ink placement, coloured
backgrounds and compositing).

Images in between are float arrays: grey "ink" in 0..1 (1 = full ink), colour in 0..255; each generator
hands uint8 images to ``save``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


@dataclass(frozen=True)
class Collection:
    name: str
    images: Path  # folder of PNG files with neutral names (img-00042.png)
    truth: Path  # CSV path,label; path relative to ``images``, forward slashes
    classes: int
    description: str


def scaled(count: int, scale: float, minimum: int = 1) -> int:
    """``count * scale`` rounded, at least ``minimum`` (so every class survives a smoke-test scale)."""
    return max(minimum, round(count * scale))


def save(
    dest: Path,
    name: str,
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    rng: np.random.Generator,
    description: str,
    duplicates: Sequence[tuple[int, int]] = (),
) -> Collection:
    """Write ``images`` (uint8 arrays, (H, W) grey or (H, W, 3) colour) in a shuffled order to
    ``dest/name/images/img-NNNNN.png`` and ``dest/name/truth.csv``; with ``duplicates`` (pairs of indices
    into ``images``: a near-copy and the image it copies) also ``dest/name/duplicates.csv`` (path,original).

    Shuffled so that neither the file name nor the order gives the class away. Old ``img-*.png``
    files in the folder are removed first, so a smaller rewrite leaves no stale images behind.
    """
    folder = Path(dest) / name / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("img-*.png"):
        old.unlink()
    paths = {}
    for k, index in enumerate(rng.permutation(len(images))):
        paths[index] = f"img-{k:05d}.png"
        Image.fromarray(images[index]).save(folder / paths[index])
    truth = folder.parent / "truth.csv"
    _write_csv(truth, ("path", "label"), sorted((paths[i], labels[i]) for i in paths))
    if duplicates:
        _write_csv(
            folder.parent / "duplicates.csv", ("path", "original"), sorted((paths[c], paths[o]) for c, o in duplicates)
        )
    return Collection(name, folder, truth, len(set(labels)), description)


def _write_csv(path: Path, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])


def read_truth(truth: Path) -> list[tuple[str, str]]:
    """(path, label) rows of a truth CSV."""
    with open(truth, newline="") as f:
        return [(row["path"], row["label"]) for row in csv.DictReader(f)]


def pick(labels: np.ndarray, counts: Mapping[int, int], rng: np.random.Generator) -> np.ndarray:
    """Indices into ``labels``: ``counts[c]`` of class ``c`` each, class after class in the order of ``counts``. Drawn without repeats while
    the class has enough items; beyond that the class is cycled through again, each item used evenly (so
    500 items of a class with 180 sources use every source 2 or 3 times)."""
    picked = []
    for label, count in counts.items():
        members = np.flatnonzero(labels == label)
        rounds = -(-count // len(members))
        order = np.concatenate([rng.permutation(members) for _ in range(rounds)])
        picked.append(order[:count])
    return np.concatenate(picked)


def to_uint8(image: np.ndarray, peak: float = 255.0) -> np.ndarray:
    """``image * 255 / peak`` rounded and clipped to uint8 (``peak`` 1 for ink, 255 for colour)."""
    return np.clip(np.rint(image * (255.0 / peak)), 0, 255).astype(np.uint8)


def elastic_field(shape: tuple[int, int], alpha: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """(2, H, W) displacements in pixels (Simard et al. 2003): uniform noise in [-1, 1], Gaussian-smoothed
    with ``sigma`` and multiplied by ``alpha``; large alpha with large sigma bends strokes, not pixels."""
    from scipy.ndimage import gaussian_filter

    noise = rng.uniform(-1, 1, (2, *shape))
    return np.stack([gaussian_filter(n, sigma, mode="constant") * alpha for n in noise])


def elastic_alpha(displacement: float, sigma: float) -> float:
    """The ``alpha`` for ``elastic_field`` whose displacements have a standard deviation of about
    ``displacement`` pixels: smoothing uniform noise (std 1/sqrt(3)) with a 2-D Gaussian of ``sigma``
    leaves a std of 1 / (sqrt(3) * 2 * sqrt(pi) * sigma)."""
    return displacement * np.sqrt(3.0) * 2.0 * np.sqrt(np.pi) * sigma


def warp(
    image: np.ndarray,
    rotation: float = 0.0,
    shear: float = 0.0,
    zoom: tuple[float, float] = (1.0, 1.0),
    field: np.ndarray | None = None,
) -> np.ndarray:
    """``image`` (H, W) turned by ``rotation`` degrees (anticlockwise), slanted by ``shear`` (x moves by
    ``-shear * y`` about the centre: positive leans the top to the right, like italic writing), scaled by
    ``zoom`` (y, x), all about the centre, then displaced by ``field`` ((2, H, W) pixels, as from
    ``elastic_field``); bilinear, zero outside. Same shape out."""
    from scipy.ndimage import map_coordinates

    h, w = image.shape
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    angle = np.deg2rad(rotation)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])  # on (y down, x)
    slant = np.array([[1.0, 0.0], [-shear, 1.0]])
    # output -> input: undo zoom, undo slant, undo turn
    inverse = np.linalg.inv(turn @ slant @ np.diag(zoom))
    grid = np.indices((h, w), dtype=float).reshape(2, -1) - centre[:, None]
    coords = (inverse @ grid + centre[:, None]).reshape(2, h, w)
    if field is not None:
        coords = coords + field
    return map_coordinates(image, coords, order=1, mode="constant", cval=0.0)


def crop_to_ink(ink: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """The smallest box of ``ink`` (H, W) holding every pixel above ``threshold``; ``ink`` itself when empty."""
    rows, cols = np.nonzero(ink > threshold)
    if rows.size == 0:
        return ink
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float ``image`` (H, W) resampled to ``size`` = (height, width) with a Lanczos filter (antialiased
    when shrinking); negative ringing is clipped away."""
    pil = Image.fromarray(image.astype(np.float32))  # mode "F"
    out = pil.resize((max(1, size[1]), max(1, size[0])), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(out, dtype=float), 0.0, None)


def fit(ink: np.ndarray, longest: int) -> np.ndarray:
    """``ink`` cropped to its ink and resized, aspect kept, so that its longer side is ``longest`` pixels."""
    ink = crop_to_ink(ink)
    factor = longest / max(ink.shape)
    return resize(ink, (round(ink.shape[0] * factor), round(ink.shape[1] * factor)))


def paste(frame: tuple[int, int], image: np.ndarray, top: int, left: int) -> np.ndarray:
    """A zero (H, W) = ``frame`` array with ``image`` placed at (``top``, ``left``); what falls outside is cut."""
    out = np.zeros(frame, dtype=float)
    h, w = image.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, frame[0]), min(left + w, frame[1])
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = image[y0 - top : y1 - top, x0 - left : x1 - left]
    return out


def random_colour(
    rng: np.random.Generator, away_from: Sequence[np.ndarray] = (), distance: float = 130.0
) -> np.ndarray:
    """An RGB colour (3,) in 0..255 at least ``distance`` away (Euclidean, and half of it in luminance) from
    every colour of ``away_from``: ink that a person sees against its background."""
    luma = np.array([0.299, 0.587, 0.114])
    for _ in range(200):
        colour = rng.uniform(0, 255, 3)
        if all(
            np.linalg.norm(colour - other) >= distance and abs(luma @ (colour - other)) >= distance / 2
            for other in away_from
        ):
            return colour
    # a mid-grey background can leave no colour that far in luminance: fall back to black or white
    return np.full(3, 0.0 if luma @ np.mean(away_from, axis=0) > 127.5 else 255.0)


def background(size: int, rng: np.random.Generator, stripes: float = 0.0) -> tuple[np.ndarray, list[np.ndarray]]:
    """A ``size`` x ``size`` colour background (H, W, 3), float 0..255, and the colours it is made of: a linear
    gradient between two nearby random colours in a random direction, soft colour blotches, pixel noise, and
    with probability ``stripes`` sine stripes of a random period and angle (or, half of those times, a
    checkerboard). Ink drawn on it should stay ``random_colour(rng, colours)`` away."""
    from scipy.ndimage import gaussian_filter

    start = rng.uniform(0, 255, 3)
    end = np.clip(start + rng.uniform(-70, 70, 3), 0, 255)
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.indices((size, size), dtype=float) / (size - 1) - 0.5
    along = np.clip((np.cos(angle) * x + np.sin(angle) * y) + 0.5, 0, 1)[..., None]
    image = start + (end - start) * along
    blotches = gaussian_filter(rng.normal(0, 1, (size, size, 3)), (size / 8, size / 8, 0))
    image += blotches / (blotches.std() + 1e-9) * rng.uniform(0, 15)
    if rng.random() < stripes:
        image += _pattern(size, rng)[..., None] * rng.uniform(12, 30)
    image += rng.normal(0, rng.uniform(3, 14), image.shape)
    return np.clip(image, 0, 255), [start, end]


def _pattern(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size) in -1..1: sine stripes (period 3-10 px, any angle) or a checkerboard (cells 3-8 px)."""
    y, x = np.indices((size, size), dtype=float)
    if rng.random() < 0.5:
        angle = rng.uniform(0, np.pi)
        return np.sin(2 * np.pi * (np.cos(angle) * x + np.sin(angle) * y) / rng.uniform(3, 10))
    cell = rng.integers(3, 9)
    return ((x // cell + y // cell) % 2) * 2 - 1


def composite(image: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """``colour`` (3,) laid over ``image`` (H, W, 3) with opacity ``alpha`` (H, W) in 0..1."""
    a = np.clip(alpha, 0, 1)[..., None]
    return image * (1 - a) + colour * a


def supersampled(size: int, draw: Callable[[ImageDraw.ImageDraw, int], None], factor: int = 4) -> np.ndarray:
    """An antialiased (size, size) mask in 0..1: ``draw(pen, factor)`` paints white (255) on a black
    ``size * factor`` square (so it multiplies its final-pixel coordinates by ``factor``), which is then
    box-filtered down to ``size``."""
    big = Image.new("L", (size * factor, size * factor), 0)
    draw(ImageDraw.Draw(big), factor)
    return np.asarray(big.resize((size, size), Image.Resampling.BOX), dtype=float) / 255.0


def contact_sheet(collection: Collection, out: Path, grid: int = 10, upscale: int = 3, seed: int = 0) -> Path:
    """A ``grid`` x ``grid`` PNG of random images from ``collection`` in the order of their labels, each
    upscaled ``upscale``x (nearest), with a 2 px grey gap between cells: for looking at a collection."""
    rows = read_truth(collection.truth)
    picks = np.random.default_rng(seed).choice(len(rows), min(grid * grid, len(rows)), replace=False)
    picks = sorted(picks, key=lambda i: (rows[i][1], i))  # grouped by class, to compare classes at a glance
    tiles = [Image.open(collection.images / rows[i][0]).convert("RGB") for i in picks]
    w, h = tiles[0].size
    cw, ch = w * upscale + 2, h * upscale + 2
    sheet = Image.new("RGB", (grid * cw, grid * ch), (128, 128, 128))
    for k, tile in enumerate(tiles):
        tile = tile.resize((w * upscale, h * upscale), Image.Resampling.NEAREST)
        sheet.paste(tile, ((k % grid) * cw + 1, (k // grid) * ch + 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
