"""The training loop on accelerate: one CPU process trains the weights of the loop before it, accumulation and two
gloo processes train the same model as one (a micro LLaVA, a few steps)."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import kit
import kit.finetune as ft
from kit.finetune.data import ExampleEncoder
from kit.finetune.engine import loss_weight, shard
from kit.finetune.train import train_examples
from tests.support.plain_loop import train_plain
from tests.support.micro import PRESET

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def base(micro_base):
    return micro_base


@pytest.fixture(scope="module")
def pool(repo_root):
    return kit.load_pool(repo_root / "data_samples" / "pool.json")


@pytest.fixture(scope="module")
def ids(pool):
    return [i for i in pool.table.index if i.startswith("ev_")][:12]


@pytest.fixture(scope="module")
def encoded(base, pool, ids):
    processor = ft.load_model(base)[1]
    encoder = ExampleEncoder(processor)
    examples, rejected = encoder.encode_pool(pool, ids)
    assert not rejected
    return encoder, examples


def _weights(model):
    return {n: p.detach().clone().numpy() for n, p in model.named_parameters()}


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[n] - b[n]).max()) for n in a)


@pytest.mark.parametrize("autocast", [None, "bfloat16"])
def test_one_cpu_process_trains_the_weights_of_the_loop_before_accelerate(base, encoded, tmp_path, autocast):
    encoder, examples = encoded
    config = PRESET.train.with_(epochs=2.0, autocast=autocast)
    new = train_examples(ft.load_model(base)[0], encoder, examples, config, tmp_path / "run", seed=0,
                         progress=False, save_model=False)
    old, losses, _ = train_plain(ft.load_model(base)[0], encoder, examples, config, seed=0)
    assert new.info["processes"] == 1 and new.info["distributed"] == "NO" and new.info["grad_accum"] == 1
    assert new.info["mixed_precision"] == ("bf16" if autocast else "no")
    assert len(losses) == len(new.history) == new.info["steps"] == 6
    np.testing.assert_allclose(new.history["loss"].to_numpy(), losses, rtol=1e-6)
    assert _max_difference(_weights(new.model), _weights(old)) < 1e-6
    changed = _max_difference(_weights(new.model), _weights(ft.load_model(base)[0]))
    assert changed > 1e-3                                       # it trained
    assert new.model.forward.__func__ is type(new.model).forward  # returned without accelerate's autocast wrapper


@pytest.mark.parametrize("loss", ["token", "sample"])
def test_gradient_accumulation_keeps_the_recipe(base, encoded, tmp_path, loss):
    """Two micro-batches per batch: the same batches, steps and learning rates, so the same model to rounding."""
    encoder, examples = encoded
    one = PRESET.train.with_(epochs=2.0, loss=loss)
    runs = {k: train_examples(ft.load_model(base)[0], encoder, examples, one.with_(grad_accum=k), tmp_path / str(k),
                              seed=0, progress=False, save_model=False) for k in (1, 2)}
    assert runs[2].info["grad_accum"] == 2 and len(runs[2].history) == len(runs[1].history)
    np.testing.assert_allclose(runs[2].history["loss"], runs[1].history["loss"], rtol=1e-4)
    assert _max_difference(_weights(runs[2].model), _weights(runs[1].model)) < 1e-4
    run = json.loads((tmp_path / "2" / "run.json").read_text())
    assert run["config"]["grad_accum"] == 2 and "grad_accum" not in json.loads(
        (tmp_path / "1" / "run.json").read_text())["config"]   # left out at 1: older run folders keep their key


def test_shards_cover_the_batch_once_and_weights_sum_to_the_batch_loss(encoded):
    _, examples = encoded
    batch = examples[:7]
    for processes, accum in ((1, 1), (2, 1), (2, 3), (3, 2)):
        parts = [shard(batch, processes, rank, accum) for rank in range(processes)]
        flat = [e.sid for rank in parts for part in rank for e in part]
        assert flat == [e.sid for e in batch] and all(len(p) == accum for p in parts)
        for reduction in ("token", "sample"):
            denominator = sum(e.n_trained for e in batch) if reduction == "token" else len(batch)
            weights = [loss_weight(p, denominator, reduction, processes, accum) for rank in parts for p in rank]
            assert abs(sum(weights) / (processes * accum) - 1) < 1e-12
    with pytest.raises(ValueError, match="cannot be split over 4 processes x 2"):
        shard(batch, 4, 0, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_write_one_run_and_train_the_model_of_one(base, pool, ids, repo_root, tmp_path):
    """``accelerate launch --multi_gpu --num_processes 2 -m kit finetune train`` on a CPU: two processes (gloo),
    each half of every batch; one run folder; the loss falls; the weights are the one-process run's to rounding."""
    subset = kit.export_subset(pool, ids, tmp_path / "subset.json")
    options = {"device": "cpu", "dtype": "float32", "lr": 3e-3, "batch_size": 4, "epochs": 4.0, "group": 2,
               "max_length": 256, "checkpoint_every": 4}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--num_cpu_threads_per_process", "1", "--main_process_port", str(_free_port()),
           "-m", "kit", "finetune", "train", str(repo_root / "data_samples" / "pool.json"), "--out",
           str(tmp_path / "run"), "--subset", str(subset), "--preset", str(base), "--options", json.dumps(options)]
    env = {**os.environ, "PYTHONPATH": str(repo_root), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((tmp_path / "run" / "done.json").read_text())
    assert info["processes"] == 2 and info["distributed"] == "MULTI_CPU" and info["steps"] == 12
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["done.json", "history.csv", "manifest.json",
                                                                   "model", "run.json"]
    assert done.stdout.count('"processes": 2') == 1                    # printed by the main process only
    import pandas as pd

    loss = pd.read_csv(tmp_path / "run" / "history.csv")["loss"]
    assert len(loss) == 12 and loss.iloc[-3:].mean() < 0.8 * loss.iloc[:3].mean()
    one = ft.finetune(pool, ids, preset=str(base), out=tmp_path / "one", seed=0, progress=False, save_model=False,
                      **options)
    np.testing.assert_allclose(loss, one.history["loss"], rtol=1e-4)
    two = ft.load_model(tmp_path / "run")[0]
    assert _max_difference(_weights(two), _weights(one.model)) < 1e-4
