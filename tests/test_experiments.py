"""kit.experiments: the ablation grid on a micro model resumes, its metrics are right, the pool is as planted."""
import json
from collections import Counter

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import kit  # noqa: E402
import kit.finetune as ft  # noqa: E402
from kit.experiments import ablate, add_relative_metrics, load_results, summary_table  # noqa: E402
from tests.support.micro import PRESET  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@kit.register_scorer("_test_quality", overwrite=True)
class _QualityForTests:
    """Cheap, deterministic s and l columns (the selectors only need numbers)."""

    def score(self, pool):
        rng = np.random.default_rng(0)
        n = len(pool.table)
        return pd.DataFrame({"image_text": rng.random(n), "loss_mean": rng.random(n), "loss_sum": rng.random(n) * 5,
                             "status": "ok"},
                            index=pool.table.index)


@pytest.fixture(scope="module")
def small_pool(tmp_path_factory):
    from kit.pools import build_easyvqa_pool

    out = tmp_path_factory.mktemp("pool")
    rates = {"mismatch": 0.1, "wrong_answer": 0.1, "truncated": 0.05, "duplicate": 0.05}
    build_easyvqa_pool(out, n=40, rates=rates, seed=0, templates=["word_color", "word_shape", "yn_color"],
                       progress=False)
    return kit.load_pool(out / "pool.json")


@pytest.fixture(scope="module")
def base(micro_base):
    return micro_base


def test_experiment_pool_plants_mismatches_within_the_source_and_skips_reserved_images(small_pool):
    from kit.eval.labels import labels_path_for, load_labels
    from kit.pools.build import pool_easyvqa_ids
    from kit.pools.easyvqa import TRAIN_SLICES

    labels = load_labels(labels_path_for(small_pool.path))
    assert Counter(labels["defect"]) == {"none": 28, "mismatch": 4, "wrong_answer": 4, "truncated": 2,
                                         "duplicate": 2}
    table = small_pool.table
    for sid in labels.index[labels["defect"] == "mismatch"]:
        origin = labels.loc[sid, "origin"]
        assert table.loc[sid, "source"] == table.loc[origin, "source"] == "easyvqa"
        assert table.loc[sid, "image"] != table.loc[origin, "image"]
        assert table.loc[sid, "conversations"] == table.loc[origin, "conversations"]
    used = pool_easyvqa_ids(small_pool.path, "train")
    reserved = set().union(*TRAIN_SLICES.values())
    assert used and not used & reserved


def test_relative_metrics_follow_the_papers_definitions():
    rows = []
    for seed in (0, 1):
        rows.append({"method": "full", "budget": "full", "seed": seed, "accuracy_colour": 0.8, "accuracy_shape": 0.6,
                     "accuracy_yes/no": 0.5})
        rows.append({"method": "random", "budget": 0.1, "seed": seed, "accuracy_colour": 0.4, "accuracy_shape": 0.3,
                     "accuracy_yes/no": 0.5})
        rows.append({"method": "dis", "budget": 0.1, "seed": seed, "accuracy_colour": 0.8, "accuracy_shape": 0.3,
                     "accuracy_yes/no": 0.6 if seed == 0 else 0.4})
    t = add_relative_metrics(pd.DataFrame(rows))
    dis = t[t["method"] == "dis"].set_index("seed")
    assert dis.loc[0, "/FULL"] == pytest.approx((1.0 + 0.5 + 1.2) / 3 * 100)
    assert dis.loc[0, ">Rand"] == 2 and dis.loc[1, ">Rand"] == 1   # ties do not count
    assert t[t["method"] == "full"]["/FULL"].eq(100).all() and t[t["method"] == "random"][">Rand"].isna().all()
    s = summary_table(t.assign(accuracy=0.5, n=10, train_seconds=1.0))
    assert s.loc[(0.1, "dis"), ">Rand"] == 1.5 and s.loc[(0.1, "dis"), "seeds"] == 2


