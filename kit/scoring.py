"""The scoring face: ``score(pool, name)``, resumable sharded scoring, ``score_cached`` and the joined ``score_table``.

Every scorer is a class registered in :data:`kit.registry.SCORERS`: ``cls(**options).score(pool)``
returns a DataFrame indexed by sample id with one row per pool sample. Constructing a scorer loads no
model; it loads on its first ``score``. A scorer may declare

- ``pool_dependent`` (bool): whether a sample's score depends on the rest of the pool (the image-text
  stand-in's neighbour part does), and
- what it knows about its table, by returning ``(table, kit.ScoreInfo(columns=..., label=..., details=...))``
  instead of the table: the columns it made for selection (default: every column but the diagnostic ones),
  its labels and anything else worth keeping,

and :func:`score` records both, with the wall time, in the table's :class:`~kit.scoreinfo.ScoreInfo`
(:func:`kit.score_info` gives it back; never ``DataFrame.attrs``). :func:`score` and :func:`score_table` also
run the score-collapse check (:mod:`kit.collapse`): a column with almost every sample at one value, or no
spread, warns (``ScoreCollapseWarning``) and is recorded in the info's ``collapse`` and ``summary``.

**Shards.** With ``out`` (a folder), scoring goes shard by shard (``shard_size`` samples in pool order)
into ``out/part-*.parquet`` with a manifest (:mod:`kit.shards`); a restarted run skips the finished
shards (after checking that their samples are still the pool's) and never scores a sample twice or
loses one. ``pool`` may then also be a pool *file*: it is read and validated as a stream
(:func:`kit.data.iter_pool`), so memory does not grow with the pool. :func:`load_scores` reads a folder,
complete or interrupted, back as one table.

**Pool-dependent scorers** cannot be scored shard by shard as they are: the neighbour part of a sample's
score reads every other sample. A pool-dependent scorer that splits its work into ``encode(pool) ->
{name: per-sample array}`` (the expensive, per-sample part: the encoders) and ``finish(ids, arrays) ->
table`` (the pool-wide part) is run in two steps: ``encode`` shard by shard (resumable, written to
``out/encoded/``), then ``finish`` once on all of them; its scores equal the unsharded ones. The
image-text scorer does this. A pool-dependent scorer without ``encode``/``finish`` is scored in one
piece (the whole pool is one shard, held in memory), and the manifest says so.
"""
from __future__ import annotations

import inspect
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import pandas as pd

from kit.collapse import record_collapse
from kit.registry import SCORERS
from kit.scoreinfo import ScoreInfo, ScoreTableInfo, attach, declared_info, score_info, scorer_entry

# Columns of a scorer's own table that describe how it scored rather than what it found.
DIAGNOSTIC_COLUMNS = ("status", "source", "scorer", "text", "truncated", "n_tokens")

# Options that change how a scorer runs, not what it computes: left out of a score folder's key, so a
# run can be resumed with another batch size or without progress bars.
RUNTIME_OPTIONS = ("progress", "batch_size", "num_workers", "query_batch_size", "cache_dir")

DEFAULT_SHARD_SIZE = 1024
BUILTIN_QUIET = ("image_text", "loss", "rich", "style")  # built-in scorers that take progress=False


# --------------------------------------------------------------------------- building a scorer

def make_scorer(name: str, options: dict, quiet: bool = False):
    """``SCORERS.get(name)(**options)``; ``quiet`` turns the scorer's own progress bars off where it has them."""
    cls = SCORERS.get(name)
    if quiet and "progress" not in options:
        takes = name in BUILTIN_QUIET
        try:
            takes = takes or "progress" in inspect.signature(cls).parameters
        except (TypeError, ValueError):
            pass
        if takes:
            return cls(**options, progress=False)
    return cls(**options)


def is_pool_dependent(scorer) -> bool:
    return bool(getattr(scorer, "pool_dependent", False))


