"""Loading Hugging Face models by name or folder, the same way for every scorer (and the fine-tuning code).

- :func:`resolve_dtype`: ``None`` / ``"auto"`` -> float32 on the CPU, bfloat16 on a CUDA device that
  supports it (float32 otherwise); a string such as ``"float16"`` -> that torch dtype.
- :func:`is_vision_model_name`: whether a hub name or folder holds an image-text-to-text model (its config
  has a ``vision_config``).
- :func:`load_pretrained`: ``(model, processor)`` for an image-text-to-text model (``AutoProcessor``) or
  ``(model, tokenizer)`` for a causal LM, in eval mode on ``device``.
"""
from __future__ import annotations

from pathlib import Path


def resolve_dtype(dtype, device="cpu"):
    """The torch dtype to load or run a model in (see the module docstring)."""
    import torch

    if dtype is None or dtype == "auto":
        if str(device).startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, str):
        value = getattr(torch, dtype, None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}")
        return value
    return dtype


def is_vision_model_name(name, trust_remote_code: bool = False) -> bool:
    """True when the config of ``name`` (hub name or folder) describes a vision-language model."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(name), trust_remote_code=trust_remote_code)
    return getattr(config, "vision_config", None) is not None


def load_pretrained(name, dtype=None, device="cpu", vision: bool | None = None, processor=None,
                    trust_remote_code: bool = False):
    """``(model, processor or tokenizer)`` from a hub name or local folder, in eval mode on ``device``.

    ``vision=None`` decides from the config; ``True`` loads ``AutoModelForImageTextToText`` +
    ``AutoProcessor``, ``False`` ``AutoModelForCausalLM`` + ``AutoTokenizer``. A given ``processor`` is
    used instead of the one saved with the model.
    """
    name = str(name) if isinstance(name, Path) else name
    dtype = resolve_dtype(dtype, device)
    if vision is None:
        vision = is_vision_model_name(name, trust_remote_code)
    if vision:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = AutoModelForImageTextToText.from_pretrained(name, dtype=dtype, trust_remote_code=trust_remote_code)
        processor = processor or AutoProcessor.from_pretrained(name, trust_remote_code=trust_remote_code)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, trust_remote_code=trust_remote_code)
        processor = processor or AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    return model.to(device).eval(), processor
