"""A collection of what real image folders contain besides nice photos, made on the fly.

``write_hostile_corpus(folder)`` returns {path: expected}, where expected is None for a file that
must end up a usable item, or a phrase its unreadable reason must contain.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

LONG_NAME = "long-" + "x" * 240 + ".png"  # 249 bytes: near the 255-byte limit of most file systems
NON_UTF8_NAME = b"caf\xe9-latin1.png"  # é in Latin-1: not valid UTF-8


def png_bytes(image: Image.Image, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", **params)
    return out.getvalue()


def jpeg_bytes(image: Image.Image, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95, **params)
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's
    calling card: PIL reads the header before any pixel)."""
    data = bytearray(png_bytes(Image.new("L", (1, 1))))
    ihdr = 8 + 8  # signature, then length + b"IHDR"
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def photo(size=(40, 30), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def exif_rotated_jpeg() -> bytes:
    """A 64x32 photo, left half red and right half blue as stored, with EXIF orientation 6
    ("rotate 90 degrees clockwise to view"): upright it is 32x64, red on top, blue below."""
    pixels = np.zeros((32, 64, 3), np.uint8)
    pixels[:, :32] = (230, 20, 20)
    pixels[:, 32:] = (20, 20, 230)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6
    return jpeg_bytes(image, exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return out.getvalue()


def palette_with_transparency() -> bytes:
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0] + [0, 160, 0] + [0, 0, 0] * 254)
    image.paste(0, (0, 0, 4, 8))  # left half: index 0, declared transparent
    return png_bytes(image, transparency=0)


def write_hostile_corpus(folder: Path) -> dict[str, str | None]:
    """Write the corpus into ``folder``; {collection-relative path: None or expected reason}."""
    folder.mkdir(parents=True, exist_ok=True)
    good_png = png_bytes(photo(seed=1))
    good_jpeg = jpeg_bytes(photo(seed=2))
    files: dict[str, tuple[bytes, str | None]] = {
        "good/plain.png": (good_png, None),
        "good/plain.jpg": (good_jpeg, None),
        "good/grey.png": (png_bytes(Image.new("L", (20, 20), 90)), None),
        "good/grey-alpha.png": (png_bytes(Image.new("LA", (20, 20), (90, 128))), None),
        "empty.jpg": (b"", "not an image"),
        "truncated.jpg": (good_jpeg[: len(good_jpeg) // 2], "truncated"),
        "truncated.png": (good_png[: len(good_png) * 2 // 3], "truncated"),
        "notes-really-text.jpg": (b"these are my notes, not a photo\n" * 20, "not an image"),
        "bomb-huge.png": (png_declaring(100_000, 100_000), "too large"),
        "bomb-just-over-limit.png": (png_declaring(15_000, 15_000), "too large"),
        "tiny-1x1.png": (png_bytes(Image.new("RGB", (1, 1), (1, 2, 3))), None),
        "wide-20000x100.png": (png_bytes(Image.new("RGB", (20000, 100), (40, 50, 60))), None),
        "cmyk.jpg": (jpeg_bytes(Image.new("CMYK", (24, 24), (0, 255, 255, 0))), None),
        "deep-16bit.png": (png_bytes(Image.fromarray(np.full((16, 16), 30000, np.uint16))), None),
        "palette-transparent.png": (palette_with_transparency(), None),
        "rgba.png": (png_bytes(Image.new("RGBA", (16, 16), (255, 0, 0, 128))), None),
        "exif-rotated.jpg": (exif_rotated_jpeg(), None),
        "animated.gif": (animated_gif(), None),
        "jpeg-named.png": (good_jpeg, None),  # the suffix lies; the content decides
        LONG_NAME: (good_png, None),
        "unreadable-permissions.png": (good_png, "permission denied"),
    }
    expected: dict[str, str | None] = {}
    for rel, (data, outcome) in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expected[rel] = outcome
    os.chmod(folder / "unreadable-permissions.png", 0)

    with open(os.path.join(os.fsencode(folder), NON_UTF8_NAME), "wb") as f:
        f.write(good_png)
    expected[NON_UTF8_NAME.decode("utf-8", "backslashreplace")] = "not valid UTF-8"
    os.symlink("loop-b.jpg", folder / "loop-a.jpg")
    os.symlink("loop-a.jpg", folder / "loop-b.jpg")
    expected["loop-a.jpg"] = expected["loop-b.jpg"] = "symbolic link loop"
    os.symlink("gone-for-good.png", folder / "dangling.png")
    expected["dangling.png"] = "broken symbolic link"
    os.symlink("..", folder / "good" / "up")  # a folder loop: not followed
    return expected
