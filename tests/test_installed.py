"""The kit works installed (issue 22): a wheel of this checkout, installed into a fresh venv outside it, runs
``kit validate``, ``kit score ... style`` and ``kit select`` from a folder outside the checkout on a copy of
``data_samples/``, and finds its shipped files (heads, the sample pool's footprint) inside the installed package.

Nothing is downloaded: the wheel is built with this interpreter's setuptools (no build isolation), installed with
``--no-deps --no-index``, and the dependencies are this interpreter's site-packages, named by a plain path line
in a ``.pth`` file of the new venv (a path line runs no ``.pth`` of that folder, so the checkout's editable
install does not come along: the test asserts that ``kit`` is imported from the new venv).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data_samples"

CHECK_INSTALLED = """
import json, sysconfig
from importlib import metadata
import kit
from kit.finetune.align import aligned_path
from kit.mmssr.distilled import DEFAULT_WEIGHTS
from kit.models.lit_head import HEAD_PATH, load_head
from kit.package import DISTRIBUTION
from kit.pools.footprint import sample_pool_footprint
files = [str(f) for f in metadata.files(DISTRIBUTION)]
print(json.dumps({"purelib": sysconfig.get_path("purelib"), "kit": kit.__file__,
                  "version": metadata.version(DISTRIBUTION), "files": files, "weights": [str(DEFAULT_WEIGHTS), str(HEAD_PATH)],
                  "head_dim": load_head().dim, "footprint": sample_pool_footprint().to_json(),
                  "aligned_tiny": aligned_path("tiny").name}))
"""


def _run(args, cwd, env, timeout=120) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[:3]} exited {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def _build_wheel(root: Path) -> Path:
    """A wheel of a copy of the checkout's package files (building in place would leave build/ in the checkout)."""
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "kit", src / "kit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = ("import sys\nfrom setuptools import build_meta\nprint(build_meta.build_wheel(sys.argv[1]))")
    done = _run([sys.executable, "-c", build, root / "dist"], cwd=src, env=dict(os.environ), timeout=180)
    return root / "dist" / done.stdout.strip().splitlines()[-1]


def _fresh_venv(root: Path, wheel: Path) -> Path:
    """A venv without pip, the wheel installed into it (no dependencies), this interpreter's packages beside it."""
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root, env=dict(os.environ))
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--no-compile",
          "--disable-pip-version-check", wheel], cwd=root, env=dict(os.environ), timeout=180)
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=root,
                        env={"PATH": "/usr/bin:/bin"}).stdout.strip())
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (purelib / "kit_dependencies.pth").write_text("".join(f"{p}\n" for p in ours), encoding="utf-8")
    return venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(venv, work folder outside the checkout with a copy of data_samples/, environment)``."""
    root = tmp_path_factory.mktemp("installed")
    assert ROOT not in root.resolve().parents, "the test needs a temporary folder outside the checkout"
    venv = _fresh_venv(root, _build_wheel(root))
    work = root / "work"
    shutil.copytree(DATA, work / "data_samples")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(root / "home"), "KIT_CACHE": str(root / "cache"),
           "MPLCONFIGDIR": str(root / "mpl"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    return venv, work, env


def test_the_installed_package_is_the_one_imported_and_ships_its_files(installed):
    from kit.finetune.align import aligned_path
    from kit.pools.footprint import PoolFootprint, SAMPLE_POOL_NAME

    venv, work, env = installed
    got = json.loads(_run([venv / "bin" / "python", "-c", CHECK_INSTALLED], cwd=work, env=env).stdout)
    site = Path(got["purelib"])
    assert site.is_relative_to(venv) and Path(got["kit"]).is_relative_to(site / "kit"), got["kit"]
    assert got["version"] == __import__("kit").__version__
    assert {"kit/weights/rich_distilled.pt", "kit/weights/lit_head_easyvqa.pt",
            "kit/pools/sample_pool_footprint.json", "kit/cli.py"} <= set(got["files"])
    assert all(Path(w).is_relative_to(site / "kit") and Path(w).is_file() for w in got["weights"])
    assert got["head_dim"] > 0
    # the alignment keeps the same samples out, under the same cache key, as in the checkout
    assert got["footprint"] == PoolFootprint.of_pool(DATA / "pool.json", SAMPLE_POOL_NAME).to_json()
    assert got["aligned_tiny"] == aligned_path("tiny").name


def test_validate_score_and_select_run_outside_the_checkout(installed):
    import kit

    venv, work, env = installed
    kit_cmd = venv / "bin" / "kit"
    n = len(kit.load_pool(DATA / "pool.json").table)
    done = _run([kit_cmd, "validate", "data_samples/pool.json", "--report", "rejected.csv"], cwd=work, env=env)
    assert f"{n} records read: {n} accepted" in done.stdout and (work / "rejected.csv").is_file()
    _run([kit_cmd, "score", "data_samples/pool.json", "style", "--out", "scores/style", "--no-progress"],
         cwd=work, env=env)
    styles = kit.load_scores(work / "scores" / "style")
    assert len(styles) == n and styles["styles"].map(len).gt(0).all()
    _run([kit_cmd, "select", "random", "scores/style", "--budget", "100", "--pool", "data_samples/pool.json",
          "--out", "subset.json", "--export", "subset.jsonl"], cwd=work, env=env)
    chosen = json.loads((work / "subset.json").read_text())
    assert chosen["n_selected"] == len(chosen["ids"]) == len(set(chosen["ids"])) == 100
    assert set(chosen["ids"]) <= set(styles.index.astype(str))
    exported = [json.loads(line) for line in (work / "subset.jsonl").read_text().splitlines()]
    assert [r["id"] for r in exported] == chosen["ids"]
    assert not (ROOT / "scores").exists() and not (ROOT / "subset.json").exists()
