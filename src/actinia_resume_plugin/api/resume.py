"""The status URL ``/resources/<user_id>/<resource_id>``: GET and PUT.

GET answers like actinia-core, but orders iterations by number (actinia-core
compares them as strings, so iteration 10 sorts before 9). PUT resumes a
failed job: it loads the job's record from the snapshot store, lets the
resume planner choose the step to start from, and enqueues a new iteration
on the resumable worker of the job's core endpoint class.
"""

from __future__ import annotations

import json
import pickle
import re

from actinia_core.core.common.config import global_config
from actinia_core.core.common.user import ActiniaUser
from actinia_core.rest.resource_management import ResourceManager
from flask import g, jsonify, make_response, request

from actinia_resume_plugin import inputs, planner
from actinia_resume_plugin.api.common import error_response, iteration_numbers
from actinia_resume_plugin.api.processing import RESUMABLE_RESOURCES
from actinia_resume_plugin.config import current_config
from actinia_resume_plugin.kvdb import kvdb_client
from actinia_resume_plugin.store import SnapshotStore, interim_root
from actinia_resume_plugin.worker.liveness import job_is_alive

PREFIX = "resource_id-"
TRUE_WORDS = ("1", "true", "yes", "on")
PUT_LOCK_SECONDS = 60


class ResumeError(Exception):
    """A PUT that cannot be carried out: HTTP status and message."""

    def __init__(self, http_code: int, message: str):
        super().__init__(message)
        self.http_code = http_code
        self.message = message


def full_resource_id(resource_id: str) -> str:
    return resource_id if resource_id.startswith(PREFIX) else PREFIX + resource_id


def iteration_documents(resource_logger, user_id: str, resource_id: str):
    """All stored iterations of a resource as ``{number: (code, model)}``,
    ordered by number."""
    rid = full_resource_id(resource_id)
    docs = {}
    for number in iteration_numbers(resource_logger, user_id,
                                    f"{rid}*").get(rid, []):
        raw = resource_logger.get(user_id, rid, number)
        if raw is not None:
            docs[number] = pickle.loads(raw)
    return docs


