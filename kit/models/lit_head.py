"""A LiT-style head over the locked offline encoders (the model; its training is
:mod:`kit.quality.image_text.lit_training`).

Locked-image tuning (LiT) with both towers locked: EfficientNet-Lite0 pooled features (1280) and
MiniLM sentence embeddings (384) each go through one linear projection to a shared 128-d space. The
shipped head ``kit/weights/lit_head_easyvqa.pt`` is the image-text stand-in's ``head`` part.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from kit.package import shipped_path

HEAD_PATH = shipped_path("weights", "lit_head_easyvqa.pt")   # the shipped head (package data); read only
TRAIN_COMMAND = "kit lit-head train --out HEAD.pt"


def _torch_module():
    import torch

    class LitHead(torch.nn.Module):
        """Two linear projections (image 1280 -> d, text 384 -> d) on standardised locked features."""

        def __init__(self, image_dim: int = 1280, text_dim: int = 384, dim: int = 128):
            super().__init__()
            self.register_buffer("image_mean", torch.zeros(image_dim))
            self.register_buffer("image_std", torch.ones(image_dim))
            self.image_proj = torch.nn.Linear(image_dim, dim)
            self.text_proj = torch.nn.Linear(text_dim, dim)
            self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
            self.dim = dim

        def embed_images(self, pooled):
            x = (pooled - self.image_mean) / self.image_std
            return torch.nn.functional.normalize(self.image_proj(x), dim=-1)

        def embed_texts(self, text_emb):
            return torch.nn.functional.normalize(self.text_proj(text_emb), dim=-1)

    return LitHead


def new_head(image_dim: int = 1280, text_dim: int = 384, dim: int = 128):
    """A fresh, untrained :class:`LitHead`."""
    return _torch_module()(image_dim, text_dim, dim)


def save_head(head, path, meta: dict) -> Path:
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    cfg = {"image_dim": int(head.image_proj.in_features), "text_dim": int(head.text_proj.in_features),
           "dim": int(head.dim)}
    torch.save({"state_dict": state, "config": cfg, "meta": meta}, path)
    return path


@lru_cache(maxsize=4)
def _load_head(path: str, device: str):
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    head = new_head(**ckpt["config"])
    head.load_state_dict(ckpt["state_dict"])
    head.eval().requires_grad_(False).to(device)
    head.meta = ckpt.get("meta", {})
    return head


def load_head(path=None, device="cpu"):
    """Load a trained head (the shipped one by default), cached per (path, device)."""
    import torch

    path = Path(path) if path is not None else HEAD_PATH
    if not path.is_file():
        raise FileNotFoundError(f"no LiT head at {path}; build it with `{TRAIN_COMMAND}`")
    return _load_head(str(path.resolve()), str(torch.device(device)))
