"""Storage of interim results (snapshots) of resumable jobs."""

from .snapshot_store import (
    EXCLUDED_DIR_NAMES,
    EXCLUDED_FILE_NAMES,
    SnapshotBudgetExceeded,
    SnapshotError,
    SnapshotInfo,
    SnapshotNotFound,
    SnapshotStore,
    interim_root,
    list_job_roots,
)

__all__ = [
    "EXCLUDED_DIR_NAMES",
    "EXCLUDED_FILE_NAMES",
    "SnapshotBudgetExceeded",
    "SnapshotError",
    "SnapshotInfo",
    "SnapshotNotFound",
    "SnapshotStore",
    "interim_root",
    "list_job_roots",
]
