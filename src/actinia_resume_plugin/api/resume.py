# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The status URL ``/resources/<user_id>/<resource_id>``: GET and PUT.

GET answers like actinia-core, but orders iterations by number (actinia-core
compares them as strings, so iteration 10 sorts before 9). PUT resumes a
failed job: it loads the job's record from the snapshot store, lets
plans.py choose the step to start from, and enqueues a new iteration on the
resumable worker of the job's core endpoint class.
"""

from __future__ import annotations

import functools
import json
import pickle
import re

from actinia_core.core.common.config import global_config
from actinia_core.core.common.user import ActiniaUser
from actinia_core.rest.resource_management import ResourceManager
from flask import g, jsonify, make_response, request

from actinia_resume_plugin import keys, plans
from actinia_resume_plugin.api.common import (
    PREFIX,
    ApiError,
    answers_api_errors,
    full_resource_id,
    iteration_numbers,
    parse_flag,
    query_problem,
    require_permission,
)
from actinia_resume_plugin.api.processing import RESUMABLE_RESOURCES
from actinia_resume_plugin.config import current_config
from actinia_resume_plugin.kvdb import kvdb_client
from actinia_resume_plugin.store import (
    JobRecord,
    KeptMapset,
    NotAdoptable,
    SnapshotStore,
    chain_problem,
    files_to_put_back,
    interim_root,
    read_job_record,
)
from actinia_resume_plugin.worker.liveness import JobState, judge_job

#: The query parameters of PUT; any other is refused (a typo such as
#: ``?dryrun=true`` would otherwise start a real iteration).
PUT_QUERY = ("dry_run", "from_step")
#: actinia-core's messages (rest/resource_management.py), which its clients
#: and tests compare word for word; our explanation goes into ``detail``.
NOT_CONFIGURED = "Interim results are not set in the configuration"
RUNNING = "Resource is running no restart possible"


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

    replaces = ResourceManager  # the view of actinia's we serve instead

    @answers_api_errors
    def get(self, user_id, resource_id):
        """Latest iteration (``resource_id-…``) or all iterations (id only)."""
        require_permission(self, user_id)
        docs = iteration_documents(self.resource_logger, user_id, resource_id)
        if not docs:
            raise ApiError(400, "Resource does not exist")
        if resource_id.startswith(PREFIX):
            http_code, model = docs[max(docs)]
            return make_response(jsonify(model), http_code)
        # not jsonify: flask sorts keys as strings ("10" before "2")
        return make_response(
            json.dumps({str(n): model for n, (_, model) in docs.items()},
                       default=str),
            200, {"Content-Type": "application/json"},
        )

    @answers_api_errors
    def delete(self, user_id, resource_id):
        """Request the termination of the job's latest iteration (by number:
        actinia-core's string comparison would pick iteration 9 over 10)."""
        require_permission(self, user_id)
        rid = full_resource_id(resource_id)
        docs = iteration_documents(self.resource_logger, user_id, rid)
        if not docs:
            raise ApiError(400, "Resource does not exist")
        self.resource_logger.commit_termination(user_id, rid, max(docs))
        if docs[max(docs)][1].get("status") not in ("accepted", "running"):
            # an ended job: its kept mapset goes now (issue 23; a running
            # one does not keep it when it ends terminated)
            KeptMapset(current_config().resource_dir, user_id, rid).remove()
        return make_response(jsonify({
            "status": "accepted",
            "message": "Termination request committed"}), 200)

    @answers_api_errors
    def put(self, user_id, resource_id):
        """Resume a failed job from its interim results.

        Checks come before changes, so a refused PUT changes nothing and
        tells a stranger nothing: permission, query and body, the job's
        status and the plan; then, for a real PUT only, the state. Two PUTs
        racing for the same job would both see it failed and both start
        iteration n+1; a short lock in the key-value database lets one
        through (the new iteration is `accepted` before the lock is
        released, so later PUTs are refused by status).
        """
        return self._resume(user_id, full_resource_id(resource_id))

    # ------------------------------------------------------------------
    def _resume(self, user_id: str, resource_id: str):
        require_permission(self, user_id)
        dry_run, from_step = self._put_query()
        requested = self._requested_chain()
        # read anew on every PUT, as actinia does
        config = current_config(fresh=True)
        if not config.enabled:
            # actinia's answer (404 and its message, word for word)
            raise ApiError(
                404, NOT_CONFIGURED, detail="[MISC] save_interim_results is "
                "False, so jobs cannot be resumed")
        docs = iteration_documents(self.resource_logger, user_id, resource_id)
        if not docs:
            raise ApiError(404, f"Resource {resource_id} does not exist")
        iteration = max(docs)
        _, latest = docs[iteration]
        self._check_resumable(latest, user_id, resource_id, iteration,
                              commit=False)

        store = SnapshotStore(
            interim_root(config.resource_dir, user_id, resource_id))
        job = read_job_record(store.root)
        origin = self._origin(job, docs)
        core_class = job.get("core_class") or config.core_class_for(
            origin["endpoint"])
        if core_class not in RESUMABLE_RESOURCES:
            raise ApiError(
                400, f"Jobs of endpoint {origin['endpoint']} cannot be "
                "resumed: it is not listed in "
                "save_interim_results_endpoints_cfg")
        chain = requested or job.get("chain") or origin["chain"]
        if not chain:
            raise ApiError(400, "No usable process chain is stored for "
                              "this job; send the complete process chain "
                              "in the PUT")
        # a real PUT checks cheaply and the restore checks every byte as it
        # copies (falling back as the dry run would); a dry run reads what
        # the resume will read (_dry_run_plan)
        kept = KeptMapset(config.resource_dir, user_id, resource_id)
        plan_of = functools.partial(
            plans.plan_for_job, chain, job, store, from_step,
            config.include_additional_mapset_pattern)
        plan = _planned(plan_of, kept, verify_content=False)
        if dry_run:
            plan = _dry_run_plan(plan, plan_of, kept, store)
            return make_response(jsonify({
                "status": "plan", "resource_id": resource_id,
                "iteration": iteration + 1, "plan": plan.to_json(),
                "message": "Dry run: nothing was changed"}), 200)
        return self._start_iteration(user_id, resource_id, iteration,
                                     core_class, origin, chain, plan)

    def _start_iteration(self, user_id, resource_id, planned, core_class,
                         origin, chain, plan):
        """The only part of a PUT that changes state, under the lock."""
        kvdb = kvdb_client(global_config)
        lock = keys.put_lock(user_id, resource_id)
        if not kvdb.set(lock, "1", nx=True, ex=keys.PUT_LOCK_SECONDS):
            raise ApiError(
                409, "Another PUT for this job is being processed")
        try:
            # the job may have moved on between planning and the lock
            docs = iteration_documents(self.resource_logger, user_id,
                                       resource_id)
            iteration = max(docs, default=None)
            if iteration != planned:
                raise ApiError(
                    409, f"Iteration {iteration} of this job was started "
                    "meanwhile; PUT again for a new plan")
            self._check_resumable(docs[iteration][1], user_id, resource_id,
                                  iteration)
            return self._enqueue(user_id, resource_id, iteration + 1,
                                 core_class, origin, chain, plan)
        finally:
            kvdb.delete(lock)

    @staticmethod
    def _put_query() -> tuple[bool, str | None]:
        """``(dry_run, from_step)`` from the query string; unknown
        parameters and values that are not understood are refused."""
        problem = query_problem(request.args, PUT_QUERY)
        if problem:
            raise ApiError(400, f"{problem}; nothing was done")
        try:
            dry_run = parse_flag("dry_run", request.args.get("dry_run"))
        except ValueError as exc:
            raise ApiError(400, f"{exc}; nothing was done") from None
        from_step = request.args.get("from_step")
        if from_step is not None and not from_step.strip():
            raise ApiError(400, "Query parameter from_step is empty: give "
                              "a step id or a 0-based step number")
        return dry_run, from_step

    def _check_resumable(self, model, user_id, resource_id, iteration,
                         commit=True):
        """Refuse a PUT on a finished job, a living job and a job still
        waiting in its queue with actinia's answer (404 and its message;
        our explanation in ``detail``). A job whose worker picked it up and
        died is set to error (whatever actinia's status says: with rq
        nothing updates it) and resumed; the error is committed only with
        ``commit`` (a real PUT; a dry run changes nothing)."""
        status = model.get("status")
        if status == "finished":
            raise ApiError(
                404, f"Resource is {status} PUT not possible",
                detail="PUT is only possible for jobs that ended with an "
                "error or were terminated")
        if status not in ("accepted", "running"):
            return
        config = current_config()
        job_record = read_job_record(
            interim_root(config.resource_dir, user_id, resource_id)).data
        state, why = judge_job(kvdb_client(global_config), user_id,
                               resource_id, iteration, status, job_record)
        if state is JobState.ALIVE:
            raise ApiError(
                404, RUNNING if status == "running"
                else f"Resource is {status} PUT not possible",
                detail=f"The job is {status} ({why}); "
                "terminate it first (DELETE on the status URL)")
        if state is JobState.WAITING:
            raise ApiError(
                404, f"Resource is {status} PUT not possible",
                detail=f"The job is waiting in the queue: {why}. PUT is only "
                "possible for jobs that ended with an error, were "
                "terminated or whose worker died")
        if not commit:
            return
        model["status"] = "error"
        model["message"] = (
            f"The worker of this job is no longer alive ({why}); the job "
            "was set to error so that it can be resumed")
        self.resource_logger.commit(
            user_id, resource_id, iteration, pickle.dumps([200, model]))

    @staticmethod
    def _origin(job: JobRecord, docs: dict) -> dict:
        """Where the job came from: endpoint, POST URL, project, mapset
        (the job record first, else the first iteration's document)."""
        _, first = docs[min(docs)]
        api_info = first.get("api_info")
        api_info = api_info if isinstance(api_info, dict) else {}
        url = job.get("request_url") or api_info.get("request_url", "")
        project = job.get("project") or _url_part(
            r"(?:locations|projects)/([^/]+)/", url)
        mapset = job.get("mapset") or _url_part(r"mapsets/([^/]+)/", url)
        chains = first.get("process_chain_list")
        chain = chains[0] if isinstance(chains, list) and chains else None
        return {
            "endpoint": job.get("endpoint") or str(
                api_info.get("endpoint") or ""),
            "url": url, "project": project, "mapset": mapset,
            "chain": None if chain_problem(chain) else chain,
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
        except RecursionError:
            raise ApiError(
                400, "The PUT body is not valid JSON for a process chain: "
                "it is nested too deeply") from None
        except ValueError as exc:
            raise ApiError(
                400, f"The PUT body is not valid JSON: {exc}") from None
        problem = chain_problem(chain)
        if problem:
            raise ApiError(400, f"The PUT body is refused. {problem}")
        return chain

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


def _url_part(pattern: str, url: str) -> str | None:
    match = re.search(pattern, url or "")
    return match.group(1) if match else None


def _planned(plan_of, kept: KeptMapset, verify_content: bool):
    """The plan and the way the worker will take (it checks again)."""
    try:
        plan = plan_of(verify_content=verify_content)
    except plans.PlanError as exc:
        raise ApiError(400, str(exc)) from None
    plan.resume_from = _resume_from(plan, kept)
    return plan


def _dry_run_plan(plan, plan_of, kept: KeptMapset, store: SnapshotStore):
    """A dry run answers what the PUT will do and reads every byte of the
    interim result it plans to start from. In a kept mapset (issue 23) the
    adoption reads from the store only the files it puts back: when those
    are intact, that is the plan (with ``files_to_put_back``), and damage
    elsewhere in the stored interim result is named in the notice without
    a fall back (the resume does not read those bytes; a resume without
    the kept mapset would). Otherwise the plan falls back as the restore
    would."""
    step = plan.restore_interim_result
    adoptable = plan.resume_from == "kept_mapset"
    if adoptable:
        try:
            files = files_to_put_back(kept, store, step)
        except NotAdoptable:
            adoptable = False
        else:
            # one read of every stored byte; only when something is
            # damaged, again the few files the adoption would put back
            damage = store.damage(step, content=True)
            if damage is None or store.damage_of_files(step, files) is None:
                plan.files_to_put_back = len(files)
                if damage:
                    plan.add_notice(
                        damage, "The resume continues in the kept mapset "
                        "and does not read it; without the kept mapset it "
                        "would not be used.")
                return plan
    plan = _planned(plan_of, kept, verify_content=True)
    if not adoptable and plan.resume_from == "kept_mapset":
        plan.resume_from = "interim_results"  # the worker cannot adopt it
    return plan


def _resume_from(plan, kept: KeptMapset) -> str:
    """``kept_mapset`` (the failed iteration's own dirs are there and are
    adopted: only what differs is put back), ``interim_results`` (copied
    back from the store) or ``first_step`` (nothing to start from)."""
    if plan.restore_interim_result is None:
        return "first_step"
    return "kept_mapset" if kept.exists() else "interim_results"
