"""The score table's provenance hash: the same digest as before it was vectorised and cached, computed once per
table (and only when read, for ``kit.select``), changed by any change of content, equal across processes."""
import json
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import kit
import kit.provenance as provenance
from kit.export import manifest_path
from kit.mmssr.sampler import select_mmssr
from kit.provenance import DeferredHash, table_hash
from tests.support.table_hash_reference import reference_table_hash


def table(n=40, seed=0) -> pd.DataFrame:
    """Every kind of column a score table has (and a few it might): floats, ints, strings, style lists (lists,
    tuples, object arrays, empty), categories, dates, nullable ints, booleans."""
    rng = np.random.default_rng(seed)
    styles = [["yes/no"], ["multi-choice", "coordinate"], [], ("comparison",), np.array(["ocr", "x|y"], dtype=object),
              ["é"]]
    return pd.DataFrame({
        "spatial": rng.integers(0, 6, n).astype(float), "count": rng.integers(0, 9, n),
        "source": rng.choice(["a", "b", "c"], n), "styles": [styles[i % len(styles)] for i in range(n)],
        "cat": pd.Categorical(rng.choice(["x", "y"], n)), "when": pd.date_range("2020-01-01", periods=n),
        "maybe": pd.array([None if i % 7 == 0 else i for i in range(n)], dtype="Int64"), "flag": rng.random(n) < 0.5,
    }, index=pd.Index([f"s{i:04d}" for i in range(n)], name="id"))


# the code that makes the same table in a fresh process (for the cross-process check)
TABLE_SOURCE = "from tests.test_provenance import table; from kit.provenance import table_hash; print(table_hash(table()))"


def odd_tables():
    yield "score table", table()
    yield "mixed object cells", pd.DataFrame({"o": [["a"], None, "x", 3, np.nan, {"k": 1}]})
    yield "numbers in lists", pd.DataFrame({"o": [[1, 2], [3.5], [], [None], ["a", 1], [True]]})
    yield "numpy str arrays", pd.DataFrame({"o": [np.array(["a", "b"]), np.array(["c"])]})
    yield "conversations", pd.DataFrame({"c": [[{"from": "human", "value": "hi"}], []]}, index=[5, 7])
    yield "empty", pd.DataFrame({"o": pd.Series([], dtype=object)})
    yield "int index", pd.DataFrame({"o": [["a"], ["b", "c"]], "v": [1.0, np.nan]}, index=[3, 4])
    yield "2-d arrays", pd.DataFrame({"o": [np.zeros((2, 2)), np.zeros((1, 2))]})
    yield "object strings", pd.DataFrame({"o": pd.Series(["a", "b", None], dtype=object)})
    yield "no columns", pd.DataFrame(index=pd.Index(["a", "b"]))


@pytest.mark.parametrize("name,df", list(odd_tables()), ids=[name for name, _ in odd_tables()])
def test_digest_is_the_one_earlier_versions_wrote(name, df):
    # stored digests (manifests, score tables' pool hash, the influence warm-up cache keys) still compare
    assert table_hash(df) == table_hash(df, cache=False) == reference_table_hash(df)


def test_digest_is_equal_across_processes(repo_root):
    import os

    digests = set()
    for seed in ("0", "12345"):   # str hashing is salted per process; the digest must not be
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", TABLE_SOURCE], capture_output=True, text=True, check=True,
                             cwd=repo_root, env=env)
        digests.add(out.stdout.strip())
    assert digests == {table_hash(table())}


MUTATIONS = {
    "a float cell": lambda d: d.loc.__setitem__(("s0001", "spatial"), 99.0),
    "a cell by position": lambda d: d.iloc.__setitem__((0, 1), 77),
    "a string cell": lambda d: d.loc.__setitem__(("s0002", "source"), "zz"),
    "a style list": lambda d: d.at.__setitem__(("s0003", "styles"), ["other"]),
    "a category": lambda d: d.loc.__setitem__(("s0000", "cat"), "y" if d.loc["s0000", "cat"] == "x" else "x"),
    "a date": lambda d: d.loc.__setitem__(("s0000", "when"), pd.Timestamp("1999-01-01")),
    "a nullable int": lambda d: d.loc.__setitem__(("s0000", "maybe"), 5),
    "a boolean": lambda d: d.loc.__setitem__(("s0000", "flag"), not d.loc["s0000", "flag"]),
    "a column": lambda d: d.__setitem__("spatial", d["spatial"] + 1),
    "cells by mask": lambda d: d.loc.__setitem__((d["spatial"] > 2, "spatial"), -1.0),
    "a new column": lambda d: d.__setitem__("new", 1),
    "a dropped column": lambda d: d.__delitem__("count"),
    "a renamed column": lambda d: d.rename(columns={"count": "n"}, inplace=True),
    "the index": lambda d: setattr(d, "index", pd.Index([f"t{i}" for i in range(len(d))], name="id")),
    "update()": lambda d: d.update(pd.DataFrame({"spatial": [-5.0]}, index=["s0003"])),
    "replace(inplace=True)": lambda d: d.replace({"source": {"a": "q"}}, inplace=True),
    "a dropped row": lambda d: d.drop(index="s0001", inplace=True),
}


