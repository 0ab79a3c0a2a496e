"""Rate a seeded random sample of a pool through an OpenAI-compatible chat endpoint (the teacher step of mmSSR:
the OpenAI API, a vLLM server or Ollama; kit.mmssr.teacher says what is sent). The ratings go to a JSONL file, one
line per sample as soon as it is done; running the same command again resumes it.

example:
  kit teacher data_samples/pool.json runs/teacher.jsonl --n 200 --url http://localhost:8000/v1 --model MODEL

Also ``python -m kit.mmssr.teacher ...``.
"""
from __future__ import annotations


def add_arguments(ap) -> None:
    from kit.mmssr.teacher import ENV_MODEL, ENV_URL

    ap.add_argument("pool", help="pool file (LLaVA JSON / JSONL / parquet)")
    ap.add_argument("out", help="teacher JSONL to write (resumed if it exists)")
    ap.add_argument("--n", type=float, default=None, help="samples to rate: a count or a fraction (default all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--url", default=None, help=f"API root, e.g. http://localhost:8000/v1 (or ${ENV_URL})")
    ap.add_argument("--model", default=None, help=f"model name (or ${ENV_MODEL})")
    ap.add_argument("--max-side", type=int, default=None, help="downsize images to this many pixels")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--no-answer-format", action="store_true",
                    help="send the scorer's prompt alone, without the answer-format instruction")
    ap.add_argument("--skip-errors", action="store_true", help="go on after a sample fails for good")


def run(args) -> int:
    from kit.data import load_pool
    from kit.mmssr.teacher import annotate

    n = None if args.n is None else (int(args.n) if args.n >= 1 else args.n)
    pool = load_pool(args.pool)
    summary = annotate(pool, args.out, n=n, seed=args.seed, base_url=args.url, model=args.model,
                       max_side=args.max_side, workers=args.workers, answer_format=not args.no_answer_format,
                       on_error="skip" if args.skip_errors else "raise")
    print(summary)
    return 0
