"""The command line: help, exit codes, clear errors, and each command on the corrupt fixture and small pools."""
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kit
from kit import cli
from kit.shards import read_manifest

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "data_samples" / "pool.json"


def run_kit(*args, cwd=None):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "kit", *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd or ROOT, timeout=300)


@pytest.fixture(scope="module")
def small_pool(tmp_path_factory):
    """40 samples of data_samples/ as JSONL (images from data_samples/images)."""
    root = tmp_path_factory.mktemp("cli_pool")
    records = kit.load_pool(POOL).records()[:40]
    (root / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (root / "images").symlink_to(POOL.parent / "images")
    return root / "pool.jsonl"


def test_help_exit_codes_and_the_console_script():
    out = run_kit("--help")
    assert out.returncode == 0
    for command in ("validate", "score", "select", "curriculum", "export", "notebooks", "Exit codes"):
        assert command in out.stdout
    assert run_kit().returncode == cli.EXIT_USAGE  # no command: the help, and exit code 2
    bad = run_kit("score")
    assert bad.returncode == 2 and "required" in bad.stderr
    score_help = run_kit("score", "--help").stdout
    assert "--ray" in score_help and "--option KEY=VALUE" in score_help and "kit score" in score_help
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"kit": "kit.cli:main"}


def test_validate_reports_every_rejection(corrupt_pool_dir, tmp_path):
    out = run_kit("validate", corrupt_pool_dir / "pool.json", "--report", tmp_path / "rej.csv")
    assert out.returncode == cli.EXIT_REJECTED
    assert "29 records read: 4 accepted" in out.stdout and "symlink_escapes_root" in out.stdout
    assert len(pd.read_csv(tmp_path / "rej.csv")) == 25
    assert cli.main(["validate", str(POOL), "--quiet", "--write", str(tmp_path / "clean.jsonl")]) == cli.EXIT_OK
    assert len(kit.load_pool(tmp_path / "clean.jsonl", images=POOL.parent / "images")) == 372
    missing = run_kit("validate", tmp_path / "nope.json")
    assert missing.returncode == cli.EXIT_ERROR and "no pool file" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "cut.json").write_text('[{"id": "a"},\n {"id": "b", "image": "x.png"')
    cut = run_kit("validate", tmp_path / "cut.json")
    assert cut.returncode == cli.EXIT_ERROR and "line 2 is never closed" in cut.stderr
    strict = run_kit("validate", corrupt_pool_dir / "pool.jsonl", "--strict")
    assert strict.returncode == cli.EXIT_ERROR and "malformed_json" in strict.stderr


