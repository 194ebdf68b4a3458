# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every operation the plugin adds or replaces is documented with response
schemas (and examples) that resolve; actinia's own docs of the processing
POSTs are kept and extended, not replaced."""

from __future__ import annotations

import json
from types import SimpleNamespace

from actinia_resume_plugin.apidocs import models
from actinia_resume_plugin.endpoints import document_operations

#: actinia's definitions our docs refer to
ACTINIA_DEFINITIONS = {"ProcessingResponseModel", "SimpleResponseModel",
                       "ProcessChainModel"}
OURS = {
    ("/resources/{user_id}/{resource_id}", "put"),
    ("/resources/{user_id}/{resource_id}", "get"),
    ("/resources/{user_id}/{resource_id}", "delete"),
    ("/resource_storage", "get"),
    ("/resource_storage", "delete"),
    *((f"{prefix}/{{project_name}}/{path}", "post")
      for prefix in ("/locations", "/projects")
      for path in ("processing_async", "processing_async_export",
                   "mapsets/{mapset_name}/processing_async")),
}


def documented() -> dict:
    actinia_post = {"tags": ["Processing"], "summary": "actinia's",
                    "parameters": [{"name": "project_name", "in": "path",
                                    "required": True, "type": "string"}]}
    swagger = {"paths": {
        "/locations/{project_name}/processing_async_export": {
            "post": actinia_post}},
        "definitions": {name: {"type": "object"}
                        for name in ACTINIA_DEFINITIONS}}
    document_operations(SimpleNamespace(get_swagger_doc=lambda: swagger))
    return swagger


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_every_operation_has_response_schemas():
    swagger = documented()
    for path, method in OURS:
        doc = swagger["paths"][path][method]
        assert doc["responses"], (path, method)
        for code, response in doc["responses"].items():
            assert "schema" in response, (path, method, code)
            assert response.get("description"), (path, method, code)
        assert "examples" in doc["responses"]["200"], (path, method)


def test_every_reference_resolves_and_is_json():
    swagger = documented()
    json.dumps(swagger)
    for target in set(refs(swagger["paths"])):
        name = target.removeprefix("#/definitions/")
        assert name in swagger["definitions"], target
    for name, definition in models.DEFINITIONS.items():
        assert "example" in definition, name


def test_query_parameters_are_documented():
    swagger = documented()
    put = swagger["paths"]["/resources/{user_id}/{resource_id}"]["put"]
    assert {"dry_run", "from_step"} <= {p["name"] for p in put["parameters"]}
    post = swagger["paths"]["/locations/{project_name}/processing_async"][
        "post"]
    assert {"reuse", "dry_run"} <= {p["name"] for p in post["parameters"]}


def test_actinia_doc_is_extended_not_replaced():
    post = documented()["paths"][
        "/locations/{project_name}/processing_async_export"]["post"]
    names = [p["name"] for p in post["parameters"]]
    assert names[0] == "project_name" and "reuse" in names
    assert post["tags"] == ["Processing"]
