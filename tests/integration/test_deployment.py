# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue: a real actinia deployment with our plugin."""

from .chains import load_chain


def test_version_lists_our_plugin(stack_true):
    doc = stack_true.client().request("GET", "version").json()
    assert "actinia_resume_plugin" in doc["plugins"].split(",")
    assert doc["plugin_versions"]["actinia_resume_plugin"]


def test_chain_finishes_with_r_info_values(stack_true):
    client = stack_true.client()
    doc = client.run_chain("processing_async", load_chain("mapcalc_info"))
    assert doc["status"] == "finished", doc["message"]
    info = doc["process_results"]["r_info_1"]
    assert info["rows"] == "1350" and info["cols"] == "1500"
    assert info["north"] == "228500" and info["datatype"] == "CELL"
    univar = doc["process_results"]["univar"]
    assert float(univar["mean"]) == 5.0


def test_our_workers_serve_all_processing_endpoints(stack_true):
    """Our resources serve actinia's URLs: the final response of each core
    processing endpoint carries our `resume` section. The URLs are the
    seed's (`projects/nc_spm_08/processing_async`, `…_export`,
    `mapsets/<m>/processing_async`) on GRASS >= 8.4, `locations/…` before."""
    client = stack_true.client()
    for path in ("processing_async", "processing_async_export",
                 "mapsets/deployment_check/processing_async"):
        doc = client.run_chain(path, load_chain("mapcalc_info"))
        assert doc["status"] == "finished", (path, doc["message"])
        assert doc["resume"]["iteration"] == 1
        assert [s["action"] for s in doc["resume"]["steps"]] == ["run"] * 3


def test_projects_urls_follow_the_grass_version(stack_true):
    """GRASS 8.2 serves `locations/`; `projects/` answers 404 as in
    actinia-core (our resources keep actinia's URL decorator). GRASS 8.4
    serves `projects/` (what the suite then uses) and `locations/` with a
    Deprecation header."""
    client = stack_true.client()
    version = client.request("GET", "version").json()["grass_version"]
    major_minor = tuple(int(x) for x in version["version"].split(".")[:2])
    chain = load_chain("mapcalc_info")
    projects = client.request("POST", client.url(
        "projects/nc_spm_08/processing_async"), json=chain)
    locations = client.request("POST", client.url(
        "locations/nc_spm_08/processing_async"), json=chain)
    if major_minor < (8, 4):
        assert stack_true.project_url_part == "locations"
        assert projects.status_code == 404
        assert "8.4" in projects.json()["message"]
        assert locations.status_code == 200
    else:
        assert stack_true.project_url_part == "projects"
        assert projects.status_code == 200
        assert "Deprecation" not in projects.headers
        assert locations.status_code == 200
        assert "Deprecation" in locations.headers
    for resp in (projects, locations):
        if resp.status_code == 200:
            doc = client.wait(resp.json()["urls"]["status"])
            assert doc["status"] == "finished", doc["message"]


def test_swagger_documents_our_operations(stack_true):
    doc = stack_true.client().request("GET", "swagger.json").json()
    put = doc["paths"]["/resources/{user_id}/{resource_id}"]["put"]
    names = {p["name"] for p in put["parameters"]}
    assert {"dry_run", "from_step", "process_chain"} <= names
    delete = doc["paths"]["/resource_storage"]["delete"]
    assert "olderthan" in {p["name"] for p in delete["parameters"]}
    assert "user" in doc["paths"]["/resource_storage"]["get"]["description"]
