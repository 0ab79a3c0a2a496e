"""``python -m kit.mmssr.distilled train|cv|tune ...``: an alias of ``kit distill ...`` (:mod:`kit.commands.distill`)."""
if __name__ == "__main__":
    from kit.cli import alias

    raise SystemExit(alias("distill"))
