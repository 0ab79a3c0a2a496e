"""ScalSelect (arXiv 2602.11636): training-free selection by the leverage of attention-pooled vision features.

Source: the paper and its official code, https://github.com/ChangtiWu/ScalSelect (commit 74375d3):
``scripts/feature_extract.py:446-507`` (one eager forward per sample, layer-0 attention and hidden states),
``scripts/representation_utils.py:17-92`` (the representation) and ``scripts/cur.py`` with ``run_cur.sh``
(the leverage scores). For a sample run through the target VLM once (the whole conversation, its image tokens
v_1..v_m, its user tokens U = the tokens that are neither image tokens nor assistant-answer tokens)::

    A     = the layer-0 attention averaged over heads;   H = hidden_states[1], the output of decoder layer 0
    a_j   = mean_{u in U} A[u, v_j],   normalised to sum 1 (uniform when it sums to 0)
    keep  = the image tokens by a_j descending, up to and including the first where the cumulative sum
            exceeds tau (0.9); at least one
    r     = mean of H over the kept image tokens
    X     = the rows r of the pool, columns centred (the released run disables the standardising and the row
            L2-normalising that cur.py's defaults do: run_cur.sh:14-15)
    X = U S V^T,  k = the fewest singular values holding ``energy`` (0.9) of sum S^2 (searchsorted + 1)
    pi_i  = ||U[i, :k]||^2                               (the leverage score; sum pi = k)

and the selection is the N highest pi. ``kit.score(pool, "scalselect")`` (:class:`ScalSelectScorer`) writes
``scalselect`` (pi) and ``scalselect_tokens`` (how many image tokens were kept); pi depends on the whole pool, so
the scorer is ``pool_dependent`` and splits its work into ``encode`` (per shard: the representations) and
``finish`` (the SVD). :func:`select_scalselect` takes the top n by ``scalselect``, or, with ``embeddings=``
(:mod:`kit.baselines.embeddings`, e.g. the image-text scorer's), computes the same leverage on those instead.

Where the kit differs (``docs/methods.md``, "ScalSelect"): the model is the kit's small VLM (default the ``tiny``
preset's aligned base, the model being tuned, as the paper uses the target VLM before SFT); padding is masked,
so a batch larger than 1 gives the batch-1 result (the official code counts pad tokens as vision tokens when it
batches); ties are broken by pool order (the official ``torch.sort`` and the final top-N are unstable); a sample
without exactly one image gets no row and is never selected (as officially), counted in the status.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from kit.baselines.columns import descending, read_scores, unscored
from kit.scoreinfo import ScoreInfo
from kit.selection import Selection, Shortfall, resolve_budget

TAU = 0.9
ENERGY = 0.9


# ----------------------------------------------------------------------------- the representation
def kept_tokens(attention_to_vision: np.ndarray, tau: float = TAU) -> np.ndarray:
    """Indices of the image tokens kept: by attention descending (ties by position), up to and including the
    first whose cumulative share exceeds ``tau``; at least one (``representation_utils.py:57-74``)."""
    a = np.asarray(attention_to_vision, dtype=np.float64)
    total = a.sum()
    p = a / total if total > 0 else np.full(len(a), 1.0 / len(a))
    order = np.argsort(-p, kind="stable")
    count = int((np.cumsum(p[order]) <= tau).sum()) + 1
    return order[:min(max(1, count), len(a))]


def representation(attention, hidden, vision: np.ndarray, user: np.ndarray, tau: float = TAU):
    """``(r, kept count)`` of one sample: ``attention`` (T, T) averaged over heads, ``hidden`` (T, d) layer-0
    output, ``vision``/``user`` boolean masks over the T positions."""
    v = np.flatnonzero(vision)
    u = np.flatnonzero(user)
    a = attention[np.ix_(u, v)].mean(axis=0) if len(u) else np.zeros(len(v))
    keep = kept_tokens(a, tau)
    return hidden[v[keep]].mean(axis=0), len(keep)


def leverage_scores(X: np.ndarray, energy: float = ENERGY) -> tuple[np.ndarray, int]:
    """``(pi, k)``: leverage of every row of ``X`` (columns centred) on the top-k left singular vectors holding
    ``energy`` of the squared singular values (``cur.py``: ``searchsorted + 1``). float64, one BLAS thread (the
    same numbers in every process)."""
    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0, keepdims=True)
    with threadpool_limits(1, user_api="blas"):
        U, S, _ = np.linalg.svd(X, full_matrices=False)
    power = S ** 2
    if power.sum() <= 0:
        return np.zeros(len(X)), 0
    k = int(min(np.searchsorted(np.cumsum(power) / power.sum(), energy) + 1, len(S)))
    return (U[:, :k] ** 2).sum(axis=1), k


class ScalSelectScorer:
    """``kit.score(pool, "scalselect")``: see the module docstring. ``model``: a preset name (its aligned base) or
    a VLM folder; ``tau``: the attention share of the kept image tokens; ``energy``: the SVD energy kept;
    ``threads``: torch threads (1: the same numbers in every process)."""

    pool_dependent = True

    def __init__(self, model="tiny", tau: float = TAU, energy: float = ENERGY, batch_size: int = 8,
                 device: str = "cpu", threads: int | None = 1, progress: bool = True):
        if not 0 < tau <= 1 or not 0 < energy <= 1:
            raise ValueError("tau and energy must be in (0, 1]")
        self.model, self.tau, self.energy = model, float(tau), float(energy)
        self.batch_size, self.device, self.threads, self.progress = int(batch_size), device, threads, progress
        self._loaded = None

    @property
    def label(self) -> str:
        return f"ScalSelect leverage ({self.model}; layer-0 attention-pooled image tokens, tau {self.tau:g}, energy {self.energy:g})"

    short_label = "ScalSelect leverage"

    def _load(self):
        if self._loaded is None:
            from kit.finetune.train import load_model, use_attention
            from kit.quality.image_gain import resolve_model
            from kit.quality.loss import AnswerEncoder, _image_token_id

            model, processor = load_model(resolve_model(self.model), device=self.device)
            use_attention(model, "eager")                    # attention weights are returned by eager attention only
            encoder = AnswerEncoder(processor, vision=True)
            self._loaded = (model.eval(), processor, encoder, _image_token_id(model, encoder.tokenizer,
                                                                                encoder.image_token))
        return self._loaded

    def encode(self, pool) -> dict:
        """Per shard: each sample's representation ``repr`` (n, d), ``tokens`` kept and ``status``."""
        from kit.influence.scorer import torch_threads

        with torch_threads(self.threads):
            model, processor, encoder, image_id = self._load()
            d = int(getattr(model.config, "text_config", model.config).hidden_size)
            reprs = np.full((len(pool.table), d), np.nan, dtype=np.float32)
            tokens = np.zeros(len(pool.table), dtype=np.int64)
            status = self._statuses(pool, encoder)
            ok = [k for k, s in enumerate(status) if s == "ok"]
            images = pool.iter_images([pool.table.index[k] for k in ok])
            todo = []
            for k in ok:
                sid, image, error = next(images)
                if image is None:
                    status[k] = f"image_error: {error}"
                else:
                    todo.append((k, image))
            for start in range(0, len(todo), self.batch_size):
                batch = todo[start:start + self.batch_size]
                for (k, _), (r, m) in zip(batch, self._batch(pool, batch, model, processor, encoder, image_id)):
                    reprs[k], tokens[k] = r, m
        return {"repr": reprs, "tokens": tokens, "status": np.array(status, dtype=str)}

    def _statuses(self, pool, encoder) -> list[str]:
        from kit.data import image_problem

        counts = pool.table["n_images"] if "n_images" in pool.table else pd.Series(1, index=pool.table.index)
        out = []
        for sid, n_images, conv in zip(pool.table.index, counts, pool.table["conversations"]):
            problem = image_problem(n_images)
            if problem:
                out.append(f"image_error: {problem}")
                continue
            try:
                encoder.chat(conv)
                out.append("ok")
            except ValueError as exc:
                out.append(f"error: {exc}")
        return out

    def _batch(self, pool, batch, model, processor, encoder, image_id) -> list:
        """Representations of one batch (padded on the right; padding is never a user or image token)."""
        import torch

        from kit.quality.loss import expand_answer_mask

        encoded = [encoder.encode(pool.table.index[k], pool.table.iloc[k]["conversations"]) for k, _ in batch]
        tok = encoder.tokenizer
        side, tok.padding_side = tok.padding_side, "right"
        try:
            enc = processor(text=[e.text for e in encoded], images=[im for _, im in batch], padding=True,
                            add_special_tokens=False, return_tensors="pt")
        finally:
            tok.padding_side = side
        with torch.inference_mode():
            out = model(**dict(enc), output_attentions=True, output_hidden_states=True, use_cache=False)
        att = out.attentions[0].float().mean(dim=1).numpy()           # (B, T, T): layer 0, mean over heads
        hid = out.hidden_states[1].float().numpy()                       # (B, T, d): the output of layer 0
        results = []
        for b, e in enumerate(encoded):
            ids, real = enc["input_ids"][b], enc["attention_mask"][b].numpy().astype(bool)
            answer = expand_answer_mask(e, ids, enc["attention_mask"][b], image_id)
            vision = ids.numpy() == image_id
            results.append(representation(att[b], hid[b], vision & real, real & ~vision & ~answer, self.tau))
        return results

    def finish(self, ids, arrays: dict) -> tuple[pd.DataFrame, ScoreInfo]:
        """The pool-wide step: leverage scores of the valid representations."""
        X = np.asarray(arrays["repr"], dtype=np.float64)
        valid = np.isfinite(X).all(axis=1)
        pi = np.full(len(X), np.nan)
        k = 0
        if valid.any():
            pi[valid], k = leverage_scores(X[valid], self.energy)
        table = pd.DataFrame({"scalselect": pi, "scalselect_tokens": np.asarray(arrays["tokens"], dtype=np.int64)},
                             index=pd.Index(list(ids), name="id"))
        table["status"] = [str(s) for s in arrays["status"]]
        leverage = {"k": int(k), "n_rows": int(valid.sum()), "dim": int(X.shape[1]), "tau": self.tau,
                    "energy": self.energy}
        return table, ScoreInfo(columns=("scalselect",), label=self.label, short_label=self.short_label,
                                details={"scalselect": leverage})

    def score(self, pool) -> tuple[pd.DataFrame, ScoreInfo]:
        return self.finish(pool.table.index, self.encode(pool))


