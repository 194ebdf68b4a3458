# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue #5: actinia-module-plugin endpoints (templates) resumable through
the endpoints CSV; a malformed CSV stops the deployment.

The stacks load actinia_module_plugin 2.12.1 before our plugin, with
config/actinia_interim_endpoints.csv mapping its classes to actinia-core's
and PCTEMPLATES=config/pctemplates (index_NDVI.json).
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
import rasterio
import requests
import stack

from actinia_resume_plugin.store import SnapshotStore, interim_root

from .chains import load_chain
from .jobs import univar_of

EXPANDED_IDS = ["r.mapcalc_ndvi", "r.colors_ndvi", "exporter_ndvi", "r_info1"]
NDVI_EXPR = ("ndvi = float( lsat5_1987_20@landsat - lsat5_1987_10@landsat ) "
             "/ float( lsat5_1987_20@landsat + lsat5_1987_10@landsat )")


def post(client, path, chain):
    resp = client.post_chain(path, chain)
    return resp.json()["urls"]["status"]


def job_record(dep, doc) -> dict:
    root = interim_root(dep.resource_dir, doc["user_id"], doc["resource_id"])
    return SnapshotStore(root).read_job() or {}


def actions(doc) -> dict:
    return {s["id"]: s["action"] for s in doc["resume"]["steps"]}


def read_cog(client, url):
    resp = client.request("GET", url)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.content[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00",
                                 b"MM\x00+"), "not a (Big)TIFF"
    with rasterio.MemoryFile(io.BytesIO(resp.content)) as mem:
        with mem.open() as ds:
            return ds.profile, ds.read(1, masked=True), ds.tags(
                ns="IMAGE_STRUCTURE")


# ---------------------------------------------------------------- templates
@pytest.fixture(scope="module")
def failed_template_job(stack_true):
    """The spec's pc_template_error.json POSTed to processing_export."""
    client = stack_true.client()
    status = post(client, "processing_export",
                  load_chain("pc_template_error"))
    doc = client.wait(status)
    return status, doc


def test_template_job_fails_at_the_expanded_r_info(stack_true,
                                                   failed_template_job):
    _, doc = failed_template_job
    assert doc["status"] == "error"
    assert "r.info" in doc["message"]
    assert "ndvi10" in json.dumps(doc["process_log"][-1])
    assert doc["api_info"]["endpoint"] == "gdiasyncephemeralexportresource"
    # actinia ran the template's expansion, not the actinia-module
    chain = doc["process_chain_list"][0]
    assert [s["id"] for s in chain["list"]] == EXPANDED_IDS
    assert chain["list"][0]["inputs"][0]["value"] == NDVI_EXPR
    # our worker saved interim results (True: every step before r_info1)
    # and recorded the job for resumption with the core class of the CSV
    record = job_record(stack_true, doc)
    assert record["core_class"] == "AsyncEphemeralExportResource"
    assert record["endpoint"] == "gdiasyncephemeralexportresource"
    assert record["failed_step"] == 3
    assert record["step_ids"] == EXPANDED_IDS
    root = interim_root(stack_true.resource_dir, doc["user_id"],
                        doc["resource_id"])
    assert SnapshotStore(root).steps() == [0, 1, 2]


def test_template_put_plans(stack_true, failed_template_job):
    """Dry runs: the expanded chain's steps are reused where the PUT chain
    has them; a chain that differs from step 0 re-runs everything."""
    status, _ = failed_template_job
    client = stack_true.client()
    # the spec's forput chain (no exporter): identical up to r.colors_ndvi
    spec_chain = load_chain("pc_template_forput")
    spec_chain["list"] = [s for s in spec_chain["list"]
                          if s["id"] != "exporter_ndvi"]
    plan = client.put(status, spec_chain, params={"dry_run": "true"}).json()
    assert plan["status"] == "plan", plan
    assert plan["plan"]["start"] == 2
    assert plan["plan"]["restore_snapshot"] == 1
    # a chain whose first step differs: no interim result is usable
    other = load_chain("pc_template_forput")
    other["list"][0]["inputs"][0]["value"] = NDVI_EXPR.replace(
        "ndvi =", "ndvi2 =")
    plan = client.put(status, other, params={"dry_run": "true"}).json()
    assert plan["plan"]["start"] == 0
    assert plan["plan"]["restore_snapshot"] is None


