"""The ``kit`` command line (also ``python -m kit``): one command, a subcommand for everything a user runs.

    kit validate data_samples/pool.json
    kit score data_samples/pool.json loss --out scores/loss            # resumable; add --ray for Ray Data
    kit score pool.jsonl image_text --out scores/it --option text=questions --option device=cuda
    kit select mmssr scores/rich scores/style --budget 0.3 --pool data_samples/pool.json --out subset.json
    kit curriculum scores/image_text scores/loss --pool data_samples/pool.json --stages 3 --budget 0.5 --out cur/
    kit export data_samples/pool.json subset.json --out subset.jsonl --format jsonl
    kit finetune train data_samples/pool.json --out runs/ft --subset subset.json   # align | train | eval
    kit ablate runs/easyvqa_pool/pool.json --out runs/ablation --workers 2 --threads 1
    kit notebooks --quick --only 00 01

Exit codes: 0 success; 1 the command could not do its job (one line on stderr says why; --debug shows the
traceback); 2 wrong usage; 3 ``validate`` read the pool but rejected some records (the report says which);
130 interrupted. ``docs/scale.md`` has the full reference.

No command writes over one of its inputs (the same file after resolving links), and a file that exists
already is replaced only with ``--overwrite`` (atomically). ``kit score`` resumes its folder instead.

The subcommands live in :data:`kit.registry.COMMANDS`, one line each (name, module, the line ``kit --help``
prints); a command's module (:mod:`kit.commands`) holds ``add_arguments(parser)`` and ``run(args)`` and is imported
only when that command runs, so ``kit --help`` imports none of them (nor torch). The ``python -m kit.X`` commands
documented before ``kit`` had them all stay as aliases (:func:`alias`) that run the same code.
"""
from __future__ import annotations

import argparse
import shlex
import sys

from kit.commands.common import (CliError, UsageError, parse_budget, parse_options,  # noqa: F401 - re-exported
                                 parse_value)

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
TOP_OPTIONS = ("--debug",)   # the top-level options that take no value and may come before the command


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps a command's description and examples on their own lines."""


def _version() -> str:
    from kit import __version__

    return __version__


def _command_list() -> str:
    """One line per registered command (name and summary), in registry order."""
    from kit.registry import COMMANDS

    names = COMMANDS.names()
    pad = max(len(n) for n in names) + 2
    return "\n".join(f"  {name:<{pad}}{COMMANDS.summary(name)}" for name in names)


def _add_debug(parser) -> None:
    """``--debug`` after the command too (and after a command's own subcommand); the top-level value otherwise."""
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")
    for action in parser._actions:   # a command's own subcommands (kit finetune train ..., kit pools build ...)
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                _add_debug(sub)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``kit`` parser; ``command`` (a registered name) gets its full options, the others only their name.

    Only ``command``'s module is imported: ``kit --help`` lists every command from the registry alone.
    """
    from kit.registry import COMMANDS

    doc = __doc__.split("\n\n")
    examples, codes = doc[1], doc[2]
    ap = argparse.ArgumentParser(
        prog="kit", formatter_class=_Formatter,
        usage="kit [-h] [--version] [--debug] COMMAND ...",
        description="Select multimodal instruction-tuning data: validate a pool, score it (resumably, locally or on\n"
                    "Ray), select, build a curriculum, export, fine-tune and evaluate, run the ablations and the\n"
                    "notebooks.\n\ncommands:\n" + _command_list(),
        epilog="examples:\n" + examples + "\n\n" + codes.replace("``", "'")
               + "\n\nRun 'kit COMMAND --help' for a command's options.")
    ap.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    ap.add_argument("--version", action="version", version=f"kit {_version()}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS, prog="kit")
    for name in COMMANDS.names():
        summary = COMMANDS.summary(name)
        if name != command:
            sub.add_parser(name, help=summary, add_help=False)
            continue
        impl = COMMANDS.get(name)
        doc = (getattr(impl, "__doc__", None) or summary).strip().replace("``", "'")
        p = sub.add_parser(name, help=summary, description=doc, formatter_class=_Formatter)
        impl.add_arguments(p)
        _add_debug(p)
        p.set_defaults(_run=impl.run)
    return ap


def _command_of(argv: list[str]) -> str | None:
    """The command named in ``argv`` (the first word after the top-level options), or None."""
    for arg in argv:
        if arg in TOP_OPTIONS:
            continue
        return None if arg.startswith("-") else arg
    return None


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def _usage_error(parser: argparse.ArgumentParser, command: str, message: str) -> int:
    """Report wrong usage found after parsing as argparse reports its own: the usage line, then the error."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    sub.print_usage(sys.stderr)
    print(f"{sub.prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv=None) -> int:
    """Run ``kit ARGV``; returns the exit code (0, 1, 2, 3 or 130; see the module docstring), never raises
    SystemExit (``--help`` and argparse's usage errors return 0 and 2)."""
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    command = _command_of(argv)
    from kit.registry import COMMANDS

    parser = build_parser(command if command in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:   # --help, --version (0) or wrong usage (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_ERROR)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    args.command_line = "kit " + " ".join(shlex.quote(a) for a in argv if a not in TOP_OPTIONS)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"kit {args.command}: interrupted (score folders, ablations and teacher files keep their finished "
              "work: run the same command to resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as exc:
        if args.debug:
            raise
        return _usage_error(parser, args.command, str(exc))
    except Exception as exc:  # noqa: BLE001 - one clear line, the traceback with --debug
        if args.debug:
            raise
        from kit.data import PoolFormatError, PoolValidationError
        from kit.shards import ScoreFolderError

        plain = (CliError, PoolFormatError, PoolValidationError, ScoreFolderError, FileNotFoundError, KeyError,
                 ValueError)
        kind = "" if isinstance(exc, plain) or type(exc).__name__ == "RayUnavailable" else f"{type(exc).__name__}: "
        print(f"kit {args.command}: error: {kind}{_message(exc)}", file=sys.stderr)
        return EXIT_ERROR


def alias(command: str, argv=None) -> int:
    """``python -m kit.X ARGS``, kept where it was documented: the same as ``kit COMMAND ARGS``."""
    return main([command, *(sys.argv[1:] if argv is None else argv)])


def alias_of(prog: str, commands: tuple[str, ...], argv=None) -> int:
    """``python -m kit.X NAME ARGS`` where each NAME is a kit command (``python -m kit.experiments ablate ...``):
    the same as ``kit NAME ARGS``; anything else prints which commands it stands for."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in commands:
        return main(argv)
    usage = (f"usage: {prog} {{{','.join(commands)}}} ...\n{prog} is an alias of "
             + ", ".join(f"'kit {c}'" for c in commands) + "; run 'kit COMMAND --help' for a command's options")
    if argv[:1] in (["-h"], ["--help"]):
        print(usage)
        return EXIT_OK
    print(usage, file=sys.stderr)
    print(f"{prog}: error: give one of {', '.join(commands)}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
