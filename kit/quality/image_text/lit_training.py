"""Training the image-text stand-in's LiT head (:mod:`kit.models.lit_head`) on easy-vqa (command line: ``kit lit-head``).

Locked-image tuning (LiT) with both towers locked: EfficientNet-Lite0 pooled features (1280) and
MiniLM sentence embeddings (384) each go through one linear projection to a shared 128-d space,
trained with the symmetric contrastive (InfoNCE) loss. Pairs that describe the same thing (same
easy-vqa colour and shape) count as positives of each other, so the loss does not push apart
true matches that happen to share a batch.

Training data: easy-vqa images of one split, by default the ``reserved`` slice of the train split
(:data:`kit.pools.easyvqa.TRAIN_SLICES`: train images 2800-3999, which the easy-vqa pools of
:mod:`kit.pools` leave out; easy-vqa's test split stays the held-out evaluation of :mod:`kit.finetune`),
with texts made from easy-vqa's own questions and answers (not from the kit's sample templates):
a short caption ("a red circle"), two conversations of 1-4 question/answer pairs, questions only
and answers only (the three text modes of the scorer), 5 texts per image. Images that also appear
in the pool given with ``exclude_pool`` (matched by file name and by pixel content) are left out.

Rebuild the shipped head (seeded; a few minutes on 2 busy CPU cores, mostly encoding; training itself
400 steps of batch 256, ~15 s)::

    kit lit-head train --split train --slice reserved --out kit/weights/lit_head_easyvqa.pt

and check it on held-out easy-vqa pairs (own text vs another image's text), e.g. the first 500 images of
the test split (which it never saw)::

    kit lit-head eval --split test --n 500

(``python -m kit.quality.image_text.lit_training train|eval`` is an alias of ``kit lit-head``.)
"""
from __future__ import annotations

import hashlib
import re
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from kit.models.lit_head import new_head, save_head
from kit.models.threads import one_torch_thread

COLOURS = ("red", "green", "blue", "yellow", "teal", "brown", "black", "gray")
SHAPES = ("circle", "rectangle", "triangle")


# --------------------------------------------------------------------------- easy-vqa texts

_POSITIVE = [re.compile(p) for p in (
    r"^is there (?P<neg>not |no )?an? (?P<x>\w+)(?: shape)?(?: in the image)?\?$",
    r"^does the image (?P<neg>not )?contain an? (?P<x>\w+)(?: shape)?\?$",
    r"^is (?P<neg>no |not )?an? (?P<x>\w+)(?: shape)? present\?$",
    r"^is (?P<neg>no )(?P<x>\w+)(?: shape)? present\?$",
)]


def easyvqa_truth(questions, answers) -> tuple[str | None, str | None]:
    """(colour, shape) of one easy-vqa image, read from its questions and answers (None if unknown)."""
    colour = shape = None
    for q, a in zip(questions, answers):
        q = q.strip().lower()
        if re.match(r"^what (color is|is the color of) the shape\?$", q):
            colour = a
        m = re.match(r"^what (?:color is|is the color of) the (circle|rectangle|triangle)\?$", q)
        if m:
            colour, shape = a, m.group(1)
        if q.startswith("what shape"):
            shape = a
        m = re.match(r"^what is the (\w+) shape\?$", q)
        if m:
            colour, shape = m.group(1), a
        for pat in _POSITIVE:
            m = pat.match(q)
            if m and a in ("yes", "no"):
                present = (a == "yes") != bool(m.group("neg"))
                x = m.group("x")
                if present and x in COLOURS:
                    colour = x
                if present and x in SHAPES:
                    shape = x
                break
    return colour, shape


def easyvqa_split(split: str = "test"):
    """``{image id: (path, [questions], [answers])}`` of an easy-vqa split (``train`` or ``test``)."""
    from kit.pools.easyvqa import image_paths, split_questions

    qs, ans, ids = split_questions(split)
    paths = image_paths(split)
    by_image: dict[int, tuple[str, list, list]] = {i: (str(p), [], []) for i, p in paths.items()}
    for q, a, i in zip(qs, ans, ids):
        by_image[i][1].append(q)
        by_image[i][2].append(a)
    return dict(sorted(by_image.items()))


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def image_texts(questions, answers, colour, shape, rng, n_conversations: int = 2) -> list[str]:
    """Training texts for one image: a caption, conversations, its questions only, its answers only."""
    texts = []
    if colour and shape:
        texts.append(str(rng.choice([f"a {colour} {shape}", f"A {colour} {shape} on a white background.",
                                     f"The image shows a {colour} {shape}."])))
    elif colour or shape:
        texts.append(f"a {colour or ''} {shape or 'shape'}".replace("  ", " "))
    pairs = list(zip(questions, answers))
    for _ in range(n_conversations):
        k = int(rng.integers(1, min(4, len(pairs)) + 1))
        pick = [pairs[j] for j in rng.choice(len(pairs), size=k, replace=False)]
        texts.append("\n".join(f"{_cap(q)}\n{_cap(a)}" for q, a in pick))
    pick = [pairs[j] for j in rng.choice(len(pairs), size=min(3, len(pairs)), replace=False)]
    texts.append("\n".join(_cap(q) for q, _ in pick))
    texts.append("\n".join(_cap(a) for _, a in pick))
    return texts


