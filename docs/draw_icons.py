"""Draw the application and toolbar icons into explorer/resources/icons (run after changing a shape).

Each icon is drawn at 8x its size with PIL and downsampled (anti-aliased). Toolbar icons are light
strokes on transparency for the dark theme; the application icon is clusters of coloured points
on a dark rounded square, the map the app is about.

Run: ``python docs/draw_icons.py``
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "explorer" / "resources" / "icons"
INK = (226, 228, 232, 255)
ACCENT = (76, 139, 245, 255)
SCALE = 8
APP_SIZES = (16, 24, 32, 48, 64, 128, 256)
TOOL_SIZE = 24


def canvas(size: int) -> tuple[Image.Image, ImageDraw.ImageDraw, float]:
    big = Image.new("RGBA", (size * SCALE, size * SCALE), (0, 0, 0, 0))
    return big, ImageDraw.Draw(big), size * SCALE / 24.0  # shapes are written on a 24-unit grid


def finish(big: Image.Image, size: int, name: str) -> None:
    big.resize((size, size), Image.Resampling.LANCZOS).save(OUT / name)


def dot(d, u, x, y, r, fill=INK):
    d.ellipse([(x - r) * u, (y - r) * u, (x + r) * u, (y + r) * u], fill=fill)


def line(d, u, points, width=2.0, fill=INK):
    d.line([(x * u, y * u) for x, y in points], fill=fill, width=max(1, int(width * u)), joint="curve")
    for x, y in (points[0], points[-1]):
        dot(d, u, x, y, width / 2, fill)


def arc(d, u, box, start, end, width=2.0, fill=INK):
    d.arc([c * u for c in box], start, end, fill=fill, width=max(1, int(width * u)))


TOOLS = {
    "open": lambda d, u: line(d, u, [(3, 7), (3, 19), (21, 19), (21, 9), (11, 9), (9, 7), (3, 7)]),
    "build": lambda d, u: (
        [dot(d, u, x, y, 1.6) for x, y in ((5, 16), (8, 12), (6, 8), (11, 17))],
        line(d, u, [(13, 7), (20, 12), (13, 17), (13, 7)], fill=ACCENT),
    ),
    "quick-map": lambda d, u: line(d, u, [(14, 3), (7, 13), (12, 13), (10, 21), (17, 10), (12, 10), (14, 3)]),
    "scan": lambda d, u: (arc(d, u, (3, 3, 16, 16), 0, 360), line(d, u, [(14.5, 14.5), (21, 21)], 2.6)),
    "train": lambda d, u: (
        [line(d, u, [(5, a), (12, b)], 1.2) for a in (6, 18) for b in (8, 16)],
        [line(d, u, [(12, a), (19, 12)], 1.2) for a in (8, 16)],
        [dot(d, u, x, y, 2.2) for x, y in ((5, 6), (5, 18), (12, 8), (12, 16))],
        dot(d, u, 19, 12, 2.4, ACCENT),
    ),
    "embed": lambda d, u: (
        line(d, u, [(3, 12), (11, 12)]),
        line(d, u, [(8, 9), (11, 12), (8, 15)]),
        [d.rectangle([(x * u), (y * u), (x + 3) * u, (y + 3) * u], fill=INK) for x in (14, 18) for y in (7, 14)],
    ),
    "map": lambda d, u: [
        dot(d, u, x, y, 1.7, ACCENT if k % 3 == 0 else INK)
        for k, (x, y) in enumerate(((5, 6), (8, 9), (6, 12), (16, 6), (19, 9), (17, 12), (10, 18), (14, 17), (12, 20)))
    ],
    "propagate": lambda d, u: (
        dot(d, u, 6, 12, 2.6, ACCENT),
        arc(d, u, (4, 6, 16, 18), -50, 50, 1.8),
        arc(d, u, (2, 2, 20, 22), -50, 50, 1.8),
    ),
    "label-next": lambda d, u: (
        line(d, u, [(3, 8), (13, 8), (18, 13), (13, 18), (3, 18), (3, 8)]),
        dot(d, u, 7, 13, 1.6, ACCENT),
        line(d, u, [(17, 5), (21, 5)], 1.6),
        line(d, u, [(19.5, 3.5), (21, 5), (19.5, 6.5)], 1.6),
    ),
    "refine": lambda d, u: (
        arc(d, u, (4, 4, 20, 20), 200, 340, 2.0),
        arc(d, u, (4, 4, 20, 20), 20, 160, 2.0, ACCENT),
        line(d, u, [(17, 5), (19.5, 7.5), (20.5, 4)], 1.6),
        line(d, u, [(7, 19), (4.5, 16.5), (3.5, 20)], 1.6, ACCENT),
    ),
    "export": lambda d, u: (
        line(d, u, [(9, 6), (4, 6), (4, 20), (18, 20), (18, 15)]),
        line(d, u, [(10, 14), (20, 4)]),
        line(d, u, [(14, 4), (20, 4), (20, 10)]),
    ),
}


def app_icon(size: int) -> None:
    big, d, u = canvas(size)
    d.rounded_rectangle([0.5 * u, 0.5 * u, 23.5 * u, 23.5 * u], radius=5 * u, fill=(29, 31, 35, 255))
    clusters = (
        ((7.5, 8), (76, 139, 245)),
        ((16.5, 8.5), (229, 83, 75)),
        ((9, 16.5), (80, 200, 120)),
        ((16.5, 16), (240, 180, 60)),
    )
    for (cx, cy), colour in clusters:
        for k in range(7):
            angle = k * 2 * math.pi / 7 + cx
            radius = 0 if k == 0 else 2.6 + (k % 2) * 0.6
            dot(d, u, cx + radius * math.cos(angle), cy + radius * math.sin(angle), 1.05, (*colour, 255))
    finish(big, size, f"explorer-{size}.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in APP_SIZES:
        app_icon(size)
    for name, draw in TOOLS.items():
        for size, suffix in ((TOOL_SIZE, ""), (2 * TOOL_SIZE, "@2x")):
            big, d, u = canvas(size)
            draw(d, u)
            finish(big, size, f"{name}{suffix}.png")
    print(f"wrote {len(APP_SIZES)} application icons and {2 * len(TOOLS)} toolbar icons to {OUT}")


if __name__ == "__main__":
    main()
