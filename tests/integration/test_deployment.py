"""Issue: a real actinia deployment with our plugin."""

from conftest import load_chain


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
