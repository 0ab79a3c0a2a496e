"""A scorer's output folder: parquet shards plus a manifest, written atomically as the work goes.

::

    scores/loss/
      manifest.json          what was scored with what, and which shards are finished
      part-000000.parquet    pool positions 0 .. shard_size-1 (indexed by sample id)
      part-000001.parquet    ...
      encoded/part-000000.npz  (pool-dependent scorers only: per-sample encodings, see kit.scoring)

``manifest.json`` holds ``format``, ``scorer``, ``options``, ``shard_size``, ``complete``, ``pool``
(``fingerprint``, ``n_samples`` and the loader's counts once complete), in ``attrs`` what the scorer declared
(the fields of its :class:`~kit.scoreinfo.ScoreInfo` other than the name, options and timing, which the manifest
holds itself, and its ``details``; the key keeps the name earlier versions gave it, so their folders still load),
in ``counts`` the ``n_*`` counts summed over shards, and one entry per finished shard: its ``index``, pool
positions ``start``/``stop``, ``rows``, ``first_id``, ``last_id``, ``ids_sha256`` (of its ids in order),
``content_sha256`` (of its samples' ids, image fields and conversations: what a resumed run compares to decide
that a shard is still valid), ``bytes`` and ``sha256`` (the size and checksum of the shard file itself) and
``seconds``. A shard file that is missing, or whose size or checksum no longer matches (deleted or truncated by
hand), is never reused: a resumed run scores it again, and :func:`read_folder` refuses the folder naming the
shard. Every write goes to a temporary file that is then renamed over the target (the shard file first, then the
manifest), so a process killed at any moment leaves either the old manifest or the new one: a shard is finished
exactly when the manifest names it, and a shard file the manifest does not name is ignored (and rewritten by the
next run). An advisory lock (``.lock``) keeps a second process from writing the same folder at the same time.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Iterable

import pandas as pd

from kit.outputs import atomic_write_bytes  # also imported from here (its old home)
from kit.scoreinfo import FolderState, ScoreInfo, read_parquet_info

FORMAT = "kit-scores/1"
_FROM_MANIFEST = ("timing", "options", "scorer_name")  # info the manifest holds itself
_NOT_A_SHARD_FACT = ("reused", "collapse", "summary")   # info about a whole table, never stored per shard
MANIFEST = "manifest.json"
LOCK = ".lock"


class ScoreFolderError(RuntimeError):
    """A score folder that cannot be used as asked (another scorer's, another pool's, or locked)."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, ensure_ascii=False).encode("utf-8"))


