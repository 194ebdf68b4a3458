# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/design/modules.md names every module of src/: the map a newcomer
reads first must not miss a room of the house."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PACKAGE = REPO / "src" / "actinia_resume_plugin"
MODULE_MAP = REPO / "docs" / "design" / "modules.md"


def test_every_module_of_src_is_on_the_module_map():
    text = MODULE_MAP.read_text(encoding="utf-8")
    missing = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "__init__.py"
        and f"`{path.relative_to(PACKAGE)}`" not in text
    ]
    assert missing == [], f"add these modules to {MODULE_MAP.name}: {missing}"


def test_every_shared_test_helper_is_on_the_module_map():
    """The helpers of the real-stack tests and the scripts they share with
    the demo are on the map too (a test file names itself)."""
    text = MODULE_MAP.read_text(encoding="utf-8")
    helpers = [path for path in sorted((REPO / "tests" / "integration")
                                       .glob("*.py"))
               if not path.name.startswith(("test_", "__"))]
    helpers += sorted((REPO / "scripts").glob("*.py"))
    missing = [str(path.relative_to(REPO)) for path in helpers
               if f"`{path.relative_to(REPO)}`" not in text]
    assert missing == [], f"add these modules to {MODULE_MAP.name}: {missing}"
