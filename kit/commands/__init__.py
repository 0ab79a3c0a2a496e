"""The ``kit`` subcommands, one module each.

A command module holds ``add_arguments(parser)`` (its whole argument parser: the one place its options are
defined) and ``run(args) -> int`` (the exit code); its docstring is the description ``kit COMMAND --help`` prints.
It is registered with one line in :data:`kit.registry.COMMANDS` and imported only when its command runs, so
``kit --help`` imports none of them. Heavy modules (torch, transformers, the trainers) are imported inside
``run``. :mod:`kit.commands.common` holds what several commands share (pool-loading flags, ``--option``
parsing, budgets, output checks); :mod:`kit.cli` builds the parser, runs the command and maps errors to the exit
codes.
"""
