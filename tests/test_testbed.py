"""The testbed: families with programmatic truth, disjoint sides, the condition builder, held-out questions."""
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kit.pools import testbed
from kit.pools.testbed.base import SIDES, render_question
from kit.pools.testbed.conditions import CONDITIONS, SKEWED_FAMILIES, build_condition, schedule, split_count

FAMILIES = testbed.families()


def test_at_least_eight_families_with_eight_distinct_main_capabilities():
    from kit.capabilities import capability_keys

    assert len(FAMILIES) >= 8
    caps = {f.capability for f in FAMILIES}
    assert len(caps) >= 8 and caps <= set(capability_keys())
    for f in FAMILIES:  # the main capability is the one the family's short questions rate highest
        rated = f.templates()[f.eval_templates()[0]].ratings
        assert rated[f.capability] == max(rated.values()) >= 4, f.name


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_truth_matches_the_rendered_image(family):
    rng = np.random.default_rng(0)
    for side in SIDES:
        for _ in range(25):
            scene = family.draw_on(side, rng)
            image = family.image(scene)
            assert image.size == (64, 64) and image.mode == "RGB"
            family.check(scene, image)   # raises when the pixels disagree with the scene


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_a_perturbed_scene_is_caught_by_the_pixel_check(family):
    """The check reads the truth from the pixels: an image drawn from one scene fails against a scene whose
    asked facts differ (where the family can read the fact back at all)."""
    if family.name in ("ocr", "arithmetic"):
        pytest.skip("printed text is not read back from the pixels (only its presence is checked)")
    rng = np.random.default_rng(1)
    caught = 0
    for _ in range(20):
        scene = family.draw_on("train", rng)
        other = family.perturb(scene, rng)
        try:
            family.check(other, family.image(scene))
        except AssertionError:
            caught += 1
    assert caught >= 10, (family.name, caught)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_sides_never_share_a_scene_or_an_image(family):
    rng = np.random.default_rng(2)
    images, keys = {}, {}
    for side in ("train", "test", "reserved"):
        scenes = [family.draw_on(side, rng) for _ in range(60)]
        keys[side] = {family.side_key(s) for s in scenes}
        images[side] = {hashlib.sha1(family.image(s).tobytes()).hexdigest() for s in scenes}
    for a, b in (("train", "test"), ("train", "reserved"), ("test", "reserved")):
        assert not keys[a] & keys[b] and not images[a] & images[b], (a, b)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_template_renders_and_eval_answers_are_candidates(family):
    rng = np.random.default_rng(3)
    templates = family.templates()
    assert {"describe", "json", "multi"} <= set(templates)
    assert {n.split("_")[0] for n in family.eval_templates()} == {"word", "yn", "mc"}
    for _ in range(10):
        scene = family.draw_on("train", rng)
        for name, t in templates.items():
            d = render_question(family, t, scene, rng)
            assert len(d.turns) % 2 == 0 and all(isinstance(x, str) and x for x in d.turns), name
            if t.evaluable:
                assert d.turns[-1] in d.candidates and len(set(d.candidates)) == len(d.candidates)


