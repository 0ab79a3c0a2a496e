"""``python -m kit.finetune ...``: an alias of ``kit finetune ...`` (:mod:`kit.commands.finetune`)."""
if __name__ == "__main__":
    from kit.cli import alias

    raise SystemExit(alias("finetune"))
