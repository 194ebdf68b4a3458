# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""No import cycles in src/: a cycle makes the import order matter, and a
function-local import that hides one breaks as soon as someone moves it to
the top. The graph is read from the source (ast), function-local imports
included; only imports under ``if TYPE_CHECKING:`` are left out (they never
run)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

PACKAGE = "actinia_resume_plugin"
SRC = Path(__file__).resolve().parent.parent.parent / "src"


def module_names(src: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Import nodes of a module, at any depth, except TYPE_CHECKING ones."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from … import`` names."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    return ".".join(parts[:keep] + ([node.module] if node.module else []))


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``module`` imports: a submodule when
    ``from package import name`` names one, else the module itself."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = set()
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _base(module, is_package, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known
                       else base for a in node.names]
        found.update(t for t in targets if t in known)
    found.discard(module)
    return found


def import_graph(src: Path = SRC, package: str = PACKAGE) -> dict[str, set]:
    modules = module_names(src, package)
    return {name: imported_modules(name, path, set(modules))
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set]) -> list[str] | None:
    """One cycle as ``[a, b, …, a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_src_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_graph_sees_function_local_and_relative_imports():
    graph = import_graph()
    # endpoints.py imports module_plugin inside a function
    assert f"{PACKAGE}.api.module_plugin" in graph[f"{PACKAGE}.endpoints"]
    # store/resource_storage.py: "from . import job_record"
    assert f"{PACKAGE}.store.job_record" in graph[
        f"{PACKAGE}.store.resource_storage"]
    assert f"{PACKAGE}.plans" in graph[f"{PACKAGE}.api.resume"]


def test_a_planted_cycle_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text(
        "def f():\n    from .. import a\n    return a\n")
    assert find_cycle(import_graph(tmp_path, "pkg")) == [
        "pkg.a", "pkg.sub.b", "pkg.a"]
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from pkg import a\n")
    assert find_cycle(import_graph(tmp_path, "pkg")) is None


def test_every_module_is_in_the_graph():
    count = sum(1 for _, _, files in os.walk(SRC / PACKAGE)
                for name in files if name.endswith(".py"))
    assert len(import_graph()) == count
