"""A corpus of broken pools, written into a folder, with what the loader must make of each record.

``write_corpus(root)`` writes ``root/images/`` (good, grey, large, zero-byte, corrupt, truncated, huge,
decompression-bomb images and a symbolic link out of the folder), ``root/pool.jsonl`` (one case per
line, several of them not JSON, not UTF-8 or not objects) and ``root/pool.json`` (the cases that a JSON
array can hold), and returns a :class:`Corpus` naming the expected outcome of every record:
``ACCEPTED`` (id -> status) and ``REJECTED`` (id, or ``None`` for a record without a readable id ->
reason), for a load with ``text_only=True, multi_image=True, max_image_pixels=MAX_PIXELS``.
Whole-file failures (truncated JSON, zero-byte files, wrong top-level types) are in ``BROKEN_FILES``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

MAX_PIXELS = 4_000_000
LONG = " ".join(f"word{i}" for i in range(1700))  # about 10,000 characters


def conv(q="What is shown?", a="A square."):
    return [{"from": "human", "value": "<image>\n" + q}, {"from": "gpt", "value": a}]


def _nested(depth: int):
    value = "bottom"
    for _ in range(depth):
        value = [value]
    return value


# id -> status of the accepted samples
ACCEPTED = {
    "ok_rgb": "ok",
    "ok_gray": "converted from L",
    "ok_large": "ok",
    "long_answer": "ok",
    "empty_answer": "ok",
    "nested_extra": "ok",
    "inside_dotdot": "ok",
    "7": "ok",  # an integer id, read as a string
    "text_only": "text-only",
    "two_images": "2 images",
}


@dataclass
class Corpus:
    root: Path
    jsonl: Path
    json: Path
    rejected_jsonl: list  # (id or None, reason) in line order
    rejected_json: list
    broken_files: dict  # path -> text the PoolFormatError must contain


def _images(root: Path) -> None:
    from PIL import Image

    img = root / "images"
    img.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (220, 30, 30)).save(img / "red.png")
    Image.new("L", (32, 32), 128).save(img / "gray.png")
    Image.new("RGB", (1200, 900), (30, 30, 220)).save(img / "large.png")
    Image.new("RGB", (2100, 2100), (0, 0, 0)).save(img / "huge.png")  # 4.4 MP > MAX_PIXELS
    Image.new("1", (10000, 10000), 0).save(img / "bomb.png", optimize=True)  # 100 MP in ~12 KB
    (img / "empty.png").write_bytes(b"")
    (img / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    good = (img / "red.png").read_bytes()
    (img / "truncated.png").write_bytes(good[: len(good) // 2])
    (img / "sub").mkdir(exist_ok=True)
    Image.new("RGB", (16, 16), (0, 200, 0)).save(img / "sub" / "green.png")
    Image.new("RGB", (16, 16), (9, 9, 9)).save(root / "outside.png")
    if not (img / "link_out.png").is_symlink():
        (img / "link_out.png").symlink_to(root / "outside.png")


def _cases() -> list[tuple[bytes, object, str | None]]:
    """(raw line, id or None, rejection reason or None) for every JSONL line."""
    def rec(sid, **kw):
        return {"id": sid, "image": kw.pop("image", "red.png"), "conversations": kw.pop("conversations", conv()), **kw}

    def line(obj) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")

    good = [
        (b"\xef\xbb\xbf" + line(rec("ok_rgb", source="corpus")), "ok_rgb", None),  # a BOM before the first line
        (line(rec("ok_gray", image="gray.png")), "ok_gray", None),
        (line(rec("ok_large", image="large.png")), "ok_large", None),
        (line(rec("long_answer", conversations=conv("Describe it in detail.", LONG))), "long_answer", None),
        (line(rec("empty_answer", conversations=conv("Anything?", ""))), "empty_answer", None),
        (line(rec("nested_extra", meta=_nested(60))), "nested_extra", None),
        (line(rec("inside_dotdot", image="sub/../sub/green.png")), "inside_dotdot", None),
        (line(rec(7)), "7", None),
        (line({"id": "text_only", "conversations": [{"from": "human", "value": "Say hi."},
                                                     {"from": "gpt", "value": "Hi."}]}), "text_only", None),
        (line(rec("two_images", image=["red.png", "gray.png"],
                  conversations=conv("<image>\nWhich is red?", "The first."))), "two_images", None),
    ]
    bad = [
        (b'{"id": "latin1", "image": "red.png", "conversations": [{"from": "human", "value": "Caf\xe9?"}, '
         b'{"from": "gpt", "value": "Oui."}]}', "latin1", "not_utf8"),
        (b'{"id": "surrogate", "image": "red.png", "conversations": [{"from": "human", "value": "\\ud800?"}, '
         b'{"from": "gpt", "value": "Bad."}]}', "surrogate", "not_utf8"),  # a lone surrogate escape
        (b'{"id": "cut", "image": "red.png", "conversations": [{"from": "hum', None, "malformed_json"),
        (b"[" * 5000 + b"]" * 5000, None, "malformed_json"),  # deeper than the JSON parser goes
        (b'"just a string"', None, "not_an_object"),
        (b"null", None, "not_an_object"),
        (line(rec(["a", "list"])), None, "invalid_id"),
        (line(rec(True)), None, "invalid_id"),
        (line(rec(1.5)), None, "invalid_id"),
        (line({"image": "red.png", "conversations": conv()}), None, "missing_id"),
        (line(rec("")), None, "missing_id"),
        (line(rec("ok_rgb")), "ok_rgb", "duplicate_id"),
        (line(rec("7")), "7", "duplicate_id"),  # collides with the integer id 7
        (line(rec("image_number", image=3.5)), "image_number", "invalid_image_field"),
        (line(rec("image_object", image={"path": "red.png"})), "image_object", "invalid_image_field"),
        (line(rec("nul_path", image="red.png\x00.txt")), "nul_path", "invalid_image_field"),
        (line(rec("conv_string", conversations="Q: what? A: that.")), "conv_string", "malformed_conversation"),
        (line(rec("value_int", conversations=[{"from": "human", "value": 3}, {"from": "gpt", "value": "x"}])),
         "value_int", "malformed_conversation"),
        (line(rec("robot", conversations=[{"from": "human", "value": "q"}, {"from": "robot", "value": "a"}])),
         "robot", "malformed_conversation"),
        (line(rec("nested_conv", conversations=[[_nested(200)]])), "nested_conv", "malformed_conversation"),
        (line(rec("no_answer", conversations=[{"from": "human", "value": "<image>\nHello?"}])),
         "no_answer", "not_alternating"),
        (line(rec("no_turns", conversations=[])), "no_turns", "empty_conversation"),
        (line(rec("dotdot", image="../outside.png")), "dotdot", "path_escapes_root"),
        (line(rec("deep_dotdot", image="sub/../../outside.png")), "deep_dotdot", "path_escapes_root"),
        (line(rec("absolute", image="/etc/passwd")), "absolute", "absolute_path"),
        (line(rec("symlink_out", image="link_out.png")), "symlink_out", "symlink_escapes_root"),
        (line(rec("missing", image="nowhere.png")), "missing", "missing_image"),
        (line(rec("zero_bytes", image="empty.png")), "zero_bytes", "unreadable_image"),
        (line(rec("corrupt", image="corrupt.png")), "corrupt", "unreadable_image"),
        (line(rec("truncated_png", image="truncated.png")), "truncated_png", "unreadable_image"),
        (line(rec("huge", image="huge.png")), "huge", "image_too_large"),
        (line(rec("bomb", image="bomb.png")), "bomb", "image_too_large"),
        (line(rec("multi_bad", image=["red.png", "corrupt.png"])), "multi_bad", "unreadable_image"),
    ]
    return good + bad


def write_corpus(root) -> Corpus:
    root = Path(root)
    _images(root)
    cases = _cases()
    jsonl = root / "pool.jsonl"
    jsonl.write_bytes(b"\n".join(raw for raw, _, _ in cases) + b"\n\n")  # a trailing blank line is not a record
    rejected_jsonl = [(sid, reason) for _, sid, reason in cases if reason]
    # the JSON array holds every case but the one cut off mid-record (which would break the array itself)
    kept = [c for c in cases if b'"hum' not in c[0][-6:]]
    body = b",\n ".join(raw.replace(b"\xef\xbb\xbf", b"") for raw, _, _ in kept)
    js = root / "pool.json"
    js.write_bytes(b"\xef\xbb\xbf[\n " + body + b"\n]\n")
    rejected_json = [(sid, reason) for _, sid, reason in kept if reason]
    broken = root / "broken"
    broken.mkdir(exist_ok=True)
    files = {
        "truncated.json": (b"[\n " + b",\n ".join(raw for raw, _, _ in kept[:3])[:-30], "never closed"),
        "cut_mid_array.json": (b'[{"id": "a", "image": "red.png", "conv\n, {"id": "b"}\n]', "line 1 is never closed"),
        "zero.json": (b"", "empty"),
        "object.json": (b'{"id": "a"}', "JSON array"),
        "after.json": (b'[{"id": "a"}] trailing', "after the closing"),
        "binary.json": (bytes(range(255, -1, -1)).replace(b"[", b"x"), "JSON array"),
        "corrupt.parquet": (b"PAR1 not really parquet", "parquet"),
        "pool.csv": (b"id,image\n1,a.png\n", "unknown pool format"),
    }
    for name, (data, _) in files.items():
        (broken / name).write_bytes(data)
    return Corpus(root, jsonl, js, rejected_jsonl, rejected_json,
                  {broken / name: text for name, (_, text) in files.items()})


# --------------------------------------------------------------------------- the cases of issue 23
# Small builders for one hostile case each: a pool of plain records in a folder, and image files that are broken
# in ways a header check does not see, of a refused format, or wider than 8 bits.

def record(sid, image="ok.png", q="<image>\nWhat is shown?", a="A square.", **extra) -> dict:
    return {"id": sid, "image": image, "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}],
            **extra}


def write_pool(root, records, name="pool.jsonl") -> Path:
    """``records`` as a JSONL (or, for a ``.json`` name, a JSON array) pool in ``root``, with ``root/images/ok.png``."""
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    if not (root / "images" / "ok.png").exists():
        Image.new("RGB", (16, 16), (200, 40, 40)).save(root / "images" / "ok.png")
    path = root / name
    if name.endswith(".json"):
        path.write_text(json.dumps(records))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _noise(size=(48, 48)):
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8))


def truncated_jpeg(path) -> Path:
    """A JPEG cut in half: its header reads fine, its pixels do not."""
    import io

    buf = io.BytesIO()
    _noise().save(buf, format="JPEG", quality=90)
    Path(path).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return Path(path)


def png_with_broken_data(path) -> Path:
    """A PNG whose every chunk checksum is right but whose image data (IDAT) is not a zlib stream."""
    import io
    import struct
    import zlib

    buf = io.BytesIO()
    _noise().save(buf, format="PNG")
    data, out, pos = buf.getvalue(), bytearray(buf.getvalue()[:8]), 8
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IDAT":
            body = bytes(range(256)) * (len(body) // 256 + 1)
        out += struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", zlib.crc32(kind + body))
        pos += 12 + n
    Path(path).write_bytes(bytes(out))
    return Path(path)


def truncated_ppm(path) -> Path:
    """A binary PPM (P6) that promises 48x48 pixels and holds a tenth of them."""
    Path(path).write_bytes(b"P6\n48 48\n255\n" + bytes(48 * 48 * 3 // 10))
    return Path(path)


def eps_named_png(path) -> Path:
    """An EPS file (Pillow would run Ghostscript to decode it) with a .png name."""
    Path(path).write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n0 0 moveto 16 16 lineto stroke\n"
                           b"showpage\n%%EOF\n")
    return Path(path)


def gradient(kind: str, path) -> Path:
    """A 256-level horizontal gradient as a 16-bit grey PNG (``"png16"``), a 32-bit integer TIFF (``"tiff32"``)
    or a 32-bit float TIFF (``"float"``)."""
    import numpy as np
    from PIL import Image

    ramp = np.tile(np.arange(256), (8, 1))
    array = {"png16": (ramp * 257).astype(np.uint16), "tiff32": (ramp * 1000 - 50_000).astype(np.int32),
             "float": (ramp / 255.0).astype(np.float32)}[kind]
    Image.fromarray(array).save(path)
    return Path(path)
