"""Cheap scorers registered for tests of the scoring machinery (sharding, resuming, Ray, the CLI).

Importing this module registers them: ``test_slow`` (per-sample, a little slow on purpose so that a
test can kill it mid-run), ``test_centred`` (pool-dependent, with the ``encode``/``finish`` split) and
``test_centred_whole`` (pool-dependent without it).
"""
from __future__ import annotations

import hashlib
import time

import numpy as np
import pandas as pd

import kit


def _h(sid) -> float:
    return int(hashlib.sha1(str(sid).encode()).hexdigest()[:8], 16) / 16 ** 8


@kit.register_scorer("test_slow", overwrite=True)
class SlowScorer:
    """chars (int), h (float from the id), tags (a list) and status; sleeps ``delay`` seconds per sample."""

    def __init__(self, delay: float = 0.002, scale: float = 1.0, progress: bool = True):
        self.delay, self.scale = float(delay), float(scale)

    def score(self, pool):
        t = pool.table
        time.sleep(self.delay * len(t))
        out = pd.DataFrame({"chars": t["text_chars"].astype("int64"), "h": [_h(i) * self.scale for i in t.index],
                            "tags": [[str(s)[:2], f"{n}"] for s, n in zip(t["source"], t["n_turns"])],
                            "status": ["ok" if c < 400 else "long" for c in t["text_chars"]]}, index=t.index)
        return out, kit.ScoreInfo(columns=["chars", "h", "tags"])


class _Centred:
    pool_dependent = True

    def __init__(self, progress: bool = True):
        pass

    def score(self, pool):
        return self.finish(list(pool.table.index), self.encode(pool))

    def encode(self, pool):
        return {"chars": pool.table["text_chars"].to_numpy(np.float64)}

    def finish(self, ids, arrays):
        x = arrays["chars"]
        return pd.DataFrame({"centred": x - x.mean(), "rank": pd.Series(x).rank().to_numpy()},
                            index=pd.Index(ids, name="id"))


@kit.register_scorer("test_centred", overwrite=True)
class CentredScorer(_Centred):
    """text_chars minus the pool mean, and its rank in the pool: a pool-dependent score with encode/finish."""


@kit.register_scorer("test_centred_whole", overwrite=True)
class CentredWholeScorer(_Centred):
    """The same score without the encode/finish split: scored in one piece when sharded."""

    encode = None
    finish_ = _Centred.finish

    def score(self, pool):
        return self.finish_(list(pool.table.index), {"chars": pool.table["text_chars"].to_numpy(np.float64)})