class ResumeResourceManager(ResourceManager):
    """actinia's ResourceManager with iteration-safe GET and our PUT."""

    def get(self, user_id, resource_id):
        """Latest iteration (``resource_id-…``) or all iterations (id only)."""
        denied = self.check_permissions(user_id=user_id)
        if denied:
            return denied
        docs = iteration_documents(self.resource_logger, user_id, resource_id)
        if not docs:
            return error_response(400, "Resource does not exist")
        if resource_id.startswith(PREFIX):
            http_code, model = docs[max(docs)]
            return make_response(jsonify(model), http_code)
        # not jsonify: flask sorts keys as strings ("10" before "2")
        return make_response(
            json.dumps({str(n): model for n, (_, model) in docs.items()},
                       default=str),
            200, {"Content-Type": "application/json"},
        )

    def delete(self, user_id, resource_id):
        """Request the termination of the job's latest iteration (by number:
        actinia-core's string comparison would pick iteration 9 over 10)."""
        denied = self.check_permissions(user_id=user_id)
        if denied:
            return denied
        rid = full_resource_id(resource_id)
        docs = iteration_documents(self.resource_logger, user_id, rid)
        if not docs:
            return error_response(400, "Resource does not exist")
        self.resource_logger.commit_termination(user_id, rid, max(docs))
        return make_response(jsonify({
            "status": "accepted",
            "message": "Termination request committed"}), 200)

    def put(self, user_id, resource_id):
        """Resume a failed job from its interim results.

        Two PUTs racing for the same job would both see it failed and both
        start iteration n+1; a short lock in the key-value database lets one
        through (the new iteration is `accepted` before the lock is released,
        so later PUTs are refused by status).
        """
        resource_id = full_resource_id(resource_id)
        kvdb = kvdb_client(global_config)
        lock = f"actinia_resume_plugin::put::{user_id}::{resource_id}"
        if not kvdb.set(lock, "1", nx=True, ex=PUT_LOCK_SECONDS):
            return error_response(
                409, "Another PUT for this job is being processed")
        try:
            return self._resume(user_id, resource_id)
        except ResumeError as exc:
            return error_response(exc.http_code, exc.message)
        finally:
            kvdb.delete(lock)

    # ------------------------------------------------------------------
    def _resume(self, user_id: str, resource_id: str):
        config = current_config()
        if not config.enabled:
            raise ResumeError(
                400, "Interim results are not set in the configuration "
                "([MISC] save_interim_results is False), so jobs cannot be "
                "resumed")
        denied = self.check_permissions(user_id=user_id)
        if denied:
            return denied
        docs = iteration_documents(self.resource_logger, user_id, resource_id)
        if not docs:
            raise ResumeError(404, f"Resource {resource_id} does not exist")
        iteration = max(docs)
        _, latest = docs[iteration]
        self._check_resumable(latest, user_id, resource_id, iteration)

        store = SnapshotStore(
            interim_root(config.resource_dir, user_id, resource_id))
        job = store.read_job() or {}
        origin = self._origin(job, docs)
        core_class = job.get("core_class") or config.core_class_for(
            origin["endpoint"])
        if core_class not in RESUMABLE_RESOURCES:
            raise ResumeError(
                400, f"Jobs of endpoint {origin['endpoint']} cannot be "
                "resumed: it is not listed in "
                "save_interim_results_endpoints_cfg")
        chain = self._requested_chain() or job.get("chain") or origin["chain"]
        if not chain:
            raise ResumeError(400, "No process chain is stored for this job; "
                              "send the complete process chain in the PUT")
        plan = self._plan(chain, job, store)
        if request.args.get("dry_run", "").lower() in TRUE_WORDS:
            return make_response(jsonify({
                "status": "plan", "resource_id": resource_id,
                "iteration": iteration + 1, "plan": plan,
                "message": "Dry run: nothing was changed"}), 200)
        return self._enqueue(user_id, resource_id, iteration + 1, core_class,
                             origin, chain, plan)

    def _check_resumable(self, model, user_id, resource_id, iteration):
        status = model.get("status")
        if status in ("accepted", "finished"):
            raise ResumeError(
                409, f"Resource is {status}; PUT is only possible for jobs "
                "that ended with an error or were terminated")
        if status == "running":
            kvdb = kvdb_client(global_config)
            if job_is_alive(kvdb, user_id, resource_id):
                raise ResumeError(
                    409, "Resource is running (its worker is alive); "
                    "terminate it first (DELETE on the status URL)")
            model["status"] = "error"
            model["message"] = (
                "The worker of this job is no longer alive (no heartbeat); "
                "the job was set to error so that it can be resumed")
            self.resource_logger.commit(
                user_id, resource_id, iteration, pickle.dumps([200, model]))

    @staticmethod
    def _origin(job: dict, docs: dict) -> dict:
        """Where the job came from: endpoint, POST URL, project, mapset."""
        _, first = docs[min(docs)]
        api_info = first.get("api_info", {})
        url = job.get("request_url") or api_info.get("request_url", "")
        project = job.get("project") or _url_part(
            r"(?:locations|projects)/([^/]+)/", url)
        mapset = job.get("mapset") or _url_part(r"mapsets/([^/]+)/", url)
        chains = first.get("process_chain_list") or [None]
        return {
            "endpoint": job.get("endpoint") or api_info.get("endpoint", ""),
            "url": url, "project": project, "mapset": mapset,
            "chain": chains[0],
        }

    @staticmethod
    def _requested_chain():
        """The PUT body's process chain, or None for an empty body (with or
        without ``Content-Type: application/json``)."""
        raw = request.get_data(cache=True)
        if not raw or not raw.strip():
            return None
        try:
            chain = json.loads(raw)
        except ValueError as exc:
            raise ResumeError(400, f"The PUT body is not valid JSON: {exc}")
        if (not isinstance(chain, dict) or "version" not in chain
                or not isinstance(chain.get("list"), list)
                or not chain["list"]):
            raise ResumeError(
                400, "The PUT body must be a process chain: a JSON object "
                "with 'version' and a non-empty 'list' of steps")
        for number, step in enumerate(chain["list"]):
            if not isinstance(step, dict) or "id" not in step or not (
                    {"module", "exe", "evaluate"} & set(step)):
                raise ResumeError(
                    400, f"Step {number} of the PUT chain needs an 'id' and "
                    "one of 'module', 'exe' or 'evaluate'")
        return chain

    @staticmethod
    def _plan(chain: dict, job: dict, store: SnapshotStore) -> dict:
        steps = chain["list"]
        order = planner.execution_order(steps)
        ids = [str(steps[i].get("id", i)) for i in order]
        new_fps = planner.step_fingerprints([steps[i] for i in order])
        saved_fps = job.get("fingerprints") or []
        snapshots = stored_fingerprints(store)
        failed = job.get("failed_step")
        if failed is None and job:
            failed = (max(snapshots) + 1) if snapshots else 0
        from_step = request.args.get("from_step")
        try:
            from_position = (planner.resolve_step_ref(from_step, ids)
                             if from_step not in (None, "") else None)
            # also checks the mapsets and import sources the chain reads
            result = inputs.plan_checked(
                new_fps, saved_fps, failed, snapshots, job.get("inputs"),
                inputs.current_inputs(
                    [steps[i] for i in order], job.get("inputs"),
                    current_config().include_additional_mapset_pattern),
                from_step=from_position)
        except (ValueError, planner.ResumeNotPossible) as exc:
            raise ResumeError(400, str(exc))
        result["forced_from"] = from_position
        if not job:
            result["notice"] = ("No interim results are stored for this "
                                 "job; it runs from the first step")
        result["step_ids"] = ids
        return result

    def _enqueue(self, user_id, resource_id, iteration, core_class, origin,
                 chain, plan):
        if user_id != g.user.get_id():
            # Run the new iteration as the job's owner, under the owner's
            # resource id, as the first iteration was.
            owner = ActiniaUser(user_id)
            owner.read_from_db()
            g.user = owner
        resource = RESUMABLE_RESOURCES[core_class](
            resource_id, iteration, origin["url"])
        kwargs = {"has_json": False, "process_chain_list": chain,
                  "project_name": origin["project"], "resume_plan": plan,
                  "endpoint": origin["endpoint"]}
        if core_class == "AsyncPersistentResource":
            kwargs["mapset_name"] = origin["mapset"]
        return resource.enqueue(**kwargs)


def stored_fingerprints(store: SnapshotStore) -> dict[int, str]:
    """Step -> the chained fingerprint of the state its interim result
    holds (interim results without a complete record are ignored)."""
    result = {}
    for info in store.list():
        fps = info.meta.get("fingerprints") or []
        if len(fps) == info.step + 1:
            result[info.step] = fps[-1]
    return result


def _url_part(pattern: str, url: str) -> str | None:
    match = re.search(pattern, url or "")
    return match.group(1) if match else None
