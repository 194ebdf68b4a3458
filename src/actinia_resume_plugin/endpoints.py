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
from actinia_resume_plugin.apidocs import models
from actinia_resume_plugin.apidocs import processing as processing_docs
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


class EndpointConflict(RuntimeError):
    """An endpoint we serve is missing, or served by another class than the
    actinia one we replace (another plugin rebound it first): taking it
    over would silently drop that plugin's behaviour or ours."""


def core_endpoint_names(class_name: str) -> list[str]:
    """actinia-core registers each project resource twice."""
    name = class_name.lower()
    return [name, f"{name}_locations"]


def _class_name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}" if cls else "a plain view"


def check_replaceable(flask_api, endpoint: str, resource_cls) -> None:
    """Raise :class:`EndpointConflict` unless ``endpoint`` is served by the
    class ``resource_cls`` replaces (``resource_cls.replaces``) or already
    by ``resource_cls`` itself."""
    view = flask_api.app.view_functions.get(endpoint)
    if view is None:
        raise EndpointConflict(f"actinia has no endpoint {endpoint!r} to serve")
    serving = getattr(view, "view_class", None)
    if serving not in (resource_cls.replaces, resource_cls):
        raise EndpointConflict(
            f"endpoint {endpoint!r} is served by {_class_name(serving)}, not "
            f"by {_class_name(resource_cls.replaces)}, which "
            f"{resource_cls.__name__} replaces: another plugin of [API] "
            "plugins serves it already; remove one of the two or load "
            "actinia_resume_plugin in an actinia without the other")


def replace_view(flask_api, endpoint: str, resource_cls) -> None:
    """Serve ``endpoint`` (already registered by actinia) with our class,
    built the way flask-restful builds its views. Refuses
    (:class:`EndpointConflict`) when the endpoint is not actinia's own."""
    check_replaceable(flask_api, endpoint, resource_cls)
    app = flask_api.app
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
    view does not touch the docs actinia registered for the URL), through
    flask-restful-swagger-2's ``get_swagger_doc()`` (the document its
    swagger.json endpoint serves): every operation we add or replace, with
    response schemas and examples (apidocs/models.py)."""
    swagger = flask_api.get_swagger_doc()
    paths = swagger.setdefault("paths", {})
    swagger.setdefault("definitions", {}).update(models.DEFINITIONS)
    for module, method, doc in (
        (resume_docs, "put", resume_docs.put_doc),
        (resume_docs, "get", resume_docs.get_doc),
        (resume_docs, "delete", resume_docs.delete_doc),
        (storage_docs, "get", storage_docs.get_doc),
        (storage_docs, "delete", storage_docs.delete_doc),
    ):
        paths.setdefault(module.PATH, {})[method] = doc
    # actinia's resource of one iteration answers {"<n>": document}; its doc
    # said ProcessingResponseModel: documented as it answers
    paths.setdefault(resume_docs.ITERATION_PATH, {})["get"] = \
        resume_docs.iteration_get_doc
    for full, path in processing_docs.documented_paths():
        operations = paths.setdefault(full, {})
        operations["post"] = processing_docs.post_doc(
            path, operations.get("post"))


def _say(message: str) -> None:
    print(f"actinia_resume_plugin: {message}", file=sys.stderr, flush=True)


def _module_plugin_workaround() -> None:
    """actinia-module-plugin's template folder from ``$PCTEMPLATES`` (see
    api/module_plugin.py; it says when the workaround can go)."""
    from actinia_resume_plugin.api import module_plugin

    note = module_plugin.pctemplates_workaround_note()
    if note:
        _say(note)
    folder = module_plugin.honour_pctemplates_env()
    if folder:
        _say(f"actinia-module-plugin templates from PCTEMPLATES={folder}")


def _warm_up_password_context() -> None:
    """passlib builds actinia's password context lazily on its first use,
    and two requests authenticating at once in a fresh worker can find it
    half built (``TypeError: 'NoneType' object is not callable``: a 500
    for a valid request; schemathesis found it). Use it once here, before
    the worker serves anything."""
    try:
        from actinia_core.core.common.user import pwd_context

        pwd_context.verify("warm-up", pwd_context.hash("warm-up"))
    except Exception as exc:  # never a reason not to start
        _say(f"password context not warmed up: {exc}")


def create_endpoints(flask_api):
    """Called by actinia-core after its own endpoints are registered."""
    try:
        config = current_config()
        endpoints = plugin_endpoints(flask_api.app.view_functions, config)
        for endpoint, resource_cls in endpoints.items():
            check_replaceable(flask_api, endpoint, resource_cls)
    except (ConfigError, EndpointConflict) as exc:
        # actinia swallows exceptions of plugins; a broken configuration
        # must stop the server instead of silently disabling resumption.
        what = ("configuration error" if isinstance(exc, ConfigError)
                else "cannot take over actinia's endpoints")
        _say(f"{what}: {exc}")
        # Exit status 3 is gunicorn's "worker failed to boot": the master
        # stops instead of restarting the worker (and failing) forever.
        raise SystemExit(WORKER_BOOT_ERROR) from exc
    if any(cls.__module__.endswith(".module_plugin")
           for cls in endpoints.values()):
        _module_plugin_workaround()
    for endpoint, resource_cls in endpoints.items():
        replace_view(flask_api, endpoint, resource_cls)
    document_operations(flask_api)
    _warm_up_password_context()
    # [MISC] interim_results_ttl_days: remove expired interim results
    start_retention_thread()
    # actinia's local queue child (forked after this) must not hold the
    # API's port when the API is gone
    inherited_sockets.register()
    # continue jobs whose worker was lost
    from actinia_core.core.common.config import global_config

    from actinia_resume_plugin.continuation import start_sweeper_thread

    start_sweeper_thread(global_config, config)
