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


# --------------------------------------------------------------------------- issue 22: one command line

# python -m kit.X (documented before kit had every command) -> the kit command it stands for, with arguments
ALIASES = [
    ("kit.finetune", ["train", "p.json", "--out", "run"], "finetune"),
    ("kit.pools", ["build", "out"], "pools"),
    ("kit.experiments", ["ablate", "p.json", "--out", "out"], "ablate"),
    ("kit.experiments", ["testbed", "redundant", "--out", "out"], "testbed"),
    ("kit.experiments", ["testbed-gate", "--out", "out"], "testbed-gate"),
    ("kit.experiments.newer", ["p.json", "--out", "out"], "ablate-newer"),
    ("kit.evaluation", ["report", "data_samples"], "report"),
    ("kit.demo", ["--only", "00", "--quick"], "demo"),
    ("kit.mmssr.teacher", ["p.json", "out.jsonl", "--n", "2"], "teacher"),
    ("kit.mmssr.convert", ["src", "dst"], "convert"),
    ("kit.mmssr.distilled", ["cv", "data"], "distill"),
    ("kit.quality.image_text.lit_training", ["eval", "--n", "5"], "lit-head"),
]
HEAVY = ("torch", "transformers", "kit.finetune", "kit.experiments.ablation", "kit.mmssr.rich_vlm", "papermill")


def _python(code: str):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_kit_help_lists_every_command_on_one_line_and_imports_none_of_them():
    from kit.registry import COMMANDS

    done = _python("import contextlib, io, json, sys\nfrom kit import cli\nout = io.StringIO()\n"
                   "with contextlib.redirect_stdout(out):\n    rc = cli.main(['--help'])\n"
                   "print(json.dumps({'rc': rc, 'help': out.getvalue(), 'modules': sorted(sys.modules)}))")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["rc"] == 0
    lines = got["help"].splitlines()
    for name in COMMANDS.names():
        mine = [line for line in lines if line.split()[:1] == [name]]
        assert len(mine) == 1 and mine[0].split(None, 1)[1] == COMMANDS.summary(name), name
    assert {"validate", "score", "select", "curriculum", "export", "report", "pools", "finetune", "ablate",
            "ablate-newer", "testbed", "testbed-gate", "teacher", "distill", "convert", "notebooks",
            "demo"} <= set(COMMANDS.names())
    commands = [m for m in got["modules"] if m.startswith("kit.commands.") and m != "kit.commands.common"]
    assert commands == [] and not set(HEAVY) & set(got["modules"])


def test_every_command_has_its_own_help_without_torch():
    from kit.registry import COMMANDS

    code = ("import contextlib, io, json, sys\nfrom kit import cli\nfrom kit.registry import COMMANDS\nres = {}\n"
            "for name in COMMANDS.names():\n    out = io.StringIO()\n"
            "    with contextlib.redirect_stdout(out):\n        rc = cli.main([name, '--help'])\n"
            "    res[name] = [rc, out.getvalue()]\n"
            "print(json.dumps({'res': res, 'modules': sorted(sys.modules)}))")
    done = _python(code)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    for name in COMMANDS.names():
        rc, text = got["res"][name]
        assert rc == 0 and text.startswith(f"usage: kit {name} ") and "--debug" in text, (name, text[:300])
    assert not {"torch", "transformers"} & set(got["modules"])   # parsing a command's options loads no model code


def test_each_command_is_one_module_with_add_arguments_and_run_and_no_other_argparse():
    import importlib

    from kit.registry import COMMANDS

    for name in COMMANDS.names():
        module = importlib.import_module(COMMANDS._lazy[name])
        assert callable(module.add_arguments) and callable(module.run) and module.__doc__, name
    # one place parses a command's arguments: no module outside kit/cli.py and kit/commands/ builds a parser
    own = [p.relative_to(ROOT).as_posix() for p in (ROOT / "kit").rglob("*.py")
           if "argparse" in p.read_text(encoding="utf-8") and p.parent.name != "commands" and p.name != "cli.py"]
    assert own == []


@pytest.mark.parametrize("module,argv,command", ALIASES, ids=[f"{m} {a[0]}" for m, a, _ in ALIASES])
def test_python_m_aliases_run_the_same_command(monkeypatch, module, argv, command):
    import importlib
    import runpy
    import warnings

    from kit.registry import COMMANDS

    impl = importlib.import_module(COMMANDS._lazy[command])
    calls = []
    monkeypatch.setattr(impl, "run", lambda args: calls.append(args) or 0)
    monkeypatch.setattr(sys, "argv", [module, *argv])
    with warnings.catch_warnings(), pytest.raises(SystemExit) as exit_:
        warnings.simplefilter("ignore", RuntimeWarning)   # runpy: the module is imported already (by the kit)
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    assert exit_.value.code == 0 and len(calls) == 1 and calls[0].command == command
    assert calls[0].command_line.startswith(f"kit {command} ")