def test_score_resumes_and_reads_back(small_pool, tmp_path, capsys):
    out = tmp_path / "style"
    sub = run_kit("score", small_pool, "style", "--out", out, "--shard-size", "16", "--no-progress")
    assert sub.returncode == 0, sub.stderr
    assert "40 samples (40 scored now, 0 reused" in sub.stdout and f'kit.load_scores("{out}")' in sub.stdout
    pool = kit.load_pool(small_pool)
    pd.testing.assert_frame_equal(kit.load_scores(out), kit.score(pool, "style", progress=False))
    # interrupted: drop the last finished shard from the manifest, as a kill before it was recorded would
    manifest = read_manifest(out)
    manifest["shards"], manifest["complete"] = manifest["shards"][:-1], False
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="not complete"):
        assert len(kit.load_scores(out)) == 32
    assert cli.main(["score", str(small_pool), "style", "--out", str(out), "--no-progress"]) == 0
    assert "8 scored now, 32 reused" in capsys.readouterr().out
    assert kit.load_scores(out).attrs["complete"]
    # other options into the same folder: refused with a clear message, or overwritten
    assert cli.main(["score", str(small_pool), "style", "--out", str(out), "--option", "short_words=20"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["score", str(small_pool), "style", "--out", str(out), "--options", '{"short_words": 20}',
                     "--overwrite", "--no-progress"]) == 0
    assert read_manifest(out)["options"] == {"short_words": 20}


@pytest.mark.parametrize("argv,message", [
    (["score", "{pool}", "stlye", "--out", "{tmp}/x"], "did you mean 'style'"),
    (["score", "{pool}", "style", "--out", "{tmp}/x", "--option", "oops"], "key=value"),
    (["score", "{pool}", "style", "--out", "{tmp}/x", "--options", "[1]"], "JSON object"),
    (["score", "{pool}", "style", "--out", "{tmp}/x", "--option", "nonsense=1", "--no-progress"], "nonsense"),
    (["select", "mmsr", "{tmp}/none", "--budget", "3"], "did you mean 'mmssr'"),
    (["export", "{pool}", "{tmp}/none.json", "--out", "{tmp}/x.json"], "no id list"),
])
def test_clear_errors(small_pool, tmp_path, capsys, argv, message):
    argv = [a.format(pool=small_pool, tmp=tmp_path) for a in argv]
    assert cli.main(argv) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.startswith("kit ")


def test_select_export_and_curriculum(small_pool, tmp_path, capsys):
    pool = kit.load_pool(small_pool)
    assert cli.main(["score", str(small_pool), "style", "--out", str(tmp_path / "style"), "--no-progress"]) == 0
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"image_text": rng.random(len(pool)), "loss_sum": rng.random(len(pool))},
                         index=pd.Index(pool.ids, name="id"))
    kit.save_scores(table, tmp_path / "quality.parquet")
    sel = tmp_path / "sel.json"
    assert cli.main(["select", "random", str(tmp_path / "style"), str(tmp_path / "quality.parquet"), "--budget",
                     "25%", "--seed", "3", "--pool", str(small_pool), "--out", str(sel),
                     "--export", str(tmp_path / "sub.jsonl"), "--format", "jsonl"]) == 0
    got = json.loads(sel.read_text())
    assert got["n_selected"] == 10 and got["method"] == "random" and got["seed"] == 3
    assert kit.load_pool(tmp_path / "sub.jsonl", images=POOL.parent / "images").ids == got["ids"]
    assert cli.main(["select", "diq", str(tmp_path / "quality.parquet"), "--budget", "8", "--option", "grid=2",
                     "--out", str(tmp_path / "diq.json")]) == 0
    assert len(json.loads((tmp_path / "diq.json").read_text())["ids"]) <= 8
    # sub.parquet's manifest is sub.manifest.json, which the .jsonl export above wrote: replaced only when asked
    assert cli.main(["export", str(small_pool), str(sel), "--out", str(tmp_path / "sub.parquet")]) == 1
    assert "sub.manifest.json exists already: give --overwrite" in capsys.readouterr().err
    assert cli.main(["export", str(small_pool), str(sel), "--out", str(tmp_path / "sub.parquet"), "--overwrite"]) == 0
    manifest = json.loads((tmp_path / "sub.manifest.json").read_text())
    assert manifest["format"] == "parquet" and manifest["method"] == "random" and manifest["ids"] == got["ids"]
    assert cli.main(["curriculum", str(tmp_path / "quality.parquet"), "--pool", str(small_pool), "--stages", "2",
                     "--budget", "12", "--out", str(tmp_path / "cur")]) == 0
    cur = json.loads((tmp_path / "cur" / "curriculum.manifest.json").read_text())
    assert cur["n_stages"] == 2 and cur["n_samples"] == 12
    assert cli.main(["curriculum", str(tmp_path / "quality.parquet"), "--pool", str(small_pool),
                     "--out", str(tmp_path / "cur2")]) == 1
    assert "--sizes" in capsys.readouterr().err


def test_notebooks_pass_their_parameters(monkeypatch, tmp_path, capsys):
    import kit.demo

    calls = []
    monkeypatch.setattr(kit.demo, "run_notebook", lambda path, run_dir, pool, quick, parameters=None:
                        calls.append((path.name, run_dir, quick, parameters)))
    assert cli.main(["notebooks", "--only", "00", "--quick", "--out", str(tmp_path), "-p", "grid=4",
                     "-p", "corrupt_pool_path=x.json"]) == 0
    assert calls == [("00_pool.ipynb", tmp_path, True, {"grid": 4, "corrupt_pool_path": "x.json"})]
    assert cli.main(["notebooks", "--only", "99"]) == 1
    assert "no notebooks match" in capsys.readouterr().err


def test_notebooks_get_an_absolute_run_dir_and_keep_their_own_pool(monkeypatch, tmp_path):
    import kit.demo

    calls = []
    monkeypatch.setattr(kit.demo, "run_notebook", lambda path, run_dir, pool, quick, parameters=None:
                        calls.append((run_dir, pool)))
    monkeypatch.chdir(tmp_path)   # a relative --out must not land under notebooks/, where they run
    assert cli.main(["notebooks", "--only", "00", "--out", "rel"]) == 0
    assert kit.demo.main(["--only", "00", "--out", "rel2"]) == 0
    assert calls == [(tmp_path / "rel", None), (tmp_path / "rel2", None)]
    assert cli.main(["notebooks", "--only", "00", "--out", "rel", "--pool", "p.json"]) == 0
    assert calls[-1] == (tmp_path / "rel", tmp_path / "p.json")


