"""``python -m kit.experiments ablate|testbed|testbed-gate ...``: aliases of ``kit ablate``, ``kit testbed`` and
``kit testbed-gate`` (:mod:`kit.commands.ablate`, :mod:`kit.commands.testbed`, :mod:`kit.commands.testbed_gate`)."""
if __name__ == "__main__":
    from kit.cli import alias_of

    raise SystemExit(alias_of("python -m kit.experiments", ("ablate", "testbed", "testbed-gate")))