def test_template_job_resumed_with_complete_chain(stack_true,
                                                  failed_template_job):
    status, first = failed_template_job
    client = stack_true.client()
    resp = client.put(status, load_chain("pc_template_forput"))
    assert resp.status_code == 200, resp.text
    doc = client.wait(status, iteration=2)
    assert doc["status"] == "finished", doc["message"]
    assert doc["iteration"] == 2
    assert doc["resource_id"] == first["resource_id"]
    # the template's steps were reused, only the changed r_info1 ran
    assert actions(doc) == {"r.mapcalc_ndvi": "reused",
                            "r.colors_ndvi": "reused",
                            "exporter_ndvi": "reused", "r_info1": "new"}
    info = doc["process_results"]["r_info_1"]
    assert info["datatype"] == "FCELL"
    assert (info["rows"], info["cols"]) == ("1350", "1500")
    assert (info["north"], info["west"]) == ("228500", "630000")
    # the template's COG export is downloadable and holds the NDVI
    urls = doc["urls"]["resources"]
    assert len(urls) == 1 and urls[0].endswith("ndvi.tif"), urls
    profile, band, structure = read_cog(client, urls[0])
    assert profile["dtype"] == "float32"
    assert (profile["height"], profile["width"]) == (1350, 1500)
    assert structure.get("LAYOUT") == "COG"
    assert -1.0 <= float(band.min()) < float(band.max()) <= 1.0
    assert float(band.mean()) > 0.0  # the sample scene is mostly vegetated
    # finished: the interim results are gone
    root = interim_root(stack_true.resource_dir, doc["user_id"],
                        doc["resource_id"])
    assert SnapshotStore(root).steps() == []


# --------------------------------------------------------------- persistent
def test_persistent_module_plugin_endpoint_resumed(stack_onerror):
    """``…/mapsets/<m>/processing`` (GdiAsyncPersistentResource) fails, is
    resumed with AsyncPersistentResource and writes the target mapset."""
    client = stack_onerror.client()
    mapset = f"mp_{uuid.uuid4().hex[:8]}"
    chain = load_chain("pc_template_persistent_error")
    status = post(client, f"mapsets/{mapset}/processing", chain)
    doc = client.wait(status)
    assert doc["status"] == "error"
    assert "ndvi_missing" in json.dumps(doc["process_log"][-1])
    assert doc["api_info"]["endpoint"] == "gdiasyncpersistentresource"
    record = job_record(stack_onerror, doc)
    assert record["core_class"] == "AsyncPersistentResource"
    assert record["mapset"] == mapset
    # nothing reached the target mapset
    target = (stack_onerror.data / "userdata" / "superadmin" / "nc_spm_08"
              / mapset)
    assert not (target / "fcell" / "ndvi_p").exists()

    fixed = load_chain("pc_template_persistent_fixed")
    resp = client.put(status, fixed)
    assert resp.status_code == 200, resp.text
    doc = client.wait(status, iteration=2)
    assert doc["status"] == "finished", doc["message"]
    acts = actions(doc)
    assert acts == {"r.mapcalc_ndvi": "reused", "r.colors_ndvi": "reused",
                    "exporter_ndvi": "reused", "r_univar": "new"}
    univar = doc["process_results"]["univar"]
    assert int(univar["n"]) == 1350 * 1500
    assert -1.0 <= float(univar["min"]) < float(univar["max"]) <= 1.0
    # the persistent mapset now holds the NDVI map (from the restored
    # interim result of iteration 1): read it back with a new job
    assert (target / "fcell" / "ndvi_p").is_file()
    stored = univar_of(client, f"ndvi_p@{mapset}")
    assert stored["n"] == univar["n"]
    assert float(stored["max"]) == pytest.approx(float(univar["max"]))
    assert float(stored["mean"]) == pytest.approx(float(univar["mean"]))


# ------------------------------------------------------ malformed CSV files
BAD_CSVS = {
    "columns": (
        "GdiAsyncEphemeralExportResource;AsyncEphemeralExportResource\n"
        "GdiAsyncPersistentResource\n", 2, "expected 2 columns"),
    "unregistered": (
        "GdiAsyncEphemeralExportResource;AsyncEphemeralExportResource\n"
        "\n"
        "NoSuchPluginResource;AsyncPersistentResource\n", 3,
        "is not an endpoint registered in actinia"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_stack_with_bad_endpoints_csv_does_not_serve(stacks, tmp_path, case):
    text, line, words = BAD_CSVS[case]
    csv_path = tmp_path / f"bad_{case}.csv"
    csv_path.write_text(text)
    name = f"badcsv_{case}"
    data = stacks.base / name
    try:
        with pytest.raises(RuntimeError, match="exited before serving"):
            stacks.get(name, "--endpoints-csv", str(csv_path))
        # the failed start stopped what it had started
        assert not (data / stack.STATE_FILE).exists()
        state = json.loads((data / stack.STOPPED_STATE_FILE).read_text())
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{state['port']}/api/v3/version",
                         timeout=5)
        # gunicorn's master gave up (worker boot error), and valkey is gone
        assert len(state["pids"]) == 2
        assert not any(stack.process_running(p) for p in state["pids"])
    finally:
        stack.stop(data)
    log = (data / "logs" / "actinia.log").read_text(errors="replace")
    assert f"{csv_path}:{line}" in log, log[-3000:]
    assert words in log
    assert "actinia_resume_plugin: configuration error" in log
    assert name not in stacks.running
