"""The distilled head as a torch module, and its training loop.

Standardised features -> (optional hidden layer) -> capability outputs (ordinal cumulative logits
P(y > k), or a regression onto 0-5) and style logits (multi-label). :func:`fit_head` trains one on
a feature matrix, :func:`predict_head` gives expected capability scores and style probabilities.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from kit.models.threads import one_torch_thread

TARGETS = ("regression", "ordinal")
N_LEVELS = 6  # scores 0..5


def build_head(d_in: int, n_caps: int, n_styles: int, hidden: int, target: str, dropout: float):
    import torch.nn as nn

    class RichHead(nn.Module):
        """Standardised features -> (optional hidden layer) -> capability outputs and style logits."""

        def __init__(self):
            super().__init__()
            self.register_buffer("mean", __import__("torch").zeros(d_in))
            self.register_buffer("scale", __import__("torch").ones(d_in))
            self.body = (nn.Sequential(nn.Dropout(dropout), nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout))
                         if hidden else nn.Dropout(dropout))
            width = hidden or d_in
            self.caps = nn.Linear(width, n_caps * (N_LEVELS - 1 if target == "ordinal" else 1))
            self.styles = nn.Linear(width, n_styles)

        def forward(self, x):
            h = self.body((x - self.mean) / self.scale)
            return self.caps(h), self.styles(h)

    return RichHead()


@dataclass
class HeadConfig:
    """Training settings of the head (all stored in a saved file)."""

    target: str = "ordinal"       # "regression" (MSE on 0-5) or "ordinal" (cumulative logits P(y > k))
    hidden: int = 0               # 0 = linear heads; > 0 = one hidden layer of that width
    steps: int = 1000             # optimiser steps (mini-batches), whatever the data size
    lr: float = 3e-2
    weight_decay: float = 1e-2    # decoupled (AdamW), on the weights only
    l2: float = 3e-3              # explicit L2 penalty on the output weights (strong: data sets are small)
    dropout: float = 0.1
    style_threshold: float = 0.5
    at_least_one_style: bool = True
    style_pos_weight: bool = False  # weight positives by (neg / pos) per style
    # {feature block: gain} on the standardised features; "auto" = the extractor's ``default_gains``
    block_gains: dict | str | None = "auto"
    batch_size: int = 128
    seed: int = 0

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, not {self.target!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be at least 1")


def _init_biases(head, Y, mask, S, levels, target: str) -> None:
    """Start every output at the training marginal (smoothed), so the weights only learn deviations.

    Without this a capability the ratings always put at 0 would need many steps just to move its
    bias there, and under strong regularisation it never would.
    """
    import torch

    with torch.no_grad():
        count = mask.sum(0).float()
        if target == "ordinal":
            above = ((Y.unsqueeze(-1) > levels) & mask.unsqueeze(-1)).sum(0).float()  # (c, 5)
            p = (above + 0.5) / (count.unsqueeze(-1) + 1.0)
            head.caps.bias.copy_(torch.logit(p).reshape(-1))
        else:
            head.caps.bias.copy_((Y * mask).sum(0) / count.clamp_min(1))
        p = (S.sum(0) + 0.5) / (len(S) + 1.0)
        head.styles.bias.copy_(torch.logit(p))


def fit_head(X: np.ndarray, Y: np.ndarray, S: np.ndarray, cfg: HeadConfig, gain: np.ndarray | None = None,
              progress: bool = False):
    """Train a head on features X (n, d), capability targets Y (n, c; NaN = missing), styles S (n, s).

    ``gain`` (d,) multiplies the standardised features (a block with gain < 1 is regularised harder).
    """
    with one_torch_thread():
        return _fit_head_inner(X, Y, S, cfg, gain, progress)


def _fit_head_inner(X, Y, S, cfg: HeadConfig, gain, progress: bool):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    n, d = X.shape
    c, s = Y.shape[1], S.shape[1]
    head = build_head(d, c, s, cfg.hidden, cfg.target, cfg.dropout)
    Xt = torch.tensor(np.asarray(X, dtype=np.float32))
    mean = Xt.mean(0)
    scale = Xt.std(0, unbiased=False).clamp_min(1e-4)
    if gain is not None:
        scale = scale / torch.tensor(np.asarray(gain, dtype=np.float32)).clamp_min(1e-6)
    head.mean.copy_(mean)
    head.scale.copy_(scale)
    Yt = torch.tensor(np.asarray(Y, dtype=np.float32))
    mask = ~torch.isnan(Yt)
    Yt = torch.nan_to_num(Yt, nan=0.0)
    St = torch.tensor(np.asarray(S, dtype=np.float32))
    pos = St.sum(0)
    pos_weight = ((n - pos) / pos.clamp_min(1)).clamp(1, 20) if cfg.style_pos_weight else None
    levels = torch.arange(N_LEVELS - 1, dtype=torch.float32)  # thresholds k = 0..4: target [y > k]
    _init_biases(head, Yt, mask, St, levels, cfg.target)
    out_weights = [head.caps.weight, head.styles.weight]
    params = list(head.parameters())
    # decoupled weight decay on the matrices only, not on biases
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim > 1], "weight_decay": cfg.weight_decay},
                             {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}], lr=cfg.lr)
    bs = min(cfg.batch_size, n)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, desc="train head", unit="step")
    head.train()
    step = 0
    while step < cfg.steps:
        perm = torch.randperm(n, generator=gen)  # one pass over the data in a fresh order
        for start in range(0, n - bs + 1, bs):   # equal batches; the tail is covered by later passes
            idx = perm[start:start + bs]
            cap_out, sty_out = head(Xt[idx])
            m = mask[idx]
            y = Yt[idx]
            if cfg.target == "ordinal":
                logits = cap_out.view(len(idx), c, N_LEVELS - 1)
                tgt = (y.unsqueeze(-1) > levels).float()
                per = F.binary_cross_entropy_with_logits(logits, tgt, reduction="none").sum(-1)
            else:
                per = (cap_out - y) ** 2
            cap_loss = (per * m).sum() / m.sum().clamp_min(1)
            sty_loss = F.binary_cross_entropy_with_logits(sty_out, St[idx], pos_weight=pos_weight)
            reg = sum((w ** 2).sum() for w in out_weights) * cfg.l2 / 2
            loss = cap_loss + sty_loss + reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # cosine decay, written out: transformers' get_cosine_schedule_with_warmup computes pi*(step/steps)
            # where this computes pi*step/steps, which differs in the last bit on about 23% of steps, and the
            # shipped head (kit/weights/rich_distilled.pt) was trained with this one
            for group in opt.param_groups:
                group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
            opt.step()
            step += 1
            if bar is not None:
                bar.update(1)
            if step >= cfg.steps:
                break
    if bar is not None:
        bar.close()
    head.eval()
    return head


def predict_head(head, X: np.ndarray, target: str, n_caps: int, ratings: bool = False):
    """Expected capability scores (n, c) in [0, 5] and style probabilities (n, s).

    With ``ratings=True`` also the most probable integer rating (n, c): for the ordinal head the level j
    with the largest P(y = j) = P(y > j - 1) - P(y > j) (ties to the lower level), for the regression
    head the prediction rounded to the nearest of 0-5.
    """
    import torch

    with torch.inference_mode(), one_torch_thread():
        cap_out, sty_out = head(torch.tensor(np.nan_to_num(np.asarray(X, dtype=np.float32))))
        if target == "ordinal":
            above = torch.sigmoid(cap_out.view(len(X), n_caps, N_LEVELS - 1))       # P(y > k), k = 0..4
            scores = above.sum(-1)
            ones = torch.ones_like(above[..., :1])
            cum = torch.cat([ones, above, torch.zeros_like(ones)], dim=-1)        # P(y > k), k = -1..5
            level = (cum[..., :-1] - cum[..., 1:]).argmax(-1).to(scores.dtype)    # P(y = j), j = 0..5
        else:
            scores = cap_out.clamp(0, N_LEVELS - 1)
            level = torch.round(scores)
        out = (scores.numpy().astype(np.float64), torch.sigmoid(sty_out).numpy().astype(np.float64))
        return out + (level.numpy().astype(np.float64),) if ratings else out


def styles_from_probs(probs: np.ndarray, names: Sequence[str], threshold: float, at_least_one: bool) -> list[list[str]]:
    hits = probs >= threshold
    if at_least_one and len(probs):
        none = ~hits.any(1)
        hits[none, probs[none].argmax(1)] = True
    return [[names[j] for j in np.flatnonzero(row)] for row in hits]
