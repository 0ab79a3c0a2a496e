"""The mmSSR prompt builder reproduces the official scorer/styler input byte for byte."""
import math

import pytest

from kit import capabilities as caps
from kit.mmssr.prompts import (STYLE_QUERY, add_image_newline, build_prompt, capability_query,
                               ensure_image_token, format_conversation, format_question, parse_score,
                               parse_styles, prompt_parts, queries, style_query, user_content)

HEAD = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
FOOT = "<|im_end|>\n<|im_start|>assistant\n"
OCR_Q = ("On a scale of 0 to 5, how do you rate the helpfulness of the VQA instance in training a "
         "Multimodal Large Language Model for optical character recognition?")
STYLE_Q = ("Interaction style candidates: [multi-choice, coordinate, yes/no, word/short-phrase, short "
           "description, detailed description, comparison, chain-of-thought (step-by-step), specified style]"
           "\nStyles: ")


def conv(*values):
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": v} for i, v in enumerate(values)]


def test_strip_is_a_character_set_not_a_prefix():
    # trailing 'n', 'o', 's' are all in {Q,u,e,s,t,i,o,n,:,' '}; 'a' is not
    assert format_question("What is the season") == "Question: What is the sea"
    # leading "Question: " chars go, the '?' stops the trailing strip
    assert format_question("Question: Is this a question?") == "Question: Is this a question?"
    # lower-case 'q' is not in the set, so it stops the leading strip; 'e' goes at the end, 'm' stops it
    assert format_question("question time") == "Question: question tim"
    # everything after 'I' is in the set
    assert format_question("Is it on") == "Question: I"
    assert format_question("tennis") == "Question: "
    # '<' is not in the set: the image placeholder survives at the front
    assert format_question("<image>\nWhat is shown?") == "Question: <image>\nWhat is shown?"
    assert format_question("Question: What is it?\n<image>") == "Question: What is it?\n<image>"


def test_hint_turns_are_kept_as_they_are():
    assert format_question("<image>\nHint: look left.\nQuestion: ") == "<image>\nHint: look left.\nQuestion: "
    assert format_question("Hint: none") == "Hint: none"
    # must start with it exactly; then the strip quirk eats "int: none" (all in the set)
    assert format_question(" Hint: none") == "Question: H"


def test_conversation_text_pins_the_official_layout():
    c = conv("<image>\nWhat is the season?", "Winter.", "Question: Is this a question?", " Yes ")
    assert format_conversation(c) == (
        "Question: <image>\nWhat is the season? Answer: Winter.\n"
        "Question: Is this a question? Answer:  Yes ")
    # a trailing unanswered question keeps "Answer: " with its space
    assert format_conversation(conv("Why")) == "Question: Why Answer: "
    assert format_conversation(conv("<image>\nHint: a\nQuestion: b", "c")) == "<image>\nHint: a\nQuestion: b Answer: c"


def test_queries_pin_the_official_strings():
    assert capability_query("optical character recognition") == OCR_Q
    assert style_query() == STYLE_Q == STYLE_QUERY
    q = queries()
    assert list(q) == caps.capability_keys() + ["style"]
    assert q["ocr"] == OCR_Q and q["style"] == STYLE_Q
    assert q["spatial"].endswith("for object spatial understanding?")
    assert list(queries(["stem"], style=False)) == ["stem"]


def test_full_chat_string_inline_image():
    c = conv("<image>\nWhat is the season?", "Winter.")
    expected = (HEAD + "Question: <image>\nWhat is the season? Answer: Winter.\n" + OCR_Q + FOOT)
    assert build_prompt(c, OCR_Q) == expected
    assert build_prompt(c, STYLE_Q) == HEAD + "Question: <image>\nWhat is the season? Answer: Winter.\n" + STYLE_Q + FOOT


def test_prefix_suffix_split_is_exact_and_shared_across_queries():
    c = conv("<image>\nName the animals.", "A cat and a dog.", "Which is bigger?", "The dog.")
    prefixes = set()
    for query in queries().values():
        prefix, suffix = prompt_parts(c, query)
        assert prefix + suffix == build_prompt(c, query)
        assert prefix.endswith("The dog.\n") and prefix.startswith(HEAD)
        assert suffix == query + FOOT
        prefixes.add(prefix)
    assert len(prefixes) == 1


def _llava_next_front(content):
    """LLaVA-NeXT preprocess_multimodal on one user turn, written out plainly for the test."""
    if content.count("<image>") == 1 and not content.startswith("<image>"):
        content = content.replace("<image>", "").strip()
        content = ("<image>\n" + content).strip()
    return content


@pytest.mark.parametrize("values", [
    ("<image>\nWhat is the season?", "Winter."),
    ("What is it?\n<image>", "A cat"),
    ("<image>", "x"),
    ("  Question: a <image> b", "c", "d", "e"),
    ("Hint: x <image>", "y"),
])
@pytest.mark.parametrize("query", [OCR_Q, STYLE_Q])
def test_front_image_mode_matches_llava_next_preprocessing(values, query):
    c = conv(*values)
    inline = format_conversation(c) + "\n" + query
    assert user_content(c, query, image="inline") == inline
    front = user_content(c, query, image="front")
    assert front == _llava_next_front(inline)
    prefix, suffix = prompt_parts(c, query, image="front")
    assert prefix + suffix == HEAD + front + FOOT
    assert front.count("<image>") == 1


def test_front_mode_example_and_style_query_loses_trailing_space():
    c = conv("<image>\nWhat is the season?", "Winter.")
    assert user_content(c, STYLE_Q, image="front") == (
        "<image>\nQuestion: \nWhat is the season? Answer: Winter.\n" + STYLE_Q.rstrip())
    with pytest.raises(ValueError, match="image must be"):
        build_prompt(c, OCR_Q, image="middle")


def test_image_helpers():
    c = conv("What?", "This.")
    fixed = ensure_image_token(c)
    assert fixed[0]["value"] == "<image>\nWhat?" and c[0]["value"] == "What?"
    assert ensure_image_token(fixed) == fixed
    assert add_image_newline("Question: <image>\nWhat") == "Question: <image>\n\nWhat"


def test_bad_conversations_raise():
    with pytest.raises(ValueError):
        format_conversation([])
    with pytest.raises(ValueError, match="turn 1"):
        format_conversation([{"from": "human", "value": "q"}, {"from": "gpt", "value": None}])


@pytest.mark.parametrize("text,expected", [
    ("3", 3.0), (" 5\n", 5.0), ("0", 0.0), ("6", math.nan), ("-1", math.nan), ("3.5", math.nan),
    ("three", math.nan), ("", math.nan), (None, math.nan), (4, 4.0), (2.0, 2.0), (2.5, math.nan),
    ("Score: 4", math.nan),
])
def test_parse_score(text, expected):
    got = parse_score(text)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_parse_styles():
    styles, unknown = parse_styles(" yes/no, multi-choice ,yes/no, poem,, poem, specified style")
    assert styles == ["yes/no", "multi-choice", "specified style"]
    assert unknown == ["poem"]
    assert parse_styles("chain-of-thought (step-by-step)") == (["chain-of-thought (step-by-step)"], [])
    assert parse_styles("") == ([], []) and parse_styles(None) == ([], [])
