# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README's definition of ``used``, for the tests of both kinds."""

from __future__ import annotations

import os
from pathlib import Path


def used_bytes(path: Path) -> int:
    """``used`` as the README defines it, computed independently of the
    code under test: apparent bytes of regular files and symlinks, each
    inode once (hard links); directories not counted."""
    seen, total = set(), 0
    for dirpath, dirnames, filenames in os.walk(path):
        # os.walk lists symlinks to directories among dirnames
        names = filenames + [d for d in dirnames
                             if os.path.islink(os.path.join(dirpath, d))]
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total
