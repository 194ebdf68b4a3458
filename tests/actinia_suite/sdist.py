# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""actinia-core's own tests, from the sdist of the pinned version.

Never copied into this repository: ``pip download`` fetches the sdist of the
actinia-core version pinned in requirements/pins.txt from the package index
(as pip installs it), and its ``tests/`` are unpacked into a cache directory
(``.data/actinia-core-<version>/actinia_core_tests``) at test time. The
sdist's ``tests/`` has no ``__init__.py`` while the tests import each other
relatively (``from .test_resource_base import …``), as a package: the
unpacked copy gets an empty ``__init__.py`` (the one file we add) and the
package name ``actinia_core_tests`` (distinct from this repository's
``tests``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PINS = REPO / "requirements" / "pins.txt"
CACHE = REPO / ".data"
#: the files of actinia's suite we run (and the base module they import)
SUITE = ("test_job_resumption.py", "test_resource_storage.py")
NEEDED = (*SUITE, "test_resource_base.py", "__init__.py")
PACKAGE = "actinia_core_tests"


def pinned_version(package: str = "actinia-core") -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)$", PINS.read_text(),
                      re.M)
    if not match:
        raise RuntimeError(f"{PINS}: no pin for {package}")
    return match.group(1)


def actinia_tests(version: str | None = None) -> Path:
    """The package directory holding actinia-core's ``tests/`` of
    ``version`` (the pinned one by default), downloaded and unpacked once;
    its parent goes on ``sys.path``."""
    version = version or pinned_version()
    target = CACHE / f"actinia-core-{version}" / PACKAGE
    if all((target / name).is_file() for name in NEEDED):
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q",
             "--disable-pip-version-check", "--no-deps", "--no-binary",
             ":all:", f"actinia-core=={version}", "-d", tmp],
            check=True)
        [archive] = Path(tmp).glob("actinia_core-*.tar.gz")
        unpacked = Path(tmp) / "tests"
        unpacked.mkdir()
        prefix = f"actinia_core-{version}/tests/"
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.startswith(prefix) \
                        and "/" not in member.name[len(prefix):]:
                    member.name = member.name[len(prefix):]
                    tar.extract(member, unpacked, filter="data")
        (unpacked / "__init__.py").write_text("")
        missing = [n for n in NEEDED if not (unpacked / n).is_file()]
        if missing:
            raise RuntimeError(f"{archive.name} has no tests/{missing}")
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        unpacked.rename(target)
    return target
