"""Teacher annotator: rate a seeded random sample of a pool through an OpenAI-compatible chat endpoint.

This is the "a teacher rates a small random subset" step of mmSSR (``docs/methods.md``, mmSSR; GPT-4o in
the paper). Any server that speaks the OpenAI chat-completions protocol works: the OpenAI API itself
(``base_url="https://api.openai.com/v1"``, model ``gpt-4o``), a vLLM server (``http://host:8000/v1``) or
Ollama (``http://localhost:11434/v1``).

The paper does not publish its teacher prompt. What the kit sends, per sample, is 15 chat requests (one per
capability, one for the styles), each with ``temperature=0`` and a bound on the reply (``max_tokens`` 8 for a
rating, 64 for the styles)::

    system: "You are a helpful assistant."                       (system=None: no system message)
    user:   [image part: the image as a base64 data URL (the file's own bytes; a PNG when max_side
             resizes or the format is not jpeg/png/webp/gif)]
            [text part:  the conversation as the scorer sees it (kit.mmssr.prompts.format_conversation,
             the official text) with the <image> placeholders removed, "\n", the capability query
             ("On a scale of 0 to 5, how do you rate ... for {keyword}?") or the style query
             ("Interaction style candidates: [...]\nStyles: "),
             and with answer_format=True (default) "\n" + an answer-format instruction]

The instructions (:data:`SCORE_FORMAT`, :data:`STYLE_FORMAT`) ask for a bare integer 0-5, or for the matching
style names separated by commas; ``answer_format=False`` sends the scorer's prompt alone (the kit's earlier
behaviour), which asks for no format. Replies are parsed robustly (:func:`parse_rating`: the first integer
0-5 once scale phrases such as "0 to 5" or "out of 5" are removed; a JSON reply's "rating"/"score" field;
:func:`parse_style_reply`: names split on commas, list markup removed). Results go to a JSONL file, one line
per sample, appended and flushed as soon as the sample is done::

    {"id": ..., "scores": {"spatial": 4, ..., "ocr": null}, "styles": [...], "unknown_styles": [...],
     "parse_failures": ["ocr"], "raw": {"spatial": "4", ..., "style": "yes/no"},
     "model": "gpt-4o", "answer_format": true}

``styles`` keeps every name the teacher wrote (the official sampler bins any name); ``unknown_styles`` lists
the ones outside the 9; ``parse_failures`` the queries whose reply held no rating (or no style name).
A re-run skips the ids already in the file, so an interrupted run resumes where it stopped and never loses a
finished line. :func:`kit.eval.labels.load_ratings` reads that file (or ``data_samples/labels.csv``) into the
table that :class:`kit.mmssr.distilled.DistilledHead` trains on.

HTTP goes through the ``openai`` package (``ChatClient``): requests that fail with 408, 409, 429 or any 5xx,
a connection error or a timeout are retried by the SDK with exponential back-off (or the server's
``Retry-After``), at most ``max_retries`` times.
"""
from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

ENV_URL = "KIT_TEACHER_URL"
ENV_MODEL = "KIT_TEACHER_MODEL"
ENV_KEYS = ("KIT_TEACHER_API_KEY", "OPENAI_API_KEY")
SYSTEM_PROMPT = "You are a helpful assistant."
NO_API_KEY = "EMPTY"   # sent when no key is configured (the SDK needs one; vLLM's docs use the same)
SCORE_FORMAT = "Answer with a single integer from 0 to 5 and nothing else."
STYLE_FORMAT = ("Answer with the names of the matching interaction styles from the candidates, separated by "
                "commas, and nothing else.")
_IMAGE_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
               ".gif": "image/gif"}


class TeacherConfigError(RuntimeError):
    """No endpoint (or no model) is configured for the teacher."""


