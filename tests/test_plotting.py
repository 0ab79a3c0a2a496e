"""Plot helpers: they draw what they are given (rows kept, seeded maps)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def test_umap_map_is_seeded_and_keeps_rows():
    from kit.plotting.embeddings import embedding_map, umap_2d

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (20, 8)), rng.normal(6, 1, (20, 8))])
    a, b = umap_2d(X, metric="euclidean"), umap_2d(X, metric="euclidean")
    assert a.shape == (40, 2) and np.allclose(a, b)
    # the two blobs stay apart: every point is nearer its own blob's centre
    ca, cb = a[:20].mean(0), a[20:].mean(0)
    assert (np.linalg.norm(a[:20] - ca, axis=1) < np.linalg.norm(a[:20] - cb, axis=1)).all()
    ids = [f"s{i}" for i in range(40)]
    ax = embedding_map(a, ids, pd.Series(["a"] * 20 + ["b"] * 20, index=ids), highlight={"x": ["s0", "nope"]})
    assert len(ax.collections) == 3
