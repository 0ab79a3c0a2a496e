"""Image-text correlation scorer (the ``s`` of the quality-driven curriculum; see docs/methods.md).

``s`` is the cosine similarity of L2-normalised image and text features. Two backends:

- ``"standin"`` (offline default, :mod:`kit.quality.image_text.standin`): a weighted sum of three
  cosines on EfficientNet-Lite0 + MiniLM features: an ImageNet concept bottleneck, a LiT head
  trained on easy-vqa, and a pool-neighbour text map (so its scores depend on the pool they are
  computed in). It is **not CLIP**: the table says so in its score info's ``label``
  (``kit.score_info(table).label``) and in its ``scorer`` column, and adds one ``image_text_<part>`` column per part.
- ``"open_clip"``: any open_clip model (``model_name``, ``pretrained`` tag or local checkpoint
  file), texts cut to the context length (77) with the truncation reported.

Usage::

    scores = kit.score(pool, "image_text")                               # stand-in, conversation text
    scores = kit.score(pool, "image_text", backend="open_clip", model_name="ViT-B-32",
                       pretrained="openai", text="questions", device="cuda", embeddings_dir="emb/")

The table (indexed by sample id, pool order) has ``image_text`` (the score), ``text`` (the text
actually encoded: the kept prefix when truncated), ``truncated``, ``n_tokens`` (before truncation),
``status`` (``"ok"`` or why the sample has no score: an image that no longer decodes gets NaN, it
is never dropped) and ``scorer``; the stand-in adds its part cosines. With
``embeddings_dir`` the features are kept as ``image.npy``, ``text.npy`` and ``ids.json`` (row order).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kit.conversation import conversation_text
from kit.registry import IMAGE_TEXT_BACKENDS
from kit.scoreinfo import ScoreInfo

TEXT_PARTS = {"conversation": "all", "questions": "questions", "answers": "answers"}


def make_backend(backend: str, device="cpu", **options):
    """Build an image-text backend registered in :data:`kit.registry.IMAGE_TEXT_BACKENDS` (this loads its model)."""
    return IMAGE_TEXT_BACKENDS.get(backend)(device=device, **options)


def sample_texts(pool, text: str = "conversation") -> list[str]:
    """The text of each pool sample to encode: the whole conversation, its questions or its answers."""
    if text not in TEXT_PARTS:
        raise ValueError(f"text must be one of {sorted(TEXT_PARTS)}, not {text!r}")
    part = TEXT_PARTS[text]
    out = []
    for sid, conv in pool.table["conversations"].items():
        try:
            out.append(conversation_text(conv, part=part))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"sample {sid!r}: cannot read its conversation ({exc})") from None
    return out


def save_embeddings(directory, ids, image: np.ndarray, text: np.ndarray, meta: dict) -> Path:
    """Write ``image.npy``, ``text.npy``, ``ids.json`` (row order) and ``meta.json`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "image.npy", image.astype(np.float32))
    np.save(directory / "text.npy", text.astype(np.float32))
    (directory / "ids.json").write_text(json.dumps([str(i) for i in ids]), encoding="utf-8")
    (directory / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return directory


def load_embeddings(directory) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(ids, image, text)`` as written by :func:`save_embeddings`."""
    directory = Path(directory)
    ids = json.loads((directory / "ids.json").read_text(encoding="utf-8"))
    return ids, np.load(directory / "image.npy"), np.load(directory / "text.npy")


class ImageTextScorer:
    """Score every pool sample by the cosine of its image and text features.

    Options: ``backend`` (``"standin"`` | ``"open_clip"``), ``text`` (``"conversation"`` |
    ``"questions"`` | ``"answers"``), ``device``, ``batch_size``, ``num_workers`` (decoding
    processes; default: up to 4, none for a single batch), ``embeddings_dir``, ``progress``; every
    other keyword goes to the backend (open_clip: ``model_name``, ``pretrained``, ``precision``,
    ``cache_dir``, ...; standin: ``weights`` (dict over ``concept``, ``head``, ``neighbours``),
    ``head`` (``"default"``, a path or ``None``), ``neighbours`` (k, 0 to drop that part)).
    """

    def __init__(self, backend: str = "standin", text: str = "conversation", device="cpu",
                 batch_size: int = 64, num_workers: int | None = None, embeddings_dir=None,
                 progress: bool = True, **backend_options):
        if text not in TEXT_PARTS:
            raise ValueError(f"text must be one of {sorted(TEXT_PARTS)}, not {text!r}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        IMAGE_TEXT_BACKENDS.get(backend)  # an unknown name fails here, before any model loads
        self.text, self.batch_size, self.num_workers = text, int(batch_size), num_workers
        self.embeddings_dir, self.progress = embeddings_dir, progress
        self.backend_name, self.device, self.backend_options = backend, device, backend_options
        self._backend = None
        self.load_seconds = float("nan")
        self.last_timing: dict[str, float] = {}

    @property
    def pool_dependent(self) -> bool:
        """Whether a sample's score depends on the rest of the pool (the stand-in's neighbour part)."""
        return bool(getattr(self.backend, "pool_dependent", False))

    @property
    def backend(self):
        """The backend, built (and its model loaded) on first use."""
        if self._backend is None:
            t0 = time.perf_counter()
            self._backend = make_backend(self.backend_name, device=self.device, **self.backend_options)
            self.load_seconds = time.perf_counter() - t0
        return self._backend

    @property
    def label(self) -> str:
        return self.backend.label

    @property
    def short_label(self) -> str:
        return getattr(self.backend, "short_label", self.backend.label)

    def encode(self, pool) -> dict[str, np.ndarray]:
        """The per-sample step: raw features and text facts of every sample, as arrays (one row per sample).

        Sharded scoring (``kit.scoring``) runs this shard by shard and :meth:`finish` once on all of them,
        which gives the same scores as :meth:`score` on the whole pool (the stand-in's neighbour part
        needs every sample). A text-only or multi-image sample gets NaN image features and a status.
        """
        from kit.data import image_problem
        from kit.quality.image_text.pipeline import encode

        texts = sample_texts(pool, self.text)
        counts = pool.table["n_images"] if "n_images" in pool.table else pd.Series(1, index=pool.table.index)
        problems = [image_problem(n) or "" for n in counts]
        paths = [None if prob else p for p, prob in zip(pool.table["image_path"], problems)]
        t0 = time.perf_counter()
        enc = encode(self.backend, paths, texts, batch_size=self.batch_size, num_workers=self.num_workers,
                     progress=self.progress, desc=f"image-text [{self.backend.name}]")
        self._encode_seconds = getattr(self, "_encode_seconds", 0.0) + time.perf_counter() - t0
        return {"image": enc.image, "text": enc.text, "truncated": enc.truncated, "n_tokens": enc.n_tokens,
                "kept": np.array(enc.kept, dtype=str).reshape(-1),
                "error": np.array([e or "" for e in enc.errors], dtype=str).reshape(-1),
                "problem": np.array(problems, dtype=str).reshape(-1),
                "empty_text": np.array([not t.strip() for t in texts], dtype=bool).reshape(-1)}

    def finish(self, ids, arrays: dict) -> tuple[pd.DataFrame, ScoreInfo]:
        """The pool-wide step on the arrays of :meth:`encode` (of the whole pool, in pool order)."""
        from kit.quality.image_text.pipeline import Encoded, finish

        ids = list(ids)
        errors = [str(e) or None for e in arrays["error"]]
        enc = finish(self.backend, Encoded(arrays["image"], arrays["text"], None, arrays["truncated"],
                                           arrays["n_tokens"], [str(k) for k in arrays["kept"]], errors))
        score = enc.score.copy()
        status = []
        for k, err in enumerate(errors):
            problem = str(arrays["problem"][k])
            if problem:
                status.append(problem)
            elif err is not None:
                status.append(f"image failed to decode: {err}")
            elif arrays["empty_text"][k]:
                score[k] = np.nan
                status.append(f"empty {self.text} text")
            else:
                status.append("ok")
        table = pd.DataFrame({"image_text": score, "text": enc.kept, "truncated": np.asarray(enc.truncated, bool),
                              "n_tokens": np.asarray(enc.n_tokens, np.int64), "status": status,
                              "scorer": self.label}, index=pd.Index(ids, name="id"))
        if hasattr(self.backend, "components"):
            for name, values in self.backend.components(enc.image, enc.text).items():
                table[name] = np.where(np.isnan(score), np.nan, values)
        parts = [c for c in table.columns if c.startswith("image_text_")]
        seconds = getattr(self, "_encode_seconds", float("nan"))
        self.last_timing = {"load_s": self.load_seconds, "score_s": seconds,
                            "samples_per_s": len(ids) / seconds if seconds > 0 else float("nan")}
        n_truncated = int(table["truncated"].sum())
        info = ScoreInfo(columns=("image_text", *parts), label=self.label, short_label=self.short_label,
                         pool_dependent=self.pool_dependent, timing=dict(self.last_timing),
                         details={"text": self.text, "n_truncated": n_truncated,
                                  "n_failed": int((table["status"] != "ok").sum())})
        if self.embeddings_dir is not None:
            save_embeddings(self.embeddings_dir, ids, enc.image, enc.text,
                            {"scorer": self.label, "text": self.text, "dim": int(enc.image.shape[1]),
                             "score": "row-wise dot product of image.npy and text.npy (cosine)"})
        if self.progress and n_truncated:
            print(f"image_text: {n_truncated} of {len(table)} texts were truncated to the "
                  f"text encoder's context")
        return table, info

    def score(self, pool) -> tuple[pd.DataFrame, ScoreInfo]:
        self._encode_seconds = 0.0
        return self.finish(list(pool.table.index), self.encode(pool))
