"""Batched image augmentations as tensor ops on the device (no per-image PIL loop).

Input: uint8 (B, 3, S, S) on any device. Output: float32 (B, 3, S, S) normalised with
``MEAN``/``STD``. Per-sample random parameters are drawn on the CPU from an optional
``torch.Generator`` (so a seed gives the same views on every device) and moved to the batch's
device. The recipe follows SimCLR (Chen et al. 2020): random resized crop, horizontal flip,
colour jitter, random grayscale, optional Gaussian blur; to the crop it adds a small rotation,
shear and elastic distortion (Simard et al. 2003), all in one resampling, which is what small
images of drawn or written things (digits, glyphs, scans) need to learn shape rather than pixels.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentRecipe:
    """Strength of each augmentation; probabilities are per sample."""

    crop_scale: tuple[float, float] = (0.2, 1.0)  # area fraction of the source image (above 1: zoom out)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect ratio of the crop
    shift: float = 0.0  # extra play of the crop's centre, as a fraction of the half side
    rotation: float = 0.0  # largest rotation, degrees either way
    shear: float = 0.0  # largest horizontal shear (tan of the angle), either way
    elastic: float = 0.0  # largest elastic displacement, as a fraction of the half side
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1  # fraction of a full turn of the colour wheel
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # in pixels at 224 px, scaled with the image


def recipe_for(image_size: int, grayscale: bool = False) -> AugmentRecipe:
    """The default recipe for ``image_size`` px images.

    Small images (< 64 px) get no blur and a milder crop. Grayscale collections (scans, digits,
    documents, X-rays) get no saturation/hue jitter or random grayscale (they would do nothing), more
    contrast jitter and no flips (handedness carries meaning there: a mirrored 2 is no 2). Small
    grayscale images are mostly drawn or written things centred in their frame (digits, glyphs,
    scans): instead of crops, which cut a digit into another digit, they get the whole image turned
    (up to 20 degrees), slanted, zoomed in or out by up to a quarter, shifted and bent by an elastic
    field, as a hand would vary it. On 5,000 real MNIST digits (benchmarks/README.md, 3 CPU-minutes
    of SimCLR): kNN@20 0.918 -> 0.964 against the crop recipe, pseudo-labels from one seed a class
    0.56 -> 0.91.

    Small colour images get SimCLR's colour distortion at strength 1 (brightness, contrast and
    saturation 0.8, hue 0.2) and half the views turned grey: on the two colour collections of the
    suite, where tint, background and texture are nuisances (benchmarks/encoder_recipe.py, 360
    CPU-s of SimCLR), kNN@20 0.262 -> 0.345 (mnist-cluttered) and 0.447 -> 0.576 (shapes), seeds
    10 a class 0.131 -> 0.184 and 0.296 -> 0.360, against the strength-0.5 jitter with 20 % grey
    views used before; strength 1 with 20 % grey was in between, added rotation, shear or crops
    from 0.2 of the area were worse. A collection whose classes differ only by colour would want
    less of this.
    """
    small = image_size < 64
    recipe = AugmentRecipe(
        crop_scale=(0.35, 1.0) if small else (0.2, 1.0),
        blur_p=0.0 if small else 0.5,
    )
    if not grayscale:
        if small:  # SimCLR's colour distortion at strength 1, half the views grey (docstring)
            return dataclasses.replace(recipe, brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, grayscale_p=0.5)
        return recipe
    grey = dict(flip_p=0.0, brightness=0.4, contrast=0.6, saturation=0.0, hue=0.0, grayscale_p=0.0)
    if not small:
        return dataclasses.replace(recipe, **grey)
    return dataclasses.replace(
        recipe,
        **grey,
        crop_scale=(0.8, 1.55),  # a side of 0.9 to 1.25 of the image: zoomed in or out a little
        crop_ratio=(0.9, 1.1),
        shift=0.15,
        rotation=20.0,
        shear=0.25,
        elastic=0.12,
    )


def is_grayscale(images: np.ndarray, sample: int = 256) -> bool:
    """True when (N, S, S, 3) uint8 ``images`` look grey (channels equal within 2 levels)."""
    if len(images) == 0:
        return False
    picked = images[np.linspace(0, len(images) - 1, min(sample, len(images))).astype(int)].astype(np.int16)
    spread = np.abs(picked - picked[..., :1]).max()
    return bool(spread <= 2)


def to_batch(images: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 numpy -> (N, 3, S, S) uint8 tensor (a view when possible)."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected images as (N, S, S, 3) uint8, got {images.shape} {images.dtype}")
    if not images.flags.writeable:  # e.g. a PIL image seen through np.asarray; torch wants to own writable memory
        images = images.copy()
    return torch.from_numpy(images).permute(0, 3, 1, 2)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, S, S) -> float32 (B, 3, S, S), scaled to [0, 1] then standardised."""
    return standardise(images.float().div_(255.0))


