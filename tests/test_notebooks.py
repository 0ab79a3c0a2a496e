"""Every notebook runs headless with papermill on the sample pool (quick parameters), in order.

Notebooks are stored without outputs; their hidden assertion cells (tag ``assertions``) check the story.
"""
import json
from pathlib import Path

import nbformat
import pytest

from kit.demo import notebook_paths, run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = notebook_paths(folder=ROOT / "notebooks")
POOL = ROOT / "data_samples" / "pool.json"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("run")


def test_notebooks_are_ordered_and_stored_clean():
    names = [p.name for p in NOTEBOOKS]
    assert names and names[0] == "00_pool.ipynb" and names == sorted(names)
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, f"{path.name} needs exactly one parameters cell"
        assert "quick" in params[0].source and "pool_path" in params[0].source, path.name
        assert any("assertions" in c.metadata.get("tags", []) for c in nb.cells), f"{path.name} has no checks"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} is stored with outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_papermill_reads_every_parameter(path):
    """papermill skips a parameter line it cannot parse (e.g. an ``=`` in its comment), and the demo and
    ``kit notebooks -p`` then cannot set it."""
    import ast

    import papermill as pm

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)]
    assert list(pm.inspect_notebook(str(path))) == assigned


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_headless(path, run_dir):
    out = run_notebook(path, run_dir, POOL, quick=True)
    nb = json.loads(out.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert list((run_dir / "figures").glob(f"{path.name[:2]}_*.png")), f"{path.name} saved no figure"


def test_experiment_sets_up_the_training_notebooks(tmp_path, monkeypatch):
    """kit.notebook.experiment: 04's pool (a third of it when quick) and truth table, 05's run folder alone, and the
    base each needs, built only when read and only once."""
    import kit.finetune as ft
    import kit.notebook

    built = []
    monkeypatch.setattr(ft, "base_model", lambda preset: built.append(("base_model", preset)) or tmp_path / "full")
    monkeypatch.setattr(ft, "quick_base", lambda preset: built.append(("quick_base", preset)) or tmp_path / "quick")
    monkeypatch.setattr(ft, "align", lambda preset, **changes: built.append(("align", preset, changes)) or tmp_path)

    exp = kit.notebook.experiment(tmp_path / "run", quick=True, pool_path=POOL)
    assert exp.run_dir.is_dir() and exp.figures_dir == tmp_path / "run" / "figures"
    assert list(exp.pool.table.index) == list(kit.load_pool(POOL).table.index[::3]) and exp.labels is not None
    assert built == [] and exp.base == tmp_path / "quick" and exp.base == tmp_path / "quick"
    assert built == [("quick_base", "tiny")]
    tb = kit.notebook.experiment(tmp_path / "run", quick=True, preset="testbed")
    assert tb.pool is None and tb.base == tmp_path
    assert built[-1] == ("align", "testbed", {"progress": False, **kit.notebook.QUICK_ALIGN["testbed"]})
    assert kit.notebook.experiment(tmp_path / "run", preset="testbed").base == tmp_path / "full"
    assert built[-1] == ("base_model", "testbed")


def test_the_demo_prints_each_notebooks_time_and_the_total(monkeypatch, tmp_path, capsys):
    import kit.demo
    from kit.cli import main

    monkeypatch.setattr(kit.demo, "run_notebook", lambda path, run_dir, pool, quick, parameters=None: None)
    assert main(["demo", "--only", "00", "01", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "00_pool.ipynb" in out and "01_scoring.ipynb" in out
    assert [line.split()[0] for line in out.splitlines() if line.strip().endswith("min)")] == ["total"]
