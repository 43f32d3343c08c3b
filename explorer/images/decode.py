"""Robust image decoding: whatever is in the folder either becomes an upright RGB image or a
clear reason why it cannot."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

# Anything larger than this many pixels is refused as a likely decompression bomb. PIL refuses
# twice this itself (in Image.open); between the two, our own check below refuses it, so PIL's
# warning would only be noise (and a thread-unsafe warnings filter is no way to turn it into an error).
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# Greyscale modes with more than 8 bits: (dtype maximum) used to scale them to 0..255.
_DEEP_MODES = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535}
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


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

    16-bit greyscale is scaled by its bit depth (65535 -> 255); transparency is composited on
    white so that RGBA and palette images look as they do in a viewer.
    """
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ImageError(
                    f"too large to decode safely ({image.width}x{image.height} pixels; "
                    f"the limit is {MAX_PIXELS:,} pixels)"
                )
            image.seek(0)
            image.load()
            image = _upright(image)
            return to_rgb(image) if convert else image.copy()
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("file not found (removed since the scan?)") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except IsADirectoryError:
        raise ImageError("is a directory") from None
    except UnidentifiedImageError:
        raise ImageError("not an image file PIL can read") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"broken or truncated image ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - any file from disk goes through PIL's format plugins
        raise ImageError(f"cannot decode ({type(exc).__name__}: {exc})") from None


def _upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says; unchanged when the EXIF block is damaged
    (the pixels are fine, only the metadata is not)."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - damaged EXIF comes in many exception types
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """An 8-bit RGB copy of ``image`` (any PIL mode).

    16-bit greyscale is scaled by its depth, 32-bit integer and float greyscale by their range
    (they have no fixed white); transparent pixels are composited on white.
    """
    if image.mode in _DEEP_MODES:
        data = np.asarray(image, dtype=np.float64) * (255.0 / _DEEP_MODES[image.mode])
        image = Image.fromarray(np.clip(data.round(), 0, 255).astype(np.uint8), mode="L")
    elif image.mode in ("I", "F"):
        data = np.asarray(image, dtype=np.float64)
        lo, hi = float(np.nanmin(data)), float(np.nanmax(data))
        if image.mode == "I" and lo >= 0 and hi <= 65535:  # 16-bit data widened to 32 bits (TIFF, old PNG)
            lo, hi = 0.0, 65535.0 if hi > 255 else 255.0
        elif image.mode == "F" and lo >= 0 and hi <= 1:  # floats in 0..1
            lo, hi = 0.0, 1.0
        scaled = np.zeros_like(data) if not hi > lo else (np.nan_to_num(data, nan=lo) - lo) / (hi - lo) * 255.0
        image = Image.fromarray(np.clip(scaled.round(), 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in _ALPHA_MODES:
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
