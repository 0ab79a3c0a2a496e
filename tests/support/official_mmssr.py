"""A port of the official mmSSR selection loop (``llava/select/mmssr.py`` of github.com/lyumengyao/mmssr), for tests
and the benchmark.

It keeps the official data flow: the styles become ``sty_1, sty_2, ...`` columns of ``f"{style}+{source}"`` keys
(``parse_sty`` in ``llava/select/utils.py``), each capability step sorts the remaining candidates by rating
(``sort_values``), keeps those above the threshold, melts the ``sty_`` columns, groups the sample ids by key
(``groupby`` with sorted keys, lists in melted order), sorts the groups by size and fills them with a quota and a
debt. Three switches turn the official behaviour into the kit's (all on by default):

- ``stable``: stable sorts (the official ``sort_values`` default is quicksort, which leaves ties undefined);
- ``cap_steps``: each step takes at most its budget (officially a bin may take more once debt piled up);
- ``keep_order``: the capability order stays as given (officially ``list(set(caps) - set(drop))``).

A capability without candidates takes nothing and is dropped (officially ``select`` fails on
``assert n_bin > 0``). The result is the list of selected ids in the order taken (officially a set).
"""
from __future__ import annotations

import pandas as pd

from kit.capabilities import style_names


def _keys(styles, source) -> list[str]:
    out = []
    for style in style_names(styles):
        key = f"{style}+{source}"
        if key not in out:
            out.append(key)
    return out


def style_columns(scores: pd.DataFrame) -> pd.DataFrame:
    """The ``sty_1, sty_2, ...`` columns of the official parsed table (missing source -> ``""``)."""
    sources = scores["source"] if "source" in scores else pd.Series("", index=scores.index)
    keys = [_keys(s, "" if src is None or (not isinstance(src, str) and pd.isna(src)) else src)
            for s, src in zip(scores["styles"], sources)]
    width = max((len(k) for k in keys), default=0)
    table = pd.DataFrame([k + [None] * (width - len(k)) for k in keys], index=scores.index,
                         columns=[f"sty_{i + 1}" for i in range(width)])
    return table


def _select(df_sorted: pd.DataFrame, num_select: int, stable: bool, cap_steps: bool) -> list:
    sty = [c for c in df_sorted.columns if c.startswith("sty_")]
    melted = (df_sorted[sty].melt(ignore_index=False, var_name="style_idx", value_name="style")
              .dropna(subset=["style"]).reset_index())
    grouped = melted.groupby("style", group_keys=True)["idx"].apply(list)
    if len(grouped) == 0:
        return []
    by_size = grouped.sort_values(key=lambda x: x.apply(len), ascending=True,
                                  kind="stable" if stable else "quicksort")
    per_bin = max(num_select // len(grouped), 1)
    taken: list = []
    taken_set: set = set()
    debt = 0
    for _, ids in by_size.items():
        if len(taken) >= num_select:
            break
        free = [i for i in ids if i not in taken_set]
        count = min(per_bin + debt, len(free))
        debt = max(per_bin + debt - len(free), 0)
        if cap_steps:
            count = min(count, num_select - len(taken))
        taken.extend(free[:count])
        taken_set.update(free[:count])
    return taken


def official_mmssr(scores: pd.DataFrame, n: int, capabilities, threshold: float = 0, *, stable: bool = True,
                   cap_steps: bool = True, keep_order: bool = True) -> list:
    """The official loop on a kit score table (index = ids, capability columns, ``styles``, ``source``)."""
    caps = list(capabilities)
    ratings = scores[caps].join(style_columns(scores))
    ratings.index.name = "idx"
    valid = ratings.copy()
    selected: list = []
    while len(selected) < n and caps:
        budget = max(int(n - len(selected)) // len(caps), 1)
        drop = []
        for cap in caps:
            ordered = valid.sort_values(by=cap, ascending=False, kind="stable" if stable else "quicksort")
            budget = min(budget, n - len(selected))
            new = _select(ordered[ordered[cap] > threshold], budget, stable, cap_steps)
            if not new:
                drop.append(cap)
            else:
                valid = valid.drop(new)
                selected.extend(new)
            if len(selected) >= n:
                break
        caps = [c for c in caps if c not in drop] if keep_order else list(set(caps) - set(drop))
    return selected
