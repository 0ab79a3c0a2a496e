"""Scoring on a Ray cluster with Ray Data: the same shards and manifest as the single-machine path.

    from kit.distributed import score_ray
    run = score_ray("pool.jsonl", "loss", "scores/loss")                   # a local Ray instance
    run = score_ray(pool, "loss", "scores/loss", address="auto", model="...")  # a running cluster
    table = kit.load_scores("scores/loss")

The driver (this process) reads and validates the pool, works out which shards are still to do (exactly
as :func:`kit.scoring.score_shards` does, so a folder started on one machine resumes on a cluster and
the other way round) and hands them to ``Dataset.map_batches`` with an actor pool: each actor builds
the scorer once (one model per actor) and scores one shard per call; a GPU per actor when the cluster
has GPUs (``device="cuda"`` is then passed to scorers that take a ``device``, unless you set one). The
results come back to the driver as parquet bytes, which writes the shard files and the manifest itself:
workers need to read the images (a shared file system, or the same paths on every node) but not write
anywhere. A pool-dependent scorer with ``encode``/``finish`` (the image-text scorer) encodes on the
actors and finishes once on the driver; one without them is scored in one piece on the driver.

``docs/scale.md`` says how to point this at a cluster. Ray is imported only here (``import kit`` does
not import it).
"""
from __future__ import annotations

import inspect
import pickle
from typing import Iterator

from kit.scoring import ScoreRun, ShardResult, ShardTask, make_scorer, run_task, score_shards


class RayUnavailable(RuntimeError):
    """Ray is not installed, or a local Ray instance could not start."""


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable('Ray Data is not installed: pip install "ray[data]"') from None
    return ray


# Optional modules that make every Ray process slow to start. jsonschema (which Ray imports in each of its
# processes) imports rfc3987_syntax when it is installed (Jupyter's jupyter-events pulls it in), and that
# module builds a Lark grammar at import: about 7 s of CPU, measured 13.4 s vs 3.8 s for
# `import ray.dashboard.agent` on 2 loaded cores. Ray's raylet waits only 15 s for its dashboard agent
# (ray-project/ray#65983), so on a small, busy machine a local instance then fails to start.
SLOW_IMPORTS = ("rfc3987_syntax",)


def _shadow_dir() -> str:
    """A folder of stand-in modules that raise ImportError, so the optional slow imports are skipped."""
    import os
    import tempfile

    folder = os.path.join(tempfile.gettempdir(), "kit-ray-shadow")
    os.makedirs(folder, exist_ok=True)
    for name in SLOW_IMPORTS:
        path = os.path.join(folder, f"{name}.py")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(f'raise ImportError("{name} is skipped in Ray processes started by kit.distributed")\n')
    return folder


def connect(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
            runtime_env: dict | None = None, retries: int = 1, skip_slow_imports: bool = True):
    """Connect to Ray: the cluster at ``address`` (``"auto"``, ``"ray://head:10001"``, ...; default: the
    ``RAY_ADDRESS`` environment variable), or else a new local instance.

    Does nothing when Ray is already initialised in this process. A local instance that fails to start
    is tried ``retries`` more times (Ray's raylet gives up when its agents take over 15 s to start,
    which happens on a heavily loaded machine) and then raises :class:`RayUnavailable`. With
    ``skip_slow_imports`` the processes of a local instance do not import :data:`SLOW_IMPORTS` (optional
    modules Ray never needs; see there), which brings a Ray process's start-up from about 13 s to 4 s on
    2 loaded cores.
    """
    import logging
    import os

    ray = _ray()
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None  # Ray's own convention for a running cluster

    common = {"include_dashboard": False, "log_to_driver": False, "runtime_env": runtime_env,
              "logging_level": logging.WARNING}
    if address is not None:
        ray.init(address=address, **{k: v for k, v in common.items() if k != "include_dashboard"})
        return ray
    last = None
    saved = os.environ.get("PYTHONPATH")
    if skip_slow_imports:  # the Ray processes inherit this environment (and pass it on to their workers)
        os.environ["PYTHONPATH"] = os.pathsep.join([_shadow_dir(), *([saved] if saved else [])])
    try:
        for _ in range(retries + 1):
            try:
                ray.init(num_cpus=num_cpus, num_gpus=num_gpus, **common)
                return ray
            except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception on a failed start
                last = exc
                try:
                    ray.shutdown()
                except Exception:  # noqa: BLE001
                    pass
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    raise RayUnavailable(f"a local Ray instance could not start (its raylet waits 15 s for its agents, "
                         f"ray-project/ray#65983; a heavily loaded machine can be slower): {last}") from last


