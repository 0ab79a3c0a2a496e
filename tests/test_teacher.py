"""The teacher annotator against a local OpenAI-compatible server (loopback only)."""
import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

import kit
from kit.mmssr import prompts as P
from kit.capabilities import STYLES, capability_keys, keyword
from kit.mmssr.teacher import (SCORE_FORMAT, STYLE_FORMAT, ChatClient, TeacherAnnotator, TeacherConfigError,
                               TeacherRequestError, annotate, parse_rating, parse_style_reply, read_done, sample_ids)
from kit.eval.labels import load_ratings

ANSWERS = ["yes", "two", "A red square on the left.", "The image shows a busy street with cars and a bus."]


def make_pool(root, n=12):
    """A small LLaVA pool of coloured squares with short conversations."""
    img_dir = root / "images"
    img_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        Image.new("RGB", (16, 16), colour).save(img_dir / f"im{i}.png")
        records.append({"id": f"s{i:02d}", "image": f"im{i}.png", "conversations": [
            {"from": "human", "value": f"<image>\nQuestion {i}: what is shown?"},
            {"from": "gpt", "value": ANSWERS[i % len(ANSWERS)]}]})
    (root / "pool.json").write_text(json.dumps(records))
    return kit.load_pool(root / "pool.json")


def teacher_reply(text: str) -> str:
    """The fake teacher: a deterministic score per (sample text, query), styles by answer length."""
    for instruction in (SCORE_FORMAT, STYLE_FORMAT):
        text = text[:-len(instruction) - 1] if text.endswith("\n" + instruction) else text
    if text.endswith(P.style_query()):
        answer = text.split(" Answer: ")[-1].split("\n")[0]
        words = len(answer.split())
        if words == 1 and answer.lower() in ("yes", "no"):
            return "yes/no, word/short-phrase"
        return "word/short-phrase" if words <= 3 else "short description, fancy style"
    digest = hashlib.sha1(text.encode()).digest()
    return str(digest[0] % 7) if digest[1] % 5 else "not a number"  # 6 -> out of range -> NaN


