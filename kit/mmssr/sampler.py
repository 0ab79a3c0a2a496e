"""The mmSSR sampler: spread a budget over capabilities and (style, source) bins (docs/methods.md, "The sampler").

Input: a score table indexed by sample id (pool order = row order) with one numeric column per
capability (the integer ratings 0-5 by default; NaN allowed), a ``styles`` column (list of style
names per sample; a ``"a|b"`` string is accepted too) and a ``source`` column. A sample's *bins* are
its distinct styles, each keyed like the official ``f"{style}+{source}"`` string
(``llava/select/utils.py``, ``parse_sty``); any style name forms its own bin, the 9 official ones and
any other text a styler wrote alike. A sample without any style is in no bin and can never be
selected (a note says so).

The sampler, with N the budget, C the ordered capability list and t the threshold::

    S = []
    while |S| < N and C:
        b = max((N - |S|) // |C|, 1)
        for c in C:
            b = min(b, N - |S|)
            candidates = samples not in S with score_c > t (NaN never), by score_c desc, ties by pool order
            bins = the candidates' bins; inside a bin (bin_order="official", as the official melt over the
                   sty_1, sty_2, ... columns): first the candidates whose FIRST style is the bin's style, in
                   candidate order, then those for which it is the second style, and so on
                   (bin_order="score": candidate order only);
                   visited smallest first, equal sizes by key string
            q = max(b // n_bins, 1); debt = 0
            for each bin, until b are taken in this step:
                take the first min(q + debt, b - taken) of its samples not already taken in this step
                debt = max(q + debt - free_in_bin, 0)        # free_in_bin: before taking
            S += taken (in the order taken)
            if |S| == N: stop
        drop the capabilities that took nothing in this round

The official loop is ``llava/select/mmssr.py``; the kit keeps its arithmetic and differs on purpose
in four places (docs/methods.md, "Where the kit differs"): each step is capped at b (the official
bin loop can overshoot when multi-label samples leave bins empty and debt piles up), a capability
that runs out is dropped with a :class:`~kit.selection.Shortfall` at the end instead of stopping the
run with an error, the given capability order is kept in every round (officially Python's set order
from round 2), and ties have a defined order: the official code sorts ratings and bin sizes with
pandas' default ``sort_values`` (quicksort, which is not stable, so its order among ties is
arbitrary), the kit sorts stably (equal ratings in pool order; equal-size bins by key string, the
order pandas' sorted ``groupby`` leaves them in).

The sampler is deterministic: ``seed`` is accepted for the common selector interface and unused.
:func:`select_mmssr` runs the algorithm with numpy and no per-row Python in the loop (the tests check it
against the same algorithm written as plain Python loops, ``tests/support/reference_mmssr.py``):

- once: the (sample, bin, style position) pairs of the whole pool, and a *segment* per
  (bin, position) (``bin_order="official"``) or per bin (``"score"``);
- integer ratings (few distinct values, the default): no per-capability sort at all. The pairs are
  put in (segment, pool position) order once; inside a segment a capability's candidates come by
  rating level, highest first, so each (segment, level) is read lazily from its own pointer,
  skipping the pairs of other levels. Counters per (segment, level) say how many entries are
  still free, so a scan stops at the last one it needs;
- continuous scores: once per capability the candidates in (score desc, pool order) order, by one
  integer sort of packed (value, position) keys, then the pairs grouped by segment in that order by
  one integer sort of packed (segment, rank) keys;
- per step: counters are kept current incrementally (when samples are selected, every capability's
  counts drop by the pairs of those samples), so ordering the bins costs O(bins).

Speed and memory: ``benchmarks/bench_mmssr_sampler.py`` (30% of a 2.6M-row, 14-capability table).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kit.capabilities import STYLES, capability_keys, expected_column
from kit.collapse import warn_collapsed
from kit.selection import Selection, Shortfall, resolve_budget

NO_SOURCE = ""
BIN_ORDERS = ("official", "score")
VALUES = ("rating", "expected")
TIE_BREAKS = ("pool", "expected")
MAX_LEVELS = 64   # integer-valued columns with at most this many values between min and max use levels


def bin_key(style: str, source: str) -> str:
    """A bin's key, as the official ``parse_sty`` writes it: ``f"{style}+{source}"``."""
    return f"{style}+{source}"


