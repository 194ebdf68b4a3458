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

from actinia_resume_plugin import plans
from actinia_resume_plugin.api.common import (
    ApiError,
    full_resource_id,
    parse_flag,
)
from actinia_resume_plugin.config import current_config

LATEST = "latest"
_RESOURCE_ID = re.compile(r"^(resource_id-)?[A-Za-z0-9][A-Za-z0-9_-]*$")


def reuse_plan(user_id: str, project: str, mapset: str | None,
               endpoint: str) -> plans.ResumePlan:
    """The resume plan of a POST with ``?reuse=`` (raises ApiError with
    a 4xx for anything that cannot be honoured)."""
    config = current_config(fresh=True)
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
    if value != LATEST and not _RESOURCE_ID.match(value):
        raise ApiError(400, f"reuse={value!r}: expected 'latest' or a "
                          "resource id")
    where = (config.resource_dir, user_id)
    pattern = config.include_additional_mapset_pattern
    # a dry run reads every byte of the interim result it would restore
    verify = dry_run_requested()
    try:
        if value == LATEST:
            return plans.plan_reuse_best(*where, chain, wanted, pattern,
                                         verify)
        return plans.plan_reuse_of(*where, full_resource_id(value), chain,
                                   wanted, pattern, verify)
    except plans.PlanError as exc:
        raise ApiError(400, str(exc)) from None


def dry_run_requested() -> bool:
    try:
        return parse_flag("dry_run", request.args.get("dry_run"))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def dry_run_response(plan: plans.ResumePlan):
    return make_response(jsonify({
        "status": "plan", "reused_from": plan.source_resource_id,
        "plan": plan.to_json(), "message": "Dry run: no job was started"}),
        200)


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
