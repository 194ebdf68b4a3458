# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Continue a job by itself when the process that ran it was lost.

A worker pod is evicted, a work-horse is OOM-killed, a host goes away: the
job's status stays ``accepted`` or ``running`` for ever and only a PUT would
finish it. This module continues such a job from its newest intact interim
result, as a new iteration, without anyone asking.

What is rq's and what is ours (kvdb and per_job queues):

* **rq** knows which jobs a worker started (``StartedJobRegistry`` of each
  queue) and which jobs lost their work-horse (``FailedJobRegistry``: the
  worker saw its horse die, "Work-horse terminated unexpectedly"). rq also
  runs the continuation: we put the very same rq job back into its queue
  with rq's ``registry.requeue`` (its ``ZREM`` makes one requeue win), and
  rq hands it to exactly one live worker of that queue, with the job's
  pickled arguments. rq's own abandoned-job detection (a started job whose
  worker stopped renewing it for 90 s, found by a worker's maintenance run
  every 10 minutes) is far too slow on its own, so we do not wait for it.
* **ours** is the proof that the process is gone, within seconds: the
  plugin's heartbeat (:mod:`actinia_resume_plugin.worker.liveness`, TTL
  10 s, or at once when the pid is seen gone), the decision (latest
  iteration still ``accepted``/``running``; not terminated by its user;
  attempts left), actinia's status documents (the lost iteration becomes
  ``error`` saying why, the new one ``accepted``) and the plan: when the
  requeued job starts, :func:`adopt` turns it into the new iteration that
  restores the newest intact interim result (the same planner as a PUT).

The sweep (:class:`Sweeper`) runs in a daemon thread of every API process
(`start_sweeper_thread`), every :data:`SWEEP_SECONDS`. Several API replicas
sweep at once; the job's PUT lock (one owner per job, as for a PUT) and
rq's requeue make sure a job is continued once. A job that ended with its
own error is never touched here (its status is ``error``); only a PUT fixes
a chain.

Plain Python: valkey, rq and actinia's resource logger; no Flask.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import threading
import time

import rq
import valkey
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import (
    FailedJobRegistry,
    FinishedJobRegistry,
    StartedJobRegistry,
)

from actinia_resume_plugin import keys, plans
from actinia_resume_plugin.config import current_config
from actinia_resume_plugin.kvdb import kvdb_client
from actinia_resume_plugin.store import interim_root, read_job_record
from actinia_resume_plugin.worker.liveness import JobState, judge_job

# actinia_core is imported where a job is run again, not here: its queue
# module registers an atexit hook when imported (process_queue), which the
# API's sweep thread and the unit tests of this module do not want.

#: rq job meta key of the plugin: which job/iteration the rq job runs and
#: how often it was continued.
META_KEY = "actinia_resume_plugin"
#: Seconds between two sweeps of the API's continuation thread.
SWEEP_SECONDS = 2.0
#: A job without heartbeat is lost only when the heartbeat stayed away this
#: long while the sweep could see valkey: after a valkey restart the keys
#: with a TTL may be gone until the worker renews them (every 2 s).
GRACE_SECONDS = 3.0
#: The words the lost iteration's message and the new iteration's
#: ``resume.continued`` use.
REASON = "continued after worker loss"
#: How actinia's local queue ends the jobs it runs when its API process
#: shuts down (process_queue.stop_process_queue).
SHUTDOWN_MESSAGE = ("The process was terminated by the server: Running "
                    "process was terminated by server shutdown")


def ended_by_api_shutdown(model: dict) -> bool:
    return str(model.get("message") or "").startswith(SHUTDOWN_MESSAGE)
#: Failures of a job's own step that an operator may let be continued
#: ([MISC] continue_after_errors): the step's process was killed by
#: SIGKILL (the kernel's OOM killer picked the GRASS module, not the
#: worker; an operator's kill) -- the chain did nothing wrong, and the same
#: step on a fresh start usually gets the memory again.
TRANSIENT_FAILURES = {"killed": "continued after its step was killed"}

