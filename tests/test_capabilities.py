"""The capability and style registry of mmSSR."""
import pytest

from kit import capabilities as caps


def test_builtins_in_paper_order():
    assert caps.capability_keys()[:14] == [
        "spatial", "attribute", "logical", "scene", "finegrained", "language", "incontext",
        "comparative", "activity", "causal", "humanities", "stem", "data", "ocr"]
    assert caps.keyword("ocr") == "optical character recognition"
    assert caps.keyword("spatial") == "object spatial understanding"
    assert caps.keyword("stem") == "stem knowledge"
    assert caps.display_name("finegrained") == "Fine-grained recognition"
    assert len({c.keyword for c in caps.capabilities()}) == len(caps.capabilities())


def test_styles_in_prompt_order():
    assert caps.STYLES == ("multi-choice", "coordinate", "yes/no", "word/short-phrase", "short description",
                           "detailed description", "comparison", "chain-of-thought (step-by-step)",
                           "specified style")
    assert caps.check_styles(["yes/no", "poem", "yes/no"]) == (["yes/no"], ["poem"])


def test_register_user_capability():
    cap = caps.register_capability("counting", "Counting", " object counting ")
    assert cap.keyword == "object counting"
    assert caps.capability_keys()[-1] == "counting" and caps.keyword("counting") == "object counting"
    with pytest.raises(ValueError, match="already registered"):
        caps.register_capability("counting", "Counting", "counting")
    caps.register_capability("counting", "Counting", "counting objects", overwrite=True)
    assert caps.keyword("counting") == "counting objects"
    assert caps.capability_keys().count("counting") == 1
    caps.unregister_capability("counting")
    assert "counting" not in caps.capability_keys()


@pytest.mark.parametrize("key,keyword,match", [
    ("ocr", "x", "built-in"), ("Bad Key", "x", "must match"), ("styles", "x", "reserved"),
    ("fine", "  ", "keyword")])
def test_register_rejects_bad_input(key, keyword, match):
    with pytest.raises(ValueError, match=match):
        caps.register_capability(key, "Name", keyword)


def test_unknown_capability_names_the_key():
    with pytest.raises(KeyError, match="nope"):
        caps.keyword("nope")
    with pytest.raises(ValueError, match="built-in"):
        caps.unregister_capability("ocr")


def test_style_names_reads_every_cell_form():
    import numpy as np
    import pytest

    from kit.capabilities import style_names

    assert style_names("yes/no| comparison |yes/no") == ["yes/no", "comparison"]
    assert style_names(["yes/no", "a|b", None, float("nan")]) == ["yes/no", "a", "b"]
    assert style_names(np.array(["coordinate"], dtype=object)) == ["coordinate"]
    assert style_names(None) == [] and style_names(float("nan")) == [] and style_names("") == []
    with pytest.raises(TypeError):
        style_names(3)
    with pytest.raises(TypeError):
        style_names([3])
