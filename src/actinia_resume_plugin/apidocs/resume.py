# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Swagger documentation of the status URL as our plugin serves it."""

from actinia_resume_plugin.apidocs.models import (
    ACCEPTED_EXAMPLE,
    error,
    ref,
)

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
        "as actinia refuses it, 404 with actinia's message, while the job "
        "is accepted, running (worker alive) or finished and when interim "
        "results are switched off (save_interim_results, read anew on "
        "every PUT); 404 for an unknown job, 401 for another user's job, "
        "409 for a concurrent PUT, 400 when the input is invalid "
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
                        "rerun, new; ResumePlanResponseModel, status plan, "
                        "200); nothing is changed. true/false, 1/0, yes/no, "
                        "on/off; anything else is refused (400)"},
        {"name": "from_step", "in": "query", "required": False,
         "type": "string",
         "description": "Step id or 0-based position (in execution order) "
                        "to re-run from even if nothing changed; 400 names "
                        "the earliest possible step when no interim result "
                        "before it exists"},
    ],
    "responses": {
        "200": {"description": "The accepted new iteration (status "
                               "accepted) or, with dry_run, the plan "
                               "(status plan)",
                "schema": ref("ResumePutResponseModel"),
                "examples": {"application/json": ACCEPTED_EXAMPLE}},
        "400": error("Invalid input (query, body) or resumption not "
                     "possible (e.g. from_step before the earliest interim "
                     "result)"),
        "401": error("Not allowed to access this job"),
        "404": error("Resource is running no restart possible (also: the "
                     "job is finished or waiting in the queue; interim "
                     "results are not set in the configuration; the job "
                     "does not exist)"),
        "409": error("Another PUT for this job is being processed, or an "
                     "iteration was started meanwhile"),
    },
}

get_doc = {
    "tags": ["Resource Management"],
    "summary": "The status of a job: its latest iteration, or all",
    "description": (
        "resource_id-<uuid>: the latest iteration (by number: iteration 10 "
        "is newer than 9). The bare <uuid>: every iteration by number. "
        "Minimum role: user (own jobs); admins the jobs of their group."
    ),
    "parameters": _ids,
    "responses": {
        "200": {"description": "The job's status document(s)",
                "schema": ref("ResumeResourceStatusModel"),
                "examples": {"application/json": {
                    **ACCEPTED_EXAMPLE, "status": "finished",
                    "message": "Processing successfully finished"}}},
        "400": error("Resource does not exist"),
        "401": error("Not allowed to access this job"),
    },
}

delete_doc = {
    "tags": ["Resource Management"],
    "summary": "Request the termination of the job's latest iteration",
    "parameters": _ids,
    "responses": {
        "200": {"description": "Termination request committed",
                "schema": ref("ResourceTerminationResponseModel"),
                "examples": {"application/json": {
                    "status": "accepted",
                    "message": "Termination request committed"}}},
        "400": error("Resource does not exist"),
        "401": error("Not allowed to access this job"),
    },
}

ITERATION_PATH = PATH + "/{iteration}"

iteration_get_doc = {
    "tags": ["Resource Management"],
    "summary": "The status document of one iteration of a job",
    "parameters": _ids + [
        {"name": "iteration", "in": "path", "required": True,
         "type": "integer", "description": "The iteration (1, 2, …)"}],
    "responses": {
        "200": {"description": "The iteration's status document, by its "
                               "number",
                "schema": ref("ResourceIterationResponseModel"),
                "examples": {"application/json": {"2": {
                    **ACCEPTED_EXAMPLE, "status": "finished"}}}},
        "400": error("Resource does not exist"),
        "401": error("Not allowed to access this job"),
    },
}
