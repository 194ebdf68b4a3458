# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Storage of interim results (snapshots) of resumable jobs."""

from .snapshot_store import (
    EXCLUDED_DIR_NAMES,
    EXCLUDED_FILE_NAMES,
    SnapshotBudgetExceeded,
    SnapshotDamaged,
    SnapshotError,
    SnapshotInfo,
    SnapshotNoSpace,
    SnapshotNotFound,
    SnapshotStore,
    interim_root,
    list_job_roots,
)

__all__ = [
    "EXCLUDED_DIR_NAMES",
    "EXCLUDED_FILE_NAMES",
    "SnapshotBudgetExceeded",
    "SnapshotDamaged",
    "SnapshotError",
    "SnapshotInfo",
    "SnapshotNoSpace",
    "SnapshotNotFound",
    "SnapshotStore",
    "interim_root",
    "list_job_roots",
]
