"""The baseline selectors (clip_top, ppl_band, deita, coincide) against small plain-Python references."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import kit
from kit.baselines import coincide as co
from kit.baselines.deita import select_deita
from kit.baselines.embeddings import resolve_embeddings
from kit.capabilities import capability_keys
from kit.collapse import ScoreCollapseWarning
from kit.quality.image_text.scorer import save_embeddings
from kit.scoreinfo import ScoreInfo, ScoreTableInfo, attach
from kit.selection import SelectionShortfall
from tests.support.baseline_tables import make_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def table():
    return make_table()


def ref_top(values: np.ndarray, n: int) -> list[int]:
    idx = [i for i in range(len(values)) if not math.isnan(values[i])]
    return sorted(idx, key=lambda i: (-values[i], i))[:n]


# ----------------------------------------------------------------------------- clip_top and ppl_band
def test_clip_top_is_the_top_of_the_ranking(table):
    t, _ = table
    for n in (0, 1, 17, 198):
        sel = kit.select(t, "clip_top", n)
        assert list(sel) == [t.index[i] for i in ref_top(t["image_text"].to_numpy(), n)]
        assert sel.resolved["col"] == "image_text"
    with pytest.warns(SelectionShortfall, match="only 198 samples have a finite 'image_text'"):
        short = kit.select(t, "clip_top", 200)
    assert len(short) == 198 and short.shortfall.asked == 200 and "2 samples without" in short.notes[0]
    assert list(kit.select(t, "clip_top", 0.1)) == list(kit.select(t, "clip_top", 20))


def ref_band(values: np.ndarray, n: int, band: str) -> list[int]:
    idx = [i for i in range(len(values)) if not math.isnan(values[i])]
    asc = sorted(idx, key=lambda i: (values[i], i))
    m = min(n, len(asc))
    if band == "low":
        return asc[:m]
    if band == "high":
        return sorted(idx, key=lambda i: (-values[i], i))[:m]
    lo = (len(asc) - m) // 2
    return asc[lo:lo + m]


@pytest.mark.parametrize("band", ["low", "mid", "high"])
def test_ppl_bands_are_sorted_index_arithmetic(table, band):
    t, _ = table
    for col, loss in (("loss_mean", None), ("loss_sum", "sum")):
        values = t[col].to_numpy()
        for n in (0, 1, 10, 11, 100, 197):
            sel = kit.select(t, "ppl_band", n, band=band, loss=loss)
            assert list(sel) == [t.index[i] for i in ref_band(values, n, band)], (col, n)
            assert sel.resolved["loss_col"] == col and sel.resolved["band"] == band
    mid = kit.select(t, "ppl_band", 21, band="mid")
    assert mid.resolved["ranks"] == [(197 - 21) // 2, (197 - 21) // 2 + 21]
    lo_edge, hi_edge = mid.resolved["edges"]
    assert lo_edge <= mid.resolved["median"] <= hi_edge
    with pytest.warns(SelectionShortfall):
        assert len(kit.select(t, "ppl_band", 200, band=band)) == 197


def test_ppl_band_rejects_an_unknown_band(table):
    with pytest.raises(ValueError, match="band must be one of 'low', 'mid', 'high'"):
        kit.select(table[0], "ppl_band", 5, band="middle")


def test_missing_columns_name_the_scorer_that_makes_them(table):
    t, emb = table
    with pytest.raises(KeyError, match=r"column 'image_text' is missing: make it with kit.score\(pool, 'image_text'\)"):
        kit.select(t.drop(columns="image_text"), "clip_top", 5)
    with pytest.raises(KeyError, match=r"column 'loss_mean' is missing: make it with kit.score\(pool, 'loss'\)"):
        kit.select(t.drop(columns="loss_mean"), "ppl_band", 5)
    with pytest.raises(KeyError, match=r"no capability column .* kit.score\(pool, 'rich'\)"):
        kit.select(t.drop(columns=capability_keys()), "deita", 5, embeddings=emb)
    with pytest.raises(KeyError, match=r"column 'nope' is missing: no built-in scorer makes it"):
        kit.select(t, "deita", 5, score="nope", embeddings=emb)


# ----------------------------------------------------------------------------- deita
def ref_deita(values, emb, n, threshold):
    """The plain loop: by score descending (ties by position), keep x if cos(x, s) <= t for every kept s."""
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    kept = []
    for i in ref_top(values, len(values)):
        if len(kept) == n:
            break
        if all(float(np.dot(emb[i].astype(np.float64), emb[j].astype(np.float64))) <= threshold for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("threshold", [0.9, 0.6, 0.4])
def test_deita_matches_the_plain_greedy_loop(table, threshold):
    t, emb = table
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    gram = unit.astype(np.float64) @ unit.T.astype(np.float64)
    assert np.abs(gram - threshold).min() > 1e-5      # no cosine so close to t that float32 could flip it
    values = t["image_text"].to_numpy()
    for n in (1, 20, 60, 200):
        want = [t.index[i] for i in ref_deita(values, emb, n, threshold)]
        for chunk in (7, 2048):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SelectionShortfall)
                got = kit.select(t, "deita", n, score="image_text", threshold=threshold, embeddings=emb, chunk=chunk)
            assert list(got) == want, (n, chunk)
    sel = select_deita(t, 200, score="image_text", threshold=0.9, embeddings=emb)
    assert sel.shortfall is not None and len(sel) < 198 and sel.report["n_read"] == 198
    assert sel.report["n_filtered"] == 198 - len(sel) >= 15   # the planted near-duplicates go


def test_deita_default_score_is_the_capability_mean(table):
    t, emb = table
    mean = t[capability_keys()].mean(axis=1, skipna=False).to_numpy()
    got = kit.select(t, "deita", 30, embeddings=emb)
    assert list(got) == [t.index[i] for i in ref_deita(mean, emb, 30, 0.9)]
    assert got.resolved["score_columns"] == capability_keys() and t.index[11] not in got
    assert any("1 sample without a finite score" in note for note in got.notes)


def test_selectors_that_need_embeddings_say_how_to_make_them(table):
    t, _ = table
    for method in ("deita", "coincide"):
        with pytest.raises(ValueError, match=rf"{method} needs sample embeddings: pass embeddings= .*"
                                             r"kit.score\(pool, 'image_text', embeddings_dir='emb/'\)"):
            kit.select(t, method, 5)
    with pytest.raises(ValueError, match="one row per row of the score table"):
        kit.select(t, "deita", 5, embeddings=np.zeros((3, 4)))


def test_embeddings_from_an_array_a_dataframe_or_the_scorer_folder_agree(table, tmp_path):
    t, emb = table
    rng = np.random.default_rng(1)
    image, text = emb, rng.standard_normal((len(t), 5)).astype(np.float32)
    image_nan = image.copy()
    image_nan[4] = np.nan                                   # an image that failed to decode
    save_embeddings(tmp_path / "emb", list(t.index), image_nan, text, {"scorer": "test"})
    by_array = resolve_embeddings(t, image_nan)
    frame = pd.DataFrame(image_nan, index=t.index).iloc[::-1]   # any row order, aligned by id
    by_frame = resolve_embeddings(t, frame)
    by_folder = resolve_embeddings(t, tmp_path / "emb", use="image")
    for e in (by_frame, by_folder):
        np.testing.assert_array_equal(e.matrix, by_array.matrix)
        np.testing.assert_array_equal(e.valid, by_array.valid)
    assert not by_array.valid[4] and by_array.valid.sum() == len(t) - 1
    both = resolve_embeddings(t, str(tmp_path / "emb"))            # default: image and text together
    assert both.use == "both" and not both.valid[4]
    i_unit = image / np.linalg.norm(image, axis=1, keepdims=True)
    t_unit = text / np.linalg.norm(text, axis=1, keepdims=True)
    cos_both = both.matrix[0] @ both.matrix[1]
    assert cos_both == pytest.approx(0.5 * (i_unit[0] @ i_unit[1] + t_unit[0] @ t_unit[1]), abs=1e-6)
    # a DataFrame missing some ids: those samples have no embedding and are counted
    part = resolve_embeddings(t, pd.DataFrame(emb, index=t.index).iloc[10:])
    assert part.n_missing == 10
    # the folder the table's image-text scorer recorded is used when embeddings= is not given
    recorded = t.copy()
    image_text = ScoreInfo("image_text", ["image_text"], options={"embeddings_dir": str(tmp_path / "emb")})
    attach(recorded, ScoreTableInfo({"image_text": image_text}))
    sel = kit.select(recorded, "deita", 15, score="image_text")
    assert sel.resolved["embeddings"]["source"] == str(tmp_path / "emb")
    assert list(sel) == list(kit.select(t, "deita", 15, score="image_text", embeddings=tmp_path / "emb"))
    own = attach(t.copy(), image_text)                             # the image-text scorer's own table records it too
    assert kit.select(own, "deita", 15, score="image_text").resolved["embeddings"]["source"] == str(tmp_path / "emb")
    # a table filtered from it carries no info: no recorded folder, and the error says why (never another folder)
    with pytest.raises(ValueError, match="no score info"):
        kit.select(recorded[recorded["image_text"] > -1], "deita", 15, score="image_text")
    with pytest.raises(ValueError, match="use= picks the image or text part"):
        resolve_embeddings(t, emb, use="image")


# ----------------------------------------------------------------------------- coincide parts
def official_mmd(K: np.ndarray, m: int) -> list[int]:
    """greedy_mmd_selection of the official cluster_wise_prune.py, in numpy (brute force over candidates)."""
    n = len(K)
    selected: list[int] = []
    for _ in range(m):
        cands = [c for c in range(n) if c not in selected]
        best, best_c = np.inf, None
        for c in cands:
            s = selected + [c]
            mmd = K.mean() + K[np.ix_(s, s)].mean() - 2 * K[:, s].mean()
            if mmd < best:
                best, best_c = mmd, c
        selected.append(best_c)
    return selected


def test_greedy_mmd_matches_the_official_brute_force():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 6))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    for sigma in (1.0, 0.5):
        K = np.exp(-np.maximum(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1), 0) / (2 * sigma ** 2))
        assert list(co.greedy_mmd(X, 15, sigma)) == official_mmd(K, 15)
        np.testing.assert_allclose(co.kernel_column_sums(X, sigma, rows=7), K.sum(0), rtol=1e-12)


def test_farthest_points_and_transferability_match_plain_loops():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((30, 5))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    centre = X.sum(0)
    want = [int(np.argmax([x @ centre for x in X]))]
    while len(want) < 8:
        dist = [min(1 - X[i] @ X[j] for j in want) if i not in want else -np.inf for i in range(len(X))]
        want.append(int(np.argmax(dist)))
    assert list(co.farthest_points(X, 8)) == want
    C = X[:12]
    ref = []
    for i in range(len(C)):
        others = [C[i] @ C[j] for j in range(len(C)) if C[i] @ C[j] <= 0.3]
        ref.append(np.mean(others) if others else 0.0)
    np.testing.assert_allclose(co.transferability(C, 0.3, rows=5), ref, rtol=1e-12)
    assert co.transferability(np.ones((2, 3)) / np.sqrt(3), 0.9).tolist() == [0.0, 0.0]


def official_allocate(score, sizes, n, temp):
    """The allocation loop of the official cluster_wise_prune.py (counts only)."""
    ratio = np.exp(score / temp) / np.sum(np.exp(score / temp))
    order = np.argsort(ratio)[::-1]
    ratio, score = ratio[order], score[order]
    remaining, take = n, np.zeros(len(sizes), dtype=int)
    for idx, c in enumerate(order):
        target = round(remaining * ratio[idx])
        take[c] = sizes[c] if target > sizes[c] else target
        remaining -= take[c]
        ratio[idx + 1:] = np.exp(score[idx + 1:] / temp) / np.sum(np.exp(score[idx + 1:] / temp))
    return take


def test_allocation_is_the_official_pass_plus_a_top_up():
    rng = np.random.default_rng(5)
    score = rng.normal(1.0, 0.3, 25)
    sizes = rng.integers(5, 60, 25)
    for n, temp in ((100, 1.0), (300, 0.1), (37, 0.5)):
        take, order, top_up = co.allocate(score, sizes, n, temp)
        official = official_allocate(score, sizes, n, temp)
        if official.sum() == n:
            np.testing.assert_array_equal(take, official)
            assert top_up == 0
        assert take.sum() == n and (take <= sizes).all() and (take >= official).all()
    # the official pass runs short when the last clusters are small: the top-up fills the budget
    score, sizes = np.array([0.1, 0.0]), np.array([100, 2])
    official = official_allocate(score, sizes, 100, 1.0)
    take, _, top_up = co.allocate(score, sizes, 100, 1.0)
    assert official.tolist() == [52, 2] and take.tolist() == [98, 2] and top_up == 46


def test_spherical_kmeans_labels_are_nearest_unit_centroids():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((300, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    labels, C, iters = co.spherical_kmeans(X, 7, seed=2, niter=30)
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(labels, (X @ C.T).argmax(1))
    assert 1 <= iters <= 30
    again = co.spherical_kmeans(X, 7, seed=2, niter=30)
    np.testing.assert_array_equal(again[0], labels)


# ----------------------------------------------------------------------------- coincide
def test_coincide_fills_the_budget_and_reports_its_clusters(table):
    t, emb = table
    for n in (0, 1, 20, 0.5, 199):
        sel = kit.select(t, "coincide", n, embeddings=emb, clusters=6)
        want = kit.resolve_budget(n, len(t))
        assert len(sel) == want and len(set(sel)) == want
    sel = kit.select(t, "coincide", 40, embeddings=emb, clusters=6)
    clusters = sel.report["clusters"]
    assert sel.resolved["n_clusters"] == len(clusters) <= 6
    assert clusters["size"].sum() == len(t) and clusters["taken"].sum() == 40
    labels = sel.report["labels"]
    assert (labels >= 0).all() and labels.value_counts().sort_index().tolist() == clusters["size"].tolist()
    counts = labels.loc[list(sel)].value_counts()
    assert all(counts.get(c, 0) == clusters.at[c, "taken"] for c in clusters.index)
    np.testing.assert_allclose(clusters["share"].sum(), 1.0)
    # other options run and keep the budget
    for opts in ({"within": "farthest"}, {"kmeans": "sklearn"}, {"temperature": 0.05, "sigma": 0.5}):
        assert len(kit.select(t, "coincide", 40, embeddings=emb, clusters=6, **opts)) == 40
    # samples without an embedding are excluded and counted
    holes = emb.copy()
    holes[:5] = np.nan
    sel = kit.select(t, "coincide", 195, embeddings=holes, clusters=4)
    assert len(sel) == 195 and not set(sel) & set(t.index[:5]) and "5 samples without an embedding" in sel.notes[0]
    with pytest.warns(SelectionShortfall, match="only 195 samples have an embedding"):
        kit.select(t, "coincide", 198, embeddings=holes, clusters=4)


def test_coincide_with_faiss_when_installed(table):
    t, emb = table
    try:
        import faiss  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install faiss-cpu"):
            kit.select(t, "coincide", 40, embeddings=emb, clusters=6, kmeans="faiss")
        return
    sel = kit.select(t, "coincide", 40, embeddings=emb, clusters=6, kmeans="faiss")
    assert len(sel) == 40 and sel.resolved["kmeans"] == "faiss" and sel.report["clusters"]["size"].sum() == len(t)
    assert list(sel) == list(kit.select(t, "coincide", 40, embeddings=emb, clusters=6, kmeans="faiss"))


def test_coincide_default_cluster_count_scales_with_the_pool():
    assert co.default_clusters(1) == 1 and co.default_clusters(700) == 10
    assert co.default_clusters(665_000) == co.MAX_CLUSTERS


_SUBPROCESS = """
import json, sys
import numpy as np
sys.path.insert(0, {root!r})
from tests.support.baseline_tables import make_table
import kit
t, emb = make_table(n=400, seed=9, dim=12)
out = {{}}
for within in ("mmd", "farthest"):
    out[within] = list(kit.select(t, "coincide", 60, seed=3, embeddings=emb, within=within))
