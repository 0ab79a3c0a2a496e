"""Pool neighbours: an image embedding in text space read from the image's nearest neighbours.

For each sample ``i`` the ``k`` most similar *other* images of the pool (cosine of centred image
features) are found, and the image is embedded as the normalised mean of those neighbours' text
embeddings. Its cosine with the sample's own text is high when the text resembles what similar
images are paired with across the pool, and low when the text belongs to another kind of image.
It is a leave-one-out, non-parametric image -> text map fitted on the pool's own pairs (no labels
of any kind are used, and a sample's own text never enters its own image embedding).

Large pools search a seeded random reference subset (``max_reference`` samples) block by block.
"""
from __future__ import annotations

import numpy as np


def normalise_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def centred(x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Rows minus the mean of ``rows`` (all rows by default), L2-normalised."""
    mean = x[rows].mean(0) if rows is not None else x.mean(0)
    return normalise_rows(x - mean).astype(np.float32)


def neighbour_text_embeddings(image_feats: np.ndarray, text_emb: np.ndarray, ok: np.ndarray | None = None,
                              k: int = 10, max_reference: int = 20000, block: int = 2048, seed: int = 0,
                              device="cpu", skip_identical: bool = False) -> np.ndarray | None:
    """(N, d_text) normalised mean text embedding of each image's ``k`` nearest other images.

    ``ok`` marks the images that decoded (others get NaN rows and are never neighbours). With
    ``skip_identical``, images whose features equal the sample's (cosine above 1 - 1e-5: the same
    image file used by two samples) are never its neighbours either. Returns ``None`` when fewer than
    two usable images exist.
    """
    import torch

    n = len(image_feats)
    ok = np.ones(n, dtype=bool) if ok is None else np.asarray(ok, dtype=bool)
    rows = np.flatnonzero(ok)
    if len(rows) < 2 or k < 1:
        return None
    feats = centred(image_feats, rows)
    rng = np.random.default_rng(seed)
    ref = rows if len(rows) <= max_reference else np.sort(rng.choice(rows, size=max_reference, replace=False))
    k_eff = int(min(k, len(ref) - 1))
    pos_in_ref = np.full(n, -1, dtype=np.int64)
    pos_in_ref[ref] = np.arange(len(ref))
    dev = torch.device(device)
    ref_x = torch.as_tensor(feats[ref], device=dev)
    ref_t = torch.as_tensor(text_emb[ref], dtype=torch.float32, device=dev)
    out = np.full((n, text_emb.shape[1]), np.nan, dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(rows), block):
            idx = rows[start:start + block]
            sims = torch.as_tensor(feats[idx], device=dev) @ ref_x.T
            self_pos = torch.as_tensor(pos_in_ref[idx], device=dev)
            has_self = self_pos >= 0
            sims[has_self.nonzero().squeeze(1), self_pos[has_self]] = -float("inf")  # leave one out
            if skip_identical:
                sims[sims > 1 - 1e-5] = -float("inf")
            nb = sims.topk(k_eff, dim=1).indices
            mean = ref_t[nb].mean(1)
            out[idx] = torch.nn.functional.normalize(mean, dim=-1).cpu().numpy()
    return out
