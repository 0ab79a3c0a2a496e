"""COINCIDE-style selection: cluster the embeddings, spread the budget over clusters by transferability and
density, then pick representative, spread-out samples inside each cluster.

Source: Lee, Li & Hwang, "Concept-skill Transferability-based Data Selection for Large Vision-Language
Models" (COINCIDE), arXiv 2406.10995 (EMNLP 2024); official code https://github.com/G-JWLee/COINCIDE_code,
``COINCIDE_cluster/tinyllava/eval/score/coincide/`` (``compute_centroids.py``, ``cluster_transferability.py``,
``cluster_wise_prune.py``). With unit embeddings x, K clusters C_1..C_K from spherical k-means with unit
centroids c_i, and the Gaussian kernel k(x, y) = exp(-||x - y||^2 / (2 sigma^2))::

    density        D_i = mean over x, y in C_i of k(x, y)
    transferability T_i = mean of cos(c_i, c_j) over the clusters j with cos(c_i, c_j) <= 0.9
                          (near-duplicate centroids and c_i itself left out)
    share          P_i = softmax_i(T_i / (tau D_i))           tau: the temperature
    counts         clusters by P_i descending; each takes m_i = round(R * P_i / sum of P over the clusters
                   not yet visited) of the R samples still to place, at most |C_i|
    within C_i     greedy MMD: m_i times, add the sample s minimising
                   MMD^2(C_i, S + s) = mean k(C_i, C_i) + mean k(S', S') - 2 mean k(C_i, S')

Transferable (central to other clusters) and sparse (low-density, diverse) clusters get more of the budget;
the MMD picks start at the most central sample and then repel each other through the mean k(S', S') term, so
a cluster's picks cover it rather than crowd its mode (``within="farthest"`` picks by farthest-point
traversal instead). The paper's embeddings are a small LVLM's internal activations (TinyLLaVA-2B); here
they are ``embeddings=`` (:mod:`kit.baselines.embeddings`, by default the image-text scorer's image and text
features together).

Where the kit chose (``docs/methods.md``, COINCIDE): the official code returns fewer than the budget when the
last clusters visited are too small to take their share; the kit then runs the same pass again over the
clusters with room left (``report["top_up"]`` counts the samples placed so). The number of clusters scales
with the pool as in the paper's runs (10,000 for the 665K LLaVA-1.5 mix, 2,500 for 191K Vision-Flan: about
70 samples a cluster), capped at 1,000 for CPU time; k-means trains on at most 40 samples a cluster (faiss's
minimum per centroid is 39) for 10 iterations (the official run: 50, on a GPU), then assigns every sample.

The default k-means is a numpy spherical k-means (random initial centroids drawn with ``seed``, like faiss;
unit centroids; an empty cluster keeps its centroid): its sums and matrix products are the same in any
process and thread count. ``kmeans="sklearn"`` (scikit-learn KMeans on the unit rows, random init, seeded)
and ``kmeans="faiss"`` (``faiss.Kmeans(spherical=True)``, the official tool, when installed:
``pip install faiss-cpu``) are alternatives; their results can depend on the thread count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from kit.baselines.columns import unscored
from kit.baselines.embeddings import resolve_embeddings
from kit.selection import Selection, Shortfall, resolve_budget

KMEANS = ("spherical", "sklearn", "faiss")
WITHIN = ("mmd", "farthest")
SAMPLES_PER_CLUSTER = 70
MAX_CLUSTERS = 1000
TRAIN_PER_CLUSTER = 40
_ROWS = 8192            # rows compared with all centroids at once


# ----------------------------------------------------------------------------- k-means
def _assign(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """The centroid of highest inner product for each row (ties: the lower centroid)."""
    out = np.empty(len(X), dtype=np.int64)
    for start in range(0, len(X), _ROWS):
        out[start:start + _ROWS] = (X[start:start + _ROWS] @ C.T).argmax(axis=1)
    return out


def _cluster_sums(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    from scipy.sparse import csr_matrix

    member = csr_matrix((np.ones(len(X), dtype=X.dtype), (labels, np.arange(len(X)))), shape=(k, len(X)))
    return np.asarray(member @ X)


def _normalise(C: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(C, axis=1, keepdims=True)
    return C / np.where(norms > 0, norms, 1)


def spherical_kmeans(X: np.ndarray, k: int, seed: int = 0, niter: int = 10, train_size: int | None = None):
    """Spherical k-means on unit rows: ``(labels, unit centroids, iterations run)``.

    Trains on ``train_size`` rows drawn with ``seed`` (all rows when None or larger), from ``k`` of them
    drawn as the first centroids; stops early when no training label changes; then labels every row.
    """
    rng = np.random.default_rng(seed)
    n = len(X)
    train = np.arange(n) if train_size is None or train_size >= n else np.sort(rng.choice(n, train_size, replace=False))
    Xt = X[train]
    C = Xt[rng.choice(len(Xt), k, replace=False)].copy()
    prev = None
    it = 0
    for it in range(1, niter + 1):
        labels = _assign(Xt, C)
        if prev is not None and np.array_equal(labels, prev):
            break
        prev = labels
        sums = _cluster_sums(Xt, labels, k)
        filled = np.bincount(labels, minlength=k) > 0
        C[filled] = _normalise(sums[filled]).astype(C.dtype)
    return _assign(X, C), C, it


def _kmeans(X, k, seed, niter, train_size, backend):
    if backend == "spherical":
        return spherical_kmeans(X, k, seed, niter, train_size)
    rng = np.random.default_rng(seed)
    train = np.arange(len(X)) if train_size >= len(X) else np.sort(rng.choice(len(X), train_size, replace=False))
    if backend == "sklearn":
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, init="random", n_init=1, max_iter=niter, random_state=seed).fit(X[train])
        C = _normalise(km.cluster_centers_.astype(np.float32))
        return km.predict(X).astype(np.int64), C, int(km.n_iter_)
    try:
        import faiss
    except ImportError:
        raise ImportError("kmeans='faiss' needs faiss: pip install faiss-cpu (or use the default "
                          "kmeans='spherical')") from None
    km = faiss.Kmeans(X.shape[1], k, niter=niter, seed=int(seed), spherical=True, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=max(1, -(-len(train) // k)))
    km.train(np.ascontiguousarray(X[train]))
    C = _normalise(np.asarray(km.centroids, dtype=np.float32))
    return _assign(X, C), C, niter


# ----------------------------------------------------------------------------- cluster statistics
def _kernel(A: np.ndarray, B: np.ndarray, sigma: float) -> np.ndarray:
    """k(a, b) = exp(-||a - b||^2 / (2 sigma^2)) for all rows of A and B (float64)."""
    d2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * (A @ B.T)
    return np.exp(-np.maximum(d2, 0.0) / (2.0 * sigma * sigma))


def kernel_column_sums(Xc: np.ndarray, sigma: float, rows: int = 2048) -> np.ndarray:
    """sum over x in the cluster of k(x, y), for every member y (``rows`` members at a time)."""
    out = np.zeros(len(Xc))
    for start in range(0, len(Xc), rows):
        out += _kernel(Xc[start:start + rows], Xc, sigma).sum(axis=0)
    return out


def transferability(C: np.ndarray, max_similarity: float = 0.9, rows: int = 1024) -> np.ndarray:
    """Mean cosine of each unit centroid to the others at most ``max_similarity`` (0 when there is none)."""
    C = C.astype(np.float64)
    out = np.zeros(len(C))
    for start in range(0, len(C), rows):
        sims = C[start:start + rows] @ C.T
        far = sims <= max_similarity
        count = far.sum(axis=1)
        out[start:start + rows] = np.where(count > 0, np.where(far, sims, 0.0).sum(axis=1) / np.maximum(count, 1), 0.0)
    return out


def allocate(score: np.ndarray, sizes: np.ndarray, n: int, temperature: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-cluster counts (see the module docstring), the visiting order, and how many a top-up placed.

    One pass is the official allocation; when it leaves samples unplaced (the last clusters were too small),
    the pass is repeated over the clusters with room left, with the shares renormalised over them.
    """
    logits = np.asarray(score, dtype=np.float64) / float(temperature)
    order = np.argsort(-logits, kind="stable")
    take = np.zeros(len(sizes), dtype=np.int64)
    remaining = int(min(n, sizes.sum()))
    top_up = 0
    first = True
    while remaining > 0:
        visit = order[take[order] < sizes[order]]
        lg = logits[visit]
        suffix = np.logaddexp.accumulate(lg[::-1])[::-1]       # log sum of exp over the clusters not yet visited
        placed = 0
        for c, share in zip(visit, np.exp(lg - suffix)):
            want = int(np.rint(remaining * share))
            got = min(want, int(sizes[c] - take[c]))
            take[c] += got
            remaining -= got
            placed += got
        if not first:
            top_up += placed
        first = False
    return take, order, top_up


