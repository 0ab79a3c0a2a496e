"""The newer methods in an ablation: the score table they need, and a command that runs their grid.

:data:`kit.experiments.ablation.NEEDS` names the scorer each newer method reads (``influence``, ``cvs``,
``scalselect``), but :func:`kit.experiments.ablation.default_scorers` builds only the four default scorers, so an
ablation of these methods passes its score table explicitly: :func:`scorers_for` gives the defaults plus, for each
newer method asked for, its scorer on the aligned base every run starts from (the model being tuned, before
instruction tuning, as for the answer loss)::

    from kit.experiments import ablate
    from kit.experiments.newer import scorers_for

    methods = ["random", "influence", "cvs", "scalselect"]
    ablate(pool, methods, scorers=scorers_for(methods, "tiny", base=base, targets="easyvqa"), out=...)

``targets`` is the influence target set (``"easyvqa"``: easy-vqa's question types on the train split's dev slice;
``"testbed"``: the testbed's families on their dev side; :mod:`kit.influence.targets`), ``per_task`` questions of
each. Command line (easy-vqa; also ``python -m kit.experiments.newer``, :mod:`kit.commands.ablate_newer`)::

    kit ablate-newer runs/easyvqa_pool/pool.json --out runs/ablation_newer \\
        --methods random influence cvs scalselect --budgets 0.1 0.3 --seeds 0 1 2 --threads 1
"""
from __future__ import annotations

NEWER = ("influence", "cvs", "scalselect")


def scorers_for(methods, preset="tiny", base=None, targets: str = "easyvqa", per_task: int = 8) -> dict:
    """:func:`~kit.experiments.ablation.default_scorers` for ``methods`` plus the newer methods' scorers, each on
    ``base`` (default: the preset's aligned base)."""
    from kit.experiments.ablation import default_scorers
    from kit.finetune import base_model

    base = str(base if base is not None else base_model(preset))
    scorers = default_scorers(preset, [m for m in methods if m not in NEWER], base=base)
    if not [m for m in methods if m not in NEWER and m not in ("random", "full")]:
        scorers = {}                  # random and full read no score: score only what the newer methods need
    for m in methods:
        if m == "influence":
            scorers["influence"] = {"model": base, "targets": targets, "per_task": int(per_task)}
        elif m in ("cvs", "scalselect"):
            scorers[m] = {"model": base}
    return scorers


if __name__ == "__main__":  # python -m kit.experiments.newer: an alias of kit ablate-newer
    from kit.cli import alias

    raise SystemExit(alias("ablate-newer"))