log = logging.getLogger("actinia_resume_plugin.continuation")


# ------------------------------------------------------------- decision
def attempt_text(attempt: int, max_attempts: int,
                 reason: str = REASON) -> str:
    return f"{reason} (attempt {attempt} of {max_attempts})"


def transient_failure(model: dict, allowed) -> str | None:
    """The name of the opted-in transient failure that ended the iteration
    whose final document is ``model`` (status ``error``), or None."""
    if "killed" in allowed:
        log = model.get("process_log") or []
        last = log[-1] if log and isinstance(log[-1], dict) else {}
        if last.get("return_code") in (-9, 137):
            return "killed"
    return None


def mark_transient(iteration, kind: str) -> None:
    """In the worker: the rq job's iteration ended with ``kind`` (see
    :func:`transient_failure`), for the sweep to continue it."""
    try:
        job = rq.get_current_job()
    except Exception:
        job = None
    if job is None:
        return
    info = job.meta.get(META_KEY)
    if isinstance(info, dict):
        info["transient"] = {"iteration": int(iteration or 1),
                             "kind": kind}
        job.save_meta()


def lost_message(why: str, attempt: int, max_attempts: int,
                 new_iteration: int, reason: str = REASON) -> str:
    lost = "The worker of this job was lost" if reason == REASON else \
        "This iteration ended by a transient failure"
    return (f"{lost} ({why}); the job is "
            f"{attempt_text(attempt, max_attempts, reason)} as iteration "
            f"{new_iteration}")


def not_continued_message(why: str, max_attempts: int) -> str:
    return (f"The worker of this job was lost ({why}); it was not "
            f"continued: the {max_attempts} attempt(s) of [MISC] "
            "continue_after_worker_loss are used up. Resume it with PUT")


def _doc(resource_logger, user_id, resource_id, iteration):
    raw = resource_logger.get(user_id, resource_id, iteration)
    if raw is None:
        return None
    try:
        return pickle.loads(raw)
    except Exception:
        return None


