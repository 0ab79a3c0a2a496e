"""Reading the records of a pool file one at a time: JSONL, a JSON array, or parquet.

:func:`iter_records` yields ``(line, record)`` pairs without holding the file in memory: JSONL record by
record, a JSON array element by element (an incremental parser over 1 MiB blocks), parquet by record
batch. A record that cannot be read is yielded as a :class:`Unreadable` (with its reason and line) and
the records after it still load:

- bytes that are not UTF-8 reject their line (JSONL) or their record (JSON) as ``not_utf8``;
- a line or array element that is not JSON (including JSON nested deeper than the parser allows, or an
  integer too long to convert) is ``malformed_json``.

JSONL records are counted as records: every line ending ends a line (``\n``, ``\r\n`` and a lone ``\r``),
and several JSON values written on one line are several records (text after them that is not JSON is one
more, malformed, record), all reported under that line's number.

Only a file whose structure is broken as a whole raises :class:`PoolFormatError`: an unknown suffix, a
``.json`` file that is not an array, an array that is never closed (a truncated file), text after the
closing ``]``, an unreadable parquet file.
"""
from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import Any, Iterator

BLOCK = 1 << 20  # characters read at a time from a JSON array
PARQUET_BATCH = 4096
_BAD_BYTE = re.compile("[\udc80-\udcff]")  # undecodable bytes under errors="surrogateescape"
_WS = " \t\r\n"


class PoolFormatError(ValueError):
    """The pool file as a whole cannot be read (unknown format, broken array structure)."""


class Unreadable:
    """A record that could not be read: ``reason`` (a key of ``kit.data.REJECTION_REASONS``) and ``detail``."""

    __slots__ = ("reason", "detail", "id")

    def __init__(self, reason: str, detail: str, id=None):
        self.reason, self.detail, self.id = reason, detail, id

    def __repr__(self) -> str:
        return f"Unreadable({self.reason!r}, {self.detail!r})"


def _not_json(exc: Exception) -> Unreadable:
    if isinstance(exc, json.JSONDecodeError):
        return Unreadable("malformed_json", f"{exc.msg} (column {exc.colno})")
    if isinstance(exc, RecursionError):
        return Unreadable("malformed_json", "nested deeper than the JSON parser allows")
    return Unreadable("malformed_json", str(exc)[:200])  # e.g. an integer with more digits than Python converts


def parse_json(text: str) -> Any:
    """``json.loads`` that returns an :class:`Unreadable` instead of raising."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        return _not_json(exc)


_DECODER = json.JSONDecoder()


def parse_line(text: str) -> list:
    """The records of one JSONL line: one per JSON value on it (usually one), then an :class:`Unreadable` for
    text after them that is not JSON. A blank line holds none."""
    out: list = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WS:
            pos += 1
        if pos >= end:
            return out
        try:
            obj, pos = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            out.append(_not_json(exc))
            return out
        out.append(obj)


def _readable_id(text: str):
    """The id of a record whose text holds undecodable bytes, when it parses anyway (for the report)."""
    try:
        rec = json.loads(text)
    except (ValueError, RecursionError):
        return None
    sid = rec.get("id") if isinstance(rec, dict) else None
    return sid if isinstance(sid, (str, int)) and not isinstance(sid, bool) and not _BAD_BYTE.search(str(sid)) \
        else None


def _bad_bytes(raw: bytes, exc: UnicodeDecodeError) -> Unreadable:
    bad = raw[exc.start:exc.end]
    return Unreadable("not_utf8", f"byte {bad[:4]!r} at column {exc.start + 1} is not UTF-8",
                      _readable_id(raw.decode("utf-8", "surrogateescape")))


def iter_jsonl(path) -> Iterator[tuple[int, Any]]:
    """``(line, record)`` for each record of a JSONL file (line numbers count blank lines; every line ending
    counts, a lone ``\r`` included; several records on one line share its number)."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline=None) as f:
        for k, text in enumerate(f, start=1):
            if _BAD_BYTE.search(text):
                raw = text.encode("utf-8", "surrogateescape")
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield k, _bad_bytes(raw, exc)
                    continue
            for record in parse_line(text):
                yield k, record


