"""A fast, transparent rule-based interaction styler (the 9 mmSSR styles, multi-label).

Each (question, answer) pair of a conversation is matched against a few readable rules; a sample's
styles are the union over its pairs, in the order of :data:`kit.capabilities.STYLES`, and never
empty (when no rule fires, e.g. for an empty answer, the first question decides). ``style_rule`` says which rule gave
each style, so every label can be audited::

    styler = RuleStyler()
    table = styler.score(pool)          # index id; columns styles (list), style_rule (str)
    style_conversation(conversations)   # -> ["yes/no", "comparison"]
    explain_conversation(conversations) # -> [("yes/no", "answer starts with yes/no"), ...]

Registered as the scorer ``"style_rules"``; the class is also the ``backend="rules"`` of the
``"style"`` scorer. No model, no randomness: the same text always gets the same styles.
:func:`style_agreement` gives per-style precision/recall/F1 against reference labels (e.g. the
``styles`` column of ``data_samples/labels.csv``; ``tests/test_style_rules.py`` pins a floor).

The rules encode what the labels of the nine styles mean, not the wording of one dataset: stock
instructions that only restate the natural style ("Answer with the option's letter", "Answer with
one word") are *not* "specified style"; a prescribed format is (JSON, CSV, exact word counts,
"nothing else", a language, capitals, a template given by example). Superlatives ("which is the
largest") are not comparisons; comparatives across two things are.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from kit.capabilities import STYLES, style_names
from kit.conversation import strip_image_token
from kit.eval.metrics import multilabel_agreement

MC, COORD, YESNO, PHRASE, SHORT, DETAILED, COMPARE, COT, SPECIFIED = STYLES

_I = re.IGNORECASE
_NUM = r"-?\d+(?:\.\d+)?"

# --- multi-choice
# option markers such as "A." "B)" "(c)" "D:" at a line start or after white space, followed by text
_OPTION_MARK = re.compile(r"(?:^|(?<=\s))\(?([A-Ha-h])[.):](?=\s|$)|(?:^|(?<=\s))\(([A-Ha-h])\)", re.MULTILINE)
_OPTION_WORDS = re.compile(r"\b(options?|choices?)\s*:|\bwhich of the following\b|\bchoose (?:one|the correct|the best|"
                           r"from|between|among)\b|\bselect (?:one|the correct|the best|from)\b|"
                           r"\bcorrect option\b|\boption'?s letter\b", _I)
_LETTER_ANSWER = re.compile(r"^\(?[A-H]\)?(?:[.):]|$)(?:\s|$)", _I)

# --- coordinate
_BOX = re.compile(rf"[\[(]\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*[\])]")
_POINT = re.compile(rf"[\[(]\s*{_NUM}\s*,\s*{_NUM}\s*[\])]")
_COORD_WORDS = re.compile(r"\b(?:bounding box(?:es)?|bbox|pixel (?:location|coordinates?)|normali[sz]ed (?:box|position|"
                          r"coordinates?)|coordinates? (?:in|of|on) the (?:image|picture|photo))\b", _I)

# --- yes/no
_YES_NO = re.compile(r"^(?:yes|no)\b", _I)
_YES_NO_CONCLUSION = re.compile(r"(?:^|\n)\s*(?:final )?answer\s*:\s*(?:yes|no)\b|\bthe (?:final )?answer is:? (?:yes|no)\b", _I)
_POLAR = re.compile(r"^(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|isn't|aren't|"
                    r"doesn't|don't)\b", _I)

# --- chain-of-thought
_COT_MARKERS = re.compile(r"\bstep[- ]by[- ]step\b|\bstep\s*\d+\b|\blet'?s think\b|\blet us think\b", _I)
_SEQUENCE = re.compile(r"\bfirst(?:ly)?\b.{0,400}?\b(?:then|next|second(?:ly)?|after that|finally)\b", _I | re.DOTALL)
_CONCLUSION = re.compile(r"\b(?:therefore|thus|hence|consequently|so the (?:final )?answer is|"
                         r"the (?:final )?answer is|which (?:gives|means|yields))\b", _I)
_NUMBERED_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+\S", re.MULTILINE)
_EQUATION = re.compile(rf"(?:{_NUM}|[a-z)])\s*[-+*/×÷^]\s*(?:{_NUM}|[a-z(])[^=\n]{{0,40}}=\s*{_NUM}", _I)
_ASKS_REASONING = re.compile(r"\bstep[- ]by[- ]step\b|\b(?:explain|show) (?:your|the) (?:reasoning|work|steps)\b|"
                             r"\bthink (?:carefully|step)\b|\breason(?:ing)? (?:through|about it)\b", _I)

# --- descriptions
_ASKS_DESCRIBE = re.compile(r"\bdescri(?:be|ption)\b|\bcaption\b|\bwhat (?:is|are) (?:happening|going on)\b|"
                            r"\bwhat do you see\b|\bwhat can you see\b|\btell me (?:about|what)\b|\bsummari[sz]e\b|"
                            r"\boverview\b|\bnarrat(?:e|ive)\b|\bexplain (?:the|this|what) (?:image|picture|photo|scene)\b|"
                            r"\bwhat (?:does|is) (?:the|this) (?:image|picture|photo|scene) (?:show|depict|about)\b", _I)
_ASKS_BRIEF = re.compile(r"\bbrief(?:ly)?\b|\bconcise(?:ly)?\b|\bshort(?:ly)?\b|\bin (?:a|one) (?:sentence|few words|phrase)\b"
                         r"|\bsuccinct(?:ly)?\b", _I)
_ASKS_DETAIL = re.compile(r"\bin (?:great |more |full )?detail\b|\bdetailed\b|\belaborate\b|\bthorough(?:ly)?\b|"
                          r"\bcomprehensive(?:ly)?\b|\bextensive(?:ly)?\b|\bin depth\b", _I)

# --- comparison
_COMPARATIVE = (r"(?:more|less|fewer|greater|larger|smaller|bigger|taller|shorter|higher|lower|older|younger|"
                r"longer|wider|narrower|heavier|lighter|darker|brighter|faster|slower|closer|nearer|farther|further|"
                r"thicker|thinner|deeper|warmer|colder|hotter|cheaper|later|earlier|stronger|weaker)")
_COMPARE_WORDS = re.compile(
    r"\bcompar(?:e|es|ed|ing|ison|isons)\b|\bdifference(?:s)?\b|\bdiffer(?:s|ent from)?\b|\bsimilar(?:ity|ities)?\b|"
    r"\bboth\b|\bwhich of the (?:two|three)\b|\bversus\b|\bvs\.?\s|\bthe same\b|\bidentical\b|"
    rf"\b{_COMPARATIVE}\b(?!\s+than\s+(?:one|half|a|an|\d))[^.?!\n]{{0,40}}\bthan\b|"
    rf"\bwhich\b[^.?!\n]{{0,40}}\b{_COMPARATIVE}\b|"
    r"\bleft\b[^.?!\n]{0,40}\bright (?:panels?|images?|pictures?|ones?|clocks?)\b|"
    r"\b(?:two|both|each|other) (?:panels?|images?|pictures?|photos?|clocks|charts?|plots?|maps?)\b|"
    r"\bthe other\b", _I)

# --- specified style (explicit instructions about the form of the answer)
_COUNT = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|twenty)"
_FORMAT_WORDS = re.compile(
    rf"\b(?:exactly|precisely|no more than|at most|at least|under|fewer than|less than)\s+{_COUNT}\s+"
    r"(?:words?|sentences?|characters?|letters?|items?|bullet points?|lines?)\b"
    r"|\b(?:as|in|into|using) (?:a |an )?(?:csv|json|yaml|xml|markdown|html|latex|table|bullet(?:ed)? list|"
    r"numbered list|haiku|poem|limerick|tweet)\b"
    r"|\boutput only\b|\b(?:with |and )?no other (?:text|words)\b|\bnothing else\b|"
    r"\bwithout (?:any )?(?:explanation|other text|punctuation)\b"
    r"|\bseparated by (?:commas|semicolons|spaces|slashes|new ?lines)\b|\bcomma[- ]separated\b"
    r"|\bin (?:all )?(?:capitals|capital letters|caps|upper ?case|lower ?case)\b|\ball caps\b"
    r"|\b(?:in|into) (?:french|spanish|german|chinese|japanese|italian|portuguese|russian|korean|arabic|hindi)\b"
    r"|\b(?:start|begin|end) (?:your|the) (?:answer|response|reply)\b"
    r"|\b(?:in|use|using|follow) the (?:following )?format\b|\bformat(?:ted)? as\b|\btemplate\b"
    r"|\bfor example\b[^\n]{0,160}[\"“][^\"”\n]+[\"”]", _I)

_ASKS_EXPLAIN = re.compile(r"\bwhy\b|\bhow (?:does|do|did|is|are|was|were|can|could|would|will)\b|\bexplain\b|"
                           r"\bwhat (?:is|are|was|were) (?:he|she|they|it|the \w+|this \w+) doing\b|\bwho (?:is|was|are)\b|"
                           r"\bwhat (?:is|was) (?:it|this|the \w+) about\b|\bknown for\b", _I)
_STRUCTURED = re.compile(r"^\s*[{\[]|(?:.*\n){2,}")  # JSON-like, or several lines (tables, CSV)
_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z\"“(]|\s*$)")
_PHRASE_SENTENCE_WORDS = 12
_HEAD_SPLIT = re.compile(r"[:;,(]|\s[-–—]\s")
_WORD = re.compile(r"[\w'’%°$€£.-]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _only_coordinates(answer: str) -> bool:
    rest = _BOX.sub(" ", answer)
    rest = re.sub(r"\band\b", " ", _POINT.sub(" ", rest), flags=_I)
    return not re.sub(r"[\s,.;:]+", "", rest)


def _is_normalised_point(answer: str) -> bool:
    """All numbers of the answer are in [0, 1] (image-relative), e.g. ``[0.80, 0.20]``."""
    numbers = [float(x) for x in re.findall(_NUM, answer)]
    return bool(numbers) and all(0.0 <= x <= 1.0 for x in numbers)


def _has_options(question: str) -> bool:
    letters = {(m.group(1) or m.group(2)).upper() for m in _OPTION_MARK.finditer(question)}
    return {"A", "B"} <= letters


@dataclass(frozen=True)
class StyleHit:
    """One style found in one (question, answer) pair, with the rule that found it."""

    style: str
    rule: str
    turn: int


def _length_style(n_words: int, short_words: int) -> str:
    return SHORT if n_words < short_words else DETAILED


def _multi_choice_rule(q: str, options: bool) -> str | None:
    if options:
        return "options listed in the question"
    if _OPTION_WORDS.search(q):
        return "question asks to choose among options"
    return None


def _coordinate_rule(q: str, box: bool, point: bool) -> str | None:
    if box:
        return "box [x1, y1, x2, y2] in the text"
    if point:
        return "answer is a normalised point [x, y]"
    if _COORD_WORDS.search(q):
        return "question asks for a box or image coordinates"
    return None


def _yes_no_rule(q: str, a: str, yes_no: bool, options: bool) -> str | None:
    if yes_no:
        return "answer starts with yes/no"
    if _YES_NO_CONCLUSION.search(a):
        return "answer concludes with yes/no"
    if _POLAR.match(q.strip()) and not re.search(r"\bor\b", q, _I) and not options:
        return "question is a closed (yes/no) question"
    return None


def _chain_of_thought_rule(q: str, a: str, n_words: int) -> str | None:
    numbered = len(_NUMBERED_LINE.findall(a))
    if _COT_MARKERS.search(a):
        return "answer has explicit steps"
    if _ASKS_REASONING.search(q):
        return "question asks for step-by-step reasoning"
    if n_words >= 12 and _SEQUENCE.search(a) and (_CONCLUSION.search(a) or numbered >= 2):
        return "answer reasons in sequence to a conclusion"
    if n_words >= 12 and _EQUATION.search(a) and _CONCLUSION.search(a):
        return "answer computes and concludes"
    if n_words >= 12 and numbered >= 2 and _CONCLUSION.search(a):
        return "numbered reasoning with a conclusion"
    return None


def _free_answer_form(q: str, a: str, n_words: int, short_words: int, phrase_words: int, settled: bool,
                      compare: bool) -> tuple[str, str] | None:
    """The form of a free answer, with its rule: a description question gets a short or detailed description;
    an answer whose form another style already says (``settled``: reasoning, yes/no, coordinates, an option's
    letter), an empty or structured one gets none; otherwise a word/short-phrase or a description by length."""
    if _ASKS_DESCRIBE.search(q):
        if _ASKS_DETAIL.search(q):
            return DETAILED, "question asks for a detailed description"
        if _ASKS_BRIEF.search(q):
            return SHORT, "question asks for a brief description"
        return _length_style(n_words, short_words), f"description, {n_words} words"
    if settled or n_words == 0 or _STRUCTURED.match(a):
        return None
    head_words = len(_words(_HEAD_SPLIT.split(a, maxsplit=1)[0]))
    sentences = len(_SENTENCE_END.findall(a.rstrip()))
    if n_words <= phrase_words:
        return PHRASE, f"answer of {n_words} word{'s' if n_words > 1 else ''}"
    if compare and (sentences >= 2 or n_words > 2 * _PHRASE_SENTENCE_WORDS):
        return None  # a comparison answered at length: the comparison is its form, not a description
    if _ASKS_EXPLAIN.search(q):
        return _length_style(n_words, short_words), f"question asks why/how/who, answer of {n_words} words"
    if sentences >= 2:
        return _length_style(n_words, short_words), f"answer of {sentences} sentences"
    if head_words <= phrase_words and n_words <= 2 * _PHRASE_SENTENCE_WORDS:
        return PHRASE, f"answer opens with a {head_words}-word phrase"
    if n_words <= _PHRASE_SENTENCE_WORDS:
        return PHRASE, f"short one-sentence answer ({n_words} words)"
    return _length_style(n_words, short_words), f"free answer of {n_words} words"


def style_pair(question: str, answer: str, short_words: int = 40, phrase_words: int = 3,
               turn: int = 0) -> list[StyleHit]:
    """Styles of one (question, answer) pair, each with the rule that fired (possibly empty).

    The rules, in order: multi-choice (options listed / asked to choose), coordinate (a box or a
    point in the text), yes/no (the answer says yes or no, or the question is a closed question),
    chain-of-thought (explicit or sequenced reasoning), comparison (comparative wording), specified
    style (an explicit format instruction), then the form of a free answer: a description question
    gets a short or detailed description by length; any other free answer is a word/short-phrase
    when it is (or opens with) a phrase of at most ``phrase_words`` words, or a short/detailed
    description when it explains (why/how questions, several sentences, longer answers).
    """
    q = strip_image_token(question or "")
    a = (answer or "").strip()
    n_words = len(_words(a))
    options = _has_options(q)
    box = bool(_BOX.search(a) or _BOX.search(q))
    point = bool(_POINT.search(a)) and _only_coordinates(a) and _is_normalised_point(a)
    yes_no = bool(_YES_NO.match(a))
    cot = _chain_of_thought_rule(q, a, n_words)
    compare = bool(_COMPARE_WORDS.search(q))
    found = [(MC, _multi_choice_rule(q, options)),
             (COORD, _coordinate_rule(q, box, point)),
             (YESNO, _yes_no_rule(q, a, yes_no, options)),
             (COT, cot),
             (COMPARE, "question compares" if compare else None),
             (SPECIFIED, "question prescribes the answer's form" if _FORMAT_WORDS.search(q) else None)]
    settled = cot is not None or yes_no or box or point or (options and bool(_LETTER_ANSWER.match(a)))
    form = _free_answer_form(q, a, n_words, short_words, phrase_words, settled, compare)
    if form is not None:
        found.append(form)
    return [StyleHit(style, rule, turn) for style, rule in found if rule is not None]


def _fallback(question: str, turn: int) -> StyleHit:
    """When no rule fired in any turn (e.g. an empty answer): judge by the question alone."""
    if _ASKS_DESCRIBE.search(question or "") or _ASKS_EXPLAIN.search(question or ""):
        return StyleHit(SHORT, "fallback: open question without a usable answer", turn)
    return StyleHit(PHRASE, "fallback: specific question without a usable answer", turn)


def _pairs(conversations):
    """(question, answer) pairs by role; a trailing question gets an empty answer."""
    pairs, question = [], None
    for i, turn in enumerate(conversations):
        if not isinstance(turn, Mapping) or not isinstance(turn.get("value"), str):
            raise ValueError(f"turn {i} is not a {{'from': ..., 'value': str}} mapping: {turn!r:.80}")
        if turn.get("from") == "human":
            if question is not None:
                pairs.append((question, ""))
            question = turn["value"]
        else:
            pairs.append((question or "", turn["value"]))
            question = None
    if question is not None:
        pairs.append((question, ""))
    return pairs


def explain_conversation(conversations, short_words: int = 40, phrase_words: int = 3) -> list[tuple[str, str]]:
    """``[(style, "turn k: rule"), ...]`` in style order, one entry per style (the first rule that found it)."""
    pairs = _pairs(conversations)
    first: dict[str, StyleHit] = {}
    for k, (q, a) in enumerate(pairs):
        for h in style_pair(q, a, short_words, phrase_words, turn=k):
            first.setdefault(h.style, h)
    if not first:  # nothing fired anywhere (e.g. empty answers): judge by the first question
        h = _fallback(pairs[0][0] if pairs else "", 0)
        first[h.style] = h
    multi = len(pairs) > 1
    return [(s, (f"turn {first[s].turn}: " if multi else "") + first[s].rule) for s in STYLES if s in first]


def style_conversation(conversations, short_words: int = 40, phrase_words: int = 3) -> list[str]:
    """The styles of a conversation (union over its turns, in :data:`STYLES` order, never empty)."""
    return [s for s, _ in explain_conversation(conversations, short_words, phrase_words)]


class RuleStyler:
    """Rule-based styler: ``RuleStyler(short_words=40, phrase_words=3).score(pool)``.

    ``short_words``: a description answer under this many words is a short description, else
    detailed. ``phrase_words``: an answer of at most this many words is a word/short-phrase.
    ``score`` accepts a :class:`kit.data.Pool` or a DataFrame with a ``conversations`` column and
    returns a DataFrame indexed by id with ``styles`` (list of names) and ``style_rule`` (which rule
    gave each style, ``"style: rule"`` joined by ``" | "``).
    """

    backend = "rules"

    def __init__(self, short_words: int = 40, phrase_words: int = 3, progress: bool = True):
        if short_words < 1 or phrase_words < 1:
            raise ValueError("short_words and phrase_words must be >= 1")
        self.short_words, self.phrase_words, self.progress = int(short_words), int(phrase_words), progress

    def score(self, pool) -> pd.DataFrame:
        table = pool.table if hasattr(pool, "table") else pool
        if "conversations" not in table.columns:
            raise KeyError("RuleStyler needs a 'conversations' column")
        styles, rules = [], []
        items = zip(table.index, table["conversations"])
        for sample_id, conv in tqdm(items, total=len(table), desc="styles (rules)", disable=not self.progress):
            try:
                found = explain_conversation(conv, self.short_words, self.phrase_words)
            except (ValueError, TypeError, AttributeError) as exc:
                raise ValueError(f"sample {sample_id!r}: cannot style its conversation: {exc}") from None
            styles.append([s for s, _ in found])
            rules.append(" | ".join(f"{s}: {r}" for s, r in found))
        out = pd.DataFrame({"styles": styles, "style_rule": rules}, index=table.index)
        out.index.name = "id"
        return out


def _style_matrix(style_sets) -> np.ndarray:
    """Boolean (samples x 9 styles) matrix from sets of style names."""
    return np.array([[style in s for style in STYLES] for s in style_sets], dtype=bool).reshape(-1, len(STYLES))


def style_agreement(predicted: pd.Series, truth: pd.Series) -> pd.DataFrame:
    """Per-style precision, recall and F1 of ``predicted`` against ``truth`` (multi-label).

    Both are Series indexed by id holding lists of style names (or ``"a|b"`` strings, as in
    ``labels.csv``); only ids in both are compared. Rows: the 9 styles in order, then ``macro``
    (mean over styles with support or predictions) and ``exact`` (share of samples whose style set is
    exactly right, in the ``recall`` column). ``support`` counts true labels, ``predicted`` predictions.
    """
    ids = predicted.index.intersection(truth.index)
    pred = predicted.loc[ids].map(style_names).map(set)
    true = truth.loc[ids].map(style_names).map(set)
    table, _, _ = multilabel_agreement(_style_matrix(true), _style_matrix(pred), STYLES)
    table = table[["support", "predicted", "precision", "recall", "f1"]].astype(float)
    used = table[(table["support"] > 0) | (table["predicted"] > 0)]
    table.loc["macro"] = [used["support"].sum(), used["predicted"].sum(), used["precision"].mean(),
                          used["recall"].mean(), used["f1"].mean()]
    exact = float((pred == true).mean()) if len(ids) else float("nan")
    table.loc["exact"] = [len(ids), len(ids), float("nan"), exact, float("nan")]
    table[["support", "predicted"]] = table[["support", "predicted"]].astype(int)
    return table