class TeacherRequestError(RuntimeError):
    """A request failed for good (a non-retryable status, or retries exhausted)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- prompts

def _prompts():
    """The prompt module (official mmSSR prompt strings and parsers)."""
    from kit.mmssr import prompts

    return prompts


def _capabilities(keys: Iterable[str] | None):
    """``[(key, keyword), ...]`` in registry order (or the order of ``keys``)."""
    from kit import capabilities as caps

    keys = caps.capability_keys() if keys is None else list(keys)
    return [(key, caps.keyword(key)) for key in keys]


# --------------------------------------------------------------------------- reply parsing

_SCALE_PHRASES = re.compile(
    r"(?:on\s+a\s+scale\s+)?(?:of|from|between)?\s*\b0\s*(?:-|–|—|to|and)\s*5\b"   # "0 to 5", "from 0-5"
    r"|(?:out\s+of|/)\s*5(?!\d|\.\d)",                                           # "out of 5", "/5"
    re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w)")


def parse_rating(text) -> float:
    """The rating 0-5 in a teacher's reply, or NaN.

    The official parse first (``int(reply)``); then a JSON object's ``rating``/``score`` field; then the first
    integer 0-5 in the text once scale phrases ("0 to 5", "0-5", "out of 5", "/5") are removed, so that
    "I'd rate this 4 out of 5." gives 4, "**Rating: 3**" gives 3, "On a scale of 0 to 5: 2" gives 2.
    Decimals ("3.5"), negative numbers and numbers above 5 are not ratings; "N/A" gives NaN.
    """
    from kit.mmssr.prompts import parse_score

    value = parse_score(text)
    if not math.isnan(value) or not isinstance(text, str):
        return value
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            for key, field_value in obj.items():
                if str(key).lower() in ("rating", "score", "value", "answer"):
                    return parse_rating(field_value if isinstance(field_value, str) else json.dumps(field_value))
    cleaned = _SCALE_PHRASES.sub(" ", text)
    for match in _NUMBER.finditer(cleaned):
        token = match.group(0)
        if re.fullmatch(r"[0-5]", token):
            return float(token)
    return math.nan


def parse_style_reply(text) -> list[str]:
    """Style names in a teacher's reply: split on commas (and new lines), list markup and quotes removed.

    A leading "Styles:" label, bullets, ``**bold**``, backticks and a JSON list are tolerated; names are
    stripped and de-duplicated in order; every name is kept (known or not).
    """
    if text is None:
        return []
    body = str(text).strip()
    try:
        obj = json.loads(body)
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        obj = next((v for k, v in obj.items() if str(k).lower() in ("styles", "style")), None)
    pieces = [str(x) for x in obj] if isinstance(obj, list) else re.split(r"[,\n]", body)
    names: list[str] = []
    for piece in pieces:
        name = re.sub(r"^\s*(?:[-•]|\*(?!\*)|\d+[.)])\s+", "", piece)   # list bullets
        name = name.replace("**", "").replace("`", "")                     # bold, code
        name = re.sub(r"^\s*styles?\s*:\s*", "", name, flags=re.IGNORECASE)
        name = name.strip().strip("*`\"'[]").strip().rstrip(".").strip()
        if re.fullmatch(r"n/?a|none|unknown|-+", name, flags=re.IGNORECASE):
            continue
        if name and name not in names:
            names.append(name)
    return names


# --------------------------------------------------------------------------- HTTP client

@dataclass
class ChatClient:
    """An OpenAI-compatible chat-completions client: the ``openai`` package's ``OpenAI`` client and its retries.

    ``base_url`` is the API root (``.../v1``; a URL ending in ``/chat/completions`` is cut back to its root).
    The SDK retries connection errors, timeouts, 408, 409, 429 and every 5xx with exponential back-off (or
    the server's ``Retry-After``), at most ``max_retries`` times, each attempt bounded by ``timeout``
    seconds. ``n_requests`` counts the attempts sent, ``n_retries`` the retries among them. With no
    ``api_key`` the placeholder :data:`NO_API_KEY` is sent (vLLM and Ollama ignore it; the SDK needs one).
    """

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 120.0
    max_retries: int = 5
    extra_body: dict = field(default_factory=dict)
    n_requests: int = field(default=0, init=False)
    n_retries: int = field(default=0, init=False)

    def __post_init__(self):
        import openai

        root = self.base_url.rstrip("/")
        root = root[: -len("/chat/completions")] if root.endswith("/chat/completions") else root
        self.url = root + "/chat/completions"
        self._lock = threading.Lock()
        self._openai = openai.OpenAI(base_url=root, api_key=self.api_key or NO_API_KEY,
                                     max_retries=self.max_retries, timeout=self.timeout)

    @classmethod
    def from_env(cls, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 **options) -> "ChatClient":
        """Build a client from arguments, falling back on ``KIT_TEACHER_URL`` / ``KIT_TEACHER_MODEL``
        / ``KIT_TEACHER_API_KEY`` (or ``OPENAI_API_KEY``); raise :class:`TeacherConfigError` when no
        endpoint or no model is configured."""
        base_url = base_url or os.environ.get(ENV_URL)
        model = model or os.environ.get(ENV_MODEL)
        if api_key is None:
            api_key = next((os.environ[k] for k in ENV_KEYS if os.environ.get(k)), None)
        if not base_url:
            raise TeacherConfigError(
                "no teacher endpoint is configured: pass base_url=... (CLI --url) or set "
                f"{ENV_URL}, e.g. https://api.openai.com/v1 (GPT-4o), http://localhost:8000/v1 (vLLM) "
                "or http://localhost:11434/v1 (Ollama)")
        if not model:
            raise TeacherConfigError(
                f"no teacher model is configured for {base_url}: pass model=... (CLI --model) or set "
                f"{ENV_MODEL}, e.g. gpt-4o")
        return cls(base_url=base_url, model=model, api_key=api_key, **options)

    def _count(self, retries: int) -> None:
        with self._lock:
            self.n_requests += 1 + retries
            self.n_retries += retries

    def _failure(self, exc) -> TeacherRequestError:
        """The :class:`TeacherRequestError` for an SDK error, once its attempts are counted."""
        import openai

        retries = _retries_taken(getattr(exc, "request", None))
        self._count(retries)
        status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
        if status is not None:
            detail = exc.response.text[:300] if exc.response is not None else ""
            message = f"HTTP {status} from {self.url}: {detail}".strip()
        elif isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            message = f"cannot reach {self.url}: {type(cause).__name__}: {cause}"
        else:
            message = f"request to {self.url} failed: {type(exc).__name__}: {exc}"
        if retries:
            message = f"giving up after {retries + 1} attempts: {message}"
        return TeacherRequestError(message, status=status)

    def chat(self, messages: list[dict], **params) -> str:
        """Send one chat request and return the reply text (``choices[0].message.content``).

        ``params`` are the request's parameters (``temperature``, ``max_tokens``, ...); ``extra_body`` is
        merged into every request. A request that fails for good raises :class:`TeacherRequestError`.
        """
        import openai

        try:
            raw = self._openai.chat.completions.with_raw_response.create(
                model=self.model, messages=messages, extra_body=self.extra_body or None, **params)
            completion = raw.parse()
        except openai.OpenAIError as exc:
            raise self._failure(exc) from None
        self._count(raw.retries_taken)
        try:
            content = completion.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            raise TeacherRequestError(f"unexpected reply from {self.url}: {str(completion)[:300]}") from None
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return content or ""


def _retries_taken(request) -> int:
    """How many retries preceded the SDK's last attempt (its ``x-stainless-retry-count`` request header)."""
    try:
        return int(request.headers.get("x-stainless-retry-count", 0))
    except (AttributeError, TypeError, ValueError):
        return 0


# --------------------------------------------------------------------------- messages

def image_data_url(path, max_side: int | None = None) -> str:
    """The image at ``path`` as a ``data:`` URL (original bytes, or a PNG when resized/converted).

    ``path`` is a pool's checked image path: it must still open the file the loader checked (a symbolic link
    put in its place since is refused, so nothing outside the image folder is sent).
    """
    from kit.images import decode_image, open_file

    path = Path(path)
    mime = _IMAGE_MIME.get(path.suffix.lower())
    if mime is not None and max_side is None:
        f, _, _ = open_file(path, pinned=True)
        with f:
            raw = f.read()
    else:
        img = decode_image(path, pinned=True)
        if max_side is not None and max(img.size) > max_side:
            img.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        raw, mime = buf.getvalue(), "image/png"
    return f"data:{mime};base64," + base64.b64encode(raw).decode("ascii")


def teacher_text(conversations, query: str, instruction: str | None = None) -> str:
    """The user text of one query: the official conversation formatting, ``"\\n"``, the query, and an
    optional answer-format ``instruction`` after another ``"\\n"``.

    The ``<image>`` placeholder is dropped from the text because the image travels as its own
    ``image_url`` part of the message.
    """
    from kit.conversation import strip_image_token

    conv = _prompts().format_conversation(conversations)
    text = strip_image_token(conv) + "\n" + query
    return text + "\n" + instruction if instruction else text


def build_messages(text: str, image_url: str, system: str | None = SYSTEM_PROMPT) -> list[dict]:
    """OpenAI chat messages: optional system prompt, then one user turn with the image and the text."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image_url}},
        {"type": "text", "text": text},
    ]})
    return messages


# --------------------------------------------------------------------------- sampling and resume

def sample_ids(pool, n=None, seed: int = 0) -> list[str]:
    """A seeded random sample of the pool's ids (``n`` a count, a fraction in (0, 1), or None = all).

    The draw is a seeded permutation of the pool order, so the same ``seed`` always gives the same
    ids and a smaller ``n`` is a prefix of a larger one (growing a run keeps the finished ids).
    """
    ids = list(pool.table.index)
    if n is None:
        k = len(ids)
    elif isinstance(n, float) and 0.0 < n < 1.0:
        k = int(n * len(ids))
    elif isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0:
        k = min(int(n), len(ids))
    else:
        raise ValueError(f"n must be a count >= 0, a fraction in (0, 1) or None, not {n!r}")
    order = np.random.default_rng(seed).permutation(len(ids))
    return [ids[i] for i in order[:k]]


def read_done(path) -> dict[str, dict]:
    """The finished lines of a teacher JSONL file, by id (a torn last line is ignored)."""
    path = Path(path)
    if not path.is_file():
        return {}
    from kit.eval.labels import iter_jsonl

    return {str(rec["id"]): rec for _, rec in iter_jsonl(path) if isinstance(rec, dict) and "id" in rec}


def _ensure_newline(path: Path) -> None:
    """Make sure appending starts on a fresh line (after a torn last line, for instance)."""
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            last = fh.read(1)
        if last != b"\n":
            with path.open("ab") as fh:
                fh.write(b"\n")


# --------------------------------------------------------------------------- the annotator

@dataclass
class RunSummary:
    """What one :func:`annotate` call did."""

    path: Path
    requested: int
    skipped: int
    rated: int
    failed: dict[str, str]
    n_requests: int
    n_retries: int
    parse_failures: dict[str, int] = field(default_factory=dict)   # query -> replies without a rating, this run

    def __str__(self) -> str:
        text = (f"{self.path}: {self.requested} samples asked, {self.skipped} already done, "
                f"{self.rated} rated now ({self.n_requests} requests, {self.n_retries} retries)")
        if self.failed:
            text += f", {len(self.failed)} failed (e.g. {next(iter(self.failed.items()))})"
        if self.parse_failures:
            text += ("; replies without a rating: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(self.parse_failures.items(), key=lambda kv: -kv[1])))
        return text


class TeacherAnnotator:
    """Rate pool samples with the mmSSR scorer prompts through a chat endpoint (see the module doc).

    ``capabilities`` restricts the capability keys (default: all registered, in registry order);
    ``max_side`` downsizes images before sending; ``max_tokens_score`` / ``max_tokens_style`` bound
    the replies (greedy decoding, ``temperature=0``); ``system`` is the system prompt (``None`` for
    none). ``answer_format`` (default ``True``) appends :data:`SCORE_FORMAT` / :data:`STYLE_FORMAT` to the
    queries (``False``: the scorer's prompt alone); ``score_format`` / ``style_format`` replace those
    instructions. ``workers`` rates that many samples at a time (each sample's requests run in turn).
    """

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 capabilities: Iterable[str] | None = None, max_side: int | None = None,
                 max_tokens_score: int = 8, max_tokens_style: int = 64, temperature: float = 0.0,
                 system: str | None = SYSTEM_PROMPT, answer_format: bool = True, score_format: str = SCORE_FORMAT,
                 style_format: str = STYLE_FORMAT, workers: int = 1, client: ChatClient | None = None,
                 **client_options):
        self.client = client or ChatClient.from_env(base_url, model, api_key, **client_options)
        self.capabilities = _capabilities(capabilities)
        self.max_side, self.system, self.workers = max_side, system, max(int(workers), 1)
        self.max_tokens_score, self.max_tokens_style = max_tokens_score, max_tokens_style
        self.temperature = temperature
        self.answer_format = bool(answer_format)
        self.score_format, self.style_format = score_format, style_format

    def texts(self, conversations) -> dict[str, str]:
        """The user text of every request for one sample: ``{capability key: text, ..., "style": text}``."""
        P = _prompts()
        score_fmt = self.score_format if self.answer_format else None
        out = {key: teacher_text(conversations, P.capability_query(kw), score_fmt) for key, kw in self.capabilities}
        out["style"] = teacher_text(conversations, P.style_query(), self.style_format if self.answer_format else None)
        return out

    def rate(self, pool, sample_id: str) -> dict:
        """Rate one sample: one request per capability and one style request; return its JSONL record."""
        from kit.capabilities import STYLES

        row = pool.table.loc[sample_id]
        try:
            url = image_data_url(row["image_path"], self.max_side)
        except Exception as exc:  # noqa: BLE001
            raise TeacherRequestError(f"sample {sample_id!r}: cannot read image {row['image_path']}: {exc}") from None
        texts = self.texts(row["conversations"])
        scores, raw, failures = {}, {}, []
        for key, _ in self.capabilities:
            reply = self.client.chat(build_messages(texts[key], url, self.system), temperature=self.temperature,
                                     max_tokens=self.max_tokens_score)
            raw[key] = reply
            value = parse_rating(reply)
            scores[key] = None if math.isnan(value) else int(value)
            if scores[key] is None:
                failures.append(key)
        reply = self.client.chat(build_messages(texts["style"], url, self.system),
                                 temperature=self.temperature, max_tokens=self.max_tokens_style)
        raw["style"] = reply
        styles = parse_style_reply(reply)
        if not styles:
            failures.append("style")
        return {"id": sample_id, "scores": scores, "styles": styles,
                "unknown_styles": [s for s in styles if s not in STYLES], "parse_failures": failures,
                "raw": raw, "model": self.client.model, "answer_format": self.answer_format}

    def annotate(self, pool, out, n=None, seed: int = 0, ids: Iterable[str] | None = None,
                 on_error: str = "raise", progress: bool = True) -> RunSummary:
        """Rate ``n`` seeded random samples (or the given ``ids``) into the JSONL file ``out``.

        Ids already in ``out`` are skipped. Each finished sample is appended and flushed at once.
        ``on_error="raise"`` stops at the first sample that fails for good (finished lines stay);
        ``"skip"`` records it in the summary and goes on (a re-run tries it again).
        """
        if on_error not in ("raise", "skip"):
            raise ValueError("on_error must be 'raise' or 'skip'")
        from tqdm.auto import tqdm

        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        wanted = pool.check_ids(ids, "ids to rate") if ids is not None else sample_ids(pool, n, seed)
        done = read_done(out)
        todo = [i for i in wanted if i not in done]
        req0, retry0 = self.client.n_requests, self.client.n_retries
        failed: dict[str, str] = {}
        parse_failures: dict[str, int] = {}
        rated = 0
        _ensure_newline(out)
        bar = tqdm(total=len(wanted), initial=len(wanted) - len(todo), desc="teacher", unit="sample",
                   disable=not progress)
        pending = iter(todo)
        with out.open("a", encoding="utf-8") as fh, ThreadPoolExecutor(self.workers) as ex:
            # at most `workers` samples in flight, so a fatal error stops the run without starting more
            running = {}
            for sid in pending:
                running[ex.submit(self.rate, pool, sid)] = sid
                if len(running) >= self.workers:
                    break
            try:
                while running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        sid = running.pop(fut)
                        try:
                            rec = fut.result()
                        except TeacherRequestError as exc:
                            if on_error == "raise":
                                raise TeacherRequestError(f"sample {sid!r}: {exc}", exc.status) from exc
                            failed[sid] = str(exc)
                        else:
                            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                            fh.flush()
                            os.fsync(fh.fileno())
                            rated += 1
                            for key in rec.get("parse_failures", []):
                                parse_failures[key] = parse_failures.get(key, 0) + 1
                            bar.update(1)
                        nxt = next(pending, None)
                        if nxt is not None:
                            running[ex.submit(self.rate, pool, nxt)] = nxt
            finally:
                bar.close()
        return RunSummary(out, len(wanted), len(wanted) - len(todo), rated, failed,
                          self.client.n_requests - req0, self.client.n_retries - retry0, parse_failures)


def annotate(pool, out, n=None, seed: int = 0, **options) -> RunSummary:
    """Shortcut: ``TeacherAnnotator(**options).annotate(pool, out, n, seed)``."""
    run_keys = {"ids", "on_error", "progress"}
    run = {k: options.pop(k) for k in list(options) if k in run_keys}
    return TeacherAnnotator(**options).annotate(pool, out, n=n, seed=seed, **run)


if __name__ == "__main__":  # python -m kit.mmssr.teacher: an alias of kit teacher (kit.commands.teacher)
    from kit.cli import alias

    raise SystemExit(alias("teacher"))
