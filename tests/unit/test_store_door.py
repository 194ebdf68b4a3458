# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The store's package is the only door: code outside ``store/`` imports
names from ``actinia_resume_plugin.store``, never from one of its modules,
so the store can be split along its seams without touching its callers."""

from __future__ import annotations

from tests.unit.test_import_graph import PACKAGE, import_graph

STORE = f"{PACKAGE}.store"


def store_modules_imported_from_outside(graph) -> dict[str, set]:
    """Module outside the store -> the store modules it imports directly."""
    return {module: {t for t in targets if t.startswith(STORE + ".")}
            for module, targets in graph.items()
            if module != STORE and not module.startswith(STORE + ".")
            and any(t.startswith(STORE + ".") for t in targets)}


def test_only_the_store_package_is_imported_from_outside():
    bypass = store_modules_imported_from_outside(import_graph())
    assert not bypass, (
        "import these names from actinia_resume_plugin.store (the door), "
        f"not from its modules: {bypass}")


def test_a_bypass_is_seen(tmp_path):
    package = tmp_path / PACKAGE
    (package / "store").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "store" / "__init__.py").write_text("from .layout import X\n")
    (package / "store" / "layout.py").write_text("X = 1\n")
    (package / "api.py").write_text(f"from {STORE}.layout import X\n")
    graph = import_graph(tmp_path, PACKAGE)
    assert store_modules_imported_from_outside(graph) == {
        f"{PACKAGE}.api": {f"{STORE}.layout"}}
    (package / "api.py").write_text(f"from {STORE} import X\n")
    assert store_modules_imported_from_outside(
        import_graph(tmp_path, PACKAGE)) == {}
