# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Response models of the operations the plugin adds or replaces, as
Swagger 2.0 definitions with examples (actinia's plugin template keeps them
in ``model/``). endpoints.document_operations adds them to actinia's
``swagger.json``; actinia's own definitions (``ProcessingResponseModel``,
``SimpleResponseModel``) are referred to where our answers are actinia's.
"""

from __future__ import annotations

RID = "resource_id-2c9bb8f5-1c5c-4f4d-9d0b-8e0b5c7e1f3a"
STATUS_URL = f"http://127.0.0.1:8088/api/v3/resources/actinia-gdi/{RID}"


def ref(name: str) -> dict:
    return {"$ref": f"#/definitions/{name}"}


ERROR_EXAMPLE = {
    "status": "error",
    "message": "Resource is running no restart possible",
    "detail": "The job is running (its worker is alive); terminate it first "
              "(DELETE on the status URL)",
}

ACCEPTED_EXAMPLE = {
    "status": "accepted", "user_id": "actinia-gdi", "resource_id": RID,
    "iteration": 2, "queue": "local", "message": "Resource accepted",
    "accept_timestamp": 1764626400.1, "accept_datetime": "2026-12-01 22:00:00",
    "timestamp": 1764626400.1, "datetime": "2026-12-01 22:00:00",
    "time_delta": 0.0, "process_results": {}, "process_chain_list": [],
    "urls": {"status": STATUS_URL, "resources": []},
    "api_info": {"endpoint": "asyncephemeralresource", "method": "PUT",
                 "path": f"/api/v3/resources/actinia-gdi/{RID}",
                 "request_url": STATUS_URL},
}

PLAN_EXAMPLE = {
    "status": "plan", "resource_id": RID, "iteration": 2,
    "message": "Dry run: nothing was changed",
    "plan": {"start": 2, "restore_snapshot": 1, "steps_reused": 2,
             "failed_step": 2, "forced_from": None, "notice": None,
             "step_ids": ["mapcalc1", "mapcalc2", "ls_missing"],
             "steps": [{"id": "mapcalc1", "action": "reused"},
                       {"id": "mapcalc2", "action": "reused"},
                       {"id": "ls_missing", "action": "rerun"}]},
}

STORAGE_EXAMPLE = {
    "status": "finished",
    "message": "Resource storage size successfully computed",
    "user_id": "actinia-gdi",
    "process_results": {
        "used": 44097234, "quota": 107374182400, "free": 107330085166,
        "free_percent": 99, "files": 812, "interim_results_bytes": 44097234,
        "interim_results": [{
            "kind": "interim_results", "resource_id": RID,
            "bytes": 44097234, "files": 812,
            "newest_mtime": "2026-12-01T22:00:00Z", "age_seconds": 61.2,
            "steps": 2, "newest_step": 1, "newest_step_id": "mapcalc2",
            "failed_step": 2, "job_status": "error"}],
        "resources": [], "other": [], "scan_seconds": 0.0123,
    },
}

DEFINITIONS = {
    "ResumeErrorResponseModel": {
        "type": "object",
        "description": "A refused request: actinia's error document "
                       "(status, message: actinia's own words where actinia "
                       "answers the same), and our explanation in detail",
        "required": ["status", "message"],
        "properties": {
            "status": {"type": "string", "enum": ["error"]},
            "message": {"type": "string"},
            "detail": {"type": "string"},
        },
        "example": ERROR_EXAMPLE,
    },
    "ResumePutResponseModel": {
        "type": "object",
        "description": "The accepted new iteration (actinia's "
                       "ProcessingResponseModel, status accepted) or, with "
                       "?dry_run=true, the plan (status plan): per step "
                       "reused, rerun or new; nothing is changed",
        "required": ["status", "resource_id", "message"],
        "properties": {
            "status": {"type": "string", "enum": ["accepted", "plan"]},
            "resource_id": {"type": "string"},
            "user_id": {"type": "string"},
            "iteration": {"type": "integer"},
            "message": {"type": "string"},
            "urls": {"type": "object"},
            "plan": {"type": "object"},
        },
        "example": ACCEPTED_EXAMPLE,
    },
    "ResumePlanResponseModel": {
        "type": "object",
        "description": "The answer of ?dry_run=true: the plan, per step "
                       "reused, rerun or new; nothing was changed",
        "required": ["status", "message", "plan"],
        "properties": {
            "status": {"type": "string", "enum": ["plan"]},
            "resource_id": {"type": "string"},
            "iteration": {"type": "integer"},
            "message": {"type": "string"},
            "plan": {"type": "object"},
        },
        "example": PLAN_EXAMPLE,
    },
    "ResumePostResponseModel": {
        "type": "object",
        "description": "The accepted job (actinia's ProcessingResponseModel, "
                       "status accepted) or, with ?reuse=…&dry_run=true, the "
                       "plan over the reused interim results (status plan)",
        "required": ["status", "message"],
        "properties": {
            "status": {"type": "string", "enum": ["accepted", "plan"]},
            "resource_id": {"type": "string"},
            "user_id": {"type": "string"},
            "message": {"type": "string"},
            "urls": {"type": "object"},
            "plan": {"type": "object"},
            "reused_from": {"type": "string", "x-nullable": True},
        },
        "example": {**ACCEPTED_EXAMPLE, "iteration": 1},
    },
    "ResumeAcceptedResponseModel": {
        "type": "object",
        "description": "An accepted async job (actinia's "
                       "ProcessingResponseModel with status accepted; its "
                       "process_results is an object): poll urls.status",
        "required": ["status", "user_id", "resource_id", "message", "urls"],
        "properties": {
            "status": {"type": "string", "enum": ["accepted"]},
            "user_id": {"type": "string"},
            "resource_id": {"type": "string"},
            "message": {"type": "string"},
            "urls": {"type": "object",
                     "required": ["status"],
                     "properties": {"status": {"type": "string"}}},
            "process_results": {"type": "object"},
        },
        "example": ACCEPTED_EXAMPLE,
    },
    "ResourceIterationResponseModel": {
        "type": "object",
        "description": "One iteration of a job by its number: "
                       "{\"<iteration>\": its status document}",
        "additionalProperties": {"type": "object"},
        "example": {"2": {**ACCEPTED_EXAMPLE, "status": "finished"}},
    },
    "ResumeResourceStatusModel": {
        "type": "object",
        "description": "The latest iteration (actinia's "
                       "ProcessingResponseModel) for resource_id-<uuid>; for "
                       "the bare <uuid> every iteration by number "
                       "({\"1\": …, \"2\": …})",
        "additionalProperties": True,
        "example": {**ACCEPTED_EXAMPLE, "status": "finished",
                    "message": "Processing successfully finished"},
    },
    "ResourceStorageReportModel": {
        "type": "object",
        "description": "Size of the resource storage with a breakdown per "
                       "unit (a job's interim results, a job's exported "
                       "resources, anything else)",
        "required": ["status", "message", "user_id", "process_results"],
        "properties": {
            "status": {"type": "string", "enum": ["finished"]},
            "message": {"type": "string"},
            "user_id": {"type": "string"},
            "process_results": {
                "type": "object",
                "required": ["used", "quota", "free", "free_percent"],
                "properties": {
                    "used": {"type": "integer"},
                    "quota": {"type": "integer"},
                    "free": {"type": "integer"},
                    "free_percent": {"type": "number"},
                    "files": {"type": "integer"},
                    "interim_results_bytes": {"type": "integer"},
                    "interim_results": {"type": "array",
                                        "items": {"type": "object"}},
                    "resources": {"type": "array",
                                  "items": {"type": "object"}},
                    "other": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
        "example": STORAGE_EXAMPLE,
    },
    "ResourceTerminationResponseModel": {
        "type": "object",
        "required": ["status", "message"],
        "properties": {"status": {"type": "string"},
                       "message": {"type": "string"}},
        "example": {"status": "accepted",
                    "message": "Termination request committed"},
    },
}

ERROR = ref("ResumeErrorResponseModel")


def error(description: str) -> dict:
    return {"description": description, "schema": ERROR,
            "examples": {"application/json": {
                "status": "error", "message": description}}}