def test_ablation_grid_runs_and_resumes(small_pool, base, tmp_path, monkeypatch):
    questions = ft.easyvqa_eval_set(per_type=4)
    kwargs = dict(methods=["random", "dis", "curriculum", "curriculum_shuffled"], budgets=[0.25], seeds=[0, 1],
                  preset=PRESET, out=tmp_path / "abl", scorers={"_test_quality": {}}, eval_set=questions,
                  progress=False, max_steps=2, epochs=1.0)
    import kit.finetune

    calls = []
    real = kit.finetune.finetune

    def counting(*args, **kw):
        calls.append(kw["out"])
        return real(*args, **kw)

    monkeypatch.setattr(kit.finetune, "finetune", counting)
    monkeypatch.setattr(kit.finetune, "base_model", lambda preset, **k: base)
    first = ablate(small_pool, **{**kwargs, "methods": ["random", "dis"]})
    assert len(first) == 2 * 2 + 2 and len(calls) == 6                       # + full, once per seed
    table = ablate(small_pool, **kwargs)
    assert len(table) == 4 * 2 + 2 and len(calls) == 10                      # finished runs were reused
    cols = {"method", "budget", "seed", "n", "accuracy", "accuracy_colour", "accuracy_shape", "accuracy_yes/no",
            "/FULL", ">Rand", "defect_share", "train_seconds", "steps"}
    assert cols <= set(table.columns)
    assert table["n"].max() <= 40 and (table[table["method"] == "full"]["n_selected"] == 40).all()
    assert (table["n"] == table["n_selected"]).all() and (table["n_eval"] == len(questions)).all()
    cur = table[table["method"].str.startswith("curriculum")].set_index(["method", "seed"])
    assert (cur.loc["curriculum", "defect_share"].values == cur.loc["curriculum_shuffled", "defect_share"].values).all()
    man = json.loads((tmp_path / "abl" / "runs" / "curriculum_0.25_s0" / "train" / "manifest.json").read_text())
    shuffled = json.loads((tmp_path / "abl" / "runs" / "curriculum_shuffled_0.25_s0" / "train" / "manifest.json")
                          .read_text())
    assert len(man["stages"]) == 3 and shuffled["stages"] is None and sorted(man["ids"]) == sorted(shuffled["ids"])
    again = load_results(tmp_path / "abl")
    assert len(again) == len(table)
    from kit.plotting.experiments import accuracy_vs_budget, accuracy_vs_defects, paper_table

    ax = accuracy_vs_budget(table)
    assert len(ax.get_legend().get_texts()) >= 5
    paper = paper_table(table, ["random", "dis", "curriculum", "curriculum_shuffled", "full"])
    assert list(paper.index) == ["random", "dis", "curriculum", "curriculum_shuffled", "full"]
    assert accuracy_vs_defects(table).collections


def test_unknown_method_is_an_error_with_a_suggestion(small_pool, tmp_path):
    with pytest.raises(KeyError, match="did you mean"):
        ablate(small_pool, methods=["randomm"], out=tmp_path, scorers={"_test_quality": {}})


def test_verdicts_against_random_and_curriculum_order_use_the_seeds_spread():
    from kit.experiments import against_random, curriculum_vs_shuffled

    acc = {("random", 0): [0.40, 0.42, 0.44], ("dis", 0): [0.50, 0.52, 0.54], ("dil", 0): [0.41, 0.43, 0.45],
           ("curriculum", 0): [0.30, 0.36, 0.33], ("curriculum_shuffled", 0): [0.31, 0.30, 0.35],
           ("full", "full"): [0.60, 0.62, 0.64]}
    rows = [{"method": m, "budget": 0.1 if b == 0 else b, "seed": s, "accuracy": a}
            for (m, b), values in acc.items() for s, a in enumerate(values)]
    table = pd.DataFrame(rows)
    v = against_random(table)
    assert v.loc[(0.1, "dis"), "diff"] == pytest.approx(0.10) and v.loc[(0.1, "dis"), "verdict"] == "beats random"
    assert v.loc[(0.1, "dil"), "verdict"] == "within the seeds' spread of random"
    assert v.loc[(0.1, "curriculum"), "verdict"] == "loses to random"
    assert v.loc[(0.1, "dis"), "of_full"] == pytest.approx(0.52 / 0.62)
    assert v.loc[(0.1, "random"), "pooled_sd"] == pytest.approx(0.02)
    c = curriculum_vs_shuffled(table)
    assert c.loc[0.1, "mean_diff"] == pytest.approx(np.mean([-0.01, 0.06, -0.02]))
    assert c.loc[0.1, "curriculum_wins"] == 1 and c.loc[0.1, "seeds"] == 3


def test_rows_written_before_n_eval_read_back_the_trained_count(tmp_path):
    from kit.experiments.ablation import read_result

    run = tmp_path / "random_0.1_s0"
    (run / "train").mkdir(parents=True)
    (run / "result.json").write_text(json.dumps({"method": "random", "n": 600, "n_selected": 200}))
    (run / "train" / "done.json").write_text(json.dumps({"n_examples": 199}))
    row = read_result(run)
    assert row["n"] == 199 and row["n_eval"] == 600