class Sweeper:
    """Finds rq jobs whose process is gone and continues them.

    ``kvdb`` is a valkey client of actinia's database (status documents,
    the plugin's keys) and ``queue_kvdb`` one of rq's (the same server in
    every deployment we know, but actinia configures them separately).
    """

    def __init__(self, kvdb, queue_kvdb, resource_logger, max_attempts: int,
                 resource_dir: str, local: bool = False,
                 transient: tuple = ()):
        self.transient = tuple(transient)  # opted-in transient failures
        self.local = local  # actinia's local queue: our records, no rq
        self.kvdb = kvdb
        self.queue_kvdb = queue_kvdb
        self.resource_logger = resource_logger
        self.max_attempts = int(max_attempts)
        self.resource_dir = resource_dir
        # rq jobs that are not ours or that we decided on: not fetched again
        self._done: set[str] = set()
        # (user, resource, iteration) -> when this process first saw it
        # without a heartbeat
        self._missing_since: dict[tuple, float] = {}

    def forget(self) -> None:
        """valkey was unreachable: what was seen missing may only have been
        hidden by the outage; start over."""
        self._missing_since.clear()

    def sweep(self) -> list[dict]:
        """One pass over the started and failed registries of every rq
        queue; returns what was decided (for logs and tests)."""
        decided = []
        if self.local:
            for key in self.kvdb.scan_iter(match=keys.local_job("*", "*"),
                                           count=1000):
                outcome = self._consider_local(key)
                if outcome:
                    decided.append(outcome)
            return decided
        for queue in rq.Queue.all(connection=self.queue_kvdb):
            registries = (StartedJobRegistry, FailedJobRegistry) + (
                (FinishedJobRegistry,) if self.transient else ())
            for registry_cls in registries:
                registry = registry_cls(queue.name,
                                        connection=self.queue_kvdb)
                for job_id in registry.get_job_ids():
                    if job_id in self._done:
                        continue
                    outcome = self._consider(registry, job_id)
                    if outcome:
                        decided.append(outcome)
        return decided

    def _consider(self, registry, job_id: str) -> dict | None:
        try:
            job = Job.fetch(job_id, connection=self.queue_kvdb)
        except NoSuchJobError:
            return None
        info = job.meta.get(META_KEY)
        in_failed = isinstance(registry, FailedJobRegistry)
        if isinstance(registry, FinishedJobRegistry):
            transient = (info or {}).get("transient") or {}
            if transient.get("kind") not in self.transient or int(
                    transient.get("iteration") or 0) != int(
                    (info or {}).get("iteration") or 1):
                self._done.add(job_id)  # ended as it should: never ours
                return None
            return self._locked(info, False, _RqJob(self, registry, job),
                                transient=transient["kind"])
        if not isinstance(info, dict):
            if in_failed:  # not a job our worker started: never ours
                self._done.add(job_id)
            return None  # started, not yet at our code: judged later
        outcome = self._locked(info, in_failed, _RqJob(self, registry, job))
        if outcome is None and in_failed and self._ended(info):
            self._done.add(job_id)  # rq keeps it; nothing more to do
        return outcome

    def _ended(self, info: dict) -> bool:
        """The rq job's iteration has a final status (or a successor)."""
        user_id, resource_id = info["user_id"], info["resource_id"]
        iteration = int(info.get("iteration") or 1)
        if _doc(self.resource_logger, user_id, resource_id,
                iteration + 1) is not None:
            return True
        document = _doc(self.resource_logger, user_id, resource_id,
                        iteration)
        return document is None or document[1].get("status") not in (
            "accepted", "running")

    def _consider_local(self, key) -> dict | None:
        """A job of actinia's local queue (see :func:`adopt`)."""
        raw = self.kvdb.get(key)
        if raw is None:
            return None
        try:
            record = pickle.loads(raw)
            info = record["info"]
        except Exception:
            self.kvdb.delete(key)  # unreadable: nothing can continue it
            return None
        return self._locked(info, False, _LocalJob(self, key, record))

    def _locked(self, info: dict, in_failed: bool, target,
                transient: str | None = None) -> dict | None:
        """Decide under the job's PUT lock: one owner per continuation
        among API replicas and PUTs."""
        user_id, resource_id = info["user_id"], info["resource_id"]
        iteration = int(info.get("iteration") or 1)
        if target.stale(user_id, resource_id, iteration):
            return None
        verdict = self._lost(user_id, resource_id, iteration, in_failed,
                             transient)
        if verdict is None:
            return None
        lock = keys.put_lock(user_id, resource_id)
        if not self.kvdb.set(lock, "continuation", nx=True,
                             ex=keys.PUT_LOCK_SECONDS):
            return None  # a PUT or another sweeper owns the job now
        try:
            # the job may have moved on meanwhile (a PUT, another sweeper)
            verdict = self._lost(user_id, resource_id, iteration, in_failed,
                                 transient)
            if verdict is None:
                return None
            return self._decide(target, info, verdict, transient)
        finally:
            self.kvdb.delete(lock)

    def _lost(self, user_id, resource_id, iteration, in_failed,
              transient=None):
        """``(model, why)`` when ``iteration`` is the job's latest, still
        ``accepted``/``running``, and its process is provably gone."""
        if _doc(self.resource_logger, user_id, resource_id,
                iteration + 1) is not None:
            return None  # a later iteration exists
        document = _doc(self.resource_logger, user_id, resource_id,
                        iteration)
        if document is None:
            return None
        _, model = document
        status = model.get("status")
        if self.local and status == "error" and ended_by_api_shutdown(model):
            # actinia's local queue ended it when its API process went
            # down: it died with the API, not by an error of its own
            status = "running"
        if transient is not None:
            # ended by an opted-in transient failure of its own step
            if status == "error" and transient_failure(
                    model, (transient,)) == transient:
                return model, "a step's process was killed (SIGKILL)"
            return None
        if status not in ("accepted", "running"):
            return None  # it ended (also by its own error): not ours
        record = read_job_record(
            interim_root(self.resource_dir, user_id, resource_id)).data
        state, why = judge_job(self.kvdb, user_id, resource_id, iteration,
                               status, record)
        key = (user_id, resource_id, iteration)
        if state is JobState.ALIVE:
            self._missing_since.pop(key, None)
            return None
        if state is not JobState.DEAD and not in_failed:
            return None  # still waiting for a worker, or not yet started
        if state is not JobState.DEAD:
            why = "rq reports that its work-horse died"
        if not self.kvdb.exists(keys.heartbeat(user_id, resource_id)):
            # judged by the heartbeat's absence, not by a pid seen gone
            first = self._missing_since.setdefault(key, time.monotonic())
            if time.monotonic() - first < GRACE_SECONDS:
                return None
        return model, why

    def _decide(self, target, info, verdict, transient=None) -> dict:
        model, why = verdict
        reason = TRANSIENT_FAILURES[transient] if transient else REASON
        user_id, resource_id = info["user_id"], info["resource_id"]
        iteration = int(info.get("iteration") or 1)
        attempt = int(info.get("attempt") or 0) + 1
        outcome = {"user_id": user_id, "resource_id": resource_id,
                   "iteration": iteration, "why": why}
        self._missing_since.pop((user_id, resource_id, iteration), None)
        if self.resource_logger.get_termination(user_id, resource_id,
                                                iteration):
            model.update(status="terminated", message=(
                f"The worker of this job was lost ({why}) after its user "
                "asked to terminate it; it is not continued"))
            self._commit(user_id, resource_id, iteration, model)
            target.give_up()
            return {**outcome, "action": "terminated"}
        if attempt > self.max_attempts:
            model.update(status="error", message=not_continued_message(
                why, self.max_attempts))
            self._commit(user_id, resource_id, iteration, model)
            target.give_up()
            return {**outcome, "action": "bound reached"}
        new_iteration = iteration + 1
        continued = {"reason": reason, "attempt": attempt,
                     "max_attempts": self.max_attempts,
                     "previous_iteration": iteration, "why": why,
                     "at": time.time()}
        accepted = {**model, "status": "accepted",
                    "iteration": new_iteration,
                    "message": f"Resource accepted: "
                    f"{attempt_text(attempt, self.max_attempts, reason)}",
                    "progress": {}, "process_log": [],
                    "resume": {"iteration": new_iteration,
                               "continued": attempt_text(
                                   attempt, self.max_attempts, reason)}}
        # the new iteration exists before the lost one is `error`: a PUT
        # that comes in between sees an accepted iteration and waits
        self._commit(user_id, resource_id, new_iteration, accepted)
        model.update(status="error", message=lost_message(
            why, attempt, self.max_attempts, new_iteration, reason))
        self._commit(user_id, resource_id, iteration, model)
        target.run_again({**info, "iteration": new_iteration,
                          "attempt": attempt, "continued": continued,
                          "transient": None})
        log.warning("actinia_resume_plugin: %s/%s iteration %d lost (%s): "
                    "%s as iteration %d", user_id, resource_id, iteration,
                    why, attempt_text(attempt, self.max_attempts),
                    new_iteration)
        return {**outcome, "action": "continued",
                "new_iteration": new_iteration, "attempt": attempt}

    def _commit(self, user_id, resource_id, iteration, model) -> None:
        self.resource_logger.commit(user_id, resource_id, iteration,
                                    pickle.dumps([200, model]))



