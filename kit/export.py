"""Writing a selected subset (LLaVA JSON, JSONL or parquet, or a trainer's format) with a manifest beside it.

The trainer formats (``--format llamafactory``: LLaMA-Factory's ShareGPT JSON plus its ``dataset_info.json``
entry; ``--format swift``: ms-swift's messages JSONL) are described in :mod:`kit.trainer_formats`; they read
back with :func:`kit.trainer_formats.read_export`. A LLaVA, JSONL or parquet export always reads back with
:func:`kit.load_pool` (and ``kit validate``):

- **The format follows the suffix** (``.json`` LLaVA, ``.jsonl``, ``.parquet``): a format that disagrees
  with the suffix, or a suffix the loader does not read, is refused (:func:`format_of`); a trainer format is
  asked for by name and keeps its suffix (``llamafactory`` ``.json``, ``swift`` ``.jsonl``).
- **Valid JSON.** NaN and infinities (which Python's JSON writes as bare ``NaN``) are written as ``null``; a
  string holding an unpaired surrogate is written as its ``\\u`` escape.
- **Parquet takes any record.** A field whose type varies between records (an id that is a number in one
  record and a string in another, an extra field that is sometimes a list) is written as text: strings as
  they are, anything else as its JSON text; the ``image`` field instead as a list of paths (a single path as a
  one-item list, which the loader reads as one image). The manifest names such fields (``text_fields``).
- **Never over an input.** The data file and the manifest are refused when they are the pool file or one of
  its images (:func:`kit.outputs.check_outputs`), and are written atomically.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

from kit.outputs import atomic_write_bytes, check_outputs
from kit.provenance import jsonable, provenance
from kit.trainer_formats import (DATASET_INFO, TRAINER_FORMATS, manifest_path, merged_dataset_info,  # noqa: F401
                                  trainer_records)

FORMATS = {"llava": ".json", "jsonl": ".jsonl", "parquet": ".parquet"}   # what kit.load_pool reads back
EXPORT_FORMATS = {**FORMATS, **TRAINER_FORMATS}


def format_of(path, format: str | None = None) -> str:
    """The export format for ``path``: its suffix's; ``format``, when given, must agree with the suffix (the
    file is read back by its suffix, so a mismatch would not read back)."""
    if format is not None and format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {format!r}; use one of {sorted(EXPORT_FORMATS)}")
    suffix = Path(path).suffix.lower()
    if format in TRAINER_FORMATS:
        if suffix != TRAINER_FORMATS[format]:
            raise ValueError(f"format {format!r} writes {TRAINER_FORMATS[format]} files: name it "
                             f"{Path(path).with_suffix(TRAINER_FORMATS[format]).name}")
        return format
    by_suffix = {v: k for k, v in FORMATS.items()}.get(suffix)
    if by_suffix is None:
        raise ValueError(f"{path}: an export is read back by its suffix; name it .json (llava), .jsonl or .parquet")
    if format is not None and format != by_suffix:
        raise ValueError(f"format {format!r} writes {FORMATS[format]} files, but {path} would be read back as "
                         f"{by_suffix}: name it {Path(path).with_suffix(FORMATS[format]).name}, or leave the format "
                         "out to follow the suffix")
    return by_suffix


def _finite(obj):
    """``obj`` with NaN and infinite floats replaced by ``None`` (containers recursively)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def record_json(record, indent: int | None = None) -> str:
    """One record as valid JSON text: NaN/inf as null, unpaired surrogates escaped, other objects as strings."""
    try:
        text = json.dumps(record, ensure_ascii=False, allow_nan=False, indent=indent, default=str)
    except ValueError:  # a NaN or an infinity
        record = _finite(record)
        text = json.dumps(record, ensure_ascii=False, allow_nan=False, indent=indent, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate: write it as its \u escape, as it was read
        text = json.dumps(record, ensure_ascii=True, allow_nan=False, indent=indent, default=str)
    return text


def _as_text(value):
    return value if value is None or isinstance(value, str) else record_json(value)


def _as_paths(value):
    return [value] if isinstance(value, str) else value


def _arrow_column(name: str, values: list):
    """An arrow array of ``values``, and how it was converted (``None`` when it holds them as they are)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def writable(arr) -> bool:
        try:
            pq.write_table(pa.table({name: arr}), io.BytesIO())
            return True
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return False

    try:
        arr = pa.array(values)
        if writable(arr):
            return arr, None
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    if name == "image":
        try:
            arr = pa.array([_as_paths(v) for v in values])
            if writable(arr):
                return arr, "list of paths (its type varies between records)"
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            pass
    return pa.array([_as_text(v) for v in values], type=pa.string()), "JSON text (its type varies between records)"


def _parquet(records: list[dict]) -> tuple[bytes, dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    try:
        pq.write_table(pa.Table.from_pylist(records), buf)
        return buf.getvalue(), {}
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    columns = list(dict.fromkeys(k for r in records for k in r))
    arrays, converted = {}, {}
    for name in columns:
        arrays[name], how = _arrow_column(name, [r.get(name) for r in records])
        if how:
            converted[name] = how
    buf = io.BytesIO()
    pq.write_table(pa.table(arrays), buf)
    return buf.getvalue(), converted


def encode_records(records: list[dict], format: str) -> tuple[bytes, dict]:
    """The bytes of an export, and the fields written as text (parquet; field -> how)."""
    if format == "llava":
        body = ",\n".join(" " + record_json(r, indent=1).replace("\n", "\n ") for r in records)
        return (("[\n" + body + "\n]") if records else "[]").encode("utf-8"), {}
    if format == "jsonl":
        return "".join(record_json(r) + "\n" for r in records).encode("utf-8"), {}
    if format == "parquet":
        return _parquet(records)
    raise ValueError(f"unknown export format {format!r}; use one of {sorted(FORMATS)}")


def write_records(records: list[dict], path, format: str | None = None) -> Path:
    """Write records as LLaVA JSON, JSONL or parquet (``format`` follows the suffix; see the module), atomically."""
    path = Path(path)
    data, _ = encode_records(records, format_of(path, format))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path


def pool_inputs(pool) -> list:
    """What an export of ``pool`` must not write over: the pool file and its images (``(name, real paths)``)."""
    images = {p for paths in pool.table["image_paths"] for p in paths} if "image_paths" in pool.table else set()
    return [("the pool file", pool.path), ("an image of the pool", images)]


def selection_manifest(ids) -> dict:
    """What a :class:`kit.selection.Selection` says about itself, for a manifest (plain id lists give Nones)."""
    shortfall = getattr(ids, "shortfall", None)
    return {
        "method": getattr(ids, "method", None),
        "params": jsonable(getattr(ids, "params", {})),
        "resolved": jsonable(getattr(ids, "resolved", {})),
        "seed": getattr(ids, "seed", None),
        "budget": getattr(ids, "budget", None),
        "scores_hash": getattr(ids, "scores_hash", None),
        "shortfall": shortfall.to_dict() if shortfall is not None else None,
        "notes": list(getattr(ids, "notes", [])),
    }


def export_subset(pool, ids, path, format: str | None = None, *, method: str | None = None,
                  params: dict | None = None, seed: int | None = None, scores_hash: str | None = None,
                  extra: dict | None = None, overwrite: bool = True, inputs=()) -> Path:
    """Write the samples ``ids`` of ``pool`` to ``path`` and a ``<stem>.manifest.json`` beside it.

    ``ids`` is usually a :class:`kit.selection.Selection`, whose method, parameters (as passed and as the
    selector resolved them), seed, score hash, shortfall and notes go into the manifest; the keyword
    arguments override them. Samples are written in selection order. ``format`` follows the suffix of
    ``path`` (a disagreeing one is refused), or names a trainer format (``"llamafactory"``, which also adds its
    entry to ``dataset_info.json`` beside ``path``; ``"swift"``). Neither file may be the pool file, one of its images, or one of
    ``inputs`` (``(name, path)`` pairs); an existing file is replaced (atomically) unless ``overwrite=False``.
    Returns the data file's path.
    """
    checked = pool.check_ids(ids)
    path = Path(path)
    format = format_of(path, format)
    info_path = path.with_name(DATASET_INFO) if format == "llamafactory" else None
    outputs = [path, manifest_path(path)]
    check_outputs([*outputs, *([info_path] if info_path else [])], [*pool_inputs(pool), *inputs])
    check_outputs(outputs, overwrite=overwrite)   # dataset_info.json is merged, not replaced
    if format in TRAINER_FORMATS:
        info = merged_dataset_info(path, overwrite) if info_path else None
        data, text_fields = encode_records(trainer_records(pool, checked, format),
                                           "llava" if format == "llamafactory" else "jsonl")
    else:
        info, (data, text_fields) = None, encode_records(pool.records(checked), format)
    manifest = {"data_file": path.name, "format": format, "n_samples": len(checked),
                "ids": [str(i) for i in checked], **selection_manifest(ids)}
    if info is not None:
        manifest["dataset_info"] = {"file": DATASET_INFO, "name": path.stem}
    for key, value in (("method", method), ("params", params), ("seed", seed), ("scores_hash", scores_hash)):
        if value is not None:
            manifest[key] = jsonable(value)
    if text_fields:
        manifest["text_fields"] = text_fields
    manifest.update(provenance(pool))
    if extra:
        manifest.update(jsonable(extra))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    if info is not None:
        atomic_write_bytes(info_path, json.dumps(info, indent=1, ensure_ascii=False).encode("utf-8"))
    atomic_write_bytes(manifest_path(path), json.dumps(manifest, indent=1).encode("utf-8"))
    return path
