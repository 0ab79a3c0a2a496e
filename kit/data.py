"""Loading and validating a pool of LLaVA-style samples.

``load_pool(path)`` reads LLaVA JSON (a list of records), JSONL (one record per line) or parquet,
checks every record and returns a :class:`Pool`: ``.table`` holds the accepted samples (indexed by
sample id), ``.report`` one row per rejected record with the reason, ``.notes`` what the loader changed
in accepted records (an inserted ``<image>`` token). Nothing is dropped silently:
``pool.n_input == len(pool.table) + len(pool.report)`` always holds. With ``strict=True`` the first
problem raises :class:`PoolValidationError` naming the sample. :func:`iter_pool` does the same work
in chunks of accepted samples, so a pool larger than memory can be validated and scored as a stream.

The pool is untrusted input. Image paths are resolved through the filesystem, symbolic links first, as
the operating system opens them, and cannot leave the image folder (``..``, absolute paths and symbolic
links that leave it are rejected, each with its own reason; ``allow_absolute_paths`` and
``allow_symlinks_out`` relax that for pools whose images live elsewhere); the table records the real path
of each file checked, and decoding checks again that it opens that file (:mod:`kit.images`). Bytes that
are not UTF-8 reject their own line; images are decoded fully while loading (``fast_image_check=True``
reads headers only), must be in an allowed format (:data:`kit.images.ALLOWED_FORMATS`: no EPS, PostScript
or PDF) and with more than ``max_image_pixels`` pixels (decompression bombs) are rejected before they are
decoded. The ``<image>`` tokens must match the images: a record with images and no token gets one per
image (as LLaVA-style loaders do, and said in ``pool.notes``); several for one image, or one in an answer,
reject the record. Text-only and
multi-image samples (LLaVA-OneVision has both) are rejected with their own reasons unless
``text_only=True`` / ``multi_image=True`` keep them; each scorer then says per sample what it did with
them (``docs/scale.md``). A record whose checking fails unexpectedly is reported (``record_error``), never
allowed to abort the load.
"""
from __future__ import annotations

import json
import os
import reprlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from kit.conversation import IMAGE_TOKEN, count_image_tokens, insert_image_tokens
from kit.images import (MAX_IMAGE_PIXELS, ImageFormatNotAllowed, ImageTooLarge, NotAFile, decode_image,
                        inspect_image)
from kit.records import PoolFormatError, Unreadable, iter_records

# Every reason a record can be rejected for, with what it means.
REJECTION_REASONS = {
    "malformed_json": "the record is not valid JSON (or is nested deeper than the parser allows)",
    "not_utf8": "the record's line holds bytes that are not UTF-8 (or its text an unpaired surrogate escape)",
    "not_an_object": "the record is not a JSON object",
    "missing_id": "the record has no id",
    "invalid_id": "the id is not a string or an integer (e.g. a list, an object, a float or a bool)",
    "duplicate_id": "the id was already used by an earlier record (the first one is kept)",
    "no_image_field": "the record names no image: a text-only sample (load_pool(text_only=True) keeps them)",
    "multiple_images": "the record names several images (load_pool(multi_image=True) keeps them)",
    "invalid_image_field": "'image' is not a path or a list of paths (a number, an object, a NUL byte, ...)",
    "path_escapes_root": "the image path climbs out of the image folder with '..'",
    "absolute_path": "the image path is absolute and outside the image folder "
                     "(load_pool(allow_absolute_paths=True) accepts it)",
    "symlink_escapes_root": "the image path, resolved through the filesystem as it is opened (symbolic links "
                            "first, then '..'), leaves the image folder (load_pool(allow_symlinks_out=True) "
                            "accepts it)",
    "unopenable_path": "the image path cannot be opened as it is written (a trailing '/', or '..' after a folder "
                       "that does not exist), though the file it seems to name exists",
    "missing_image": "the image file does not exist (or the path names a folder, a device or a pipe)",
    "image_format_not_allowed": "the file is not in an allowed image format (PNG, JPEG, GIF, WebP, BMP, TIFF, "
                                "PPM): EPS, PostScript and PDF are refused whatever the file is named",
    "unreadable_image": "the image file cannot be decoded (empty, truncated, broken image data, or not an image)",
    "image_too_large": "the image has more pixels than max_image_pixels (a guard against decompression bombs)",
    "empty_conversation": "the conversation has no turns",
    "malformed_conversation": "'conversations' is not a list of {'from': 'human'|'gpt', 'value': str} turns",
    "not_alternating": "turns do not alternate human/gpt starting with human and ending with gpt",
    "image_token_in_answer": "an answer (a gpt turn) holds an '<image>' token",
    "image_token_count": "the human turns hold another number of '<image>' tokens than the record has images "
                         "(several for one image, or any in a text-only sample); a record with images and no "
                         "token at all gets them inserted instead (pool.notes says so)",
    "record_error": "checking the record raised an unexpected error (named in the detail); the record is "
                    "reported and the rest of the pool still loads",
}

