"""The mmSSR sampler written as plain Python loops: what ``kit.mmssr.sampler.select_mmssr`` is checked against.

The algorithm is the one of ``kit/mmssr/sampler.py``'s module doc (docs/methods.md, "The sampler"), one
step at a time with lists, sets and ``sorted``: no numpy in the loop, no counters kept incrementally. It
reads the score table through the sampler's own column resolution (capabilities, ``values``,
``tie_break``), so both see the same numbers. Used by ``tests/test_mmssr_sampler.py`` and by
``benchmarks/bench_mmssr_sampler.py --check``.
"""
from __future__ import annotations

import math

import pandas as pd

from kit.capabilities import style_names
from kit.mmssr.sampler import NO_SOURCE, _is_missing, _resolve_columns, bin_key
from kit.selection import resolve_budget


def plain_source(value) -> str:
    """A sample's source as the sampler sees it: missing -> ``""``, anything else -> ``str``."""
    return NO_SOURCE if _is_missing(value) else str(value)


def plain_styles(value, sample_id) -> list[str]:
    """A sample's distinct style names in order (see :func:`kit.capabilities.style_names`)."""
    try:
        return style_names(value)
    except TypeError as exc:
        raise TypeError(f"sample {sample_id!r}: {exc}") from None


def reference_mmssr(scores: pd.DataFrame, n: int, capabilities=None, threshold: float = 0.0,
                    bin_order: str = "official", values: str = "rating", tie_break: str = "pool") -> list:
    """The sampler of ``kit.mmssr.sampler``'s module doc written as plainly as possible (slow); the selected ids
    in the order taken."""
    cols = _resolve_columns(scores, capabilities, values, tie_break)
    if "styles" not in scores.columns:
        raise KeyError("the score table needs a 'styles' column (list of style names per sample)")
    ids = list(scores.index)
    sources = [plain_source(v) for v in scores["source"]] if "source" in scores else [NO_SOURCE] * len(ids)
    keys_of = []
    for v, i, src in zip(scores["styles"], ids, sources):
        keys = []
        for style in plain_styles(v, i):
            if bin_key(style, src) not in keys:
                keys.append(bin_key(style, src))
        keys_of.append(keys)
    n = resolve_budget(n, len(scores))

    selected: list[int] = []
    in_selected: set[int] = set()
    active = list(range(len(cols.caps)))
    while len(selected) < n and active:
        b = max((n - len(selected)) // len(active), 1)
        took_nothing = []
        for c in active:
            b = min(b, n - len(selected))
            vals = cols.values[c].tolist()
            ties = cols.ties[c].tolist() if cols.ties is not None else None
            candidates = [i for i in range(len(ids))
                          if i not in in_selected and not math.isnan(vals[i]) and vals[i] > threshold]
            if ties is None:
                candidates.sort(key=lambda i: (-vals[i], i))
            else:   # NaN tie values last among equal ratings
                candidates.sort(key=lambda i: (-vals[i], math.isnan(ties[i]), -(0 if math.isnan(ties[i]) else ties[i]), i))
            entries: dict[str, list[tuple[int, int, int]]] = {}
            for rank, i in enumerate(candidates):
                for pos, key in enumerate(keys_of[i]):
                    entries.setdefault(key, []).append((pos if bin_order == "official" else 0, rank, i))
            bins = {key: [i for _, _, i in sorted(e)] for key, e in entries.items()}
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