def standardise(x: torch.Tensor) -> torch.Tensor:
    """float (B, 3, H, W) in [0, 1] -> standardised with ``MEAN``/``STD`` (what every backbone sees)."""
    mean = torch.tensor(MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


class SameForAll:
    """A generator whose every draw is shared by the whole batch, so each image gets the same view.

    Embedding views (``explorer.ssl.encoder``) use it: an image's vector must not depend on which
    images share its batch, and two near-duplicates must get the same views to stay near."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)


Draws = torch.Generator | SameForAll | None
"""Where an augmentation's random numbers come from: a generator, one shared by the batch, or torch's own."""


def _rand(shape: tuple[int, ...], generator: Draws) -> torch.Tensor:
    """Uniform [0, 1) of ``shape`` (first axis: the images), one draw for all under ``SameForAll``."""
    if isinstance(generator, SameForAll):
        return torch.rand((1, *shape[1:]), generator=generator.generator).expand(shape).clone()
    return torch.rand(shape, generator=generator)


def _uniform(n: int, low: float, high: float, generator: Draws) -> torch.Tensor:
    return _rand((n,), generator) * (high - low) + low


def _coin(n: int, p: float, generator: Draws) -> torch.Tensor:
    return _rand((n,), generator) < p


def crop_boxes(
    x: torch.Tensor,
    cx: torch.Tensor,
    cy: torch.Tensor,
    w: torch.Tensor,
    h: torch.Tensor,
    size: int | None = None,
    flip: torch.Tensor | None = None,
    angle: torch.Tensor | None = None,
    shear: torch.Tensor | None = None,
    warp: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cut one box out of each image and resize it to (size, size) with bilinear sampling.

    x: float (B, C, S, S). Boxes are in [-1, 1] image coordinates: centre ``cx``, ``cy`` and
    width ``w``, height ``h`` as fractions of the image side, each (B,) on the CPU; ``flip`` (B,)
    of +-1 mirrors horizontally; ``angle`` (B,) radians turns the box, ``shear`` (B,) slants it;
    ``warp`` (B, 2, g, g) is a coarse displacement field in [-1, 1] coordinates, upsampled
    smoothly and added to the sampling grid (elastic distortion). Returns float (B, C, size, size)
    (size defaults to S). One ``affine_grid`` + ``grid_sample`` call for the whole batch.
    """
    b, c = x.shape[:2]
    size = size or x.shape[-1]
    w = w * (flip if flip is not None else 1.0)
    cos, sin = (angle.cos(), angle.sin()) if angle is not None else (torch.ones(b), torch.zeros(b))
    sh = shear if shear is not None else torch.zeros(b)
    theta = torch.zeros(b, 2, 3)  # rotation after shear, scaled by the box
    theta[:, 0, 0] = w * cos
    theta[:, 0, 1] = w * (sh * cos - sin)
    theta[:, 0, 2] = cx
    theta[:, 1, 0] = h * sin
    theta[:, 1, 1] = h * (sh * sin + cos)
    theta[:, 1, 2] = cy
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)
    if warp is not None:
        field = F.interpolate(warp.to(device=x.device, dtype=x.dtype), size=(size, size), mode="bicubic")
        grid = grid + field.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


WARP_GRID = 5
"""Knots per side of the elastic field: a few bends per image, not pixel noise."""


def random_resized_crop(
    x: torch.Tensor, recipe: AugmentRecipe, generator: Draws = None, size: int | None = None
) -> torch.Tensor:
    """Crop a random box of each image, turn, slant and bend it, resize it to (size, size), flip some.

    x: float (B, 3, S, S) -> float (B, 3, size, size); size defaults to S. A crop scale above 1
    zooms out (the border pixels extend the image).
    """
    b = x.shape[0]
    area = _uniform(b, *recipe.crop_scale, generator)
    log_ratio = _uniform(b, math.log(recipe.crop_ratio[0]), math.log(recipe.crop_ratio[1]), generator)
    ratio = log_ratio.exp()
    limit = 1.0 if recipe.crop_scale[1] <= 1 else math.sqrt(recipe.crop_scale[1] * recipe.crop_ratio[1])
    w = (area * ratio).sqrt().clamp(max=limit)  # fraction of the width
    h = (area / ratio).sqrt().clamp(max=limit)
    play_x = (1 - w).clamp(min=0) + recipe.shift  # centre in [-1, 1] coordinates
    play_y = (1 - h).clamp(min=0) + recipe.shift
    cx = (_rand((b,), generator) * 2 - 1) * play_x
    cy = (_rand((b,), generator) * 2 - 1) * play_y
    flip = torch.where(_coin(b, recipe.flip_p, generator), -1.0, 1.0)
    angle = _uniform(b, -recipe.rotation, recipe.rotation, generator) * (math.pi / 180) if recipe.rotation else None
    shear = _uniform(b, -recipe.shear, recipe.shear, generator) if recipe.shear else None
    warp = None
    if recipe.elastic:
        warp = (_rand((b, 2, WARP_GRID, WARP_GRID), generator) * 2 - 1) * recipe.elastic
    return crop_boxes(x, cx, cy, w, h, size, flip, angle, shear, warp)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """float (B, 3, S, S) -> (B, 1, S, S) luminance."""
    r, g, b = _LUMA
    return r * x[:, 0:1] + g * x[:, 1:2] + b * x[:, 2:3]


