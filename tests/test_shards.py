"""Resumable sharded scoring: shards + manifest, resume after a crash or SIGKILL, streaming, pool-dependent scorers."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import kit
import tests.support.cheap_scorers  # noqa: F401  (registers test_slow, test_centred, test_centred_whole)
from kit.scoring import score_shards
from kit.shards import ScoreFolderError, ShardStore, read_manifest

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "data_samples" / "pool.json"


@pytest.fixture(scope="module")
def pool():
    return kit.load_pool(POOL)


@pytest.fixture(scope="module")
def reference(pool):
    return kit.score(pool, "test_slow", delay=0)


def test_sharded_equals_unsharded_and_reads_back(pool, reference, tmp_path):
    got = kit.score(pool, "test_slow", out=tmp_path / "s", shard_size=50, delay=0)
    pd.testing.assert_frame_equal(got, reference)
    info = kit.score_info(got)
    assert info.folder.complete and info.columns == ("chars", "h", "tags")
    assert info.scorer_name == "test_slow" and info.options == {"delay": 0}
    manifest = read_manifest(tmp_path / "s")
    assert manifest["complete"] and manifest["shard_size"] == 50 and manifest["pool"]["n_samples"] == len(pool)
    shards = manifest["shards"]
    assert [s["start"] for s in shards] == list(range(0, len(pool), 50))
    assert shards[0]["first_id"] == pool.ids[0] and shards[-1]["last_id"] == pool.ids[-1]
    assert sorted(p.name for p in (tmp_path / "s").glob("part-*.parquet")) == [s["file"] for s in shards]
    # the rule styler too (a built-in scorer with a list column)
    pd.testing.assert_frame_equal(kit.score(pool, "style", out=tmp_path / "style", shard_size=64, progress=False),
                                  kit.score(pool, "style", progress=False))


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_a_pool_file_is_streamed_with_the_same_result(pool, reference, tmp_path, suffix):
    path = POOL
    if suffix == ".jsonl":
        path = tmp_path / "pool.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in pool.records()))
    run = score_shards(path, "test_slow", tmp_path / "s", shard_size=40, progress=False,
                       loader={"images": POOL.parent / "images"}, delay=0)
    assert run.complete and run.n_samples == len(pool) and run.n_scored == len(pool)
    pd.testing.assert_frame_equal(kit.load_scores(tmp_path / "s"), reference)
    assert read_manifest(tmp_path / "s")["pool"]["n_input"] == pool.n_input


def test_a_crash_resumes_without_scoring_a_sample_twice(pool, reference, tmp_path):
    calls, shards = [], []

    @kit.register_scorer("test_crashing", overwrite=True)
    class Crashing(tests.support.cheap_scorers.SlowScorer):
        fail_at = [3]  # the fourth shard fails, once

        def score(self, chunk):
            if Crashing.fail_at and len(shards) == Crashing.fail_at[0]:
                Crashing.fail_at.clear()
                raise RuntimeError("boom")
            shards.append(len(chunk))
            calls.extend(chunk.table.index)
            return super().score(chunk)

    out = tmp_path / "c"
    with pytest.raises(RuntimeError, match="boom"):
        kit.score(pool, "test_crashing", out=out, shard_size=30, delay=0)
    # the interrupted folder reads back: the finished shards, in pool order, marked incomplete
    with pytest.warns(UserWarning, match="not complete"):
        partial = kit.load_scores(out)
    assert list(partial.index) == pool.ids[:len(partial)] and len(partial) == 90
    state = kit.score_info(partial).folder
    assert state.complete is False and state.n_expected == len(pool) and state.n_shards == 3
    run = score_shards(pool, "test_crashing", out, progress=False, delay=0)
    assert run.n_reused == 90 and run.n_scored == len(pool) - 90
    assert sorted(calls) == sorted(pool.ids) and len(calls) == len(set(calls))  # each sample scored once
    pd.testing.assert_frame_equal(kit.load_scores(out), reference)


def test_mismatched_folders_are_refused_or_overwritten(pool, tmp_path):
    out = tmp_path / "m"
    kit.score(pool, "test_slow", out=out, shard_size=100, delay=0)
    with pytest.raises(ScoreFolderError, match="options"):
        kit.score(pool, "test_slow", out=out, delay=0, scale=2.0)
    with pytest.raises(ScoreFolderError, match="shard size 100"):
        kit.score(pool, "test_slow", out=out, shard_size=50, delay=0)
    # an edited pool: the shard that changed is refused, or scored again when overwriting
    edited = pool.subset(pool.ids)
    edited.table = edited.table.copy()
    sid = pool.ids[150]
    edited.table.at[sid, "conversations"] = [{"from": "human", "value": "<image>\nNew?"}, {"from": "gpt", "value": "Yes."}]
    with pytest.raises(ScoreFolderError, match="shard 1 "):
        score_shards(edited, "test_slow", out, progress=False, delay=0)
    run = score_shards(edited, "test_slow", out, progress=False, on_mismatch="overwrite", delay=0)
    assert run.n_scored == 100 and run.n_reused == len(pool) - 100
    # runtime options (progress, batch size) are not part of the folder's key
    again = kit.score(edited, "test_slow", out=out, delay=0, progress=False)
    assert kit.score_info(again).reused is True
    # another scorer's folder
    with pytest.raises(ScoreFolderError, match="'test_slow'"):
        kit.score(pool, "style", out=out)
    assert kit.score_info(kit.score_cached(pool, "style", out)).scorer_name == "style"  # score_cached overwrites


def test_a_folder_is_locked_and_stale_files_are_ignored(pool, reference, tmp_path):
    out = tmp_path / "l"
    kit.score(pool.subset(pool.ids[:60]), "test_slow", out=out, shard_size=20, delay=0)
    with ShardStore.open(out, "test_slow", {"delay": 0}, None):
        with pytest.raises(ScoreFolderError, match="another process"):
            ShardStore.open(out, "test_slow", {"delay": 0}, None)
    # a shard file the manifest does not name (a kill between the shard and the manifest) is never read
    stray = pd.DataFrame({"chars": [1]}, index=pd.Index(["intruder"], name="id"))
    stray.to_parquet(out / "part-000009.parquet")
    (out / ".manifest.json.tmp-1").write_text("{half")
    assert "intruder" not in kit.load_scores(out).index
    run = score_shards(pool, "test_slow", out, progress=False, delay=0)
    assert run.n_reused == 60 and not (out / ".manifest.json.tmp-1").exists()
    pd.testing.assert_frame_equal(kit.load_scores(out), reference)


def test_a_damaged_shard_is_scored_again_never_reported_reused(pool, reference, tmp_path, capsys):
    from kit import cli

    out = tmp_path / "d"
    kit.score(pool, "test_slow", out=out, shard_size=50, delay=0)
    entry = read_manifest(out)["shards"][3]
    assert entry["bytes"] == (out / entry["file"]).stat().st_size and len(entry["sha256"]) == 64
    (out / "part-000001.parquet").unlink()                                    # deleted by hand
    data = (out / "part-000003.parquet").read_bytes()
    (out / "part-000003.parquet").write_bytes(data[: len(data) // 2])        # truncated by hand
    with pytest.raises(ScoreFolderError, match="part-000001.parquet is missing"):
        kit.load_scores(out)
    assert cli.main(["select", "random", str(out), "--budget", "3"]) == cli.EXIT_ERROR
    assert "part-000001.parquet is missing" in capsys.readouterr().err       # named, not a raw arrow error
    run = score_shards(pool, "test_slow", out, progress=False, delay=0)
    assert run.n_scored == 100 and run.n_reused == len(pool) - 100 and run.complete
    assert run.damaged == ["part-000001.parquet is missing",
                           f"part-000003.parquet holds {len(data) // 2} bytes, the manifest says {len(data)}"]
    pd.testing.assert_frame_equal(kit.load_scores(out), reference)
    # a shard rewritten with the same size but other bytes fails its checksum
    (out / "part-000002.parquet").write_bytes(bytes((out / "part-000002.parquet").stat().st_size))
    with pytest.raises(ScoreFolderError, match="part-000002.parquet does not match the checksum"):
        kit.load_scores(out)


def test_pool_dependent_scorers_shard_their_encoding_or_score_in_one_piece(pool, tmp_path, capsys):
    whole = kit.score(pool, "test_centred")
    sharded = kit.score(pool, "test_centred", out=tmp_path / "c", shard_size=45)
    pd.testing.assert_frame_equal(sharded, whole)  # the pool-wide step saw every sample
    manifest = read_manifest(tmp_path / "c")
    assert manifest["mode"] == "encode-then-finish" and len(manifest["encoded"]) == len(manifest["shards"])
    # a shard of a smaller pool would give other numbers: the finish step ran once on all of them
    assert not kit.score(pool.subset(pool.ids[:45]), "test_centred")["centred"].equals(whole["centred"].iloc[:45])
    one = kit.score(pool, "test_centred_whole", out=tmp_path / "w", shard_size=45)
    pd.testing.assert_frame_equal(one, kit.score(pool, "test_centred_whole"))
    manifest = read_manifest(tmp_path / "w")
    assert manifest["mode"] == "whole-pool" and len(manifest["shards"]) == 1
    assert "scored in one piece" in capsys.readouterr().out


CHILD = """
import sys
sys.path.insert(0, {root!r})
import tests.support.cheap_scorers
from kit.scoring import score_shards
score_shards({pool!r}, "test_slow", {out!r}, shard_size=12, progress=False, delay=0.004)
"""


def _n_shards(out: Path) -> int:
    try:
        return len(json.loads((out / "manifest.json").read_text())["shards"])
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(pool, tmp_path):
    out = tmp_path / "k"
    code = CHILD.format(root=str(ROOT), pool=str(POOL), out=str(out))
    rng = random.Random(11)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    progress = []
    for attempt in range(6):
        child = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)
        if attempt % 2 == 0:  # at a random moment after start (it may still be importing)
            time.sleep(rng.uniform(0.5, 4.0))
        else:  # at a random moment while shards are being written
            seen = _n_shards(out)
            deadline = time.time() + 60
            while _n_shards(out) <= seen and child.poll() is None and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.15))
        child.send_signal(signal.SIGKILL)
        child.wait()
        progress.append(_n_shards(out))
    print("shards finished at each kill:", progress)
    assert progress[-1] > 0 and progress == sorted(progress)  # finished shards are never lost
    assert subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT).returncode == 0
    got = kit.load_scores(out)
    assert kit.score_info(got).folder.complete and got.index.is_unique
    pd.testing.assert_frame_equal(got, kit.score(pool, "test_slow", delay=0))
