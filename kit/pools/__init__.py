"""Sample pools with known truth: the committed ``data_samples/`` pool and larger easy-vqa pools.

    python -m kit.pools build data_samples/            # rebuild the committed pool, byte for byte
    python -m kit.pools easyvqa OUT --n 5000 --mismatch 0.05 --wrong-answer 0.05 \\
        --truncated 0.02 --duplicate 0.02 --seed 0     # a larger easy-vqa pool for experiments
    python -m kit.pools distill runs/distill_pool      # the distilled rich scorer's training pool (kit.pools.distill)

Modules, one job each: ``labels`` (capability keys, style names, defect kinds), ``sample`` (the
sample record and the pool.json / labels.csv writers), ``imaging`` (deterministic image I/O),
``easyvqa`` (easy-vqa truth and templates), ``photos`` (hand-written Q/A on offline photos),
``charts`` / ``documents`` / ``stem`` / ``panels`` (rendered samples, gathered by ``rendered``),
``defects`` (planting defects), ``build`` (assembling pools), ``distill`` (the training pool of the
shipped distilled head, apart from data_samples/), ``readme`` (the data card).
"""
from kit.pools.labels import CAPABILITIES, DEFECTS, LABEL_COLUMNS, STYLES
from kit.eval.labels import load_labels  # noqa: F401 - re-exported for convenience

__all__ = ["CAPABILITIES", "STYLES", "DEFECTS", "LABEL_COLUMNS", "build_sample_pool", "build_easyvqa_pool",
           "load_labels"]


def build_sample_pool(out_dir="data_samples", seed: int = 0, progress: bool = True):
    """Rebuild the committed sample pool into ``out_dir``; see :mod:`kit.pools.build`."""
    from kit.pools.build import build_sample_pool as _build

    return _build(out_dir, seed=seed, progress=progress)


def build_easyvqa_pool(out_dir, n: int = 1000, rates=None, seed: int = 0, split: str = "train",
                       templates=None, exclude_pool=None, reserved: bool = False, progress: bool = True):
    """Write a larger easy-vqa pool with chosen defect rates; see :mod:`kit.pools.build`."""
    from kit.pools.build import build_easyvqa_pool as _build

    return _build(out_dir, n=n, rates=rates, seed=seed, split=split, templates=templates,
                  exclude_pool=exclude_pool, reserved=reserved, progress=progress)
