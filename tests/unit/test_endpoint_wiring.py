# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit test: our resources take over endpoints actinia registered first,
whatever order Werkzeug would match duplicate rules in, and only those
served by the actinia class they replace."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_restful import Resource
from flask_restful_swagger_2 import Api

from actinia_resume_plugin import endpoints
from actinia_resume_plugin.api.module_plugin import (
    PCTEMPLATES_WORKAROUND_FOR,
    pctemplates_workaround_note,
)
from actinia_resume_plugin.apidocs import resume as resume_docs
from actinia_resume_plugin.config import ResumeConfig
from actinia_resume_plugin.endpoints import (
    EndpointConflict,
    document_operations,
    replace_view,
)


class CoreResource(Resource):
    def get(self, project_name):
        return {"served_by": "core", "project": project_name}


class OurResource(CoreResource):
    replaces = CoreResource

    def get(self, project_name):
        return {"served_by": "plugin", "project": project_name}


class OtherPluginResource(CoreResource):
    replaces = CoreResource

    def get(self, project_name):
        return {"served_by": "another plugin", "project": project_name}


def make_api():
    app = Flask(__name__)
    api = Api(app, prefix="/api/v3")
    for part in ("projects", "locations"):
        api.add_resource(
            CoreResource, f"/{part}/<string:project_name>/processing_async",
            endpoint="coreresource" + ("" if part == "projects"
                                       else "_locations"))
    return app, api


def test_replaced_endpoints_are_served_by_our_resource():
    app, api = make_api()
    client = app.test_client()
    url = "/api/v3/locations/nc/processing_async"
    assert client.get(url).json["served_by"] == "core"
    replace_view(api, "coreresource_locations", OurResource)
    assert client.get(url).json == {"served_by": "plugin", "project": "nc"}
    # the other URL form keeps its own endpoint until replaced as well
    other = "/api/v3/projects/nc/processing_async"
    assert client.get(other).json["served_by"] == "core"
    replace_view(api, "coreresource", OurResource)
    assert client.get(other).json["served_by"] == "plugin"
    # URL building by class still works (actinia builds status URLs so)
    with app.test_request_context():
        assert api.url_for(OurResource, project_name="x").endswith(
            "/projects/x/processing_async")
    # replacing again (our own view) is fine
    replace_view(api, "coreresource", OurResource)


def test_replacing_an_unknown_endpoint_is_an_error():
    _, api = make_api()
    with pytest.raises(EndpointConflict, match="nosuchendpoint"):
        replace_view(api, "nosuchendpoint", OurResource)


def test_an_endpoint_another_plugin_took_over_is_not_replaced():
    app, api = make_api()
    replace_view(api, "coreresource", OtherPluginResource)
    with pytest.raises(EndpointConflict) as exc:
        replace_view(api, "coreresource", OurResource)
    message = str(exc.value)
    assert "OtherPluginResource" in message and "CoreResource" in message
    assert "another plugin" in message
    url = "/api/v3/projects/nc/processing_async"
    assert app.test_client().get(url).json["served_by"] == "another plugin"


def test_our_operations_are_documented_through_the_public_swagger_api():
    app, api = make_api()
    document_operations(api)
    assert api.get_swagger_doc()["paths"][resume_docs.PATH]["put"] is \
        resume_docs.put_doc
    served = app.test_client().get("/api/v3/api/swagger.json").json
    assert served["paths"][resume_docs.PATH]["put"]["summary"] == \
        resume_docs.put_doc["summary"]


def test_the_module_plugin_workaround_names_its_version():
    assert pctemplates_workaround_note(PCTEMPLATES_WORKAROUND_FOR) is None
    note = pctemplates_workaround_note("9.9.9")
    assert PCTEMPLATES_WORKAROUND_FOR in note and "9.9.9 is installed" in note


def test_start_up_stops_when_an_endpoint_is_taken(monkeypatch, capsys):
    app, api = make_api()
    replace_view(api, "coreresource", OtherPluginResource)
    monkeypatch.setattr(endpoints, "current_config", ResumeConfig)
    monkeypatch.setattr(endpoints, "plugin_endpoints",
                        lambda *args: {"coreresource": OurResource})
    with pytest.raises(SystemExit) as info:
        endpoints.create_endpoints(api)
    assert info.value.code == endpoints.WORKER_BOOT_ERROR
    err = capsys.readouterr().err
    assert "cannot take over actinia's endpoints: endpoint 'coreresource'" in err
    url = "/api/v3/projects/nc/processing_async"
    assert app.test_client().get(url).json["served_by"] == "another plugin"
