"""The map drawn as a density image when too many points are in view to draw one by one.

Numpy only (no Qt), so it can be tested and timed alone. The view rectangle is rasterised at
screen resolution: each point lands in one pixel (``np.bincount`` on the binned coordinates),
is spread over a ``splat`` x ``splat`` square like the drawn point it stands for, and each pixel
gets the colours of its points mixed by their opacity. The pixel's opacity is what that many
overlapping points of that mean opacity would give (1 - (1 - a)^n), and its brightness grows
with the log of the count, so the inside of a cluster still shows where it is densest (a wall of
points drawn one by one would be flat).

``view_layer`` decides, for a big map, between the density image and the points around the view,
and does the work of either (the map calls it on a worker after the view moved or the colours
changed).

Rectangles are ``(x0, y0, x1, y1)`` in map coordinates; images are ``(W, H, 4)`` uint8 RGBA
with the first axis along x and row 0 at the bottom (pyqtgraph ``ImageItem``'s default order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIMMEST = 0.55  # brightness of a pixel holding a single point; the densest pixels get 1
DENSE_PERCENTILE = 99  # the count that gets full brightness: robust to a few pile-ups


def inside(xy: np.ndarray, rect) -> np.ndarray:
    """(N,) bool: which of ``xy`` (N, 2) lie in ``rect`` (x0, y0, x1, y1), edges included."""
    x0, y0, x1, y1 = (float(v) for v in rect)
    x, y = xy[:, 0], xy[:, 1]
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def grow(rect, margin: float):
    """``rect`` widened by ``margin`` times its width and height on every side."""
    x0, y0, x1, y1 = (float(v) for v in rect)
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def contains(outer, inner) -> bool:
    """Whether rectangle ``inner`` lies within ``outer``."""
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def _pixels(xy: np.ndarray, rect, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(M,) flat pixel index (i * H + j) of the points inside the raster and (N,) bool of which."""
    x0, y0, x1, y1 = (float(v) for v in rect)
    width, height = shape
    fx = (xy[:, 0] - np.float32(x0)) * np.float32(width / max(x1 - x0, 1e-12))
    fy = (xy[:, 1] - np.float32(y0)) * np.float32(height / max(y1 - y0, 1e-12))
    kept = (fx >= 0) & (fx < width) & (fy >= 0) & (fy < height)
    return fx[kept].astype(np.int64) * height + fy[kept].astype(np.int64), kept


def _splat(layers: np.ndarray, size: int) -> np.ndarray:
    """Box-sum ``layers`` (C, W, H) over ``size`` x ``size`` pixels (shifted adds: exact, so an
    empty pixel stays exactly zero)."""
    if size <= 1:
        return layers
    before = size // 2
    _, width, height = layers.shape
    rows = np.zeros((layers.shape[0], width + size - 1, height), layers.dtype)
    for shift in range(size):  # along x: every pixel adds into the ``size`` columns it covers
        rows[:, shift : shift + width] += layers
    rows = rows[:, before : before + width]
    out = np.zeros((layers.shape[0], width, height + size - 1), layers.dtype)
    for shift in range(size):
        out[:, :, shift : shift + height] += rows
    return out[:, :, before : before + height]