def splits_work(scorer) -> bool:
    """Whether a scorer offers the two-step ``encode``/``finish`` protocol (see the module docstring)."""
    return callable(getattr(scorer, "encode", None)) and callable(getattr(scorer, "finish", None))


def _key_value(value):
    """A JSON value standing for an option; an object (a model passed as ``model=``) stands for itself only.

    Objects other than numbers, strings, lists and dicts are named by their class and ``id``, so a
    folder scored with an in-memory model is reused in the same process but never matched by another
    process (which cannot know it is the same model): pass a model by name or path to resume across runs.
    """
    if isinstance(value, dict):
        return {str(k): _key_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_key_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return f"<{type(value).__module__}.{type(value).__qualname__} object at {id(value):#x}>"


def folder_key(options: dict) -> dict:
    """The options that identify a score folder (JSON-able; runtime options left out)."""
    return _key_value({k: v for k, v in options.items() if k not in RUNTIME_OPTIONS})


def finalise(result, pool_table: pd.DataFrame, scorer, name: str, options: dict,
             seconds: float) -> tuple[pd.DataFrame, ScoreInfo]:
    """Check a scorer's table (one row per sample), put it in pool order and complete what the scorer declared
    (``result`` is its table, or ``(table, ScoreInfo)``): ``(table, info)``."""
    from kit.provenance import jsonable

    table, said = declared_info(result, name)
    missing = pool_table.index.difference(table.index)
    extra = table.index.difference(pool_table.index)
    if len(missing) or len(extra):
        raise RuntimeError(f"scorer {name!r} must return one row per pool sample: "
                           f"{len(missing)} missing (e.g. {list(missing[:3])}), {len(extra)} unknown")
    if not table.index.is_unique:
        raise RuntimeError(f"scorer {name!r} returned repeated ids, e.g. {table.index[table.index.duplicated()][:3].tolist()}")
    table = table.loc[pool_table.index]
    table.index.name = "id"
    named = said.columns
    if named is None:
        named = [c for c in table.columns if c not in DIAGNOSTIC_COLUMNS]
    label = said.label or getattr(scorer, "label", None) or name
    short = said.short_label or getattr(scorer, "short_label", None) or label
    timing = {**said.timing, "seconds": round(seconds, 3),
              "samples_per_s": round(len(table) / seconds, 2) if seconds > 0 else None}
    dependent = said.pool_dependent if said.pool_dependent is not None else is_pool_dependent(scorer)
    return table, replace(said, scorer_name=name, options=jsonable(options),
                          columns=tuple(c for c in named if c in table.columns), pool_dependent=bool(dependent),
                          label=str(label), short_label=str(short), timing=timing)


# --------------------------------------------------------------------------- the face

def score(pool, name: str, out=None, *, shard_size: int | None = None, on_mismatch: str = "error",
          **options) -> pd.DataFrame:
    """Score every accepted sample of ``pool`` with the scorer registered as ``name``.

    Returns a DataFrame indexed by sample id with one row per sample of the pool (a sample a scorer
    could not score keeps its row, with NaN scores and a ``status`` saying why). Its
    :class:`~kit.scoreinfo.ScoreInfo` (``kit.score_info(table)``) holds ``scorer_name``, ``options``,
    ``columns`` (the columns made for selection), ``pool_dependent``, ``label``, ``short_label`` (a few words
    for axes), ``timing`` and the collapse check.

    ``out`` (a folder) scores shard by shard into it and resumes what a killed run left there
    (:func:`score_shards`; ``on_mismatch="overwrite"`` replaces a folder that holds another scorer's or
    other options' scores instead of raising); the table is then read back from the folder.
    ``pool`` may be a :class:`kit.data.Pool` or a pool file.
    """
    return attach(*_score(pool, name, out, shard_size=shard_size, on_mismatch=on_mismatch, **options))


def _score(pool, name: str, out=None, *, shard_size: int | None = None, on_mismatch: str = "error",
           **options) -> tuple[pd.DataFrame, ScoreInfo]:
    """:func:`score` as ``(table, info)``."""
    if out is not None:
        run = score_shards(pool, name, out, shard_size=shard_size, on_mismatch=on_mismatch, **options)
        table, info = _read(out, warn=False)
        info = replace(info, reused=run.n_scored == 0)
        return table, record_collapse(table, info, info.columns)  # info's collapse and summary; warns
    if isinstance(pool, (str, Path)):
        from kit.data import load_pool

        pool = load_pool(pool)
    scorer = make_scorer(name, options)
    t0 = time.perf_counter()
    result = scorer.score(pool)
    table, info = finalise(result, pool.table, scorer, name, options, time.perf_counter() - t0)
    return table, record_collapse(table, info, info.columns)  # info's collapse and summary; warns per column


@dataclass
class ScoreRun:
    """What :func:`score_shards` did: the folder, how many samples it scored now and how many it reused.

    ``damaged`` names the finished shards whose files were missing or damaged (scored again, among
    ``n_scored``).
    """

    folder: Path
    n_samples: int
    n_scored: int
    n_reused: int
    complete: bool
    seconds: float
    mode: str  # "per-shard", "encode-then-finish" or "whole-pool"
    damaged: list = field(default_factory=list)

    def __str__(self) -> str:
        again = f"; {len(self.damaged)} damaged shards scored again ({', '.join(self.damaged[:3])})" \
            if self.damaged else ""
        return (f"{self.folder}: {self.n_samples} samples ({self.n_scored} scored now, {self.n_reused} reused"
                f"{again}; {self.mode}) in {self.seconds:.1f}s" + ("" if self.complete else " [not complete]"))


def _slices(pool, size: int) -> Iterator[tuple[int, int, object]]:
    """``(index, start, chunk Pool)`` over an in-memory pool."""
    from kit.data import Pool

    table = pool.table
    empty = pool.report.iloc[0:0]
    for index, start in enumerate(range(0, len(table), size)):
        part = table.iloc[start:start + size]
        yield index, start, Pool(part, empty, pool.path, pool.image_root, len(part))


def _stream(stream, size: int) -> Iterator[tuple[int, int, object]]:
    start = 0
    index = 0
    for chunk in stream:
        if len(chunk) == 0:
            continue  # a last chunk holding only rejections
        yield index, start, chunk
        start += len(chunk)
        index += 1


def _source(pool, size: int, loader: dict):
    """``(chunks, n_known, info())`` for a Pool or a pool file (streamed)."""
    from kit.data import Pool, iter_pool

    if isinstance(pool, Pool):
        info = lambda: {"path": str(pool.path) if pool.path else None, "n_input": int(pool.n_input),  # noqa: E731
                        "n_rejected": int(len(pool.report)),
                        "rejected_by_reason": {str(k): int(v) for k, v in pool.report["reason"].value_counts().items()}}
        return _slices(pool, size), len(pool), info
    stream = iter_pool(pool, chunk_size=size, **loader)

    def info():
        report = stream.report
        return {"path": str(stream.path), "n_input": int(stream.n_input), "n_rejected": int(len(report)),
                "rejected_by_reason": {str(k): int(v) for k, v in report["reason"].value_counts().items()}}

    return _stream(stream, size), None, info


@dataclass
class ShardTask:
    """One shard to score: its index, first pool position, samples (a chunk Pool) and content hash."""

    index: int
    start: int
    chunk: object
    content: str


@dataclass
class ShardResult:
    """A scored shard as bytes (parquet of its table, or npz of its encodings) with its timing and score info
    (``None`` for encodings)."""

    index: int
    start: int
    ids: list
    data: bytes
    content: str
    seconds: float
    info: ScoreInfo | None


def run_task(scorer, name: str, options: dict, mode: str, task: ShardTask) -> ShardResult:
    """Score (or, for ``mode="encode-then-finish"``, encode) one shard: what every executor runs."""
    from kit.shards import arrays_to_npz, table_to_parquet

    chunk = task.chunk
    n = len(chunk)
    t0 = time.perf_counter()
    if mode == "encode-then-finish":
        arrays = scorer.encode(chunk)
        bad = {k: len(v) for k, v in arrays.items() if len(v) != n}
        if bad:
            raise RuntimeError(f"scorer {name!r}: encode() must give one row per sample ({n}), got {bad}")
        data, info = arrays_to_npz(arrays), None
    else:
        table, info = finalise(scorer.score(chunk), chunk.table, scorer, name, options, time.perf_counter() - t0)
        data = table_to_parquet(table)
    return ShardResult(task.index, task.start, list(chunk.table.index), data, task.content,
                       time.perf_counter() - t0, info)


def local_executor(scorer, name: str, options: dict, mode: str):
    """Run the shards one after another in this process (the single-machine path)."""
    def execute(tasks: Iterator[ShardTask]) -> Iterator[ShardResult]:
        for task in tasks:
            yield run_task(scorer, name, options, mode, task)
    return execute


def _reuse(store, task: "ShardTask", kind: str, on_mismatch: str, damaged: list) -> bool:
    """Whether the finished shard of ``task`` can be reused as it is. A shard whose file is missing or damaged
    (deleted or truncated by hand) is forgotten and scored again, never reused (its problem goes to
    ``damaged``); one finished on other samples raises, or is forgotten with ``on_mismatch="overwrite"``."""
    from kit.shards import ScoreFolderError

    if store.is_done(task.index, task.content, kind):
        problem = store.damage(task.index, kind)
        if problem is None:
            return True
        damaged.append(problem)
        store.forget(task.index)
    elif task.index in store.finished(kind):
        if on_mismatch == "error":
            raise ScoreFolderError(
                f"{store.folder}: shard {task.index} (pool positions {task.start}..{task.start + len(task.chunk) - 1}) "
                "was scored on other samples than the pool now holds there (was the pool edited?): score into a new "
                "folder, or overwrite (--overwrite / on_mismatch='overwrite')")
        store.forget(task.index)
    return False


def _finish_encoded(store, scorer, name: str, options: dict, order: list, n_scored: int) -> bool:
    """The pool-wide step of an encode-then-finish scorer, from every shard's encoding, written as the final
    shards; skipped (``False``) when nothing was encoded now and the final shards are intact and current."""
    from kit.shards import load_encoded

    last = len(order)
    finals = store.finished("shards")
    fresh = n_scored == 0 and store.complete and len(finals) == last and all(
        finals.get(i, {}).get("content_sha256") == c and store.damage(i) is None for i, (_, _, c) in enumerate(order))
    if fresh:
        return False
    arrays = load_encoded(store.folder, [e for e in store.manifest["encoded"] if int(e["index"]) < last])
    ids = [sid for _, part, _ in order for sid in part]
    t0 = time.perf_counter()
    result = scorer.finish(ids, arrays)
    seconds = time.perf_counter() - t0
    table, info = finalise(result, pd.DataFrame(index=pd.Index(ids, name="id")), scorer, name, options, seconds)
    store.manifest["shards"] = []
    store.set_info(info)
    for index, (start, part, content) in enumerate(order):
        share = seconds * len(part) / max(len(ids), 1)
        store.write_shard(index, start, table.iloc[start:start + len(part)], content, share)
    return True


def score_shards(pool, name: str, out, *, shard_size: int | None = None, on_mismatch: str = "error",
                 progress: bool = True, loader: dict | None = None, executor=None, **options) -> ScoreRun:
    """Score ``pool`` (a Pool, or a pool file read as a stream) with ``name`` into the folder ``out``, resumably.

    Finished shards whose samples are unchanged are skipped; a shard whose samples changed (the pool was
    edited) raises :class:`kit.shards.ScoreFolderError` unless ``on_mismatch="overwrite"``, which scores it
    again. ``shard_size`` is fixed when the folder is created (default 1024 samples). ``loader`` holds
    :func:`kit.data.load_pool` options for a pool file. ``executor(scorer, name, options, mode)`` returns a
    function from an iterator of :class:`ShardTask` to an iterator of :class:`ShardResult` (in any order):
    :func:`local_executor` by default, Ray Data in :mod:`kit.distributed`. Returns a :class:`ScoreRun`; read
    the scores with :func:`load_scores`.
    """
    from kit.shards import ShardStore

    t_start = time.perf_counter()
    loader = dict(loader or {})
    scorer = make_scorer(name, options, quiet=True)
    mode = _scoring_mode(scorer)
    if mode == "whole-pool":
        pool, shard_size = _whole_pool(pool, name, loader, progress)
        executor = None  # one shard: nothing to spread
    execute = (executor or local_executor)(scorer, name, options, mode)
    n_known = len(pool) if hasattr(pool, "table") else None
    store = ShardStore.open(out, name, folder_key(options), None if mode == "whole-pool" else shard_size,
                            on_mismatch=on_mismatch, n_samples=n_known,
                            default_shard_size=shard_size if mode == "whole-pool" else DEFAULT_SHARD_SIZE)
    try:
        _prepare_store(store, mode, shard_size, options)
        chunks, n_known, info = _source(pool, store.shard_size, loader)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_known, desc=f"{name} -> {Path(out).name}", unit="sample")
        counts, damaged, order = _score_missing(store, execute, chunks, mode, on_mismatch, bar)
        n_total = counts["total"]
        if mode == "encode-then-finish" and _finish_encoded(store, scorer, name, options, order, counts["scored"]):
            counts["scored"] = n_total  # every sample got its final score now
        store.finish(n_total, info())
        return ScoreRun(store.folder, n_total, counts["scored"], counts["reused"], store.complete,
                        time.perf_counter() - t_start, mode, damaged)
    finally:
        store.close()