# ----------------------------------------------------------------------------- the selector
def select_scalselect(scores: pd.DataFrame, n, seed: int = 0, column: str = "scalselect", embeddings=None,
                      use: str | None = None, energy: float = ENERGY) -> Selection:
    """The ``n`` samples (a count or a fraction) of highest leverage (ties by pool order): the ``column`` made by
    :class:`ScalSelectScorer`, or, with ``embeddings=`` (an array, a DataFrame by id or the image-text scorer's
    folder; ``use`` picks its part), the leverage of those embeddings' rows computed here (``energy``).
    Deterministic (``seed`` is not used)."""
    n = resolve_budget(n, len(scores))
    resolved: dict = {"energy": float(energy)}
    if embeddings is not None:
        from kit.baselines.embeddings import resolve_embeddings

        emb = resolve_embeddings(scores, embeddings, use, selector="scalselect")
        values = np.full(len(scores), np.nan)
        if emb.valid.any():
            values[emb.valid], k = leverage_scores(emb.matrix[emb.valid], energy)
            resolved["k"] = int(k)
        resolved.update({"source": "embeddings", "embeddings": emb.info()})
    else:
        values = read_scores(scores, column, "scalselect")
        resolved.update({"source": "column", "column": column})
    rows = np.flatnonzero(np.isfinite(values))
    chosen = descending(values, rows)[:n]
    notes = [unscored(len(scores) - len(rows), "a leverage score")] if len(rows) < len(scores) else []
    short = Shortfall(n, len(chosen), f"only {len(rows)} samples have a leverage score") if len(chosen) < n else None
    return Selection(scores.index[chosen].tolist(), method="scalselect", resolved=resolved, seed=seed, budget=n,
                     notes=notes, shortfall=short)