class _RqJob:
    """A job of a kvdb/per_job queue: rq runs it again."""

    def __init__(self, sweeper, registry, job):
        self.sweeper, self.registry, self.job = sweeper, registry, job

    def stale(self, user_id, resource_id, iteration) -> bool:
        return False

    def run_again(self, info: dict) -> None:
        """rq's requeue: the same rq job (its pickled arguments) back into
        its own queue; rq hands it to one live worker of that queue."""
        self.job.meta[META_KEY] = info
        self.job.save_meta()
        try:
            self.registry.requeue(self.job)
        except InvalidJobOperation:
            pass  # another sweeper requeued it first
        self.sweeper._done.discard(self.job.id)

    def give_up(self) -> None:
        """Leave the job to rq's failed registry (where rq keeps jobs that
        will not run again) and never look at it again."""
        if isinstance(self.registry, StartedJobRegistry):
            self.registry.remove(self.job)
            FailedJobRegistry(self.job.origin,
                              connection=self.sweeper.queue_kvdb).add(
                self.job, exc_string="actinia_resume_plugin: worker lost, "
                "not continued")
        self.sweeper._done.add(self.job.id)


class _LocalJob:
    """A job of actinia's local queue: our record holds its arguments (as
    rq's job does), and actinia's local queue of this API runs it again."""

    def __init__(self, sweeper, key, record):
        self.sweeper, self.key, self.record = sweeper, key, record

    def stale(self, user_id, resource_id, iteration) -> bool:
        """A record of a job that ended is removed."""
        document = _doc(self.sweeper.resource_logger, user_id, resource_id,
                        iteration)
        if document is not None and (document[1].get("status") in (
                "accepted", "running") or ended_by_api_shutdown(
                document[1])):
            return False
        if _doc(self.sweeper.resource_logger, user_id, resource_id,
                iteration + 1) is None:
            self.sweeper.kvdb.delete(self.key)
        return True

    def run_again(self, info: dict) -> None:
        from actinia_core.core.common.kvdb_interface import enqueue_job

        rdc = self.record["rdc"]
        module, name = self.record["func"].split(":")
        func = getattr(importlib.import_module(module), name)
        rdc.iteration = info["iteration"]
        rdc.resume_plan = _continuation_plan(
            info["user_id"], info["resource_id"], info["continued"])
        self.sweeper.kvdb.set(self.key, pickle.dumps(
            {**self.record, "info": info}), ex=keys.PICKED_TTL_SECONDS)
        enqueue_job(self.record["timeout"], func, rdc)

    def give_up(self) -> None:
        self.sweeper.kvdb.delete(self.key)