def greedy_mmd(Xc: np.ndarray, m: int, sigma: float, colsum: np.ndarray | None = None) -> np.ndarray:
    """``m`` members of a cluster chosen one at a time to minimise MMD^2(cluster, chosen) (ties: lowest index).

    With a_c = sum_x k(x, c) and b_c = sum_{s chosen} k(s, c), adding c to |S| = m' - 1 chosen gives
    MMD^2 = const + (2 b_c + k(c, c)) / m'^2 - 2 a_c / (n m'), so each step is one kernel row.
    """
    n = len(Xc)
    a = kernel_column_sums(Xc, sigma) if colsum is None else colsum
    diag = 1.0                                                   # k(c, c) for any c
    b = np.zeros(n)
    free = np.ones(n, dtype=bool)
    out = np.empty(m, dtype=np.int64)
    for step in range(m):
        size = step + 1
        cost = (2.0 * b + diag) / (size * size) - 2.0 * a / (n * size)
        c = int(np.argmin(np.where(free, cost, np.inf)))
        out[step] = c
        free[c] = False
        b += _kernel(Xc[c:c + 1], Xc, sigma)[0]
    return out


def farthest_points(Xc: np.ndarray, m: int) -> np.ndarray:
    """``m`` members by farthest-point traversal in cosine distance, from the member nearest the centroid."""
    centre = Xc.sum(axis=0)
    first = int(np.argmax(Xc @ centre))
    out = np.empty(m, dtype=np.int64)
    nearest = np.full(len(Xc), np.inf)
    c = first
    for step in range(m):
        out[step] = c
        np.minimum(nearest, 1.0 - Xc @ Xc[c], out=nearest)
        nearest[out[:step + 1]] = -np.inf
        c = int(np.argmax(nearest))
    return out


