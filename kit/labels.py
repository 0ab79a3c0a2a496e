"""Reading a pool's truth table (``labels.csv``: defects, styles, reference capability ratings)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from kit.capabilities import style_names


def labels_path_for(pool_path) -> Path:
    """``labels.csv`` beside a pool file."""
    return Path(pool_path).with_name("labels.csv")


def load_labels(path) -> pd.DataFrame:
    """``labels.csv`` as a DataFrame indexed by id; ``styles`` becomes a list of style names."""
    labels = pd.read_csv(path, dtype={"id": str, "origin": str}, keep_default_na=False, na_values=[""])
    labels = labels.set_index("id")
    labels["origin"] = labels["origin"].astype(object).where(labels["origin"].notna(), None)
    labels["styles"] = labels["styles"].map(style_names)
    return labels
