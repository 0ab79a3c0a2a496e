"""``kit.provenance.table_hash`` as it was written before it was vectorised and cached (one Python call per cell
of an object column): the tests check that the kit's digest is still exactly this one, so digests stored by
earlier versions (manifests, score tables' ``pool`` hash, the influence warm-up cache keys) still compare."""
import hashlib

import numpy as np
import pandas as pd


def _hashable(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return "|".join(map(str, value))
    return value


def reference_table_hash(df: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(pd.Series(df.index.astype(str)), index=False).values.tobytes())
    for col in df.columns:
        s = df[col]
        if s.dtype == object:
            s = s.map(_hashable).astype(str)
        h.update(pd.util.hash_pandas_object(s, index=False).values.tobytes())
    return h.hexdigest()
