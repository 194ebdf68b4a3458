# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Jobs the real-stack tests run for what they check: a map's statistics
read back, a PUT retried while the job is still seen running."""

from __future__ import annotations

from actinia_client import ActiniaClient
from polling import poll

from .chains import chain, univar


def univar_of(client: ActiniaClient, map_name: str) -> dict:
    """``r.univar -g`` of a map, run as a new job (reads results back)."""
    doc = client.run_chain("processing_async",
                           chain(univar("univar", map_name, "stats")))
    assert doc["status"] == "finished", doc["message"]
    return doc["process_results"]["stats"]


def put_until_not(client: ActiniaClient, status_url: str, body=None,
                  status: int = 404, timeout: float = 30, interval=1.0):
    """PUT until the answer is not ``status`` (the job still shows as
    running until its heartbeat expires, or its PUT lock is held); the last
    answer."""
    answers = []

    def answered():
        answers.append(client.put(status_url, body))
        return answers[-1].status_code != status
    try:
        poll(answered, f"a PUT not answered {status}", timeout, interval)
    except AssertionError:
        pass  # the caller's assert shows the answer
    return answers[-1]
