"""Loading and validating a pool of LLaVA-style samples.

``load_pool(path)`` reads LLaVA JSON (a list of records), JSONL (one record per line) or parquet,
checks every record and returns a :class:`Pool`: ``.table`` holds the accepted samples (indexed by
sample id), ``.report`` one row per rejected record with the reason. Nothing is dropped silently:
``pool.n_input == len(pool.table) + len(pool.report)`` always holds. With ``strict=True`` the first
problem raises :class:`PoolValidationError` naming the sample.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

# Every reason a record can be rejected for, with what it means.
REJECTION_REASONS = {
    "malformed_json": "the record is not valid JSON",
    "not_an_object": "the record is not a JSON object",
    "missing_id": "the record has no id",
    "duplicate_id": "the id was already used by an earlier record (the first one is kept)",
    "no_image_field": "the record names no image (text-only samples are not supported)",
    "missing_image": "the image file does not exist",
    "unreadable_image": "the image file cannot be decoded",
    "empty_conversation": "the conversation has no turns",
    "malformed_conversation": "a turn is not {'from': 'human'|'gpt', 'value': str}",
    "not_alternating": "turns do not alternate human/gpt starting with human and ending with gpt",
}

TABLE_COLUMNS = ["image", "image_path", "source", "conversations", "n_turns", "text_chars",
                 "image_mode", "status", "record"]
REPORT_COLUMNS = ["id", "line", "reason", "detail"]


class PoolFormatError(ValueError):
    """The pool file as a whole cannot be read (unknown format, broken array structure)."""


class PoolValidationError(ValueError):
    """Raised in strict mode on the first rejected record."""

    def __init__(self, sample_id, line, reason, detail):
        self.sample_id, self.line, self.reason, self.detail = sample_id, line, reason, detail
        who = f"sample {sample_id!r}" if sample_id is not None else "record"
        super().__init__(f"{who} (line {line}): {reason}: {detail}")


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str):
        assert reason in REJECTION_REASONS, reason
        self.reason, self.detail = reason, detail


@dataclass
class Pool:
    """Accepted samples (``table``, indexed by id) and rejected records (``report``)."""

    table: pd.DataFrame
    report: pd.DataFrame
    path: Path | None = None
    image_root: Path | None = None
    n_input: int = field(default=0)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def ids(self) -> list[str]:
        return list(self.table.index)

    def summary(self) -> str:
        """One line: how many records were read, accepted, converted and rejected (and why)."""
        n_conv = int(self.table["status"].str.startswith("converted").sum()) if len(self.table) else 0
        text = f"{self.n_input} records read: {len(self.table)} accepted"
        if n_conv:
            text += f" ({n_conv} images converted to RGB)"
        text += f", {len(self.report)} rejected"
        if len(self.report):
            counts = self.report["reason"].value_counts()
            text += " (" + ", ".join(f"{r} {n}" for r, n in counts.items()) + ")"
        return text

    def check_ids(self, ids: Iterable[str], what: str = "ids", unique: bool = True) -> list[str]:
        """``ids`` as a list; raises ``KeyError`` naming ids not in the pool, ``ValueError`` on a repeat.

        The one check every function that takes ids of a pool runs (subsets, exports, curricula, the teacher).
        """
        ids = list(ids)
        missing = [i for i in ids if i not in self.table.index]
        if missing:
            raise KeyError(f"{what}: {len(missing)} ids are not in the pool, e.g. {missing[:3]}")
        if unique and len(set(ids)) != len(ids):
            seen: set = set()
            dup = next(i for i in ids if i in seen or seen.add(i))
            raise ValueError(f"{what} contain duplicates, e.g. {dup!r}")
        return ids

    def subset(self, ids: Iterable[str]) -> "Pool":
        """A pool holding only ``ids`` (in that order); the report is kept as it was."""
        ids = self.check_ids(ids)
        return Pool(self.table.loc[ids], self.report, self.path, self.image_root, len(ids))

    def records(self, ids: Iterable[str] | None = None) -> list[dict]:
        """The original records (as read from the file) of ``ids``, in that order."""
        table = self.table if ids is None else self.table.loc[list(ids)]
        return list(table["record"])

    def image(self, sample_id: str):
        """Decode one sample's image as RGB (PIL)."""
        return decode_image(self.table.at[sample_id, "image_path"])

    def iter_images(self, ids: Iterable[str] | None = None, workers: int | None = None,
                    chunk: int = 64) -> Iterator[tuple[str, Any, str | None]]:
        """Yield ``(id, image, error)`` in order, decoding ahead in a thread pool.

        ``image`` is an RGB PIL image, or ``None`` with ``error`` set if the file can no longer be
        decoded (a scorer then gives that sample a status instead of dropping it).
        """
        ids = list(self.table.index if ids is None else ids)
        paths = self.table.loc[ids, "image_path"].tolist()
        workers = workers or min(8, (os.cpu_count() or 2) * 2)

        def load(p):
            try:
                return decode_image(p), None
            except Exception as exc:  # noqa: BLE001 - reported per sample
                return None, f"{type(exc).__name__}: {exc}"

        with ThreadPoolExecutor(workers) as ex:
            for start in range(0, len(ids), chunk):
                part = ids[start:start + chunk]
                for sid, (img, err) in zip(part, ex.map(load, paths[start:start + chunk])):
                    yield sid, img, err


