"""Opening the image files of an untrusted pool: one allow-list of formats, one way to open, one way to decode.

Every image the kit checks or decodes goes through :func:`open_file` and :func:`open_image`:

- **Formats.** Only :data:`ALLOWED_FORMATS` are opened (Pillow is told to try no other plugin). PostScript,
  EPS and PDF files are refused by name whatever their file name says: decoding them would run Ghostscript.
- **The file opened is the file checked.** The loader records each image's real path (every symbolic link
  resolved). :func:`decode_image` with ``pinned=True`` (what :class:`kit.data.Pool` and the scorers use)
  opens that path without following a symbolic link and checks the real path of the opened descriptor: an
  image replaced by a symbolic link, or a folder on its way, after loading is refused (:class:`ImageChanged`).
- **Decompression bombs.** An image with more than ``max_pixels`` pixels is refused from its header
  (:class:`ImageTooLarge`), before its pixels are decoded.
- **Wide pixels.** 16-bit and 32-bit integer and float images are scaled to 8 bits (:func:`to_rgb`), never
  clipped.
"""
from __future__ import annotations

import os
import stat
import warnings
from typing import IO

import numpy as np

# Formats an image of a pool may have (Pillow's format names). MPO is how Pillow names the JPEG files of many
# cameras (a JPEG with extra frames); PPM covers the PBM/PGM/PPM/PNM family.
ALLOWED_FORMATS = ("PNG", "JPEG", "MPO", "GIF", "WEBP", "BMP", "TIFF", "PPM")
# Formats Pillow could read that are refused by name (first bytes -> what the file is): EPS and PostScript run
# Ghostscript when decoded, and PDF is a document.
REFUSED_MAGIC = {b"%!PS": "PostScript/EPS", b"\xc5\xd0\xd3\xc6": "EPS (binary header)", b"%PDF": "PDF"}
# The most pixels an image may have (PIL's own default limit, about 89 megapixels; PIL refuses twice that).
MAX_IMAGE_PIXELS = 89_478_485


class ImageTooLarge(ValueError):
    """An image with more pixels than allowed (raised before its pixels are decoded)."""


class ImageFormatNotAllowed(ValueError):
    """An image file whose format is not in :data:`ALLOWED_FORMATS` (e.g. EPS named ``.png``)."""


class ImageChanged(OSError):
    """The file at a checked image path is no longer the file that was checked (a symbolic link now)."""


class NotAFile(OSError):
    """The path names a folder, a device or a pipe, not an image file."""


