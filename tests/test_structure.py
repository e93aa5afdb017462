"""The package's imports run one way: no module reaches back to one that imports it.

Every ``import`` and ``from ... import`` in the package counts, the lazy ones inside
functions included (a lazy import still ties two modules together). A package's
``__init__`` importing its own submodules is not a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bipart_cli

PACKAGE = Path(bipart_cli.__file__).parent


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    return names


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its source."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
            found.update(c for c in candidates if c in modules)
    # a submodule naming its own package (or itself) is not an edge up the pipeline
    return {m for m in found if m != name and not name.startswith(m + ".")}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    order, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in order:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], order[other])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return found


def test_the_checker_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_no_import_circle_in_the_package():
    graph = import_graph()
    assert (
        "bipart_cli.support.bank" in graph["bipart_cli.segmentation"] | graph["bipart_cli.support"]
    )
    assert circles(graph) == []


def test_every_subpackage_ships_in_the_wheel():
    """pyproject lists the packages by name: a new folder must be listed too."""
    import tomllib

    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(init.parent.relative_to(PACKAGE.parent).parts)
        for init in PACKAGE.rglob("__init__.py")
    }
    assert folders <= listed, sorted(folders - listed)


def test_every_import_names_something_that_exists(monkeypatch):
    """Lazy imports run only when their function does: check them all here. Each
    ``from X import Y`` of ``bipart_cli`` or ``benchmarks`` in the package, tests and
    benchmarks (every group folder) must find ``Y`` in ``X`` (an attribute or a submodule),
    so moving a function or a script cannot leave a caller behind."""
    import importlib

    repo = PACKAGE.parent
    monkeypatch.syspath_prepend(str(repo))  # ``benchmarks`` is imported from the checkout
    files = [
        *PACKAGE.rglob("*.py"),
        *(repo / "tests").glob("*.py"),
        *(repo / "benchmarks").rglob("*.py"),
    ]
    missing = []
    for path in files:
        inside = path.is_relative_to(PACKAGE)
        parts = path.relative_to(repo).with_suffix("").parts
        package = list(parts[:-1]) if inside else []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or (node.level and not inside):
                continue
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if not target.startswith(("bipart_cli", "benchmarks")):
                continue
            module = importlib.import_module(target)
            for alias in node.names:
                if hasattr(module, alias.name):
                    continue
                try:
                    importlib.import_module(f"{target}.{alias.name}")
                except ModuleNotFoundError:
                    missing.append(f"{path.relative_to(repo)}: from {target} import {alias.name}")
    assert missing == []


def test_tests_mirror_the_package():
    """Issue 17 item 6: each test folder is named after the package folder it tests, so a
    change to ``bipart_cli/<room>/`` has its tests in ``tests/<room>/``."""
    tests = Path(__file__).resolve().parent
    folders = [p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
    assert folders, "no test folders found"
    assert [name for name in folders if not (PACKAGE / name).is_dir()] == []
    assert all(list((tests / name).glob("test_*.py")) for name in folders)
