# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one poll helper (the HTTP client's waits, the real-stack tests, the
benchmark): wait for an event, bounded.

A caller waits for something the deployment does (a job's status, a file, a
process exit) by asking again until it is so or a deadline passes, never by
sleeping for a guessed time. The deadline is a bound that fails with a
message, not a measurement.
"""

from __future__ import annotations

import time


def poll(check, what: str, timeout: float = 60.0, interval: float = 0.1):
    """Call ``check`` until it returns something true and return that;
    fail with ``timed out waiting for <what>`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
