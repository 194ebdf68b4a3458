# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Directories removed only after a job's final status was sent.

Removing the temporary database of a job with thousands of maps, or a
kept mapset of no further use, takes seconds; renaming it away is instant.
So the worker renames now and removes at the very end, and clean-up never
delays ``finished``.
"""

from __future__ import annotations

import os
import uuid

from actinia_resume_plugin.store import KeptMapset, rmtree


class DeferredRemovals:
    """The directories to remove once the final status was sent."""

    def __init__(self, log):
        self.log = log  # info/warning, as actinia's message logger
        self.paths: list = []

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

    def discard_kept(self, kept: KeptMapset) -> None:
        """The kept mapset is of no use any more: renamed away now, removed
        at the end."""
        try:
            self.paths.extend(kept.discard_all())
        except OSError as exc:
            self.log.warning(f"Kept mapset clean-up: {exc}")

    def remove_all(self) -> None:
        for path in self.paths:
            rmtree(path)
