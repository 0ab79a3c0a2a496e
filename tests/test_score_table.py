"""The one score table: joining scorers, their declared columns, caching, labels, and the notebook helper."""
import pandas as pd
import pytest

import kit
import kit.notebook
from kit.scoring import load_score_table, part_path, scorer_label


@pytest.fixture(scope="module")
def pool(repo_root):
    return kit.load_pool(repo_root / "tests" / "fixtures" / "corrupt_pool" / "pool.json")


@pytest.fixture(scope="module", autouse=True)
def test_scorers():
    calls = []

    @kit.register_scorer("test_chars_table", overwrite=True)
    class Chars:
        pool_dependent = False
        short_label = "characters"

        def __init__(self, scale=1.0):
            self.scale = scale

        def score(self, pool):
            calls.append(("chars", self.scale))
            t = (pool.table[["text_chars"]] * self.scale).astype(float).rename(columns={"text_chars": "chars"})
            t["status"] = "ok"
            t["chars_debug"] = 0
            return t, kit.ScoreInfo(columns=["chars"])   # declares its selection column

    @kit.register_scorer("test_turns_table", overwrite=True)
    class Turns:
        pool_dependent = True

        def score(self, pool):
            calls.append(("turns", None))
            return pool.table[["n_turns"]].astype(float)

    @kit.register_scorer("test_chars_again", overwrite=True)
    class CharsAgain(Chars):
        pass

    return calls


def test_joins_declared_columns_with_source_and_status(pool, test_scorers):
    table = kit.score_table(pool, {"test_chars_table": {"scale": 2.0}, "test_turns_table": {}})
    assert list(table.index) == pool.ids and table.index.name == "id"
    assert list(table.columns) == ["source", "chars", "status_test_chars_table", "n_turns"]
    assert (table["chars"] == pool.table["text_chars"] * 2).all()
    info = kit.score_info(table).scorers
    assert info["test_chars_table"].columns == ("chars",) and info["test_turns_table"].columns == ("n_turns",)
    assert info["test_chars_table"].pool_dependent is False and info["test_turns_table"].pool_dependent is True
    assert info["test_chars_table"].options == {"scale": 2.0} and table.attrs == {}   # nothing in pandas' attrs
    assert scorer_label(table, "test_chars_table") == "characters"
    assert scorer_label(table, "nope", default="?") == "?"


def test_two_scorers_making_one_column_is_an_error(pool):
    with pytest.raises(ValueError, match="both make column 'chars'"):
        kit.score_table(pool, ["test_chars_table", "test_chars_again"])
    with pytest.raises(ValueError, match="each scorer once"):
        kit.score_table(pool, ["test_turns_table", "test_turns_table"])


def test_cached_parts_are_reused_and_the_table_reads_back(pool, tmp_path, test_scorers):
    test_scorers.clear()
    first = kit.score_table(pool, [("test_chars_table", {"scale": 3.0}), "test_turns_table"], out=tmp_path)
    again = kit.score_table(pool, [("test_chars_table", {"scale": 3.0}), "test_turns_table"], out=tmp_path)
    assert test_scorers == [("chars", 3.0), ("turns", None)]       # the second call scored nothing
    assert again.equals(first) and all(i.reused for i in kit.score_info(again).scorers.values())
    assert part_path(tmp_path, "test_turns_table").exists()
    back = load_score_table(tmp_path, pool)
    assert back.equals(first) and kit.score_info(back).scorers["test_chars_table"].columns == ("chars",)
    assert kit.score_info(back) == kit.score_info(again)                       # the whole info reads back
    assert load_score_table(tmp_path, pool.subset(pool.ids[:2])) is None      # scored on other data
    assert load_score_table(tmp_path / "empty") is None


def test_score_records_timing_label_and_default_columns(pool):
    table = kit.score(pool, "test_turns_table")
    info = kit.score_info(table)
    assert info.scorer_name == "test_turns_table" and info.columns == ("n_turns",)
    assert info.timing["seconds"] >= 0 and info.label == "test_turns_table" and info.pool_dependent


def test_notebook_run_folder_defaults_to_the_projects_runs(repo_root, tmp_path, monkeypatch, capsys):
    """Without run_dir: runs/interactive of the working directory, or of its parent when a notebook runs in its
    notebooks/ folder, so a checkout's notebooks (run by hand or from its root) share the checkout's runs/."""
    assert kit.notebook.default_run_dir(repo_root) == repo_root / "runs" / "interactive"
    assert kit.notebook.default_run_dir(repo_root / "notebooks") == repo_root / "runs" / "interactive"
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    nb = kit.notebook.start(repo_root / "tests" / "fixtures" / "corrupt_pool" / "pool.json", quiet=True)
    assert nb.run_dir == tmp_path / "runs" / "interactive" and nb.run_dir.is_dir()


def test_notebook_helper_sets_up_a_run(repo_root, tmp_path, capsys):
    nb = kit.notebook.start(repo_root / "tests" / "fixtures" / "corrupt_pool" / "pool.json", tmp_path)
    assert "records read" in capsys.readouterr().out
    assert not nb.has_labels and nb.defects() is None
    assert nb.scores_dir == tmp_path / "scores" and nb.figures_dir == tmp_path / "figures"
    first = nb.score_table({"test_chars_table": {}, "test_turns_table": {}})
    assert nb.scores().equals(first)                         # the saved table, same pool
    part = nb.score("test_chars_table")
    assert kit.score_info(part).reused and "chars_debug" in part.columns   # a scorer's own table keeps its diagnostics
    times = kit.notebook.timings(first)
    assert list(times.index) == ["test_chars_table", "test_turns_table"] and not times["reused"].any()
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    assert nb.save(fig, "00_test").is_file()
    plt.close(fig)


def test_cell_crosstab_counts_scored_samples():
    from kit.quality.space import QualitySpace

    scores = pd.DataFrame({"image_text": [0.1, 0.9, 0.5, float("nan")], "loss_sum": [1.0, 3.0, 2.0, 2.0]},
                          index=["a", "b", "c", "d"])
    space = QualitySpace.fit(scores, bounds=(0.0, 1.0), grid=3)
    cells = space.cell_of(scores)
    assert cells.tolist() == ["bottom_left", "top_right", "center", None]
    table = space.crosstab(scores, pd.Series(["x", "y", "x", "x"], index=scores.index, name="defect"))
    assert table.loc["x"].sum() == 2 and table.loc["y", "top_right"] == 1
