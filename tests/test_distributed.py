"""Scoring with Ray Data on a local Ray instance with 2 CPUs equals the single-process result, shard for shard.

Skipped when Ray is not installed. Ray's raylet gives up when its agents take more than 15 s to start
(ray-project/ray#65983), which can happen on a heavily loaded machine: then the test is skipped with that
reason rather than failed, since nothing of the kit has run yet. With ``RAY_ADDRESS`` set, the tests run on
that cluster instead (it must have 2 CPUs).
"""
import pickle

import numpy as np
import pandas as pd
import pytest

import kit
from kit.distributed import RayUnavailable, ShardWorker, connect, score_ray
from kit.shards import read_manifest

POOL = "data_samples/pool.json"


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray Data is not installed (pip install 'ray[data]')")
    pytest.importorskip("ray.data")
    try:
        connect(num_cpus=2, retries=0)
    except RayUnavailable as exc:
        pytest.skip(f"a local Ray instance did not start here: {exc}")
    yield ray
    ray.shutdown()


def test_the_actor_scores_a_shard_like_the_local_path(pool, tmp_path):
    """What each Ray actor runs, called in this process on a batch shaped like Ray's (no Ray needed)."""
    from kit.registry import SCORERS

    worker = ShardWorker(SCORERS.get("style"), "style", {}, "per-shard")
    chunk = pool.subset(pool.ids[10:20])
    batch = {"index": np.array([3]), "start": np.array([10]), "content": np.array(["c"], dtype=object),
             "payload": np.array([pickle.dumps(chunk.table)], dtype=object)}
    out = worker(batch)
    assert pickle.loads(out["ids"][0]) == pool.ids[10:20] and out["index"] == [3] and out["start"] == [10]
    path = tmp_path / "part.parquet"
    path.write_bytes(out["data"][0])
    pd.testing.assert_frame_equal(kit.load_scores(path), kit.score(chunk, "style", progress=False),
                                  check_like=True)
    assert pickle.loads(out["info"][0]).columns == ("styles",)   # the shard's ScoreInfo travels with it


@pytest.fixture(scope="module")
def pool(repo_root):
    return kit.load_pool(repo_root / POOL)


def _same_shards(a, b):
    ma, mb = read_manifest(a), read_manifest(b)
    keep = ("index", "start", "stop", "rows", "first_id", "last_id", "ids_sha256", "content_sha256")
    assert [{k: e[k] for k in keep} for e in ma["shards"]] == [{k: e[k] for k in keep} for e in mb["shards"]]
    assert ma["options"] == mb["options"] and ma["pool"]["fingerprint"] == mb["pool"]["fingerprint"]


def test_ray_scoring_equals_the_single_process_result(local_ray, pool, tmp_path):
    assert local_ray.cluster_resources().get("CPU") == 2
    local = kit.score(pool, "style", out=tmp_path / "local", shard_size=50, progress=False)
    run = score_ray(pool, "style", tmp_path / "ray", shard_size=50, progress=False)
    assert run.complete and run.n_scored == len(pool)
    distributed = kit.load_scores(tmp_path / "ray")
    pd.testing.assert_frame_equal(distributed, local)
    _same_shards(tmp_path / "local", tmp_path / "ray")
    # a folder started locally resumes on Ray (and the other way round): nothing left to do
    again = score_ray(pool, "style", tmp_path / "local", progress=False)
    assert again.n_scored == 0 and again.n_reused == len(pool)


def test_ray_streams_a_pool_file_and_finishes_a_pool_dependent_scorer_on_the_driver(local_ray, pool, tmp_path,
                                                                                     repo_root):
    import ray.cloudpickle

    import tests.support.cheap_scorers as cheap

    ray.cloudpickle.register_pickle_by_value(cheap)  # the workers need not import tests/
    local = kit.score(pool, "test_centred")
    run = score_ray(pool, "test_centred", tmp_path / "c", shard_size=60, progress=False)
    assert run.mode == "encode-then-finish" and run.complete
    assert len(read_manifest(tmp_path / "c")["encoded"]) == 7  # encoded on the actors, finished here
    pd.testing.assert_frame_equal(kit.load_scores(tmp_path / "c"), local)
    streamed = score_ray(repo_root / POOL, "style", tmp_path / "stream", shard_size=100, progress=False)
    assert streamed.n_samples == len(pool)
    pd.testing.assert_frame_equal(kit.load_scores(tmp_path / "stream"), kit.score(pool, "style", progress=False))


def test_importing_kit_and_its_command_line_imports_neither_ray_nor_torch():
    import subprocess
    import sys

    code = "import sys, kit, kit.cli, kit.distributed; print(sorted({'ray', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
