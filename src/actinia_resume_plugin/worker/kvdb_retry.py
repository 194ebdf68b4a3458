# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""A running job outlives a valkey restart.

actinia's job code writes its status documents, asks for termination
requests and extends mapset locks in valkey while it runs; a connection
error there fails the job (``status: error``, "Error 111 connecting to …"),
although the chain did nothing wrong and the GRASS module was fine. The job
therefore talks to valkey through :class:`RetryingClient`: a call that
cannot reach valkey is tried again (every :data:`RETRY_SECONDS`) until valkey
answers, for at most :data:`OUTAGE_SECONDS`; the job waits instead of
failing and goes on where it was. A longer outage fails the job as before,
and the continuation after worker loss (``continuation.py``) picks it up
when its heartbeat is gone.
"""

from __future__ import annotations

import functools
import logging
import time

#: How long a job waits for valkey before it gives up.
OUTAGE_SECONDS = 300.0
RETRY_SECONDS = 0.5

log = logging.getLogger("actinia_resume_plugin.kvdb_retry")


def _connection_errors() -> tuple[type[BaseException], ...]:
    from actinia_resume_plugin.api.unavailable import kvdb_errors

    return kvdb_errors()


class RetryingClient:
    """Delegates to ``target`` (actinia's ResourceLogger or lock interface
    of the job); its methods retry on valkey connection errors."""

    def __init__(self, target, outage_seconds: float = OUTAGE_SECONDS):
        self._target = target
        self._outage_seconds = outage_seconds
        self._errors = _connection_errors()

    def __getattr__(self, name):
        value = getattr(self._target, name)
        if not callable(value):
            return value

        @functools.wraps(value)
        def retrying(*args, **kwargs):
            deadline = None
            while True:
                try:
                    result = value(*args, **kwargs)
                except self._errors as exc:
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self._outage_seconds
                        log.warning("actinia_resume_plugin: valkey "
                                    "unreachable in %s (%s); the job waits "
                                    "up to %s s", name, exc,
                                    self._outage_seconds)
                    if now >= deadline:
                        raise
                    time.sleep(RETRY_SECONDS)
                    continue
                if deadline is not None:
                    log.warning("actinia_resume_plugin: valkey reachable "
                                "again; the job goes on")
                return result

        return retrying
