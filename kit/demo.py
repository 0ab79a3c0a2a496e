"""Running the notebooks with papermill (``kit notebooks``, ``kit demo``, ``make demo``; :mod:`kit.commands.notebooks`).

    kit demo [--notebooks DIR] [--pool data_samples/pool.json] [--out runs/<timestamp>] [--quick] [--only 00 01]
    python -m kit.demo ...             (the same; make demo runs it)

The notebooks are the checkout's, not the package's: ``--notebooks DIR``, else ``notebooks/`` in the working
directory (``make demo`` runs from the checkout's root). Each runs with its own folder as working directory, so
its relative defaults (``../data_samples/pool.json``, ``../runs/``) are the checkout's.

Each notebook gets the parameters it declares among ``pool_path`` (only with ``--pool``: otherwise each
notebook reads its own default, ``data_samples/`` for 00-03 and 06, the 2,000-sample easy-vqa experiment pool
for 04; 05 draws the committed testbed results), ``run_dir`` (score tables and ``figures/`` go there; notebooks share it, so later ones reuse
earlier scores) and ``quick``.
"""
from __future__ import annotations

from pathlib import Path


def notebooks_dir(folder=None) -> Path:
    """The notebooks folder: ``folder`` when given, else ``notebooks/`` in the working directory."""
    path = Path(folder) if folder is not None else Path("notebooks")
    if not path.is_dir():
        raise FileNotFoundError(f"no notebooks folder at {path.resolve()}: pass --notebooks DIR, or run from the "
                                "root of a checkout of the kit (the notebooks are not part of the installed package)")
    return path.resolve()


def notebook_paths(only=None, folder=None) -> list[Path]:
    """The numbered notebooks of :func:`notebooks_dir` (``only``: name prefixes to keep)."""
    paths = sorted(notebooks_dir(folder).glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    return paths


def run_notebook(path: Path, run_dir: Path, pool_path: Path | None, quick: bool, log_output: bool = False,
                 parameters: dict | None = None) -> Path:
    """Execute one notebook into ``run_dir`` with the parameters it declares; returns the output path.

    ``pool_path`` ``None`` leaves the notebook's own pool; ``parameters`` adds (or overrides) parameters; each
    notebook gets only those its parameters cell declares.
    """
    import papermill as pm

    offered = {"run_dir": str(Path(run_dir).resolve()), "quick": quick, **(parameters or {})}   # the notebook's cwd differs
    if pool_path is not None:
        offered["pool_path"] = str(pool_path)
    declared = pm.inspect_notebook(str(path))
    params = {k: v for k, v in offered.items() if k in declared}
    out = run_dir / path.name
    pm.execute_notebook(str(path), str(out), parameters=params, cwd=str(path.parent), kernel_name="python3",
                        progress_bar=False, log_output=log_output,
                        extra_arguments=["--log-level=ERROR"])  # keep the kernel's start-up chatter out of the log
    return out


def describe_pool(pool) -> str:
    return str(pool) if pool else "their own pools (data_samples/; 04: the easy-vqa experiment pool; 05: results/testbed/)"


if __name__ == "__main__":  # python -m kit.demo (make demo): an alias of kit demo (kit.commands.notebooks)
    from kit.cli import alias

    raise SystemExit(alias("demo"))