TABLE_COLUMNS = ["image", "image_path", "n_images", "image_paths", "source", "conversations", "n_turns",
                 "text_chars", "image_mode", "status", "record"]
REPORT_COLUMNS = ["id", "line", "reason", "detail"]
CHUNK = 4096  # records validated at a time (image headers are checked in parallel within a chunk)

_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlevel, _short.maxlist, _short.maxdict = 60, 60, 3, 4, 4


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


def image_problem(n_images) -> str | None:
    """Why a sample has no single image to read (``None`` when it has exactly one)."""
    if n_images is None or n_images == 1:
        return None
    if n_images == 0:
        return "text-only sample: it has no image"
    return f"multi-image sample: {int(n_images)} images; this scorer reads one image per sample"


@dataclass
class Pool:
    """Accepted samples (``table``, indexed by id), rejected records (``report``) and what the loader changed
    in accepted records (``notes``, plain lines)."""

    table: pd.DataFrame
    report: pd.DataFrame
    path: Path | None = None
    image_root: Path | None = None
    n_input: int = field(default=0)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def ids(self) -> list[str]:
        return list(self.table.index)

    def summary(self) -> str:
        """One line: how many records were read, accepted, converted and rejected (and why)."""
        return summarise(self.n_input, self.table, self.report, notes=self.notes)

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
        return Pool(self.table.loc[ids], self.report, self.path, self.image_root, len(ids), list(self.notes))

    def records(self, ids: Iterable[str] | None = None) -> list[dict]:
        """The original records (as read from the file, with the ``<image>`` tokens the loader inserted) of
        ``ids``, in that order."""
        table = self.table if ids is None else self.table.loc[list(ids)]
        return list(table["record"])

    def image(self, sample_id: str):
        """Decode one sample's image as RGB (PIL); raises ``ValueError`` for a text-only or multi-image sample.

        The file must still be the one the loader checked (``kit.images.decode_image(pinned=True)``).
        """
        problem = image_problem(self.table.at[sample_id, "n_images"]) if "n_images" in self.table else None
        if problem:
            raise ValueError(f"sample {sample_id!r}: {problem}")
        return decode_image(self.table.at[sample_id, "image_path"], pinned=True)

    def iter_images(self, ids: Iterable[str] | None = None, workers: int | None = None,
                    chunk: int = 64) -> Iterator[tuple[str, Any, str | None]]:
        """Yield ``(id, image, error)`` in order, decoding ahead in a thread pool.

        ``image`` is an RGB PIL image, or ``None`` with ``error`` set if the file can no longer be
        decoded (or is no longer the file the loader checked: a symbolic link now), or the sample has no single
        image (text-only or multi-image): a scorer then gives that sample a status instead of dropping it.
        """
        ids = list(self.table.index if ids is None else ids)
        paths = self.table.loc[ids, "image_path"].tolist()
        counts = self.table.loc[ids, "n_images"].tolist() if "n_images" in self.table else [1] * len(ids)
        workers = workers or min(8, (os.cpu_count() or 2) * 2)

        def load(item):
            p, n = item
            problem = image_problem(n)
            if problem:
                return None, problem
            try:
                return decode_image(p, pinned=True), None
            except Exception as exc:  # noqa: BLE001 - reported per sample
                return None, f"{type(exc).__name__}: {exc}"

        with ThreadPoolExecutor(workers) as ex:
            for start in range(0, len(ids), chunk):
                part = ids[start:start + chunk]
                items = list(zip(paths[start:start + chunk], counts[start:start + chunk]))
                for sid, (img, err) in zip(part, ex.map(load, items)):
                    yield sid, img, err


