"""The newer selection signals on a micro LLaVA: gradient influence (LESS/ICONS), image gain, CVS and ScalSelect.

One micro base (the fine-tuning tests' micro spec, aligned for a few steps) serves every test; each scorer runs on a
handful of samples of ``data_samples/``.
"""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import kit
import kit.finetune as ft
from kit.collapse import ScoreCollapseWarning
from kit.finetune.presets import Preset, TrainConfig
from kit.selection import SelectionShortfall
from tests.support.micro import MICRO, MICRO_ALIGN

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET = Preset(name="micro", spec=MICRO, align=MICRO_ALIGN,   # the fine-tuning tests' base, its own training config
                train=TrainConfig(lr=3e-3, epochs=1.0, batch_size=4, max_length=256))


@pytest.fixture(scope="module")
def base(aligned_base):
    return aligned_base(PRESET)   # the same alignment as the fine-tuning tests' micro base: one folder for both


TRUNCATED = "ev_0010"      # a planted truncation: its answer is empty


@pytest.fixture(scope="module")
def pool(repo_root):
    """Ten easy-vqa samples (one of them with an empty answer) and two others, from ``data_samples/``."""
    full = kit.load_pool(repo_root / "data_samples" / "pool.json")
    ids = [i for i in full.table.index if i.startswith("ev_")][:10] + \
          [i for i in full.table.index if i.startswith(("ph_", "rd_"))][:2]
    assert TRUNCATED in ids
    return full.subset(ids)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private kit cache for the warm-up states (so every run of the module warms afresh)."""
    folder = tmp_path_factory.mktemp("kit_cache")
    before = os.environ.get("KIT_CACHE")
    os.environ["KIT_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("KIT_CACHE", None)
    else:
        os.environ["KIT_CACHE"] = before


INFLUENCE = {"per_task": 2, "batch_size": 4, "dim": 512, "progress": False}


@pytest.fixture(scope="module")
def influence(base, pool, cache):
    return kit.score(pool, "influence", model=str(base), **INFLUENCE)


# ----------------------------------------------------------------------------- projection
def test_projection_is_seeded_per_block_and_keeps_inner_products():
    import torch

    from kit.influence.projection import Projector

    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(4, 3000)), dtype=torch.float32)
    for kind in ("sparse", "dense"):
        a, b = torch.zeros(4, 2048), torch.zeros(4, 2048)
        Projector(2048, kind, seed=3).project("w", x, a)
        Projector(2048, kind, seed=3).project("w", x, b)
        assert torch.equal(a, b)                                  # the same block, the same numbers
        c = torch.zeros(4, 2048)
        Projector(2048, kind, seed=3).project("other", x, c)
        assert not torch.equal(a, c)                              # another block, another matrix
        split = torch.zeros(4, 2048)                              # g R = sum of the blocks' parts
        p = Projector(2048, kind, seed=3)
        p.project("w1", x[:, :1000], split)
        p.project("w2", x[:, 1000:], split)
        gram, proj = (x @ x.T).numpy(), (split @ split.T).numpy()
        assert np.abs(proj / gram.diagonal()[:, None] - gram / gram.diagonal()[:, None]).max() < 0.15
    with pytest.raises(ValueError, match="projection must be one of"):
        Projector(16, "gaussian")


# ----------------------------------------------------------------------------- per-sample gradients
def test_batched_per_sample_gradients_equal_one_sample_at_a_time(base, pool):
    import torch

    from kit.finetune.data import ExampleEncoder
    from kit.influence.gradients import GradientFeatures, sample_loss
    from kit.influence.projection import Projector
    from kit.influence.warmup import prepare_trainable

    model, processor = ft.load_model(base)
    model = prepare_trainable(model, PRESET.train, lora=False, seed=0)
    enc = ExampleEncoder(processor, max_length=256)
    examples, _ = enc.encode_pool(pool, list(pool.table.index[:4]))
    assert len({e.length for e in examples}) > 1                  # rows of different lengths: padding in the batch
    named = dict(model.named_parameters())
    adam = {n: (torch.randn_like(p) * 1e-3, torch.rand_like(p) * 1e-4) for n, p in named.items() if p.requires_grad}
    for state in (None, adam):
        feats = GradientFeatures(model, Projector(256, "dense", seed=1), adam=state)
        batched, _ = feats(*enc.collate(examples))
        names = [n for layer in feats.layers for n, _ in layer.params]
        assert feats.uncovered and all("norm" in n for n in feats.uncovered)   # norm weights: not linear layers
        for i, e in enumerate(examples):
            loss, _ = sample_loss(model, *enc.collate([e]))
            grads = torch.autograd.grad(loss, [named[n] for n in names])
            one = torch.zeros(1, 256)
            for n, g in zip(names, grads):
                g = g.reshape(1, -1)
                if state is not None:                             # LESS: one virtual Adam step, no bias correction
                    m, v = (t.reshape(1, -1) for t in state[n])
                    g = (0.9 * m + 0.1 * g) / torch.sqrt(0.999 * v + 0.001 * g * g + 1e-8)
                feats.projector.project(n, g, one)
            assert torch.allclose(batched[i], one[0], rtol=1e-4, atol=1e-5 * float(one.abs().max()))


# ----------------------------------------------------------------------------- the influence scorer
def test_influence_scores_every_task_from_the_dev_side_and_warms_once(influence, base, pool, cache):
    cols = ["influence_shape", "influence_colour", "influence_yes_no"]
    scored = kit.score_info(influence)
    assert list(scored.columns) == cols and (influence["status"] == "ok").all()
    assert np.isfinite(influence[cols].to_numpy()).all() and (influence[cols].abs().to_numpy() <= 1).all()
    assert scored.collapse == ()                                  # the collapse check ran and found nothing
    info = scored.details["influence"]
    assert info["targets"]["targets"] == "easyvqa" and info["targets"]["tasks"] == {"shape": 2, "colour": 2, "yes/no": 2}
    assert "dev slice, 6 questions" in scored.label
    warm = info["warmup"]
    assert warm["n_samples"] == round(0.05 * 372) and warm["steps"] >= 1   # 5% of the pool *file*
    assert len(list((cache / "influence").glob("warm-*.pt"))) == 1
    from kit.influence.targets import target_table

    targets = target_table("easyvqa", per_task=2)
    assert set(targets["image_path"]) <= set(ft.dev_eval_set(per_type=None)["image_path"])   # the dev slice only


def test_influence_sharded_equals_whole_and_adam_differs(influence, base, pool, cache, tmp_path):
    sharded = kit.score(pool, "influence", out=tmp_path / "inf", shard_size=5, model=str(base), **INFLUENCE)
    pd.testing.assert_frame_equal(sharded[influence.columns], influence, check_exact=False, rtol=1e-5)  # batches differ
    assert json.loads((tmp_path / "inf" / "manifest.json").read_text())["mode"] == "encode-then-finish"
    adam = kit.score(pool, "influence", model=str(base), gradients="adam", **INFLUENCE)
    assert not np.allclose(adam["influence_colour"], influence["influence_colour"])
    with pytest.raises(ValueError, match="needs a warm-up"):
        kit.score(pool, "influence", model=str(base), warmup="none", gradients="adam")


def test_influence_targets_testbed_families_from_their_dev_side(base, pool, cache):
    from kit.influence.targets import target_table
    from kit.pools.testbed import family_names, heldout_questions

    targets = target_table("testbed", per_task=1)
    dev = heldout_questions(per_family=1, side="dev")
    assert list(targets["task"]) == list(dev["family"]) == family_names()
    assert list(targets["answer"]) == list(dev["answer"]) and targets.attrs["side"].startswith("dev")
    test = heldout_questions(per_family=1, side="test")
    assert not set(targets["image_path"]) & set(test["image_path"])
    table = kit.score(pool, "influence", model=str(base), targets="testbed", **{**INFLUENCE, "per_task": 1})
    assert list(kit.score_info(table).columns) == [f"influence_{f}" for f in family_names()]
    assert "testbed dev side, 9 questions" in kit.score_info(table).label


# ----------------------------------------------------------------------------- the influence selector
def _influence_table(n=200, seed=0, tasks=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    t = pd.DataFrame(rng.normal(size=(n, len(tasks))), columns=[f"influence_{x}" for x in tasks],
                     index=[f"s{i:03d}" for i in range(n)])
    t.insert(0, "source", "x")
    return t


def test_influence_vote_is_icons_with_an_explicit_tie_break():
    from scipy.stats import rankdata

    t = _influence_table()
    S = t.filter(like="influence_").to_numpy()
    p = 100 * 30 / 200
    votes = (S >= np.percentile(S, 100 - p, axis=0)).sum(1)          # icons/generalist.py:118-135
    ranks = np.column_stack([rankdata(S[:, k]) / 200 for k in range(3)]).mean(1)
    expected = sorted(range(200), key=lambda i: (-votes[i], -ranks[i], i))[:30]
    sel = kit.select(t, "influence", 30)
    assert list(sel) == [t.index[i] for i in expected]
    assert sel.resolved["percent"] == p and sel.report["votes"].max() == 3
    assert list(kit.select(t, "influence", 30, percent=50)) != list(sel)
    top = kit.select(t, "influence", 10, combine="max")
    assert list(top) == list(t.index[np.argsort(-S.max(1), kind="stable")[:10]])
    one = kit.select(t, "influence", 10, task="b")
    assert list(one) == list(t["influence_b"].sort_values(ascending=False, kind="stable").index[:10])


def test_influence_selector_excludes_unscored_rows_and_names_its_scorer():
    t = _influence_table(50)
    t.iloc[:5, 1] = np.nan
    sel = kit.select(t, "influence", 20)
    assert len(sel) == 20 and not set(sel) & set(t.index[:5]) and "5 samples without" in sel.notes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SelectionShortfall)
        assert len(kit.select(t, "influence", 49)) == 45
    with pytest.raises(KeyError, match="kit.score\\(pool, 'influence'\\)"):
        kit.select(t[["source"]], "influence", 5)
    with pytest.raises(KeyError, match="influence_z"):
        kit.select(t, "influence", 5, tasks=["z"])
    flat = _influence_table(50)
    flat["influence_a"] = 0.5
    with pytest.warns(ScoreCollapseWarning, match="influence_a"):
        kit.select(flat, "influence", 5)


# ----------------------------------------------------------------------------- image gain and CVS
@pytest.fixture(scope="module")
def gain(base, pool):
    return kit.score(pool, "image_gain", model=str(base), batch_size=4, progress=False)


def test_image_gain_is_own_image_minus_the_reference_through_the_loss_scorer(gain, base, pool):
    ll = -kit.score(pool, "loss", model=str(base), batch_size=4, progress=False)["loss_mean"]
    np.testing.assert_allclose(gain["answer_ll_image"], ll, rtol=1e-6)
    np.testing.assert_allclose(gain["image_gain"], gain["answer_ll_image"] - gain["answer_ll_reference"], rtol=1e-9)
    assert gain["status"].drop(TRUNCATED).eq("ok").all() and gain.at[TRUNCATED, "status"] == "no_answer_tokens"
    assert kit.score_info(gain).collapse == ()
    noise = kit.score(pool, "image_gain", model=str(base), reference="noise", progress=False)
    part = kit.score(pool.subset(list(pool.table.index[3:7])), "image_gain", model=str(base), reference="noise",
                     progress=False)
    np.testing.assert_allclose(part["image_gain"], noise["image_gain"].iloc[3:7], rtol=1e-5, atol=1e-5)  # per sample
    assert not np.allclose(noise["image_gain"], gain["image_gain"])
    # it stands in for s in the quality space
    table = gain[["image_gain"]].join(kit.score(pool, "loss", model=str(base), progress=False)[["loss_sum"]])
    sel = kit.select(table, "cells", 3, cells=["top_left", "top_right", "bottom_left", "bottom_right"],
                     score_col="image_gain", grid=2)
    assert len(sel) == 3 and sel.resolved["space"]["score_col"] == "image_gain"


def test_cvs_likelihood_shift_removes_the_question_and_keeps_the_image(base, pool):
    from kit.quality.cvs import qa_pairs, without_questions

    conv = [{"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "Red"},
            {"from": "human", "value": "And the shape?"}, {"from": "gpt", "value": "A circle"}]
    assert without_questions(conv) == [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "Red"},
                                       {"from": "human", "value": ""}, {"from": "gpt", "value": "A circle"}]
    assert qa_pairs(conv) == [("What colour?", "Red"), ("And the shape?", "A circle")]
    cvs = kit.score(pool, "cvs", model=str(base), batch_size=4, progress=False)
    np.testing.assert_allclose(cvs["cvs_shift"], cvs["cvs_full"] - cvs["cvs_no_question"], rtol=1e-9)
    ll = -kit.score(pool, "loss", model=str(base), batch_size=4, progress=False)["loss_mean"]
    np.testing.assert_allclose(cvs["cvs_full"], ll, rtol=1e-6)
    assert np.isfinite(cvs["cvs_shift"].drop(TRUNCATED)).all() and kit.score_info(cvs).collapse == ()
    judge = kit.score(pool.subset(list(pool.table.index[:4])), "cvs", model=str(base), mode="judge", progress=False)
    assert ((judge["cvs_full"] > 0) & (judge["cvs_full"] < 1)).all() and (judge["status"] == "ok").all()


def test_cvs_selector_keeps_positive_shifts_highest_first():
    t = pd.DataFrame({"source": "x", "cvs_shift": [0.3, -0.1, 0.3, 0.0, np.nan, 0.9, 0.2],
                      "image_gain": [1, 2, 3, 4, 5, 6, 7]}, index=list("abcdefg"))
    assert list(kit.select(t, "cvs", 3)) == ["f", "a", "c"]          # ties by pool order
    with pytest.warns(SelectionShortfall, match="only 4 samples have cvs_shift above 0"):
        sel = kit.select(t, "cvs", 6)
    assert list(sel) == ["f", "a", "c", "g"]
    assert list(kit.select(t, "cvs", 2, shift="image_gain")) == ["g", "f"]
    assert list(kit.select(t, "cvs", 6, floor=None)) == ["f", "a", "c", "g", "d", "b"]


# ----------------------------------------------------------------------------- ScalSelect
def test_scalselect_kept_tokens_and_leverage_follow_the_official_rules():
    from kit.baselines.scalselect import kept_tokens, leverage_scores

    assert kept_tokens([0.5, 0.3, 0.15, 0.05]).tolist() == [0, 1, 2]          # 0.5, 0.8 <= 0.9; 0.95 passes it
    assert kept_tokens([0.05, 0.7, 0.25]).tolist() == [1, 2]                    # 0.7, then 0.95: included, stop
    assert kept_tokens([0.95, 0.05]).tolist() == [0]                            # at least one
    assert kept_tokens([0.0, 0.0, 0.0, 0.0], tau=0.5).tolist() == [0, 1, 2]     # no attention: uniform, stable
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5)) @ np.diag([5, 3, 1, 0.1, 0.1])
    pi, k = leverage_scores(X)
    Xc = X - X.mean(0)
    U, S, _ = np.linalg.svd(Xc, full_matrices=False)
    assert k == int(np.searchsorted(np.cumsum(S ** 2) / (S ** 2).sum(), 0.9) + 1)
    np.testing.assert_allclose(pi, (U[:, :k] ** 2).sum(1)) and np.isclose(pi.sum(), k)


def test_scalselect_scorer_batches_like_one_at_a_time_and_shards_like_whole(base, pool, tmp_path):
    whole = kit.score(pool, "scalselect", model=str(base), batch_size=5, progress=False)
    single = kit.score(pool, "scalselect", model=str(base), batch_size=1, progress=False)
    np.testing.assert_allclose(whole["scalselect"], single["scalselect"], rtol=1e-4)
    assert (whole["scalselect_tokens"] == single["scalselect_tokens"]).all()
    assert np.isclose(whole["scalselect"].sum(), kit.score_info(whole).details["scalselect"]["k"])   # sum = k
    sharded = kit.score(pool, "scalselect", out=tmp_path / "ss", shard_size=5, model=str(base), progress=False)
    np.testing.assert_allclose(sharded["scalselect"], whole["scalselect"], rtol=1e-6)
    sel = kit.select(whole, "scalselect", 4)
    assert list(sel) == list(whole["scalselect"].sort_values(ascending=False, kind="stable").index[:4])
    emb = np.random.default_rng(0).normal(size=(len(whole), 6))
    assert len(kit.select(whole, "scalselect", 4, embeddings=emb)) == 4


# ----------------------------------------------------------------------------- all of them
def test_one_score_table_feeds_every_new_selector(base, pool, cache, tmp_path):
    model = str(base)
    table = kit.score_table(pool, {"influence": {"model": model, **INFLUENCE}, "cvs": {"model": model},
                                   "image_gain": {"model": model}, "scalselect": {"model": model}},
                            out=tmp_path / "scores", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SelectionShortfall)
        for method, options in (("influence", {}), ("influence", {"combine": "max"}), ("cvs", {}),
                                ("cvs", {"shift": "image_gain"}), ("scalselect", {})):
            sel = kit.select(table, method, 0.5, **options)
            assert 0 < len(sel) <= 6 and set(sel) <= set(pool.table.index)
    assert kit.score_info(table).collapse == ()


_SUBPROCESS = """
import json, sys
sys.path.insert(0, {root!r})
import kit
pool = kit.load_pool({pool!r}).subset({ids!r})
out = {{}}
for name, opts in {specs!r}:
    t = kit.score(pool, name, model={model!r}, progress=False, **opts)
    out[name] = t[list(kit.score_info(t).columns)].to_numpy().tolist()
print(json.dumps(out))
"""


def test_every_new_scorer_gives_the_same_numbers_in_another_process(base, pool, cache, tmp_path):
    specs = [("influence", {k: v for k, v in INFLUENCE.items() if k != "progress"}), ("image_gain", {}),
             ("cvs", {}), ("scalselect", {})]
    ids = list(pool.table.index[:6])
    code = _SUBPROCESS.format(root=ROOT, pool=str(pool.path), ids=ids, specs=specs, model=str(base))
    env = {**os.environ, "PYTHONHASHSEED": "4321", "KIT_CACHE": str(tmp_path / "fresh_cache"),
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    there = json.loads(run.stdout.strip().splitlines()[-1])
    sub = pool.subset(ids)
    for name, opts in specs:
        t = kit.score(sub, name, model=str(base), progress=False, **{k: v for k, v in opts.items()})
        assert np.array_equal(np.asarray(there[name]), t[list(kit.score_info(t).columns)].to_numpy(),
                              equal_nan=True), name
