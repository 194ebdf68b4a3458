# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which ``self.`` attributes a class reads and sets, read from its source
(ast): actinia's instance attributes exist only on a running job, so the
pins of test_actinia_hooks.py compare source against source."""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap

OURS = "actinia_resume_plugin"


def actinia_part(cls: type) -> type:
    """The first class in ``cls``'s MRO that is not ours."""
    return next(k for k in cls.__mro__ if not k.__module__.startswith(OURS))


def _our_classes(cls: type) -> list[type]:
    return [k for k in cls.__mro__ if k.__module__.startswith(OURS)]


def _their_classes(cls: type) -> list[type]:
    return [k for k in cls.__mro__
            if not k.__module__.startswith(OURS) and k is not object]


@functools.cache
def _tree(cls: type) -> ast.AST:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # built in, no source
        return ast.parse("")


def _self_attributes(tree: ast.AST) -> set[str]:
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "self"}


def _assigned(tree: ast.AST) -> set[str]:
    """``self.X`` bound with ``=`` (not ``+=``: that uses an existing one)."""
    names = set()
    for node in ast.walk(tree):
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign)
                   else [])
        for target in targets:
            for item in ast.walk(target):
                if (isinstance(item, ast.Attribute)
                        and isinstance(item.value, ast.Name)
                        and item.value.id == "self"
                        and isinstance(item.ctx, ast.Store)):
                    names.add(item.attr)
    return names


def _defined(classes) -> set[str]:
    return {name for k in classes for name in vars(k)}


def actinia_attributes(cls: type) -> set[str]:
    """What actinia's part of ``cls`` has: class attributes and methods,
    and instance attributes its methods bind."""
    classes = _their_classes(cls)
    return _defined(classes).union(*(_assigned(_tree(k)) for k in classes))


def attributes_we_touch(cls: type) -> set[str]:
    """The ``self.`` attributes our part of ``cls`` uses but does not
    define itself: they must be actinia's."""
    ours = _our_classes(cls)
    used = set().union(*(_self_attributes(_tree(k)) for k in ours))
    own = _defined(ours).union(*(_assigned(_tree(k)) for k in ours))
    return used - own


def attributes_we_bind(cls: type) -> set[str]:
    """The ``self.`` attributes our part of ``cls`` binds with ``=``."""
    return set().union(*(_assigned(_tree(k)) for k in _our_classes(cls)))


def optional_attributes_we_touch(cls: type) -> set[str]:
    """Names our part of ``cls`` reads with ``getattr(self, "name", …)``."""
    names = set()
    for klass in _our_classes(cls):
        for node in ast.walk(_tree(klass)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "getattr" and len(node.args) == 3
                    and isinstance(node.args[0], ast.Name)
                    and node.args[0].id == "self"
                    and isinstance(node.args[1], ast.Constant)):
                names.add(node.args[1].value)
    return names


def actinia_reads(cls: type) -> set[str]:
    """Dotted ``self.a.b`` chains in actinia's part of ``cls``."""
    chains = set()
    for klass in _their_classes(cls):
        for node in ast.walk(_tree(klass)):
            if (isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Attribute)
                    and isinstance(node.value.value, ast.Name)
                    and node.value.value.id == "self"):
                chains.add(f"self.{node.value.attr}.{node.attr}")
    return chains