# ----------------------------------------------------------------------------- selector
def default_clusters(n: int) -> int:
    """About one cluster per 70 samples (the paper's runs), at least 1, at most 1,000."""
    return int(min(max(1, round(n / SAMPLES_PER_CLUSTER)), MAX_CLUSTERS, max(n, 1)))


@dataclass(frozen=True)
class Clusters:
    """k-means clusters of the rows with an embedding, empty ones dropped and the rest renumbered 0..K-1."""

    labels: np.ndarray      # the cluster of each row
    centroids: np.ndarray   # unit centroids, one per cluster
    sizes: np.ndarray       # rows per cluster
    members: np.ndarray     # the rows sorted by cluster (pool order within a cluster)
    starts: np.ndarray      # cluster i's rows are members[starts[i]:starts[i + 1]]
    iterations: int         # k-means iterations run
    train_size: int         # rows k-means trained on

    def rows(self, i: int) -> np.ndarray:
        return self.members[self.starts[i]:self.starts[i + 1]]


def _check_options(within: str, kmeans: str, temperature: float, sigma: float) -> None:
    if within not in WITHIN:
        raise ValueError(f"within must be one of {', '.join(map(repr, WITHIN))}, not {within!r}")
    if kmeans not in KMEANS:
        raise ValueError(f"kmeans must be one of {', '.join(map(repr, KMEANS))}, not {kmeans!r}")
    if not temperature > 0 or not sigma > 0:
        raise ValueError("temperature and sigma must be positive")


