"""``python -m kit.pools build|easyvqa|distill|testbed ...``: an alias of ``kit pools ...`` (:mod:`kit.commands.pools`)."""
if __name__ == "__main__":
    from kit.cli import alias

    raise SystemExit(alias("pools"))