def _scoring_mode(scorer) -> str:
    """``per-shard`` (a sample's score depends on it alone), ``encode-then-finish`` (pool-dependent, with a
    per-shard encoding finished over the whole pool) or ``whole-pool`` (pool-dependent, scored in one piece)."""
    if not is_pool_dependent(scorer):
        return "per-shard"
    return "encode-then-finish" if splits_work(scorer) else "whole-pool"


def _whole_pool(pool, name: str, loader: dict, progress: bool):
    """A whole-pool scorer's pool, held in memory, and its one shard's size."""
    from kit.data import Pool, load_pool

    if not isinstance(pool, Pool):
        pool = load_pool(pool, **loader)
    if progress:
        print(f"{name}: pool-dependent and without a per-shard encoding: scored in one piece "
              f"({len(pool)} samples held in memory; an interrupted run starts this scorer again)")
    return pool, max(len(pool), 1)


def _prepare_store(store, mode: str, shard_size, options: dict) -> None:
    """Record the mode and runtime options; a whole-pool folder whose one shard has another size starts again."""
    if mode == "whole-pool" and store.shard_size != shard_size:
        store.manifest["shard_size"] = shard_size
        for index in list(store.finished()):
            store.forget(index)
    store.manifest["mode"] = mode
    store.manifest["runtime_options"] = {k: str(v) for k, v in options.items() if k in RUNTIME_OPTIONS}


