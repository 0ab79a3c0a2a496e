"""The rule-based styler: hand-written conversations, and a pinned agreement floor on data_samples."""
from pathlib import Path

import pandas as pd
import pytest

import kit
from kit.capabilities import STYLES
from kit.mmssr.style_rules import RuleStyler, explain_conversation, style_agreement, style_conversation

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"


def conv(*values):
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": v} for i, v in enumerate(values)]


@pytest.mark.parametrize("question,answer,expected", [
    ("<image>\nWhat color is the car?\nA. red\nB. blue\nC. green\nAnswer with the option's letter from the given "
     "choices directly.", "B", ["multi-choice"]),
    ("<image>\nWhich animal is shown? (a) cat (b) dog (c) horse", "(b) dog", ["multi-choice"]),
    ("<image>\nPlease provide the bounding box coordinate of the region this sentence describes: a man in red.",
     "[0.12, 0.30, 0.45, 0.88]", ["coordinate"]),
    ("<image>\nWhere is the ball? Give its center as [x, y] in normalised image coordinates.", "[0.25, 0.70]",
     ["coordinate"]),
    ("<image>\nIs the man wearing a hat?", "Yes, a black one.", ["yes/no"]),
    ("<image>\nAre there any people on the beach?", "", ["yes/no"]),
    ("<image>\nWhat is the man holding?\nAnswer the question using a single word or phrase.", "An umbrella",
     ["word/short-phrase"]),
    ("<image>\nHow many dogs are there?", "3", ["word/short-phrase"]),
    ("<image>\nWhere is the cup?", "On the left of the table, next to a plate.", ["word/short-phrase"]),
    ("<image>\nDescribe the image briefly.", "A dog runs along a sandy beach at sunset.", ["short description"]),
    ("<image>\nWhy is the street wet?",
     "It has just rained: puddles cover the road and people are still carrying open umbrellas.",
     ["short description"]),
    ("<image>\nDescribe this image in detail.", " ".join(["The scene shows a busy market with many stalls."] * 6),
     ["detailed description"]),
    ("<image>\nWhat is the difference between the two cars?",
     "The left car is red and looks older. The right one is blue and new.", ["comparison"]),
    ("<image>\nWhich bar is taller, A or B?", "Bar B.", ["word/short-phrase", "comparison"]),
    ("<image>\nIs the tree taller than the house?", "No.", ["yes/no", "comparison"]),
    ("<image>\nHow many apples are left? Think step by step.",
     "First, there are 5 apples on the table. Then 2 are eaten. Therefore 5 - 2 = 3 apples are left.",
     ["chain-of-thought (step-by-step)"]),
    ("<image>\nWhat is the total cost of the two items?",
     "Step 1: the pen costs $2.\nStep 2: the book costs $8.\nStep 3: 2 + 8 = 10, so the total is $10.",
     ["chain-of-thought (step-by-step)"]),
    ("<image>\nList the fruits in the picture as a JSON list, and nothing else.", '["apple", "pear"]',
     ["specified style"]),
    ("<image>\nWhat is the woman doing? Answer in French.", "Elle lit un livre.",
     ["short description", "specified style"]),
    ("<image>\nName the object in capital letters.", "CLOCK", ["word/short-phrase", "specified style"]),
])
def test_single_turn_styles(question, answer, expected):
    assert style_conversation(conv(question, answer)) == expected


def test_stock_instructions_are_not_a_specified_style():
    for question in ("<image>\nWhat is on the table?\nAnswer the question using a single word or phrase.",
                     "<image>\nWhat is on the table? Answer with one word."):
        assert "specified style" not in style_conversation(conv(question, "Books"))


def test_superlatives_are_not_comparisons_and_more_than_one_is_a_count():
    assert style_conversation(conv("<image>\nWhich category has the highest value?", "Grapes")) == ["word/short-phrase"]
    assert "comparison" not in style_conversation(conv("<image>\nIs there more than one cat?", "Yes."))