def _cluster_count(clusters: int | None, n_rows: int, notes: list[str]) -> int:
    """The number of k-means clusters: ``clusters`` or :func:`default_clusters`, at most one per row (noted)."""
    k = default_clusters(n_rows) if clusters is None else int(clusters)
    if k < 1:
        raise ValueError(f"clusters must be at least 1, got {clusters}")
    if k > n_rows and n_rows:
        notes.append(f"coincide: {k} clusters asked for {n_rows} samples with an embedding; using {n_rows}")
        k = n_rows
    return k


def cluster_rows(X: np.ndarray, k: int, seed: int, niter: int, train_per_cluster: int, kmeans: str,
                 notes: list[str]) -> Clusters:
    """k-means on at most ``train_per_cluster * k`` rows of ``X``, every row labelled; a cluster that ends empty
    is dropped (noted)."""
    train_size = min(len(X), max(k, train_per_cluster * k))
    labels, C, iters = _kmeans(X, k, seed, niter, train_size, kmeans)
    sizes_all = np.bincount(labels, minlength=k)
    kept = np.flatnonzero(sizes_all > 0)                         # non-empty clusters, renumbered 0..K-1
    relabel = np.full(k, -1, dtype=np.int64)
    relabel[kept] = np.arange(len(kept))
    labels = relabel[labels]
    if len(kept) < k:
        notes.append(f"coincide: {k - len(kept)} of {k} k-means clusters ended empty and were dropped")
    sizes = sizes_all[kept]
    members = np.argsort(labels, kind="stable")                  # each cluster's rows in pool order
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return Clusters(labels, C[kept], sizes, members, starts, iters, train_size)


