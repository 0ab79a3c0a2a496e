"""Every figure docs/results.md reports about a pool with planted truth (POOL_DIR/pool.json + labels.csv), in
one command; each section prints the pool, whether the figure is in-sample, and what made it (kit.eval.report).

examples:
  kit report data_samples/                                   # all sections (minutes on 2 CPU cores)
  kit report data_samples/ --only image_text --json runs/figures.json

Also ``python -m kit.evaluation report ...``.
"""
from __future__ import annotations

from kit.commands.common import UsageError


def add_arguments(r) -> None:
    from kit.eval.report import SECTIONS

    r.add_argument("pool_dir")
    r.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    r.add_argument("--json", default=None, help="also write the figures to this JSON file")
    r.add_argument("--loss-model", default=None, metavar="DIR",
                   help="the model whose answer loss the aligned_loss section reports (default: the aligned tiny base)")


def run(args) -> int:
    from kit.eval.report import SECTIONS, report

    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise UsageError(f"unknown sections {unknown}; choose from {SECTIONS}")
    report(args.pool_dir, sections, args.json, loss_model=args.loss_model)
    return 0
