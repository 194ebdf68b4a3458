# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The worker's side of the job record (``job.json``): what a later PUT
needs to plan and run the resumption. The one place the worker writes it;
reading and sealing are the store's (``store/job_record.py``)."""

from __future__ import annotations

import time

from actinia_resume_plugin.store import SnapshotStore, read_job_record


def write_job_record(store: SnapshotStore, fields: dict) -> dict:
    """Update the job record of ``store`` with ``fields`` and the time;
    returns the record written. A damaged record (or field) counts as
    missing, as for the PUT. Raises OSError (a full disk, a damaged job
    root)."""
    record = read_job_record(store.root).data
    record.update(fields, updated=time.time())
    store.write_job(record)
    return record