def summarise(n_input: int, table, report: pd.DataFrame, n_accepted: int | None = None,
              notes: list[str] | None = None) -> str:
    """The one-line summary of a load: records read, accepted (images converted), rejected by reason, notes.

    ``table`` is the accepted table, or (with ``n_accepted``, for a stream) the number of converted images.
    """
    if n_accepted is None:
        n_accepted = len(table)
        n_conv = int(table["status"].str.startswith("converted").sum()) if len(table) else 0
    else:
        n_conv = int(table) if table is not None else 0  # a count, for a stream
    text = f"{n_input} records read: {n_accepted} accepted"
    if n_conv:
        text += f" ({n_conv} images converted to RGB)"
    text += f", {len(report)} rejected"
    if len(report):
        counts = report["reason"].value_counts()
        text += " (" + ", ".join(f"{r} {n}" for r, n in counts.items()) + ")"
    for note in notes or []:
        text += f"; {note}"
    return text


# --------------------------------------------------------------------------- checking records

def _check_conversation(conv) -> None:
    if conv is None or (isinstance(conv, list) and len(conv) == 0):
        raise _Rejected("empty_conversation", "the 'conversations' list is missing or empty")
    if not isinstance(conv, list):
        raise _Rejected("malformed_conversation", f"'conversations' is a {type(conv).__name__}, not a list")
    for k, turn in enumerate(conv):
        if not isinstance(turn, dict) or turn.get("from") not in ("human", "gpt") \
                or not isinstance(turn.get("value"), str):
            raise _Rejected("malformed_conversation", f"turn {k} is {_short.repr(turn)}")
    roles = [t["from"] for t in conv]
    expected = ["human", "gpt"] * (len(roles) // 2 + 1)
    if roles != expected[:len(roles)] or roles[-1] != "gpt":
        raise _Rejected("not_alternating", "roles are " + "/".join(roles[:8]) + ("/…" if len(roles) > 8 else ""))


def _check_unicode(texts: list[tuple[str, Any]]) -> None:
    """Text with an unpaired surrogate (a JSON escape such as \\ud800, or a file name whose bytes are not UTF-8)
    is not valid Unicode: nothing can write it. ``texts`` holds ``(where, text)`` pairs; non-strings are skipped."""
    for where, text in texts:
        if not isinstance(text, str):
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _Rejected("not_utf8", f"{where} holds an unpaired surrogate {text[exc.start]!r} "
                                        "(not valid Unicode)") from None


def _escape(text):
    """``text`` with what UTF-8 cannot hold (unpaired surrogates) written as backslash escapes, for the report."""
    if not isinstance(text, str):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _image_values(value) -> list[str]:
    """The image path(s) a record names (``[]`` for a text-only record)."""
    if value is None or value == "" or value == []:
        return []
    values = value if isinstance(value, list) else [value]
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise _Rejected("invalid_image_field", f"'image' is {_short.repr(value)}: give a path or a list of paths")
        if "\x00" in v:
            raise _Rejected("invalid_image_field", f"the image path {_short.repr(v)} holds a NUL byte")
    return values


def _check_image_tokens(conv: list, n_images: int) -> list | None:
    """``None`` when the ``<image>`` tokens match the images; the conversation with one token per image put at
    the start of the first human turn when it has none (as LLaVA-style loaders do); raises ``_Rejected`` for a
    token in an answer or another number of tokens."""
    in_answer = [k for k, t in enumerate(conv) if t["from"] == "gpt" and IMAGE_TOKEN in t["value"]]
    if in_answer:
        raise _Rejected("image_token_in_answer", f"turn {in_answer[0]} (an answer) holds {IMAGE_TOKEN!r}")
    n_tokens = count_image_tokens(conv)
    if n_tokens == n_images:
        return None
    if n_tokens == 0:
        return insert_image_tokens(conv, n_images)
    what = "a text-only sample" if n_images == 0 else f"{n_images} image" + ("s" if n_images > 1 else "")
    raise _Rejected("image_token_count", f"{n_tokens} {IMAGE_TOKEN!r} tokens in the human turns for {what}")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass
class _Target:
    """One image a record names: the path as the OS opens it, its real path, and whether it must stay inside."""

    value: str
    opened: str
    real: str
    confined: bool


@dataclass
class _Paths:
    """Where images may come from: the image folder, and what the caller allows beyond it."""

    root: Path
    allow_absolute: bool = False
    allow_symlinks_out: bool = False

    def __post_init__(self):
        self.root_abs = os.path.abspath(self.root)
        self.root_real = os.path.realpath(self.root)
        self._dirs: dict[str, str] = {}

    def realpath(self, full: str) -> str:
        """``os.path.realpath`` with the folders' real paths cached (one ``lstat`` per sample, not one per part).

        ``full`` is not normalised first: its folders are resolved through the filesystem (symbolic links before
        '..'), as the OS resolves them when it opens the path.
        """
        folder, base = os.path.split(full)
        if base in ("", ".", ".."):
            return os.path.realpath(full)
        real = self._dirs.get(folder)
        if real is None:
            if len(self._dirs) > 100_000:
                self._dirs.clear()
            real = self._dirs[folder] = os.path.realpath(folder)
        path = os.path.join(real, base)
        return os.path.realpath(path) if os.path.islink(path) else path

    def resolve(self, value: str) -> _Target:
        """Where ``value`` leads; raises ``_Rejected`` when it leaves the image folder, as text or on disk."""
        if os.path.isabs(value):
            confined = not self.allow_absolute
            if confined and not _inside(os.path.normpath(value), self.root_abs):
                raise _Rejected("absolute_path", f"{value} is outside the image folder {self.root}")
            opened = value
        else:
            confined = True
            opened = os.path.join(self.root_abs, value)  # not normalised: the OS resolves links before '..'
            if not _inside(os.path.normpath(opened), self.root_abs):
                raise _Rejected("path_escapes_root", f"{value!r} leaves the image folder {self.root}")
        target = _Target(value, opened, self.realpath(opened), confined)
        self.confirm(target, target.real)
        return target

    def confirm(self, target: _Target, real: str) -> None:
        """Raise ``_Rejected`` when ``real`` (the real path of ``target``) is outside the image folder."""
        if target.confined and not self.allow_symlinks_out and not _inside(real, self.root_real):
            raise _Rejected("symlink_escapes_root", f"{target.value!r} resolves to {real}, outside {self.root_real}")


def _open_failure(path: str, exc: OSError) -> _Rejected:
    """Why an image path could not be opened: missing, spelled so that the OS cannot open it, or not a file."""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        written = os.path.normpath(path)
        if os.path.isfile(written):  # the text names a file, but the OS cannot reach it as written
            return _Rejected("unopenable_path", f"{path} cannot be opened as it is written ({exc.strerror}), "
                                                f"though {written} exists: write the path without the '/' or '..'")
        return _Rejected("missing_image", f"{path} does not exist")
    return _Rejected("missing_image", f"{path} is not a file (a folder, a device or a pipe)")


def _check_image(path: str, max_pixels: int | None, decode: bool) -> tuple[str, str]:
    """``(mode, real path of the file opened)``; raises _Rejected if the file is missing, unopenable, of a format
    not allowed, too large or cannot be decoded (or, with ``decode=False``, its header cannot be read)."""
    try:
        return inspect_image(path, max_pixels, decode=decode)
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError, NotAFile)):
            raise _open_failure(path, exc) from None
        raise _Rejected("unreadable_image", f"{path}: {type(exc).__name__}: {exc}") from None
    except ImageFormatNotAllowed as exc:
        raise _Rejected("image_format_not_allowed", str(exc)) from None
    except ImageTooLarge as exc:
        raise _Rejected("image_too_large", f"{path}: {exc} (max_image_pixels={max_pixels})") from None
    except Exception as exc:  # noqa: BLE001 - any decoder error means unreadable
        raise _Rejected("unreadable_image", f"{path}: {type(exc).__name__}: {exc}") from None