# --------------------------------------------------------------------------- issue 23: outputs never replace inputs

@pytest.fixture
def own_pool(tmp_path):
    """A 3-sample JSONL pool with its images, an id list and a score table, all in tmp_path."""
    from tests.support.hostile_pools import record, write_pool

    pool = write_pool(tmp_path, [record("a"), record("b"), record("c")])
    (tmp_path / "ids.json").write_text(json.dumps(["a", "b"]))
    kit.save_scores(pd.DataFrame({"s": [0.1, 0.5, 0.9]}, index=pd.Index(["a", "b", "c"], name="id")),
                    tmp_path / "scores.parquet")
    return tmp_path


@pytest.mark.parametrize("argv", [
    ["validate", "{d}/pool.jsonl", "--write", "{d}/pool.jsonl"],
    ["validate", "{d}/pool.jsonl", "--report", "{d}/pool.jsonl", "--overwrite"],
    ["export", "{d}/pool.jsonl", "{d}/ids.json", "--out", "{d}/pool.jsonl", "--overwrite"],
    ["export", "{d}/pool.jsonl", "{d}/ids.json", "--out", "{d}/ids.json", "--overwrite"],
    ["export", "{d}/pool.jsonl", "{d}/ids.json", "--out", "{d}/link.jsonl", "--overwrite"],  # a link to the pool
    ["select", "random", "{d}/scores.parquet", "--budget", "2", "--out", "{d}/scores.parquet", "--overwrite"],
    ["select", "random", "{d}/scores.parquet", "--budget", "2", "--pool", "{d}/pool.jsonl",
     "--export", "{d}/pool.jsonl", "--overwrite"],
    ["score", "{d}/pool.jsonl", "style", "--out", "{d}", "--no-progress"],
    ["select", "random", "{d}/scores.parquet", "--budget", "2", "--pool", "{d}/pool.jsonl",  # two outputs, one file
     "--out", "{d}/sub.manifest.json", "--export", "{d}/sub.json"],
])
def test_no_command_writes_over_its_own_input(own_pool, capsys, argv):
    (own_pool / "link.jsonl").symlink_to(own_pool / "pool.jsonl")
    before = {p: p.read_bytes() for p in own_pool.rglob("*") if p.is_file()}
    assert cli.main([a.format(d=own_pool) for a in argv]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert ("an input" in err or "two outputs" in err) and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in own_pool.rglob("*") if p.is_file()} == before


def test_an_existing_output_is_replaced_only_with_overwrite_and_atomically(own_pool, capsys):
    report = own_pool / "report.csv"
    report.write_text("keep me\n")
    argv = ["validate", str(own_pool / "pool.jsonl"), "--report", str(report)]
    assert cli.main(argv) == cli.EXIT_ERROR
    assert "exists already: give --overwrite" in capsys.readouterr().err and report.read_text() == "keep me\n"
    assert cli.main([*argv, "--overwrite"]) == cli.EXIT_OK
    assert report.read_text().startswith("id,line,reason,detail")
    assert not list(own_pool.glob(".*.tmp-*"))  # written through a temporary file, renamed over the old one


def test_an_export_format_that_disagrees_with_its_suffix_is_refused(own_pool, capsys):
    argv = ["export", str(own_pool / "pool.jsonl"), str(own_pool / "ids.json"), "--out", str(own_pool / "x.json")]
    assert cli.main([*argv, "--format", "jsonl"]) == cli.EXIT_ERROR
    assert "would be read back as llava" in capsys.readouterr().err and not (own_pool / "x.json").exists()
    assert cli.main(argv) == cli.EXIT_OK  # the suffix decides
    assert cli.main(["validate", str(own_pool / "x.json"), "--images", str(own_pool / "images")]) == cli.EXIT_OK


def test_validate_names_a_record_it_cannot_encode_and_keeps_the_rest(tmp_path, capsys):
    from tests.support.hostile_pools import record, write_pool

    pool = write_pool(tmp_path, [record("a"), record("\ud800"), record("b")])
    assert cli.main(["validate", str(pool), "--report", str(tmp_path / "rej.csv")]) == cli.EXIT_REJECTED
    out = capsys.readouterr().out
    assert "3 records read: 2 accepted, 1 rejected (not_utf8 1)" in out and "\\ud800" in out
    assert pd.read_csv(tmp_path / "rej.csv")["id"].tolist() == ["\\ud800"]
