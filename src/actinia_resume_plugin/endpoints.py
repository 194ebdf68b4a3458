# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Wire the plugin's HTTP resources into actinia's flask API.

actinia-core registers its own resources first, then calls
:func:`create_endpoints` of every plugin. Our resources serve actinia's own
URLs under actinia's own endpoint names: we rebind the view function of each
of those endpoints to our resource class. Werkzeug keeps the URL rules, so
the routing stays exactly actinia's (both ``locations/`` and ``projects/``
URL forms, with actinia's deprecation decorator) and our classes win
deterministically, whatever the order of rule matching.
"""

from __future__ import annotations

import sys

from actinia_resume_plugin import inherited_sockets
from actinia_resume_plugin.api.processing import RESUMABLE_RESOURCES
from actinia_resume_plugin.api.resource_storage import (
    ResourceStorageResource,
    start_retention_thread,
)
from actinia_resume_plugin.api.resume import ResumeResourceManager
from actinia_resume_plugin.api.unavailable import answers_503_while_kvdb_down
from actinia_resume_plugin.apidocs import resource_storage as storage_docs
from actinia_resume_plugin.apidocs import resume as resume_docs
from actinia_resume_plugin.config import (
    CORE_CLASSES,
    ConfigError,
    ResumeConfig,
    current_config,
)

# gunicorn's exit status for a worker that cannot boot (halts the master)
WORKER_BOOT_ERROR = 3


def core_endpoint_names(class_name: str) -> list[str]:
    """actinia-core registers each project resource twice."""
    name = class_name.lower()
    return [name, f"{name}_locations"]


def replace_view(flask_api, endpoint: str, resource_cls) -> None:
    """Serve ``endpoint`` (already registered by actinia) with our class,
    built the way flask-restful builds its views."""
    app = flask_api.app
    if endpoint not in app.view_functions:
        raise RuntimeError(f"actinia has no endpoint {endpoint!r} to serve")
    resource_cls.mediatypes = flask_api.mediatypes_method()
    resource_cls.endpoint = endpoint
    view = flask_api.output(resource_cls.as_view(endpoint))
    for decorator in flask_api.decorators:
        view = decorator(view)
    app.view_functions[endpoint] = answers_503_while_kvdb_down(view)


def plugin_resource_classes() -> dict[str, type]:
    """Plugin endpoint class name -> our resumable variant of it, for the
    plugins that are installed (today: actinia-module-plugin)."""
    try:
        from actinia_resume_plugin.api.module_plugin import (
            MODULE_PLUGIN_RESOURCES,
        )
    except ImportError:
        return {}
    return dict(MODULE_PLUGIN_RESOURCES)


def _csv_line(path: str | None, class_name: str) -> str:
    """``file:line`` of the CSV row naming ``class_name`` (for messages)."""
    try:
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                cell = line.split(";", 1)[0].strip()
                if cell.lower() == class_name.lower():
                    return f"{path}:{lineno}"
    except (OSError, TypeError):
        pass
    return str(path)


def csv_plugin_endpoints(registered, config: ResumeConfig) -> dict[str, type]:
    """Endpoint name -> our resource for every plugin row of the endpoints
    CSV (``save_interim_results_endpoints_cfg``).

    Each plugin class is looked up among the endpoints actinia has
    registered. A row that names no registered endpoint, a class we have no
    resumable variant of, or a core class that does not match the kind of
    job the endpoint runs, raises :class:`ConfigError`: resumption of that
    endpoint would otherwise silently not work.
    """
    core = {name.lower() for name in CORE_CLASSES}
    variants = {name.lower(): cls
                for name, cls in plugin_resource_classes().items()}
    endpoints: dict[str, type] = {}
    for plugin_class, core_class in config.endpoint_map.items():
        if plugin_class in core:
            continue
        where = _csv_line(config.endpoints_cfg, plugin_class)
        names = [n for n in core_endpoint_names(plugin_class)
                 if n in registered]
        if not names:
            raise ConfigError(
                f"{where}: {plugin_class!r} is not an endpoint registered in "
                "actinia; install its plugin and list it before "
                "actinia_resume_plugin in [API] plugins, or remove the row")
        resource_cls = variants.get(plugin_class)
        if resource_cls is None:
            raise ConfigError(
                f"{where}: actinia_resume_plugin has no resumable variant of "
                f"endpoint {plugin_class!r} (known: "
                f"{', '.join(sorted(plugin_resource_classes())) or 'none'})")
        if resource_cls.core_class != core_class:
            raise ConfigError(
                f"{where}: {plugin_class!r} runs "
                f"{resource_cls.core_class} jobs; it cannot be resumed with "
                f"{core_class}")
        for name in names:
            endpoints[name] = resource_cls
    return endpoints


def plugin_endpoints(registered=(), config: ResumeConfig | None = None
                     ) -> dict[str, type]:
    """Endpoint name -> our resource class: actinia-core's resources, and
    the plugin endpoints of the endpoints CSV that are in ``registered``."""
    endpoints = {"resourcemanager": ResumeResourceManager,
                 "syncresourcestorageresource": ResourceStorageResource}
    for core_class, resource_cls in RESUMABLE_RESOURCES.items():
        for name in core_endpoint_names(core_class):
            endpoints[name] = resource_cls
    if config is not None:
        endpoints.update(csv_plugin_endpoints(set(registered), config))
    return endpoints


def document_operations(flask_api) -> None:
    """Put our operations' docs into actinia's swagger.json (rebinding a
    view does not touch the docs actinia registered for the URL)."""
    paths = getattr(flask_api, "_swagger_object", {}).get("paths", {})
    for module, method, doc in (
        (resume_docs, "put", resume_docs.put_doc),
        (storage_docs, "get", storage_docs.get_doc),
        (storage_docs, "delete", storage_docs.delete_doc),
    ):
        paths.setdefault(module.PATH, {})[method] = doc


def create_endpoints(flask_api):
    """Called by actinia-core after its own endpoints are registered."""
    try:
        config = current_config()
        endpoints = plugin_endpoints(flask_api.app.view_functions, config)
    except ConfigError as exc:
        # actinia swallows exceptions of plugins; a broken configuration
        # must stop the server instead of silently disabling resumption.
        print(f"actinia_resume_plugin: configuration error: {exc}",
              file=sys.stderr, flush=True)
        # Exit status 3 is gunicorn's "worker failed to boot": the master
        # stops instead of restarting the worker (and failing) forever.
        raise SystemExit(WORKER_BOOT_ERROR) from exc
    if any(cls.__module__.endswith(".module_plugin")
           for cls in endpoints.values()):
        from actinia_resume_plugin.api.module_plugin import (
            honour_pctemplates_env,
        )
        folder = honour_pctemplates_env()
        if folder:
            print(f"actinia_resume_plugin: actinia-module-plugin templates "
                  f"from PCTEMPLATES={folder}", file=sys.stderr, flush=True)
    for endpoint, resource_cls in endpoints.items():
        replace_view(flask_api, endpoint, resource_cls)
    document_operations(flask_api)
    # [MISC] interim_results_ttl_days: remove expired interim results
    start_retention_thread()
    # actinia's local queue child (forked after this) must not hold the
    # API's port when the API is gone
    inherited_sockets.register()
    # continue jobs whose worker was lost
    from actinia_core.core.common.config import global_config

    from actinia_resume_plugin.continuation import start_sweeper_thread

    start_sweeper_thread(global_config, config)
