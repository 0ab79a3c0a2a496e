"""The kit's face: registries, budgets, random selection, score persistence and export."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import kit
from kit.export import manifest_path
from kit.registry import Registry
from kit.selection import SelectionShortfall, table_hash


@pytest.fixture
def scores():
    rng = np.random.default_rng(1)
    return pd.DataFrame({"a": rng.random(50), "styles": [["yes/no"]] * 50},
                        index=pd.Index([f"s{i:02d}" for i in range(50)], name="id"))


def test_importing_kit_does_not_import_torch():
    code = "import sys, kit; kit.SELECTORS.get('random'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registrations_are_undone_after_each_test():
    """conftest's autouse fixture restores every registry; this checks the snapshot it uses."""
    from kit import capabilities
    from kit.registry import COMMANDS, FEATURE_EXTRACTORS, SCORERS
    from tests.support.registries import snapshot

    random = kit.SELECTORS.get("random")
    restore = snapshot()
    kit.register_selector("test_undone")(len)
    kit.register_selector("random", overwrite=True)(len)
    SCORERS.add("test_undone", path="json:dumps")
    FEATURE_EXTRACTORS.add("test_undone", len)
    COMMANDS.add("test-undone", len, summary="x")
    capabilities.register_capability("test_undone", "Undone", "undone things")
    assert kit.SELECTORS.get("dis") is not None   # a built-in resolved meanwhile keeps its cache
    restore()
    for reg in (kit.SELECTORS, SCORERS, FEATURE_EXTRACTORS):
        assert "test_undone" not in reg
    assert "test-undone" not in COMMANDS.names() and "test-undone" not in COMMANDS.summaries
    assert "test_undone" not in capabilities.capability_keys()
    assert kit.SELECTORS.get("random") is random and "dis" in kit.SELECTORS._loaded


def test_registry_is_lazy_and_extensible():
    reg = Registry("thing", {"json_dumps": "json:dumps"})
    assert "json_dumps" in reg and reg.get("json_dumps") is json.dumps

    @reg.register("mine")
    def mine():
        return 1

    assert reg.get("mine") is mine and reg.names() == ["json_dumps", "mine"]
    with pytest.raises(ValueError, match="already registered"):
        reg.add("mine", len)
    with pytest.raises(KeyError, match="unknown thing 'nope'"):
        reg.get("nope")


@pytest.mark.parametrize("budget,n", [(10, 10), (0, 0), (0.3, 15), (0.999, 49), (500, 500)])
def test_budget_resolution(budget, n):
    assert kit.resolve_budget(budget, 50) == n


@pytest.mark.parametrize("budget", [-1, 0.0, 1.0, 1.5, True, "10"])
def test_bad_budgets(budget):
    with pytest.raises((ValueError, TypeError)):
        kit.resolve_budget(budget, 50)


def test_random_selection(scores):
    sel = kit.select(scores, "random", 0.2, seed=3)
    assert len(sel) == 10 and len(set(sel)) == 10 and set(sel) <= set(scores.index)
    assert sel == kit.select(scores, "random", 10, seed=3)
    assert sel != kit.select(scores, "random", 10, seed=4)
    assert sel.method == "random" and sel.seed == 3 and sel.budget == 10
    assert sel.scores_hash == table_hash(scores)
    # asking for more than the pool returns all of it and says so
    with pytest.warns(SelectionShortfall, match="returned 50 of the 80"):
        big = kit.select(scores, "random", 80)
    assert sorted(big) == sorted(scores.index) and big.notes


def test_custom_selector_is_checked(scores):
    @kit.register_selector("test_too_many", overwrite=True)
    def too_many(scores, n, seed=0):
        return list(scores.index[: n + 1])

    with pytest.raises(RuntimeError, match="returned 6 ids for a budget of 5"):
        kit.select(scores, "test_too_many", 5)