class _Text:
    """A text buffer over a binary file, decoded incrementally (undecodable bytes kept as surrogates)."""

    def __init__(self, f, block: int):
        self.f, self.block = f, block
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.buf, self.pos, self.eof = "", 0, False
        self.line, self.line_pos = 1, 0  # line number at buf[line_pos]
        self.first = True

    def more(self, at_least: int = 0) -> bool:
        """Append at least one block (more when asked); False at the end of the file."""
        if self.eof:
            return False
        # drop what was consumed, keeping the line count right
        if self.pos:
            self.line += self.buf.count("\n", self.line_pos, self.pos)
            self.buf, self.line_pos, self.pos = self.buf[self.pos:], 0, 0
        raw = self.f.read(max(self.block, at_least))
        text = self.decoder.decode(raw, final=not raw)
        if self.first:
            text, self.first = text.lstrip("\ufeff"), False
        if not raw:
            self.eof = True
        self.buf += text
        return bool(raw) or bool(text)

    def line_at(self, index: int) -> int:
        self.line += self.buf.count("\n", self.line_pos, index)
        self.line_pos = index
        return self.line

    def skip_ws(self) -> str:
        """Move past white space; the next character, or '' at the end of the file."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""


def _element_end(buf: str, start: int) -> int | None:
    """Index of the ',' or ']' that ends the array element starting at ``start`` (None: not in ``buf`` yet).

    Tracks strings and bracket depth only, so a broken element is confined to its own span. A newline
    ends a runaway string (JSON strings hold none), so one unterminated string cannot swallow the file.
    """
    depth, in_str, esc = 0, False, False
    for j in range(start, len(buf)):
        ch = buf[j]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"' or ch == "\n":
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            if depth == 0 and ch == "]":
                return j
            depth = max(depth - 1, 0)  # a stray '}' at depth 0 ends nothing
        elif ch == "," and depth == 0:
            return j
    return None


def iter_json_array(path, block: int = BLOCK) -> Iterator[tuple[int, Any]]:
    """``(line, record)`` for each element of a top-level JSON array, parsed incrementally."""
    decoder = json.JSONDecoder()
    path = Path(path)
    with open(path, "rb") as f:
        t = _Text(f, block)
        first = t.skip_ws()
        if first == "":
            raise PoolFormatError(f"{path}: the file is empty; a .json pool holds a JSON array of records")
        if first != "[":
            raise PoolFormatError(f"{path}: a .json pool must hold a JSON array of records "
                                  f"(it starts with {first!r})")
        t.pos += 1
        while True:
            ch = t.skip_ws()
            if ch == "":
                raise PoolFormatError(f"{path}: the pool array is never closed (missing ']' at the end of the file)")
            if ch == "]":
                t.pos += 1
                rest = t.skip_ws()
                if rest:
                    raise PoolFormatError(f"{path}: unexpected text after the closing ']' of the pool array "
                                          f"(line {t.line_at(t.pos)})")
                return
            if ch == ",":  # an empty element ("[a,,b]" or a trailing comma) holds no record
                t.pos += 1
                continue
            start = t.pos
            line = t.line_at(start)
            item, end = _next_element(t, decoder, start, path, line)
            yield line, item
            t.pos = end
            ch = t.skip_ws()
            if ch == ",":
                t.pos += 1
            elif ch != "]":
                if ch == "":
                    raise PoolFormatError(f"{path}: the pool array is never closed (missing ']' after the "
                                          f"record at line {line})")
                # text after a complete record without a comma: report that span as its own record
                junk_start = t.pos
                end = _span_end(t, junk_start, path, t.line_at(junk_start))
                yield t.line_at(junk_start), Unreadable("malformed_json", "expected ',' or ']' between records")
                t.pos = end


def _span_end(t: _Text, start: int, path, line: int) -> int:
    """End (exclusive, at the ',' or ']') of the element starting at ``start``, reading more as needed."""
    while True:
        end = _element_end(t.buf, start)
        if end is not None:
            return end
        if t.eof:
            raise PoolFormatError(f"{path}: the record that starts at line {line} is never closed, so the pool "
                                  "array is not either (a truncated record or file?)")
        offset = t.pos
        t.more(at_least=len(t.buf))
        start -= offset - t.pos  # the buffer was trimmed by `offset` characters


def _next_element(t: _Text, decoder, start: int, path, line: int) -> tuple[Any, int]:
    """Parse the element at ``start``: ``(record or Unreadable, index just past it)``."""
    while True:
        try:
            obj, end = decoder.raw_decode(t.buf, start)
            if end < len(t.buf) or t.eof:
                chunk = t.buf[start:end]
                bad = _BAD_BYTE.search(chunk)
                if bad:
                    return _bad_json_bytes(chunk, bad, line), end
                return obj, end
        except (json.JSONDecodeError, RecursionError, ValueError):
            end = _element_end(t.buf, start)
            if end is not None:
                chunk = t.buf[start:end]
                bad = _BAD_BYTE.search(chunk)
                if bad:
                    return _bad_json_bytes(chunk, bad, line), end
                got = parse_json(chunk)
                return got, end
        # the element is not complete in the buffer: read more and try again
        if t.eof:
            raise PoolFormatError(f"{path}: the record that starts at line {line} is never closed, so the pool "
                                  "array is not either (a truncated record or file?)")
        before = t.pos
        t.more(at_least=len(t.buf))
        start -= before - t.pos


def _bad_json_bytes(chunk: str, bad: re.Match, line: int) -> Unreadable:
    at = line + chunk.count("\n", 0, bad.start())
    raw = chunk[bad.start():bad.start() + 1].encode("utf-8", "surrogateescape")
    return Unreadable("not_utf8", f"byte {raw!r} on line {at} is not UTF-8", _readable_id(chunk))


def iter_parquet(path, batch_size: int = PARQUET_BATCH) -> Iterator[tuple[int, Any]]:
    """``(row number, record)`` for each row of a parquet file, read one record batch at a time."""
    import pyarrow.parquet as pq

    try:
        f = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - any arrow error means the file is unreadable
        raise PoolFormatError(f"{path}: cannot read the parquet file ({type(exc).__name__}: {exc})") from None
    k = 0
    try:
        for batch in f.iter_batches(batch_size=batch_size):
            for rec in batch.to_pylist():
                k += 1
                yield k, rec
    except PoolFormatError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise PoolFormatError(f"{path}: the parquet file breaks after row {k} ({type(exc).__name__}: {exc})") from None


def iter_records(path) -> Iterator[tuple[int, Any]]:
    """``(line, record or Unreadable)`` for every record of a ``.json``, ``.jsonl`` or ``.parquet`` pool."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return iter_jsonl(path)
    if suffix == ".json":
        return iter_json_array(path)
    if suffix == ".parquet":
        return iter_parquet(path)
    raise PoolFormatError(f"{path}: unknown pool format {suffix!r} (use .json, .jsonl or .parquet)")
