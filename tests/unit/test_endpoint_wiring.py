# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit test: our resources take over endpoints actinia registered first,
whatever order Werkzeug would match duplicate rules in."""

from __future__ import annotations

from flask import Flask
from flask_restful import Api, Resource

from actinia_resume_plugin.endpoints import replace_view


class CoreResource(Resource):
    def get(self, project_name):
        return {"served_by": "core", "project": project_name}


class OurResource(CoreResource):
    def get(self, project_name):
        return {"served_by": "plugin", "project": project_name}


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


def test_replacing_an_unknown_endpoint_is_an_error():
    _, api = make_api()
    try:
        replace_view(api, "nosuchendpoint", OurResource)
    except RuntimeError as exc:
        assert "nosuchendpoint" in str(exc)
    else:
        raise AssertionError("expected RuntimeError")