@pytest.mark.parametrize("returned,error", [
    (["s01", "s02", "s01"], "returned duplicate ids"),
    (["s01", "nope", "also_not", "nope"], "returned duplicate ids"),
    (["s01", "zz", "nope"], r"ids not in the score table, e\.g\. \['nope', 'zz'\]"),
    ([1, "s02"], r"ids not in the score table, e\.g\. \[1\]"),
])
def test_selector_contract_is_checked(scores, returned, error):
    @kit.register_selector("test_contract", overwrite=True)
    def bad(scores, n, seed=0):
        return list(returned)

    with pytest.raises(RuntimeError, match=error):
        kit.select(scores, "test_contract", 5)


@pytest.mark.parametrize("positions", [[3, 1, 2], [1, 2, 3], [1, 1, 2], [1, 2], [0, 2, 99], [-1, 1, 2], "x"])
def test_a_selectors_positions_are_checked_not_trusted(scores, positions):
    """A selector may report its ids' row positions (mmSSR does): used when they match, else looked up."""
    from kit.selection import Selection

    ids = ["s03", "s01", "s02"]

    @kit.register_selector("test_positions", overwrite=True)
    def with_positions(scores, n, seed=0):
        return Selection(ids, positions=np.asarray(positions) if positions != "x" else positions)

    sel = kit.select(scores, "test_positions", 3)
    assert list(sel) == ids and sel.positions.tolist() == [3, 1, 2]


def test_table_hash_sees_values(scores):
    other = scores.copy()
    other.iloc[0, 0] += 1e-9
    assert table_hash(scores) == table_hash(scores.copy())
    assert table_hash(scores) != table_hash(other)


def test_custom_scorer_rows_are_checked(corrupt_pool_dir, tmp_path):
    pool = kit.load_pool(corrupt_pool_dir / "pool.json")

    @kit.register_scorer("test_chars", overwrite=True)
    class Chars:
        def __init__(self, drop=False):
            self.drop = drop

        def score(self, pool):
            t = pool.table[["text_chars"]].rename(columns={"text_chars": "chars"})
            return t.iloc[1:] if self.drop else t

    out = kit.score(pool, "test_chars", out=tmp_path / "s")
    assert list(out.index) == pool.ids
    assert kit.load_scores(tmp_path / "s").equals(out)
    assert out.equals(kit.score(pool, "test_chars"))
    with pytest.raises(RuntimeError, match="1 missing"):
        kit.score(pool, "test_chars", drop=True)


@pytest.mark.parametrize("fmt,suffix", [("llava", ".json"), ("jsonl", ".jsonl"), ("parquet", ".parquet")])
def test_export_round_trips_with_manifest(corrupt_pool_dir, tmp_path, fmt, suffix):
    pool = kit.load_pool(corrupt_pool_dir / "pool.json")
    scores = pool.table[["text_chars"]].astype(float)
    sel = kit.select(scores, "random", 3, seed=7)
    path = kit.export_subset(pool, sel, tmp_path / f"subset{suffix}", format=fmt)
    again = kit.load_pool(path, images=corrupt_pool_dir / "images")
    assert again.ids == list(sel) and len(again.report) == 0
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["ids"] == list(sel) and manifest["method"] == "random" and manifest["seed"] == 7
    assert manifest["scores_hash"] == table_hash(scores)
    assert manifest["versions"]["kit"] and manifest["versions"]["pandas"] == pd.__version__


def test_export_rejects_unknown_ids(corrupt_pool_dir, tmp_path):
    pool = kit.load_pool(corrupt_pool_dir / "pool.json")
    with pytest.raises(KeyError):
        kit.export_subset(pool, ["nope"], tmp_path / "x.json")
    with pytest.raises(ValueError, match="duplicates"):
        kit.export_subset(pool, ["ok_1", "ok_1"], tmp_path / "x.json")