def _rotate_hue(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate the chroma of (B, 3, S, S) RGB in YIQ space by ``turns`` (B,) of a full circle."""
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device, dtype=x.dtype
    )
    from_yiq = torch.linalg.inv(to_yiq)
    angle = turns.to(x.device, x.dtype) * 2 * math.pi
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(len(turns), 3, 3, device=x.device, dtype=x.dtype)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2] = cos, -sin
    rot[:, 2, 1], rot[:, 2, 2] = sin, cos
    matrix = from_yiq @ rot @ to_yiq  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", matrix, x)


def colour_jitter(x: torch.Tensor, recipe: AugmentRecipe, generator: Draws = None) -> torch.Tensor:
    """Brightness, contrast, saturation and hue jitter on float (B, 3, S, S) in [0, 1]."""
    b = x.shape[0]
    apply = _coin(b, recipe.jitter_p, generator)

    def factor(strength: float) -> torch.Tensor:
        f = _uniform(b, max(0.0, 1 - strength), 1 + strength, generator)
        return torch.where(apply, f, torch.ones(b)).to(x.device, x.dtype).view(b, 1, 1, 1)

    bright, contrast, sat = factor(recipe.brightness), factor(recipe.contrast), factor(recipe.saturation)
    hue = torch.where(apply, _uniform(b, -recipe.hue, recipe.hue, generator), torch.zeros(b))
    x = (x * bright).clamp(0, 1)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean).clamp(0, 1)
    grey = _gray(x)
    x = ((x - grey) * sat + grey).clamp(0, 1)
    if recipe.hue > 0:
        x = _rotate_hue(x, hue).clamp(0, 1)
    return x


def random_grayscale(x: torch.Tensor, p: float, generator: Draws = None) -> torch.Tensor:
    """Replace a random fraction ``p`` of float (B, 3, S, S) images by their luminance."""
    mask = _coin(x.shape[0], p, generator).to(x.device).view(-1, 1, 1, 1)
    return torch.where(mask, _gray(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, recipe: AugmentRecipe, generator: Draws = None) -> torch.Tensor:
    """Blur a random fraction ``recipe.blur_p`` of float (B, 3, S, S) images, sigma per sample."""
    b, c, s, _ = x.shape
    apply = _coin(b, recipe.blur_p, generator)
    scale = s / 224
    sigma = _uniform(b, *recipe.blur_sigma, generator) * scale
    radius = max(1, int(math.ceil(recipe.blur_sigma[1] * scale * 2)))
    if not bool(apply.any()):
        return x
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets[None] ** 2) / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (B, K)
    kernel = kernel.repeat_interleave(c, dim=0).to(x.device, x.dtype)  # (B*C, K)
    flat = x.reshape(1, b * c, s, s)
    flat = F.pad(flat, (radius, radius, 0, 0), mode="reflect")
    flat = F.conv2d(flat, kernel.view(b * c, 1, 1, -1), groups=b * c)
    flat = F.pad(flat, (0, 0, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel.view(b * c, 1, -1, 1), groups=b * c)
    blurred = flat.view(b, c, s, s)
    return torch.where(apply.to(x.device).view(-1, 1, 1, 1), blurred, x)


def augment_unit(
    images: torch.Tensor, recipe: AugmentRecipe, generator: Draws = None, size: int | None = None
) -> torch.Tensor:
    """One random view of each image before standardising: uint8 (B, 3, S, S) -> float (B, 3, size, size) in [0, 1].

    ``size`` (default S) is the output side, e.g. smaller for DINO's local crops.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"augment expects uint8 (B, 3, S, S), got {images.dtype} {tuple(images.shape)}")
    x = images.float().div_(255.0)
    x = random_resized_crop(x, recipe, generator, size)
    x = colour_jitter(x, recipe, generator)
    if recipe.grayscale_p > 0:
        x = random_grayscale(x, recipe.grayscale_p, generator)
    if recipe.blur_p > 0:
        x = gaussian_blur(x, recipe, generator)
    return x


def augment(
    images: torch.Tensor, recipe: AugmentRecipe, generator: Draws = None, size: int | None = None
) -> torch.Tensor:
    """One random view of each image: uint8 (B, 3, S, S) -> normalised float32 (B, 3, size, size)."""
    return standardise(augment_unit(images, recipe, generator, size))