def pixel_hash(path) -> str:
    """Hash of an image's decoded RGB pixels (finds copies saved under other names or formats)."""
    from kit.data import decode_image

    im = decode_image(path)
    return hashlib.sha1(im.tobytes() + repr(im.size).encode()).hexdigest()


def pool_easyvqa_images(pool_path) -> tuple[set[str], set[tuple[str, int]]]:
    """What a pool holds of easy-vqa: pixel hashes of its images and (split, id) pairs named in its
    image file names (e.g. ``easyvqa/train_01723.png``, ``pair_train_00106_03688.png``)."""
    from kit.data import load_pool

    pool = load_pool(pool_path, check_images=False)
    hashes, named = set(), set()
    for image, path in zip(pool.table["image"], pool.table["image_path"]):
        name = Path(str(image)).name
        for m in re.finditer(r"(train|test)((?:_\d+)+)", name):
            named.update((m.group(1), int(x)) for x in m.group(2).strip("_").split("_"))
        try:
            hashes.add(pixel_hash(path))
        except Exception:  # noqa: BLE001 - a pool image that fails cannot be matched by content
            pass
    return hashes, named


def build_training_set(split: str = "train", exclude_pool=None, limit: int | None = None, seed: int = 0,
                       slice: str | None = "reserved"):
    """Images, texts and labels for training: ``(paths, texts, owner, image_labels, info)``.

    ``slice`` names a part of the train split (:func:`kit.pools.easyvqa.train_slice`: ``"reserved"``,
    ``"dev"``, ``"pool"``); ``None`` (or any test-split call) takes every image of ``split``.
    ``owner[j]`` is the image index of ``texts[j]``; ``image_labels[i]`` is a label id shared by
    images with the same (colour, shape), or unique when the truth is unknown.
    """
    if exclude_pool is not None and not Path(exclude_pool).is_file():
        raise FileNotFoundError(f"no pool at {exclude_pool} to leave out of the LiT head's training images; "
                                "pass the pool the head must not see, or None to leave nothing out")
    rng = np.random.default_rng(seed)
    data = easyvqa_split(split)
    if split == "train" and slice is not None:
        from kit.pools.easyvqa import train_slice

        wanted = set(train_slice(slice))
        data = {i: v for i, v in data.items() if i in wanted}
    excluded: list[int] = []
    if exclude_pool is not None:
        hashes, named = pool_easyvqa_images(exclude_pool)
        excluded = [i for i, v in data.items() if (split, i) in named or pixel_hash(v[0]) in hashes]
        data = {i: v for i, v in data.items() if i not in set(excluded)}
    items = list(data.items())
    if limit is not None:
        items = items[:limit]
    paths, texts, owner, labels = [], [], [], []
    label_ids: dict = {}
    for k, (image_id, (path, qs, ans)) in enumerate(items):
        colour, shape = easyvqa_truth(qs, ans)
        key = (colour, shape) if colour and shape else ("image", image_id)
        labels.append(label_ids.setdefault(key, len(label_ids)))
        paths.append(path)
        for t in image_texts(qs, ans, colour, shape, rng):
            texts.append(t)
            owner.append(k)
    info = {"split": split, "slice": slice if split == "train" else None, "n_images": len(paths),
            "n_texts": len(texts),
            "excluded_pool": str(exclude_pool) if exclude_pool is not None else None,
            "n_excluded": len(excluded), "image_ids": [int(i) for i, _ in items]}
    return paths, texts, np.array(owner), np.array(labels), info


# --------------------------------------------------------------------------- training

def encode_training_set(paths, texts, device="cpu", batch_size: int = 64, progress: bool = True):
    """Locked features: EfficientNet-Lite0 pooled (N, 1280) and MiniLM (M, 384)."""
    from kit.models import encoders as oe

    image_feats = oe.encode_images(oe.load_image_encoder(device), paths, batch_size=batch_size,
                                   output="pooled", progress=progress)
    text_feats, _ = oe.encode_texts(oe.load_text_encoder(device), texts, batch_size=batch_size * 2,
                                    progress=progress)
    return image_feats, text_feats


def train_head(image_feats, text_feats, owner, labels, steps: int = 400, batch_size: int = 256,
               lr: float = 2e-3, weight_decay: float = 1e-4, dim: int = 128, seed: int = 0,
               progress: bool = True):
    """Train the two projections with the symmetric multi-positive contrastive loss (seeded)."""
    with one_torch_thread():  # tiny matrices: one thread is fastest and immune to busy machines
        return _train_head(image_feats, text_feats, owner, labels, steps, batch_size, lr, weight_decay, dim, seed,
                           progress)


