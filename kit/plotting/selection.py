"""Plots of selected subsets against their pool: shares of styles/sources, capability profiles, coverage
radars and violins, and a panel comparing several selections (counts, coverage, Jaccard overlap)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def share_bars(table: pd.DataFrame, title: str, ax=None, pool_col: str = "pool_share",
               selected_col: str = "selected_share", labels=("pool", "subset")):
    """Side-by-side horizontal bars of two shares per row (e.g. a style's share of pool and subset)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.38 * len(table) + 1.2))
    y = np.arange(len(table))
    ax.barh(y + 0.2, table[pool_col], height=0.4, color="0.7", label=labels[0])
    ax.barh(y - 0.2, table[selected_col], height=0.4, color="#C44E52", label=labels[1])
    ax.set_yticks(y, [str(i) for i in table.index])
    ax.invert_yaxis()
    ax.set_xlabel("share of samples")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def style_shares(styles: pd.Series, ids) -> pd.DataFrame:
    """Share of samples carrying each style, in the pool and in the subset ``ids`` (multi-label)."""
    pool = styles.explode().value_counts() / len(styles)
    sub = styles.loc[list(ids)].explode().value_counts() / max(len(ids), 1)
    out = pd.DataFrame({"pool_share": pool, "selected_share": sub}).fillna(0.0)
    return out.sort_values("pool_share", ascending=False)


def capability_profile(scores: pd.DataFrame, subsets: dict, capabilities, ax=None,
                       title: str = "mean capability score"):
    """Mean score per capability for the pool and each named subset (lines over the capabilities)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.8))
    caps = list(capabilities)
    x = np.arange(len(caps))
    ax.plot(x, scores[caps].mean().to_numpy(), color="0.5", lw=2, marker="o", label=f"pool ({len(scores)})")
    for name, ids in subsets.items():
        ax.plot(x, scores.loc[list(ids), caps].mean().to_numpy(), marker=".", label=f"{name} ({len(ids)})")
    ax.set_xticks(x, caps, rotation=40, ha="right")
    ax.set_ylabel("mean score (0–5)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return ax


def defect_rates(defects: pd.Series, subsets: dict, ax=None, title: str = "planted defects in each subset"):
    """Share of each planted defect kind in the pool and in each named subset (stacked bars)."""
    rows = {"pool": defects}
    rows.update({name: defects.loc[list(ids)] for name, ids in subsets.items()})
    table = pd.DataFrame({name: d[d != "none"].value_counts() / max(len(d), 1) for name, d in rows.items()})
    table = table.fillna(0.0).T
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * len(table) + 1.3))
    table.plot.barh(stacked=True, ax=ax, colormap="tab10")
    ax.invert_yaxis()
    ax.set_xlabel("share of the subset that is defective")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return ax, table


def overlap_heatmap(jaccard: pd.DataFrame, ax=None, title: str = "overlap between subsets (Jaccard)"):
    """The Jaccard matrix of :func:`kit.compare.compare_selections` as an annotated heatmap (0 to 1)."""
    n = len(jaccard)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * n + 2.5, 0.5 * n + 1.8))
    im = ax.imshow(jaccard.to_numpy(dtype=float), vmin=0.0, vmax=1.0, cmap="viridis")
    ax.set_xticks(range(n), [str(c) for c in jaccard.columns], rotation=45, ha="right")
    ax.set_yticks(range(n), [str(i) for i in jaccard.index])
    for i in range(n):
        for j in range(n):
            v = float(jaccard.iat[i, j])
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if v > 0.6 else "white")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title)
    return ax


def _coverage_axis_label(coverage: pd.DataFrame) -> str:
    from kit.compare import coverage_label

    return coverage_label(coverage)


def _capability_names(caps) -> list[str]:
    from kit.capabilities import capability_keys, display_name

    known = set(capability_keys())
    return [display_name(c) if c in known else str(c) for c in caps]


def coverage_radar(coverage: pd.DataFrame, ax=None, title: str = "capability coverage", pool_row: str = "pool",
                   short_names: bool = True):
    """A radar chart of per-capability coverage (mmSSR's figure): the pool filled in grey, each subset a line.

    ``coverage`` is :func:`kit.compare.capability_coverage` (rows: ``pool`` and the subsets; columns: the
    capabilities); its definition (share of samples rated at least 2 by default, or the mean rating) labels the radius.
    ``ax`` must be a polar axes (``subplot_kw={"projection": "polar"}``). Returns the Figure.
    """
    caps = list(coverage.columns)
    if len(caps) < 3:
        raise ValueError(f"a radar needs at least 3 capabilities, got {caps}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.2, 6.2), subplot_kw={"projection": "polar"})
    elif getattr(ax, "name", "") != "polar":
        raise ValueError("coverage_radar draws on a polar axes: subplot_kw={'projection': 'polar'}")
    fig = ax.figure
    angles = np.linspace(0, 2 * np.pi, len(caps), endpoint=False)
    closed = np.concatenate([angles, angles[:1]])
    n = coverage.attrs.get("coverage", {}).get("n", {})
    values = coverage.to_numpy(dtype=float)
    top = np.nanmax(values) if np.isfinite(values).any() else 1.0
    stat = coverage.attrs.get("coverage", {}).get("stat", "share")
    # share: the radius ends just above the largest value (small shares stay readable); mean: the 0-5 scale
    ax.set_ylim(0, min(1.0, np.ceil(top * 10 + 0.5) / 10) if stat == "share" else max(5.0, top))
    colors = plt.get_cmap("tab10").colors
    k = 0
    for name, row in coverage.iterrows():
        v = row.to_numpy(dtype=float)
        v = np.concatenate([v, v[:1]])
        label = f"{name} ({n[name]})" if name in n else str(name)
        if name == pool_row:
            ax.fill(closed, np.nan_to_num(v), color="0.6", alpha=0.35, lw=0)
            ax.plot(closed, v, color="0.4", lw=1.5, label=label)
        else:
            ax.plot(closed, v, color=colors[k % len(colors)], lw=1.8, marker="o", ms=3, label=label)
            k += 1
    ax.set_xticks(angles, caps if short_names else _capability_names(caps), fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"{title}\nradius: {_coverage_axis_label(coverage)}", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(3, len(coverage)),
              frameon=False)
    return fig


def capability_violins(scores: pd.DataFrame, ids, capabilities=None, name: str = "subset", ax=None,
                       title: str | None = None):
    """Per-capability rating distributions of the pool (left half, grey) and of the subset ``ids`` (right half).

    Each capability gets a split violin: the pool's ratings on the left, the subset's on the right, each
    normalised on its own (so a small subset stays visible); the lines inside mark the quartiles. Returns the
    Figure.
    """
    import seaborn as sns

    from kit.capabilities import capability_keys

    caps = [c for c in capability_keys() if c in scores.columns] if capabilities is None else list(capabilities)
    ids = list(ids)
    ratings = scores[caps].apply(pd.to_numeric, errors="coerce")
    long = pd.concat([ratings.assign(set=f"pool ({len(scores)})"),
                      ratings.loc[ids].assign(set=f"{name} ({len(ids)})")])
    long = long.melt(id_vars="set", var_name="capability", value_name="rating").dropna()
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(8.0, 0.75 * len(caps) + 2), 4.2))
    sides = [f"pool ({len(scores)})", f"{name} ({len(ids)})"]
    sns.violinplot(data=long, x="capability", y="rating", hue="set", hue_order=sides, order=caps, split=True,
                   inner="quart", cut=0, density_norm="width", common_norm=False, linewidth=0.8,
                   palette={sides[0]: "0.75", sides[1]: "#C44E52"}, ax=ax)
    ax.set_xticks(range(len(caps)), caps, rotation=40, ha="right")
    ax.set_xlabel("")
    ax.set_ylabel("capability rating (0–5)")
    ax.set_title(title or f"capability ratings: pool vs {name}")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    ax.figure.tight_layout()
    return ax.figure


def selection_panel(tables: dict, coverage: pd.DataFrame, title: str | None = None):
    """Several selections at once: counts (asked, selected, planted defects let through), per-capability
    coverage and their overlap (Jaccard).

    ``tables`` is :func:`kit.compare.compare_selections`; ``coverage`` is :func:`kit.compare.capability_coverage`
    of the same selections (the pool row included). Returns the Figure.
    """
    summary = tables["summary"].drop(index="pool", errors="ignore")
    names = list(summary.index)
    n = len(names)
    caps = list(coverage.columns)
    fig = plt.figure(figsize=(7.0 + 0.55 * len(caps) + 0.6 * n, 0.42 * max(n, 4) + 3.2))
    grid = fig.add_gridspec(1, 3, width_ratios=[1.0, 0.45 * len(caps) / max(n, 1) + 0.6, 1.0])
    ax_counts, ax_cov, ax_jac = (fig.add_subplot(grid[0, k]) for k in range(3))

    y = np.arange(n)
    selected = summary["selected"].to_numpy(dtype=float)
    asked = pd.to_numeric(summary["asked"], errors="coerce").to_numpy(dtype=float)
    ax_counts.barh(y, selected, color="#4C72B0", label="selected")
    if "planted_defects" in summary.columns:
        ax_counts.barh(y, summary["planted_defects"].to_numpy(dtype=float), color="#C44E52",
                       label="planted defects in it")
    ok = np.isfinite(asked)
    ax_counts.scatter(asked[ok], y[ok], marker="|", s=260, color="k", label="asked", zorder=3)
    for k, (s, a) in enumerate(zip(selected, asked)):
        short = np.isfinite(a) and s < a
        ax_counts.text(s, k, f" {int(s)}" + (" (short)" if short else ""), va="center", fontsize=7)
    ax_counts.set_yticks(y, names)
    ax_counts.invert_yaxis()
    ax_counts.set_xlabel("samples")
    ax_counts.set_title("counts")
    ax_counts.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False)
    ax_counts.set_xlim(0, max(np.nanmax(np.concatenate([selected, asked[ok], [1.0]])), 1.0) * 1.15)
    ax_counts.spines[["top", "right"]].set_visible(False)

    rows = [r for r in ["pool", *names] if r in coverage.index]
    cov = coverage.loc[rows]
    stat = coverage.attrs.get("coverage", {}).get("stat", "share")
    values = cov.to_numpy(dtype=float)
    top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    vmax = min(1.0, np.ceil(top * 10 + 0.5) / 10) if stat == "share" else 5.0   # small shares stay visible
    im = ax_cov.imshow(values, aspect="auto", cmap="magma", vmin=0.0, vmax=vmax)
    ax_cov.set_xticks(range(len(caps)), caps, rotation=60, ha="right", fontsize=7)
    ax_cov.set_yticks(range(len(rows)), rows, fontsize=7)
    for i in range(len(rows)):
        for j in range(len(caps)):
            v = float(cov.iat[i, j])
            if np.isfinite(v):
                ax_cov.text(j, i, f"{v:.2f}" if stat == "share" else f"{v:.1f}", ha="center", va="center",
                            fontsize=5.5, color="white" if v < 0.55 * vmax else "black")
    fig.colorbar(im, ax=ax_cov, fraction=0.04, pad=0.02, label=_coverage_axis_label(coverage))
    ax_cov.set_title("capability coverage")

    overlap_heatmap(tables["jaccard"].loc[names, names], ax=ax_jac)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