def _score_missing(store, execute, chunks, mode: str, on_mismatch: str, bar):
    """Score every shard the folder does not hold yet (finished ones are reused) and write each as it arrives.
    Returns the sample counts (``total``, ``scored``, ``reused``), the damaged shards found, and, for
    ``encode-then-finish``, every shard's ``(start, ids, content)`` in pool order."""
    from kit.shards import content_hash

    kind = "encoded" if mode == "encode-then-finish" else "shards"
    counts = {"total": 0, "scored": 0, "reused": 0}
    damaged: list[str] = []
    order: list[tuple[int, list, str]] = []

    def tasks() -> Iterator[ShardTask]:
        for index, start, chunk in chunks:
            n = len(chunk)
            counts["total"] += n
            content = content_hash(chunk.table)
            if mode == "encode-then-finish":
                order.append((start, list(chunk.table.index), content))
            if _reuse(store, ShardTask(index, start, chunk, content), kind, on_mismatch, damaged):
                counts["reused"] += n
                if bar is not None:
                    bar.update(n)
                continue
            yield ShardTask(index, start, chunk, content)

    for result in execute(tasks()):
        if mode == "encode-then-finish":
            store.write_encoded_bytes(result.index, result.start, result.ids, result.data, result.content,
                                      result.seconds)
        else:
            store.write_shard_bytes(result.index, result.start, result.ids, result.data, result.content,
                                    result.seconds, info=result.info)
        counts["scored"] += len(result.ids)
        if bar is not None:
            bar.update(len(result.ids))
    if bar is not None:
        bar.close()
    return counts, damaged, order