def decode_image(path):
    """Open an image file fully and return it as RGB."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return im.convert("RGB") if im.mode != "RGB" else im.copy()


# --------------------------------------------------------------------------- reading records

def _split_json_array(text: str) -> list[tuple[int, str]]:
    """Split a top-level JSON array into (line, element text) chunks without parsing elements.

    Used to salvage the good records of an array in which some record is malformed: the scan
    tracks strings and bracket depth only, so a broken record is confined to its own chunk.
    """
    i, n = 0, len(text)
    while i < n and text[i].isspace():
        i += 1
    if i >= n or text[i] != "[":
        raise PoolFormatError("a .json pool must hold a JSON array of records")
    chunks: list[tuple[int, str]] = []
    depth, in_str, esc = 0, False, False
    start = i + 1
    line = text.count("\n", 0, start) + 1
    for j in range(i + 1, n):
        ch = text[j]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"' or ch == "\n":  # a newline ends a runaway string: JSON strings have none
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            if depth == 0 and ch == "]":
                chunks.append((line, text[start:j]))
                rest = text[j + 1:].strip()
                if rest:
                    raise PoolFormatError("unexpected text after the closing ']' of the pool array")
                return [(ln, c) for ln, c in chunks if c.strip()]
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            chunks.append((line, text[start:j]))
            start = j + 1
            line = text.count("\n", 0, start) + 1
    raise PoolFormatError("the pool array is never closed (missing ']')")


def _chunk_line(line: int, chunk: str) -> int:
    """Line of the first non-blank character of a chunk that starts on ``line``."""
    lead = len(chunk) - len(chunk.lstrip())
    return line + chunk[:lead].count("\n")


def _read_records(path: Path) -> list[tuple[int, Any]]:
    """Return ``(line, record)`` pairs; a record that failed to parse is a ``_Rejected``."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        df = pd.read_parquet(path)
        return [(k + 1, _from_arrow(rec)) for k, rec in enumerate(df.to_dict("records"))]
    text = path.read_text(encoding="utf-8")
    out: list[tuple[int, Any]] = []
    if suffix == ".jsonl":
        for k, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                out.append((k, json.loads(raw)))
            except json.JSONDecodeError as exc:
                out.append((k, _Rejected("malformed_json", exc.msg)))
        return out
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as whole:
            try:
                chunks = _split_json_array(text)
            except PoolFormatError as exc:
                raise PoolFormatError(f"{path}: malformed JSON at line {whole.lineno} column "
                                      f"{whole.colno} ({whole.msg}); {exc}") from None
            for line, chunk in chunks:
                ln = _chunk_line(line, chunk)
                try:
                    out.append((ln, json.loads(chunk)))
                except json.JSONDecodeError as exc:
                    out.append((ln, _Rejected("malformed_json", exc.msg)))
            return out
        if not isinstance(data, list):
            raise PoolFormatError(f"{path}: a .json pool must hold a JSON array of records")
        # element start lines, for the report
        lines = [_chunk_line(ln, c) for ln, c in _split_json_array(text)] if data else []
        if len(lines) != len(data):
            lines = list(range(1, len(data) + 1))
        return list(zip(lines, data))
    raise PoolFormatError(f"{path}: unknown pool format {suffix!r} (use .json, .jsonl or .parquet)")