def test_an_alias_with_its_own_words_names_its_commands():
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "kit.experiments", "nonsense"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert done.returncode == cli.EXIT_USAGE and "'kit ablate', 'kit testbed', 'kit testbed-gate'" in done.stderr
    pools = subprocess.run([sys.executable, "-m", "kit.pools", "--help"], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=300)
    assert pools.returncode == 0 and pools.stdout.startswith("usage: kit pools ")


def test_exit_codes_are_the_same_for_every_command(monkeypatch, capsys):
    import kit.commands.pools as pools
    from kit.commands.common import UsageError

    def failing(exc):
        def run(args):
            raise exc
        return run

    argv = ["pools", "build", "out"]
    for exc, code, text in [(RuntimeError("boom"), cli.EXIT_ERROR, "kit pools: error: RuntimeError: boom"),
                            (ValueError("bad value"), cli.EXIT_ERROR, "kit pools: error: bad value"),
                            (KeyboardInterrupt(), cli.EXIT_INTERRUPTED, "kit pools: interrupted"),
                            (UsageError("not so"), cli.EXIT_USAGE, "kit pools: error: not so")]:
        monkeypatch.setattr(pools, "run", failing(exc))
        assert cli.main(argv) == code
        err = capsys.readouterr().err
        assert text in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == (2 if code == cli.EXIT_USAGE else 1)   # usage line + error
    assert cli.EXIT_INTERRUPTED == 130
    with pytest.raises(RuntimeError):                                   # --debug, before or after the command
        monkeypatch.setattr(pools, "run", failing(RuntimeError("boom")))
        cli.main(["pools", "build", "out", "--debug"])
    with pytest.raises(RuntimeError):
        cli.main(["--debug", *argv])
    assert cli.main(["pools"]) == cli.EXIT_USAGE and "required" in capsys.readouterr().err
    assert cli.main(["no-such-command"]) == cli.EXIT_USAGE and "invalid choice" in capsys.readouterr().err


def test_a_registered_command_runs_and_is_listed(capsys):
    import types

    from kit.registry import COMMANDS

    def add_arguments(p):
        p.add_argument("--times", type=int, default=1)

    mine = types.SimpleNamespace(add_arguments=add_arguments, run=lambda args: print("hi " * args.times) or 0,
                                 __doc__="Say hi.")
    COMMANDS.add("say-hi", mine, summary="say hi, a test command")
    assert cli.main(["--help"]) == 0
    assert "say-hi" in capsys.readouterr().out
    assert cli.main(["say-hi", "--times", "2"]) == 0
    assert capsys.readouterr().out.strip() == "hi hi"
    COMMANDS.remove("say-hi")   # (conftest restores the registries after every test in any case)
    assert "say-hi" not in COMMANDS.names() and "say-hi" not in COMMANDS.summaries


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
    assert kit.score_info(kit.load_scores(out)).folder.complete
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
    nbs = ["--notebooks", str(ROOT / "notebooks")]
    assert cli.main(["notebooks", "--only", "00", "--out", "rel", *nbs]) == 0
    assert cli.main(["demo", "--only", "00", "--out", "rel2", *nbs]) == 0     # make demo: the same command
    assert calls == [(tmp_path / "rel", None), (tmp_path / "rel2", None)]
    assert cli.main(["notebooks", "--only", "00", "--out", "rel", "--pool", "p.json", *nbs]) == 0
    assert calls[-1] == (tmp_path / "rel", tmp_path / "p.json")


def test_notebooks_come_from_the_working_directory_or_notebooks(monkeypatch, tmp_path, capsys):
    """The notebooks are a checkout's, not the package's: outside a checkout without --notebooks, one clear line;
    from a checkout's root (make demo) the checkout's notebooks/, and the run folder under its runs/."""
    import kit.demo

    calls = []
    monkeypatch.setattr(kit.demo, "run_notebook", lambda path, run_dir, pool, quick, parameters=None:
                        calls.append((path, run_dir)))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--only", "00"]) == 1
    err = capsys.readouterr().err
    assert "no notebooks folder" in err and "--notebooks" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "00_pool.ipynb").write_bytes((ROOT / "notebooks" / "00_pool.ipynb").read_bytes())
    assert cli.main(["demo", "--only", "00"]) == 0
    path, run_dir = calls[-1]
    assert path == tmp_path / "notebooks" / "00_pool.ipynb" and run_dir.parent == tmp_path / "runs"


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
