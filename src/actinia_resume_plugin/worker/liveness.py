# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tell a running job from a dead one, and a dead job from a waiting one.

actinia-core decides that a ``running`` job is dead when its ``time_delta``
did not change within 5 seconds; a long GRASS module that sends no update
looks dead, and the PUT blocks for 5 s. Instead, our worker holds a
heartbeat key in the key-value store (valkey) that it renews every few
seconds and that expires shortly after the worker stops renewing it. It also
records which process runs the job (host, boot, pid namespace, pid and the
pid's start time), so that a killed worker that the API can see (same boot,
same pid namespace) is recognised at once.

With actinia's kvdb queue (rq workers) nothing updates actinia's status when
a job's process dies: the job stays ``accepted`` (actinia writes ``running``
only after ~5 s inside one module) or ``running`` for ever. When the worker
picks up an iteration it therefore also sets a long-lived *picked-up* marker
(see :mod:`actinia_resume_plugin.keys`). An iteration that was picked up and
has no heartbeat is dead; one that was never picked up is still waiting in
its queue.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import socket
import threading
import time

from actinia_resume_plugin import keys

HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TTL_SECONDS = 10

log = logging.getLogger("actinia_resume_plugin.liveness")


def heartbeat_key(user_id: str, resource_id: str) -> str:
    return keys.heartbeat(user_id, resource_id)


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


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _pid_namespace() -> str | None:
    """The inode of our pid namespace: pids are only comparable between
    processes of the same namespace (containers share hostnames)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return None


def pid_space() -> dict:
    """Where pids mean the same process: host name, boot and pid
    namespace."""
    return {"host": socket.gethostname(), "boot_id": _boot_id(),
            "pidns": _pid_namespace()}


def worker_identity() -> dict:
    pid = os.getpid()
    return {**pid_space(), "pid": pid, "pid_start": process_start_time(pid)}


def same_pid_space(identity: dict) -> bool:
    """True when ``identity``'s pid can be looked up in our /proc: same
    host name, same boot and same pid namespace. Records without boot id or
    namespace (older workers) are never judged by pid."""
    ours = pid_space()
    return all(ours[k] is not None and identity.get(k) == ours[k]
               for k in ("host", "boot_id", "pidns"))


def identity_is_dead(identity: dict | None) -> bool:
    """True only when we can prove that the recorded worker is gone: it ran
    in our pid space and its pid is gone, a zombie or another process."""
    if not isinstance(identity, dict) or not same_pid_space(identity):
        return False
    pid = identity.get("pid")
    if not isinstance(pid, int):
        return False
    return process_start_time(pid) != identity.get("pid_start")


def _current_queue() -> str | None:
    """The rq queue the job came from (kvdb queue), None in local mode."""
    try:
        from rq import get_current_job

        job = get_current_job()
        return job.origin if job is not None else None
    except Exception:
        return None


class Heartbeat:
    """Context manager: mark the iteration as picked up, and renew the
    job's heartbeat key while the job runs.

    Failures to reach the key-value database are logged (once when they
    start, once when they end) and do not stop the job: a job whose
    heartbeat cannot be written is judged by the heartbeat's TTL like a
    dead one, which a PUT then resumes.
    """

    def __init__(self, kvdb, user_id: str, resource_id: str, iteration):
        self.kvdb = kvdb
        self.key = keys.heartbeat(user_id, resource_id)
        self.iteration = int(iteration or 1)
        self.picked_key = keys.picked(user_id, resource_id, self.iteration)
        self.value = json.dumps({**worker_identity(),
                                 "iteration": self.iteration,
                                 "queue": _current_queue()})
        self.failures = 0
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
        except Exception as exc:  # a hiccup of the kvdb must not kill the job
            self.failures += 1
            if self.failures == 1:
                log.warning("actinia_resume_plugin: heartbeat %s could not "
                            "be written (%s); the job may be judged dead "
                            "after %s s", self.key, exc,
                            HEARTBEAT_TTL_SECONDS)
            return
        if self.failures:
            log.warning("actinia_resume_plugin: heartbeat %s written again "
                        "after %d failure(s)", self.key, self.failures)
            self.failures = 0

    def _mark_picked(self) -> None:
        """The picked-up marker and the first heartbeat in one transaction:
        there is never a heartbeat without the marker."""
        record = json.dumps({**json.loads(self.value),
                             "picked_at": time.time()})
        try:
            pipe = self.kvdb.pipeline(transaction=True)
            pipe.set(self.picked_key, record, ex=keys.PICKED_TTL_SECONDS)
            pipe.set(self.key, self.value, ex=HEARTBEAT_TTL_SECONDS)
            pipe.execute()
        except Exception as exc:
            log.warning("actinia_resume_plugin: could not mark %s as picked "
                        "up (%s)", self.picked_key, exc)
            self._set()

    def __enter__(self) -> Heartbeat:
        self._mark_picked()  # before the job can be seen as running
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.kvdb.delete(self.key)
        except Exception as error:
            log.warning("actinia_resume_plugin: heartbeat %s not removed "
                        "(%s); it expires in %s s", self.key, error,
                        HEARTBEAT_TTL_SECONDS)


def _load(raw) -> dict | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def job_is_alive(kvdb, user_id: str, resource_id: str,
                 iteration: int | None = None) -> bool:
    """A job is alive while its heartbeat key exists (for ``iteration``,
    when given) and, when it runs in our pid space, its process exists."""
    identity = _load(kvdb.get(keys.heartbeat(user_id, resource_id)))
    if identity is None:
        return False
    beat_iteration = identity.get("iteration")
    if (iteration is not None and beat_iteration is not None
            and int(beat_iteration or 1) != int(iteration)):
        return False  # a stale beat of an earlier iteration
    return not identity_is_dead(identity)


class JobState(enum.Enum):
    """What became of an ``accepted`` or ``running`` iteration."""

    ALIVE = "alive"          # its process is (or may be) working on it
    DEAD = "dead"            # picked up by a worker whose process is gone
    WAITING = "waiting"      # never picked up: waiting in a queue
    UNPROVEN = "unproven"    # `running`, but no record of who picked it up


def judge_job(kvdb, user_id: str, resource_id: str, iteration: int,
              status: str, job_record: dict | None = None
              ) -> tuple[JobState, str]:
    """The state of iteration ``iteration`` of a job that actinia lists as
    ``status`` (``accepted``/``running``), and why.

    ``job_record`` is the job's job.json (written by the worker when it
    validated the chain, with status ``running`` and the iteration): like
    the picked-up marker it proves that a worker took the iteration.
    """
    iteration = int(iteration or 1)
    identity = _load(kvdb.get(keys.heartbeat(user_id, resource_id)))
    if identity is not None and int(identity.get("iteration") or 1) \
            == iteration:
        if identity_is_dead(identity):
            return JobState.DEAD, (
                f"its worker process {identity.get('pid')} on "
                f"{identity.get('host')} is gone")
        return JobState.ALIVE, "its worker's heartbeat is alive"
    picked = _load(kvdb.get(keys.picked(user_id, resource_id, iteration)))
    if picked is not None:
        return JobState.DEAD, (
            f"it was picked up by a worker on {picked.get('host')} "
            f"(queue {picked.get('queue')}) whose heartbeat expired")
    record = job_record or {}
    if record.get("status") == "running" and int(
            record.get("iteration") or 1) == iteration:
        worker = record.get("worker") or {}
        return JobState.DEAD, (
            f"its worker on {worker.get('host')} wrote that it runs it, and "
            "its heartbeat expired")
    if status == "accepted":
        return JobState.WAITING, (
            "no worker has picked it up yet (it waits in its queue; with "
            "the kvdb queue a job sent to a stopped worker's queue waits "
            "until that worker is started again)")
    return JobState.UNPROVEN, (
        "actinia lists it as running, but no heartbeat and no record of "
        "the worker that picked it up exist")
