# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""actinia-module-plugin's processing resources, run by our resumable workers.

actinia-module-plugin serves ``…/<project>/processing_export``
(``GdiAsyncEphemeralExportResource``) and
``…/<project>/mapsets/<mapset>/processing`` (``GdiAsyncPersistentResource``).
Their POST expands actinia-module templates (e.g. ``index_NDVI``) into a
plain process chain and enqueues actinia-core's ``start_job``. Our subclasses
keep the template expansion (the module plugin's own
``preprocess_build_pc_and_enqueue``) and only hand it our start function, so
the job saves interim results. The job record stores the *expanded* chain;
a PUT resumes it with the actinia-core class the endpoints CSV names.

This module imports actinia_module_plugin; endpoints.py imports it only when
that plugin is installed.
"""

from __future__ import annotations

import os
import pickle
from importlib import metadata

from actinia_module_plugin.api.processing import (
    GdiAsyncEphemeralExportResource,
    GdiAsyncPersistentResource,
    preprocess_build_pc_and_enqueue,
)
from flask import jsonify, make_response

from actinia_resume_plugin.worker.processing import (
    start_ephemeral_export_job,
    start_persistent_job,
)


class ResumableGdiEphemeralExportResource(GdiAsyncEphemeralExportResource):
    """``…/<project>/processing_export`` with templates and interim results."""

    core_class = "AsyncEphemeralExportResource"
    replaces = GdiAsyncEphemeralExportResource

    def post(self, project_name):
        """Execute an ephemeral process chain (actinia-module templates
        allowed) and store results for download; failed jobs can be
        resumed."""
        preprocess_build_pc_and_enqueue(
            self, {"has_json": True, "project_name": project_name},
            start_ephemeral_export_job,
        )
        html_code, response_model = pickle.loads(self.response_data)
        return make_response(jsonify(response_model), html_code)


class ResumableGdiPersistentResource(GdiAsyncPersistentResource):
    """``…/<project>/mapsets/<mapset>/processing`` with templates and
    interim results."""

    core_class = "AsyncPersistentResource"
    replaces = GdiAsyncPersistentResource

    def post(self, project_name, mapset_name):
        """Execute a process chain (actinia-module templates allowed) in a
        new or existing mapset; failed jobs can be resumed."""
        preprocess_build_pc_and_enqueue(
            self, {"has_json": True, "project_name": project_name,
                   "mapset_name": mapset_name},
            start_persistent_job,
        )
        html_code, response_model = pickle.loads(self.response_data)
        return make_response(jsonify(response_model), html_code)


# plugin class name (as in the endpoints CSV) -> our resumable resource
MODULE_PLUGIN_RESOURCES = {
    "GdiAsyncEphemeralExportResource": ResumableGdiEphemeralExportResource,
    "GdiAsyncPersistentResource": ResumableGdiPersistentResource,
}


#: The actinia-module-plugin release :func:`honour_pctemplates_env` works
#: around. It can go (with its call in endpoints.py) once a release reads
#: ``PCTEMPLATES`` without a ``config/*.ini``: start that release with only
#: ``PCTEMPLATES`` set and see whether ``…/processing_export`` finds a
#: template.
PCTEMPLATES_WORKAROUND_FOR = "2.12.1"


def pctemplates_workaround_note(installed: str | None = None) -> str | None:
    """A note for the operator when the installed actinia-module-plugin is
    not the release the PCTEMPLATES workaround was written for (None when
    it is)."""
    if installed is None:
        installed = metadata.version("actinia-module-plugin")
    if installed == PCTEMPLATES_WORKAROUND_FOR:
        return None
    return (f"the PCTEMPLATES workaround (api/module_plugin.py) was written "
            f"for actinia-module-plugin {PCTEMPLATES_WORKAROUND_FOR}, "
            f"{installed} is installed: it is still applied; check whether "
            f"{installed} needs it and remove it when not")


def honour_pctemplates_env() -> str | None:
    """Point the module plugin's template loader at ``$PCTEMPLATES``.

    A workaround for actinia-module-plugin 2.12.1
    (:data:`PCTEMPLATES_WORKAROUND_FOR`): it documents ``PCTEMPLATES`` as
    the template folder, but reads it only when a ``config/*.ini`` exists
    below the server's working directory; otherwise it keeps its built-in
    ``/src/actinia-module-plugin/…`` path and finds no template. Returns the
    folder now used (None when nothing was changed).
    """
    path = os.environ.get("PCTEMPLATES")
    if not path:
        return None
    from actinia_module_plugin.resources.config import PCTEMPLATECONFIG
    from actinia_module_plugin.resources.templating import pcTplEnv
    from jinja2 import FileSystemLoader

    searchpath = list(getattr(pcTplEnv.loader, "searchpath", []) or [])
    if searchpath == [path]:
        return None
    PCTEMPLATECONFIG.pathfile = path
    pcTplEnv.loader = FileSystemLoader(path)
    if pcTplEnv.cache is not None:
        pcTplEnv.cache.clear()
    return path
