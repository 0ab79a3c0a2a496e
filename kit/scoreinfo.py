"""Score metadata as one explicit object: what a score table says about how it was made.

- :class:`ScoreInfo`: one scorer's table (``kit.score``, ``kit.load_scores`` of a score folder): the scorer's
  registered name, its options, the columns it made for selection, its labels, whether a sample's score depends
  on the rest of the pool, the timing, whether the table was reused, the score-collapse check (``collapse``,
  ``summary``), what the scorer itself recorded (``details``: counts such as ``n_failed``, settings such as
  influence's) and, for a table read from a score folder, the folder's state (``folder``).
- :class:`ScoreTableInfo`: the joined table of ``kit.score_table``: one :class:`ScoreInfo` per scorer (its
  columns, ``pool_dependent``, labels, options, timing, ``reused``), the pool's hash and the collapse check.

**A scorer** returns its table, or ``(table, ScoreInfo(columns=..., label=..., details=...))`` to declare what it
knows; ``kit.score`` fills in the rest (name, options, timing, defaults). A scorer of an older kit that declared
them in ``table.attrs`` still works, with a ``FutureWarning``.

**In memory** the functions that make a table (``kit.score``, ``kit.score_table``, ``kit.load_scores``) hand its
info to :func:`attach`, and :func:`score_info` gives it back: the one accessor for a caller that holds only the
DataFrame. The info belongs to that table object, never to pandas' ``DataFrame.attrs`` (experimental, and copied
or dropped silently by many operations). A table derived from it (filtered, joined, copied) has none, so it never
carries a stale one: readers that need it fail with a message saying what to pass instead, and :func:`attach` gives
a derived table an info on purpose. A selection's provenance does not depend on it (``scores_hash`` fingerprints
the very table selected from).

**On disk** a table written by ``kit.save_scores`` keeps its info as JSON in the parquet schema metadata under
:data:`SCHEMA_KEY`; a score folder keeps it in its ``manifest.json`` (:mod:`kit.shards`). Files written by older
versions (pandas' own attrs, ``PANDAS_ATTRS`` in the schema) still load: :func:`read_parquet_info` reads those.
The JSON layout is the same in every place (:meth:`ScoreInfo.to_dict`, :meth:`ScoreTableInfo.to_dict`).
"""
from __future__ import annotations

import json
import threading
import warnings
import weakref
from dataclasses import dataclass, field, fields, replace
from typing import Union

import pandas as pd

SCHEMA_KEY = b"kit.score_info"          # parquet schema metadata key of a table's info (JSON)
LEGACY_SCHEMA_KEY = b"PANDAS_ATTRS"     # where pandas >= 2.1 wrote DataFrame.attrs (older kit versions)

# The keys of a joined table's per-scorer entry, in the order earlier versions wrote them (ablation.json).
ENTRY_KEYS = ("columns", "pool_dependent", "label", "short_label", "options", "timing", "reused")


@dataclass(frozen=True)
class FolderState:
    """A table read from a score folder: the folder, whether every shard is finished, the pool size (where known)
    and how many shards (and, for a pool-dependent scorer, encoded shards) it holds."""

    path: str
    complete: bool
    n_expected: int | None
    n_shards: int
    n_encoded: int = 0

    def to_dict(self) -> dict:
        """The flat keys earlier versions wrote: ``folder`` (the path), ``complete``, ``n_expected``, ..."""
        return {"folder": self.path, "complete": self.complete, "n_expected": self.n_expected,
                "n_shards": self.n_shards, "n_encoded": self.n_encoded}

    @classmethod
    def from_dict(cls, d: dict) -> "FolderState":
        return cls(str(d["folder"]), bool(d.get("complete")), d.get("n_expected"), int(d.get("n_shards") or 0),
                   int(d.get("n_encoded") or 0))


_FOLDER_KEYS = ("folder", "complete", "n_expected", "n_shards", "n_encoded")