# ----------------------------------------------------------------------------- input checks
def _capability_keys(scores: pd.DataFrame, capabilities, column_of) -> tuple[list[str], list[str]]:
    """The capability keys to use, and notes about registered ones the table lacks."""
    notes = []
    if capabilities is None:
        caps = [k for k in capability_keys() if column_of(k) in scores.columns]
        missing = [k for k in capability_keys() if column_of(k) not in scores.columns]
        if not caps:
            raise ValueError("the score table has no capability column; expected some of "
                             f"{', '.join(column_of(k) for k in capability_keys())} (or pass capabilities=[...])")
        if missing:
            notes.append(f"mmssr: {len(missing)} registered capabilities are not in the score table and "
                         f"were left out: {', '.join(missing)}")
    else:
        if isinstance(capabilities, str):
            capabilities = [capabilities]
        caps = list(dict.fromkeys(capabilities))
        if not caps:
            raise ValueError("capabilities must name at least one score column")
        missing = [column_of(k) for k in caps if column_of(k) not in scores.columns]
        if missing:
            raise KeyError(f"capabilities not in the score table: {', '.join(map(str, missing))}")
    return caps, notes


def _numeric(scores: pd.DataFrame, column: str) -> np.ndarray:
    col = scores[column]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        bad = pd.to_numeric(col, errors="coerce").isna() & col.notna()
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise TypeError(f"capability column {column!r} must hold numbers (NaN allowed): sample "
                            f"{scores.index[pos]!r} has {col.iloc[pos]!r}")
        col = pd.to_numeric(col, errors="coerce")
    return col.to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass
class _Columns:
    """What the sampler reads: per capability the values it thresholds and orders by (and a tie-break)."""

    caps: list[str]
    columns: list[str]
    values: list[np.ndarray]
    ties: list[np.ndarray] | None   # secondary key (higher first) among equal values, or None
    notes: list[str]


def _resolve_columns(scores, capabilities, values: str, tie_break: str) -> _Columns:
    if values not in VALUES:
        raise ValueError(f"values must be one of {VALUES}, not {values!r}")
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {TIE_BREAKS}, not {tie_break!r}")
    column_of = expected_column if values == "expected" else (lambda k: k)
    caps, notes = _capability_keys(scores, capabilities, column_of)
    columns = [column_of(k) for k in caps]
    vals = [_numeric(scores, c) for c in columns]
    ties = None
    if tie_break == "expected":
        if values == "expected":
            raise ValueError("tie_break='expected' orders equal ratings by their expected values; with "
                             "values='expected' there is nothing left to break")
        missing = [expected_column(k) for k in caps if expected_column(k) not in scores.columns]
        if missing:
            raise KeyError(f"tie_break='expected' needs the expected-value columns {', '.join(missing)}")
        ties = [_numeric(scores, expected_column(k)) for k in caps]
    return _Columns(caps, columns, vals, ties, notes)


def _is_missing(value) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