def _from_arrow(value):
    """Turn numpy arrays from parquet back into plain lists (recursively)."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return [_from_arrow(v) for v in value.tolist()]
    if isinstance(value, list):
        return [_from_arrow(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_arrow(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- checking records

def _check_conversation(conv) -> None:
    if not isinstance(conv, list) or len(conv) == 0:
        raise _Rejected("empty_conversation", "the 'conversations' list is missing or empty")
    for k, turn in enumerate(conv):
        if not isinstance(turn, dict) or turn.get("from") not in ("human", "gpt") \
                or not isinstance(turn.get("value"), str):
            raise _Rejected("malformed_conversation", f"turn {k} is {str(turn)[:80]!r}")
    roles = [t["from"] for t in conv]
    expected = ["human", "gpt"] * (len(roles) // 2 + 1)
    if roles != expected[:len(roles)] or roles[-1] != "gpt":
        raise _Rejected("not_alternating", "roles are " + "/".join(roles[:8]) + ("/…" if len(roles) > 8 else ""))


def _check_image(path: Path) -> str:
    """Return the image mode; raise _Rejected if the file is missing or cannot be read."""
    from PIL import Image

    if not path.is_file():
        raise _Rejected("missing_image", f"{path} does not exist")
    try:
        with Image.open(path) as im:
            mode = im.mode
            im.verify()
        return mode
    except Exception as exc:  # noqa: BLE001 - any decoder error means unreadable
        raise _Rejected("unreadable_image", f"{path}: {type(exc).__name__}: {exc}") from None


def _source_of(rec: dict) -> str:
    src = rec.get("source")
    if isinstance(src, str) and src:
        return src
    parts = Path(str(rec.get("image", ""))).parts
    return parts[0] if len(parts) > 1 else "unknown"


def load_pool(path, images=None, strict: bool = False, check_images: bool = True,
              workers: int | None = None) -> Pool:
    """Load a LLaVA JSON / JSONL / parquet pool and validate every record.

    ``images`` is the image root (default: the ``images/`` folder beside the pool file).
    ``check_images`` opens every image header in parallel (missing / unreadable / mode); images
    are only decoded later, when a scorer asks for them.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no pool file at {path}")
    root = Path(images) if images is not None else path.parent / "images"
    raw = _read_records(path)

    accepted: list[dict] = []
    rejected: list[dict] = []
    seen: dict[str, int] = {}

    def reject(sid, line, rej: _Rejected):
        if strict:
            raise PoolValidationError(sid, line, rej.reason, rej.detail)
        rejected.append({"id": sid, "line": line, "reason": rej.reason, "detail": rej.detail})

    staged: list[tuple[int, str, dict, Path]] = []
    for line, rec in raw:
        sid = None
        try:
            if isinstance(rec, _Rejected):
                raise rec
            if not isinstance(rec, dict):
                raise _Rejected("not_an_object", f"found {type(rec).__name__}")
            sid = rec.get("id")
            if sid is None or (isinstance(sid, str) and not sid.strip()):
                raise _Rejected("missing_id", "no 'id' field")
            sid = str(sid)
            if sid in seen:
                raise _Rejected("duplicate_id", f"first used on line {seen[sid]}")
            seen[sid] = line
            _check_conversation(rec.get("conversations"))
            if not rec.get("image"):
                raise _Rejected("no_image_field", "no 'image' field")
            img = Path(str(rec["image"]))
            staged.append((line, sid, rec, img if img.is_absolute() else root / img))
        except _Rejected as rej:
            reject(sid, line, rej)

    modes: list[Any] = [None] * len(staged)
    if check_images and staged:
        def check(item):
            try:
                return _check_image(item[3])
            except _Rejected as rej:
                return rej

        with ThreadPoolExecutor(workers or min(8, (os.cpu_count() or 2) * 2)) as ex:
            modes = list(ex.map(check, staged))

    for (line, sid, rec, img_path), mode in zip(staged, modes):
        if isinstance(mode, _Rejected):
            reject(sid, line, mode)
            continue
        conv = rec["conversations"]
        accepted.append({
            "id": sid,
            "image": str(rec["image"]),
            "image_path": str(img_path),
            "source": _source_of(rec),
            "conversations": conv,
            "n_turns": len(conv),
            "text_chars": sum(len(t["value"]) for t in conv),
            "image_mode": mode,
            "status": "ok" if mode in (None, "RGB") else f"converted from {mode}",
            "record": rec,
            "_line": line,
        })

    table = pd.DataFrame(accepted, columns=["id", *TABLE_COLUMNS, "_line"])
    table = table.sort_values("_line", kind="stable").drop(columns="_line").set_index("id")
    report = pd.DataFrame(rejected, columns=REPORT_COLUMNS).sort_values("line", kind="stable")
    report = report.reset_index(drop=True)
    pool = Pool(table, report, path, root, n_input=len(raw))
    assert pool.n_input == len(pool.table) + len(pool.report)
    return pool