class FakeServer:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1 that fails its first requests with 503.

    ``fail_status`` may be a list (one status per failing request, e.g. [429, 520]); ``reply`` maps the user
    text to the reply (default :func:`teacher_reply`); ``retry_after`` is sent with each failure.
    """

    def __init__(self, fail_first=1, fail_status=503, reply=teacher_reply, retry_after=None):
        self.requests, self.bodies, self.fail_left, self.fail_status = 0, [], fail_first, fail_status
        self.reply, self.retry_after, self.statuses = reply, retry_after, []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with outer.lock:
                    outer.requests += 1
                    outer.bodies.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    fail = outer.fail_left > 0
                    outer.fail_left -= fail
                    status = outer.fail_status
                    if fail and isinstance(status, list):
                        status = status[(outer.requests - 1) % len(status)]
                    outer.statuses.append(status if fail else 200)
                if fail:
                    self.send_response(status)
                    if outer.retry_after is not None:
                        self.send_header("Retry-After", str(outer.retry_after))
                    self.end_headers()
                    self.wfile.write(b'{"error": "busy"}')
                    return
                text = body["messages"][-1]["content"][1]["text"]
                data = json.dumps({"choices": [{"message": {"role": "assistant",
                                                            "content": outer.reply(text)}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def no_teacher_env(monkeypatch):
    for var in ("KIT_TEACHER_URL", "KIT_TEACHER_MODEL", "KIT_TEACHER_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def pool(tmp_path):
    return make_pool(tmp_path / "pool")


def test_no_endpoint_is_a_clear_error(pool, tmp_path):
    with pytest.raises(TeacherConfigError, match="KIT_TEACHER_URL"):
        annotate(pool, tmp_path / "t.jsonl", n=2)
    with pytest.raises(TeacherConfigError, match="KIT_TEACHER_MODEL"):
        TeacherAnnotator(base_url="http://127.0.0.1:9/v1")
    assert not (tmp_path / "t.jsonl").exists()


def test_sample_is_seeded_and_nested(pool):
    a = sample_ids(pool, 5, seed=3)
    assert a == sample_ids(pool, 5, seed=3) and len(set(a)) == 5 and set(a) <= set(pool.ids)
    assert sample_ids(pool, 8, seed=3)[:5] == a  # growing a run keeps the finished ids
    assert sample_ids(pool, 5, seed=4) != a
    assert len(sample_ids(pool, 0.5, seed=0)) == 6 and len(sample_ids(pool)) == 12


def test_annotate_retries_resumes_and_trains(pool, tmp_path, monkeypatch):
    out = tmp_path / "teacher.jsonl"
    n_q = len(capability_keys()) + 1
    with FakeServer(fail_first=1, retry_after=0.01) as server:
        monkeypatch.setenv("KIT_TEACHER_URL", server.url)  # configured from the environment
        monkeypatch.setenv("KIT_TEACHER_MODEL", "fake-4o")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        summary = annotate(pool, out, n=6, seed=1, progress=False)
        assert summary.rated == 6 and summary.skipped == 0 and summary.n_retries == 1
        assert server.requests == 6 * n_q + 1 == summary.n_requests  # one 503, retried

        # the request: the official texts, the image as a data URL, the key as a bearer token
        path, headers, body = server.bodies[-1]
        assert path == "/v1/chat/completions" and body["model"] == "fake-4o"
        assert headers["authorization"] == "Bearer sk-test" and body["temperature"] == 0
        system, user = body["messages"]
        assert system == {"role": "system", "content": P.SYSTEM_PROMPT}
        image_part, text_part = user["content"]
        url = image_part["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        assert base64.b64decode(url.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        texts = [b["messages"][-1]["content"][1]["text"] for _, _, b in server.bodies[1:1 + n_q]]
        # the scorer's prompt, then the answer-format instruction (the default)
        assert texts[0].endswith("\n" + P.capability_query(keyword(capability_keys()[0])) + "\n" + SCORE_FORMAT)
        assert texts[-1].endswith("\n" + P.style_query() + "\n" + STYLE_FORMAT)
        assert texts[0].startswith("Question: ") and "<image>" not in texts[0]

        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert sorted(r["id"] for r in lines) == sorted(sample_ids(pool, 6, seed=1))
        for rec in lines:
            assert set(rec["scores"]) == set(capability_keys()) and rec["model"] == "fake-4o"
            for key, value in rec["scores"].items():
                assert value == (None if np.isnan(P.parse_score(rec["raw"][key])) else int(rec["raw"][key]))
            assert rec["parse_failures"] == [k for k, v in rec["scores"].items() if v is None]
            assert rec["raw"]["style"] and rec["answer_format"] is True
            # every name is kept (the official sampler bins any text); those outside the 9 are listed
            assert rec["unknown_styles"] in ([], ["fancy style"])
            assert set(rec["styles"]) - set(STYLES) == set(rec["unknown_styles"])

        # resume: nothing new for finished ids, only the extra ones are rated
        before = server.requests
        again = annotate(pool, out, n=6, seed=1, progress=False)
        assert server.requests == before and again.rated == 0 and again.skipped == 6
        more = annotate(pool, out, n=8, seed=1, progress=False)
        assert more.rated == 2 and server.requests == before + 2 * n_q
        assert len(out.read_text().splitlines()) == 8

    ratings = load_ratings(out)
    assert len(ratings) == 8 and list(ratings.columns[:14]) == capability_keys()
    assert ratings[capability_keys()].isna().any().any()  # unparsable replies are NaN, not 0
    assert ratings.loc[lines[0]["id"], "styles"] == lines[0]["styles"]

    from kit.mmssr.distilled import DistilledHead

    scorer = DistilledHead(feature_options={"blocks": ["stats"]}, steps=20, progress=False)
    with pytest.warns(UserWarning, match="unknown style names in the ratings: 'fancy style'"):
        table = scorer.fit(pool, ratings).score(pool)   # the head learns the 9 styles only
    assert len(table) == len(pool) and table[capability_keys()].notna().all().all()


def test_cli(pool, tmp_path, capsys):
    from kit.cli import main

    with FakeServer(fail_first=0) as server:
        assert main(["teacher", str(pool.path), str(tmp_path / "cli.jsonl"), "--n", "2", "--url", server.url,
                     "--model", "m", "--max-side", "8"]) == 0
        assert server.requests == 2 * (len(capability_keys()) + 1)
        url = server.bodies[0][2]["messages"][-1]["content"][0]["image_url"]["url"]
        # no key configured: the SDK's placeholder; greedy, with the reply bounds of a rating and of the styles
        assert {h["authorization"] for _, h, _ in server.bodies} == {"Bearer EMPTY"}
        assert [(b["temperature"], b["max_tokens"]) for _, _, b in server.bodies[:len(capability_keys()) + 1]] == \
            [(0, 8)] * len(capability_keys()) + [(0, 64)]
    assert "2 rated now" in capsys.readouterr().out and len(read_done(tmp_path / "cli.jsonl")) == 2
    with Image.open(__import__("io").BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        assert max(im.size) == 8  # --max-side downsizes before sending


def test_torn_last_line_is_redone(pool, tmp_path):
    out = tmp_path / "teacher.jsonl"
    with FakeServer(fail_first=0) as server:
        ann = TeacherAnnotator(base_url=server.url, model="m", capabilities=["ocr"])
        ann.annotate(pool, out, n=3, seed=0, progress=False)
        good = out.read_text().splitlines()
        out.write_text("\n".join(good[:2]) + "\n" + good[2][: len(good[2]) // 2])  # crash mid-write
        assert len(read_done(out)) == 2
        before = server.requests
        summary = ann.annotate(pool, out, n=3, seed=0, progress=False)
        assert summary.rated == 1 and server.requests == before + 2
    assert len(read_done(out)) == 3 and len(load_ratings(out, capabilities=["ocr"])) == 3


def test_retries_are_bounded_and_client_errors_are_not_retried(pool, tmp_path):
    with FakeServer(fail_first=100, retry_after=0.01) as server:
        client = ChatClient(server.url, "m", max_retries=2)
        with pytest.raises(TeacherRequestError, match="giving up after 3 attempts: HTTP 503"):
            client.chat([{"role": "user", "content": "hi"}])
        assert server.requests == 3
    with FakeServer(fail_first=100, fail_status=401) as server:
        ann = TeacherAnnotator(base_url=server.url, model="m")
        with pytest.raises(TeacherRequestError, match=r"sample 's\d\d': HTTP 401 from http") as err:
            ann.annotate(pool, tmp_path / "t.jsonl", n=2, progress=False)
        assert err.value.status == 401 and server.requests == 1
        summary = ann.annotate(pool, tmp_path / "t.jsonl", n=2, on_error="skip", progress=False)
        assert summary.rated == 0 and len(summary.failed) == 2


def test_unreachable_endpoint_gives_up(pool):
    import socket

    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ChatClient(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, timeout=2)
    with pytest.raises(TeacherRequestError, match="cannot reach"):
        client.chat([{"role": "user", "content": "hi"}])
    assert client.n_requests == 2


def test_labels_csv_loads(tmp_path):
    keys = capability_keys()
    rows = ["id," + ",".join(keys) + ",styles,defect",
            "a," + ",".join(str(i % 6) for i in range(14)) + ",yes/no|word/short-phrase,",
            "b," + ",".join([""] * 14) + ",,broken_image"]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    table = load_ratings(tmp_path / "labels.csv")
    assert list(table.index) == ["a", "b"] and list(table.columns[:14]) == keys
    assert table.loc["a", "styles"] == ["yes/no", "word/short-phrase"] and table.loc["b", "styles"] == []
    assert table.loc["a", keys[7]] == 1.0 and table.loc["b", keys].isna().all()
    assert table.loc["b", "defect"] == "broken_image"
    (tmp_path / "bad.csv").write_text("id,ocr,styles\na,7,\n")
    with pytest.raises(ValueError, match="'a' has ocr=7"):
        load_ratings(tmp_path / "bad.csv")


MESSY = {  # realistic replies of a chat model that was asked for a rating without a format, and their ratings
    "4": 4, " 5\n": 5, "I'd rate this 4 out of 5.": 4, "**Rating: 3**": 3, "N/A": None,
    '{"rating": 2}': 2, '{"capability": "ocr", "score": "1"}': 1, "Rating: 3/5": 3,
    "On a scale of 0 to 5, I would give this a 2.": 2, "3.5": None, "I would give it a 6.": None,
    "Score: 10/10": None, "4\n\nThe question needs the model to read the text.": 4, "Between 0 and 5: 0": 0,
    "-1": None, "": None,
}


@pytest.mark.parametrize("reply,rating", list(MESSY.items()))
def test_parse_rating_on_messy_replies(reply, rating):
    got = parse_rating(reply)
    assert (rating is None and np.isnan(got)) or got == rating


def test_parse_style_reply():
    assert parse_style_reply("yes/no, multi-choice") == ["yes/no", "multi-choice"]
    assert parse_style_reply("Styles: yes/no, short description.") == ["yes/no", "short description"]
    assert parse_style_reply("- yes/no\n- **word/short-phrase**") == ["yes/no", "word/short-phrase"]
    assert parse_style_reply('["comparison", "yes/no", "comparison"]') == ["comparison", "yes/no"]
    assert parse_style_reply('{"styles": ["coordinate"]}') == ["coordinate"]
    assert parse_style_reply("N/A") == [] and parse_style_reply("") == [] and parse_style_reply(None) == []
    assert parse_style_reply("yes/no, a limerick") == ["yes/no", "a limerick"]   # unknown names are kept


def test_messy_replies_are_parsed_and_failures_recorded_per_capability(pool, tmp_path):
    keys = capability_keys()[:len(MESSY)]
    replies = dict(zip(keys, MESSY))

    def reply(text):
        if text.endswith(STYLE_FORMAT) or text.endswith(P.style_query()):
            return "**Styles:** yes/no, a limerick"
        return next(r for k, r in replies.items() if P.capability_query(keyword(k)) in text)

    out = tmp_path / "messy.jsonl"
    with FakeServer(fail_first=2, fail_status=[429, 520], reply=reply, retry_after=0.01) as server:
        summary = annotate(pool, out, n=1, base_url=server.url, model="m", capabilities=keys, progress=False)
        assert server.statuses[:3] == [429, 520, 200] and summary.n_retries == 2   # rate limit, then any 5xx
        style_text = server.bodies[-1][2]["messages"][-1]["content"][1]["text"]
    rec = json.loads(out.read_text())
    assert rec["scores"] == {k: MESSY[r] for k, r in replies.items()}
    assert rec["parse_failures"] == [k for k, r in replies.items() if MESSY[r] is None]
    assert rec["styles"] == ["yes/no", "a limerick"] and rec["unknown_styles"] == ["a limerick"]
    assert summary.parse_failures == {k: 1 for k in rec["parse_failures"]}
    assert "replies without a rating" in str(summary)
    assert style_text.endswith(STYLE_FORMAT)


def test_answer_format_off_sends_the_scorer_prompt_alone(pool, tmp_path):
    with FakeServer(fail_first=0) as server:
        ann = TeacherAnnotator(base_url=server.url, model="m", capabilities=["ocr"], answer_format=False)
        ann.annotate(pool, tmp_path / "plain.jsonl", n=1, progress=False)
        texts = [b["messages"][-1]["content"][1]["text"] for _, _, b in server.bodies]
    conv = pool.table.iloc[0]["conversations"]
    from kit.conversation import strip_image_token

    base = strip_image_token(P.format_conversation(pool.table.loc[json.loads(
        (tmp_path / "plain.jsonl").read_text())["id"], "conversations"])) + "\n"
    assert texts == [base + P.capability_query(keyword("ocr")), base + P.style_query()]
    assert json.loads((tmp_path / "plain.jsonl").read_text())["answer_format"] is False
    on = TeacherAnnotator(base_url=server.url, model="m", capabilities=["ocr"]).texts(conv)
    assert on["ocr"].endswith("?\n" + SCORE_FORMAT) and on["style"].endswith("Styles: \n" + STYLE_FORMAT)
