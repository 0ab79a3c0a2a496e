"""Seeded random projections of per-sample gradients, block by block, without a huge dense matrix.

LESS and ICONS project each sample's gradient g (D numbers: the trainable parameters) to P dimensions with one
Rademacher matrix R (D x P, entries +-1/sqrt(P); TRAK's ``BasicProjector``, seed 0, the same matrix for the pool
and the target set: LESS ``less/data_selection/collect_grad_reps.py:160-215``) and then compare the projected rows
by cosine. The kit keeps that idea and never builds R whole: the gradient arrives one parameter tensor (a
*block*) at a time, and each block b gets its own part R_b, generated from ``(seed, block name)`` alone, so a
block projects the same way in any process, shard or order, and ``g R = sum_b g_b R_b``.

Two kinds (``kind=``):

``"sparse"`` (default)  a count sketch / sparse JL transform (Kane & Nelson, 2014): each input coordinate goes to
                        ``nnz`` output coordinates drawn uniformly, each with a random sign and weight
                        1/sqrt(nnz). Inner products are preserved in expectation, as with the dense matrix, at a
                        cost of ``nnz`` additions per parameter: O(D), independent of P. This is what keeps the
                        projection below a forward-backward on a model whose every weight is trained
                        (``benchmarks/bench_influence.py`` measures both kinds).
``"dense"``             the LESS/TRAK projection: R_b with independent +-1/sqrt(P) entries (generated in row chunks
                        and kept in memory up to ``cache_mb``, else regenerated), D x P multiply-adds per sample.
                        Equal in distribution to TRAK's one matrix (a block of rows of a Rademacher matrix is one);
                        not the same numbers (TRAK's CUDA kernel draws them otherwise).

The scale of either cancels in the cosine. The kit's choice of the sparse kind, and why, is in
``docs/methods.md`` ("Gradient influence").
"""
from __future__ import annotations

import math
import zlib

KINDS = ("sparse", "dense")
_ROWS = 4096            # rows of a dense block generated at once


def block_seed(seed: int, name: str, part: int = 0) -> int:
    """A 63-bit generator seed for block ``name`` (and row chunk ``part``): stable across processes and platforms
    (CRC-32, not Python's salted ``hash``)."""
    return (int(seed) * 1_000_003 + zlib.crc32(f"{name}#{part}".encode())) % (2 ** 63 - 1)


class Projector:
    """Project per-sample gradient blocks (``(B, n)`` tensors named by their parameter) to ``dim`` dimensions.

    ``project(name, block, out)`` adds the block's projection into ``out`` (``(B, dim)``, float32). The random
    part of each block depends on ``(seed, name, n)`` only.
    """

    def __init__(self, dim: int = 8192, kind: str = "sparse", seed: int = 0, nnz: int = 1, cache_mb: int = 512):
        if kind not in KINDS:
            raise ValueError(f"projection must be one of {', '.join(map(repr, KINDS))}, not {kind!r}")
        if int(dim) < 1:
            raise ValueError(f"the projection dimension must be at least 1, not {dim}")
        if int(nnz) < 1 or int(nnz) > int(dim):
            raise ValueError(f"nnz must be between 1 and dim ({dim}), not {nnz}")
        self.dim, self.kind, self.seed, self.nnz = int(dim), kind, int(seed), int(nnz)
        self.cache_bytes = int(cache_mb) * 2 ** 20
        self._cached = 0
        self._sparse: dict = {}
        self._dense: dict = {}

    def info(self) -> dict:
        return {"dim": self.dim, "kind": self.kind, "seed": self.seed, **({"nnz": self.nnz} if self.kind == "sparse"
                                                                          else {})}

    # ----------------------------------------------------------------- sparse
    def _sparse_map(self, name: str, n: int):
        import torch

        key = (name, n)
        if key not in self._sparse:
            g = torch.Generator().manual_seed(block_seed(self.seed, name))
            buckets = torch.randint(0, self.dim, (self.nnz, n), generator=g)
            signs = (torch.randint(0, 2, (self.nnz, n), generator=g) * 2 - 1).to(torch.float32)
            self._sparse[key] = (buckets, signs / math.sqrt(self.nnz))
        return self._sparse[key]

    # ----------------------------------------------------------------- dense
    def _dense_rows(self, name: str, n: int, part: int):
        import torch

        key = (name, n, part)
        if key in self._dense:
            return self._dense[key]
        rows = min(_ROWS, n - part * _ROWS)
        g = torch.Generator().manual_seed(block_seed(self.seed, name, part))
        R = (torch.randint(0, 2, (rows, self.dim), generator=g, dtype=torch.int8) * 2 - 1).to(torch.float32)
        R /= math.sqrt(self.dim)
        if self._cached + R.numel() * 4 <= self.cache_bytes:
            self._dense[key] = R
            self._cached += R.numel() * 4
        return R

    def project(self, name: str, block, out) -> None:
        """``out += block @ R_name`` for a ``(B, n)`` block (any float dtype; computed in float32)."""
        block = block.reshape(block.shape[0], -1).to(out.dtype)
        n = block.shape[1]
        if self.kind == "sparse":
            buckets, signs = self._sparse_map(name, n)
            for j in range(self.nnz):
                out.index_add_(1, buckets[j], block * signs[j])
            return
        for part in range(math.ceil(n / _ROWS)):
            lo = part * _ROWS
            R = self._dense_rows(name, n, part)
            out.addmm_(block[:, lo:lo + R.shape[0]], R)
