"""The K-stage quality curriculum and its export as one LLaVA JSON per stage plus a manifest."""
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kit
from kit.quality.curriculum import MANIFEST_NAME, build_curriculum, export_curriculum, stage_sizes


def random_scores(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"image_text": rng.normal(0.3, 0.05, n), "loss_sum": rng.gamma(2.0, 1.0, n)},
                        index=[f"s{i:04d}" for i in range(n)])


def regions(scores, stages, lo=0.01, hi=0.99, outside="exclude", loss_col="loss_sum"):
    """Each stage's region computed from the definition, independently of the kit: inside the bounds,
    l >= L_min + k dL and s >= S_min + k dS (``outside="clip"``: every point clipped into the bounds first)."""
    s, l = scores["image_text"], scores[loss_col]
    s_min, s_max = np.quantile(s, [lo, hi])
    l_min, l_max = np.quantile(l, [lo, hi])
    if outside == "clip":
        s, l = s.clip(s_min, s_max), l.clip(l_min, l_max)
    ds, dl = (s_max - s_min) / stages, (l_max - l_min) / stages
    return [set(scores.index[(l >= l_min + k * dl) & (l <= l_max) & (s >= s_min + k * ds) & (s <= s_max)])
            for k in range(stages)]


def test_stages_are_disjoint_inside_their_nested_regions():
    scores = random_scores()
    stages = build_curriculum(scores, stages=3, sizes=[60, 30, 3], seed=0)
    expected = regions(scores, 3)
    assert len(stages) == 3 and [len(st) for st in stages] == [60, 30, 3]
    for k, stage in enumerate(stages):
        assert set(stage) <= expected[k], k
        assert stage.resolved["stage"] == k and stage.report["region_size"] == len(expected[k])
    assert expected[2] < expected[1] < expected[0]  # nested toward the top-right
    flat = [sid for st in stages for sid in st]
    assert len(flat) == len(set(flat))
    # later stages sit further toward high s and high l
    means = [scores.loc[list(st)].mean() for st in stages]
    assert means[0]["loss_sum"] < means[1]["loss_sum"] < means[2]["loss_sum"]
    assert means[0]["image_text"] < means[1]["image_text"] < means[2]["image_text"]


def test_seeded_and_reproducible():
    scores = random_scores()
    a = build_curriculum(scores, stages=3, sizes=30, seed=7)
    assert [list(x) for x in a] == [list(x) for x in build_curriculum(scores, stages=3, sizes=30, seed=7)]
    assert [list(x) for x in a] != [list(x) for x in build_curriculum(scores, stages=3, sizes=30, seed=8)]


def test_sizes_forms_and_shortfall_notes():
    scores = random_scores()
    assert stage_sizes(5, 3, 100) == [5, 5, 5]
    assert stage_sizes([1, 2, 3], 3, 100) == [1, 2, 3]
    assert stage_sizes(0.1, 2, 100) == [10, 10]
    assert stage_sizes([0.5, 7], 2, 100) == [50, 7]
    with pytest.raises(ValueError, match="3 stages"):
        stage_sizes([1, 2], 3, 100)
    with pytest.raises(TypeError, match="sizes"):
        build_curriculum(scores, stages=3)
    expected = regions(scores, 4)
    stages = build_curriculum(scores, stages=4, sizes=[10, 10, 10, 1000], seed=1)
    last = stages[-1]
    available = expected[3] - {sid for st in stages[:3] for sid in st}
    assert set(last) == available and len(last) < 1000
    assert last.shortfall == kit.Shortfall(1000, len(available), last.shortfall.reason)
    assert "stage 3" in last.shortfall.reason and str(last.shortfall) in last.notes
    assert stages[0].shortfall is None and len(stages[0].notes) == 1
    assert stages[0].notes[0].startswith(f"{len(scores) - len(expected[0])} scored samples lie outside the bounds")
    clipped = build_curriculum(scores, stages=4, sizes=10, seed=1, outside="clip")
    assert clipped[0].notes == [f"{len(scores) - len(expected[0])} scored samples lie outside the bounds, "
                                "clipped into the edge cells"]


def test_points_outside_the_bounds_are_in_no_stage_by_default():
    scores = random_scores(200)
    scores.loc["tiny_loss"] = [0.3, -50.0]    # far below L_min
    scores.loc["huge_both"] = [9.0, 500.0]    # far above S_max and L_max: the top-right outlier
    scores.loc["unscored"] = [np.nan, 1.0]
    stages = build_curriculum(scores, stages=3, sizes=len(scores), seed=0)
    expected = regions(scores.drop(index="unscored"), 3)
    drawn = [sid for st in stages for sid in st]
    assert not {"tiny_loss", "huge_both", "unscored"} & set(drawn)
    assert stages[0].report["region_size"] == len(expected[0])
    # every sample inside the bounds is drawn in some stage (the sizes are large)
    space = kit.quality.space.QualitySpace.fit(scores)
    inside = set(scores.index[space.assign(scores)["in_cell"]])
    assert set(drawn) == inside and len(drawn) == len(inside)
    n_out = int(space.outside_mask(scores).sum())
    assert n_out >= 4 and stages[0].report["n_outside"] == n_out
    assert any(f"{n_out} scored samples lie outside the bounds and in no cell" in n for n in stages[0].notes)
    assert any("1 sample without a finite" in n for n in stages[0].notes)
    # the last stage stops at the upper bounds: nothing above S_max or L_max
    assert (scores.loc[list(stages[2]), "loss_sum"] <= space.l_max).all()
    assert (scores.loc[list(stages[2]), "image_text"] <= space.s_max).all()
    assert "<= l <=" in stages[2].shortfall.reason


