# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Keep jobs of normal users out of the resource storage.

Every job of every user runs as the same system user, and actinia checks no
paths in a process chain: a module of the allow list that takes a file
(``r.out.png output=…``, ``r.colors.out rules=…``, ``v.in.ascii input=…``)
could read or overwrite another user's interim results in
``grass_resource_dir``. The allow list of a deployment must hold no shell
or file tool (those can build any path at run time); for the modules that
remain, this check refuses, for every role but ``superadmin``, a process
whose arguments name a path inside ``grass_resource_dir``. The job's own
files (``$file::…`` outputs, exports) are written by actinia itself into the
job's temporary directory and never appear there as arguments.
"""

from __future__ import annotations

import os
import re

_SPLIT = re.compile(r"[=,;:\s]")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def forbidden_argument(args, resource_dir: str, cwd: str) -> str | None:
    """The first argument that names a path inside ``resource_dir`` (also
    relative to ``cwd``, through symlinks and ``..``), or None."""
    root = os.path.realpath(resource_dir)
    for arg in args:
        text = str(arg)
        for part in [text, *_SPLIT.split(text)]:
            if "/" not in part and part not in (".", ".."):
                continue
            path = os.path.realpath(os.path.join(cwd, part))
            if _inside(path, root) or _inside(
                    os.path.normpath(os.path.join(cwd, part)), root):
                return text
    return None


def check_processes(process_list, user_role: str, resource_dir: str,
                    cwd: str | None = None) -> str | None:
    """Why ``process_list`` is refused for a user of ``user_role``, or
    None (superadmins may do anything, as in actinia)."""
    if user_role == "superadmin":
        return None
    cwd = cwd or os.getcwd()
    for process in process_list:
        args = [getattr(process, "executable", "")] + list(
            getattr(process, "executable_params", None) or [])
        bad = forbidden_argument(args, resource_dir, cwd)
        if bad is not None:
            shown = bad.replace(os.path.realpath(resource_dir),
                                "<grass_resource_dir>").replace(
                resource_dir.rstrip("/"), "<grass_resource_dir>")
            return (f"Module or executable <{process.executable}>: the "
                    f"argument {shown!r} names a path in the resource "
                    "storage, which only actinia itself may read and write")
    return None
