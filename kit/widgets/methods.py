"""Which explorer controls apply to which selector, and the options each control turns into.

Every registered selector (:data:`kit.SELECTORS`) can be chosen; this table says, for the built-in ones,
whether the seed matters, whether the capability multi-select and the threshold apply (and what the
threshold means for that selector), which extra choice it takes (``cells``' cell, ``ppl_band``'s band) and
whether it needs sample embeddings. A selector not listed here (one a user registered) gets the budget and
the seed and no options. ``docs/methods.md`` describes each selector.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Threshold:
    """A numeric option with a slider: option name, label, range, step and default."""

    option: str
    label: str
    min: float
    max: float
    step: float
    default: float


@dataclass(frozen=True)
class Choice:
    """An option picked from a list (a dropdown)."""

    option: str
    label: str
    values: tuple
    default: Any


@dataclass(frozen=True)
class MethodControls:
    """The controls that apply to one selector."""

    seed: bool = True
    capabilities: bool = False
    threshold: Threshold | None = None
    choice: Choice | None = None
    embeddings: bool = False
    about: str = ""
    fixed: dict = field(default_factory=dict)


def _cell_names() -> tuple[str, ...]:
    from kit.quality.space import cell_names

    return tuple(cell_names(3))


def _bands() -> tuple[str, ...]:
    from kit.baselines.ppl_band import BANDS

    return tuple(BANDS)


def builtin_controls() -> dict[str, MethodControls]:
    """The controls of the built-in selectors."""
    return {
        "random": MethodControls(about="uniform draw without replacement (seeded)"),
        "mmssr": MethodControls(seed=False, capabilities=True,
                                threshold=Threshold("threshold", "rating >", 0.0, 5.0, 0.5, 0.0),
                                about="mmSSR sampler over capabilities and (source, style) bins; a sample is a "
                                      "candidate of a capability when its rating is above the threshold"),
        "dis": MethodControls(seed=False, about="highest image-text score"),
        "dil": MethodControls(seed=False, about="highest answer loss"),
        "diq": MethodControls(about="seeded draw from the top-right cell of the quality plane"),
        "cells": MethodControls(choice=Choice("cells", "cell", _cell_names(), "top_right"),
                                about="seeded draw from one cell of the 3 x 3 quality plane"),
        "clip_top": MethodControls(seed=False, about="highest image-text score (CLIP-score baseline)"),
        "ppl_band": MethodControls(seed=False, choice=Choice("band", "band", _bands(), "mid"),
                                   about="a band (low / mid / high) of the answer-loss ranking"),
        "deita": MethodControls(seed=False, embeddings=True,
                                threshold=Threshold("threshold", "max cos sim", 0.5, 1.0, 0.01, 0.9),
                                about="highest mean capability rating, skipping a sample whose embedding is "
                                      "more similar than the threshold to one already taken"),
        "coincide": MethodControls(embeddings=True, about="clusters of embeddings, budget spread by "
                                                          "transferability and density"),
    }


def controls_for(method: str, table: dict[str, MethodControls] | None = None) -> MethodControls:
    """The controls of ``method`` (a selector not in the table gets the seed and no options)."""
    table = builtin_controls() if table is None else table
    return table.get(method, MethodControls(about="a registered selector (budget and seed only)"))


def embeddings_available(scores, embeddings=None) -> str | None:
    """``None`` when a selector needing embeddings can get them, else the reason it cannot."""
    from kit.baselines.embeddings import how_to_make, recorded_folder

    if embeddings is not None:
        if isinstance(embeddings, (str, Path)) and not Path(embeddings).is_dir():
            return f"no embeddings folder at {embeddings}"
        return None
    if recorded_folder(scores) is None:
        return how_to_make("this selector")
    return None


def selector_options(method: str, controls: MethodControls, *, capabilities=None, threshold=None, choice=None,
                     embeddings=None) -> dict:
    """The keyword options ``kit.select`` gets for ``method`` from the explorer's control values.

    Only the controls that apply to the method are used: ``capabilities`` (an empty list means all),
    ``threshold`` (under the method's own option name), ``choice`` (e.g. ``cells=``) and ``embeddings``.
    """
    options = dict(controls.fixed)
    if controls.capabilities and capabilities:
        options["capabilities"] = list(capabilities)
    if controls.threshold is not None and threshold is not None:
        options[controls.threshold.option] = float(threshold)
    if controls.choice is not None:
        options[controls.choice.option] = controls.choice.default if choice is None else choice
    if controls.embeddings and embeddings is not None:
        options["embeddings"] = str(embeddings) if isinstance(embeddings, Path) else embeddings
    return options