# ----------------------------------------------------------------------------- fast input handling
def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for each (s, l), vectorised."""
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts.astype(np.int64) - offsets, lengths) + np.arange(total, dtype=np.int64)


def _source_codes(scores: pd.DataFrame) -> tuple[np.ndarray, list[str], list[str]]:
    """Per-row source codes into the distinct source names (a missing source is ``""``, anything else ``str``)."""
    if "source" not in scores.columns:
        return (np.zeros(len(scores), dtype=np.int64), [NO_SOURCE],
                ["mmssr: the score table has no 'source' column; all samples count as one source"])
    codes, uniques = pd.factorize(scores["source"], use_na_sentinel=True)
    raw = [str(u) for u in uniques] + [NO_SOURCE]          # code -1 (missing) -> the last entry
    names = sorted(set(raw[:-1]) | ({NO_SOURCE} if (codes < 0).any() else set()))
    where = {name: i for i, name in enumerate(names)}
    remap = np.array([where.get(name, -1) for name in raw], dtype=np.int64)
    return remap[codes], names, []


def _flat_styles(column: pd.Series) -> tuple[np.ndarray, list]:
    """Per-row item counts and the items of a styles column, flattened in row order.

    Lists, tuples and arrays are flattened (a fast path when every cell is one of them); a string
    is one item; a missing cell has none. Other cells raise ``TypeError`` naming the sample.
    """
    cells = column.to_numpy(dtype=object)
    kinds = set(map(type, cells))
    if kinds <= {list, tuple, np.ndarray}:
        lengths = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
        return lengths, list(itertools.chain.from_iterable(cells))
    lengths = np.zeros(len(cells), dtype=np.int64)
    items: list = []
    for i, cell in enumerate(cells):
        if isinstance(cell, str):
            items.append(cell)
            lengths[i] = 1
        elif isinstance(cell, (list, tuple, np.ndarray)):
            items.extend(cell)
            lengths[i] = len(cell)
        elif not _is_missing(cell):
            raise TypeError(f"sample {column.index[i]!r}: styles must be a list of names (or 'a|b'), "
                            f"got {cell!r:.80}")
    return lengths, items


def _first_in_row(row: np.ndarray, name: np.ndarray, n_names: int) -> np.ndarray:
    """Mask of the (row, name) items seen for the first time in their row (rows ascending, items in order)."""
    if not len(row):
        return np.zeros(0, dtype=bool)
    counts = np.bincount(row)
    longest = int(counts.max())
    if longest > 32:   # a few very long rows: one sort instead of many passes
        key = row.astype(np.int64) * n_names + name
        _, first = np.unique(key, return_index=True)
        keep = np.zeros(len(row), dtype=bool)
        keep[first] = True
        return keep
    keep = np.ones(len(row), dtype=bool)
    for d in range(1, longest):
        same = (row[d:] == row[:-d]) & (name[d:] == name[:-d])
        keep[d:] &= ~same
    return keep


@dataclass
class _Bins:
    """(sample, bin, position) pairs of the whole pool, sorted by sample then style position (CSR layout).

    Bin codes index ``keys`` (sorted ``f"{style}+{source}"`` strings), so comparing codes compares keys.
    A *segment* is a (bin, position) for ``bin_order="official"`` and a bin for ``"score"``:
    ``seg = bin * n_pos + pos`` (``n_pos`` = 1 for ``"score"``).
    """

    pair_row: np.ndarray      # int32, sample position of each pair
    pair_bin: np.ndarray      # int32, bin code of each pair
    pair_seg: np.ndarray      # int32, segment of each pair
    pair_style: np.ndarray    # int32, style-name code of each pair
    row_ptr: np.ndarray       # int64, the pairs of row i are [row_ptr[i], row_ptr[i + 1])
    row_source: np.ndarray    # int64, source code of each row
    n_pos: int
    keys: list[str]           # bin key strings, sorted
    sources: list[str]
    styles: list[str]         # style names (sorted)

    @property
    def n_bins(self) -> int:
        return len(self.keys)

    @property
    def n_seg(self) -> int:
        return max(self.n_bins, 1) * self.n_pos

    @property
    def row_n_styles(self) -> np.ndarray:
        return np.diff(self.row_ptr)

    def pairs_of(self, rows: np.ndarray) -> np.ndarray:
        """Pair indices of ``rows``, row by row (in the order given)."""
        return _ranges(self.row_ptr[rows], self.row_ptr[rows + 1] - self.row_ptr[rows])


def _build_bins(scores: pd.DataFrame, bin_order: str) -> tuple[_Bins, list[str]]:
    if "styles" not in scores.columns:
        raise KeyError("the score table needs a 'styles' column (list of style names per sample)")
    n_rows = len(scores)
    src_code, src_names, notes = _source_codes(scores)
    lengths, items = _flat_styles(scores["styles"])
    item_row = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)
    codes, uniques = pd.factorize(pd.Series(items, dtype=object), use_na_sentinel=True)
    pieces: list[list[str]] = []
    for j, name in enumerate(uniques):
        if not isinstance(name, str):
            pos = int(item_row[np.flatnonzero(codes == j)[0]])
            raise TypeError(f"sample {scores.index[pos]!r}: styles must be a list of names (or 'a|b'), "
                            f"got {scores['styles'].iloc[pos]!r:.80}")
        pieces.append([p.strip() for p in name.split("|") if p.strip()])
    names = sorted({p for ps in pieces for p in ps})
    where = {name: i for i, name in enumerate(names)}
    n_names = max(len(names), 1)
    # every item expands to its pieces (code -1: a missing item inside a list, no pieces)
    piece_len = np.array([len(ps) for ps in pieces] + [0], dtype=np.int64)
    piece_codes = np.array([where[p] for ps in pieces for p in ps], dtype=np.int64)
    piece_start = np.cumsum(piece_len) - piece_len
    per_item = piece_len[codes]
    pair_row = np.repeat(item_row, per_item)
    pair_style = (piece_codes[_ranges(piece_start[codes], per_item)] if len(piece_codes)
                  else np.zeros(0, np.int64))
    keep = _first_in_row(pair_row, pair_style, n_names)
    pair_row, pair_style = pair_row[keep], pair_style[keep]
    row_ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(pair_row, minlength=n_rows), out=row_ptr[1:])
    pair_pos = np.arange(len(pair_row), dtype=np.int64) - row_ptr[pair_row]
    # bins: one per distinct key string f"{style}+{source}" (identical strings share a bin, as officially)
    n_src = max(len(src_names), 1)
    combo = pair_style * n_src + src_code[pair_row]
    present = np.flatnonzero(np.bincount(combo, minlength=n_names * n_src))
    combo_keys = [bin_key(names[c // n_src], src_names[c % n_src]) for c in present.tolist()]
    keys = sorted(set(combo_keys))
    key_code = {k: i for i, k in enumerate(keys)}
    combo_bin = np.zeros(n_names * n_src, dtype=np.int64)
    combo_bin[present] = [key_code[k] for k in combo_keys]
    pair_bin = combo_bin[combo]
    n_pos = (int(pair_pos.max()) + 1 if len(pair_pos) else 1) if bin_order == "official" else 1
    pair_seg = pair_bin * n_pos + (pair_pos if bin_order == "official" else 0)
    bins = _Bins(pair_row.astype(np.int32), pair_bin.astype(np.int32), pair_seg.astype(np.int32),
                 pair_style.astype(np.int32), row_ptr, src_code, n_pos, keys, src_names, names)
    return bins, notes


_INT64_LOW_BITS = np.int64(0x7FFFFFFFFFFFFFFF)


def _descending_order(vals: np.ndarray, threshold: float) -> np.ndarray:
    """Positions with ``vals > threshold``, by value descending, ties by position.

    Same result as ``idx[np.argsort(-vals[idx], kind="stable")]``, faster: the float is mapped to an
    order-preserving integer whose high bits are packed with the position into one int64 and sorted
    with numpy's (vectorised) integer sort. The few groups where the truncated value bits collide
    for different values are detected (value increases inside the output) and re-sorted exactly.
    """
    idx = np.flatnonzero(vals > threshold)          # NaN compares False
    if len(idx) < 2:
        return idx
    x = vals[idx] + 0.0                              # -0.0 -> 0.0, so both tie
    bits = x.view(np.int64)
    mono = np.where(bits < 0, bits ^ _INT64_LOW_BITS, bits)   # integer order == float order
    shift = max(int(idx[-1]).bit_length(), 1)
    key = (((~mono) >> shift) << shift) | idx        # ~mono: descending value; low bits: position
    key.sort()
    order = key & ((np.int64(1) << shift) - 1)
    v = vals[order]
    bad = np.flatnonzero(v[:-1] < v[1:])
    if len(bad):
        high = key >> shift
        groups = np.unique(high[bad])
        lo = np.searchsorted(high, groups, side="left")
        hi = np.searchsorted(high, groups, side="right")
        pos = _ranges(lo, hi - lo)
        sub = order[pos]
        gid = np.repeat(np.arange(len(groups)), hi - lo)
        order[pos] = sub[np.lexsort((sub, -vals[sub], gid))]
    return order


def _tie_broken_order(vals: np.ndarray, ties: np.ndarray, threshold: float) -> np.ndarray:
    """Positions with ``vals > threshold`` by value desc, then tie value desc (NaN last), then position."""
    idx = np.flatnonzero(vals > threshold)
    t = ties[idx]
    nan = np.isnan(t)
    return idx[np.lexsort((idx, np.where(nan, 0.0, -t), nan, -vals[idx]))]


def _integer_levels(vals: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Per-row level codes (0 = highest value, -1 = not a candidate) when the candidates' values are
    integers spanning at most ``MAX_LEVELS`` values; else ``None``."""
    v = vals[valid]
    if not len(v):
        return np.full(len(vals), -1, dtype=np.int8), 1
    hi, lo = float(v.max()), float(v.min())
    if not (np.isfinite(hi) and np.isfinite(lo)) or hi - lo >= MAX_LEVELS or not np.array_equal(v, np.floor(v)):
        return None
    code = np.full(len(vals), -1, dtype=np.int8)
    code[valid] = (hi - v).astype(np.int8)
    return code, int(hi - lo) + 1


