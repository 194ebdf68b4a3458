# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The store of interim results: the one door the rest of the plugin uses.

Code outside ``store/`` imports names from this package only, never from its
modules (``tests/unit/test_store_door.py`` checks it), so the store's
modules can be split and renamed without touching the HTTP layer, the
worker or the planner. Two faces:

- one job root (:class:`SnapshotStore`, the job record, a kept mapset and
  its adoption): what one job saves, restores and keeps;
- a user's resource storage (``/resource_storage``): storage units, sizes,
  cleaning, retention and eviction across the user's jobs.
"""

from .adoption import (
    KeptListing,
    NotAdoptable,
    adopt_kept_mapset,
    files_to_put_back,
)
from .errors import (
    SnapshotBudgetExceeded,
    SnapshotDamaged,
    SnapshotError,
    SnapshotNoSpace,
    SnapshotNotFound,
)
from .fsops import rmtree
from .job_record import JobRecord, chain_problem, read_job_record
from .kept_mapset import KeptMapset
from .layout import (
    EXCLUDED_DIR_NAMES,
    EXCLUDED_FILE_NAMES,
    INTERIM_DIR,
    RESOURCE_PREFIX,
    check_user_id,
    interim_root,
    list_job_roots,
    user_storage_dir,
)
from .manifest import SnapshotInfo
from .resource_storage import (
    clean_user_storage,
    evict_kept_mapsets,
    evict_unused_interim_results,
    expire_interim_results,
    parse_olderthan,
    scan_user_storage,
    storage_usage,
)
from .snapshot_store import SnapshotStore

__all__ = [
    "EXCLUDED_DIR_NAMES",
    "EXCLUDED_FILE_NAMES",
    "INTERIM_DIR",
    "JobRecord",
    "KeptListing",
    "KeptMapset",
    "NotAdoptable",
    "RESOURCE_PREFIX",
    "SnapshotBudgetExceeded",
    "SnapshotDamaged",
    "SnapshotError",
    "SnapshotInfo",
    "SnapshotNoSpace",
    "SnapshotNotFound",
    "SnapshotStore",
    "adopt_kept_mapset",
    "chain_problem",
    "check_user_id",
    "clean_user_storage",
    "evict_kept_mapsets",
    "evict_unused_interim_results",
    "expire_interim_results",
    "files_to_put_back",
    "interim_root",
    "list_job_roots",
    "parse_olderthan",
    "read_job_record",
    "rmtree",
    "scan_user_storage",
    "storage_usage",
    "user_storage_dir",
]