# ------------------------------------------------------------ the thread
_started = threading.Event()


def _sweep_loop(make_sweeper) -> None:
    sweeper = None
    failing = False
    while True:
        try:
            if sweeper is None:
                sweeper = make_sweeper()
            sweeper.sweep()
            if failing:
                log.warning("actinia_resume_plugin: continuation sweep "
                            "works again")
                failing = False
        except Exception as exc:  # valkey down: try again next round
            if sweeper is not None:
                sweeper.forget()
            if not failing:
                log.warning("actinia_resume_plugin: continuation sweep "
                            "failed (%s); retrying every %s s", exc,
                            SWEEP_SECONDS)
                failing = True
        time.sleep(SWEEP_SECONDS)


def start_sweeper_thread(actinia_config, resume_config):
    """Start the sweep once per process (daemon thread), when continuing
    is switched on. With actinia's local queue it continues the jobs of
    this deployment that died with an earlier API process (or with their
    own process), from the records :func:`adopt` keeps."""
    if (_started.is_set() or resume_config.continue_after_worker_loss <= 0
            or not resume_config.enabled
            or actinia_config.QUEUE_TYPE not in ("kvdb", "per_job",
                                                 "local")):
        return None
    _started.set()

    def make_sweeper():
        from actinia_core.core.resources_logger import ResourceLogger

        kwargs = {"host": actinia_config.KVDB_SERVER_URL,
                  "port": int(actinia_config.KVDB_SERVER_PORT)}
        if actinia_config.KVDB_SERVER_PW:
            kwargs["password"] = actinia_config.KVDB_SERVER_PW
        queue_kwargs = {"host": actinia_config.KVDB_QUEUE_SERVER_URL,
                        "port": int(actinia_config.KVDB_QUEUE_SERVER_PORT)}
        if actinia_config.KVDB_QUEUE_SERVER_PASSWORD:
            queue_kwargs["password"] = \
                actinia_config.KVDB_QUEUE_SERVER_PASSWORD
        return Sweeper(kvdb_client(actinia_config),
                       valkey.Valkey(**queue_kwargs),
                       ResourceLogger(**kwargs),
                       resume_config.continue_after_worker_loss,
                       resume_config.resource_dir,
                       local=actinia_config.QUEUE_TYPE == "local",
                       transient=resume_config.continue_after_errors)

    thread = threading.Thread(target=_sweep_loop, args=(make_sweeper,),
                              name="resume-continuation", daemon=True)
    thread.start()
    return thread


