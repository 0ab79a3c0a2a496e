"""The testbed's learnability gate: train on a balanced clean pool, then per-family dev accuracy against the
family's majority-answer and image-blind rates (a family passes at its majority rate plus a margin).

example: kit testbed-gate --out runs/testbed/gate

Also ``python -m kit.experiments testbed-gate ...``.
"""
from __future__ import annotations


def add_arguments(g) -> None:
    g.add_argument("--out", required=True)
    g.add_argument("--n", type=int, default=2000, help="size of the balanced clean pool trained on")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--per-family", type=int, default=150, help="dev questions per family")


def run(args) -> int:
    from kit.experiments.testbed import gate

    table = gate(args.out, n=args.n, seed=args.seed, per_family=args.per_family)
    print(table.round(3).to_string())
    print(f"{int(table['passes'].sum())} of {len(table)} families pass; written to {args.out}/gate.csv")
    return 0
