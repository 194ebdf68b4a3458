# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The errors of the snapshot store, each with its message.

One module so that every part of the store (objects, manifests, restorer,
facade) raises the same classes and callers outside ``store/`` catch them
from the package door. Each class says in its docstring when it is raised.

Plain Python, no imports of the plugin.
"""

from __future__ import annotations

__all__ = [
    "SnapshotBudgetExceeded",
    "SnapshotDamaged",
    "SnapshotError",
    "SnapshotNoSpace",
    "SnapshotNotFound",
]


class SnapshotError(Exception):
    """Base class of snapshot store errors."""


class SnapshotNotFound(SnapshotError, KeyError):
    """The requested step has no (valid) snapshot."""

    def __init__(self, step: int):
        super().__init__(step)
        self.step = step

    def __str__(self) -> str:
        return f"no snapshot for step {self.step}"


class SnapshotBudgetExceeded(SnapshotError):
    """Saving would write more new bytes than allowed; nothing was written."""

    def __init__(self, needed: int, budget: int):
        super().__init__(needed, budget)
        self.needed = needed
        self.budget = budget

    def __str__(self) -> str:
        return (f"snapshot needs {self.needed} bytes of new storage, "
                f"budget is {self.budget} bytes")


class SnapshotNoSpace(SnapshotError):
    """The file system is (nearly) full; nothing of the snapshot remains."""

    def __str__(self) -> str:
        return f"no space left for the interim result: {self.args[0]}"


class SnapshotDamaged(SnapshotError):
    """A stored file does not match its record (missing, truncated,
    overwritten): the snapshot must not be restored."""

    def __init__(self, step: int, part: str, relpath: str, reason: str):
        super().__init__(step, part, relpath, reason)
        self.step, self.part, self.relpath, self.reason = (
            step, part, relpath, reason)

    def __str__(self) -> str:
        return (f"interim result of step {self.step} is damaged: "
                f"{self.part}/{self.relpath} {self.reason}")
