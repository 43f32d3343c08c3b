"""``glyphs``: 43 classes of printed characters (120 a class, 5,160 images), 32x32 grayscale, light ink on a
dark ground; labels are the characters themselves ("A", "b", "7").

Each character is set in Pillow's built-in scalable font (Aileron, ``ImageFont.load_default(size=...)``) at
3x, at a random size and stroke weight (``draw.text(stroke_width=...)``), then turned, slanted, stretched and
bent by an elastic field (Simard et al. 2003), resampled down (Lanczos), and put at a random place in the frame
(a pixel from the edge at least), with a random ground and ink grey and a little noise.

Characters that look alike in this font are left out, keeping one of each look: 0 (not O, o), 1 (not I, l, i),
no lowercase whose shape repeats its capital at another size (c k o p s u v w x z), and none whose descender
means little once size and baseline are random (g and q come close to 9, j to J, y to Y); m is left out only to
keep the count near 40. Rotation stays within +-15 degrees so that 6 and 9 (and b, d) stay apart.

What makes it hard: many classes (43) with few items each, and classes that differ by a small detail
(E/F, P/R, C/G, 8/B, 5/S, h/n, b/6). Nuisances that must not decide the class: size (characters of one class
differ by up to 2x, so capital and small letters overlap in size), stroke weight, rotation, slant, aspect,
elastic wobble, position, grey levels, noise.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ._common import (
    Collection,
    crop_to_ink,
    elastic_alpha,
    elastic_field,
    fit,
    paste,
    resize,
    save,
    scaled,
    to_uint8,
    warp,
)

NAME = "glyphs"
CHARACTERS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZabdefhnrt"
SIZE = 32
PER_CLASS = 120
UP = 3  # rendering resolution over the final one
WORK = 48  # final-pixel side of the square the glyph is drawn and bent in


@lru_cache(maxsize=64)
def _font(pixels: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font at ``pixels`` per em."""
    return ImageFont.load_default(size=pixels)


def glyph(character: str, rng: np.random.Generator) -> np.ndarray:
    """A (32, 32) uint8 image of ``character`` under random size, weight, geometry, place and grey levels."""
    big = Image.new("L", (WORK * UP, WORK * UP), 0)
    em = rng.uniform(15, 30)  # final pixels a em: capitals 10-21 px tall, small letters 7-15
    weight = round(rng.uniform(0, 0.055) * em * UP)  # extra stroke on each side: up to 1.6 px at the largest
    ImageDraw.Draw(big).text(
        (WORK * UP / 2, WORK * UP / 2),
        character,
        fill=255,
        font=_font(round(em * UP)),
        anchor="mm",
        stroke_width=weight,
        stroke_fill=255,
    )
    ink = np.asarray(big, dtype=float) / 255.0
    sigma = 4.0 * UP
    bend = elastic_field(ink.shape, elastic_alpha(rng.uniform(0.3, 0.9) * UP, sigma), sigma, rng)
    stretch = np.exp(rng.normal(0, 0.08, 2))
    ink = warp(ink, rotation=rng.uniform(-15, 15), shear=rng.uniform(-0.3, 0.3), zoom=tuple(stretch), field=bend)
    ink = crop_to_ink(resize(ink, (WORK, WORK)))
    if max(ink.shape) > SIZE - 2:  # a large glyph turned or bent beyond the frame: shrink it to fit
        ink = fit(ink, SIZE - 2)
    top, left = (rng.integers(1, SIZE - n) for n in ink.shape)  # a pixel of ground all round
    ink = paste((SIZE, SIZE), ink, int(top), int(left))
    ground, light = rng.uniform(0, 60), rng.uniform(170, 255)
    return to_uint8(ground + (light - ground) * np.clip(ink, 0, 1) + rng.normal(0, 4, ink.shape), peak=255.0)


def make(dest: Path, scale: float = 1.0, seed: int = 0) -> Collection:
    """Write ``dest/glyphs``: ``120 * scale`` images a character (at least 5)."""
    rng = np.random.default_rng(seed)
    labels = [c for c in CHARACTERS for _ in range(scaled(PER_CLASS, scale, minimum=5))]
    return save(
        dest,
        NAME,
        [glyph(c, rng) for c in labels],
        labels,
        rng,
        f"{len(CHARACTERS)} characters of Pillow's default font, bent and placed at random, 32x32 grey",
    )
