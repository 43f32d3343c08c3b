"""Robust image decoding: whatever is in the folder either becomes an upright RGB image or a
clear reason why it cannot."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

# Anything larger than this many pixels is refused as a likely decompression bomb.
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(Exception):
    """An image file that cannot be used; the message names the reason."""


def probe(path: Path) -> tuple[int, int, str]:
    """(width, height, PIL mode) of the image at ``path``, fully decoding it once to be sure.

    Raises ImageError naming the reason when the file is not a usable image.
    """
    image = open_image(path, convert=False)
    return image.width, image.height, image.mode


def open_image(path: Path, convert: bool = True) -> Image.Image:
    """The image at ``path``: first frame, EXIF orientation applied, RGB when ``convert``.

    16-bit and float greyscale are scaled to 8 bits by their range; transparency is composited on
    white so that RGBA and palette images look as they do in a viewer.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.seek(0)
                image.load()
                image = ImageOps.exif_transpose(image)
                if not convert:
                    return image.copy()
                return to_rgb(image)
    except FileNotFoundError:
        raise ImageError("file not found (removed since the scan?)") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except IsADirectoryError:
        raise ImageError("is a directory") from None
    except UnidentifiedImageError:
        raise ImageError("not an image file PIL can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"broken or truncated image ({exc})") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB copy of ``image`` (any PIL mode)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        data = np.asarray(image, dtype=np.float64)
        lo, hi = float(data.min()), float(data.max())
        scaled = np.zeros_like(data) if hi <= lo else (data - lo) / (hi - lo) * 255.0
        image = Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def load_rgb_array(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8 of the image at ``path``, resized (aspect ignored, like most SSL
    recipes at small sizes). Raises ImageError."""
    image = open_image(path)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)
