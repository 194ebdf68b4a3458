# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Names of the plugin's keys in actinia's key-value database (valkey).

All keys the plugin writes live here, so that the API (PUT, resource
storage) and the workers, which may run on other hosts, agree on them (as
rq keeps its own key names in one module). Every key starts with
``actinia_resume_plugin::`` and names the job as ``<user_id>::<resource_id>``
(``resource_id-…``), so an operator can list one job's keys with
``SCAN MATCH 'actinia_resume_plugin::*::<user_id>::<resource_id>*'``.
"""

from __future__ import annotations

PREFIX = "actinia_resume_plugin"

#: Seconds a PUT holds its lock (released as soon as the PUT is answered).
PUT_LOCK_SECONDS = 60
#: How long the picked-up marker of an iteration is kept. It only matters
#: while actinia still shows the iteration as ``accepted`` or ``running``
#: after its process died; job.json keeps the same evidence on disk.
PICKED_TTL_SECONDS = 30 * 86400


def _job(kind: str, user_id: str, resource_id: str) -> str:
    return f"{PREFIX}::{kind}::{user_id}::{resource_id}"


def heartbeat(user_id: str, resource_id: str) -> str:
    """Renewed every few seconds by the process running the job; its value
    is the worker identity (host, boot, pid namespace, pid) and iteration."""
    return _job("alive", user_id, resource_id)


def put_lock(user_id: str, resource_id: str) -> str:
    """Held while one PUT of the job is being processed."""
    return _job("put", user_id, resource_id)


def picked(user_id: str, resource_id: str, iteration: int) -> str:
    """Set by the worker when it picks up ``iteration`` of the job (long
    TTL): tells a job whose process died from one still waiting in a
    queue, whatever actinia's status says."""
    return f"{_job('picked', user_id, resource_id)}::{int(iteration)}"


def local_job(user_id: str, resource_id: str) -> str:
    """A job of actinia's local queue: its pickled arguments (as rq keeps
    them for its jobs) and iteration, so that a job that died with its API
    process is continued by the next one (continuation.py)."""
    return _job("local", user_id, resource_id)