@pytest.mark.parametrize("change", list(MUTATIONS))
def test_a_change_in_place_changes_the_cached_digest(change):
    df = table()
    before = table_hash(df)
    assert table_hash(df) == before                      # cached
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                   # pandas' inplace deprecations
        MUTATIONS[change](df)
    after = table_hash(df)
    assert after != before
    assert after == table_hash(df, cache=False) == reference_table_hash(df)


@pytest.fixture
def count_hashing(monkeypatch):
    """Count the times a table is really hashed (not answered from the cache)."""
    calls = []
    real = provenance._table_hash
    monkeypatch.setattr(provenance, "_table_hash", lambda df: calls.append(len(df)) or real(df))
    return calls


def test_a_table_is_hashed_once(count_hashing):
    df = table()
    assert table_hash(df) == table_hash(df) == table_hash(df)
    assert len(count_hashing) == 1
    for column in df.columns:     # every kind of column keeps the cache valid while unchanged
        part = df[[column]]
        table_hash(part), table_hash(part)
    assert len(count_hashing) == 1 + len(df.columns)


def test_select_hashes_only_when_the_hash_is_read_and_once_per_table(count_hashing, corrupt_pool_dir, tmp_path):
    pool = kit.load_pool(corrupt_pool_dir / "pool.json")
    scores = pool.table[["text_chars"]].astype(float)
    sels = [kit.select(scores, "random", 3, seed=s) for s in range(4)]
    assert count_hashing == []                            # selecting hashes nothing
    assert {s.scores_hash for s in sels} == {reference_table_hash(scores)}
    path = kit.export_subset(pool, sels[0], tmp_path / "subset.json")
    assert json.loads(manifest_path(path).read_text())["scores_hash"] == reference_table_hash(scores)
    assert kit.select(scores, "random", 3).info()["scores_hash"] == sels[0].scores_hash
    assert len(count_hashing) == 1                        # four selections, their manifests: one hash


def test_the_hash_is_of_the_table_as_selected(count_hashing):
    df = table()
    sel = kit.select(df, "random", 5, seed=1)
    as_selected = reference_table_hash(df)
    df.loc["s0000", "spatial"] = -1.0                     # changed after selecting, before the hash is read
    assert sel.scores_hash == as_selected != table_hash(df)
    again = kit.select(df, "random", 5, seed=1)
    assert again.scores_hash == reference_table_hash(df)
    assert len(count_hashing) == 2


def test_a_selection_pickles_with_its_hash():
    df = table()
    sel = kit.select(df, "random", 5, seed=1)
    back = pickle.loads(pickle.dumps(sel))
    assert back == sel and back.scores_hash == table_hash(df) and back.method == "random"
    assert list(back.positions) == list(sel.positions)
    assert pickle.loads(pickle.dumps(DeferredHash(df))) == table_hash(df)


def test_the_cache_forgets_dropped_tables():
    import gc

    df = table()
    table_hash(df)
    key = id(df)
    assert key in provenance._CACHE
    del df
    gc.collect()
    assert key not in provenance._CACHE


def test_kit_select_equals_select_mmssr_on_a_larger_table():
    rng = np.random.default_rng(3)
    n = 3000
    styles = ["yes/no", "multi-choice", "coordinate", "ocr-ish"]
    scores = pd.DataFrame({c: rng.integers(0, 6, n).astype(float) for c in ("spatial", "logical", "ocr")},
                          index=pd.Index([f"r{i:05d}" for i in range(n)], name="id"))
    scores["styles"] = [[styles[k] for k in sorted(set(rng.integers(0, 4, 1 + i % 3).tolist()))] for i in range(n)]
    scores["source"] = rng.choice(["s0", "s1", "s2"], n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for options in ({}, {"bin_order": "score"}, {"threshold": 2}):
            direct = select_mmssr(scores, 0.3, **options)
            through = kit.select(scores, "mmssr", 0.3, **options)
            assert list(through) == list(direct) and len(through) == 900
            assert np.array_equal(through.positions, scores.index.get_indexer(list(through)))
            assert through.scores_hash == reference_table_hash(scores)


def test_without_copy_on_write_nothing_is_cached_or_deferred(count_hashing, monkeypatch):
    # pandas 2 with copy-on-write off: a shallow copy would see later writes, so every call hashes, at once
    monkeypatch.setattr(provenance, "_copy_on_write", lambda: False)
    df = table()
    table_hash(df), table_hash(df)
    assert len(count_hashing) == 2
    sel = kit.select(df, "random", 5, seed=1)
    assert len(count_hashing) == 3
    df.loc["s0000", "spatial"] = -1.0
    assert sel.scores_hash == reference_table_hash(table()) != table_hash(df)
