"""The testbed: task families with programmatic truth, named pool conditions and a held-out test per family.

    from kit.pools import testbed

    testbed.family_names()                      # the families, each one module of this package
    testbed.build_condition("skewed-noisy", "runs/tb_noisy", n=2000, seed=0)   # pool.json, labels.csv, images/
    questions = testbed.heldout_questions(per_family=60)                     # closed candidates per question

Each family (:mod:`kit.pools.testbed.base`) draws scenes on four disjoint sides (``train`` for pools,
``reserved`` for the model's alignment, ``dev`` for choosing a recipe, ``test`` for the held-out evaluation).
The conditions (:mod:`kit.pools.testbed.conditions`) set the family and style shares, the planted defects and
the redundancy of a pool; ``docs/methods.md`` ("The testbed") holds the protocol.
"""
from __future__ import annotations

from importlib import import_module

# name -> module; each module holds one ``FAMILY`` (imported on first use).
FAMILY_MODULES: dict[str, str] = {
    "shapes": "kit.pools.testbed.shapes",
    "counting": "kit.pools.testbed.counting",
    "position": "kit.pools.testbed.position",
    "size": "kit.pools.testbed.size",
    "oddone": "kit.pools.testbed.oddone",
    "bars": "kit.pools.testbed.bars",
    "ocr": "kit.pools.testbed.ocr",
    "arithmetic": "kit.pools.testbed.arithmetic",
    "digits": "kit.pools.testbed.digits",
}


def family_names() -> list[str]:
    return list(FAMILY_MODULES)


def family(name: str):
    """The :class:`~kit.pools.testbed.base.Family` called ``name``."""
    if name not in FAMILY_MODULES:
        raise KeyError(f"unknown testbed family {name!r}; use one of {', '.join(FAMILY_MODULES)}")
    return import_module(FAMILY_MODULES[name]).FAMILY


def families(names=None) -> list:
    return [family(n) for n in (family_names() if names is None else names)]


def __getattr__(name):  # the builders load on first use (they import numpy, PIL, pandas)
    lazy = {"build_condition": "kit.pools.testbed.conditions", "CONDITIONS": "kit.pools.testbed.conditions",
            "heldout_questions": "kit.pools.testbed.heldout", "alignment_records": "kit.pools.testbed.heldout"}
    if name in lazy:
        return getattr(import_module(lazy[name]), name)
    raise AttributeError(f"module 'kit.pools.testbed' has no attribute {name!r}")
