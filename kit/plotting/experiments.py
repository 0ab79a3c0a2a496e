"""Plots of fine-tuning runs and ablations: accuracy by budget, the paper-style table, defects, learning curves.

Every function takes the tables :mod:`kit.experiments` and :mod:`kit.finetune` return and draws on a given
(or new) Axes; none computes a result the tables do not hold.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

COLOURS = {"random": "0.45", "full": "black", "mmssr": "#C44E52", "diq": "#4C72B0", "dis": "#55A868",
           "dil": "#8172B2", "curriculum": "#DD8452", "curriculum_shuffled": "#CCB974"}


def _colour(method: str, k: int):
    return COLOURS.get(method, plt.rcParams["axes.prop_cycle"].by_key()["color"][k % 10])


def accuracy_vs_budget(table: pd.DataFrame, metric: str = "accuracy", methods=None, ax=None,
                       title: str | None = None, chance: float | None = None):
    """Mean ``metric`` over seeds against the budget, one line per method; bars span the seeds' min to max.

    The full pool is a horizontal line with its seeds' range shaded; ``chance`` (e.g. the majority-answer
    rate) a dotted one.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2))
    sub = table[table["method"] != "full"].copy()
    sub["budget"] = sub["budget"].astype(float)
    methods = list(dict.fromkeys(methods or sub["method"]))
    budgets = sorted(sub["budget"].unique())
    for k, m in enumerate(methods):
        g = sub[sub["method"] == m].groupby("budget")[metric]
        if not len(g):
            continue
        mean, lo, hi = g.mean(), g.min(), g.max()
        x = mean.index.to_numpy() * (1 + 0.012 * (k - len(methods) / 2))  # small offsets keep bars apart
        ax.errorbar(x, mean.values, yerr=[mean.values - lo.values, hi.values - mean.values], marker="o", ms=5,
                    capsize=3, lw=1.6, color=_colour(m, k), ls="--" if m == "random" else "-",
                    label=f"{m} (n={g.size().max()} seeds)")
    full = table[table["method"] == "full"][metric]
    if len(full):
        ax.axhline(full.mean(), color="black", lw=1.2, label=f"full pool ({len(full)} seeds)")
        ax.axhspan(full.min(), full.max(), color="black", alpha=0.08)
    if chance is not None:
        ax.axhline(chance, color="0.5", ls=":", lw=1, label=f"majority answer {chance:.2f}")
    ax.set_xscale("log")
    ax.set_xticks(budgets, [f"{b:.0%}" for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("budget (share of the pool)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title or f"held-out {metric.replace('_', ' ')} by budget")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return ax


def paper_table(table: pd.DataFrame, methods=None, metric: str = "accuracy") -> pd.DataFrame:
    """The papers' layout: one row per method, per budget ``metric`` (mean ± sd over seeds), /FULL and >Rand."""
    rows = {}
    methods = list(dict.fromkeys(methods or table["method"]))
    budgets = sorted(b for b in table["budget"].unique() if b != "full")
    for m in methods:
        row = {}
        for b in budgets if m != "full" else ["full"]:
            g = table[(table["method"] == m) & (table["budget"] == b)]
            if not len(g):
                continue
            label = "full" if b == "full" else f"{float(b):.0%}"
            row[(label, metric)] = f"{g[metric].mean():.3f} ± {g[metric].std(ddof=1) if len(g) > 1 else 0:.3f}"
            row[(label, "/FULL")] = round(float(g["/FULL"].mean()), 1) if "/FULL" in g else np.nan
            if ">Rand" in g and g[">Rand"].notna().any():
                row[(label, ">Rand")] = round(float(g[">Rand"].mean()), 1)
        rows[m] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def table_figure(frame: pd.DataFrame, title: str = "", ax=None, fontsize: int = 8):
    """Draw a (small) DataFrame as a matplotlib table, so it can be saved as a figure."""
    if ax is None:
        _, ax = plt.subplots(figsize=(min(2 + 1.3 * frame.shape[1], 18), 0.42 * len(frame) + 1.2))
    ax.axis("off")
    cols = [" ".join(str(x) for x in c) if isinstance(c, tuple) else str(c) for c in frame.columns]
    cells = frame.astype(object).where(frame.notna(), "").to_numpy()
    tab = ax.table(cellText=cells, rowLabels=[str(i) for i in frame.index], colLabels=cols, loc="center",
                   cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(fontsize)
    tab.scale(1, 1.3)
    if title:
        ax.set_title(title)
    return ax


def accuracy_vs_defects(table: pd.DataFrame, metric: str = "accuracy", share: str = "defect_share", ax=None,
                        methods=None):
    """One point per run: the subset's share of planted defects against held-out ``metric``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.2))
    methods = list(dict.fromkeys(methods or table["method"]))
    markers = {0.1: "o", 0.3: "s", "full": "*"}
    for k, m in enumerate(methods):
        g = table[table["method"] == m]
        for b, gb in g.groupby("budget", sort=False):
            ax.scatter(gb[share], gb[metric], color=_colour(m, k), marker=markers.get(b, "D"), s=36 if b != "full"
                       else 90, alpha=0.85, edgecolor="white", lw=0.5,
                       label=f"{m} {b if b == 'full' else format(float(b), '.0%')}")
    ax.set_xlabel(share.replace("_", " ") + " of the subset")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"held-out {metric.replace('_', ' ')} against planted defects in the training subset")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    return ax


def learning_curves(histories: dict, column: str = "loss", smooth: int = 10, ax=None, x: str = "step"):
    """Training curves of several runs (``{name: history DataFrame}``), smoothed over ``smooth`` steps."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for k, (name, h) in enumerate(histories.items()):
        if column not in h or not len(h):
            continue
        y = h[column]
        if column == "loss" and smooth > 1:
            y = y.rolling(smooth, min_periods=1).mean()
        ax.plot(h[x], y, lw=1.5, marker="o" if column != "loss" else None, ms=3, label=name,
                color=_colour(name.split()[0], k))
    ax.set_xlabel(x)
    ax.set_ylabel(column.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def type_bars(summaries: dict, types=("colour", "shape", "yes/no"), ax=None, majority: dict | None = None):
    """Accuracy per question type for several models (``{name: evaluation summary dict}``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    names = list(summaries)
    x = np.arange(len(types))
    w = 0.8 / max(len(names), 1)
    for k, name in enumerate(names):
        vals = [summaries[name].get(f"accuracy_{t}", np.nan) for t in types]
        ax.bar(x + (k - (len(names) - 1) / 2) * w, vals, width=w, label=name, color=_colour(name.split()[0], k))
    if majority:
        for j, t in enumerate(types):
            if t in majority:
                ax.hlines(majority[t], j - 0.42, j + 0.42, colors="0.3", linestyles=":", lw=1.2)
    ax.set_xticks(x, types)
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out accuracy")
    ax.set_title("accuracy per question type (dotted: majority answer of the type)")
    ax.legend(fontsize=8)
    return ax


def prediction_grid(table: pd.DataFrame, n: int = 8, cols: int = 4, seed: int = 0, title: str = ""):
    """Images with their question, the true answer and the model's ranked (and generated) answer."""
    from PIL import Image

    rows = table.sample(min(n, len(table)), random_state=seed) if len(table) > n else table
    r = int(np.ceil(len(rows) / cols))
    fig, axes = plt.subplots(r, cols, figsize=(3.1 * cols, 3.3 * r), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (_, row) in zip(axes.ravel(), rows.iterrows()):
        with Image.open(row["image_path"]) as im:
            ax.imshow(im.convert("RGB"))
        ok = row["prediction"] == row["answer"]
        text = f"{row['question']}\ntrue: {row['answer']} · ranked: {row['prediction']}"
        if "generated" in row and isinstance(row["generated"], str):
            text += f"\ngenerated: {row['generated'][:24]!r}"
        ax.set_title(text, fontsize=7.5, color="#2a7a2a" if ok else "#b22222")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
