"""Drawing helpers of the testbed families: a canvas, flat shapes, text (no anti-aliasing, exact colours)."""
from __future__ import annotations

import numpy as np

from kit.pools.testbed.base import IMAGE_SIZE

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 70, 220), "yellow": (235, 200, 20),
    "purple": (140, 50, 170), "orange": (245, 130, 20), "black": (20, 20, 20), "gray": (128, 128, 128),
}
COLOR_NAMES = tuple(COLORS)
BACKGROUNDS = ((255, 255, 255), (244, 244, 238), (236, 240, 246))
SHAPES = ("circle", "square", "triangle")


def canvas(background: int = 0, size: int = IMAGE_SIZE):
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), BACKGROUNDS[background % len(BACKGROUNDS)])
    return im, ImageDraw.Draw(im)


def shape(draw, kind: str, cx: float, cy: float, r: float, color) -> None:
    """A flat ``kind`` (circle, square, triangle) of half-size ``r`` centred at ``(cx, cy)``."""
    fill = COLORS[color] if isinstance(color, str) else color
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=fill)
    else:
        raise ValueError(f"unknown shape {kind!r}")


def text(draw, s: str, x: float, y: float, size: int, color=(20, 20, 20), bold: bool = True) -> None:
    from kit.pools.imaging import font

    draw.text((x, y), s, fill=color, font=font(size, bold=bold), anchor="mm")


def color_mask(image, color: str, tol: int = 40) -> np.ndarray:
    """Pixels within ``tol`` (per channel) of a palette colour."""
    a = np.asarray(image.convert("RGB"), dtype=np.int32)
    return (np.abs(a - np.array(COLORS[color])).max(-1) <= tol)


def components(mask: np.ndarray) -> int:
    """Number of 4-connected components of a boolean mask."""
    from scipy import ndimage

    return int(ndimage.label(mask)[1])
