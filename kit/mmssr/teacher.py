"""Teacher annotator: rate a seeded random sample of a pool through an OpenAI-compatible chat endpoint.

This is the "a teacher rates a small random subset" step of mmSSR (``docs/methods.md``, mmSSR;
GPT-4o in the paper). Any server that speaks the OpenAI chat-completions protocol works: the OpenAI
API itself (``base_url="https://api.openai.com/v1"``, model ``gpt-4o``), a vLLM server
(``http://host:8000/v1``) or Ollama (``http://localhost:11434/v1``).

Each sample gets the official prompts: one request per capability (the conversation text, then the
capability query) and one for the style query, with the image as a base64 data URL. Replies are
parsed with the prompt module's ``parse_score`` / ``parse_styles``. Results go to a JSONL file, one
line per sample, appended and flushed as soon as the sample is done::

    {"id": ..., "scores": {"spatial": 4, ...}, "styles": [...], "unknown_styles": [...],
     "raw": {"spatial": "4", ..., "style": "yes/no"}, "model": "gpt-4o"}

A re-run skips the ids already in the file, so an interrupted run resumes where it stopped and never
loses a finished line. :func:`kit.labels.load_ratings` reads that file (or ``data_samples/labels.csv``)
into the table that :class:`kit.mmssr.distilled.DistilledRichScorer` trains on.

Only the standard library is used for HTTP (``urllib``).
"""
from __future__ import annotations

import base64
import io
import json
import math
import os
import random
import threading
import time
import urllib.error
import urllib.request
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
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
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


# --------------------------------------------------------------------------- HTTP client

@dataclass
class ChatClient:
    """A minimal OpenAI-compatible chat-completions client with bounded exponential back-off.

    ``base_url`` is the API root (``.../v1``); ``/chat/completions`` is appended unless the URL
    already ends with it. Retries on 408/409/425/429/5xx, connection errors and timeouts, waiting
    ``backoff * 2**attempt`` seconds (capped at ``max_backoff``, or the server's ``Retry-After``
    when it is shorter than the cap), at most ``max_retries`` times.
    """

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 120.0
    max_retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    extra_body: dict = field(default_factory=dict)
    n_requests: int = field(default=0, init=False)
    n_retries: int = field(default=0, init=False)

    def __post_init__(self):
        url = self.base_url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self._lock = threading.Lock()

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

    def _post(self, body: bytes) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - user-given URL
            return json.loads(resp.read().decode("utf-8"))

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        wait = min(self.backoff * 2 ** attempt, self.max_backoff)
        if retry_after:
            try:
                wait = min(max(float(retry_after), 0.0), self.max_backoff)
            except ValueError:
                pass
        time.sleep(wait * (1.0 + 0.1 * random.random()))

    def chat(self, messages: list[dict], **params) -> str:
        """Send one chat request and return the reply text (``choices[0].message.content``)."""
        payload = {"model": self.model, "messages": messages, **self.extra_body, **params}
        body = json.dumps(payload).encode("utf-8")
        last = ""
        for attempt in range(self.max_retries + 1):
            retry_after = None
            with self._lock:
                self.n_requests += 1
            try:
                data = self._post(body)
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace") if exc.fp is not None else ""
                last = f"HTTP {exc.code} from {self.url}: {detail}".strip()
                if exc.code not in RETRY_STATUS:
                    raise TeacherRequestError(last, status=exc.code) from None
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"cannot reach {self.url}: {type(exc).__name__}: {reason}"
            except json.JSONDecodeError as exc:
                last = f"{self.url} answered with invalid JSON: {exc}"
            else:
                try:
                    content = data["choices"][0]["message"]["content"]
                except (KeyError, IndexError, TypeError):
                    raise TeacherRequestError(f"unexpected reply from {self.url}: {str(data)[:300]}") from None
                if isinstance(content, list):  # some servers return content parts
                    content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
                return content or ""
            if attempt < self.max_retries:
                with self._lock:
                    self.n_retries += 1
                self._wait(attempt, retry_after)
        raise TeacherRequestError(f"giving up after {self.max_retries + 1} attempts: {last}")


# --------------------------------------------------------------------------- messages

def image_data_url(path, max_side: int | None = None) -> str:
    """The image at ``path`` as a ``data:`` URL (original bytes, or a PNG when resized/converted)."""
    path = Path(path)
    mime = _IMAGE_MIME.get(path.suffix.lower())
    if mime is not None and max_side is None:
        raw = path.read_bytes()
    else:
        from kit.data import decode_image

        img = decode_image(path)
        if max_side is not None and max(img.size) > max_side:
            img.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        raw, mime = buf.getvalue(), "image/png"
    return f"data:{mime};base64," + base64.b64encode(raw).decode("ascii")


