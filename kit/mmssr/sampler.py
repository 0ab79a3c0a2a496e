"""The mmSSR sampler: spread a budget over capabilities and (source, style) bins (docs/methods.md, "The sampler").

Input: a score table indexed by sample id (pool order = row order) with one float column per
capability (NaN allowed), a ``styles`` column (list of style names per sample; a ``"a|b"`` string is
accepted too) and a ``source`` column. A sample's *bins* are its (source, style) pairs, one per
distinct style; a sample without any style is in no bin and can never be selected (a note says so).

The sampler, with N the budget, C the ordered capability list and t the threshold::

    S = []
    while |S| < N and C:
        b = max((N - |S|) // |C|, 1)
        for c in C:
            b = min(b, N - |S|)
            candidates = samples not in S with score_c > t (NaN never), by score_c desc, ties by pool order
            bins = (source, style) bins of the candidates, each in candidate order,
                   visited smallest first, ties by (source, style) compared as strings
            q = max(b // n_bins, 1); debt = 0
            for each bin, until b are taken in this step:
                take the first min(q + debt, b - taken) of its samples not already taken in this step
                debt = max(q + debt - free_in_bin, 0)        # free_in_bin: before taking
            S += taken (in the order taken)
            if |S| == N: stop
        drop the capabilities that took nothing in this round

The sampler is deterministic: ``seed`` is accepted for the common selector interface and unused.
:func:`_reference_mmssr` is the same algorithm written as plain Python loops (used by the tests);
:func:`select_mmssr` runs it with numpy and no per-row Python in the loop:

- once per capability: the candidates in (score desc, pool order) order, by one integer sort of
  packed (value, position) keys; then the (sample, bin) pairs grouped by bin in that order, by one
  integer sort of packed (bin, rank) keys;
- per step: bin sizes are kept current incrementally (when samples are selected, every capability's
  per-bin counts drop by the pairs of those samples), so ordering the bins costs O(bins); each bin
  is read from a pointer past its already-selected head, in growing windows filtered by two boolean
  masks (selected, taken in this step), so a step touches about as many entries as it takes.

On 2 CPU cores, 30% of a 2.6M-row, 14-capability, 8-source table takes about 10 s and adds about
0.4 GB to the process (``benchmarks/bench_mmssr_sampler.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kit.capabilities import STYLES, capability_keys, style_names
from kit.collapse import warn_collapsed
from kit.selection import Selection, Shortfall, resolve_budget

NO_SOURCE = ""


# ----------------------------------------------------------------------------- input checks
def _capability_columns(scores: pd.DataFrame, capabilities) -> tuple[list[str], list[str]]:
    """The capability columns to use, and notes about registered ones the table lacks."""
    notes = []
    if capabilities is None:
        caps = [k for k in capability_keys() if k in scores.columns]
        missing = [k for k in capability_keys() if k not in scores.columns]
        if not caps:
            raise ValueError("the score table has no capability column; expected some of "
                             f"{', '.join(capability_keys())} (or pass capabilities=[...])")
        if missing:
            notes.append(f"mmssr: {len(missing)} registered capabilities are not in the score table and "
                         f"were left out: {', '.join(missing)}")
    else:
        if isinstance(capabilities, str):
            capabilities = [capabilities]
        caps = list(dict.fromkeys(capabilities))
        if not caps:
            raise ValueError("capabilities must name at least one score column")
        missing = [k for k in caps if k not in scores.columns]
        if missing:
            raise KeyError(f"capabilities not in the score table: {', '.join(map(str, missing))}")
    for c in caps:
        col = scores[c]
        if not pd.api.types.is_numeric_dtype(col):
            bad = pd.to_numeric(col, errors="coerce").isna() & col.notna()
            if bad.any():
                pos = int(np.flatnonzero(bad.to_numpy())[0])
                raise TypeError(f"capability column {c!r} must hold numbers (NaN allowed): sample "
                                f"{scores.index[pos]!r} has {col.iloc[pos]!r}")
    return caps, notes


def _score_matrix(scores: pd.DataFrame, caps: list[str]) -> list[np.ndarray]:
    return [scores[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in caps]


def _is_missing(value) -> bool:
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _plain_source(value) -> str:
    """A sample's source as the sampler sees it: missing -> ``""``, anything else -> ``str``."""
    return NO_SOURCE if _is_missing(value) else str(value)


