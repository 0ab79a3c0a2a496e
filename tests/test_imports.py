"""No import cycle inside ``kit/``, lazy (function-level) imports included (issue 22).

Every module under ``kit/`` is parsed with :mod:`ast` (nothing is imported). An edge ``A -> B`` is
any ``import``/``from ... import`` in ``A``, at any depth (module level, inside functions, methods,
``try`` blocks), whose target is a ``kit.*`` module:

- relative imports are resolved against ``A``'s package;
- importing a package counts as importing its ``__init__`` (module ``kit.x``);
- ``from kit.x import name`` where ``kit/x/name.py`` (or ``kit/x/name/``) exists counts as importing
  ``kit.x.name``; it counts as importing ``kit.x`` only when one of its names is not a submodule (a name
  that ``kit/x/__init__.py`` defines, or ``*``): ``from kit.pools import easyvqa`` is ``import
  kit.pools.easyvqa`` and needs nothing from the package's ``__init__``;
- importing ``kit.x.y`` also imports its parents' ``__init__`` (``kit``, ``kit.x``), but those implicit
  parent edges are not counted: otherwise every submodule that a package's ``__init__`` imports would be
  a cycle by construction. An *explicit* import of a parent package by its submodule
  (``from kit.finetune import ...`` in ``kit/finetune/train.py``) is counted;
- imports under ``if TYPE_CHECKING:`` are excluded: they never run;
- ``importlib.import_module(name)`` with a computed name (kit.pools.testbed's families, the CLI's
  subcommands, the scorer registry) is not seen: those load leaf modules by name.
"""
from __future__ import annotations

import ast
from pathlib import Path

KIT = Path(__file__).resolve().parents[1] / "kit"

# Cycles known and not yet removed, each as the sorted tuple of its modules, with why it stays.
# Empty: any cycle found fails the test.
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(KIT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(KIT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return False


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom node, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    targets: set[str] = set()

    def add(target: str) -> None:
        # the module itself, or the nearest enclosing kit module that exists (``import kit.x.attr``)
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target.startswith("kit") and target in modules:
            targets.add(target)

    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "kit" or alias.name.startswith("kit."):
                    add(alias.name)
            continue
        if node.level:
            base = package.split(".")
            if node.level > 1:
                base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        if not (source == "kit" or source.startswith("kit.")):
            continue
        submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in modules]
        targets.update(submodules)
        if len(submodules) < len(node.names):  # a name defined in kit.x's __init__ (or ``*``)
            add(source)
    targets.discard(name)
    return targets


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each with one cycle path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = [0]

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return components


def cycle_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through the component's first module (breadth-first, shortest)."""
    members = set(component)
    start = component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for succ in sorted(graph[node] & members):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, node, start]
                if succ not in parents:
                    parents[succ] = node
                    nxt.append(succ)
        frontier = nxt
    return component


def _describe(graph, component) -> str:
    return " -> ".join(cycle_path(graph, component)) + f"   (component: {', '.join(component)})"


def test_graph_covers_kit():
    graph = import_graph()
    assert "kit" in graph and "kit.registry" in graph
    assert any(targets for targets in graph.values())


def test_rules_on_a_synthetic_package(tmp_path, monkeypatch):
    pkg = tmp_path / "kit"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("from .b import thing\n")
    (pkg / "a" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from kit.d import X\n"
        "def f():\n    from kit.a import c, helper  # helper: a name in kit/a/__init__.py\n    import kit.d.missing_attr\n"
    )
    (pkg / "a" / "c.py").write_text("from .. import d\nfrom kit.a import e\n")
    (pkg / "a" / "e.py").write_text("")
    (pkg / "d.py").write_text("")
    monkeypatch.setattr(__import__(__name__, fromlist=["KIT"]), "KIT", pkg)
    graph = import_graph()
    assert graph["kit.a"] == {"kit.a.b"}
    assert graph["kit.a.b"] == {"kit.a", "kit.a.c", "kit.d"}  # TYPE_CHECKING import excluded
    assert graph["kit.a.c"] == {"kit.d", "kit.a.e"}  # submodules only: neither kit nor kit.a
    assert find_cycles(graph) == [["kit.a", "kit.a.b"]]


def test_no_import_cycle_in_kit():
    graph = import_graph()
    cycles = find_cycles(graph)
    new = [c for c in cycles if tuple(c) not in ALLOWED_CYCLES]
    assert not new, "import cycles in kit/ (lazy imports included):\n" + "\n".join(
        _describe(graph, c) for c in new
    )
    stale = [c for c in ALLOWED_CYCLES if list(c) not in cycles]
    assert not stale, f"allow-listed cycles that no longer exist (remove them): {stale}"