def content_hash(table: pd.DataFrame) -> str:
    """SHA-256 of the samples as a scorer sees them: ids, image fields (as the pool names them), conversations."""
    h = hashlib.sha256()
    images = table["image"] if "image" in table.columns else pd.Series([""] * len(table), index=table.index)
    for sid, image, conv in zip(table.index, images, table["conversations"]):
        h.update(str(sid).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
        h.update(str(image).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
        h.update(json.dumps(conv, ensure_ascii=False, sort_keys=True).encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.hexdigest()


def ids_hash(ids: Iterable) -> str:
    h = hashlib.sha256()
    for sid in ids:
        h.update(str(sid).encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.hexdigest()


def shard_name(index: int) -> str:
    return f"part-{index:06d}.parquet"


def shard_damage(folder, entry: dict, data: bytes | None = None) -> str | None:
    """Why the file of a finished shard (a manifest entry) cannot be used, or ``None`` when it is intact.

    ``data`` is the file's bytes when already read. Entries written before sizes and checksums were recorded
    are checked for presence only.
    """
    path = Path(folder) / entry["file"]
    if data is None:
        try:
            size = path.stat().st_size
        except OSError:
            return f"{entry['file']} is missing"
        if "bytes" in entry and size != entry["bytes"]:
            return f"{entry['file']} holds {size} bytes, the manifest says {entry['bytes']}"
        if "sha256" not in entry:
            return None
        data = path.read_bytes()
    if "bytes" in entry and len(data) != entry["bytes"]:
        return f"{entry['file']} holds {len(data)} bytes, the manifest says {entry['bytes']}"
    if "sha256" in entry and hashlib.sha256(data).hexdigest() != entry["sha256"]:
        return f"{entry['file']} does not match the checksum the manifest recorded"
    return None


def read_shard_bytes(folder, entry: dict) -> bytes:
    """The bytes of a finished shard; raises :class:`ScoreFolderError` naming it when it is missing or damaged."""
    try:
        data = (Path(folder) / entry["file"]).read_bytes()
    except OSError:
        data = None
    problem = f"{entry['file']} is missing" if data is None else shard_damage(folder, entry, data)
    if problem:
        raise ScoreFolderError(f"{folder}: {problem} (the manifest lists it as finished; was it edited by hand?): "
                               "run the same score command again to score it anew")
    return data


def _lock(folder: Path):
    """Hold an exclusive advisory lock on ``folder/.lock`` (released when the process ends, even on SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock
        return None
    f = open(folder / LOCK, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise ScoreFolderError(f"{folder} is being written by another process (its lock {folder / LOCK} is held); "
                               "wait for it or score into another folder") from None
    return f


def is_score_folder(path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(folder) -> dict:
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder} is not a score folder (no {MANIFEST})") from None
    except json.JSONDecodeError as exc:
        raise ScoreFolderError(f"{path} is not valid JSON ({exc.msg}); was it edited by hand?") from None
    if manifest.get("format") != FORMAT:
        raise ScoreFolderError(f"{path} has format {manifest.get('format')!r}, not {FORMAT!r}")
    return manifest


class ShardStore:
    """One scorer's output folder. Open it with :meth:`open`; write shards; :meth:`finish` marks it complete."""

    def __init__(self, folder: Path, manifest: dict, lock=None):
        self.folder, self.manifest, self._lock = folder, manifest, lock

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, folder, scorer: str, options: dict, shard_size: int | None, *, on_mismatch: str = "error",
             n_samples: int | None = None, default_shard_size: int = 1024) -> "ShardStore":
        """Open (or create) ``folder`` for ``scorer`` with ``options`` (JSON-able).

        A folder holding another scorer's or other options' results raises :class:`ScoreFolderError`
        (``on_mismatch="error"``) or is cleared (``"overwrite"``). Resuming keeps the folder's shard size.
        """
        if on_mismatch not in ("error", "overwrite"):
            raise ValueError(f"on_mismatch must be 'error' or 'overwrite', not {on_mismatch!r}")
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            legacy = folder.with_name(folder.name + ".done.json")
            if on_mismatch == "overwrite" and folder.suffix == ".parquet" and legacy.exists():
                folder.unlink()  # a single-file table of an older kit, with its marker: replaced by a folder
                legacy.unlink()
            else:
                raise ScoreFolderError(f"{folder} is a file; scores are written to a folder of shards: remove it "
                                       "or choose another path")
        folder.mkdir(parents=True, exist_ok=True)
        lock = _lock(folder)
        try:
            key = {"scorer": scorer, "options": options}
            manifest = None
            if (folder / MANIFEST).exists():
                try:
                    manifest = read_manifest(folder)
                except ScoreFolderError:
                    if on_mismatch == "error":
                        raise
                if manifest is not None and {k: manifest.get(k) for k in key} != key:
                    if on_mismatch == "error":
                        raise ScoreFolderError(
                            f"{folder} holds scores of {manifest.get('scorer')!r} with options "
                            f"{manifest.get('options')}, not {scorer!r} with {options}: use another folder, "
                            "or overwrite it (--overwrite / on_mismatch='overwrite')")
                    manifest = None
                if manifest is not None and shard_size is not None and int(shard_size) != manifest["shard_size"]:
                    raise ScoreFolderError(f"{folder} was started with shard size {manifest['shard_size']}, not "
                                           f"{shard_size}: resume with the same size (or leave it out)")
            elif any(folder.glob("part-*.parquet")):
                if on_mismatch == "error":
                    raise ScoreFolderError(f"{folder} holds shard files but no {MANIFEST}: not a kit score folder?")
            if manifest is None:
                cls._clear(folder)
                size = int(shard_size) if shard_size is not None else default_shard_size
                if size < 1:
                    raise ValueError("shard_size must be at least 1")
                manifest = {"format": FORMAT, **key, "shard_size": size, "created": _now(), "updated": _now(),
                            "complete": False, "pool": {"n_samples": n_samples}, "attrs": {}, "shards": [],
                            "encoded": []}
                atomic_write_json(folder / MANIFEST, manifest)
            store = cls(folder, manifest, lock)
            store._sweep()
            return store
        except BaseException:
            if lock is not None:
                lock.close()
            raise

    @staticmethod
    def _clear(folder: Path) -> None:
        for p in folder.glob("part-*.parquet"):
            p.unlink()
        for p in folder.glob(".*.tmp-*"):
            p.unlink()
        if (folder / "encoded").is_dir():
            shutil.rmtree(folder / "encoded")
        if (folder / MANIFEST).exists():
            (folder / MANIFEST).unlink()

    def _sweep(self) -> None:
        """Remove temporary files and shard files the manifest does not name (left by a killed run)."""
        named = {e["file"] for e in self.manifest["shards"]}
        for p in self.folder.glob("part-*.parquet"):
            if p.name not in named:
                p.unlink()
        for p in list(self.folder.glob(".*.tmp-*")) + list((self.folder / "encoded").glob(".*.tmp-*")):
            p.unlink()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----------------------------------------------------------------- state
    @property
    def shard_size(self) -> int:
        return int(self.manifest["shard_size"])

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    def finished(self, kind: str = "shards") -> dict[int, dict]:
        return {int(e["index"]): e for e in self.manifest[kind]}

    def is_done(self, index: int, content: str, kind: str = "shards") -> bool:
        """Whether shard ``index`` was finished on these samples (its file may still be damaged: :meth:`damage`)."""
        e = self.finished(kind).get(index)
        return e is not None and e["content_sha256"] == content

    def damage(self, index: int, kind: str = "shards") -> str | None:
        """Why finished shard ``index`` cannot be reused (missing, other size, other checksum), or ``None``."""
        e = self.finished(kind).get(index)
        return None if e is None else shard_damage(self.folder, e)

    def _save(self) -> None:
        self.manifest["updated"] = _now()
        atomic_write_json(self.folder / MANIFEST, self.manifest)

    def _record(self, kind: str, entry: dict) -> None:
        entries = [e for e in self.manifest[kind] if int(e["index"]) != entry["index"]]
        entries.append(entry)
        entries.sort(key=lambda e: int(e["index"]))
        self.manifest[kind] = entries
        if self.manifest.get("complete"):
            self.manifest["complete"] = False
        self._save()

    def forget(self, index: int) -> None:
        """Drop shard ``index`` (its samples changed): it is scored again."""
        for kind in ("shards", "encoded"):
            if any(int(e["index"]) == index for e in self.manifest[kind]):
                self.manifest[kind] = [e for e in self.manifest[kind] if int(e["index"]) != index]
                self._save()

    # ----------------------------------------------------------------- writing
    def _entry(self, index, start, ids, content, seconds, file, data: bytes) -> dict:
        ids = list(ids)
        return {"index": int(index), "file": file, "start": int(start), "stop": int(start) + len(ids),
                "rows": len(ids), "first_id": str(ids[0]) if ids else None,
                "last_id": str(ids[-1]) if ids else None, "ids_sha256": ids_hash(ids),
                "content_sha256": content, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "seconds": round(float(seconds), 4)}

    def write_shard(self, index: int, start: int, table: pd.DataFrame, content: str, seconds: float,
                    info: ScoreInfo | None = None) -> dict:
        """Write one finished shard (parquet, atomically), then name it in the manifest."""
        return self.write_shard_bytes(index, start, list(table.index), table_to_parquet(table), content, seconds,
                                      info)

    def write_shard_bytes(self, index: int, start: int, ids, data: bytes, content: str, seconds: float,
                          info: ScoreInfo | None = None) -> dict:
        name = shard_name(index)
        atomic_write_bytes(self.folder / name, data)
        entry = self._entry(index, start, ids, content, seconds, name, data)
        if info is not None:
            self._merge_info(info)
        self._record("shards", entry)
        return entry

    def write_encoded(self, index: int, start: int, ids, arrays: dict, content: str, seconds: float) -> dict:
        """Write one shard of per-sample encodings (npz, atomically) for a pool-dependent scorer."""
        return self.write_encoded_bytes(index, start, ids, arrays_to_npz(arrays), content, seconds)

    def write_encoded_bytes(self, index: int, start: int, ids, data: bytes, content: str, seconds: float) -> dict:
        (self.folder / "encoded").mkdir(exist_ok=True)
        name = f"encoded/part-{index:06d}.npz"
        atomic_write_bytes(self.folder / name, data)
        entry = self._entry(index, start, ids, content, seconds, name, data)
        self._record("encoded", entry)
        return entry

    @staticmethod
    def _declared(info: ScoreInfo) -> dict:
        """What ``info`` says that the manifest keeps under ``attrs``."""
        return {k: v for k, v in info.to_dict().items() if k not in _FROM_MANIFEST + _NOT_A_SHARD_FACT}

    def _merge_info(self, info: ScoreInfo) -> None:
        """A shard's score info: static fields from the first shard, counts (``n_*``) summed over shards."""
        attrs = self._declared(info)
        have = self.manifest.setdefault("attrs", {})
        counts = self.manifest.setdefault("counts", {})
        for k, v in attrs.items():
            if k.startswith("n_") and isinstance(v, int) and not isinstance(v, bool):
                counts[k] = counts.get(k, 0) + v
            elif k not in have:
                have[k] = v

    def set_info(self, info: ScoreInfo) -> None:
        """The score info of the whole table (a pool-dependent scorer's finishing step), replacing the shards'."""
        self.manifest["attrs"] = self._declared(info)
        self.manifest["counts"] = {}
        self._save()

    def finish(self, n_samples: int, pool_info: dict | None = None) -> None:
        """Mark the folder complete for a pool of ``n_samples``; drops shards beyond it (the pool shrank)."""
        last = (n_samples + self.shard_size - 1) // self.shard_size
        for kind in ("shards", "encoded"):
            for e in [e for e in self.manifest[kind] if int(e["index"]) >= last]:
                (self.folder / e["file"]).unlink(missing_ok=True)
            self.manifest[kind] = [e for e in self.manifest[kind] if int(e["index"]) < last]
        shards = self.manifest["shards"]
        covered = sum(int(e["rows"]) for e in shards)
        if covered != n_samples or [int(e["index"]) for e in shards] != list(range(last)):
            raise RuntimeError(f"{self.folder}: the shards cover {covered} of {n_samples} samples; cannot finish")
        h = hashlib.sha256("".join(e["content_sha256"] for e in shards).encode())
        self.manifest["pool"] = {**(pool_info or {}), "n_samples": int(n_samples), "fingerprint": h.hexdigest()}
        self.manifest["complete"] = True
        self._save()


# --------------------------------------------------------------------------- bytes of a shard

def table_to_parquet(table: pd.DataFrame) -> bytes:
    import io

    t = table.copy(deep=False)
    t.attrs = {}
    t.index.name = "id"
    buf = io.BytesIO()
    try:
        t.to_parquet(buf)
    except Exception as exc:  # noqa: BLE001 - name the column that parquet cannot hold
        raise TypeError(f"a score table must be writable as parquet: {type(exc).__name__}: {exc}") from None
    return buf.getvalue()


def arrays_to_npz(arrays: dict) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def load_encoded(folder, entries: list[dict]) -> dict:
    """The per-sample encodings of every shard, concatenated in pool order (a damaged shard raises, naming it)."""
    import io

    import numpy as np

    parts: dict[str, list] = {}
    for e in sorted(entries, key=lambda e: int(e["index"])):
        with np.load(io.BytesIO(read_shard_bytes(folder, e)), allow_pickle=False) as z:
            for k in z.files:
                parts.setdefault(k, []).append(z[k])
    return {k: np.concatenate(v) for k, v in parts.items()}


def _lists(table: pd.DataFrame) -> pd.DataFrame:
    for col in table.columns:  # parquet gives list columns back as numpy arrays
        if table[col].dtype == object and len(table):
            first = table[col].dropna()
            if len(first) and hasattr(first.iloc[0], "tolist"):
                table[col] = table[col].map(lambda v: v.tolist() if hasattr(v, "tolist") else v)
    return table


def read_parquet(path) -> tuple[pd.DataFrame, object]:
    """A table written by ``kit.save_scores`` and its score info (``None`` when it was written without one): kit's
    key in the parquet schema metadata, else the ``DataFrame.attrs`` an older kit had pandas write there."""
    import pyarrow.parquet as pq

    table = _lists(pd.read_parquet(path))
    table.attrs = {}   # pandas restores an older kit's attrs on reading: they are read into the info instead
    return table, read_parquet_info(pq.read_schema(path).metadata)


def read_folder(folder) -> tuple[pd.DataFrame, ScoreInfo]:
    """The finished shards of a score folder as one table, in pool order, and its :class:`ScoreInfo` (the
    manifest's scorer, options and what the scorer declared, the timing summed over shards, the folder's state).

    A shard file that is missing or damaged raises :class:`ScoreFolderError` naming it.
    """
    import io
    import warnings

    folder = Path(folder)
    manifest = read_manifest(folder)
    shards = sorted(manifest["shards"], key=lambda e: int(e["start"]))
    parts = [pd.read_parquet(io.BytesIO(read_shard_bytes(folder, e))) for e in shards]
    if parts:
        with warnings.catch_warnings():  # all-NaN shards concatenate fine; pandas warns about their dtypes
            warnings.simplefilter("ignore", FutureWarning)
            table = pd.concat(parts) if len(parts) > 1 else parts[0]
    else:
        table = pd.DataFrame(index=pd.Index([], name="id"))
    table = _lists(table)
    table.index.name = "id"
    if not table.index.is_unique:
        dup = table.index[table.index.duplicated()][:3].tolist()
        raise ScoreFolderError(f"{folder}: shards repeat sample ids, e.g. {dup} (were shards copied in by hand?)")
    seconds = sum(float(e.get("seconds", 0)) for e in manifest["shards"] + manifest.get("encoded", []))
    said = {**manifest.get("attrs", {}), **manifest.get("counts", {})}
    info = ScoreInfo.from_dict({
        **said, "scorer_name": manifest["scorer"], "options": manifest.get("options", {}),
        "timing": {**said.get("timing", {}), "seconds": round(seconds, 3),
                   "samples_per_s": round(len(table) / seconds, 2) if seconds > 0 else None}})
    state = FolderState(str(folder), bool(manifest.get("complete")), manifest.get("pool", {}).get("n_samples"),
                        len(manifest["shards"]), len(manifest.get("encoded", [])))
    columns = info.columns if info.columns is not None else tuple(c for c in table.columns if c != "status")
    return table, replace(info, columns=columns, label=info.label or manifest["scorer"],
                          pool_dependent=bool(info.pool_dependent), folder=state)