def test_multi_turn_is_the_union_and_says_which_turn():
    c = conv("<image>\nIs it raining?", "No.", "Describe the sky briefly.", "Clear and blue, with a few clouds.",
             "Which of the two buildings is taller?", "The one on the left.")
    found = explain_conversation(c)
    assert [s for s, _ in found] == ["yes/no", "word/short-phrase", "short description", "comparison"]
    rules = dict(found)
    assert rules["yes/no"].startswith("turn 0:") and rules["short description"].startswith("turn 1:")
    assert rules["comparison"].startswith("turn 2:")
    assert [s for s in STYLES if s in rules] == [s for s, _ in found]   # in style order


def test_never_empty_and_deterministic():
    c = conv("<image>\nWhat does the caption under the photo say?", "")
    first = style_conversation(c)
    assert first == style_conversation(c) and len(first) >= 1


def test_rule_styler_scores_a_table_and_names_bad_samples():
    table = pd.DataFrame({"conversations": [conv("<image>\nIs it red?", "Yes."),
                                            conv("<image>\nDescribe the image.", "A red ball on grass.")]},
                         index=["a", "b"])
    out = RuleStyler(progress=False).score(table)
    assert list(out.index) == ["a", "b"] and out.index.name == "id"
    assert out.loc["a", "styles"] == ["yes/no"] and out.loc["b", "styles"] == ["short description"]
    assert "answer starts with yes/no" in out.loc["a", "style_rule"]
    bad = pd.DataFrame({"conversations": [[{"from": "human", "value": None}]]}, index=["broken"])
    with pytest.raises(ValueError, match="broken"):
        RuleStyler(progress=False).score(bad)
    with pytest.raises(ValueError):
        RuleStyler(short_words=0)


def test_style_agreement_counts():
    pred = pd.Series({"a": ["yes/no"], "b": ["yes/no", "comparison"], "c": ["word/short-phrase"]})
    truth = pd.Series({"a": "yes/no", "b": "yes/no", "c": "comparison"})
    table = style_agreement(pred, truth)
    assert table.loc["yes/no", "precision"] == 1.0 and table.loc["yes/no", "recall"] == 1.0
    assert table.loc["comparison", "precision"] == 0.0 and table.loc["comparison", "recall"] == 0.0
    assert table.loc["comparison", "support"] == 1 and table.loc["comparison", "predicted"] == 1
    assert table.loc["exact", "recall"] == pytest.approx(1 / 3)


# Measured on data_samples (372 samples) when these rules were written: macro F1 0.972, exact 0.957.
# Floors leave a small margin for a regenerated pool; the per-style floors guard the frequent styles.
MACRO_F1_FLOOR = 0.93
RECALL_FLOORS = {"yes/no": 0.95, "word/short-phrase": 0.93, "multi-choice": 0.95, "short description": 0.80,
                 "chain-of-thought (step-by-step)": 0.95, "comparison": 0.85, "specified style": 0.90,
                 "coordinate": 0.95}
PRECISION_FLOORS = {"yes/no": 0.95, "word/short-phrase": 0.90, "multi-choice": 0.95, "short description": 0.85,
                    "chain-of-thought (step-by-step)": 0.95}


@pytest.fixture(scope="module")
def agreement():
    if not (SAMPLES / "labels.csv").exists() or not (SAMPLES / "pool.json").exists():
        pytest.skip("data_samples/ is not built (python -m kit.pools build data_samples/)")
    pool = kit.load_pool(SAMPLES / "pool.json", check_images=False)
    labels = pd.read_csv(SAMPLES / "labels.csv", index_col="id", keep_default_na=False, dtype=str)
    styles = kit.score(pool, "style", backend="rules", progress=False)
    assert styles["styles"].map(len).min() >= 1
    return style_agreement(styles["styles"], labels["styles"])


def test_agreement_with_reference_labels_has_a_floor(agreement):
    assert agreement.loc["exact", "support"] >= 300
    assert agreement.loc["macro", "f1"] >= MACRO_F1_FLOOR, agreement.round(3).to_string()
    for style, floor in RECALL_FLOORS.items():
        assert agreement.loc[style, "recall"] >= floor, f"{style}\n{agreement.round(3).to_string()}"
    for style, floor in PRECISION_FLOORS.items():
        assert agreement.loc[style, "precision"] >= floor, f"{style}\n{agreement.round(3).to_string()}"
