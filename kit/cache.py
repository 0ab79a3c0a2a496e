"""Where the kit keeps derived files (de-quantised weights, tokenizers, features): ``$KIT_CACHE``."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The kit's cache root: ``$KIT_CACHE`` if set, else ``~/.cache/kit``."""
    env = os.environ.get("KIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kit"