def density_image(
    xy: np.ndarray,
    codes: np.ndarray,
    palette: np.ndarray,
    rect,
    shape: tuple[int, int],
    splat: int = 1,
) -> np.ndarray:
    """The (W, H, 4) uint8 RGBA density image of the points in ``rect``.

    xy: (N, 2) map coordinates; codes: (N,) index into ``palette`` (P, 4) uint8 RGBA, each
    point's colour as the scatter would draw it (alpha 0: hidden, left out); rect: (x0, y0, x1,
    y1) the image covers; shape: (W, H) pixels; splat: the drawn point's size in pixels.
    """
    width, height = int(shape[0]), int(shape[1])
    if width < 1 or height < 1:
        raise ValueError(f"a density image needs at least one pixel, got {width} x {height}")
    palette = np.asarray(palette, np.float32)
    if palette.ndim != 2 or palette.shape[1] != 4:
        raise ValueError(f"palette must be (P, 4) RGBA, got shape {palette.shape}")
    if len(codes) != len(xy):
        raise ValueError(f"{len(codes)} colour codes for {len(xy)} points")
    image = np.zeros((width, height, 4), np.uint8)
    if len(xy) == 0:
        return image
    pixel, kept = _pixels(xy, rect, (width, height))
    codes = np.asarray(codes)[kept]
    if len(codes) and (codes.min() < 0 or codes.max() >= len(palette)):
        raise ValueError(f"colour codes must lie in 0..{len(palette) - 1}, got {codes.min()}..{codes.max()}")
    alpha = palette[:, 3] / 255.0
    drawn = alpha[codes] > 0
    if not drawn.all():
        pixel, codes = pixel[drawn], codes[drawn]
    if len(pixel) == 0:
        return image
    # Per palette entry: its opacity and its colour times its opacity, gathered per point.
    weights = np.concatenate([alpha[:, None], palette[:, :3] * alpha[:, None]], axis=1)
    size = width * height
    layers = np.empty((5, size), np.float32)  # count, opacity, red, green, blue (times opacity)
    layers[0] = np.bincount(pixel, minlength=size)
    for c in range(4):  # one 1-D gather per layer: a 2-D fancy index is several times slower
        layers[1 + c] = np.bincount(pixel, np.take(np.ascontiguousarray(weights[:, c]), codes), minlength=size)
    layers = _splat(layers.reshape(5, width, height), int(splat))
    count, opacity_sum, colour_sum = layers[0], layers[1], layers[2:]
    full = count > 0.5
    n = count[full]
    mean_alpha = opacity_sum[full] / n
    with np.errstate(divide="ignore"):  # opaque points: log(0) = -inf, coverage 1
        coverage = 1.0 - np.exp(n * np.log1p(-np.minimum(mean_alpha, 1.0)))  # 1 - (1 - a)^n, faster
    dense = max(float(np.percentile(n, DENSE_PERCENTILE)), 1.0)  # all single points: all full brightness
    brightness = DIMMEST + (1.0 - DIMMEST) * np.clip(np.log1p(n) / np.log1p(dense), 0.0, 1.0)
    rgb = colour_sum[:, full] / opacity_sum[full] * brightness
    for c in range(3):
        image[..., c][full] = np.clip(rgb[c], 0, 255).astype(np.uint8)
    image[..., 3][full] = np.clip(coverage * 255.0, 0, 255).astype(np.uint8)
    return image


def with_outline(image: np.ndarray, colour: tuple[int, int, int, int]) -> np.ndarray:
    """``image`` (W, H, 4) with a one-pixel ``colour`` ring around everything it draws (the
    selection's outline when it is drawn as an image)."""
    drawn = image[..., 3] > 0
    grown = drawn.copy()
    grown[1:] |= drawn[:-1]
    grown[:-1] |= drawn[1:]
    grown[:, 1:] |= drawn[:, :-1]
    grown[:, :-1] |= drawn[:, 1:]
    out = image.copy()
    out[grown & ~drawn] = colour
    return out


@dataclass(frozen=True)
class ViewLayer:
    """What a big map draws for the view ``rect`` (``view_layer``): a density image, or the
    points around the view (``loaded`` rows within ``region``; None: the loaded ones do)."""

    rect: tuple
    image: np.ndarray | None  # (W, H, 4) for ``rect``; None: draw points
    loaded: np.ndarray | None
    region: tuple | None


def view_layer(
    xy: np.ndarray,
    codes: np.ndarray,
    palette: np.ndarray,
    rect,
    shape: tuple[int, int],
    splat: int,
    density_above: int,
    loaded_max: int,
    loaded_region=None,
) -> ViewLayer:
    """The density image of ``rect`` when more than ``density_above`` points lie in it, else the
    rows to load in the scatter: those within a margin of up to the view's size on every side (so
    panning a little needs no reload), at most ``loaded_max``; none when ``loaded_region`` (what
    is loaded now) still covers ``rect``. Arguments as ``density_image``."""
    if np.count_nonzero(inside(xy, rect)) > density_above:
        return ViewLayer(rect, density_image(xy, codes, palette, rect, shape, splat), None, None)
    if loaded_region is not None and contains(loaded_region, rect):
        return ViewLayer(rect, None, None, loaded_region)
    for margin in (1.0, 0.5, 0.25, 0.0):
        region = grow(rect, margin)
        near = inside(xy, region)
        if np.count_nonzero(near) <= loaded_max:
            break
    return ViewLayer(rect, None, np.flatnonzero(near), region)
