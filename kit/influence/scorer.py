"""Gradient influence toward target tasks (LESS / ICONS): ``kit.score(pool, "influence")``.

Sources: Xia et al., *LESS: Selecting Influential Data for Targeted Instruction Tuning*, arXiv 2402.04333
(code: https://github.com/princeton-nlp/LESS); Wu et al., *ICONS: Influence Consensus for Vision-Language Data
Selection*, arXiv 2501.00654 (code: https://github.com/princetonvisualai/icons). For a pool sample z, a task t
with target questions z'_1..z'_m (dev side only) and a model warmed briefly on a random slice of the pool::

    x(z)   = P Gamma(z)        Gamma: the sample's gradient of its mean answer-token loss over the trainable
                               parameters (SGD, ICONS; or Adam-preconditioned, LESS), P a seeded projection
    y(z')  = P g(z')           g: the plain SGD gradient (LESS and ICONS alike)
    s_t(z) = (1/m) sum_j cos(x(z), y(z'_j))  =  x^(z) . mean_j y^(z'_j)

(LESS ``less/data_selection/matching.py:45-79`` with one checkpoint; ICONS ``icons/influence_matrix.py:14`` and
the row mean ``icons/generalist.py:23``). The last form is the cosine to the task's mean unit target gradient
times that mean's norm, a per-task constant, so each task's ranking (and ICONS's per-task vote) is that of the
cosine to the task's mean target gradient. The table has one column ``influence_<task>`` per task (``yes/no`` ->
``influence_yes_no``) and ``status``; :func:`kit.baselines.influence.select_influence` selects from them (ICONS's
vote, LESS's max, or one task).

Steps (each in its own module): the warm-up (:mod:`kit.influence.warmup`: 5% of the pool, 4 epochs, the
preset's parts or LoRA, Adam moments kept), the target set (:mod:`kit.influence.targets`), per-sample gradients
from one batched backward (:mod:`kit.influence.gradients`) and a seeded sparse projection
(:mod:`kit.influence.projection`). Where the kit differs from LESS and ICONS, and why: ``docs/methods.md``,
"Gradient influence".

**Sharding.** A sample's score depends on the rest of the pool only through the warm-up, so the scorer is
``pool_dependent`` and splits its work into ``encode`` (per shard: gradient features and their cosines to the
targets) and ``finish`` (assembling the table): ``kit score POOL influence --out DIR`` is sharded, resumable and
runs on Ray like the other scorers. The warm-up slice is drawn from the pool *file* the samples come from
(``pool.path``; ``warmup_pool=`` names another), so that every shard and every worker warms the same model
(cached under ``$KIT_CACHE/influence/``); a pool held in memory without a file warms on the samples it is given,
so score it in one piece.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from kit.scoreinfo import ScoreInfo

GRADIENTS = ("sgd", "adam")
WARMUPS = ("pool", "none")
_POOLS: dict = {}          # warm-up pools read from files, by path (one read per process)


@contextmanager
def torch_threads(n: int | None):
    """Run torch on ``n`` threads inside the block (``None``: as it is); the count is restored after."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class InfluenceScorer:
    """Per-task gradient influence of every pool sample (see the module docstring).

    ``model``: a preset name (``"tiny"``, default: its aligned base, warmed as the preset trains) or a model
    folder (a kit base trains as its preset; any other Hugging Face model with that preset's config, LoRA by
    default). ``targets``/``per_task``/``target_seed``: the target set (:mod:`kit.influence.targets`: ``"easyvqa"``
    question types or ``"testbed"`` families, dev side, ``per_task`` questions each). ``warmup``: ``"pool"``
    (default), ``"none"`` (the model as it is; SGD only) or a warm-state file; ``warmup_fraction`` (0.05, LESS),
    ``warmup_epochs`` (4, LESS), ``warmup_pool`` (a pool file to draw the slice from). ``gradients``: ``"sgd"``
    (ICONS, default) or ``"adam"`` (LESS). ``dim``/``projection``/``nnz``: the projection
    (:class:`kit.influence.projection.Projector`; 8192 as LESS, sparse). ``lora``: ``None`` = the preset's choice
    (LoRA for a model that is not a kit preset's). ``seed`` seeds the warm-up slice, its training and the
    projection. ``threads``: torch threads (1 by default: the same numbers in every process).
    """

    pool_dependent = True

    def __init__(self, model="tiny", targets="easyvqa", per_task: int = 8, target_seed: int = 0,
                 warmup="pool", warmup_fraction: float = 0.05, warmup_epochs: float = 4.0, warmup_pool=None,
                 gradients: str = "sgd", dim: int = 8192, projection: str = "sparse", nnz: int = 1,
                 lora: bool | None = None, seed: int = 0, batch_size: int = 16, threads: int | None = 1,
                 device: str = "cpu", progress: bool = True):
        from kit.influence.projection import KINDS

        if gradients not in GRADIENTS:
            raise ValueError(f"gradients must be one of {', '.join(map(repr, GRADIENTS))}, not {gradients!r}")
        if projection not in KINDS:
            raise ValueError(f"projection must be one of {', '.join(map(repr, KINDS))}, not {projection!r}")
        if isinstance(warmup, str) and warmup not in WARMUPS and not Path(warmup).is_file():
            raise ValueError(f"warmup must be 'pool', 'none' or a warm-state file, not {warmup!r}")
        if warmup == "none" and gradients == "adam":
            raise ValueError("gradients='adam' preconditions with the warm-up's Adam moments: it needs a warm-up")
        if device != "cpu":
            raise NotImplementedError("the influence scorer runs on the CPU for now (device='cpu')")
        if int(batch_size) < 1 or int(per_task) < 1:
            raise ValueError("batch_size and per_task must be at least 1")
        self.model_arg, self.targets, self.per_task, self.target_seed = model, targets, int(per_task), int(target_seed)
        self.warmup, self.warmup_fraction, self.warmup_epochs = warmup, float(warmup_fraction), float(warmup_epochs)
        self.warmup_pool, self.gradients, self.lora_arg = warmup_pool, gradients, lora
        self.dim, self.projection, self.nnz, self.seed = int(dim), projection, int(nnz), int(seed)
        self.batch_size, self.threads, self.progress = int(batch_size), threads, progress
        self._ready = False

    # ----------------------------------------------------------------- labels
    @property
    def label(self) -> str:
        if not self._ready:
            return "gradient influence"
        w = self.info["warmup"]
        warm = ("not warmed" if w is None else f"warmed on {w['n_samples']} pool samples, {w['steps']} steps"
                + (", LoRA" if w.get("lora") else ""))
        return (f"gradient influence ({self.info['model']}, {warm}; {self.gradients.upper()} gradients, "
                f"{self.projection} {self.dim}-d projection; targets: {self.info['targets_text']})")

    short_label = "influence"

    # ----------------------------------------------------------------- setup
    def _preset_and_base(self):
        from kit.finetune import base_model
        from kit.finetune.presets import PRESETS, resolve_preset

        if isinstance(self.model_arg, str) and self.model_arg in PRESETS:
            p = resolve_preset(self.model_arg)
            return p, Path(base_model(p)), p.train.lora if self.lora_arg is None else bool(self.lora_arg)
        folder = Path(self.model_arg)
        if not folder.is_dir():
            raise FileNotFoundError(f"influence: model {self.model_arg!r} is neither a preset "
                                    f"({', '.join(PRESETS)}) nor a model folder")
        p = resolve_preset(str(folder))
        from_kit = (folder / "kit_base.json").is_file()
        lora = (p.train.lora if from_kit else True) if self.lora_arg is None else bool(self.lora_arg)
        return p, folder, lora

    def _warm_pool(self, pool):
        """The pool the warm-up slice is drawn from (see the module docstring)."""
        import kit

        path = self.warmup_pool or getattr(pool, "path", None)
        if path is None:
            return pool
        key = (str(Path(path).resolve()), str(getattr(pool, "image_root", None)) if not self.warmup_pool else None)
        if key not in _POOLS:
            images = None if self.warmup_pool else getattr(pool, "image_root", None)
            _POOLS[key] = kit.load_pool(path, images=images, check_images=False)
        return _POOLS[key]

    def _warm_state(self, pool, p, base, lora, encoder):
        """The warm-up's :class:`~kit.influence.warmup.WarmState`: read from a file or the cache, else trained."""
        from kit.finetune.train import load_model
        from kit.influence import warmup as wu
        from kit.provenance import table_hash

        if self.warmup not in WARMUPS:
            return wu.load_state(self.warmup)
        warm_pool = self._warm_pool(pool)
        ids = wu.warm_slice(warm_pool.table.index, self.warmup_fraction, self.seed)
        key = {"version": 1, "base": wu.model_fingerprint(base), "train": p.train.to_dict(), "lora": lora,
               "samples": table_hash(warm_pool.table.loc[ids, ["image", "conversations"]]),
               "epochs": self.warmup_epochs, "seed": self.seed}
        path = wu.cache_path(key)
        if path.is_file():
            return wu.load_state(path)
        examples, _ = encoder.encode_pool(warm_pool, ids)
        if not examples:
            raise ValueError("influence: none of the warm-up slice's samples can be trained on")
        model, _ = load_model(base)
        _, state = wu.warm_up(model, encoder, examples, p.train, seed=self.seed, epochs=self.warmup_epochs,
                              lora=lora, progress=self.progress)
        state.info["pool"] = str(getattr(warm_pool, "path", None))
        wu.save_state(state, path)
        return state

    def _prepare(self, pool):
        """Warm the model, build the feature extractor and the targets' mean unit gradients (once)."""
        if self._ready:
            return
        from kit.finetune.data import ExampleEncoder
        from kit.finetune.train import load_model
        from kit.influence import warmup as wu
        from kit.influence.gradients import GradientFeatures
        from kit.influence.projection import Projector
        from kit.influence.targets import describe, target_table

        t0 = time.perf_counter()
        p, base, lora = self._preset_and_base()
        model, processor = load_model(base)
        vision = getattr(model.config, "vision_config", None) is not None
        self._encoder_args = (processor, vision, p.train.train_end_token, p.train.max_length)
        state = None if self.warmup == "none" else self._warm_state(pool, p, base, lora, self._new_encoder())
        model = (wu.prepare_trainable(model, p.train, lora, self.seed) if state is None
                 else wu.apply_state(model, state, p.train, self.seed))
        projector = Projector(self.dim, self.projection, self.seed, self.nnz)
        adam = state.adam() if (state is not None and self.gradients == "adam") else None
        self._pool_features = GradientFeatures(model, projector, adam=adam)
        self._target_features = GradientFeatures(model, projector) if adam is not None else self._pool_features
        targets = target_table(self.targets, self.per_task, self.target_seed)
        self._tasks = list(targets.attrs["tasks"])
        self._task_means = self._target_means(targets)
        self.info = {"model": str(base), "preset": p.name, "lora": lora, "targets": dict(targets.attrs),
                     "targets_text": describe(targets), "warmup": None if state is None else dict(state.info),
                     "features": self._pool_features.info(), "prepare_seconds": round(time.perf_counter() - t0, 2)}
        self._ready = True

    def _new_encoder(self):
        from kit.finetune.data import ExampleEncoder

        processor, vision, end, max_length = self._encoder_args
        return ExampleEncoder(processor, vision=vision, train_end_token=end, max_length=max_length)

    def _target_means(self, targets: pd.DataFrame) -> np.ndarray:
        """(tasks, dim): each task's mean of unit target gradients (SGD)."""
        from kit.data import decode_image
        from kit.influence.targets import conversation

        encoder = self._new_encoder()
        examples = [encoder.encode(qid, conversation(r.question, r.answer), decode_image(r.image_path))
                    for qid, r in targets.iterrows()]
        unit = self._features(self._target_features, encoder, examples)
        tasks = targets["task"].to_numpy()
        return np.stack([unit[tasks == t].mean(axis=0) for t in self._tasks])

    # ----------------------------------------------------------------- features
    def _features(self, extractor, encoder, examples) -> np.ndarray:
        """Unit rows of projected gradients (float64), batches of ``batch_size`` in the order given."""
        import torch

        from kit.influence.gradients import PerSampleError, unit_rows

        rows = []
        for start in range(0, len(examples), self.batch_size):
            batch = examples[start:start + self.batch_size]
            try:
                feats, _ = extractor(*encoder.collate(batch))
            except PerSampleError:                 # leading dimensions not per sample: one at a time
                feats = torch.cat([extractor(*encoder.collate([e]))[0] for e in batch])
            rows.append(unit_rows(feats).double().numpy())
        return np.concatenate(rows) if rows else np.zeros((0, self.dim))

    # ----------------------------------------------------------------- the scorer protocol
    def encode(self, pool) -> dict:
        """Per shard: each sample's per-task influence (``scores``, (n, tasks)) and ``status``."""
        from tqdm.auto import tqdm

        with torch_threads(self.threads):
            self._prepare(pool)
            encoder = self._new_encoder()
            examples, rejected = encoder.encode_pool(pool, progress=False)
            scores = np.full((len(pool.table), len(self._tasks)), np.nan)
            where = {sid: k for k, sid in enumerate(pool.table.index)}
            bar = tqdm(total=len(examples), desc="influence", unit="sample", disable=not self.progress)
            for start in range(0, len(examples), 64 * self.batch_size):
                part = examples[start:start + 64 * self.batch_size]
                unit = self._features(self._pool_features, encoder, part)
                scores[[where[e.sid] for e in part]] = unit @ self._task_means.T
                bar.update(len(part))
            bar.close()
        status = np.array([f"error: {rejected[sid]}" if sid in rejected else "ok" for sid in pool.table.index],
                          dtype=str)
        return {"scores": scores, "status": status}

    def task_names(self) -> list:
        """The target set's tasks, in column order (read from the target set when the model is not loaded here,
        e.g. when the shards were encoded by other workers)."""
        if self._ready:
            return list(self._tasks)
        from kit.influence.targets import target_table

        return list(target_table(self.targets, self.per_task, self.target_seed).attrs["tasks"])

    def finish(self, ids, arrays: dict) -> tuple[pd.DataFrame, ScoreInfo]:
        from kit.influence.targets import column_name

        columns = [column_name(t) for t in self.task_names()]
        table = pd.DataFrame(np.asarray(arrays["scores"], dtype=np.float64).reshape(len(ids), len(columns)),
                             columns=columns, index=pd.Index(list(ids), name="id"))
        table["status"] = [str(s) for s in arrays["status"]]
        return table, ScoreInfo(columns=columns, label=self.label, short_label=self.short_label,
                                details={"influence": getattr(self, "info", {})})

    def score(self, pool) -> tuple[pd.DataFrame, ScoreInfo]:
        return self.finish(pool.table.index, self.encode(pool))