class ShardWorker:
    """The actor of the actor pool: builds the scorer once, then scores (or encodes) one shard per call."""

    def __init__(self, scorer_cls, name: str, options: dict, mode: str):
        from kit.registry import SCORERS

        self.name, self.options, self.mode = name, options, mode
        if name not in SCORERS:  # a scorer registered in the driver only: its class came along (pickled)
            SCORERS.add(name, scorer_cls)
        self.scorer = make_scorer(name, options, quiet=True)

    def __call__(self, batch):
        out = {k: [] for k in ("index", "start", "ids", "data", "content", "seconds", "info")}
        for index, start, payload, content in zip(batch["index"], batch["start"], batch["payload"], batch["content"]):
            from kit.data import Pool

            table = pickle.loads(payload)
            chunk = Pool(table, _empty_report(), None, None, len(table))
            result = run_task(self.scorer, self.name, self.options, self.mode,
                              ShardTask(int(index), int(start), chunk, str(content)))
            out["index"].append(result.index)
            out["start"].append(result.start)
            out["ids"].append(pickle.dumps(result.ids))
            out["data"].append(result.data)
            out["content"].append(result.content)
            out["seconds"].append(result.seconds)
            out["info"].append(pickle.dumps(result.info))
        return out


def _empty_report():
    import pandas as pd

    from kit.data import REPORT_COLUMNS

    return pd.DataFrame(columns=REPORT_COLUMNS)


def ray_executor(num_actors: int | None = None, cpus_per_actor: float = 1, gpus_per_actor: float = 0,
                 progress: bool = False):
    """An executor for :func:`kit.scoring.score_shards` that runs the shards on Ray Data actors."""
    def factory(scorer, name: str, options: dict, mode: str):
        ray = _ray()
        from kit.registry import SCORERS

        scorer_cls = SCORERS.get(name)

        def execute(tasks: Iterator[ShardTask]) -> Iterator[ShardResult]:
            items = [{"index": t.index, "start": t.start, "content": t.content,
                      "payload": pickle.dumps(t.chunk.table, protocol=pickle.HIGHEST_PROTOCOL)} for t in tasks]
            if not items:
                return
            import warnings

            with warnings.catch_warnings():  # Ray's own deprecation notices about its settings
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx = ray.data.DataContext.get_current()
            if not progress:  # Ray Data logs each execution's start and end at INFO
                import logging

                logging.getLogger("ray.data").setLevel(logging.WARNING)
            ctx.enable_progress_bars = bool(progress)
            ctx.print_on_execution_start = bool(progress)
            resources = ray.cluster_resources()
            if gpus_per_actor:
                size = int(resources.get("GPU", 0) // gpus_per_actor)
            else:
                size = int(resources.get("CPU", 1) // max(cpus_per_actor, 1e-9))
            size = max(1, min(num_actors or size or 1, len(items)))
            ds = ray.data.from_items(items, override_num_blocks=len(items))
            ds = ds.map_batches(ShardWorker, fn_constructor_kwargs={"scorer_cls": scorer_cls, "name": name,
                                                                    "options": options, "mode": mode},
                                batch_size=1, compute=ray.data.ActorPoolStrategy(size=size),
                                num_cpus=cpus_per_actor, num_gpus=gpus_per_actor or None)
            for row in ds.iter_rows():
                yield ShardResult(int(row["index"]), int(row["start"]), pickle.loads(row["ids"]), bytes(row["data"]),
                                  str(row["content"]), float(row["seconds"]), pickle.loads(row["info"]))
        return execute
    return factory


def _takes_device(name: str) -> bool:
    from kit.registry import SCORERS

    try:
        params = inspect.signature(SCORERS.get(name)).parameters
    except (TypeError, ValueError):
        return False
    return "device" in params


def score_ray(pool, name: str, out, *, shard_size: int | None = None, on_mismatch: str = "error",
              address: str | None = None, num_actors: int | None = None, cpus_per_actor: float = 1,
              gpus_per_actor: float | None = None, num_cpus: int | None = None, runtime_env: dict | None = None,
              progress: bool = True, loader: dict | None = None, **options) -> ScoreRun:
    """Score ``pool`` (a Pool or a pool file) with the registered scorer ``name`` on Ray into the folder ``out``.

    Same folder, shards, manifest and resume rules as :func:`kit.scoring.score_shards`. ``address``: a
    running cluster (default: start a local instance with ``num_cpus``). ``num_actors``: the actor pool
    size (default: one per GPU when actors take GPUs, else one per ``cpus_per_actor`` CPUs, at most one
    per shard). ``gpus_per_actor``: default 1 when the cluster has GPUs, else 0; with GPUs, scorers that
    take a ``device`` get ``device="cuda"`` unless the options name one. The device is part of the
    folder's options, so a folder scored on GPUs resumes on GPUs.
    """
    ray = connect(address, num_cpus=num_cpus, runtime_env=runtime_env)
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    if gpus_per_actor is None:
        gpus_per_actor = 1 if has_gpu else 0
    if gpus_per_actor and "device" not in options and _takes_device(name):
        options = {**options, "device": "cuda"}
    executor = ray_executor(num_actors, cpus_per_actor, gpus_per_actor, progress=False)
    return score_shards(pool, name, out, shard_size=shard_size, on_mismatch=on_mismatch, progress=progress,
                        loader=loader, executor=executor, **options)
