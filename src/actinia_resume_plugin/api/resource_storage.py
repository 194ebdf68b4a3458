# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""``/resource_storage``: see, clean and bound a user's resource storage.

Serves actinia's own URL and endpoint name (``syncresourcestorageresource``,
see endpoints.py). Differences to actinia-core's SyncResourceStorageResource:

* GET is synchronous and fast: sized with os.scandir in the API process,
  no job in the queue, no ``du`` subprocess; DELETE answers as actinia's
  does (an async job: ``accepted``, ``resource_id``, ``urls.status``, the
  status URL reaches ``finished`` with what was removed, in
  ``process_results``); the removal is done before the answer (no job
  waits behind running jobs in the queue), so the status URL shows
  ``finished`` at once;
* a breakdown per unit (interim results of a job, exported resources of a
  job, anything else) with bytes, files, steps and age;
* any role may see and clean its **own** storage; admins the storage of the
  users of their group (``?user_id=``), superadmins anyone's — actinia's
  ``check_permissions`` role model;
* ``DELETE ?olderthan=N`` removes whole units whose newest content is older
  than N days, never single files of a saved mapset;
* units of running or accepted jobs are never removed (reported as
  ``skipped``).

Also home of the retention thread (``[MISC] interim_results_ttl_days``).
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from datetime import datetime

from actinia_core.core.common.config import global_config
from actinia_core.core.common.user import ActiniaUser
from actinia_core.models.response_models import create_response_from_model
from actinia_core.rest.resource_management import ResourceManagerBase
from actinia_core.rest.resource_storage_management import (
    SyncResourceStorageResource,
)
from actinia_rest_lib.endpoint_config import check_endpoint
from flask import jsonify, make_response, request

from actinia_resume_plugin import store as rs
from actinia_resume_plugin.api.common import (
    ApiError,
    answers_api_errors,
    iteration_numbers,
    query_problem,
    require_permission,
)
from actinia_resume_plugin.config import current_config, retention_settings
from actinia_resume_plugin.kvdb import kvdb_client
from actinia_resume_plugin.worker.liveness import (
    JobState,
    job_is_alive,
    judge_job,
)

log = logging.getLogger("actinia_resume_plugin")

#: actinia's class name, for the operator's endpoint allow list
#: ([API] endpoints_config): our class answers where actinia's would.
CORE_CLASS_NAME = SyncResourceStorageResource.__name__
QUERY_PARAMS = {"GET": {"user_id"}, "DELETE": {"user_id", "olderthan"}}
ACTIVE_STATES = ("accepted", "running")


# --------------------------------------------------------------------------
# which jobs are running
# --------------------------------------------------------------------------


def latest_iterations(resource_logger, user_id: str, resource_ids) -> dict:
    """``{resource_id: (number, status) of its latest iteration}`` from
    actinia's resource logger, with one key scan for the user."""
    wanted = set(resource_ids)
    found = iteration_numbers(resource_logger, user_id,
                              f"{rs.RESOURCE_PREFIX}*")
    latest = {}
    for rid, numbers in found.items():
        if rid not in wanted:
            continue
        raw = resource_logger.get(user_id, rid, numbers[-1])
        if raw is None:
            continue
        try:
            _, model = pickle.loads(raw)
            latest[rid] = (numbers[-1], model.get("status"))
        except Exception:  # unreadable document: treat as unknown
            latest[rid] = (numbers[-1], "unknown")
    return latest


def latest_statuses(resource_logger, user_id: str, resource_ids) -> dict:
    """``{resource_id: status of its latest iteration}``."""
    return {rid: status for rid, (_, status) in latest_iterations(
        resource_logger, user_id, resource_ids).items()}


def make_protect(resource_logger, kvdb, resource_dir):
    """The ``protect`` callback of the store: units of jobs that are
    accepted or running are kept, unless their worker is proven dead.

    An iteration a worker picked up whose process is gone (heartbeat
    expired, or its pid gone in our pid space) is not protected, whatever
    actinia's status says (with rq nothing updates it), so that retention
    can clean up after crashed workers. An iteration still waiting in its
    queue, and a ``running`` one without any record of our worker (e.g.
    an export of another endpoint), stay protected. When the job status
    cannot be read, every job is protected.
    """

    def protect(user_id: str, resource_ids: list) -> dict:
        try:
            latest = latest_iterations(resource_logger, user_id,
                                       resource_ids)
        except Exception as exc:
            return {rid: f"job status unknown ({exc}); kept"
                    for rid in resource_ids}
        reasons = {}
        for rid in resource_ids:
            iteration, status = latest.get(rid, (None, None))
            reason = _protection(kvdb, resource_dir, user_id, rid,
                                 iteration, status)
            if reason:
                reasons[rid] = reason
        return reasons

    return protect


