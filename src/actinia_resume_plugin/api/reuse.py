# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reuse across jobs: ``POST …/processing_async?reuse=latest|<resource_id>``.

Many users fix a failed chain and POST it again instead of resuming it with
a PUT. With ``[MISC] reuse_interim_results = True`` and ``?reuse=`` the new
job is planned exactly as a PUT on the earlier job would be (chained step
fingerprints, failed step, input fingerprints), and starts after the
longest matching prefix of that job's interim results, restored as a copy
from the earlier job's store.

Safety rules: only the caller's own jobs (the interim results under
``<grass_resource_dir>/<caller>/interim/``; an admin's or superadmin's POST
never reuses another user's results), of the same project, the same kind
of job (core class) and, for persistent jobs, the same target mapset; only
jobs that ended with an error (a running job's interim results still
change); and never a step whose inputs changed (see inputs.py).
"""

from __future__ import annotations

import re

from flask import jsonify, make_response, request

from actinia_resume_plugin import planner
from actinia_resume_plugin.api.common import ApiError, parse_flag
from actinia_resume_plugin.api.resume import (
    ResumeResourceManager,
    full_resource_id,
)
from actinia_resume_plugin.config import current_config
from actinia_resume_plugin.store import SnapshotStore, list_job_roots
from actinia_resume_plugin.store.job_record import read_job_record

LATEST = "latest"
_RESOURCE_ID = re.compile(r"^(resource_id-)?[A-Za-z0-9][A-Za-z0-9_-]*$")


def reuse_plan(user_id: str, project: str, mapset: str | None,
               endpoint: str) -> dict:
    """The resume plan of a POST with ``?reuse=`` (raises ApiError with
    a 4xx for anything that cannot be honoured)."""
    config = current_config()
    if not config.reuse_interim_results:
        raise ApiError(
            400, "Reuse of interim results across jobs is disabled in this "
            "deployment ([MISC] reuse_interim_results = False); POST without "
            "?reuse= or resume the failed job with PUT on its status URL")
    if not config.enabled:
        raise ApiError(
            400, "Interim results are not saved in this deployment "
            "([MISC] save_interim_results is False): nothing to reuse")
    core_class = config.core_class_for(endpoint)
    if core_class is None:
        raise ApiError(400, f"Jobs of endpoint {endpoint} cannot reuse "
                          "interim results")
    chain = _posted_chain()
    value = request.args.get("reuse", "").strip()
    if not value:
        raise ApiError(400, "reuse= needs 'latest' or the resource id of "
                          "one of your earlier jobs")
    wanted = {"project": project, "core_class": core_class}
    if core_class == "AsyncPersistentResource":
        wanted["mapset"] = mapset
    if value == LATEST:
        return _best_plan(user_id, chain, wanted)
    if not _RESOURCE_ID.match(value):
        raise ApiError(400, f"reuse={value!r}: expected 'latest' or a "
                          "resource id")
    return _plan_from(user_id, full_resource_id(value), chain, wanted)


def dry_run_requested() -> bool:
    try:
        return parse_flag("dry_run", request.args.get("dry_run"))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def dry_run_response(plan: dict):
    return make_response(jsonify({
        "status": "plan", "reused_from": plan.get("source_resource_id"),
        "plan": plan, "message": "Dry run: no job was started"}), 200)


# ----------------------------------------------------------------------
def _posted_chain() -> dict:
    chain = request.get_json(silent=True)
    if (not isinstance(chain, dict) or not isinstance(chain.get("list"), list)
            or not chain["list"]
            or not all(isinstance(s, dict) for s in chain["list"])):
        raise ApiError(400, "reuse= needs a process chain in the POST "
                          "body: a JSON object with a non-empty 'list' of "
                          "steps")
    return chain


def _usable_job(job: dict, wanted: dict) -> str | None:
    """Why a job's interim results cannot serve this POST (None: they can)."""
    if job.get("status") != "error":
        return (f"it is {job.get('status') or 'unknown'}; only jobs that "
                "ended with an error can be reused")
    for key, value in wanted.items():
        if job.get(key) != value:
            return f"its {key} is {job.get(key)!r}, not {value!r}"
    return None


def _plan_from(user_id: str, resource_id: str, chain: dict,
               wanted: dict) -> dict:
    config = current_config()
    roots = {root.name: root
             for root in list_job_roots(config.resource_dir, user_id)}
    if resource_id not in roots:
        raise ApiError(400, f"reuse={resource_id}: you have no interim "
                          "results of such a job")
    store = SnapshotStore(roots[resource_id])
    job = read_job_record(store.root)
    why = _usable_job(job, wanted)
    if why:
        raise ApiError(400, f"reuse={resource_id}: cannot be reused: "
                          f"{why}")
    return _with_source(ResumeResourceManager._plan(
        chain, job, store, None, verify_content=dry_run_requested()),
        resource_id)


def _best_plan(user_id: str, chain: dict, wanted: dict) -> dict:
    """The plan over the caller's matching job that reuses the most steps
    (the most recently updated one among equals)."""
    config = current_config()
    new_fps = planner.chain_fingerprints(chain["list"])
    best, best_key = None, None
    for root in list_job_roots(config.resource_dir, user_id):
        store = SnapshotStore(root)
        job = read_job_record(store.root)
        if _usable_job(job, wanted) or not _shares_a_step(store, new_fps):
            continue
        try:
            plan = ResumeResourceManager._plan(
                chain, job, store, None, verify_content=dry_run_requested())
        except ApiError:
            continue
        key = (plan["steps_reused"], job.get("updated") or 0)
        if plan["restore_snapshot"] is not None and (
                best_key is None or key > best_key):
            best, best_key = _with_source(plan, root.name), key
    if best is None:
        return {"start": 0, "restore_snapshot": None, "steps_reused": 0,
                "notice": "No interim results of your earlier jobs match "
                          "this chain; it runs from the first step"}
    return best


def _shares_a_step(store: SnapshotStore, new_fps: list[str]) -> bool:
    """Cheap pre-check before planning (which fingerprints the inputs):
    does any interim result hold a prefix of the new chain?"""
    return any(step < len(new_fps) and fp == new_fps[step]
               for step, fp in store.fingerprints().items())


def _with_source(plan: dict, resource_id: str) -> dict:
    if plan.get("restore_snapshot") is not None:
        plan["source_resource_id"] = resource_id
    return plan