def test_score_cached_reuses_only_matching_work(corrupt_pool_dir, tmp_path):
    pool = kit.load_pool(corrupt_pool_dir / "pool.json")
    calls = []

    @kit.register_scorer("test_counting", overwrite=True)
    class Counting:
        def __init__(self, scale=1.0):
            self.scale = scale

        def score(self, pool):
            calls.append(self.scale)
            return (pool.table[["text_chars"]] * self.scale).astype(float)

    out = tmp_path / "scores" / "counting"
    first = kit.score_cached(pool, "test_counting", out)
    again = kit.score_cached(pool, "test_counting", out)
    assert calls == [1.0] and again.equals(first)
    kit.score_cached(pool, "test_counting", out, scale=2.0)  # other options: scored again
    assert calls == [1.0, 2.0]
    kit.score_cached(pool.subset(pool.ids[:2]), "test_counting", out, scale=2.0)  # other pool: again
    assert calls == [1.0, 2.0, 2.0]


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet"])
def test_exports_always_read_back(tmp_path, suffix):
    from tests.support.hostile_pools import record, write_pool

    records = [record("nan", meta="x", extra_score=float("nan")), record(7, meta=["a", "list"]),
               record("two", image=["ok.png", "ok.png"], q="<image>\n<image>\nSame?", meta={"k": 1}),
               record("inf", meta=None, extra_score=float("inf"))]
    pool = kit.load_pool(write_pool(tmp_path, records, "pool.json"), multi_image=True)  # a JSON array with NaN
    assert pool.ids == ["nan", "7", "two", "inf"]
    path = kit.export_subset(pool, pool.ids, tmp_path / "out" / f"subset{suffix}")
    if suffix != ".parquet":
        text = path.read_text(encoding="utf-8")
        def strict(c):
            raise ValueError(f"not JSON: {c}")
        rows = [json.loads(line, parse_constant=strict) for line in text.splitlines()] if suffix == ".jsonl" \
            else json.loads(text, parse_constant=strict)
        assert rows[0]["extra_score"] is None and rows[3]["extra_score"] is None  # NaN and inf as null
    again = kit.load_pool(path, images=tmp_path / "images", multi_image=True)
    assert again.ids == pool.ids and len(again.report) == 0
    assert again.table.at["two", "n_images"] == 2 and again.table.at["nan", "n_images"] == 1
    if suffix == ".parquet":  # the id, the image and meta vary in type between records: named in the manifest
        assert set(json.loads(manifest_path(path).read_text())["text_fields"]) == {"id", "image", "meta"}


def test_an_export_refuses_a_suffix_it_would_not_read_back(corrupt_pool_dir, tmp_path):
    pool = kit.load_pool(corrupt_pool_dir / "pool.json")
    with pytest.raises(ValueError, match="would be read back as llava"):
        kit.export_subset(pool, ["ok_1"], tmp_path / "x.json", format="jsonl")
    with pytest.raises(ValueError, match="read back by its suffix"):
        kit.export_subset(pool, ["ok_1"], tmp_path / "x.txt")
    with pytest.raises(ValueError, match="an input"):
        kit.export_subset(pool, ["ok_1"], corrupt_pool_dir / "pool.json")
    assert not list(tmp_path.iterdir())


def test_a_budget_that_rounds_to_nothing_warns_and_says_why(scores):
    with pytest.warns(SelectionShortfall, match=r"0.001 of 50 samples is 0.05 samples, which rounds down to 0"):
        sel = kit.select(scores, "random", 0.001)
    assert sel == [] and (sel.shortfall.asked, sel.shortfall.returned) == (1, 0)
    with pytest.warns(SelectionShortfall, match="nothing is selected"):
        assert kit.resolve_budget(0.01, 50) == 0          # a selector called directly resolves it the same way
    sel = kit.select(scores, "random", 0.33)              # 16.5 samples: 16, as documented, and said in the notes
    assert len(sel) == 16 and sel.shortfall is None
    assert "the budget 0.33 of 50 samples is 16.5 samples, which rounds down to 16" in sel.notes
