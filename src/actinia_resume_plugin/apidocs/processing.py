# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Swagger documentation of the processing POSTs we serve: actinia's docs
where actinia has them, with our query parameters (``?reuse=``,
``?dry_run=``) and every answer we give; the ephemeral
``POST …/processing_async``, which actinia does not document, too."""

from __future__ import annotations

import copy

from actinia_resume_plugin.apidocs.models import (
    ACCEPTED_EXAMPLE,
    error,
    ref,
)

#: path (under /locations/ and /projects/) -> summary, for our resources
PATHS = {
    "/{project_name}/processing_async":
        "Execute a process chain in an ephemeral mapset (resumable)",
    "/{project_name}/processing_async_export":
        "Execute a process chain in an ephemeral mapset and export the "
        "results (resumable)",
    "/{project_name}/mapsets/{mapset_name}/processing_async":
        "Execute a process chain in a persistent mapset (resumable)",
}
PREFIXES = ("/locations", "/projects")

QUERY = [
    {"name": "reuse", "in": "query", "required": False, "type": "string",
     "description": "Start after the caller's matching interim results of "
                    "an earlier failed job: a resource id, or 'auto' for the "
                    "job that reuses the most steps. Needs [MISC] "
                    "reuse_interim_results = True (else 400)"},
    {"name": "dry_run", "in": "query", "required": False, "type": "boolean",
     "description": "With reuse: only answer with the plan (status plan, "
                    "ResumePlanResponseModel); no job is started"},
]


def _path_parameters(path: str) -> list[dict]:
    params = [{"name": "project_name", "in": "path", "required": True,
               "type": "string", "description": "The project (location)"}]
    if "{mapset_name}" in path:
        params.append({"name": "mapset_name", "in": "path", "required": True,
                       "type": "string",
                       "description": "The persistent mapset"})
    params.append({"name": "process_chain", "in": "body", "required": True,
                   "description": "The process chain",
                   "schema": ref("ProcessChainModel")})
    return params


def post_doc(path: str, actinia_doc: dict | None) -> dict:
    """The doc of ``POST <prefix><path>`` (``path``: a key of PATHS), from
    actinia's (``actinia_doc``, may be None)."""
    doc = copy.deepcopy(actinia_doc) if actinia_doc else {
        "tags": ["Processing"],
        "consumes": ["application/json"],
        "description": (
            "Execute a process chain in an ephemeral mapset; the job is "
            "accepted at once, poll urls.status. A failed job can be "
            "resumed with PUT on its status URL. Minimum role: user."),
        "parameters": _path_parameters(path),
    }
    doc["summary"] = PATHS[path]
    names = {p.get("name") for p in doc.get("parameters", [])}
    doc["parameters"] = list(doc.get("parameters", [])) + [
        p for p in QUERY if p["name"] not in names]
    doc["responses"] = {
        "200": {"description": "The accepted job (poll urls.status), or "
                               "with reuse and dry_run the plan",
                "schema": ref("ResumePostResponseModel"),
                "examples": {"application/json": {**ACCEPTED_EXAMPLE,
                                                  "iteration": 1}}},
        "400": error("The process chain or the query is refused (actinia's "
                     "ProcessingErrorResponseModel, or our error document)"),
        "401": error("Not allowed (credentials, project or mapset)"),
        "404": error("Not available with this GRASS version (/projects/…: "
                     "from GRASS 8.4)"),
    }
    return doc


def documented_paths():
    """(full path, path below the prefix) of every POST we document."""
    for prefix in PREFIXES:
        for path in PATHS:
            yield prefix + path, path