# ----------------------------------------------------------------------------- fast sampler
@dataclass
class _Capability:
    """One capability's candidates as (segment, level) lists, each read lazily from its own pointer.

    ``rows[seg_start[s]:seg_start[s + 1]]`` holds segment s; the candidates of level l in segment s
    are the entries whose ``code[row] == l`` (in the order of ``rows``). ``count[s, l]`` counts those
    not yet selected; every such entry before ``ptr[s, l]`` is already selected (scans start there).
    """

    rows: np.ndarray         # int32 (shared by the integer capabilities)
    seg_start: np.ndarray    # int64 (n_seg + 1)
    code: np.ndarray         # int8 per row: level, or -1 when not a candidate
    levels: int
    count: np.ndarray        # int64 (n_seg, levels)
    ptr: np.ndarray          # int64 (n_seg, levels)

    def bin_sizes(self, n_pos: int) -> np.ndarray:
        return self.count.reshape(-1, n_pos * self.levels).sum(1)


_PACK32_LIMIT = int(np.iinfo(np.int32).max)


def _pair_counts(segs: np.ndarray, rows: np.ndarray, code: np.ndarray, levels: int, n_seg: int) -> np.ndarray:
    """(n_seg, levels) counts of the candidate pairs among the pairs (``segs``, ``rows``)."""
    flat = segs * (levels + 1)          # slot 0 of each segment counts the non-candidates (level -1)
    flat += code[rows]
    flat += 1
    return np.bincount(flat, minlength=n_seg * (levels + 1)).reshape(n_seg, levels + 1)[:, 1:]


