# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Processing resources: actinia's, with jobs run by our resumable workers.

They serve actinia's own URLs and endpoint names (see endpoints.py), so
clients see no difference except that failed jobs can be resumed.
"""

from __future__ import annotations

import pickle

from actinia_core.core.common.kvdb_interface import enqueue_job
from actinia_core.rest.ephemeral_processing import AsyncEphemeralResource
from actinia_core.rest.ephemeral_processing_with_export import (
    AsyncEphemeralExportResource,
)
from actinia_core.rest.persistent_processing import AsyncPersistentResource
from flask import g, jsonify, make_response, request

from actinia_resume_plugin.api import reuse
from actinia_resume_plugin.api.common import ApiError
from actinia_resume_plugin.plans import ResumePlan
from actinia_resume_plugin.worker.processing import (
    start_ephemeral_export_job,
    start_ephemeral_job,
    start_persistent_job,
)


class EnqueueMixin:
    """The POST of actinia's processing resources, with our start_job."""

    start_job = None  # set by subclasses (a module-level, picklable function)
    uses_file_storage = False
    #: actinia's resource whose endpoints we serve (endpoints.replace_view
    #: refuses to replace any other class)
    replaces = None

    def enqueue(self, resume_plan: ResumePlan | None = None, endpoint=None,
                **preprocess_kwargs):
        """Accept the job and hand it to our worker.

        A resumed iteration passes the resume plan and the endpoint of the
        job's first POST (the PUT itself is served by another endpoint).
        The plan crosses the queue as JSON.
        """
        if endpoint:
            self.api_info["endpoint"] = endpoint
        elif resume_plan is None and "reuse" in request.args:
            # POST ?reuse=: start after the caller's matching interim results
            try:
                resume_plan = reuse.reuse_plan(
                    g.user.get_id(), preprocess_kwargs.get("project_name"),
                    preprocess_kwargs.get("mapset_name"),
                    self.api_info["endpoint"])
                if reuse.dry_run_requested():
                    return reuse.dry_run_response(resume_plan)
            except ApiError as exc:
                return exc.to_response()
        rdc = self.preprocess(**preprocess_kwargs)
        if rdc:
            if self.uses_file_storage:
                rdc.set_storage_model_to_file()
            if resume_plan is not None:
                rdc.resume_plan = resume_plan.to_json()
            enqueue_job(self.job_timeout, type(self).start_job, rdc)
        html_code, response_model = pickle.loads(self.response_data)
        return make_response(jsonify(response_model), html_code)


class ResumableEphemeralResource(EnqueueMixin, AsyncEphemeralResource):
    start_job = staticmethod(start_ephemeral_job)
    replaces = AsyncEphemeralResource

    def post(self, project_name):
        """Start an ephemeral processing job whose interim results can be
        used to resume it."""
        return self.enqueue(project_name=project_name)


class ResumableEphemeralExportResource(
    EnqueueMixin, AsyncEphemeralExportResource
):
    start_job = staticmethod(start_ephemeral_export_job)
    uses_file_storage = True
    replaces = AsyncEphemeralExportResource

    def post(self, project_name):
        """Start an ephemeral processing job with export."""
        return self.enqueue(has_json=True, project_name=project_name)


class ResumablePersistentResource(EnqueueMixin, AsyncPersistentResource):
    start_job = staticmethod(start_persistent_job)
    replaces = AsyncPersistentResource

    def post(self, project_name, mapset_name):
        """Start a persistent processing job."""
        return self.enqueue(
            has_json=True, project_name=project_name, mapset_name=mapset_name
        )


# actinia-core class name -> our resource that runs (and resumes) its jobs
RESUMABLE_RESOURCES = {
    "AsyncEphemeralResource": ResumableEphemeralResource,
    "AsyncEphemeralExportResource": ResumableEphemeralExportResource,
    "AsyncPersistentResource": ResumablePersistentResource,
}