def test_clip_option_keeps_outliers_in_the_stages():
    scores = random_scores(200)
    scores.loc["tiny_loss"] = [0.3, -50.0]
    scores.loc["huge_both"] = [9.0, 500.0]
    scores.loc["unscored"] = [np.nan, 1.0]
    (only,) = build_curriculum(scores, stages=1, sizes=len(scores), seed=0, outside="clip")
    assert "tiny_loss" in only and "huge_both" in only and "unscored" not in only
    assert len(only) == len(scores) - 1
    stages = build_curriculum(scores, stages=3, sizes=[5, 5, 1000], seed=0, outside="clip")
    expected = regions(scores.drop(index="unscored"), 3, outside="clip")
    assert "huge_both" in expected[2]
    for k, stage in enumerate(stages):
        assert set(stage) <= expected[k] and stage.report["region_size"] == len(expected[k])
    assert any("clipped into the edge cells" in n for n in stages[0].notes)
    assert stages[0].resolved["space"]["outside"] == "clip"


def test_space_options_pass_through():
    scores = random_scores()
    scores["loss_mean"] = scores["loss_sum"] / np.arange(1, len(scores) + 1)
    assert build_curriculum(scores, stages=2, sizes=20, seed=0)[0].resolved["space"]["loss_col"] == "loss_sum"
    stages = build_curriculum(scores, stages=2, sizes=20, seed=0, loss="mean", bounds=(0.05, 0.95))
    l_min, l_max = np.quantile(scores["loss_mean"], [0.05, 0.95])
    assert stages[1].resolved["l_threshold"] == pytest.approx(l_min + (l_max - l_min) / 2)
    assert (scores.loc[list(stages[1]), "loss_mean"] >= stages[1].resolved["l_threshold"]).all()
    assert stages[1].params == {"loss": "mean", "bounds": (0.05, 0.95)}  # as passed; the space is in resolved
    assert stages[1].resolved["space"]["loss_col"] == "loss_mean"
    assert set(stages[1]) <= regions(scores, 2, 0.05, 0.95, loss_col="loss_mean")[1]


@pytest.fixture
def tiny_pool(tmp_path):
    (tmp_path / "images").mkdir()
    records = []
    for i, colour in enumerate(["red", "green", "blue"]):
        Image.new("RGB", (8, 8), colour).save(tmp_path / "images" / f"{colour}.png")
        records.append({"id": f"id{i}", "image": f"{colour}.png",
                        "conversations": [{"from": "human", "value": "<image>\nWhat colour is this?"},
                                          {"from": "gpt", "value": colour}]})
    (tmp_path / "pool.json").write_text(json.dumps(records))
    return kit.load_pool(tmp_path / "pool.json")


def test_export_writes_one_llava_json_per_stage_and_a_manifest(tiny_pool, tmp_path):
    scores = pd.DataFrame({"image_text": [0.1, 0.2, 0.3], "loss_sum": [1.0, 2.0, 3.0]},
                          index=["id0", "id1", "id2"])
    stages = build_curriculum(scores, stages=3, sizes=1, seed=0, bounds=(0.0, 1.0))
    out = tmp_path / "curric"
    manifest_path = export_curriculum(tiny_pool, stages, out)
    assert manifest_path == out / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    data_files = sorted(p.name for p in out.glob("*.json") if p.name != MANIFEST_NAME)
    assert data_files == ["stage_0.json", "stage_1.json", "stage_2.json"]
    assert manifest["order"] == data_files and manifest["n_stages"] == 3
    assert manifest["seed"] == 0 and manifest["scores_hash"] == stages[0].scores_hash
    for k, (entry, stage) in enumerate(zip(manifest["stages"], stages)):
        records = json.loads((out / entry["data_file"]).read_text())
        assert [r["id"] for r in records] == entry["ids"] == list(stage)
        assert records == tiny_pool.records(stage)
        assert entry["stage"] == k and entry["notes"] == stage.notes
        assert entry["resolved"]["stage"] == k
        assert entry["shortfall"] == (stage.shortfall.to_dict() if stage.shortfall else None)
    assert manifest["n_samples"] == sum(len(st) for st in stages)


def test_export_hand_made_stages_and_rejects_bad_ids(tiny_pool, tmp_path):
    path = export_curriculum(tiny_pool, [["id2"], ["id0", "id1"]], tmp_path / "c", format="jsonl", prefix="part")
    manifest = json.loads(path.read_text())
    assert manifest["order"] == ["part_0.jsonl", "part_1.jsonl"]
    lines = (tmp_path / "c" / "part_1.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["id0", "id1"]
    with pytest.raises(ValueError, match="'id1' appears in stages 0 and 1"):
        export_curriculum(tiny_pool, [["id1"], ["id1"]], tmp_path / "d")
    with pytest.raises(KeyError, match="stage 1"):
        export_curriculum(tiny_pool, [["id1"], ["nope"]], tmp_path / "e")


def test_a_total_budget_is_split_over_the_stages():
    from kit.quality.curriculum import split_budget

    assert split_budget(10, 3, 100) == [4, 3, 3] and split_budget(0.3, 2, 100) == [15, 15]
    scores = random_scores()
    stages = build_curriculum(scores, stages=3, budget=0.1, seed=0)
    assert [st.budget for st in stages] == split_budget(0.1, 3, len(scores))
    assert sum(len(st) for st in stages) <= int(0.1 * len(scores))
    with pytest.raises(TypeError, match="not both"):
        build_curriculum(scores, stages=3, sizes=5, budget=0.1)