def _protection(kvdb, resource_dir, user_id, rid, iteration, status):
    """Why the units of job ``rid`` must be kept, or None."""
    if status not in ACTIVE_STATES:
        try:
            alive = job_is_alive(kvdb, user_id, rid)
        except Exception as exc:
            return f"job liveness unknown ({exc}); kept"
        return "job is running (its worker is alive)" if alive else None
    root = rs.interim_root(resource_dir, user_id, rid)
    try:
        state, why = judge_job(kvdb, user_id, rid, iteration, status,
                               rs.read_job_record(root).data)
    except Exception as exc:
        return f"job is {status}; liveness unknown ({exc}); kept"
    if state is JobState.DEAD:
        return None
    if state is JobState.ALIVE:
        return "job is running (its worker is alive)"
    if state is JobState.WAITING:
        return "job is accepted (waiting in the queue)"
    return f"job is {status}"


# --------------------------------------------------------------------------
# the resource
# --------------------------------------------------------------------------


class ResourceStorageResource(SyncResourceStorageResource):
    """GET and DELETE ``/resource_storage`` (``?user_id=``,
    ``?olderthan=``): actinia's resource, with the role model of its
    resource management (any role its own storage) instead of admins
    only."""

    decorators = ResourceManagerBase.decorators
    check_permissions = ResourceManagerBase.check_permissions

    replaces = SyncResourceStorageResource  # the view we serve instead

    def _allowed_user(self, method: str) -> str:
        """The user whose storage is meant: the operator's endpoint config
        first, then actinia's role model (:class:`ApiError` otherwise)."""
        if not check_endpoint(method.lower(), endpoint_class=CORE_CLASS_NAME):
            raise ApiError(404, "Not Found. The requested URL is not "
                           "configured on the server.")
        return self._target_user(method)

    @answers_api_errors
    def get(self):
        """Size of the resource storage with a breakdown per job."""
        user_id = self._allowed_user("GET")
        config = current_config()
        report = rs.scan_user_storage(config.resource_dir, user_id)
        results = report.to_dict(config.resource_quota_bytes)
        statuses = self._statuses(
            user_id, [u["resource_id"] for u in results["interim_results"]])
        for unit in results["interim_results"]:
            unit["job_status"] = statuses.get(unit["resource_id"])
        return make_response(jsonify({
            "status": "finished",
            "message": "Resource storage size successfully computed",
            "user_id": user_id,
            "process_results": results,
        }), 200)

    @answers_api_errors
    def delete(self):
        """Remove the resource storage (``?olderthan=N``: whole units whose
        newest content is older than N days); running jobs are kept. An
        async job as actinia's: the answer is ``accepted`` with the status
        URL; its final document lists what was removed."""
        user_id = self._allowed_user("DELETE")
        try:
            olderthan = rs.parse_olderthan(request.args.get("olderthan"))
        except ValueError as exc:
            raise ApiError(400, f"{exc}; nothing was deleted") from None
        # actinia's accepted document, status URL and resource id
        rdc = self.preprocess(has_json=False, has_xml=False)
        http_code, accepted = pickle.loads(self.response_data)
        if rdc:
            started = time.time()
            message, results, ok = self._clean(user_id, olderthan)
            self._commit_final(message, results, ok, started)
        return make_response(jsonify(accepted), http_code)

    def _clean(self, user_id: str, olderthan) -> tuple[str, dict, bool]:
        """Remove whole units; ``(message, results, ok)``."""
        config = current_config()
        protect = make_protect(self.resource_logger,
                               kvdb_client(global_config),
                               config.resource_dir)
        result = rs.clean_user_storage(
            config.resource_dir, user_id, olderthan_days=olderthan,
            protect=protect)
        user_dir = rs.user_storage_dir(config.resource_dir, user_id)
        os.makedirs(user_dir, mode=0o700, exist_ok=True)
        what = ("Resource storage successfully removed" if olderthan is None
                else f"Resource storage older than {olderthan} days "
                "successfully removed")
        message = (f"{what}: {len(result.removed)} unit(s) removed, "
                   f"{result.freed_bytes} bytes freed")
        if result.skipped:
            message += (f"; {len(result.skipped)} unit(s) of running or "
                        "accepted jobs kept")
        if result.errors:
            message += f"; {len(result.errors)} unit(s) could not be removed"
        results = {"user_id": user_id, "olderthan": olderthan,
                   **result.to_dict()}
        return message, results, not result.errors

    def _commit_final(self, message: str, results: dict, ok: bool,
                      started: float) -> None:
        """The job's final document under its status URL, made with
        actinia's response model as its jobs make it."""
        document = create_response_from_model(
            self.response_model_class,
            status="finished" if ok else "error",
            user_id=self.user_id, resource_id=self.resource_id,
            queue=self.queue, iteration=self.iteration, results=results,
            message=message, http_code=200 if ok else 400,
            status_url=self.status_url, orig_time=self.orig_time,
            orig_datetime=self.orig_datetime,
            start_timestamp=started,
            start_datetime=str(datetime.fromtimestamp(started)),
            api_info=self.api_info)
        self.resource_logger.commit(
            self.user_id, self.resource_id, self.iteration, document,
            expiration=global_config.KVDB_RESOURCE_EXPIRE_TIME)

    # ------------------------------------------------------------------
    def _target_user(self, method: str) -> str:
        """The user whose storage is meant, after actinia's permission
        check (:class:`ApiError` otherwise)."""
        problem = query_problem(request.args, QUERY_PARAMS[method])
        if problem:
            raise ApiError(400, f"{problem}; nothing was done")
        user_id = request.args.get("user_id", self.user_id)
        try:
            rs.check_user_id(user_id)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        require_permission(self, user_id)
        if user_id != self.user_id and ActiniaUser(user_id).exists() != 1:
            # check_permissions lets superadmins pass without this check
            raise ApiError(400, f"The user <{user_id}> does not exist")
        return user_id

    def _statuses(self, user_id: str, resource_ids) -> dict:
        if not resource_ids:
            return {}
        try:
            return latest_statuses(self.resource_logger, user_id,
                                   resource_ids)
        except Exception:
            return {}


