"""``python -m kit.evaluation report POOL_DIR ...``: an alias of ``kit report`` (:mod:`kit.commands.report`), kept
because docs/scale.md lists it. The evaluation code itself lives in :mod:`kit.eval`; nothing here is importable."""
if __name__ == "__main__":
    from kit.cli import alias_of

    raise SystemExit(alias_of("python -m kit.evaluation", ("report",)))
