"""How a score separates planted defects from clean samples: distributions by defect, and defect/origin pairs."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def score_by_defect(values: pd.Series, defects: pd.Series, ax=None, title: str = "", xlabel: str | None = None,
                    order=None):
    """Density of ``values`` per planted defect (each normalised on its own, so small groups stay visible)."""
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    df = pd.DataFrame({"value": values, "defect": defects.reindex(values.index)}).dropna()
    hue_order = [d for d in (order or sorted(df["defect"].unique())) if d in set(df["defect"])]
    sns.kdeplot(data=df, x="value", hue="defect", hue_order=hue_order, common_norm=False, ax=ax,
                warn_singular=False)
    ax.set_xlabel(xlabel or str(values.name))
    ax.set_title(title)
    return ax


def defect_pair_plot(pairs: pd.DataFrame, ax=None, names=("clean origin", "defective copy"),
                     defective: str = "lower", ylabel: str = "", title: str = ""):
    """Each planted defect joined to the clean sample it was made from (``kit.eval.metrics.defect_pairs``).

    A pair is drawn red when the defective copy scores ``defective`` ("lower" or "higher") than its origin,
    that is, when the score points the right way; grey otherwise.
    """
    if defective not in ("lower", "higher"):
        raise ValueError(f"defective must be 'lower' or 'higher', not {defective!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    for _, p in pairs.iterrows():
        right = p["defective"] < p["clean"] if defective == "lower" else p["defective"] > p["clean"]
        ax.plot([0, 1], [p["clean"], p["defective"]], marker="o", color="#C44E52" if right else "0.6")
    ax.set_xticks([0, 1], list(names))
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return ax
