# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Directories removed only after a job's final status was sent.

Removing the temporary database of a job with thousands of maps, or a
kept mapset of no further use, takes seconds; renaming it away is instant.
So the worker renames now and removes at the very end, and clean-up never
delays ``finished``. A job killed before its removal ends leaves its
renamed dir behind; the next job's removal in the same parent takes it
along (:meth:`DeferredRemovals.remove_all`), so no such leftover stays.
"""

from __future__ import annotations

import os
import re
import uuid

from actinia_resume_plugin.store import KeptMapset, rmtree

#: A dir renamed away by :meth:`DeferredRemovals.rename_away`.
RENAMED_AWAY_RE = re.compile(r".\.removing-[0-9a-f]{32}$")


class DeferredRemovals:
    """The directories to remove once the final status was sent."""

    def __init__(self, log):
        self.log = log  # info/warning, as actinia's message logger
        self.paths: list = []
        self.parents: set = set()  # of the dirs renamed away

    def add(self, path) -> None:
        if path is not None:
            self.paths.append(path)

    def rename_away(self, base) -> None:
        """Rename the directory ``base`` (not a link) to a sibling
        ``<base>.removing-<random>``, removed at the end; nothing when it
        is missing or the rename fails (its owner removes it as before)."""
        if base and os.path.isdir(base) and not os.path.islink(base):
            trash = f"{str(base).rstrip('/')}.removing-{uuid.uuid4().hex}"
            try:
                os.rename(base, trash)
            except OSError:
                return
            self.paths.append(trash)
            self.parents.add(os.path.dirname(trash))

    def discard_kept(self, kept: KeptMapset) -> None:
        """The kept mapset is of no use any more: renamed away now, removed
        at the end."""
        try:
            self.paths.extend(kept.discard_all())
        except OSError as exc:
            self.log.warning(f"Kept mapset clean-up: {exc}")

    def remove_all(self) -> None:
        """Remove the dirs, then what killed jobs renamed away beside them:
        nobody uses a renamed-away dir again, and one its own job is still
        removing is removed twice harmlessly (rmtree skips what vanished)."""
        for path in self.paths:
            rmtree(path)
        for parent in sorted(self.parents):
            try:
                names = os.listdir(parent)
            except OSError:
                continue
            for name in names:
                if RENAMED_AWAY_RE.search(name):
                    rmtree(os.path.join(parent, name))