def _train_head(image_feats, text_feats, owner, labels, steps, batch_size, lr, weight_decay, dim, seed, progress):
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    img = torch.as_tensor(image_feats, dtype=torch.float32)
    txt = torch.as_tensor(text_feats, dtype=torch.float32)
    labels_t = torch.as_tensor(labels)
    texts_of = defaultdict(list)
    for j, i in enumerate(owner):
        texts_of[int(i)].append(j)
    texts_of = [np.array(texts_of[i]) for i in range(len(img))]
    head = new_head(img.shape[1], txt.shape[1], dim)
    head.image_mean.copy_(img.mean(0))
    head.image_std.copy_(img.std(0).clamp(min=1e-4))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    bs = min(batch_size, len(img))
    losses = []
    steps_iter = range(steps)
    if progress:
        from tqdm.auto import tqdm

        steps_iter = tqdm(steps_iter, desc="LiT head", unit="step")
    for _ in steps_iter:
        idx = rng.choice(len(img), size=bs, replace=False)
        tj = np.array([rng.choice(texts_of[i]) for i in idx])
        zi = head.embed_images(img[idx])
        zt = head.embed_texts(txt[tj])
        logits = head.logit_scale.exp().clamp(max=100) * zi @ zt.T
        lab = labels_t[idx]
        pos = (lab[:, None] == lab[None, :]).float()
        target = pos / pos.sum(1, keepdim=True)
        loss = 0.5 * (torch.sum(-target * logits.log_softmax(1), 1).mean()
                      + torch.sum(-target * logits.log_softmax(0).T, 1).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    head.eval().requires_grad_(False)
    return head, losses


def pair_auc(head, image_feats, text_feats, owner, labels, seed: int = 0) -> float:
    """ROC AUC of own-text vs a shuffled other image's text (different label) under ``head``."""
    import torch
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        zi = head.embed_images(torch.as_tensor(image_feats, dtype=torch.float32)).numpy()
        zt = head.embed_texts(torch.as_tensor(text_feats, dtype=torch.float32)).numpy()
    own = np.einsum("ij,ij->i", zi[owner], zt)
    other_img = rng.permutation(owner)
    ok = labels[other_img] != labels[owner]
    neg = np.einsum("ij,ij->i", zi[other_img[ok]], zt[ok])
    y = np.r_[np.ones(len(own)), np.zeros(len(neg))]
    return float(roc_auc_score(y, np.r_[own, neg]))


def train(split: str = "train", out=None, steps: int = 400, batch_size: int = 256, seed: int = 0,
          exclude_pool="data_samples/pool.json", limit: int | None = None, device="cpu", progress: bool = True,
          slice: str | None = "reserved", eval_split: str | None = "test", eval_n: int = 500, command=None):
    """Build the training set, encode it with the locked encoders, train and save the head.

    The metadata saved with the head holds the command, the image ids, the training pair AUC and, with
    ``eval_split``, the pair AUC on the first ``eval_n`` images of that split (held out when they are not
    the training images). ``out`` is where the head is written, always given: the shipped head is package data
    (:data:`kit.models.lit_head.HEAD_PATH`), which an installed kit must not overwrite.
    """
    import torch

    if out is None:
        raise ValueError("train(out=...) needs the file to write the head to (e.g. kit/weights/lit_head_easyvqa.pt "
                         "in a checkout, to replace the shipped head)")
    t0 = time.perf_counter()
    paths, texts, owner, labels, info = build_training_set(split, exclude_pool, limit, seed, slice=slice)
    image_feats, text_feats = encode_training_set(paths, texts, device, progress=progress)
    t1 = time.perf_counter()
    head, losses = train_head(image_feats, text_feats, owner, labels, steps=steps, batch_size=batch_size,
                              seed=seed, progress=progress)
    t2 = time.perf_counter()
    meta = dict(info, steps=steps, batch_size=batch_size, seed=seed, final_loss=round(float(np.mean(losses[-20:])), 4),
                first_loss=round(losses[0], 4), train_pair_auc=round(pair_auc(head, image_feats, text_feats, owner,
                                                                                labels), 4),
                encode_seconds=round(t1 - t0, 1), train_seconds=round(t2 - t1, 1), torch=str(torch.__version__),
                image_encoder="efficientnet-lite0 pooled (locked)", text_encoder="all-MiniLM-L6-v2 (locked)")
    if command is not None:
        meta["command"] = command
    if eval_split is not None:
        meta.update(held_out_auc(head, eval_split, eval_n, device=device, progress=progress))
    save_head(head, out, meta)
    return head, meta


def held_out_auc(head, split: str = "test", n: int = 500, device="cpu", progress: bool = False) -> dict:
    """Pair AUC of ``head`` on the first ``n`` images of ``split`` (the whole split, not a train slice)."""
    paths, texts, owner, labels, info = build_training_set(split, limit=n, seed=1, slice=None)
    image_feats, text_feats = encode_training_set(paths, texts, device, progress=progress)
    return {"eval_split": split, "eval_n_images": info["n_images"],
            "eval_pair_auc": round(pair_auc(head, image_feats, text_feats, owner, labels), 4)}


if __name__ == "__main__":  # python -m kit.quality.image_text.lit_training: an alias of kit lit-head
    from kit.cli import alias

    raise SystemExit(alias("lit-head"))