def _segment_order(bins: _Bins) -> tuple[np.ndarray, np.ndarray]:
    """All pairs' rows in (segment, pool position) order, and the segment starts (one stable sort)."""
    kind_dtype = np.int16 if bins.n_seg <= np.iinfo(np.int16).max else np.int32
    order = np.argsort(bins.pair_seg.astype(kind_dtype), kind="stable")   # radix sort for int16
    rows = bins.pair_row[order]
    starts = np.zeros(bins.n_seg + 1, dtype=np.int64)
    np.cumsum(np.bincount(bins.pair_seg, minlength=bins.n_seg), out=starts[1:])
    return rows, starts


def _ranked_rows(order: np.ndarray, n_rows: int, bins: _Bins) -> tuple[np.ndarray, np.ndarray]:
    """The candidates' pairs grouped by segment, each segment in candidate (rank) order."""
    n_cand = len(order)
    shift = max(int(n_cand).bit_length(), 1)
    dtype = np.int32 if (bins.n_seg << shift) <= _PACK32_LIMIT else np.int64
    rank = np.full(n_rows, -1, dtype=dtype)
    rank[order] = np.arange(n_cand, dtype=dtype)
    pair_rank = rank[bins.pair_row]
    keep = pair_rank >= 0
    key = (bins.pair_seg[keep].astype(dtype) << dtype(shift)) | pair_rank[keep]
    key.sort()                                       # by segment, then rank
    rows = order[key & dtype((1 << shift) - 1)].astype(np.int32)
    starts = np.searchsorted(key >> dtype(shift), np.arange(bins.n_seg + 1, dtype=dtype)).astype(np.int64)
    return rows, starts


def _prepare(cols: _Columns, threshold: float, bins: _Bins, progress: bool) -> tuple[list[_Capability], list[str]]:
    n_rows = len(bins.row_ptr) - 1
    shared = None
    out, kinds = [], []
    for ci in tqdm(range(len(cols.caps)), desc="mmssr: preparing capabilities", disable=not progress, leave=False):
        vals = cols.values[ci]
        valid = vals > threshold                     # NaN compares False
        levels = _integer_levels(vals, valid) if cols.ties is None else None
        if levels is not None:
            code, n_levels = levels
            if shared is None:
                shared = _segment_order(bins)
            rows, starts = shared
            kinds.append("levels")
        else:
            order = (_descending_order(vals, threshold) if cols.ties is None
                     else _tie_broken_order(vals, cols.ties[ci], threshold))
            rows, starts = _ranked_rows(order, n_rows, bins)
            code = np.where(valid, 0, -1).astype(np.int8)
            n_levels = 1
            kinds.append("sorted")
        count = np.ascontiguousarray(_pair_counts(bins.pair_seg, bins.pair_row, code, n_levels, bins.n_seg))
        ptr = np.repeat(starts[:-1, None], n_levels, axis=1)
        out.append(_Capability(rows, starts, code, n_levels, count, ptr))
    return out, kinds


