# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/lib/debian-release.sh: the supported releases are named, each
gets its package names, anything else stops with a clear message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "scripts" / "lib" / "debian-release.sh"


def detect(tmp_path: Path, os_release: str | None):
    path = tmp_path / "os-release"
    if os_release is not None:
        path.write_text(os_release)
    script = (f'. "{LIB}"; OS_RELEASE="{path}" debian_release || exit $?; '
              'echo "$DEBIAN_CODENAME ${RELEASE_PACKAGES[*]}"')
    return subprocess.run(["bash", "-c", script], capture_output=True,
                          text=True)


@pytest.mark.parametrize("codename,version,package", [
    ("bookworm", "12", "libmagic1"),
    ("trixie", "13", "libmagic1t64"),
])
def test_supported_releases(tmp_path, codename, version, package):
    result = detect(tmp_path, (
        f'PRETTY_NAME="Debian GNU/Linux {version} ({codename})"\n'
        f'ID=debian\nVERSION_ID="{version}"\nVERSION_CODENAME={codename}\n'))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [codename, package]


@pytest.mark.parametrize("os_release,named", [
    ('PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\n'
     'VERSION_CODENAME=bullseye\n', "Debian GNU/Linux 11 (bullseye)"),
    ('PRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nVERSION_CODENAME=noble\n',
     "Ubuntu 24.04 LTS"),
    (None, "unknown"),
])
def test_other_systems_stop_with_a_message(tmp_path, os_release, named):
    result = detect(tmp_path, os_release)
    assert result.returncode != 0 and result.stdout == ""
    assert named in result.stderr
    assert "Debian 12 (bookworm), Debian 13 (trixie)" in result.stderr
