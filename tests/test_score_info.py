"""Score metadata as one explicit object (kit.scoreinfo): never in DataFrame.attrs, in the parquet schema on disk,
read back from files and folders older versions wrote, and never carried over (stale) to a derived table."""
import json
import warnings

import pandas as pd
import pyarrow.parquet as pq
import pytest

import kit
import tests.support.cheap_scorers  # noqa: F401  (registers test_slow, test_centred)
from kit.provenance import pool_hash, table_hash
from kit.scoreinfo import (ENTRY_KEYS, LEGACY_SCHEMA_KEY, SCHEMA_KEY, ScoreInfo, ScoreTableInfo, attach,
                           scorers_record)
from kit.scoring import TABLE_FILE, load_score_table
from kit.shards import MANIFEST, read_manifest


@pytest.fixture(scope="module")
def pool(repo_root):
    return kit.load_pool(repo_root / "data_samples" / "pool.json")


@pytest.fixture(scope="module")
def joined(pool, tmp_path_factory):
    out = tmp_path_factory.mktemp("scores")
    return kit.score_table(pool, {"test_slow": {"delay": 0}, "test_centred": {}}, out=out), out


def test_the_joined_table_holds_its_info_outside_pandas_attrs(pool, joined):
    table, _ = joined
    info = kit.score_info(table)
    assert isinstance(info, ScoreTableInfo) and table.attrs == {}
    assert list(info.scorers) == ["test_slow", "test_centred"] and info.pool == pool_hash(pool)
    assert info.columns == ("chars", "h", "tags", "centred", "rank")
    assert info.scorers["test_centred"].pool_dependent and not info.scorers["test_slow"].pool_dependent
    assert info.owners()["rank"] == "test_centred"
    # the per-scorer record keeps the layout earlier versions wrote (ablation.json carries it)
    record = scorers_record(table)
    assert all(list(entry) == list(ENTRY_KEYS) for entry in record.values())
    assert record["test_slow"]["columns"] == ["chars", "h", "tags"] and record["test_slow"]["options"] == {"delay": 0}
    assert scorers_record(table.copy()) == {}


def test_the_info_is_in_the_parquet_schema_and_reads_back(pool, joined, tmp_path):
    table, out = joined
    meta = pq.read_schema(out / TABLE_FILE).metadata
    assert SCHEMA_KEY in meta and LEGACY_SCHEMA_KEY not in meta       # kit's key, not pandas' attrs
    assert json.loads(meta[SCHEMA_KEY])["scorers"]["test_centred"]["columns"] == ["centred", "rank"]
    back = kit.load_scores(out / TABLE_FILE)
    assert back.equals(table) and back.attrs == {} and kit.score_info(back) == kit.score_info(table)
    # one scorer's table through save_scores / load_scores: every field, the folder's state included
    one = kit.load_scores(out / "test_slow")
    kit.save_scores(one, tmp_path / "one.parquet")
    again = kit.load_scores(tmp_path / "one.parquet")
    assert again.equals(one) and kit.score_info(again) == kit.score_info(one)
    assert kit.score_info(again).folder.complete and kit.score_info(again).folder.n_expected == len(pool)
    # a table written without any info reads back without one
    kit.save_scores(table.copy(), tmp_path / "bare.parquet")
    assert kit.score_info(kit.load_scores(tmp_path / "bare.parquet"), required=False) is None


def test_files_and_folders_an_older_kit_wrote_still_load(pool, joined, tmp_path):
    table, out = joined
    # an older kit's save_scores: the info as pandas attrs (PANDAS_ATTRS in the schema)
    old = table.copy()
    old.attrs = kit.score_info(table).to_dict()
    (tmp_path / "old").mkdir()
    old.to_parquet(tmp_path / "old" / TABLE_FILE)
    assert LEGACY_SCHEMA_KEY in pq.read_schema(tmp_path / "old" / TABLE_FILE).metadata
    back = load_score_table(tmp_path / "old", pool)                    # the pool hash still matches
    assert back is not None and back.attrs == {} and kit.score_info(back) == kit.score_info(table)
    # an older kit's single scorer table: flat attrs, the label under "scorer", counts beside them
    single = pool.table[["text_chars"]].astype(float)
    single.attrs = {"scorer_name": "image_text", "columns": ["text_chars"], "scorer": "stand-in (not CLIP)",
                    "short_label": "stand-in", "n_failed": 2, "text": "conversation", "complete": True,
                    "n_expected": 5, "folder": "scores/image_text", "n_shards": 1, "n_encoded": 1}
    single.to_parquet(tmp_path / "single.parquet")
    info = kit.score_info(kit.load_scores(tmp_path / "single.parquet"))
    assert info.label == "stand-in (not CLIP)" and info.columns == ("text_chars",)
    assert info.details == {"n_failed": 2, "text": "conversation"} and info.folder.n_expected == 5
    # a score folder whose manifest an older kit wrote: the scorer's label under "scorer" in its attrs
    manifest = read_manifest(out / "test_slow")
    manifest["attrs"] = {"columns": ["chars", "h"], "scorer": "slow (old)", "pool_dependent": False}
    manifest["counts"] = {"n_failed": 3}
    (out / "test_slow" / MANIFEST).write_text(json.dumps(manifest))
    info = kit.score_info(kit.load_scores(out / "test_slow"))
    assert info.label == "slow (old)" and info.columns == ("chars", "h") and info.details == {"n_failed": 3}


def test_a_filtered_or_joined_table_selects_and_never_carries_a_stale_info(joined):
    table, _ = joined
    part = table[table["chars"] > table["chars"].median()]
    assert kit.score_info(part, required=False) is None                 # not the whole table's columns or checks
    with pytest.raises(LookupError, match="derived from one"):
        kit.score_info(part)
    sel = kit.select(part, "random", 10, seed=1)
    assert set(sel) <= set(part.index) and sel.scores_hash == table_hash(part)   # provenance: the filtered table
    assert sel.scores_hash != table_hash(table)
    merged = part.join(pd.Series(1.0, index=part.index, name="extra"))
    top = kit.select(merged, "clip_top", 5, score_col="chars")
    assert list(top) == list(part["chars"].sort_values(ascending=False, kind="stable").index[:5])
    assert top.scores_hash == table_hash(merged)
    # an info given to a derived table on purpose
    attach(part, kit.score_info(table))
    assert kit.score_info(part) is kit.score_info(table)


def test_a_scorer_that_declares_in_attrs_still_works_with_a_warning(pool):
    @kit.register_scorer("test_old_style", overwrite=True)
    class OldStyle:
        def score(self, pool):
            t = pool.table[["text_chars", "n_turns"]].astype(float)
            t.attrs = {"columns": ["text_chars"], "scorer": "an older scorer", "n_odd": 1}
            return t

    with pytest.warns(FutureWarning, match="declares its metadata in DataFrame.attrs"):
        table = kit.score(pool, "test_old_style")
    info = kit.score_info(table)
    assert table.attrs == {} and info.columns == ("text_chars",) and info.label == "an older scorer"
    assert info.details == {"n_odd": 1}


def test_score_info_rejects_details_that_repeat_a_field():
    with pytest.raises(ValueError, match="label"):
        ScoreInfo(details={"label": "x"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ScoreInfo.from_dict(ScoreInfo(columns=["a"], details={"k": {"x": 1}}).to_dict()).details == {
            "k": {"x": 1}}