def _first_free(rows: np.ndarray, code: np.ndarray, level: int, start: int, end: int, want: int,
                state: np.ndarray, hint: int) -> tuple[np.ndarray, int]:
    """The first ``want`` entries of ``rows[start:end]`` of level ``level`` whose state is free (0).

    Scans growing windows, so about as many entries as needed are touched; returns the entries and
    where the next scan of this level may start.
    """
    parts, p, need, width = [], start, want, max(hint, 64)
    while need > 0 and p < end:
        hi = min(end, p + width)
        window = rows[p:hi]
        free = np.flatnonzero((code[window] == level) & (state[window] == 0))
        if len(free) >= need:
            parts.append(window[free[:need]])
            p += int(free[need - 1]) + 1
            need = 0
        else:
            parts.append(window[free])
            need -= len(free)
            p = hi
        width *= 2
    return (np.concatenate(parts) if len(parts) > 1 else parts[0] if parts else rows[:0]), p


@dataclass
class _Log:
    steps: list = field(default_factory=list)   # (round, capability, b, n_bins, taken)
    dropped: dict = field(default_factory=dict)  # capability -> round it was dropped after
    rounds: int = 0


FREE, SELECTED, IN_STEP = 0, 1, 2


def _run_fast(caps_state: list[_Capability], caps: list[str], bins: _Bins, n: int, log: _Log) -> np.ndarray:
    n_rows = len(bins.row_ptr) - 1
    state = np.zeros(n_rows, dtype=np.int8)
    chunks: list[np.ndarray] = []
    n_sel = 0
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    P = bins.n_pos
    active = list(range(len(caps)))
    while n_sel < n and active:
        log.rounds += 1
        b = max((n - n_sel) // len(active), 1)
        took_nothing = []
        for ci in active:
            b = min(b, n - n_sel)
            st = caps_state[ci]
            L = st.levels
            sizes = st.bin_sizes(P)
            present = np.flatnonzero(sizes)
            step_cnt = np.zeros((bins.n_seg, L), dtype=np.int64)
            parts: list[np.ndarray] = []
            taken = 0
            if len(present):
                visit = present[np.lexsort((present, sizes[present]))]   # size, then key string
                quota = max(b // len(present), 1)
                debt = 0
                for k in visit.tolist():
                    if taken >= b:
                        break
                    segs = slice(k * P, (k + 1) * P)
                    free_sl = st.count[segs] - step_cnt[segs]           # (P, L), in (position, level) order
                    free = int(free_sl.sum())
                    want = min(quota + debt, b - taken)
                    got = 0
                    if want > 0 and free > 0:
                        for flat in np.flatnonzero(free_sl.ravel()).tolist():
                            if got >= want:
                                break
                            pos, lv = divmod(flat, L)
                            s = k * P + pos
                            need = min(want - got, int(free_sl[pos, lv]))
                            take, st.ptr[s, lv] = _first_free(st.rows, st.code, lv, int(st.ptr[s, lv]),
                                                              int(st.seg_start[s + 1]), need, state, need)
                            state[take] = IN_STEP
                            pairs = bins.pairs_of(take)
                            step_cnt += _pair_counts(bins.pair_seg[pairs], bins.pair_row[pairs], st.code, L,
                                                     bins.n_seg)
                            parts.append(take)
                            got += len(take)
                        taken += got
                    debt = max(quota + debt - free, 0)
            log.steps.append((log.rounds, caps[ci], b, int(len(present)), taken))
            if taken:
                new = np.concatenate(parts).astype(np.int64)
                state[new] = SELECTED
                pairs = bins.pairs_of(np.sort(new))      # sorted: the lookups below read memory in order
                segs, rows = bins.pair_seg[pairs], bins.pair_row[pairs]
                for cj in active:   # keep every capability's counters current
                    other = caps_state[cj]
                    other.count -= _pair_counts(segs, rows, other.code, other.levels, bins.n_seg)
                chunks.append(new)
                n_sel += taken
            else:
                took_nothing.append(ci)
            if n_sel == n:
                break
        for ci in took_nothing:
            log.dropped[caps[ci]] = log.rounds
        active = [ci for ci in active if ci not in took_nothing]
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)


# ----------------------------------------------------------------------------- reports
def _count_table(names: list[str], pool: np.ndarray, sel: np.ndarray, n_pool: int, n_sel: int,
                 name: str) -> pd.DataFrame:
    pool, sel = np.asarray(pool, dtype=np.int64), np.asarray(sel, dtype=np.int64)
    return pd.DataFrame({"pool": pool, "selected": sel,
                         "pool_share": pool / n_pool if n_pool else np.full(len(pool), np.nan),
                         "selected_share": sel / n_sel if n_sel else np.full(len(sel), np.nan)},
                        index=pd.Index(names, name=name, dtype=object))


def _selected_mask(n_rows: int, chosen: np.ndarray) -> np.ndarray:
    mask = np.zeros(n_rows, dtype=bool)
    mask[chosen] = True
    return mask


def _style_report(bins: _Bins, chosen: np.ndarray, n_rows: int) -> pd.DataFrame:
    k = len(bins.styles)
    pool = np.bincount(bins.pair_style, minlength=k)
    sel = np.bincount(bins.pair_style[_selected_mask(n_rows, chosen)[bins.pair_row]], minlength=k)
    pos = {s: i for i, s in enumerate(bins.styles)}
    order = [s for s in STYLES if s in pos] + [s for s in bins.styles if s not in STYLES]
    idx = [pos[s] for s in order]
    table = _count_table(order, pool[idx], sel[idx], n_rows, len(chosen), "style")
    table["official"] = [s in STYLES for s in order]
    return table


def _unknown_style_note(bins: _Bins, chosen: np.ndarray, n_rows: int) -> tuple[str | None, dict]:
    unknown = np.array([s not in STYLES for s in bins.styles], dtype=bool)
    if not unknown.any():
        return None, {"names": 0, "samples": 0, "selected": 0}
    rows = np.zeros(n_rows, dtype=bool)
    rows[bins.pair_row[unknown[bins.pair_style]]] = True
    n_samples = int(rows.sum())
    n_selected = int(rows[chosen].sum())
    names = [s for s in bins.styles if s not in STYLES]
    shown = ", ".join(repr(s[:40]) for s in names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
    note = (f"mmssr: {n_samples} samples ({n_selected} selected) carry {len(names)} style names outside the 9 "
            f"official ones ({shown}); each forms its own (style, source) bins, as in the official sampler")
    return note, {"names": len(names), "samples": n_samples, "selected": n_selected}


def _source_report(bins: _Bins, chosen: np.ndarray) -> pd.DataFrame:
    k = len(bins.sources)
    return _count_table(bins.sources, np.bincount(bins.row_source, minlength=k),
                        np.bincount(bins.row_source[chosen], minlength=k), len(bins.row_source), len(chosen), "source")


def _capability_report(cols: _Columns, threshold, log: _Log, kinds: list[str]) -> pd.DataFrame:
    taken = dict.fromkeys(cols.caps, 0)
    steps = dict.fromkeys(cols.caps, 0)
    for _, cap, _, _, got in log.steps:
        taken[cap] += got
        steps[cap] += 1
    table = pd.DataFrame({
        "column": cols.columns,
        "candidates": [int(np.count_nonzero(v > threshold)) for v in cols.values],
        "taken": [taken[c] for c in cols.caps],
        "steps": [steps[c] for c in cols.caps],
        "dropped_after_round": pd.array([log.dropped.get(c) for c in cols.caps], dtype="Int64"),
        "ordering": kinds,
    }, index=pd.Index(cols.caps, name="capability", dtype=object))
    return table


def _steps_table(log: _Log) -> pd.DataFrame:
    ints = np.array([(r, b, k, t) for r, _, b, k, t in log.steps], dtype=np.int64).reshape(-1, 4)
    return pd.DataFrame({"round": ints[:, 0], "capability": pd.array([c for _, c, *_ in log.steps], dtype=object),
                         "b": ints[:, 1], "n_bins": ints[:, 2], "taken": ints[:, 3]})


# ----------------------------------------------------------------------------- selector
def select_mmssr(scores: pd.DataFrame, n, seed: int = 0, capabilities=None, threshold: float = 0.0,
                 bin_order: str = "official", values: str = "rating", tie_break: str = "pool",
                 progress: bool = False) -> Selection:
    """Select ``n`` sample ids (selection order) with the deterministic mmSSR sampler.

    ``n``: a count (or a fraction in (0, 1) of the pool, as :func:`kit.select` would resolve it).
    ``capabilities``: the ordered capability keys to use (default: every registered capability
    present in the table, in registry order); passing a subset is capability customisation.
    ``threshold``: a sample is a candidate of capability c only if its score is > threshold.
    ``bin_order``: ``"official"`` (default: inside a bin, first the samples whose first style is the
    bin's, then second, ..., each group by score; the official melt) or ``"score"`` (by score alone).
    ``values``: ``"rating"`` (default: the capability columns, integer ratings 0-5 from the scorers)
    or ``"expected"`` (the ``<key>_expected`` columns the VLM logits mode and the distilled head
    write beside the ratings: threshold and order by expected value).
    ``tie_break``: ``"pool"`` (default: equal scores in pool order, a stable order; the official
    ``sort_values`` uses pandas' default quicksort, which is not stable, so its order among ties is
    arbitrary) or ``"expected"`` (among equal ratings, the higher expected value first, then pool order).
    ``seed`` is accepted for the common selector interface and unused: the sampler is deterministic.
    ``progress`` shows a bar while the capabilities are prepared.

    The result's ``.report`` holds ``capabilities`` (column read, candidates and samples taken per
    capability, steps run, round dropped, ordering used), ``styles`` (counts in pool vs selection per
    style name, ``official`` marking the 9), ``sources``, ``unknown_styles`` (names outside the 9, the
    samples carrying them and how many were selected) and ``steps`` (one row per capability step:
    round, b, number of bins, taken). ``.notes`` explain a shortfall, samples without a style and
    style names outside the 9.
    """
    if not isinstance(scores, pd.DataFrame):
        raise TypeError("scores must be a pandas DataFrame indexed by sample id")
    if not scores.index.is_unique:
        dup = scores.index[scores.index.duplicated()][:3].tolist()
        raise ValueError(f"score table has duplicate sample ids, e.g. {dup}")
    if bin_order not in BIN_ORDERS:
        raise ValueError(f"bin_order must be one of {BIN_ORDERS}, not {bin_order!r}")
    threshold = float(threshold)
    if math.isnan(threshold):
        raise ValueError("threshold must be a number, not NaN")
    n = resolve_budget(n, len(scores))
    cols = _resolve_columns(scores, capabilities, values, tie_break)
    warn_collapsed(scores, cols.columns, "selector 'mmssr'")
    notes = list(cols.notes)
    bins, source_notes = _build_bins(scores, bin_order)
    notes += source_notes
    no_style = int(np.count_nonzero(bins.row_n_styles == 0))
    if no_style:
        example = scores.index[np.flatnonzero(bins.row_n_styles == 0)[0]]
        notes.append(f"mmssr: {no_style} samples have no style (e.g. {example!r}) and are in no bin, "
                     "so they can never be selected")
    log = _Log()
    state, kinds = _prepare(cols, threshold, bins, progress)
    chosen = _run_fast(state, cols.caps, bins, n, log)
    unknown_note, unknown = _unknown_style_note(bins, chosen, len(scores))
    if unknown_note:
        notes.append(unknown_note)
    short = None
    if len(chosen) < n:
        short = Shortfall(n, len(chosen), f"every capability ran out of candidates (score > {threshold:g}, not yet "
                                          f"selected, with a style) after {log.rounds} rounds")
    report = {
        "capabilities": _capability_report(cols, threshold, log, kinds),
        "styles": _style_report(bins, chosen, len(scores)),
        "sources": _source_report(bins, chosen),
        "unknown_styles": unknown,
        "steps": _steps_table(log),
    }
    resolved = {"capabilities": cols.caps, "columns": cols.columns, "threshold": threshold,
                "bin_order": bin_order, "values": values, "tie_break": tie_break}
    return Selection(scores.index[chosen].tolist(), method="mmssr", resolved=resolved, seed=seed, budget=n,
                     notes=notes, shortfall=short, report=report, positions=np.asarray(chosen, dtype=np.int64))