# --------------------------------------------------------------------------
# retention
# --------------------------------------------------------------------------

_retention_started = threading.Event()


def run_retention_once(resource_logger=None, kvdb=None, ttl=None) -> dict:
    """Remove unresumed interim results older than ``ttl`` days
    (``[MISC] interim_results_ttl_days``; no-op when it is not set)."""
    config = current_config()
    if ttl is None:
        return {}
    if resource_logger is None:
        from actinia_core.core.resources_logger import ResourceLogger

        resource_logger = ResourceLogger(
            host=global_config.KVDB_SERVER_URL,
            port=global_config.KVDB_SERVER_PORT,
            password=global_config.KVDB_SERVER_PW or None)
    if kvdb is None:
        kvdb = kvdb_client(global_config)
    protect = make_protect(resource_logger, kvdb, config.resource_dir)
    results = rs.expire_interim_results(config.resource_dir, ttl,
                                        protect=protect)
    for user_id, result in results.items():
        if result.removed:
            log.warning(
                "actinia_resume_plugin: retention removed %d interim "
                "result(s) of %s older than %s days (%d bytes)",
                len(result.removed), user_id, ttl, result.freed_bytes)
    return results


def _retention_loop() -> None:
    resource_logger = kvdb = None
    while True:
        ttl, interval = retention_settings()
        try:
            if resource_logger is None and ttl is not None:
                from actinia_core.core.resources_logger import ResourceLogger

                resource_logger = ResourceLogger(
                    host=global_config.KVDB_SERVER_URL,
                    port=global_config.KVDB_SERVER_PORT,
                    password=global_config.KVDB_SERVER_PW or None)
                kvdb = kvdb_client(global_config)
            if ttl is not None:
                run_retention_once(resource_logger, kvdb, ttl)
        except Exception as exc:  # never kill the thread
            log.warning("actinia_resume_plugin: retention failed: %s", exc)
        time.sleep(max(interval, 0.1))


def start_retention_thread() -> threading.Thread | None:
    """Start the retention thread once per process (daemon: it never keeps
    actinia from exiting). It runs at once and then every
    ``[MISC] interim_results_ttl_check_seconds`` (default 600)."""
    if _retention_started.is_set():
        return None
    _retention_started.set()
    thread = threading.Thread(
        target=_retention_loop,
        name="resume-retention", daemon=True)
    thread.start()
    return thread