def save_scores(table: pd.DataFrame, path, info=None) -> Path:
    """Write a table (e.g. a joined score table) to one parquet file, with its score info (``info``, by default
    the one :func:`kit.score_info` finds) as JSON in the parquet schema metadata
    (:data:`kit.scoreinfo.SCHEMA_KEY`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kit.scoreinfo import schema_metadata

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = score_info(table, required=False) if info is None else info
    arrow = pa.Table.from_pandas(table)   # what DataFrame.to_parquet writes, less pandas' own attrs
    if info is not None:
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **schema_metadata(info)})
    pq.write_table(arrow, path)
    return path


def load_scores(path, warn: bool = True) -> pd.DataFrame:
    """A score table from a parquet file, or from a score folder (complete or interrupted) as one table.

    A folder's table holds its finished shards in pool order; its :class:`~kit.scoreinfo.ScoreInfo`
    (``kit.score_info(table)``) carries the manifest's ``scorer_name``, ``options``, ``columns``, ``label``,
    ``pool_dependent``, ``timing`` and, in ``folder``, whether it is ``complete`` and ``n_expected`` (the pool
    size, where known). A file's info is the one :func:`save_scores` wrote (or the pandas attrs an older kit
    wrote). An interrupted folder warns unless ``warn=False``.
    """
    table, info = _read(path, warn)
    return attach(table, info) if info is not None else table


def _read(path, warn: bool = True):
    """:func:`load_scores` as ``(table, info)`` (``info`` is ``None`` for a file written without one)."""
    from kit.shards import is_score_folder, read_folder, read_parquet

    path = Path(path)
    if path.is_dir():
        if not is_score_folder(path):
            raise FileNotFoundError(f"{path} is a folder without a manifest.json: not a kit score folder")
        table, info = read_folder(path)
        state = info.folder
        if warn and not state.complete:
            of = f" of {state.n_expected}" if state.n_expected is not None else ""
            warnings.warn(f"{path} is not complete: {len(table)}{of} samples scored so far "
                          f"({state.n_shards} shards); run the same command again to finish it",
                          stacklevel=3)
        return table, info
    if not path.exists():
        raise FileNotFoundError(f"no scores at {path}")
    return read_parquet(path)


def score_cached(pool, name: str, out, **options) -> pd.DataFrame:
    """``score()`` into the folder ``out`` that reuses what is there and re-scores when anything changed.

    Finished shards are reused when the scorer, its options and their samples match (a killed run
    resumes); a changed option or pool re-scores (the folder is overwritten). A table that needed no
    scoring says so in its info's ``reused``.
    """
    return score(pool, name, out=out, on_mismatch="overwrite", **options)


def _scorer_specs(scorers) -> list[tuple[str, dict]]:
    if isinstance(scorers, str):
        scorers = [scorers]
    if isinstance(scorers, Mapping):
        specs = [(str(k), dict(v or {})) for k, v in scorers.items()]
    else:
        specs = []
        for item in scorers:
            name, opts = (item, {}) if isinstance(item, str) else (item[0], dict(item[1] or {}))
            specs.append((str(name), opts))
    names = [n for n, _ in specs]
    if not names:
        raise ValueError("give at least one scorer name")
    if len(set(names)) != len(names):
        raise ValueError(f"each scorer once, please: {names}")
    return specs


def score_table(pool, scorers: Iterable | Mapping = ("image_text", "loss", "rich", "style"), out=None,
                **common) -> pd.DataFrame:
    """The one table every selector reads: ``source`` and the columns of each scorer, joined on the id.

    ``scorers`` is a list of registered names, a dict ``{name: options}``, or a list of ``(name, options)``
    pairs; ``common`` options (e.g. ``device="cuda"``) go to every scorer that names them as parameters. With ``out``
    (a folder), each scorer's shards go to ``out/<name>/`` like :func:`score_cached` (resumed, and reused
    when the scorer, its options and the pool match) and the joined table is written to
    ``out/score_table.parquet`` (read back with :func:`load_score_table`).

    The table is indexed by id in pool order: ``source``, then each scorer's selection columns (as it
    declares them), then ``status_<name>`` for a scorer that reports a per-sample status. Two scorers that
    make the same column are an error. Its :class:`~kit.scoreinfo.ScoreTableInfo` (``kit.score_info(table)``)
    holds, per scorer, its ``columns``, whether it is ``pool_dependent``, its ``label``, ``options``,
    ``timing`` and whether the table was ``reused``; the pool's hash; and the collapse check.
    """
    from kit.provenance import pool_hash

    specs = _scorer_specs(scorers)
    out = Path(out) if out is not None else None
    joined = pool.table[["source"]].copy()
    entries: dict[str, ScoreInfo] = {}
    owner: dict[str, str] = {"source": "pool"}
    for name, opts in specs:
        cls = SCORERS.get(name)
        accepted = inspect.signature(cls).parameters  # common options go where they are named parameters
        opts = {**{k: v for k, v in common.items() if k in accepted}, **opts}
        table, part = (_score(pool, name, part_path(out, name), on_mismatch="overwrite", **opts) if out is not None
                       else _score(pool, name, **opts))
        cols = list(part.columns or ())
        for col in cols:
            if col in owner:
                raise ValueError(f"scorers {owner[col]!r} and {name!r} both make column {col!r}; "
                                 f"score one of them separately")
            owner[col] = name
        joined = joined.join(table[cols])
        if "status" in table.columns:
            joined[f"status_{name}"] = table["status"].reindex(joined.index)
        entries[name] = part.entry()
    joined.index.name = "id"
    # every scorer's columns checked: the info's collapse and summary, a warning each
    info = record_collapse(joined, ScoreTableInfo(entries, pool_hash(pool)))
    if out is not None:
        save_scores(joined, out / TABLE_FILE, info)
    return attach(joined, info)


TABLE_FILE = "score_table.parquet"


def part_path(out, name: str) -> Path:
    """Where :func:`score_table` with ``out=out`` keeps scorer ``name``'s own score folder."""
    return Path(out) / name


def load_score_table(out, pool=None) -> pd.DataFrame | None:
    """The joined table :func:`score_table` wrote under ``out``, or ``None`` when there is none.

    With ``pool``, a table scored on other data (another pool hash) counts as none.
    """
    from kit.provenance import pool_hash

    path = Path(out) / TABLE_FILE
    if not path.is_file():
        return None
    table, info = _read(path)
    if pool is not None and getattr(info, "pool", None) != pool_hash(pool):
        return None
    return attach(table, info) if info is not None else table


def scorer_label(scores: pd.DataFrame, name: str, short: bool = True, default: str | None = None) -> str:
    """The label a score table records for scorer ``name`` (the image-text stand-in says it is not CLIP).

    ``short`` gives the few words meant for axis labels and titles; ``False`` the full description.
    """
    info = scorer_entry(scores, name)
    if info is None:
        return default if default is not None else name
    return str((info.short_label if short else info.label) or info.label or name)
