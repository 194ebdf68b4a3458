# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Swagger documentation of /resource_storage as our plugin serves it."""

from actinia_resume_plugin.apidocs.models import (
    ACCEPTED_EXAMPLE,
    STORAGE_EXAMPLE,
    error,
    ref,
)

PATH = "/resource_storage"

_user = {
    "name": "user_id", "in": "query", "required": False, "type": "string",
    "description": "Whose storage (default: the caller). admin: users of "
                   "the own group; superadmin: anyone",
}

get_doc = {
    "tags": ["Resource Management"],
    "summary": "Size of the caller's resource storage, per job",
    "description": (
        "used, quota (grass_resource_quota), free, free_percent as actinia "
        "reports them, plus per job with interim results its size, number "
        "of saved steps (only interim results a PUT can restore), newest "
        "step, age and damaged_steps (step and reason) for stored steps "
        "that are damaged. Minimum role: user (own storage)."
    ),
    "parameters": [_user],
    "responses": {
        "200": {"description": "The storage report",
                "schema": ref("ResourceStorageReportModel"),
                "examples": {"application/json": STORAGE_EXAMPLE}},
        "400": error("Unknown user or query parameter"),
        "401": error("Not allowed"),
        "404": error("Not Found. The requested URL is not configured on the "
                     "server."),
    },
}

delete_doc = {
    "tags": ["Resource Management"],
    "summary": "Clean the resource storage in whole units",
    "description": (
        "Removes whole jobs' interim results and resource directories "
        "(with olderthan=N: those whose newest content is older than N "
        "days); interim results of accepted or running jobs are kept. "
        "Answered as actinia answers it, as an async job: status accepted "
        "with resource_id and urls.status; the status URL reaches finished "
        "and its process_results list what was removed, kept and the bytes "
        "freed (the removal is done when the answer comes)."
    ),
    "parameters": [
        _user,
        {"name": "olderthan", "in": "query", "required": False,
         "type": "integer", "minimum": 0, "maximum": 36500,
         "description": "Whole days"},
    ],
    "responses": {
        "200": {"description": "Accepted: poll urls.status",
                "schema": ref("ResumeAcceptedResponseModel"),
                "examples": {"application/json": {
                    **ACCEPTED_EXAMPLE, "iteration": None,
                    "api_info": {"endpoint": "syncresourcestorageresource",
                                 "method": "DELETE",
                                 "path": "/api/v3/resource_storage",
                                 "request_url": "http://127.0.0.1:8088/api/"
                                                "v3/resource_storage"}}}},
        "400": error("Invalid parameters, nothing deleted"),
        "401": error("Not allowed"),
        "404": error("Not Found. The requested URL is not configured on the "
                     "server."),
    },
}