# ------------------------------------------------------- the worker side
def adopt(rdc, start_job=None) -> None:
    """Called by the worker before it builds the job (one hook in
    worker/processing.py): record in the rq job which iteration it runs,
    and when the sweep requeued it as a continuation, make ``rdc`` that new
    iteration, planned from the newest intact interim result.

    Outside rq (actinia's local queue) the plugin keeps the job's arguments
    itself (``keys.local_job``), so that a later API process can run it
    again.
    """
    try:
        job = rq.get_current_job()
    except Exception:
        job = None
    if job is None:
        if start_job is not None:
            _record_local_job(rdc, start_job)
        return
    iteration = int(getattr(rdc, "iteration", None) or 1)
    info = job.meta.get(META_KEY)
    if not isinstance(info, dict):
        job.meta[META_KEY] = {"user_id": rdc.user_id,
                              "resource_id": rdc.resource_id,
                              "iteration": iteration, "attempt": 0}
        job.save_meta()
        return
    continued = info.get("continued")
    if not continued or int(info["iteration"]) <= iteration:
        return
    rdc.iteration = int(info["iteration"])
    rdc.resume_plan = _continuation_plan(rdc.user_id, rdc.resource_id,
                                         continued)


def _continuation_plan(user_id: str, resource_id: str, continued) -> dict:
    """The plan of the continuation (plans.py) as the worker receives it,
    with what ``resume.continued`` reports."""
    plan = plans.plan_continuation(current_config().resource_dir, user_id,
                                   resource_id)
    return {**plan.to_json(), "continued": continued}


def _record_local_job(rdc, start_job) -> None:
    """The job's arguments and iteration, for :class:`_LocalJob`."""
    try:
        from actinia_core.core.common.config import global_config

        plan = getattr(rdc, "resume_plan", None) or {}
        continued = plan.get("continued") or {}
        info = {"user_id": rdc.user_id, "resource_id": rdc.resource_id,
                "iteration": int(getattr(rdc, "iteration", None) or 1),
                "attempt": int(continued.get("attempt") or 0)}
        permissions = (rdc.user_credentials or {}).get("permissions", {})
        timeout = int(permissions.get("process_time_limit") or 31536000)
        kvdb_client(global_config).set(
            keys.local_job(rdc.user_id, rdc.resource_id), pickle.dumps({
                "info": info, "rdc": rdc, "timeout": timeout,
                "func": f"{start_job.__module__}:{start_job.__name__}"}),
            ex=keys.PICKED_TTL_SECONDS)
    except Exception as exc:  # the job itself must run anyway
        log.warning("actinia_resume_plugin: job %s not recorded for "
                    "continuation (%s)", rdc.resource_id, exc)
