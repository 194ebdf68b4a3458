# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every ``module.name`` our code looks up on one of our own modules exists.

A function-level use such as ``planner.plan_with_intact_interim_results(...)``
fails only when it runs (in a worker, after a kill): when a name moves to
another module (as planning moved into plans.py), this test fails in
seconds instead, naming the file and line."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent.parent / "src" / \
    "actinia_resume_plugin"
OURS = "actinia_resume_plugin"


def _module_aliases(tree: ast.AST) -> dict[str, str]:
    """Local names bound to one of our modules by an import."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                OURS):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                try:
                    importlib.import_module(full)
                except ImportError:
                    continue  # a name, not a module
                aliases[alias.asname or alias.name] = full
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(OURS) and alias.asname:
                    aliases[alias.asname] = alias.name
    return aliases


def test_every_attribute_of_our_modules_we_use_exists():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = _module_aliases(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in aliases):
                module = importlib.import_module(aliases[node.value.id])
                if not hasattr(module, node.attr):
                    missing.append(f"{path.relative_to(PACKAGE)}:{node.lineno}"
                                   f" {node.value.id}.{node.attr}")
    assert missing == [], missing