def _plain_styles(value, sample_id) -> list[str]:
    """A sample's distinct style names in order (see :func:`kit.capabilities.style_names`)."""
    try:
        return style_names(value)
    except TypeError as exc:
        raise TypeError(f"sample {sample_id!r}: {exc}") from None


# ----------------------------------------------------------------------------- reference
def _reference_mmssr(scores: pd.DataFrame, n: int, capabilities=None, threshold: float = 0.0) -> list:
    """The sampler of docs/methods.md written as plainly as possible (slow; for tests only)."""
    caps, _ = _capability_columns(scores, capabilities)
    if "styles" not in scores.columns:
        raise KeyError("the score table needs a 'styles' column (list of style names per sample)")
    ids = list(scores.index)
    values = {c: scores[c].astype(float).tolist() for c in caps}
    sources = [_plain_source(v) for v in scores["source"]] if "source" in scores else [NO_SOURCE] * len(ids)
    styles = [_plain_styles(v, i) for v, i in zip(scores["styles"], ids)]
    bins_of = [[(sources[i], style) for style in styles[i]] for i in range(len(ids))]
    n = resolve_budget(n, len(scores))

    selected: list[int] = []
    in_selected: set[int] = set()
    active = list(caps)
    while len(selected) < n and active:
        b = max((n - len(selected)) // len(active), 1)
        took_nothing = []
        for c in active:
            b = min(b, n - len(selected))
            vals = values[c]
            candidates = [i for i in range(len(ids))
                          if i not in in_selected and not math.isnan(vals[i]) and vals[i] > threshold]
            candidates.sort(key=lambda i: (-vals[i], i))
            bins: dict[tuple[str, str], list[int]] = {}
            for i in candidates:
                for key in bins_of[i]:
                    bins.setdefault(key, []).append(i)
            taken: list[int] = []
            taken_set: set[int] = set()
            if bins:
                quota = max(b // len(bins), 1)
                debt = 0
                for key in sorted(bins, key=lambda k: (len(bins[k]), k)):
                    if len(taken) >= b:
                        break
                    free = [i for i in bins[key] if i not in taken_set]
                    take = free[:min(quota + debt, b - len(taken))]
                    debt = max(quota + debt - len(free), 0)
                    taken.extend(take)
                    taken_set.update(take)
            selected.extend(taken)
            in_selected.update(taken)
            if not taken:
                took_nothing.append(c)
            if len(selected) == n:
                break
        active = [c for c in active if c not in took_nothing]
    return [ids[i] for i in selected]


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
    """Per-row source codes into sorted source names (same meaning as :func:`_plain_source`)."""
    if "source" not in scores.columns:
        return (np.zeros(len(scores), dtype=np.int64), [NO_SOURCE],
                ["mmssr: the score table has no 'source' column; all samples count as one source"])
    codes, uniques = pd.factorize(scores["source"], use_na_sentinel=True)
    raw = [str(u) for u in uniques] + [NO_SOURCE]          # code -1 (missing) -> the last entry
    names = sorted(set(raw[:-1]) | ({NO_SOURCE} if (codes < 0).any() else set()))
    where = {name: i for i, name in enumerate(names)}
    remap = np.array([where.get(name, -1) for name in raw], dtype=np.int64)
    return remap[codes], names, []


def _style_pairs(scores: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Distinct (row, style code) pairs sorted by row then code, and the sorted style names.

    Same meaning as :func:`_plain_styles`, vectorised: explode the lists, factorize the names and
    clean (split on "|", strip) only the distinct names.
    """
    if "styles" not in scores.columns:
        raise KeyError("the score table needs a 'styles' column (list of style names per sample)")
    flat = scores["styles"].reset_index(drop=True).explode()   # lists, tuples, arrays; a str stays whole
    flat = flat[flat.notna()]
    codes, uniques = pd.factorize(flat)
    rows = flat.index.to_numpy(dtype=np.int64)
    pieces: list[list[str]] = []
    for j, name in enumerate(uniques):
        if not isinstance(name, str):
            pos = int(rows[np.flatnonzero(codes == j)[0]])
            raise TypeError(f"sample {scores.index[pos]!r}: styles must be a list of names (or 'a|b'), "
                            f"got {scores['styles'].iloc[pos]!r:.80}")
        pieces.append([p.strip() for p in name.split("|") if p.strip()])
    names = sorted({p for ps in pieces for p in ps})
    where = {name: i for i, name in enumerate(names)}
    piece_len = np.array([len(ps) for ps in pieces] + [0], dtype=np.int64)
    piece_codes = np.array([where[p] for ps in pieces for p in ps], dtype=np.int64)
    piece_start = np.cumsum(piece_len) - piece_len
    per_item = piece_len[codes]
    pair_row = np.repeat(rows, per_item)
    pair_sty = piece_codes[_ranges(piece_start[codes], per_item)] if len(piece_codes) else np.zeros(0, np.int64)
    n_sty = max(len(names), 1)
    key = np.sort(pair_row * n_sty + pair_sty)
    if len(key):
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    return key // n_sty, key % n_sty, names


# ----------------------------------------------------------------------------- fast sampler
@dataclass
class _Bins:
    """(sample, bin) pairs of the whole pool, sorted by sample (CSR layout).

    Bin code = source code * n_styles + style code, so comparing codes compares (source, style).
    """

    pair_row: np.ndarray      # int32, sample position of each pair
    pair_bin: np.ndarray      # int16 (or int32), bin code of each pair
    row_ptr: np.ndarray       # int64, the pairs of row i are [row_ptr[i], row_ptr[i + 1])
    row_code: np.ndarray      # int64, source code of each row
    n_bins: int               # number of possible bin codes
    sources: list[str]
    styles: list[str]

    @property
    def row_n_styles(self) -> np.ndarray:
        return np.diff(self.row_ptr)

    def pairs_of(self, rows: np.ndarray) -> np.ndarray:
        """Pair indices of ``rows``, row by row (in the order given)."""
        return _ranges(self.row_ptr[rows], self.row_ptr[rows + 1] - self.row_ptr[rows])


def _build_bins(scores: pd.DataFrame) -> tuple[_Bins, list[str]]:
    n_rows = len(scores)
    src_code, src_names, notes = _source_codes(scores)
    pair_row, pair_sty, sty_names = _style_pairs(scores)
    n_sty = max(len(sty_names), 1)
    n_bins = max(len(src_names), 1) * n_sty
    bin_dtype = np.int16 if n_bins <= np.iinfo(np.int16).max else np.int32
    pair_bin = (src_code[pair_row] * n_sty + pair_sty).astype(bin_dtype)
    row_ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(pair_row, minlength=n_rows), out=row_ptr[1:])
    bins = _Bins(pair_row.astype(np.int32), pair_bin, row_ptr, src_code, n_bins, src_names, sty_names)
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


@dataclass
class _CapabilityBins:
    """One capability's candidates grouped by bin, each bin in candidate (rank) order.

    ``rows[starts[k]:starts[k + 1]]`` is bin k; ``sizes[k]`` counts its entries not yet selected;
    every entry of bin k before ``ptr[k]`` is already selected (so scans start there).
    """

    rows: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    ptr: np.ndarray
    valid: np.ndarray   # bool per row: score > threshold


_PACK32_LIMIT = int(np.iinfo(np.int32).max)


def _capability_bins(vals: np.ndarray, threshold: float, bins: _Bins) -> _CapabilityBins:
    order = _descending_order(vals, threshold)
    n_cand = len(order)
    shift = max(int(n_cand).bit_length(), 1)
    # packed (bin, rank) keys; 32-bit when they fit (numpy sorts those about twice as fast)
    dtype = np.int32 if (bins.n_bins << shift) <= _PACK32_LIMIT else np.int64
    rank = np.full(len(vals), -1, dtype=dtype)
    rank[order] = np.arange(n_cand, dtype=dtype)
    pair_rank = rank[bins.pair_row]
    keep = pair_rank >= 0
    key = (bins.pair_bin[keep].astype(dtype) << dtype(shift)) | pair_rank[keep]
    key.sort()                                       # by bin, then rank
    rows = order[key & dtype((1 << shift) - 1)].astype(np.int32)
    starts = np.searchsorted(key >> dtype(shift), np.arange(bins.n_bins + 1, dtype=dtype)).astype(np.int64)
    return _CapabilityBins(rows, starts, np.diff(starts), starts[:-1].copy(), vals > threshold)


def _first_free(rows: np.ndarray, start: int, end: int, want: int, blocked_a: np.ndarray,
                blocked_b: np.ndarray, hint: int) -> tuple[np.ndarray, int]:
    """The first ``want`` entries of ``rows[start:end]`` blocked in neither mask, and where to resume.

    Scans growing windows, so only about as many entries as needed are touched.
    """
    parts, p, need, width = [], start, want, max(hint, 16)
    while need > 0 and p < end:
        hi = min(end, p + width)
        window = rows[p:hi]
        free = np.flatnonzero(~(blocked_a[window] | blocked_b[window]))
        if len(free) >= need:
            parts.append(window[free[:need]])
            p += int(free[need - 1]) + 1
            need = 0
        else:
            parts.append(window[free])
            need -= len(free)
            p = hi
        width *= 2
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=rows.dtype)), p


@dataclass
class _Log:
    steps: list = field(default_factory=list)   # (round, capability, b, n_bins, taken)
    dropped: dict = field(default_factory=dict)  # capability -> round it was dropped after
    rounds: int = 0


def _run_fast(values: list[np.ndarray], caps: list[str], bins: _Bins, n: int, threshold: float,
              log: _Log, progress: bool = False) -> np.ndarray:
    n_rows = len(bins.row_ptr) - 1
    in_selected = np.zeros(n_rows, dtype=bool)
    in_step = np.zeros(n_rows, dtype=bool)
    step_count = np.zeros(bins.n_bins, dtype=np.int64)  # samples taken in this step, per bin
    chunks: list[np.ndarray] = []
    n_sel = 0
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    states = [_capability_bins(v, threshold, bins)
              for v in tqdm(values, desc="mmssr: ranking capabilities", disable=not progress, leave=False)]
    active = list(range(len(caps)))
    while n_sel < n and active:
        log.rounds += 1
        b = max((n - n_sel) // len(active), 1)
        took_nothing = []
        for ci in active:
            b = min(b, n - n_sel)
            st = states[ci]
            present = np.flatnonzero(st.sizes)
            parts: list[np.ndarray] = []
            taken = 0
            if len(present):
                visit = present[np.lexsort((present, st.sizes[present]))]  # size, then (source, style)
                quota = max(b // len(present), 1)
                debt = 0
                for k in visit.tolist():
                    if taken >= b:
                        break
                    free = int(st.sizes[k] - step_count[k])
                    want = min(quota + debt, b - taken)
                    if want > 0 and free > 0:
                        take, st.ptr[k] = _first_free(st.rows, int(st.ptr[k]), int(st.starts[k + 1]), want,
                                                      in_selected, in_step, want + int(step_count[k]))
                        in_step[take] = True
                        step_count += np.bincount(bins.pair_bin[bins.pairs_of(take)], minlength=bins.n_bins)
                        parts.append(take)
                        taken += len(take)
                    debt = max(quota + debt - free, 0)
            log.steps.append((log.rounds, caps[ci], b, int(len(present)), taken))
            if taken:
                new = np.concatenate(parts).astype(np.int64)
                in_selected[new] = True
                in_step[new] = False
                step_count[:] = 0
                pairs = bins.pairs_of(new)
                pair_rows, pair_bins = bins.pair_row[pairs], bins.pair_bin[pairs]
                for cj in active:   # keep every capability's per-bin candidate counts current
                    mine = states[cj].valid[pair_rows]
                    states[cj].sizes -= np.bincount(pair_bins[mine], minlength=bins.n_bins)
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
def _count_table(pool_counts: pd.Series, sel_counts: pd.Series, n_pool: int, n_sel: int, name: str) -> pd.DataFrame:
    table = pd.DataFrame({"pool": pool_counts, "selected": sel_counts}).fillna(0).astype(np.int64)
    table["pool_share"] = table["pool"] / n_pool if n_pool else np.nan
    table["selected_share"] = table["selected"] / n_sel if n_sel else np.nan
    table.index.name = name
    return table


def _style_report(bins: _Bins, chosen: np.ndarray, n_rows: int) -> pd.DataFrame:
    sty = bins.pair_bin.astype(np.int64) % max(len(bins.styles), 1)
    pool = np.bincount(sty, minlength=len(bins.styles))
    sel_mask = np.zeros(n_rows, dtype=bool)
    sel_mask[chosen] = True
    sel = np.bincount(sty[sel_mask[bins.pair_row]], minlength=len(bins.styles))
    order = [s for s in STYLES if s in bins.styles] + [s for s in bins.styles if s not in STYLES]
    pos = {s: i for i, s in enumerate(bins.styles)}
    table = _count_table(pd.Series({s: pool[pos[s]] for s in order}, dtype=np.int64),
                         pd.Series({s: sel[pos[s]] for s in order}, dtype=np.int64), n_rows, len(chosen), "style")
    return table.reindex(order)


def _source_report(bins: _Bins, chosen: np.ndarray) -> pd.DataFrame:
    k = len(bins.sources)
    pool = pd.Series(np.bincount(bins.row_code, minlength=k), index=bins.sources)
    sel = pd.Series(np.bincount(bins.row_code[chosen], minlength=k), index=bins.sources)
    return _count_table(pool, sel, len(bins.row_code), len(chosen), "source")


def _capability_report(caps, values, threshold, log: _Log) -> pd.DataFrame:
    steps = pd.DataFrame(log.steps, columns=["round", "capability", "b", "n_bins", "taken"])
    taken = steps.groupby("capability", sort=False)["taken"].sum()
    rows = []
    for c, v in zip(caps, values):
        rows.append({"capability": c, "candidates": int(np.count_nonzero(v > threshold)),
                     "taken": int(taken.get(c, 0)),
                     "steps": int((steps["capability"] == c).sum()),
                     "dropped_after_round": log.dropped.get(c, pd.NA)})
    table = pd.DataFrame(rows).set_index("capability")
    table["dropped_after_round"] = table["dropped_after_round"].astype("Int64")
    return table


# ----------------------------------------------------------------------------- selector
def select_mmssr(scores: pd.DataFrame, n, seed: int = 0, capabilities=None, threshold: float = 0.0,
                 progress: bool = False) -> Selection:
    """Select ``n`` sample ids (selection order) with the deterministic mmSSR sampler.

    ``n``: a count (or a fraction in (0, 1) of the pool, as :func:`kit.select` would resolve it).
    ``capabilities``: the ordered capability columns to use (default: every registered capability
    present in the table, in registry order); passing a subset is capability customisation.
    ``threshold``: a sample is a candidate of capability c only if its score is > threshold.
    ``seed`` is accepted for the common selector interface and unused: the sampler is deterministic.
    ``progress`` shows a bar while the capabilities are ranked (the slow part on millions of rows).

    The result's ``.report`` holds ``capabilities`` (candidates and samples taken per capability,
    steps run, round dropped), ``styles`` and ``sources`` (counts in pool vs selection) and ``steps``
    (one row per capability step: round, b, number of bins, taken). ``.notes`` explain a shortfall.
    """
    if not isinstance(scores, pd.DataFrame):
        raise TypeError("scores must be a pandas DataFrame indexed by sample id")
    if not scores.index.is_unique:
        dup = scores.index[scores.index.duplicated()][:3].tolist()
        raise ValueError(f"score table has duplicate sample ids, e.g. {dup}")
    threshold = float(threshold)
    if math.isnan(threshold):
        raise ValueError("threshold must be a number, not NaN")
    n = resolve_budget(n, len(scores))
    caps, notes = _capability_columns(scores, capabilities)
    values = _score_matrix(scores, caps)
    warn_collapsed(scores, caps, "selector 'mmssr'")
    bins, source_notes = _build_bins(scores)
    notes += source_notes
    no_style = int(np.count_nonzero(bins.row_n_styles == 0))
    if no_style:
        example = scores.index[np.flatnonzero(bins.row_n_styles == 0)[0]]
        notes.append(f"mmssr: {no_style} samples have no style (e.g. {example!r}) and are in no bin, "
                     "so they can never be selected")
    log = _Log()
    chosen = _run_fast(values, caps, bins, n, threshold, log, progress)
    short = None
    if len(chosen) < n:
        short = Shortfall(n, len(chosen), f"every capability ran out of candidates (score > {threshold:g}, not yet "
                                          f"selected, with a style) after {log.rounds} rounds")
    report = {
        "capabilities": _capability_report(caps, values, threshold, log),
        "styles": _style_report(bins, chosen, len(scores)),
        "sources": _source_report(bins, chosen),
        "steps": pd.DataFrame(log.steps, columns=["round", "capability", "b", "n_bins", "taken"]),
    }
    resolved = {"capabilities": caps, "threshold": threshold}
    return Selection(scores.index[chosen].tolist(), method="mmssr", resolved=resolved, seed=seed, budget=n,
                     notes=notes, shortfall=short, report=report)
