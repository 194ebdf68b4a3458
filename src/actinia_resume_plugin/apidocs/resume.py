# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Swagger documentation of the status URL as our plugin serves it."""

PATH = "/resources/{user_id}/{resource_id}"

_ids = [
    {"name": "user_id", "in": "path", "required": True, "type": "string",
     "description": "The owner of the job"},
    {"name": "resource_id", "in": "path", "required": True, "type": "string",
     "description": "The job's resource id (resource_id-<uuid>)"},
]

put_doc = {
    "tags": ["Resource Management"],
    "summary": "Resume a failed or terminated job from its interim results",
    "description": (
        "Starts iteration n+1 of the job. With a process chain in the body "
        "the job continues with that chain, without a body (with or without "
        "Content-Type: application/json) with the stored chain. The new "
        "iteration starts at the first step whose fingerprint changed, or at "
        "the failed step, whichever comes first, restoring the interim "
        "result of the step before it; steps before are reused. Refused "
        "with 409 while the job is accepted, running (worker alive) or "
        "finished, 404 for an unknown job, 401 for another user's job, 400 "
        "when interim results are switched off or the input is invalid "
        "(an unknown query parameter, a value that is not understood, a "
        "body that is not a process chain). Nothing changes before every "
        "check has passed; a damaged stored record counts as missing and "
        "the plan's notice says so."
    ),
    "consumes": ["application/json"],
    "parameters": _ids + [
        {"name": "process_chain", "in": "body", "required": False,
         "description": "The fixed process chain (optional)",
         "schema": {"type": "object"}},
        {"name": "dry_run", "in": "query", "required": False,
         "type": "boolean",
         "description": "Only answer with the plan (per step: reused, "
                        "rerun, new); nothing is changed. true/false, "
                        "1/0, yes/no, on/off; anything else is refused"},
        {"name": "from_step", "in": "query", "required": False,
         "type": "string",
         "description": "Step id or 0-based position (in execution order) "
                        "to re-run from even if nothing changed; 400 names "
                        "the earliest possible step when no interim result "
                        "before it exists"},
    ],
    "responses": {
        "200": {"description": "The accepted new iteration, or the plan "
                               "(dry_run)"},
        "400": {"description": "Invalid input or resumption not possible"},
        "401": {"description": "Not allowed to access this job"},
        "404": {"description": "The job does not exist"},
        "409": {"description": "The job is accepted, running or finished"},
    },
}