def _unexpected(exc: Exception) -> _Rejected:
    return _Rejected("record_error", f"{type(exc).__name__}: {_short.repr(str(exc))}")


def _source_of(rec: dict, images: list[str]) -> str:
    src = rec.get("source")
    if isinstance(src, str) and src:
        return src
    parts = [p for p in images[0].replace("\\", "/").split("/") if p not in ("", ".")] if images else []
    return parts[0] if len(parts) > 1 else "unknown"


@dataclass
class _Staged:
    """A record whose structure passed: what its images and acceptance still need."""

    line: int
    sid: str
    rec: dict
    targets: list[_Target]


class _Validator:
    """Checks records chunk by chunk, remembering the ids it has seen (so duplicates are caught across chunks)."""

    def __init__(self, root: Path, *, strict=False, check_images=True, workers=None, text_only=False,
                 multi_image=False, allow_absolute_paths=False, allow_symlinks_out=False,
                 max_image_pixels: int | None = MAX_IMAGE_PIXELS, fast_image_check: bool = False):
        self.paths = _Paths(root, allow_absolute_paths, allow_symlinks_out)
        self.strict, self.check_images, self.decode = strict, check_images, not fast_image_check
        self.text_only, self.multi_image = text_only, multi_image
        self.max_pixels = max_image_pixels
        self.workers = workers or min(8, (os.cpu_count() or 2) * 2)
        self.seen: dict[str, int] = {}
        self.n_input = 0
        self.n_inserted = 0
        self.inserted_ids: list[str] = []  # the first few, for the note

    @property
    def notes(self) -> list[str]:
        """What the loader changed in accepted records, in plain lines."""
        if not self.n_inserted:
            return []
        more = ", ..." if self.n_inserted > len(self.inserted_ids) else ""
        samples = "sample that had" if self.n_inserted == 1 else "samples that had"
        return [f"{IMAGE_TOKEN} inserted in {self.n_inserted} {samples} none (one per image at the start of the "
                "first human turn, as LLaVA-style loaders do): " + ", ".join(repr(i) for i in self.inserted_ids) + more]

    def _reject(self, out: list, sid, line, rej: _Rejected):
        if self.strict:
            raise PoolValidationError(sid, line, rej.reason, _escape(rej.detail))
        out.append({"id": _escape(sid), "line": line, "reason": rej.reason, "detail": _escape(rej.detail)})

    def _stage(self, line, rec) -> tuple[Any, _Staged | _Rejected]:
        """Check one record's structure, ids and paths: ``(sid, staged record or rejection)``."""
        sid = None
        try:
            if isinstance(rec, Unreadable):
                sid = None if rec.id is None else str(rec.id)
                raise _Rejected(rec.reason, rec.detail)
            if not isinstance(rec, dict):
                raise _Rejected("not_an_object", f"found {type(rec).__name__}")
            raw_id = rec.get("id")
            if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
                raise _Rejected("missing_id", "no 'id' field")
            if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
                raise _Rejected("invalid_id", f"the id is {_short.repr(raw_id)} ({type(raw_id).__name__})")
            sid = str(raw_id)
            if sid in self.seen:
                raise _Rejected("duplicate_id", f"first used on line {self.seen[sid]}")
            self.seen[sid] = line
            _check_conversation(rec.get("conversations"))
            values = _image_values(rec.get("image"))
            if not values and not self.text_only:
                raise _Rejected("no_image_field", "no 'image' field (a text-only sample)")
            if len(values) > 1 and not self.multi_image:
                raise _Rejected("multiple_images", f"{len(values)} images: " + _short.repr(values))
            _check_unicode([("the id", sid), ("the source", rec.get("source")),
                            *(("the image path", v) for v in values),
                            *((f"turn {k}", t["value"]) for k, t in enumerate(rec["conversations"]))])
            return sid, _Staged(line, sid, rec, [self.paths.resolve(v) for v in values])
        except _Rejected as rej:
            return sid, rej
        except Exception as exc:  # noqa: BLE001 - one record never costs the pool
            return sid, _unexpected(exc)

    def _images(self, item: _Staged) -> tuple[str | None, list[str]] | _Rejected:
        """``(mode of the first image, real paths)`` of a staged record (mode ``None`` when images are not
        checked, or for a text-only sample), or its rejection."""
        try:
            modes, reals = [], []
            for target in item.targets:
                real = target.real
                if self.check_images:
                    mode, real = _check_image(target.opened, self.max_pixels, self.decode)
                    self.paths.confirm(target, real)  # the file opened, checked again
                    modes.append(mode)
                reals.append(real)
            return (modes[0] if modes else None), reals
        except _Rejected as rej:
            return rej
        except Exception as exc:  # noqa: BLE001
            return _unexpected(exc)

    def _check_all_images(self, staged: list[_Staged]) -> list:
        """:meth:`_images` of every staged record, in order (a few contiguous groups, one per thread)."""
        if not staged:
            return []
        if len(staged) <= 4:
            return [self._images(item) for item in staged]
        step = -(-len(staged) // self.workers)  # a future per image costs more than the check
        groups = [staged[i:i + step] for i in range(0, len(staged), step)]
        with ThreadPoolExecutor(len(groups)) as ex:
            return [r for group in ex.map(lambda g: [self._images(item) for item in g], groups) for r in group]

    def _accept(self, item: _Staged, mode, reals: list[str]) -> dict:
        """The table row of a record whose images passed; raises ``_Rejected`` for its ``<image>`` tokens or
        a real path that is not valid Unicode."""
        rec, values = item.rec, [t.value for t in item.targets]
        _check_unicode([("the image's real path", r) for r in reals])
        conv = _check_image_tokens(rec["conversations"], len(values))
        if conv is not None:
            rec = {**rec, "conversations": conv}
            self.n_inserted += 1
            if len(self.inserted_ids) < 5:
                self.inserted_ids.append(item.sid)
        conv = rec["conversations"]
        image = rec.get("image")
        status = "ok" if mode in (None, "RGB") else f"converted from {mode}"
        if not values:
            status = "text-only"
        elif len(values) > 1:
            status = f"{len(values)} images" + ("" if mode in (None, "RGB") else f" (first converted from {mode})")
        return {
            "id": item.sid,
            "image": image if isinstance(image, str) else json.dumps(image or [], ensure_ascii=False),
            "image_path": reals[0] if len(reals) == 1 else None,
            "n_images": len(reals),
            "image_paths": reals,
            "source": _source_of(rec, values),
            "conversations": conv,
            "n_turns": len(conv),
            "text_chars": sum(len(t["value"]) for t in conv),
            "image_mode": mode,
            "status": status,
            "record": rec,
            "_line": item.line,
        }

    def check(self, chunk: list[tuple[int, Any]]) -> tuple[list[dict], list[dict]]:
        """``(accepted rows, rejected rows)`` of a chunk of ``(line, record)`` pairs, in line order."""
        self.n_input += len(chunk)
        accepted: list[dict] = []
        rejected: list[dict] = []
        staged: list[_Staged] = []
        for line, rec in chunk:
            sid, got = self._stage(line, rec)
            if isinstance(got, _Rejected):
                self._reject(rejected, sid, line, got)
            else:
                staged.append(got)
        for item, found in zip(staged, self._check_all_images(staged)):
            try:
                if isinstance(found, _Rejected):
                    raise found
                accepted.append(self._accept(item, *found))
            except _Rejected as rej:
                self._reject(rejected, item.sid, item.line, rej)
            except Exception as exc:  # noqa: BLE001 - one record never costs the pool
                self._reject(rejected, item.sid, item.line, _unexpected(exc))
        return accepted, rejected


def _table(accepted: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(accepted, columns=["id", *TABLE_COLUMNS, "_line"])
    table["n_images"] = table["n_images"].astype("int64")
    return table.drop(columns="_line").set_index("id")


def _report(rejected: list[dict]) -> pd.DataFrame:
    report = pd.DataFrame(rejected, columns=REPORT_COLUMNS).sort_values("line", kind="stable")
    return report.reset_index(drop=True)


def _chunks(records: Iterator, size: int) -> Iterator[list]:
    chunk: list = []
    for item in records:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _setup(path, images):
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a folder; give the pool file (.json, .jsonl or .parquet)")
    if not path.is_file():
        raise FileNotFoundError(f"no pool file at {path}")
    root = Path(images) if images is not None else path.parent / "images"
    return path, root


def load_pool(path, images=None, strict: bool = False, check_images: bool = True,
              workers: int | None = None, *, text_only: bool = False, multi_image: bool = False,
              allow_absolute_paths: bool = False, allow_symlinks_out: bool = False,
              max_image_pixels: int | None = MAX_IMAGE_PIXELS, fast_image_check: bool = False) -> Pool:
    """Load a LLaVA JSON / JSONL / parquet pool and validate every record.

    ``images`` is the image root (default: the ``images/`` folder beside the pool file); image paths
    must stay inside it unless ``allow_absolute_paths`` (absolute paths anywhere) or
    ``allow_symlinks_out`` (symbolic links that leave it); paths are resolved as the OS opens them (symbolic
    links before '..'). ``check_images`` opens and decodes every image in parallel (missing / not openable
    as written / format not allowed / too many pixels / broken data / mode); ``fast_image_check=True`` reads
    the headers only (Pillow's ``verify()``: faster, but a truncated JPEG or a PNG with broken image data
    passes, and fails later when a scorer decodes it); ``check_images=False`` opens no image at all.
    ``text_only`` and ``multi_image`` keep samples with no image or several (rejected by default). The file is read as a stream (see :mod:`kit.records`); the accepted table
    is held in memory (use :func:`iter_pool` for a pool that does not fit).
    """
    path, root = _setup(path, images)
    v = _Validator(root, strict=strict, check_images=check_images, workers=workers, text_only=text_only,
                   multi_image=multi_image, allow_absolute_paths=allow_absolute_paths,
                   allow_symlinks_out=allow_symlinks_out, max_image_pixels=max_image_pixels,
                   fast_image_check=fast_image_check)
    accepted: list[dict] = []
    rejected: list[dict] = []
    for chunk in _chunks(iter_records(path), CHUNK):
        a, r = v.check(chunk)
        accepted += a
        rejected += r
    pool = Pool(_table(accepted), _report(rejected), path, root, n_input=v.n_input, notes=v.notes)
    assert pool.n_input == len(pool.table) + len(pool.report)
    return pool


class PoolStream:
    """A pool read and validated in chunks: iterate for :class:`Pool` chunks of up to ``chunk_size`` samples.

    Each chunk's ``report`` holds the records rejected since the previous chunk. After the iteration,
    ``n_input``, ``n_accepted``, ``report`` (every rejected record) and ``notes`` cover the whole file, and
    ``summary()`` says it in a line. Only the ids seen so far (to catch duplicates) and the rejections
    are kept between chunks, so memory does not grow with the pool beyond those.
    """

    def __init__(self, path, chunk_size: int = CHUNK, images=None, **options):
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.path, self.image_root = _setup(path, images)
        self.chunk_size, self.options = int(chunk_size), options
        self.n_input = self.n_accepted = self.n_converted = 0
        self._rejected: list[dict] = []
        self.notes: list[str] = []
        self.finished = False

    @property
    def report(self) -> pd.DataFrame:
        return _report(self._rejected)

    def summary(self) -> str:
        return summarise(self.n_input, self.n_converted, self.report, n_accepted=self.n_accepted, notes=self.notes)

    def __iter__(self) -> Iterator[Pool]:
        v = _Validator(self.image_root, **self.options)
        pending: list[dict] = []
        pending_rejected: list[dict] = []
        for chunk in _chunks(iter_records(self.path), min(self.chunk_size, CHUNK)):
            a, r = v.check(chunk)
            self.n_input, self.notes = v.n_input, v.notes
            self._rejected += r
            pending += a
            pending_rejected += r
            self.n_converted += sum(1 for row in a if row["status"].startswith("converted"))
            while len(pending) >= self.chunk_size:
                part, pending = pending[:self.chunk_size], pending[self.chunk_size:]
                self.n_accepted += len(part)
                yield Pool(_table(part), _report(pending_rejected), self.path, self.image_root,
                           len(part) + len(pending_rejected))
                pending_rejected = []
        self.n_input, self.notes = v.n_input, v.notes
        if pending or pending_rejected:
            self.n_accepted += len(pending)
            yield Pool(_table(pending), _report(pending_rejected), self.path, self.image_root,
                       len(pending) + len(pending_rejected))
        self.finished = True
        assert self.n_input == self.n_accepted + len(self._rejected)


def iter_pool(path, chunk_size: int = CHUNK, images=None, **options) -> PoolStream:
    """Read and validate a pool in chunks of ``chunk_size`` accepted samples (a :class:`PoolStream`).

    Takes the options of :func:`load_pool`. The chunks, concatenated, hold exactly the table
    ``load_pool`` would return, in the same order.
    """
    return PoolStream(path, chunk_size, images, **options)


__all__ = ["Pool", "PoolStream", "PoolFormatError", "PoolValidationError", "REJECTION_REASONS", "MAX_IMAGE_PIXELS",
           "load_pool", "iter_pool", "decode_image", "image_problem", "ImageTooLarge"]