def cluster_densities(X: np.ndarray, found: Clusters, sigma: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each cluster's density D_i, and its kernel column sums (which the MMD picks reuse)."""
    density = np.empty(len(found.sizes))
    colsums = []
    for i in range(len(found.sizes)):
        Xc = X[found.rows(i)].astype(np.float64)
        a = kernel_column_sums(Xc, sigma)
        colsums.append(a)
        density[i] = a.sum() / (len(Xc) ** 2)
    return density, colsums


def pick_within(X: np.ndarray, found: Clusters, take: np.ndarray, order: np.ndarray, sigma: float, within: str,
                colsums: list[np.ndarray]) -> np.ndarray:
    """``take[i]`` rows of each cluster, clusters in ``order``, each cluster's picks in pick order."""
    chosen = []
    for i in order:
        if take[i] == 0:
            continue
        local = found.rows(i)
        Xc = X[local].astype(np.float64)
        pick = (greedy_mmd(Xc, int(take[i]), sigma, colsums[i]) if within == "mmd"
                else farthest_points(Xc, int(take[i])))
        chosen.append(local[pick])
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def _cluster_table(found: Clusters, density, transfer, score, temperature: float, take) -> pd.DataFrame:
    """One row per cluster: size, density, transferability, score, share (softmax of score / tau) and taken."""
    logits = score / temperature
    share = np.exp(logits - np.logaddexp.reduce(logits))
    table = pd.DataFrame({"size": found.sizes, "density": density, "transferability": transfer, "score": score,
                          "share": share, "taken": take})
    table.index.name = "cluster"
    return table


def select_coincide(scores: pd.DataFrame, n, seed: int = 0, embeddings=None, use: str | None = None,
                    clusters: int | None = None, temperature: float = 1.0, sigma: float = 1.0,
                    max_similarity: float = 0.9, within: str = "mmd", kmeans: str = "spherical",
                    niter: int = 10, train_per_cluster: int = TRAIN_PER_CLUSTER) -> Selection:
    """COINCIDE-style selection of ``n`` samples (a count or a fraction); see the module docstring.

    ``clusters``: the number of k-means clusters (default :func:`default_clusters` of the samples with an
    embedding); ``temperature`` (tau) and ``sigma`` (the kernel width; both 1.0 by default, as in the official
    ``cluster_wise_prune.py``); ``max_similarity``: centroids more similar than this do not count toward
    transferability (0.9, as in ``cluster_transferability.py``); ``within``: ``"mmd"`` (the paper) or
    ``"farthest"``; ``kmeans``: ``"spherical"`` (numpy, default), ``"sklearn"`` or ``"faiss"``; ``niter`` and
    ``train_per_cluster``: k-means iterations and training rows per cluster. Deterministic under ``seed``.

    The selection lists clusters by share (highest first), each cluster's picks in pick order.
    ``.report["clusters"]`` has one row per non-empty cluster (size, density, transferability, score, share,
    taken); ``.report["labels"]`` the cluster of every sample (-1: no embedding).
    """
    n = resolve_budget(n, len(scores))
    _check_options(within, kmeans, temperature, sigma)
    emb = resolve_embeddings(scores, embeddings, use, selector="coincide")
    rows = np.flatnonzero(emb.valid)
    notes = [unscored(emb.n_missing, "an embedding")] if emb.n_missing else []
    k = _cluster_count(clusters, len(rows), notes)
    resolved = {"clusters": k, "temperature": float(temperature), "sigma": float(sigma),
                "max_similarity": float(max_similarity), "within": within, "kmeans": kmeans, "niter": int(niter),
                "embeddings": emb.info()}
    labels_all = pd.Series(-1, index=scores.index, dtype=np.int64, name="cluster")
    if n == 0 or not len(rows):
        short = Shortfall(n, 0, "no sample has an embedding") if n else None
        return Selection([], method="coincide", resolved=resolved, seed=seed, budget=n, notes=notes,
                         shortfall=short, report={"labels": labels_all})

    X = emb.matrix[rows]
    found = cluster_rows(X, k, seed, int(niter), int(train_per_cluster), kmeans, notes)
    # Per-cluster work is many small matrix products: one BLAS thread each (threads only add waiting there).
    with threadpool_limits(1, user_api="blas"):
        density, colsums = cluster_densities(X, found, sigma)
        transfer = transferability(found.centroids, max_similarity)
        score = transfer / density
        take, order, top_up = allocate(score, found.sizes, n, temperature)
        chosen = rows[pick_within(X, found, take, order, sigma, within, colsums)]

    table = _cluster_table(found, density, transfer, score, temperature, take)
    labels_all.iloc[rows] = found.labels
    resolved.update({"n_clusters": int(len(found.sizes)), "kmeans_iterations": int(found.iterations),
                     "train_size": int(found.train_size)})
    if top_up:
        notes.append(f"coincide: {top_up} samples placed by a second pass over the clusters with room left "
                     f"(the official single pass would return {len(chosen) - top_up})")
    short = None
    if len(chosen) < n:
        short = Shortfall(n, len(chosen), f"only {len(rows)} samples have an embedding")
    report = {"clusters": table, "labels": labels_all, "top_up": int(top_up),
              "cluster_sizes": table["size"].describe()[["count", "min", "50%", "max"]].to_dict()}
    return Selection(scores.index[chosen].tolist(), method="coincide", resolved=resolved, seed=seed, budget=n,
                     notes=notes, shortfall=short, report=report)