@dataclass(frozen=True)
class ScoreInfo:
    """What one scorer's table says about how it was made (see the module docstring).

    A scorer declares what it knows (``columns``, ``label``, ``short_label``, ``pool_dependent``, ``timing``,
    ``details``); ``kit.score`` fills in ``scorer_name``, ``options``, the timing and the defaults. ``details``
    holds whatever else the scorer recorded (counts named ``n_*`` are summed over a folder's shards); its keys
    may not repeat a field's name. Treat the dicts as read-only: :func:`dataclasses.replace` makes a changed copy.
    """

    scorer_name: str = ""
    columns: tuple[str, ...] | None = None   # the columns made for selection; None: not declared
    label: str = ""
    short_label: str = ""
    options: dict = field(default_factory=dict)
    pool_dependent: bool | None = None       # None: not declared (the scorer's class attribute decides)
    timing: dict = field(default_factory=dict)
    reused: bool = False
    collapse: tuple[dict, ...] = ()
    summary: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)
    folder: FolderState | None = None

    def __post_init__(self):
        if self.columns is not None and not isinstance(self.columns, tuple):
            object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "collapse", tuple(self.collapse))
        object.__setattr__(self, "summary", tuple(self.summary))
        clash = sorted(set(self.details) & (set(_INFO_KEYS) | set(_FOLDER_KEYS)))
        if clash:
            raise ValueError(f"ScoreInfo details may not use the names of its fields: {clash}")

    def owners(self) -> dict[str, str]:
        """``{column: scorer name}`` for the columns made for selection."""
        return {c: self.scorer_name for c in self.columns or ()} if self.scorer_name else {}

    def entry(self) -> "ScoreInfo":
        """This scorer as a joined table records it: the fields of :data:`ENTRY_KEYS` and the name."""
        return ScoreInfo(scorer_name=self.scorer_name, columns=self.columns or (), label=self.label,
                         short_label=self.short_label or self.label, options=self.options,
                         pool_dependent=bool(self.pool_dependent), timing=self.timing, reused=self.reused)

    def to_dict(self) -> dict:
        """The JSON layout (flat, as ``DataFrame.attrs`` held it before): the fields, then ``details``, then the
        folder's state when read from one."""
        from kit.provenance import jsonable

        out = {"scorer_name": self.scorer_name, "options": self.options,
               "columns": None if self.columns is None else list(self.columns), "label": self.label,
               "short_label": self.short_label, "pool_dependent": self.pool_dependent, "timing": self.timing,
               "reused": self.reused, "collapse": list(self.collapse), "summary": list(self.summary),
               **self.details}
        if self.folder is not None:
            out.update(self.folder.to_dict())
        return jsonable(out)

    @classmethod
    def from_dict(cls, d: dict) -> "ScoreInfo":
        """The info a JSON dict describes: this layout, a score folder's manifest, or the ``DataFrame.attrs`` of
        an older kit (where a scorer named its label ``scorer``)."""
        d = dict(d)
        legacy_label = d.pop("scorer", None)
        known = {k: d.pop(k) for k in _INFO_KEYS if k in d and k not in ("details", "folder")}
        folder = {k: d.pop(k) for k in _FOLDER_KEYS if k in d}
        if not known.get("label") and isinstance(legacy_label, str):
            known["label"] = legacy_label
        for key in ("label", "short_label", "scorer_name"):
            if key in known:
                known[key] = str(known[key] or "")
        state = FolderState.from_dict(folder) if "folder" in folder else None
        return cls(**known, details=d, folder=state)


_INFO_KEYS = tuple(f.name for f in fields(ScoreInfo))


@dataclass(frozen=True)
class ScoreTableInfo:
    """What a joined score table (``kit.score_table``) says: per scorer its :meth:`ScoreInfo.entry`, the hash of
    the pool it was scored on (:func:`kit.provenance.pool_hash`) and the score-collapse check of its columns."""

    scorers: dict[str, ScoreInfo] = field(default_factory=dict)
    pool: str | None = None
    collapse: tuple[dict, ...] = ()
    summary: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "collapse", tuple(self.collapse))
        object.__setattr__(self, "summary", tuple(self.summary))

    @property
    def columns(self) -> tuple[str, ...]:
        """Every scorer's selection columns, in scorer order."""
        return tuple(c for info in self.scorers.values() for c in info.columns or ())

    def owners(self) -> dict[str, str]:
        return {c: name for name, info in self.scorers.items() for c in info.columns or ()}

    def to_dict(self) -> dict:
        """``{"scorers": {name: entry}, "pool", "collapse", "summary"}`` (the layout earlier versions wrote)."""
        from kit.provenance import jsonable

        scorers = {name: {k: full[k] for k in ENTRY_KEYS}
                   for name, full in ((name, info.to_dict()) for name, info in self.scorers.items())}
        return jsonable({"scorers": scorers, "pool": self.pool, "collapse": list(self.collapse),
                         "summary": list(self.summary)})

    @classmethod
    def from_dict(cls, d: dict) -> "ScoreTableInfo":
        scorers = {str(name): ScoreInfo.from_dict({**entry, "scorer_name": name})
                   for name, entry in (d.get("scorers") or {}).items()}
        return cls(scorers, d.get("pool"), d.get("collapse") or (), d.get("summary") or ())


Info = Union[ScoreInfo, ScoreTableInfo]


def info_from_dict(d: dict) -> Info:
    """A :class:`ScoreTableInfo` for a joined table's layout (it has ``scorers``), else a :class:`ScoreInfo`."""
    return ScoreTableInfo.from_dict(d) if "scorers" in d else ScoreInfo.from_dict(d)


# --------------------------------------------------------------------------- in memory: the one accessor