out["deita"] = list(kit.select(t, "deita", 60, embeddings=emb))
print(json.dumps(out))
"""


def test_coincide_is_the_same_in_another_process_with_other_threads_and_hash_seed():
    t, emb = make_table(n=400, seed=9, dim=12)
    here = {within: list(kit.select(t, "coincide", 60, seed=3, embeddings=emb, within=within))
            for within in ("mmd", "farthest")}
    here["deita"] = list(kit.select(t, "deita", 60, embeddings=emb))
    env = {**os.environ, "PYTHONHASHSEED": "12345", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = _SUBPROCESS.format(root=ROOT)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    there = json.loads(run.stdout.strip().splitlines()[-1])
    assert there == here
    other_seed = list(kit.select(t, "coincide", 60, seed=4, embeddings=emb))
    assert other_seed != here["mmd"]


# ----------------------------------------------------------------------------- all of them
@pytest.mark.parametrize("method", ["clip_top", "ppl_band", "deita", "coincide"])
def test_never_more_than_the_budget_and_registered(table, method):
    t, emb = table
    assert method in kit.SELECTORS.names()
    opts = {"embeddings": emb} if method in ("deita", "coincide") else {}
    if method == "coincide":
        opts["clusters"] = 5
    for n in (0, 3, 0.25, 150, 10_000):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SelectionShortfall)
            sel = kit.select(t, method, n, **opts)
        assert len(sel) <= kit.resolve_budget(n, len(t)) and len(set(sel)) == len(sel)
        assert sel.method == method and set(sel) <= set(t.index)
        if len(sel) < sel.budget:
            assert isinstance(sel.shortfall, kit.Shortfall) and sel.shortfall.returned == len(sel)


def test_selectors_warn_when_they_read_a_collapsed_column(table):
    t, emb = table
    broken = t.copy()
    broken["image_text"] = 0.25
    broken["loss_mean"] = 1.0 + 1e-9 * np.arange(len(t))
    with pytest.warns(ScoreCollapseWarning, match=r"selector 'clip_top' reads a collapsed column: column "
                                                  r"'image_text' looks collapsed \(one value\): 100.0% of 200"):
        kit.select(broken, "clip_top", 5)
    with pytest.warns(ScoreCollapseWarning, match=r"selector 'ppl_band' .* 'loss_mean' looks collapsed \(spread"):
        kit.select(broken, "ppl_band", 5)
    with pytest.warns(ScoreCollapseWarning, match="selector 'dis' reads a collapsed column"):
        kit.select(broken, "dis", 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScoreCollapseWarning)
        kit.select(t, "clip_top", 5)
        kit.select(t, "deita", 5, embeddings=emb)


def test_a_selection_made_with_an_embeddings_array_exports(tmp_path):
    from kit.export import manifest_path

    pool = kit.load_pool(os.path.join(ROOT, "data_samples", "pool.json"))
    scores = pool.table[["source"]].copy()
    emb = np.random.default_rng(0).standard_normal((len(scores), 8)).astype(np.float32)
    sel = kit.select(scores, "coincide", 30, embeddings=emb, clusters=4)
    path = kit.export_subset(pool, sel, tmp_path / "subset.json")
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["ids"] == list(sel) and manifest["method"] == "coincide"
    assert manifest["params"]["embeddings"] == f"<ndarray of shape ({len(scores)}, 8)>"
    assert manifest["resolved"]["n_clusters"] == 4
