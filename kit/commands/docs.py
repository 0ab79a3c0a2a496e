"""Rewrite docs/results.md's generated blocks (the testbed's tables, the sample-pool figures) from the committed
results: results/testbed/*.csv and kit report's JSON in results/report/ (kit.eval.docs). The text around the blocks
is left as it is.

examples:
  kit docs                                   # docs/results.md from results/
  kit docs --check                           # exit 1, naming the blocks, if the document is not what results/ says
"""
from __future__ import annotations

from kit.commands.common import CliError


def add_arguments(p) -> None:
    p.add_argument("document", nargs="?", default="docs/results.md", help="the document (default: docs/results.md)")
    p.add_argument("--results", default="results", metavar="DIR", help="the committed results (default: results/)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block would change")


def run(args) -> int:
    from pathlib import Path

    from kit.eval.docs import changed_blocks, write_document

    document = Path(args.document)
    if not document.is_file():
        raise CliError(f"{document} does not exist")
    try:
        if args.check:
            changed = changed_blocks(document.read_text(encoding="utf-8"), args.results)
            if changed:
                raise CliError(f"{document}: the blocks {changed} are not what {args.results}/ says (run kit docs)")
            print(f"{document}: every generated block is what {args.results}/ says")
            return 0
        changed = write_document(document, args.results)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    print(f"{document}: " + (f"rewrote {', '.join(changed)}" if changed else "every generated block was up to date"))
    return 0
