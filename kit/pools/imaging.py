"""Deterministic image helpers: resizing, PNG/JPEG writing, fonts, matplotlib figures.

Everything written here is byte-identical on a rebuild with the same libraries: PIL writes no
timestamps into PNG or JPEG files, matplotlib figures are rasterised at a fixed DPI with the
``Software`` metadata removed and then re-encoded by PIL.
"""
from __future__ import annotations

import contextlib
import io
from functools import lru_cache
from pathlib import Path

MAX_SIDE = 256  # longest image side in data_samples/
JPEG_QUALITY = 85


def fit(im, max_side: int = MAX_SIDE):
    """A copy of ``im`` whose longest side is at most ``max_side`` (Lanczos), aspect kept."""
    from PIL import Image

    w, h = im.size
    scale = max_side / max(w, h)
    if scale >= 1:
        return im.copy()
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return im.resize(size, Image.Resampling.LANCZOS)


def save_png(im, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="PNG", optimize=True)


def save_jpeg(im, path: Path, quality: int = JPEG_QUALITY) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="JPEG", quality=quality)


@lru_cache(maxsize=None)
def font_path(bold: bool = False) -> str:
    """DejaVu Sans from matplotlib's own data folder (same file on every machine)."""
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    if not path.is_file():
        raise FileNotFoundError(f"matplotlib font {path} not found")
    return str(path)


@lru_cache(maxsize=None)
def font(size: int, bold: bool = False):
    from PIL import ImageFont

    return ImageFont.truetype(font_path(bold), size)


DPI = 100


@contextlib.contextmanager
def mpl_style():
    """Matplotlib defaults (ignoring any user matplotlibrc) with DejaVu Sans and small fonts.

    Figures are made with :func:`new_figure` (no pyplot), so building a pool never changes the
    caller's pyplot backend or open figures (safe inside notebooks).
    """
    import matplotlib
    import matplotlib.style

    with matplotlib.style.context("default"), matplotlib.rc_context({
        "font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8,
        "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7, "figure.dpi": DPI,
        "savefig.dpi": DPI, "svg.hashsalt": "kit",
    }):
        yield


def new_figure(width_px: int = 256, height_px: int = 192, **subplots):
    """A pyplot-free Agg figure of the given pixel size, with ``fig.subplots(**subplots)`` axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(**subplots)
    return fig, axes


def figure_image(fig):
    """Rasterise a figure to an RGB PIL image (fixed DPI, no metadata, white background)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")