def teacher_text(conversations, query: str) -> str:
    """The user text of one query: the official conversation formatting, ``"\\n"``, the query.

    The ``<image>`` placeholder is dropped from the text because the image travels as its own
    ``image_url`` part of the message.
    """
    from kit.conversation import strip_image_token

    conv = _prompts().format_conversation(conversations)
    return strip_image_token(conv) + "\n" + query


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
    from kit.labels import iter_jsonl

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

    def __str__(self) -> str:
        text = (f"{self.path}: {self.requested} samples asked, {self.skipped} already done, "
                f"{self.rated} rated now ({self.n_requests} requests, {self.n_retries} retries)")
        if self.failed:
            text += f", {len(self.failed)} failed (e.g. {next(iter(self.failed.items()))})"
        return text


class TeacherAnnotator:
    """Rate pool samples with the official mmSSR prompts through a chat endpoint.

    ``capabilities`` restricts the capability keys (default: all registered, in registry order);
    ``max_side`` downsizes images before sending; ``max_tokens_score`` / ``max_tokens_style`` bound
    the replies (greedy decoding, ``temperature=0``); ``system`` is the system prompt (``None`` for
    none). ``workers`` rates that many samples at a time (each sample's requests run in turn).
    """

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 capabilities: Iterable[str] | None = None, max_side: int | None = None,
                 max_tokens_score: int = 8, max_tokens_style: int = 64, temperature: float = 0.0,
                 system: str | None = SYSTEM_PROMPT, workers: int = 1, client: ChatClient | None = None,
                 **client_options):
        self.client = client or ChatClient.from_env(base_url, model, api_key, **client_options)
        self.capabilities = _capabilities(capabilities)
        self.max_side, self.system, self.workers = max_side, system, max(int(workers), 1)
        self.max_tokens_score, self.max_tokens_style = max_tokens_score, max_tokens_style
        self.temperature = temperature

    def rate(self, pool, sample_id: str) -> dict:
        """Rate one sample: 14 capability requests and one style request; return its JSONL record."""
        P = _prompts()
        row = pool.table.loc[sample_id]
        try:
            url = image_data_url(row["image_path"], self.max_side)
        except Exception as exc:  # noqa: BLE001
            raise TeacherRequestError(f"sample {sample_id!r}: cannot read image {row['image_path']}: {exc}") from None
        conv = row["conversations"]
        scores, raw = {}, {}
        for key, keyword in self.capabilities:
            text = teacher_text(conv, P.capability_query(keyword))
            reply = self.client.chat(build_messages(text, url, self.system), temperature=self.temperature,
                                     max_tokens=self.max_tokens_score)
            raw[key] = reply
            value = P.parse_score(reply)
            scores[key] = None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)
        reply = self.client.chat(build_messages(teacher_text(conv, P.style_query()), url, self.system),
                                 temperature=self.temperature, max_tokens=self.max_tokens_style)
        raw["style"] = reply
        styles, unknown = _split_styles(P.parse_styles(reply))
        return {"id": sample_id, "scores": scores, "styles": styles, "unknown_styles": unknown,
                "raw": raw, "model": self.client.model}

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
                            bar.update(1)
                        nxt = next(pending, None)
                        if nxt is not None:
                            running[ex.submit(self.rate, pool, nxt)] = nxt
            finally:
                bar.close()
        return RunSummary(out, len(wanted), len(wanted) - len(todo), rated, failed,
                          self.client.n_requests - req0, self.client.n_retries - retry0)


def _split_styles(parsed) -> tuple[list[str], list[str]]:
    """Accept ``parse_styles`` returning ``(styles, unknown)`` or an object with those attributes."""
    if isinstance(parsed, tuple) and len(parsed) == 2:
        return list(parsed[0]), list(parsed[1])
    if hasattr(parsed, "styles"):
        return list(parsed.styles), list(getattr(parsed, "unknown", []))
    return list(parsed), []


def annotate(pool, out, n=None, seed: int = 0, **options) -> RunSummary:
    """Shortcut: ``TeacherAnnotator(**options).annotate(pool, out, n, seed)``."""
    run_keys = {"ids", "on_error", "progress"}
    run = {k: options.pop(k) for k in list(options) if k in run_keys}
    return TeacherAnnotator(**options).annotate(pool, out, n=n, seed=seed, **run)


# --------------------------------------------------------------------------- CLI

def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m kit.mmssr.teacher", description=__doc__.split("\n\n")[0])
    ap.add_argument("pool", help="pool file (LLaVA JSON / JSONL / parquet)")
    ap.add_argument("out", help="teacher JSONL to write (resumed if it exists)")
    ap.add_argument("--n", type=float, default=None, help="samples to rate: a count or a fraction (default all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--url", default=None, help=f"API root, e.g. http://localhost:8000/v1 (or ${ENV_URL})")
    ap.add_argument("--model", default=None, help=f"model name (or ${ENV_MODEL})")
    ap.add_argument("--max-side", type=int, default=None, help="downsize images to this many pixels")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--skip-errors", action="store_true", help="go on after a sample fails for good")
    args = ap.parse_args(argv)
    from kit.data import load_pool

    n = None if args.n is None else (int(args.n) if args.n >= 1 else args.n)
    pool = load_pool(args.pool)
    summary = annotate(pool, args.out, n=n, seed=args.seed, base_url=args.url, model=args.model,
                       max_side=args.max_side, workers=args.workers,
                       on_error="skip" if args.skip_errors else "raise")
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
