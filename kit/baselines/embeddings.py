"""Sample embeddings for the selectors that need them (``deita``, ``coincide``), aligned to a score table.

``embeddings=`` is one of

- an array of shape (rows of the score table, d), in the table's row order;
- a DataFrame indexed by sample id, one column per dimension (ids the table lacks are ignored; table ids it
  lacks have no embedding);
- the folder the image-text scorer writes with ``embeddings_dir=`` (``image.npy``, ``text.npy``, ``ids.json``;
  :func:`kit.quality.image_text.scorer.save_embeddings`), from which ``use`` picks:

  ``"both"`` (default)  each of the image and the text feature L2-normalised, concatenated and scaled by
                        1/sqrt(2): the cosine of two samples is the mean of their image cosine and their text
                        cosine, so both what a sample shows and what it says count;
  ``"image"``           the image feature only;   ``"text"``   the text feature only;
- ``None``: the folder the score table's image-text scorer recorded (its ``embeddings_dir`` option in the
  table's score info, :func:`kit.score_info`), when it exists. A table derived from a score table (filtered,
  joined, copied) has no score info: pass ``embeddings=`` for it.

Rows are L2-normalised (so a dot product is a cosine) and kept as float32. A sample whose embedding is missing,
non-finite or zero (e.g. an image that failed to decode) has none: the selectors exclude and count it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

USES = ("both", "image", "text")


@dataclass
class Embeddings:
    """Unit rows aligned to a score table (zeros where ``valid`` is False) and where they came from."""

    matrix: np.ndarray      # float32 (rows, d)
    valid: np.ndarray       # bool (rows,)
    source: str             # "array", "dataframe" or the folder
    use: str                # "given" for an array or DataFrame, else "both" / "image" / "text"

    @property
    def n_missing(self) -> int:
        return int((~self.valid).sum())

    def info(self) -> dict:
        return {"source": self.source, "use": self.use, "dim": int(self.matrix.shape[1]),
                "n_missing": self.n_missing}


def how_to_make(selector: str) -> str:
    return (f"{selector} needs sample embeddings: pass embeddings= (an array in the score table's row order, a "
            f"DataFrame indexed by sample id, or the folder the image-text scorer writes), e.g. "
            f"kit.score(pool, 'image_text', embeddings_dir='emb/') and then "
            f"kit.select(scores, {selector!r}, budget, embeddings='emb/')")


def recorded_folder(scores: pd.DataFrame) -> Path | None:
    """The embeddings folder the table's image-text scorer recorded (a joined table's, or the image-text scorer's
    own table's), if it exists."""
    from kit.scoreinfo import ScoreInfo, score_info, scorer_entry

    entry = scorer_entry(scores, "image_text")
    own = score_info(scores, required=False)
    if entry is None and isinstance(own, ScoreInfo) and own.scorer_name == "image_text":
        entry = own
    folder = entry.options.get("embeddings_dir") if entry is not None else None
    if folder and (Path(folder) / "ids.json").is_file():
        return Path(folder)
    return None


def _unit_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.array(matrix, dtype=np.float32)          # a copy: the caller's array is never changed
    finite = np.isfinite(out).all(axis=1)
    out[~finite] = 0.0
    norms = np.linalg.norm(out, axis=1)
    valid = finite & (norms > 0)
    out /= np.where(valid, norms, 1.0).astype(np.float32)[:, None]
    return out, valid


def _align(matrix: np.ndarray, ids, scores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    where = pd.Index([str(i) for i in ids]).get_indexer([str(i) for i in scores.index])
    if pd.Index([str(i) for i in ids]).has_duplicates:
        raise ValueError("the embeddings name a sample id twice")
    out = np.zeros((len(scores), matrix.shape[1]), dtype=np.float32)
    have = where >= 0
    out[have] = matrix[where[have]]
    valid = np.zeros(len(scores), dtype=bool)
    valid[have] = True
    return out, valid


def _load_folder(folder: Path, use: str, selector: str) -> tuple[list, np.ndarray]:
    from kit.quality.image_text.scorer import load_embeddings

    if not (folder / "ids.json").is_file():
        raise FileNotFoundError(f"{selector}: {folder} holds no ids.json; {how_to_make(selector)}")
    ids, image, text = load_embeddings(folder)
    if len(ids) != len(image) or len(ids) != len(text):
        raise ValueError(f"{folder}: ids.json names {len(ids)} samples but image.npy has {len(image)} rows "
                         f"and text.npy {len(text)}")
    if use == "image":
        return ids, image
    if use == "text":
        return ids, text
    img, ok_i = _unit_rows(image)
    txt, ok_t = _unit_rows(text)
    both = np.concatenate([img, txt], axis=1) / np.float32(np.sqrt(2.0))
    both[~(ok_i & ok_t)] = np.nan          # a sample needs both parts
    return ids, both


def resolve_embeddings(scores: pd.DataFrame, embeddings=None, use: str | None = None,
                       selector: str = "this selector") -> Embeddings:
    """The embeddings of every row of ``scores`` (see the module docstring for what ``embeddings`` may be)."""
    if use is not None and use not in USES:
        raise ValueError(f"use must be one of {', '.join(map(repr, USES))}, not {use!r}")
    if embeddings is None:
        from kit.scoreinfo import score_info

        folder = recorded_folder(scores)
        if folder is None:
            bare = score_info(scores, required=False) is None
            raise ValueError(how_to_make(selector) + (" (this table carries no score info to find a recorded "
                                                      "folder in: a table filtered, joined or copied from a score "
                                                      "table has none)" if bare else ""))
        embeddings = folder
    if isinstance(embeddings, (str, Path)):
        folder = Path(embeddings)
        kind = use or "both"
        ids, matrix = _load_folder(folder, kind, selector)
        aligned, have = _align(np.asarray(matrix, dtype=np.float32), ids, scores)
        unit, valid = _unit_rows(aligned)
        return Embeddings(unit, valid & have, str(folder), kind)
    if use is not None:
        raise ValueError("use= picks the image or text part of an embeddings folder; an array or DataFrame "
                         "is used as given")
    if isinstance(embeddings, pd.DataFrame):
        frame = embeddings.apply(pd.to_numeric, errors="raise")
        aligned, have = _align(frame.to_numpy(dtype=np.float32), frame.index, scores)
        unit, valid = _unit_rows(aligned)
        return Embeddings(unit, valid & have, "dataframe", "given")
    matrix = np.asarray(embeddings)
    if matrix.ndim != 2 or matrix.shape[0] != len(scores):
        raise ValueError(f"{selector}: an embeddings array must have one row per row of the score table "
                         f"({len(scores)}, d), in its order; got shape {matrix.shape}. Pass a DataFrame indexed "
                         f"by sample id to align by id")
    unit, valid = _unit_rows(matrix)
    return Embeddings(unit, valid, "array", "given")
