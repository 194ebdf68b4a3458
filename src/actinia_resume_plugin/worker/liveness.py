"""Tell a running job from a dead one.

actinia-core decides that a ``running`` job is dead when its ``time_delta``
did not change within 5 seconds; a long GRASS module that sends no update
looks dead, and the PUT blocks for 5 s. Instead, our worker holds a
heartbeat key in the key-value store (valkey) that it renews every few
seconds and that expires shortly after the worker stops renewing it. It also
records which process runs the job (host, pid and the pid's start time), so
that on the same host a killed worker is recognised at once.
"""

from __future__ import annotations

import json
import os
import socket
import threading

HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TTL_SECONDS = 10


def heartbeat_key(user_id: str, resource_id: str) -> str:
    return f"actinia_resume_plugin::alive::{user_id}::{resource_id}"


def process_start_time(pid: int) -> str | None:
    """The start time of a living ``pid`` in clock ticks since boot (from
    /proc), so that a recycled pid is not mistaken for the worker. None for
    a missing process and for a zombie (killed, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def worker_identity() -> dict:
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "pid_start": process_start_time(pid),
    }


def identity_is_dead(identity: dict | None) -> bool:
    """True only when we can prove that the recorded worker is gone."""
    if not identity or identity.get("host") != socket.gethostname():
        return False
    pid = identity.get("pid")
    if not isinstance(pid, int):
        return False
    return process_start_time(pid) != identity.get("pid_start")


class Heartbeat:
    """Context manager: renew the job's heartbeat key while the job runs."""

    def __init__(self, kvdb, user_id: str, resource_id: str, iteration):
        self.kvdb = kvdb
        self.key = heartbeat_key(user_id, resource_id)
        self.value = json.dumps({**worker_identity(), "iteration": iteration})
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name="resume-heartbeat", daemon=True
        )

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._set()

    def _set(self) -> None:
        try:
            self.kvdb.set(self.key, self.value, ex=HEARTBEAT_TTL_SECONDS)
        except Exception:  # a hiccup of the kvdb must not kill the job
            pass

    def __enter__(self) -> Heartbeat:
        self._set()  # before the job can be seen as running
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.kvdb.delete(self.key)
        except Exception:
            pass


def job_is_alive(kvdb, user_id: str, resource_id: str) -> bool:
    """A job is alive while its heartbeat key exists and, when it runs on
    this host, its worker process still exists."""
    raw = kvdb.get(heartbeat_key(user_id, resource_id))
    if raw is None:
        return False
    try:
        identity = json.loads(raw)
    except (TypeError, ValueError):
        return True
    return not identity_is_dead(identity)