def test_baselines_run_by_name_and_the_embedding_selectors_get_the_scorers_embeddings(tmp_path):
    from kit.capabilities import capability_keys
    from kit.experiments.ablation import NEEDS, default_scorers, selection_for, with_embeddings

    methods = ["random", "clip_top", "ppl_band", "deita", "coincide"]
    scorers = {"image_text": {}, "rich": {}}
    options = with_embeddings(methods, {"coincide": {"clusters": 3}}, scorers, tmp_path / "emb")
    assert scorers["image_text"]["embeddings_dir"] == str(tmp_path / "emb")
    assert options == {"deita": {"embeddings": str(tmp_path / "emb")},
                       "coincide": {"clusters": 3, "embeddings": str(tmp_path / "emb")}}
    given = with_embeddings(["deita"], {"deita": {"embeddings": "mine"}}, {}, tmp_path / "emb")
    assert given == {"deita": {"embeddings": "mine"}}                 # the caller's embeddings are kept
    with pytest.raises(ValueError, match="no image_text scorer"):
        with_embeddings(["deita"], None, {"loss": {}}, tmp_path / "emb")
    assert {m for m in methods if m != "random"} <= set(NEEDS)
    assert set(default_scorers(methods=["clip_top"], base="unused")) == {"image_text"}
    assert set(default_scorers(methods=["ppl_band"], base="unused")) == {"loss"}
    # each baseline selects by name from a score table with embeddings, within the budget
    rng = np.random.default_rng(0)
    ids = pd.Index([f"s{i}" for i in range(60)], name="id")
    scores = pd.DataFrame({"image_text": rng.random(60), "loss_mean": rng.random(60), "loss_sum": rng.random(60),
                           **{c: rng.integers(0, 6, 60) for c in capability_keys()}}, index=ids)
    emb = pd.DataFrame(rng.normal(size=(60, 8)), index=ids)
    for m in methods:
        opts = {"embeddings": emb, **({"clusters": 3} if m == "coincide" else {})} if m in ("deita", "coincide") else {}
        chosen, stages, info = selection_for(scores, m, 0.25, 0, options=opts)
        assert 0 < len(chosen) <= 15 and len(set(chosen)) == len(chosen) and stages is None, m
        assert info["method"] == m


def test_runs_that_would_train_the_same_model_are_trained_once(small_pool, base, tmp_path, monkeypatch):
    import kit.experiments.ablation as ablation
    import kit.finetune

    real_select = ablation.selection_for

    def capped(scores, method, budget, seed, stages=3, options=None):   # like DIQ on a region smaller than both
        ids, st, info = real_select(scores, method, budget, seed, stages, options)
        return (ids[:5], st, info) if method == "dis" else (ids, st, info)

    calls = []
    real = kit.finetune.finetune
    monkeypatch.setattr(ablation, "selection_for", capped)
    monkeypatch.setattr(kit.finetune, "finetune", lambda *a, **kw: calls.append(kw["out"]) or real(*a, **kw))
    monkeypatch.setattr(kit.finetune, "base_model", lambda preset, **k: base)
    table = ablate(small_pool, methods=["random", "dis"], budgets=[0.25, 0.5], seeds=[0], preset=PRESET,
                   out=tmp_path / "abl", scorers={"_test_quality": {}}, eval_set=ft.easyvqa_eval_set(per_type=4),
                   progress=False, full=False, max_steps=2, epochs=1.0)
    assert len(table) == 4 and len(calls) == 3                                  # dis 0.5 was not trained again
    dis = table[table["method"] == "dis"].set_index("budget")
    assert dis.loc[0.5, "same_run_as"] == "dis_0.25_s0" and pd.isna(dis.loc[0.25, "same_run_as"])
    assert dis.loc[0.5, "accuracy"] == dis.loc[0.25, "accuracy"] and dis.loc[0.5, "train_seconds"] == 0
    copied = tmp_path / "abl" / "runs" / "dis_0.5_s0"
    assert (copied / "result.json").is_file() and (copied / "predictions.parquet").is_file()
    assert len(load_results(tmp_path / "abl")) == 4
    again = ablate(small_pool, methods=["random", "dis"], budgets=[0.25, 0.5], seeds=[0], preset=PRESET,
                   out=tmp_path / "abl", scorers={"_test_quality": {}}, eval_set=ft.easyvqa_eval_set(per_type=4),
                   progress=False, full=False, max_steps=2, epochs=1.0)
    assert len(calls) == 3 and again["accuracy"].tolist() == table["accuracy"].tolist()   # resumed, nothing rerun
