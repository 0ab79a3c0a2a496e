"""What the installed kit is: its distribution name and the files it ships inside the package.

The kit installs as the distribution ``mmselect-kit`` (``pip install .`` from a checkout) and imports as ``kit``
(``kit`` on the package index is an unrelated project). Files the kit loads at run time (the shipped heads under
``kit/weights/``, the sample pool's footprint,
``kit/pools/sample_pool_footprint.json``) are package data, read through :mod:`importlib.resources`, so
they are found the same way from a checkout, an editable install or a wheel; nothing is located through the
repository's layout.
"""
from __future__ import annotations

import atexit
from contextlib import ExitStack
from functools import lru_cache
from importlib import resources
from pathlib import Path

DISTRIBUTION = "mmselect-kit"

_extracted = ExitStack()   # files as_file had to copy out of an archive live until the interpreter exits
atexit.register(_extracted.close)


def shipped(*parts: str):
    """A file shipped inside the package (a :class:`importlib.resources.abc.Traversable`), e.g.
    ``shipped("weights", "rich_distilled.pt")``."""
    return resources.files("kit").joinpath(*parts)


@lru_cache(maxsize=None)
def shipped_path(*parts: str) -> Path:
    """A real file-system path of a shipped file (the file itself when the package is a folder, as installed
    wheels and checkouts are; a temporary copy kept for the interpreter's life when it is in an archive)."""
    return _extracted.enter_context(resources.as_file(shipped(*parts)))

