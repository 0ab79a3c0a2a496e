"""Distilled rich scorer and styler: small heads on frozen embeddings, trained on teacher ratings.

The mmSSR recipe (method A of ``shared/papers.md``) rates a small random subset with a teacher and
fine-tunes a 7B scorer on those ratings. This module is the cheap version of the second step: frozen
offline encoders turn each sample into a feature vector (image: EfficientNet-Lite0 pooled features;
text: all-MiniLM-L6-v2 embeddings of the questions and of the answers; a few text statistics), and a
small head maps it to the 14 capability scores (0-5) and the 9 interaction styles (multi-label)::

    ratings = load_teacher_ratings("data_samples/labels.csv")   # or a teacher JSONL
    scorer = DistilledRichScorer(seed=0).fit(pool, ratings)
    table = scorer.score(pool)          # 14 capability columns, styles, source, status
    scorer.save("head.pt"); scorer = DistilledRichScorer.load("head.pt")
    report = cross_validate(pool, ratings, folds=5, seed=0)     # Spearman per capability, style F1

It is the offline default of ``kit.score(pool, "rich")``: a head trained on ``data_samples`` ships in
``kit/weights/rich_distilled.pt`` (rebuild it with
``python -m kit.scorers.rich_distilled train data_samples/ kit/weights/rich_distilled.pt``). That head
has seen the very samples it is shown on in the demo, so its in-sample agreement there is optimistic;
the cross-validated numbers stored in its metadata are the honest ones.

Feature extractors are pluggable (:func:`register_feature_extractor`): an extractor has a ``name``,
an ``options`` dict, a ``fingerprint`` and ``transform(pool, ids) -> (features, errors)``. Features
are cached per sample (keyed by the extractor fingerprint, the id, the image file and the
conversation), in memory and optionally in ``cache_dir``, so a pool is encoded once for fitting,
cross-validation and scoring.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from kit.teacher import load_teacher_ratings
from kit.evaluation import multilabel_agreement
from kit.models.threads import one_torch_thread

FORMAT = "kit.rich_distilled/1"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "rich_distilled.pt"
TARGETS = ("regression", "ordinal")
N_LEVELS = 6  # scores 0..5

__all__ = ["DistilledRichScorer", "DistilledStyler", "cross_validate", "CVReport", "load_teacher_ratings",
           "OfflineFeatures", "register_feature_extractor", "get_feature_extractor", "train_default",
           "DEFAULT_WEIGHTS"]


# =========================================================================== feature extractors

_EXTRACTORS: dict[str, Callable[..., Any]] = {}


def register_feature_extractor(name: str, factory: Callable[..., Any] | None = None, overwrite: bool = False):
    """Register ``factory(**options) -> extractor`` under ``name`` (usable as a decorator).

    The extractor needs ``name``, ``options`` (JSON-able, stored in saved heads so ``load`` can
    rebuild it), ``fingerprint`` (a string that changes whenever its features would) and
    ``transform(pool, ids) -> (float32 array (n, d), list of error strings or None)``.
    """

    def add(f):
        if name in _EXTRACTORS and not overwrite:
            raise ValueError(f"feature extractor {name!r} is already registered")
        _EXTRACTORS[name] = f
        return f

    return add if factory is None else add(factory)


def get_feature_extractor(name_or_extractor="offline", **options):
    """An extractor instance from a registered name (with options), or the object itself."""
    if not isinstance(name_or_extractor, str):
        return name_or_extractor
    if name_or_extractor not in _EXTRACTORS:
        raise KeyError(f"unknown feature extractor {name_or_extractor!r}; registered: {', '.join(_EXTRACTORS)}")
    return _EXTRACTORS[name_or_extractor](**options)


_CHOICE_RE = re.compile(r"(^|\n|\s)(\(?[A-H][\.\)]|\([a-h]\))\s+\S", re.M)
_COORD_RE = re.compile(r"\[\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*\]")
_YESNO_RE = re.compile(r"^\W*(yes|no)\b", re.I)
_LETTER_RE = re.compile(r"^\W*\(?[A-H]\)?\W*$")
_STEP_RE = re.compile(r"\b(step|first(ly)?|then|therefore|thus|because|so the answer|hence)\b", re.I)
_COMPARE_RE = re.compile(r"\b(compar\w*|differen\w*|both|similar\w*|versus|vs\.?|more than|less than)\b", re.I)
_FORMAT_RE = re.compile(r"(single word|short phrase|option'?s letter|one word|answer with|in \d+ words|"
                        r"briefly|in detail|describe)", re.I)
_DIGIT_RE = re.compile(r"\d")

STAT_NAMES = ("log_turns", "log_q_chars", "log_a_chars", "log_mean_a_words", "short_answer_frac",
              "yesno_answer_frac", "letter_answer_frac", "choices_in_question", "coordinates",
              "digit_frac", "reasoning_words", "compare_words", "format_instruction", "hint_prefix",
              "multiline_answer_frac", "long_answer_frac")


def text_stats(conversations) -> np.ndarray:
    """Cheap, transparent statistics of one conversation (see ``STAT_NAMES``)."""
    from kit.conversation import answers, questions

    qs, ans = questions(conversations), answers(conversations)
    qtext, atext = "\n".join(qs), "\n".join(ans)
    words = [len(a.split()) for a in ans] or [0]
    n_a = max(len(ans), 1)
    return np.array([
        math.log1p(len(conversations)),
        math.log1p(len(qtext)),
        math.log1p(len(atext)),
        math.log1p(float(np.mean(words))),
        sum(w <= 3 for w in words) / n_a,
        sum(bool(_YESNO_RE.match(a)) and len(a.split()) <= 3 for a in ans) / n_a,
        sum(bool(_LETTER_RE.match(a)) for a in ans) / n_a,
        float(len(_CHOICE_RE.findall(qtext)) >= 2),
        float(bool(_COORD_RE.search(qtext) or _COORD_RE.search(atext))),
        len(_DIGIT_RE.findall(atext)) / max(len(atext), 1),
        math.log1p(len(_STEP_RE.findall(atext))),
        float(bool(_COMPARE_RE.search(qtext))),
        float(bool(_FORMAT_RE.search(qtext))),
        float(any(q.startswith("Hint:") for q in qs)),
        sum("\n" in a for a in ans) / n_a,
        sum(w >= 50 for w in words) / n_a,
    ], dtype=np.float32)


class OfflineFeatures:
    """Frozen offline encoders -> one feature vector per sample.

    Blocks (in this order, each optional): ``image`` EfficientNet-Lite0 pooled features (1280),
    ``questions`` and ``answers`` all-MiniLM-L6-v2 embeddings of the joined questions / answers (384
    each; text past the encoder's 256 tokens is cut), ``stats`` 16 text statistics. A sample whose
    image cannot be decoded gets an error (its image block is NaN).
    """

    name = "offline"
    BLOCK_DIMS = {"image": 1280, "questions": 384, "answers": 384, "stats": len(STAT_NAMES)}
    # Gains on the standardised blocks chosen by 5-fold CV on data_samples (see the module doc): the
    # 1280 image dimensions are damped (they outnumber the rest and mostly carry noise for these
    # ratings), the 16 text statistics amplified.
    default_gains = {"image": 0.5, "stats": 3.0}

    def __init__(self, blocks: Sequence[str] = ("image", "questions", "answers", "stats"), device: str = "cpu",
                 batch_size: int = 32, progress: bool = True):
        bad = [b for b in blocks if b not in self.BLOCK_DIMS]
        if bad or not blocks:
            raise ValueError(f"blocks must be a non-empty subset of {list(self.BLOCK_DIMS)}, got {list(blocks)}")
        self.blocks = tuple(b for b in self.BLOCK_DIMS if b in blocks)
        self.device, self.batch_size, self.progress = device, batch_size, progress

    @property
    def options(self) -> dict:
        return {"blocks": list(self.blocks)}

    @property
    def dim(self) -> int:
        return sum(self.BLOCK_DIMS[b] for b in self.blocks)

    @property
    def fingerprint(self) -> str:
        return f"offline:efficientnet-lite0+all-MiniLM-L6-v2:{','.join(self.blocks)}:v1"

    def block_slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for b in self.blocks:
            out[b] = slice(start, start + self.BLOCK_DIMS[b])
            start += self.BLOCK_DIMS[b]
        return out

    def transform(self, pool, ids: Sequence[str]) -> tuple[np.ndarray, list[str | None]]:
        from kit.conversation import answers, questions
        from kit.models import offline_encoders as oe

        ids = list(ids)
        convs = pool.table.loc[ids, "conversations"].tolist()
        parts, errors = [], [None] * len(ids)
        if "image" in self.blocks:
            enc = oe.load_image_encoder(self.device)
            feats = np.full((len(ids), oe.IMAGE_FEATURE_DIM), np.nan, dtype=np.float32)
            batch_idx, batch_img = [], []

            def flush():
                if batch_img:
                    feats[batch_idx] = oe.encode_images(enc, batch_img, batch_size=self.batch_size)
                    batch_idx.clear(), batch_img.clear()

            images = pool.iter_images(ids)
            if self.progress:
                from tqdm.auto import tqdm

                images = tqdm(images, total=len(ids), desc="image features", unit="img")
            for k, (sid, img, err) in enumerate(images):
                if img is None:
                    errors[k] = f"image_error: {err}"
                    continue
                batch_idx.append(k), batch_img.append(img)
                if len(batch_img) >= self.batch_size:
                    flush()
            flush()
            parts.append(feats)
        if "questions" in self.blocks or "answers" in self.blocks:
            tenc = oe.load_text_encoder(self.device)
            for block, fn in (("questions", questions), ("answers", answers)):
                if block in self.blocks:
                    texts = ["\n".join(fn(c)) for c in convs]
                    emb, _ = oe.encode_texts(tenc, texts, batch_size=self.batch_size, progress=self.progress)
                    parts.append(emb.astype(np.float32))
        if "stats" in self.blocks:
            parts.append(np.stack([text_stats(c) for c in convs]) if convs
                         else np.zeros((0, len(STAT_NAMES)), np.float32))
        return np.concatenate(parts, axis=1).astype(np.float32), errors


register_feature_extractor("offline", OfflineFeatures)


# =========================================================================== feature cache

_MEMORY: "OrderedDict[tuple[str, str], tuple[np.ndarray, str | None]]" = OrderedDict()
MEMORY_ROWS = int(os.environ.get("KIT_FEATURE_CACHE_ROWS", "50000"))


def _sample_keys(pool, ids: Sequence[str]) -> list[str]:
    """A content key per sample: id, image file (path, size, mtime) and conversation text."""
    table = pool.table.loc[list(ids)]
    keys = []
    for sid, path, conv in zip(table.index, table["image_path"], table["conversations"]):
        try:
            st = os.stat(path)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        raw = json.dumps([str(sid), str(path), stamp, conv], ensure_ascii=False, sort_keys=True)
        keys.append(hashlib.sha1(raw.encode("utf-8")).hexdigest())
    return keys


def clear_feature_cache() -> None:
    """Forget the in-memory feature cache."""
    _MEMORY.clear()


def compute_features(extractor, pool, ids: Sequence[str] | None = None, cache_dir=None,
                     memory: bool = True) -> tuple[np.ndarray, list[str | None]]:
    """Features of ``ids`` (default: the whole pool), computing only the samples not cached yet.

    The in-memory cache keeps the last ``KIT_FEATURE_CACHE_ROWS`` (50,000) rows; ``cache_dir`` adds a
    file ``{cache_dir}/features-{hash of the fingerprint}.npz`` that later processes reuse.
    """
    ids = list(pool.table.index if ids is None else ids)
    fp = extractor.fingerprint
    keys = _sample_keys(pool, ids)
    disk: dict[str, tuple[np.ndarray, str | None]] = {}
    disk_path = None
    if cache_dir is not None:
        disk_path = Path(cache_dir) / f"features-{hashlib.sha1(fp.encode()).hexdigest()[:16]}.npz"
        if disk_path.is_file():
            with np.load(disk_path, allow_pickle=False) as z:
                for k, row, err in zip(z["keys"], z["features"], z["errors"]):
                    disk[str(k)] = (row, str(err) or None)
    rows: list[np.ndarray | None] = [None] * len(ids)
    errors: list[str | None] = [None] * len(ids)
    todo = []
    for i, key in enumerate(keys):
        hit = _MEMORY.get((fp, key)) if memory else None
        if hit is None:
            hit = disk.get(key)
        if hit is None:
            todo.append(i)
        else:
            rows[i], errors[i] = hit
    if todo:
        feats, errs = extractor.transform(pool, [ids[i] for i in todo])
        if len(feats) != len(todo):
            raise RuntimeError(f"feature extractor {extractor.name!r} returned {len(feats)} rows for {len(todo)} ids")
        for j, i in enumerate(todo):
            rows[i], errors[i] = np.asarray(feats[j], dtype=np.float32), errs[j]
            disk[keys[i]] = (rows[i], errs[j])
        if disk_path is not None:
            disk_path.parent.mkdir(parents=True, exist_ok=True)
            dk = list(disk)
            tmp = disk_path.with_suffix(".tmp.npz")
            np.savez(tmp, keys=np.array(dk), features=np.stack([disk[k][0] for k in dk]),
                     errors=np.array([disk[k][1] or "" for k in dk]))
            os.replace(tmp, disk_path)
    if memory:
        for key, row, err in zip(keys, rows, errors):
            _MEMORY[(fp, key)] = (row, err)
            _MEMORY.move_to_end((fp, key))
        while len(_MEMORY) > MEMORY_ROWS:
            _MEMORY.popitem(last=False)
    if not ids:
        return np.zeros((0, getattr(extractor, "dim", 0)), np.float32), []
    return np.stack(rows).astype(np.float32), errors


# =========================================================================== the head

def _build_head(d_in: int, n_caps: int, n_styles: int, hidden: int, target: str, dropout: float):
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

    Without this a capability the teacher always rates 0 would need many steps just to move its
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


def _fit_head(X: np.ndarray, Y: np.ndarray, S: np.ndarray, cfg: HeadConfig, gain: np.ndarray | None = None,
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
    head = _build_head(d, c, s, cfg.hidden, cfg.target, cfg.dropout)
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
            for group in opt.param_groups:  # cosine decay
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


def _predict(head, X: np.ndarray, target: str, n_caps: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected capability scores (n, c) in [0, 5] and style probabilities (n, s)."""
    import torch

    with torch.inference_mode(), one_torch_thread():
        cap_out, sty_out = head(torch.tensor(np.nan_to_num(np.asarray(X, dtype=np.float32))))
        if target == "ordinal":
            scores = torch.sigmoid(cap_out.view(len(X), n_caps, N_LEVELS - 1)).sum(-1)
        else:
            scores = cap_out.clamp(0, N_LEVELS - 1)
        return scores.numpy().astype(np.float64), torch.sigmoid(sty_out).numpy().astype(np.float64)


def _styles_from_probs(probs: np.ndarray, names: Sequence[str], threshold: float, at_least_one: bool) -> list[list[str]]:
    hits = probs >= threshold
    if at_least_one and len(probs):
        none = ~hits.any(1)
        hits[none, probs[none].argmax(1)] = True
    return [[names[j] for j in np.flatnonzero(row)] for row in hits]


# =========================================================================== the scorer

class DistilledRichScorer:
    """Capability scores and styles from a small head on frozen features, trained on teacher ratings.

    Options: ``features`` (a registered extractor name, default ``"offline"``, or an extractor
    object), ``feature_options`` (its options), the :class:`HeadConfig` fields (``target``,
    ``hidden``, ``steps``, ``lr``, ``weight_decay``, ``l2``, ``dropout``, ``style_threshold``,
    ``at_least_one_style``, ``style_pos_weight``, ``block_gains``, ``batch_size``, ``seed``; the
    defaults are the ones chosen by cross-validation on ``data_samples``), ``cache_dir`` (on-disk
    feature cache), ``integer`` (round scores to the nearest integer 0-5 like a teacher would give;
    default: expected scores as floats) and ``progress``.
    """

    def __init__(self, features="offline", feature_options: dict | None = None, cache_dir=None,
                 integer: bool = False, progress: bool = True, **head_options):
        self.extractor = get_feature_extractor(features, **(feature_options or {}))
        if hasattr(self.extractor, "progress"):
            self.extractor.progress = progress
        self.config = HeadConfig(**head_options)
        if self.config.block_gains == "auto":
            slices = self.extractor.block_slices() if hasattr(self.extractor, "block_slices") else {}
            gains = {k: float(v) for k, v in getattr(self.extractor, "default_gains", {}).items() if k in slices}
            self.config.block_gains = gains or None
        elif isinstance(self.config.block_gains, str):
            raise ValueError(f"block_gains must be a dict, None or 'auto', not {self.config.block_gains!r}")
        self.cache_dir, self.integer, self.progress = cache_dir, integer, progress
        self.head = None
        self.capabilities: list[str] = []
        self.styles: list[str] = []
        self.metadata: dict[str, Any] = {}

    # ---------------------------------------------------------------- features
    def features(self, pool, ids: Sequence[str] | None = None) -> tuple[np.ndarray, list[str | None]]:
        """Cached features of ``ids`` (default: all of ``pool``) and per-sample errors."""
        return compute_features(self.extractor, pool, ids, cache_dir=self.cache_dir)

    # ---------------------------------------------------------------- training
    def _gain(self, dim: int) -> np.ndarray | None:
        """Per-feature gains from ``block_gains`` and the extractor's ``block_slices()``."""
        gains = self.config.block_gains
        if not gains:
            return None
        slices = self.extractor.block_slices() if hasattr(self.extractor, "block_slices") else {}
        unknown = sorted(set(gains) - set(slices))
        if unknown:
            raise ValueError(f"block_gains names blocks {unknown} that the features {self.extractor.name!r} "
                             f"do not have ({sorted(slices)})")
        g = np.ones(dim, dtype=np.float32)
        for name, value in gains.items():
            g[slices[name]] = float(value)
        return g

    def _targets(self, ratings: pd.DataFrame, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        sub = ratings.loc[list(ids)]
        Y = sub[self.capabilities].to_numpy(dtype=np.float64)
        S = np.zeros((len(sub), len(self.styles)), dtype=np.float32)
        pos = {name: j for j, name in enumerate(self.styles)}
        unknown: dict[str, str] = {}
        for i, (sid, names) in enumerate(zip(sub.index, sub["styles"])):
            if not isinstance(names, (list, tuple)):
                raise ValueError(f"sample {sid!r}: styles must be a list, got {names!r}")
            for name in names:
                if name in pos:
                    S[i, pos[name]] = 1.0
                else:
                    unknown.setdefault(name, sid)
        if unknown:
            warnings.warn(f"ignoring {len(unknown)} unknown style names in the ratings: "
                          + ", ".join(f"{n!r} (e.g. sample {s!r})" for n, s in list(unknown.items())[:5]), stacklevel=3)
        return Y, S

    def _training_ids(self, pool, ratings: pd.DataFrame) -> list[str]:
        if not isinstance(ratings, pd.DataFrame):
            raise TypeError("ratings must be a DataFrame indexed by sample id (see load_teacher_ratings)")
        if not ratings.index.is_unique:
            raise ValueError(f"ratings have duplicate ids, e.g. {ratings.index[ratings.index.duplicated()][:3].tolist()}")
        in_pool = ratings.index.isin(pool.table.index)
        if not in_pool.any():
            raise ValueError("none of the rated ids is in the pool")
        if not in_pool.all():
            missing = ratings.index[~in_pool]
            warnings.warn(f"{len(missing)} rated ids are not in the pool and are ignored, e.g. {missing[:3].tolist()}",
                          stacklevel=3)
        rated = ratings.loc[in_pool]
        has_any = rated[self.capabilities].notna().any(axis=1) | rated["styles"].map(bool)
        keep = set(rated.index[has_any])
        return [sid for sid in pool.table.index if sid in keep]  # pool order

    def _resolve_columns(self, ratings: pd.DataFrame, capabilities: Iterable[str] | None) -> None:
        from kit.capabilities import STYLES, capability_keys

        keys = list(capabilities) if capabilities is not None else [k for k in capability_keys() if k in ratings.columns]
        missing = [k for k in keys if k not in ratings.columns]
        if missing or not keys:
            raise ValueError(f"ratings lack capability columns {missing or capability_keys()}")
        if "styles" not in ratings.columns:
            raise ValueError("ratings lack a 'styles' column (lists of style names)")
        self.capabilities, self.styles = keys, list(STYLES)

    def fit(self, pool, ratings: pd.DataFrame, capabilities: Iterable[str] | None = None):
        """Train on the rated samples of ``pool`` (``ratings`` indexed by id; see :func:`load_teacher_ratings`).

        Samples whose features failed (an unreadable image) are left out and counted in the metadata.
        """
        self._resolve_columns(ratings, capabilities)
        ids = self._training_ids(pool, ratings)
        X, errors = self.features(pool, ids)
        ok = np.array([e is None for e in errors], dtype=bool)
        ids_ok = [sid for sid, good in zip(ids, ok) if good]
        if not ids_ok:
            raise ValueError("no rated sample has usable features")
        Y, S = self._targets(ratings, ids_ok)
        t0 = time.perf_counter()
        self.head = _fit_head(X[ok], Y, S, self.config, self._gain(X.shape[1]), progress=False)
        self.metadata = {
            "trained_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "train_seconds": round(time.perf_counter() - t0, 3),
            "n_train": len(ids_ok),
            "n_skipped_feature_errors": int((~ok).sum()),
            "train_ids_sha1": hashlib.sha1("\n".join(ids_ok).encode()).hexdigest(),
            "pool_path": str(getattr(pool, "path", "") or ""),
            "target_means": {k: float(np.nanmean(Y[:, j])) if np.isfinite(Y[:, j]).any() else None
                             for j, k in enumerate(self.capabilities)},
            "style_rates": {name: float(S[:, j].mean()) for j, name in enumerate(self.styles)},
        }
        return self

    # ---------------------------------------------------------------- inference
    def _check_fitted(self):
        if self.head is None:
            raise RuntimeError("this DistilledRichScorer is not trained: call .fit(pool, ratings) or "
                               "DistilledRichScorer.load(path)")

    def predict_arrays(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected capability scores (n, c) and style probabilities (n, s) for a feature matrix."""
        self._check_fitted()
        return _predict(self.head, X, self.config.target, len(self.capabilities))

    def score(self, pool) -> pd.DataFrame:
        """One row per pool sample: capability columns (float 0-5), ``styles``, ``source``, ``status``.

        A sample whose features failed keeps its row with NaN scores, no styles and the reason in
        ``status``.
        """
        self._check_fitted()
        ids = list(pool.table.index)
        X, errors = self.features(pool, ids)
        ok = np.array([e is None for e in errors], dtype=bool)
        scores = np.full((len(ids), len(self.capabilities)), np.nan)
        probs = np.zeros((len(ids), len(self.styles)))
        if ok.any():
            scores[ok], probs[ok] = self.predict_arrays(X[ok])
        if self.integer:
            scores = np.round(scores)
        table = pd.DataFrame(scores, index=pd.Index(ids, name="id"), columns=self.capabilities)
        styles = _styles_from_probs(probs, self.styles, self.config.style_threshold, self.config.at_least_one_style)
        table["styles"] = [s if good else [] for s, good in zip(styles, ok)]
        table["source"] = pool.table["source"].to_numpy()
        table["status"] = ["ok" if e is None else e for e in errors]
        return table

    def style_probabilities(self, pool) -> pd.DataFrame:
        """Per-style probabilities (one column per style name) for every pool sample."""
        self._check_fitted()
        X, errors = self.features(pool)
        probs = np.full((len(X), len(self.styles)), np.nan)
        ok = np.array([e is None for e in errors], dtype=bool)
        if ok.any():
            probs[ok] = self.predict_arrays(X[ok])[1]
        return pd.DataFrame(probs, index=pd.Index(pool.table.index, name="id"), columns=self.styles)

    # ---------------------------------------------------------------- persistence
    def save(self, path, **extra_metadata) -> Path:
        """Write the head, the settings and the metadata to one file (``torch.save`` of a dict)."""
        import torch

        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**self.metadata, **extra_metadata}
        payload = {
            "format": FORMAT,
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.head.state_dict().items()},
            "capabilities": list(self.capabilities),
            "styles": list(self.styles),
            "features": {"name": self.extractor.name, "options": dict(getattr(self.extractor, "options", {})),
                         "fingerprint": self.extractor.fingerprint,
                         "dim": int(self.head.mean.shape[0])},
            "config": self.config.__dict__.copy(),
            "metadata_json": json.dumps(meta, default=str),
        }
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path=None, features=None, **options) -> "DistilledRichScorer":
        """Load a head saved by :meth:`save` (default: the shipped ``kit/weights/rich_distilled.pt``).

        The feature extractor is rebuilt from its stored name and options unless ``features`` gives
        one (needed for an extractor that is not registered). ``options`` override the stored
        inference settings (``style_threshold``, ``at_least_one_style``, ``integer``, ``cache_dir``,
        ``progress``).
        """
        import torch

        path = Path(path) if path is not None else DEFAULT_WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"no distilled rich-scorer head at {path}; train one with "
                                    "`python -m kit.scorers.rich_distilled train data_samples/ OUT.pt`")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} file")
        fspec = payload["features"]
        if features is None:
            if fspec["name"] not in _EXTRACTORS:
                raise KeyError(f"{path} was trained on features {fspec['name']!r}, which is not registered here; "
                               "pass features=<extractor>")
            features = get_feature_extractor(fspec["name"], **fspec["options"])
        if features.fingerprint != fspec["fingerprint"]:
            raise ValueError(f"{path} expects features {fspec['fingerprint']!r}, got {features.fingerprint!r}")
        config = dict(payload["config"])
        allowed = {"style_threshold", "at_least_one_style", "integer", "cache_dir", "progress"}
        wrong = sorted(set(options) - allowed)
        if wrong:
            raise TypeError(f"a loaded head cannot change {wrong}; only {sorted(allowed)} can be set")
        config.update({k: options.pop(k) for k in ("style_threshold", "at_least_one_style") if k in options})
        scorer = cls(features=features, **options, **config)
        scorer.capabilities, scorer.styles = list(payload["capabilities"]), list(payload["styles"])
        head = _build_head(fspec["dim"], len(scorer.capabilities), len(scorer.styles), scorer.config.hidden,
                           scorer.config.target, scorer.config.dropout)
        head.load_state_dict(payload["state_dict"])
        scorer.head = head.eval()
        scorer.metadata = json.loads(payload.get("metadata_json") or "{}")
        scorer.metadata["loaded_from"] = str(path)
        return scorer


class DistilledStyler:
    """The style half of :class:`DistilledRichScorer`: columns ``styles`` and ``status``.

    ``weights`` is a saved head (default: the shipped one); other options go to
    :meth:`DistilledRichScorer.load`.
    """

    def __init__(self, weights=None, **options):
        self.scorer = DistilledRichScorer.load(weights, **options)

    def score(self, pool) -> pd.DataFrame:
        return self.scorer.score(pool)[["styles", "status"]]


# =========================================================================== cross-validation

@dataclass
class CVReport:
    """Out-of-fold agreement of the distilled head with the teacher."""

    capabilities: pd.DataFrame          # per capability: spearman, mae, n, teacher_mean
    styles: pd.DataFrame                # per style: precision, recall, f1, support
    style_f1_micro: float
    style_f1_macro: float
    predictions: pd.DataFrame           # out-of-fold scores and styles, indexed by id
    folds: int
    seed: int
    options: dict = field(default_factory=dict)

    @property
    def mean_spearman(self) -> float:
        return float(np.nanmean(self.capabilities["spearman"].to_numpy(dtype=float)))

    def to_dict(self) -> dict:
        """Plain-type summary (for metadata and JSON)."""
        def clean(v):
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)

        return {"folds": self.folds, "seed": self.seed, "options": self.options,
                "spearman": {k: clean(v) for k, v in self.capabilities["spearman"].items()},
                "mean_spearman": clean(self.mean_spearman),
                "mae": {k: clean(v) for k, v in self.capabilities["mae"].items()},
                "style_f1": {k: clean(v) for k, v in self.styles["f1"].items()},
                "style_f1_micro": clean(self.style_f1_micro), "style_f1_macro": clean(self.style_f1_macro)}

    def summary(self) -> str:
        caps = self.capabilities.copy()
        grouped = f", grouped by {self.options['groups']}" if self.options.get("groups") else ""
        lines = [f"{self.folds}-fold cross-validation (seed {self.seed}{grouped}), {len(self.predictions)} samples",
                 "capability     spearman    mae    n",
                 *[f"{k:<14}{r.spearman:>9.3f}{r.mae:>7.3f}{int(r.n):>5}" for k, r in caps.iterrows()],
                 f"{'mean':<14}{self.mean_spearman:>9.3f}",
                 "style                              P      R     F1  support",
                 *[f"{k:<32}{r.precision:>6.2f}{r.recall:>7.2f}{r.f1:>7.2f}{int(r.support):>8}"
                   for k, r in self.styles.iterrows()],
                 f"style F1 micro {self.style_f1_micro:.3f}, macro {self.style_f1_macro:.3f}"]
        return "\n".join(lines)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(spearmanr(a[ok], b[ok]).statistic)


def cross_validate(pool, ratings: pd.DataFrame, folds: int = 5, seed: int = 0,
                   capabilities: Iterable[str] | None = None, groups=None, **scorer_options) -> CVReport:
    """K-fold agreement of the distilled head with the teacher on the rated samples of ``pool``.

    Features are computed once; each fold trains a fresh head (``scorer_options`` as for
    :class:`DistilledRichScorer`, its ``seed`` defaulting to ``seed``) on the other folds and
    predicts its own. Spearman is computed per capability over all out-of-fold predictions.
    ``groups`` (a column of ``ratings`` or a Series indexed by id) keeps each group in one fold, e.g.
    a duplicate or a defective copy together with the sample it was made from.
    """
    from sklearn.model_selection import GroupKFold, KFold

    scorer_options.setdefault("seed", seed)
    base = DistilledRichScorer(**scorer_options)
    base._resolve_columns(ratings, capabilities)
    ids = base._training_ids(pool, ratings)
    X, errors = base.features(pool, ids)
    ok = np.array([e is None for e in errors], dtype=bool)
    ids = [sid for sid, good in zip(ids, ok) if good]
    X = X[ok]
    if len(ids) < folds:
        raise ValueError(f"{len(ids)} usable rated samples are too few for {folds} folds")
    Y, S = base._targets(ratings, ids)
    pred = np.full(Y.shape, np.nan)
    probs = np.zeros(S.shape)
    if groups is None:
        splits = KFold(folds, shuffle=True, random_state=seed).split(X)
    else:
        if isinstance(groups, str):  # a column; an empty cell is a group of its own
            g = ratings[groups].where(ratings[groups].notna(), ratings.index.to_series())
        else:
            g = pd.Series(groups)
        missing = [sid for sid in ids if sid not in g.index]
        if missing:
            raise KeyError(f"groups has no entry for {len(missing)} samples, e.g. {missing[:3]}")
        splits = GroupKFold(folds, shuffle=True, random_state=seed).split(X, groups=g.loc[ids].astype(str).to_numpy())
    for train, test in splits:
        head = _fit_head(X[train], Y[train], S[train], base.config, base._gain(X.shape[1]))
        pred[test], probs[test] = _predict(head, X[test], base.config.target, len(base.capabilities))
    cap_rows = {}
    for j, k in enumerate(base.capabilities):
        y = Y[:, j]
        good = np.isfinite(y)
        cap_rows[k] = {"spearman": _spearman(pred[:, j], y), "mae": float(np.abs(pred[good, j] - y[good]).mean())
                       if good.any() else math.nan, "n": int(good.sum()),
                       "teacher_mean": float(y[good].mean()) if good.any() else math.nan}
    cap_table = pd.DataFrame.from_dict(cap_rows, orient="index")
    cap_table.index.name = "capability"
    style_lists = _styles_from_probs(probs, base.styles, base.config.style_threshold, base.config.at_least_one_style)
    pred_bool = np.zeros_like(S, dtype=bool)
    for i, names in enumerate(style_lists):
        for name in names:
            pred_bool[i, base.styles.index(name)] = True
    style_table, micro, macro = multilabel_agreement(S > 0.5, pred_bool, base.styles)
    predictions = pd.DataFrame(pred, index=pd.Index(ids, name="id"), columns=base.capabilities)
    predictions["styles"] = style_lists
    opts = {k: v for k, v in scorer_options.items()
            if isinstance(v, (int, float, str, bool, type(None))) and k not in ("cache_dir", "progress")}
    opts["block_gains"] = base.config.block_gains
    opts.update({"features": base.extractor.name, **{f"feature_{k}": str(v) for k, v in
                                                     getattr(base.extractor, "options", {}).items()}})
    if groups is not None:
        opts["groups"] = groups if isinstance(groups, str) else "custom"
    return CVReport(cap_table, style_table, micro, macro, predictions, folds, seed, opts)


# =========================================================================== the shipped head

def train_default(data_dir, out, seed: int = 0, folds: int = 5, ratings=None, progress: bool = True,
                  groups="auto", **scorer_options) -> tuple[DistilledRichScorer, CVReport]:
    """Train the offline default head on ``{data_dir}/pool.json`` + ``labels.csv`` and save it to ``out``.

    Runs a ``folds``-fold cross-validation first (same settings and seed) and stores its numbers in
    the file's metadata, together with a note that the head was trained on that very pool.
    ``groups="auto"`` keeps each defective copy or duplicate in the fold of the sample it was made
    from when the ratings have an ``origin`` column (``labels.csv`` does); ``None`` for plain K-fold.
    """
    from kit.data import load_pool

    data_dir = Path(data_dir)
    pool = load_pool(data_dir / "pool.json")
    ratings_path = Path(ratings) if ratings is not None else data_dir / "labels.csv"
    table = load_teacher_ratings(ratings_path)
    scorer_options = {"progress": progress, **scorer_options}
    if groups == "auto":
        groups = "origin" if "origin" in table.columns else None
    report = cross_validate(pool, table, folds=folds, seed=seed, groups=groups, **scorer_options)
    scorer = DistilledRichScorer(seed=seed, **scorer_options).fit(pool, table)
    scorer.save(out, trained_on=str(ratings_path), pool=str(data_dir / "pool.json"),
                note=(f"Trained on the ratings in {ratings_path} for every sample of this same pool "
                      f"({data_dir / 'pool.json'}): in-sample scores on that pool are optimistic. The "
                      f"{folds}-fold cross-validated agreement in 'cv' is the honest estimate."),
                cv=report.to_dict(), command=f"python -m kit.scorers.rich_distilled train {data_dir} {out}")
    return scorer, report


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m kit.scorers.rich_distilled",
                                 description="Train or cross-validate the distilled rich scorer.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train on DATA_DIR/pool.json + labels.csv (or --ratings) and save")
    tr.add_argument("data_dir")
    tr.add_argument("out")
    cv = sub.add_parser("cv", help="print the cross-validated agreement with the teacher")
    cv.add_argument("data_dir")
    for p in (tr, cv):
        p.add_argument("--ratings", default=None, help="labels.csv or teacher JSONL (default DATA_DIR/labels.csv)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--folds", type=int, default=5)
        p.add_argument("--target", choices=TARGETS, default=HeadConfig.target)
        p.add_argument("--hidden", type=int, default=HeadConfig.hidden)
        p.add_argument("--steps", type=int, default=HeadConfig.steps)
        p.add_argument("--l2", type=float, default=HeadConfig.l2)
        p.add_argument("--blocks", default="image,questions,answers,stats")
        p.add_argument("--cache-dir", default=None, help="keep the computed features here for later runs")
        p.add_argument("--groups", default="auto", help='ratings column whose samples share a fold ("auto": '
                       '"origin" when present; "none": plain K-fold)')
        p.add_argument("--block-gains", default="auto",
                       help='"auto" (the extractor\'s defaults), "none", or JSON such as \'{"image": 0.5}\'')
    args = ap.parse_args(argv)
    gains = {"auto": "auto", "none": None}.get(args.block_gains)
    if gains is None and args.block_gains != "none":
        gains = json.loads(args.block_gains)
    groups = None if args.groups == "none" else args.groups
    options = {"target": args.target, "hidden": args.hidden, "steps": args.steps, "l2": args.l2,
               "block_gains": gains, "cache_dir": args.cache_dir, "feature_options": {"blocks": args.blocks.split(",")}}
    if args.cmd == "train":
        scorer, report = train_default(args.data_dir, args.out, seed=args.seed, folds=args.folds,
                                       ratings=args.ratings, groups=groups, **options)
        print(report.summary())
        print(f"saved {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB), trained on {scorer.metadata['n_train']} samples")
    else:
        from kit.data import load_pool

        data_dir = Path(args.data_dir)
        pool = load_pool(data_dir / "pool.json")
        table = load_teacher_ratings(args.ratings or data_dir / "labels.csv")
        if groups == "auto":
            groups = "origin" if "origin" in table.columns else None
        print(cross_validate(pool, table, folds=args.folds, seed=args.seed, groups=groups, **options).summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