def test_split_count_is_exact_and_follows_the_shares():
    assert split_count(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    got = split_count(2000, SKEWED_FAMILIES)
    assert sum(got.values()) == 2000 and got["shapes"] == 920 and got["oddone"] == 40


def test_skewed_schedule_has_the_long_tail_over_families_and_styles():
    plan = schedule(CONDITIONS["skewed-clean"], 2000, FAMILIES)
    per_family = Counter()
    per_kind = Counter()
    for (family, template), n in plan.items():
        per_family[family] += n
        per_kind[template.split("_")[0]] += n
    assert sum(plan.values()) == 2000
    assert per_family.most_common(1)[0] == ("shapes", 920) and per_family["oddone"] == 40
    assert per_kind["word"] > per_kind["yn"] > per_kind["mc"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("testbed")
    return {c: (root / c, build_condition(c, root / c, n=180, seed=3, progress=False)) for c in CONDITIONS}


def _digest(folder):
    h = hashlib.sha1()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "build_info.json":
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_conditions_build_deterministically(built, tmp_path):
    for name in ("skewed-noisy", "redundant"):
        build_condition(name, tmp_path / name, n=180, seed=3, progress=False)
        assert _digest(tmp_path / name) == _digest(built[name][0]), name
    build_condition("skewed-noisy", tmp_path / "other", n=180, seed=4, progress=False)
    assert _digest(tmp_path / "other") != _digest(built["skewed-noisy"][0])


def test_built_pools_load_clean_with_family_labels(built):
    import kit
    from kit.eval.labels import load_labels

    for name, (folder, samples) in built.items():
        pool = kit.load_pool(folder / "pool.json")
        assert len(pool.table) == 180 and len(pool.report) == 0, (name, pool.report.head())
        labels = load_labels(folder / "labels.csv")
        assert list(labels.index) == [s.id for s in samples]
        assert set(labels["family"]) <= set(testbed.family_names()) and labels["family"].notna().all()
        assert labels["template"].str.split("/").str[0].eq(labels["family"]).all()
        info = json.loads((folder / "build_info.json").read_text())
        assert info["condition"]["name"] == name and info["n"] == 180


def test_defects_and_near_duplicates_follow_the_condition(built):
    from kit.eval.labels import load_labels

    kinds = {name: Counter(load_labels(folder / "labels.csv")["defect"]) for name, (folder, _) in built.items()}
    assert set(kinds["balanced-clean"]) == {"none"} and set(kinds["skewed-clean"]) == {"none"}
    noisy = kinds["skewed-noisy"]
    assert noisy["mismatch"] == round(0.08 * 180) and noisy["wrong_answer"] == round(0.08 * 180)
    assert noisy["truncated"] == round(0.04 * 180) and noisy["duplicate"] == round(0.05 * 180)
    assert kinds["redundant"]["duplicate"] == round(0.6 * 180)


def test_planted_defects_really_are_wrong(built):
    """A mismatch's image contradicts its conversation, a wrong answer differs from its origin's, and a
    near-duplicate keeps its origin's scene (same family and template, another image file)."""
    import kit

    folder, samples = built["skewed-noisy"]
    by_key = {s.key: s for s in samples}
    pool = kit.load_pool(folder / "pool.json")
    for s in samples:
        if s.defect == "none":
            continue
        origin = by_key[s.origin]
        assert s.meta["family"] == origin.meta["family"] and s.template == origin.template
        if s.defect == "mismatch":
            assert s.image != origin.image and s.conversations == origin.conversations
            family = testbed.family(s.meta["family"])
            template = family.templates()[s.template.split("/")[1]]
            turns = [t["value"].removeprefix("<image>\n") for t in s.conversations]
            from kit.pools.testbed.conditions import contradicts

            assert contradicts(template, s.meta["image_scene"], s.meta["params"], turns)
        elif s.defect == "wrong_answer":
            assert s.last_answer != origin.last_answer
        elif s.defect == "duplicate":
            assert s.image != origin.image and s.meta["scene"] == origin.meta["scene"]
            a = np.asarray(pool.image(s.id), dtype=int)
            b = np.asarray(pool.image(origin.id), dtype=int)
            assert 0 < np.abs(a - b).mean() < 8


def test_heldout_questions_are_balanced_with_closed_candidates(tmp_path):
    q = testbed.heldout_questions(per_family=12, seed=0, folder=tmp_path / "q")
    assert len(q) == 12 * len(FAMILIES)
    assert q.groupby("family").size().eq(12).all()
    assert set(q["style"]) == {"word", "yes/no", "multi-choice"}
    assert all(a in c for a, c in zip(q["answer"], q["candidates"]))
    again = testbed.heldout_questions(per_family=12, seed=0, folder=tmp_path / "q")
    pd.testing.assert_frame_equal(q, again)


def test_heldout_images_are_apart_from_pool_images(built, tmp_path):
    q = testbed.heldout_questions(per_family=20, seed=0, folder=tmp_path / "q")
    test_images = {hashlib.sha1(open(p, "rb").read()).hexdigest() for p in q["image_path"]}
    folder, _ = built["balanced-clean"]
    pool_images = {hashlib.sha1(p.read_bytes()).hexdigest() for p in (folder / "images").rglob("*.png")}
    assert test_images and pool_images and not test_images & pool_images


def test_alignment_records_come_from_the_reserved_side(tmp_path):
    records, targets, classes = testbed.alignment_records(per_family=4, captions_per_image=2,
                                                          folder=tmp_path / "a")
    assert len(records) == 4 * 2 * len(FAMILIES)
    assert set(targets) == {r["image"] for r in records}
    for path, t in targets.items():
        assert t and all(0 <= v < classes[k] for k, v in t.items())


def test_summarise_reports_families_styles_and_the_macro_mean(tmp_path):
    from kit.finetune.evaluate import summarise

    q = testbed.heldout_questions(per_family=6, seed=1, folder=tmp_path / "q")
    truth = q["answer"].copy()
    wrong = truth.copy()
    shapes = q.index[q["family"] == "shapes"]
    wrong[shapes] = "no such answer"
    s = summarise(q, wrong)
    assert s["accuracy_shapes"] == 0 and s["accuracy_digits"] == 1
    assert s["accuracy_macro"] == pytest.approx(1 - 1 / len(FAMILIES))
    assert {"accuracy_style_word", "accuracy_style_yes/no", "accuracy_style_multi-choice"} <= set(s)
    assert 0 < s["chance"] < 0.5 and "majority_macro" in s and "accuracy_cap_ocr" in s


def test_the_condition_command_builds_the_same_bytes_as_the_builder(built, tmp_path, capsys):
    from kit.cli import main

    assert main(["pools", "testbed", "redundant", str(tmp_path / "cli"), "--n", "180", "--seed", "3"]) == 0
    assert _digest(tmp_path / "cli") == _digest(built["redundant"][0])
    assert "families:" in capsys.readouterr().out
    assert main(["pools", "testbed", "no-such-condition", str(tmp_path / "x")]) == 2   # wrong usage
    assert "unknown condition 'no-such-condition'" in capsys.readouterr().err


def test_the_gate_table_keeps_a_family_only_beyond_its_majority_rate():
    import pandas as pd

    from kit.experiments.testbed import gate_table

    rows = []
    for family, right in (("shapes", 8), ("ocr", 3)):
        for k in range(10):
            kind = ("word", "yn")[k % 2]
            rows.append({"family": family, "template": f"{family}/{kind}_x", "correct": k < right})
    predictions = pd.DataFrame(rows)
    summary = {"accuracy_shapes": 0.8, "majority_shapes": 0.3, "blind_shapes": 0.5,
               "accuracy_ocr": 0.3, "majority_ocr": 0.2, "blind_ocr": 0.5}
    table = gate_table(predictions, summary, margin=0.15)
    assert table.loc["shapes", "passes"] and not table.loc["ocr", "passes"]
    assert table.loc["shapes", "over_majority"] == pytest.approx(0.5)
    assert table.loc["shapes", "accuracy_word"] == pytest.approx(0.8)  # words at k = 0, 2, 4, 6, 8: all right
    assert table.loc["ocr", "accuracy_word"] == pytest.approx(0.4)     # k = 0, 2 of 0, 2, 4, 6, 8
    assert list(table["questions"]) == [10, 10]


def test_the_results_document_says_what_the_committed_tables_say():
    """docs/results.md's generated block is kit.experiments.testbed.results_markdown of results/testbed/: a figure
    there is printed by the kit from the committed tables, never typed by hand."""
    from kit.experiments import testbed as tb

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "results.md").read_text(encoding="utf-8")
    block = text.split(tb.BEGIN, 1)[1].split(tb.END, 1)[0]
    assert block.strip() == tb.results_markdown(root / "results" / "testbed").strip()


def test_which_method_when_measures_the_difference_in_pooled_sds():
    import pandas as pd

    from kit.experiments import testbed as tb

    rows = []
    for method, values in (("random", [0.30, 0.32, 0.34]), ("a", [0.40, 0.42, 0.44]), ("b", [0.31, 0.33, 0.35])):
        rows += [{"condition": "c", "method": method, "budget": "0.1", "seed": s, "accuracy_macro": v}
                 for s, v in enumerate(values)]
    rows += [{"condition": "c", "method": "full", "budget": "full", "seed": s, "accuracy_macro": 0.5} for s in range(3)]
    v = tb.which_method_when(pd.DataFrame(rows)).set_index("method")
    assert v.loc["a", "diff"] == pytest.approx(0.10) and v.loc["a", "z"] == pytest.approx(5.0)
    assert v.loc["a", "verdict"] == "beats random" and v.loc["b", "verdict"].startswith("within")
    assert v.loc["a", "of_full"] == pytest.approx(0.84)
