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

from actinia_resume_plugin.api.processing import RESUMABLE_RESOURCES
from actinia_resume_plugin.api.resume import ResumeResourceManager
from actinia_resume_plugin.config import ConfigError, current_config


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
    app.view_functions[endpoint] = view


def plugin_endpoints() -> dict[str, type]:
    """Endpoint name -> our resource class."""
    endpoints = {"resourcemanager": ResumeResourceManager}
    for core_class, resource_cls in RESUMABLE_RESOURCES.items():
        for name in core_endpoint_names(core_class):
            endpoints[name] = resource_cls
    return endpoints


def create_endpoints(flask_api):
    """Called by actinia-core after its own endpoints are registered."""
    try:
        current_config()
    except ConfigError as exc:
        # actinia swallows exceptions of plugins; a broken configuration
        # must stop the server instead of silently disabling resumption.
        print(f"actinia_resume_plugin: configuration error: {exc}",
              file=sys.stderr, flush=True)
        raise SystemExit(f"actinia_resume_plugin: {exc}") from exc
    for endpoint, resource_cls in plugin_endpoints().items():
        replace_view(flask_api, endpoint, resource_cls)
