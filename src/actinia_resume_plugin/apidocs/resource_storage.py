# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Swagger documentation of /resource_storage as our plugin serves it."""

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
    "responses": {"200": {"description": "The storage report"},
                  "400": {"description": "Unknown user"},
                  "401": {"description": "Not allowed"}},
}

delete_doc = {
    "tags": ["Resource Management"],
    "summary": "Clean the resource storage in whole units",
    "description": (
        "Removes whole jobs' interim results and resource directories "
        "(with olderthan=N: those whose newest content is older than N "
        "days); interim results of accepted or running jobs are kept. The "
        "response lists what was removed and the bytes freed."
    ),
    "parameters": [
        _user,
        {"name": "olderthan", "in": "query", "required": False,
         "type": "integer", "minimum": 0, "maximum": 36500,
         "description": "Whole days"},
    ],
    "responses": {"200": {"description": "What was removed and kept"},
                  "400": {"description": "Invalid parameters, nothing "
                                         "deleted"},
                  "401": {"description": "Not allowed"}},
}