def _quiet_bomb_warnings() -> None:
    """PIL warns about images over its pixel limit; the kit turns those into refusals instead."""
    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def _fd_realpath(fd: int, path: str) -> str:
    """The real path of an open descriptor (Linux: what the kernel opened; elsewhere the path's real path)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)


def open_file(path, pinned: bool = False) -> tuple[IO[bytes], str, int]:
    """Open an image file for reading: ``(binary file, real path of what was opened, size in bytes)``.

    The path is opened as written, as the operating system (and any LLaVA loader) would: ``ok.png/`` or
    ``nodir/../ok.png`` fail here. A folder, device or pipe raises :class:`NotAFile` (a pipe never blocks
    the open). ``pinned=True`` is for a real path recorded by the loader: a symbolic link in its place, or a
    real path that differs from ``path``, raises :class:`ImageChanged`.
    """
    path = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if pinned:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if pinned and os.path.islink(path):
            raise ImageChanged(f"{path} is a symbolic link now; it was a file when the pool was loaded") from None
        raise exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotAFile(f"{path} is not a file")
        real = _fd_realpath(fd, path)
        if pinned and real != os.path.abspath(path):
            raise ImageChanged(f"{path} now opens {real}: a folder on its way was replaced since the pool was "
                               "loaded")
        return os.fdopen(fd, "rb"), real, st.st_size
    except BaseException:
        os.close(fd)
        raise


def open_image(f: IO[bytes], name, max_pixels: int | None = MAX_IMAGE_PIXELS):
    """Identify an open image file among :data:`ALLOWED_FORMATS` and check its size; its pixels are not read yet.

    Raises :class:`ImageFormatNotAllowed` (EPS, PostScript, PDF), :class:`ImageTooLarge`, or Pillow's error
    for a file that is no image of an allowed format.
    """
    from PIL import Image

    head = f.read(8)
    f.seek(0)
    for magic, what in REFUSED_MAGIC.items():
        if head.startswith(magic):
            raise ImageFormatNotAllowed(f"{name} is a {what} file, not an image of an allowed format "
                                        f"({', '.join(ALLOWED_FORMATS)})")
    _quiet_bomb_warnings()
    Image.init()  # registers every plugin, so that each allowed one is known by name (only those are tried)
    try:
        im = Image.open(f, formats=[fmt for fmt in ALLOWED_FORMATS if fmt in Image.OPEN])
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(str(exc)) from None
    except Image.UnidentifiedImageError:
        raise Image.UnidentifiedImageError(f"cannot identify {name} as an image of an allowed format "
                                           f"({', '.join(ALLOWED_FORMATS)})") from None
    w, h = im.size
    if max_pixels is not None and w * h > max_pixels:
        im.close()
        raise ImageTooLarge(f"{w}x{h} = {w * h} pixels, more than {max_pixels}")
    return im


def inspect_image(path, max_pixels: int | None = MAX_IMAGE_PIXELS, decode: bool = True) -> tuple[str, str]:
    """Check one image file as the loader does: ``(mode, real path of the file opened)``.

    ``decode=True`` decodes every pixel (a truncated JPEG, a PNG whose image data is broken, a short PPM all
    fail); ``decode=False`` reads the header only and runs Pillow's ``verify()`` (faster; it does not decode,
    so such files pass). An empty file raises ``ValueError``; the other errors are those of
    :func:`open_file` and :func:`open_image`.
    """
    f, real, size = open_file(path)
    with f:
        if size == 0:
            raise ValueError("the file is empty (0 bytes)")
        with open_image(f, path, max_pixels) as im:
            mode = im.mode
            if decode:
                im.load()
            else:
                im.verify()
    return mode, real


def _wide_to_l(im):
    """A 16-bit, 32-bit integer or float single-band image as 8-bit grey (``L``), by the rule of :func:`to_rgb`."""
    from PIL import Image

    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        info = np.iinfo(a.dtype)
        lo, hi = float(info.min), float(info.max)
    elif im.mode == "I" and im.format == "PNG":  # a 16-bit grey PNG, as older Pillow reads it
        lo, hi = 0.0, 65535.0
    else:
        finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    x = np.nan_to_num(a.astype(np.float64), nan=lo, posinf=hi, neginf=lo)
    if hi > lo:
        x = (x - lo) * (255.0 / (hi - lo))
    return Image.fromarray(np.clip(np.rint(x), 0, 255).astype(np.uint8), mode="L")


def to_rgb(im):
    """An image as 8-bit RGB, scaling wide pixels instead of clipping them (a gradient stays a gradient).

    The rule: 16-bit integer images (modes ``I;16*``, and ``I`` read from a 16-bit PNG) map their type's
    nominal range to 0..255 (``v * 255 / 65535`` for unsigned 16 bits), so a 16-bit image looks as a viewer
    shows it. 32-bit integer (``I``) and float (``F``) images map their own range of finite values, min..max,
    linearly to 0..255 (NaN counts as the minimum, +inf as the maximum); an image of one value keeps that
    value, clipped to 0..255. Values are rounded to the nearest level. Every other mode is converted by Pillow
    (palette, grey, CMYK, alpha dropped).
    """
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        im = _wide_to_l(im)
    return im.convert("RGB") if im.mode != "RGB" else im.copy()


def decode_image(path, max_pixels: int | None = MAX_IMAGE_PIXELS, *, pinned: bool = False):
    """Open an image file fully and return it as RGB (:func:`to_rgb`); refuses more than ``max_pixels`` pixels.

    Only :data:`ALLOWED_FORMATS` are decoded. ``pinned=True`` is for a path the loader recorded
    (``pool.table["image_path"]``, the real path of the file it checked): the file must still be that file
    (see :func:`open_file`).
    """
    if path is None:
        raise ValueError("the sample has no single image path")
    f, _, _ = open_file(path, pinned=pinned)
    with f, open_image(f, path, max_pixels) as im:
        im.load()
        return to_rgb(im)


__all__ = ["ALLOWED_FORMATS", "MAX_IMAGE_PIXELS", "ImageTooLarge", "ImageFormatNotAllowed", "ImageChanged",
           "NotAFile", "open_file", "open_image", "inspect_image", "decode_image", "to_rgb"]