_ATTACHED: dict[int, tuple[weakref.ref, Info]] = {}
_LOCK = threading.RLock()   # re-entrant: a collection inside attach() may run _drop in the same thread


def _drop(key: int, ref) -> None:
    with _LOCK:
        entry = _ATTACHED.get(key)
        if entry is not None and entry[0] is ref:
            del _ATTACHED[key]


def attach(table: pd.DataFrame, info: Info) -> pd.DataFrame:
    """Make ``info`` the score info of ``table`` (this object, as long as it lives) and return ``table``."""
    if not isinstance(info, (ScoreInfo, ScoreTableInfo)):
        raise TypeError(f"info must be a ScoreInfo or a ScoreTableInfo, not {type(info).__name__}")
    key = id(table)
    ref = weakref.ref(table, lambda r, key=key: _drop(key, r))
    with _LOCK:
        _ATTACHED[key] = (ref, info)
    return table


def score_info(table: pd.DataFrame, required: bool = True) -> Info | None:
    """The :class:`ScoreInfo` (one scorer's table) or :class:`ScoreTableInfo` (a joined table) that
    ``kit.score``, ``kit.score_table`` or ``kit.load_scores`` attached to ``table``.

    A table derived from one (filtered, joined, copied) has none: ``required=False`` then returns ``None``, else
    this raises ``LookupError`` saying so.
    """
    with _LOCK:
        entry = _ATTACHED.get(id(table))
    if entry is not None and entry[0]() is table:
        return entry[1]
    if required:
        raise LookupError("this DataFrame carries no score info: kit attaches one to the tables kit.score, "
                          "kit.score_table and kit.load_scores return, and a table derived from one (filtered, "
                          "joined, copied) has none; read it from the original table (kit.score_info(scores)), or "
                          "give the derived one its own with kit.scoreinfo.attach(table, info)")
    return None


def scorer_entry(table: pd.DataFrame, name: str) -> ScoreInfo | None:
    """The joined table's record of scorer ``name`` (``None`` for one scorer's own table, or no info)."""
    info = score_info(table, required=False)
    return info.scorers.get(name) if isinstance(info, ScoreTableInfo) else None


def scorer_label_of(table: pd.DataFrame) -> str:
    """The label of one scorer's table (``""`` for a table without a score info, or a joined one)."""
    info = score_info(table, required=False)
    return info.label if isinstance(info, ScoreInfo) else ""


def scorers_record(table: pd.DataFrame) -> dict:
    """A joined table's per-scorer entries as JSON (``ScoreTableInfo.to_dict()["scorers"]``), ``{}`` without."""
    info = score_info(table, required=False)
    return info.to_dict()["scorers"] if isinstance(info, ScoreTableInfo) else {}


def declared_info(result, name: str) -> tuple[pd.DataFrame, ScoreInfo]:
    """A scorer's return value as ``(table, what it declared)``: a table, or ``(table, ScoreInfo)``. A table that
    declares its metadata in ``DataFrame.attrs`` (a scorer written for an older kit) is read with a
    ``FutureWarning`` (shown by default: it is meant for whoever wrote the scorer)."""
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], ScoreInfo):
        result, said = result
        if isinstance(result, pd.DataFrame):
            return result, said
    if not isinstance(result, pd.DataFrame):
        raise TypeError(f"scorer {name!r} returned {type(result).__name__}, not a DataFrame "
                        "(or a (DataFrame, kit.ScoreInfo) pair)")
    if not result.attrs:
        return result, ScoreInfo()
    warnings.warn(f"scorer {name!r} declares its metadata in DataFrame.attrs (read this time, but kit keeps no "
                  "metadata there): return (table, kit.ScoreInfo(columns=..., label=..., details=...)) instead",
                  FutureWarning, stacklevel=3)
    legacy = {k: v for k, v in result.attrs.items() if k not in _FOLDER_KEYS}
    table = result.copy(deep=False)
    table.attrs = {}   # the declaration now lives in the ScoreInfo, not on the table
    return table, ScoreInfo.from_dict(legacy)


# --------------------------------------------------------------------------- on disk: parquet schema metadata

def schema_metadata(info: Info) -> dict[bytes, bytes]:
    """``{SCHEMA_KEY: JSON}`` for a parquet schema."""
    return {SCHEMA_KEY: json.dumps({"format": "kit-score-info/1", **info.to_dict()}, ensure_ascii=False).encode()}


def read_parquet_info(metadata: dict | None) -> Info | None:
    """The info in a parquet schema's metadata: kit's own key, else the pandas attrs an older kit wrote."""
    metadata = metadata or {}
    for key in (SCHEMA_KEY, LEGACY_SCHEMA_KEY):
        if key in metadata:
            d = json.loads(metadata[key])
            d.pop("format", None)
            return info_from_dict(d) if d else None
    return None
