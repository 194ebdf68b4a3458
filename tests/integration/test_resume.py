# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue: job resumption through the plugin (the spec's flows, real stack).

Spec flow -> test:
- pc_error.json -> PUT pc_noerror.json (export endpoint, COG + TXT export,
  importer, stdout of steps of the first iteration kept): test_spec_flow_*
- PUT without body (``ls /test`` example): test_resume_without_body
- two resumptions in a row: test_two_resumptions_in_a_row
- True and onError: parametrised stacks; all three endpoints:
  test_spec_flow_export, test_ephemeral_endpoint, test_persistent_endpoint
- iterations: test_iterations_get_latest_all_and_one
- refusals: test_put_refused_*
- no double saving: test_only_our_interim_results_are_written
"""

from __future__ import annotations

import io
import json
import os
import signal
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from polling import poll

from actinia_resume_plugin.store import SnapshotStore

from .chains import load_chain
from .deployments import USER
from .jobs import univar_of

MODES = ["stack_true", "stack_onerror"]


@pytest.fixture(params=MODES)
def deployment(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def missing_dir(tmp_path):
    """A directory the chain's `ls` step needs; created to 'fix' the job."""
    path = tmp_path / f"test-{uuid.uuid4().hex[:8]}"
    return path


def interim_dir(deployment, user: str, status_url: str) -> Path:
    rid = status_url.rstrip("/").rsplit("/", 1)[1]
    return deployment.resource_dir / user / "interim" / rid


def check_cog(content: bytes, tmp_path: Path, url: str) -> None:
    """The exported GeoTIFF opens with GDAL and holds the expected values."""
    from osgeo import gdal

    path = tmp_path / url.rsplit("/", 1)[1]
    path.write_bytes(content)
    dataset = gdal.Open(str(path))
    assert (dataset.RasterXSize, dataset.RasterYSize) == (1500, 1350)
    low, high = dataset.GetRasterBand(1).ComputeRasterMinMax(False)
    if "baum" in path.name:
        assert low == high == 5
    else:  # elevation of the sample project
        assert 50 < low < high < 170


def test_spec_flow_export(deployment, file_server, tmp_path):
    """pc_error.json -> PUT pc_noerror.json on processing_async_export."""
    client = deployment.client(USER)
    failed = client.run_chain(
        "processing_async_export", load_chain("pc_error", server=file_server)
    )
    assert failed["status"] == "error"
    assert "r.info" in failed["message"]
    status_url = failed["urls"]["status"]
    first_log = {p["id"] for p in failed["process_log"]}
    assert "v_info1" in first_log  # ran in iteration 1

    resp = client.put(status_url, load_chain("pc_noerror", server=file_server))
    assert resp.status_code == 200, resp.text
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["iteration"] == 2

    # steps of iteration 1 were not run again, their stdout results stay
    run_now = {p["id"] for p in done["process_log"]}
    assert "v_info1" not in run_now and "r_info1" in run_now
    actions = {s["id"]: s["action"] for s in done["resume"]["steps"]}
    assert actions["importer_1"] == "reused" and actions["v_info1"] == "reused"
    assert actions["r_info1"] == "new"  # its definition changed
    results = done["process_results"]
    # v.info -g of the imported points (run in iteration 1) and polygon
    assert 215000 < float(results["v_info_1"]["north"]) < 228500
    assert 630000 < float(results["v_info_1"]["west"]) < 645000
    assert float(results["v_info_3"]["north"]) > float(
        results["v_info_3"]["south"])
    assert results["r_info_1"]["rows"] == "1350"
    assert results["r_info_1"]["datatype"] == "FCELL"  # elevation
    assert float(results["univar_baum"]["mean"]) == 5.0

    # exported files of the finished iteration are downloadable
    urls = done["urls"]["resources"]
    assert any(u.endswith("baum.tif") for u in urls), urls
    assert any(u.endswith(".TXT") or "r_info2" in u for u in urls), urls
    for url in urls:
        got = requests.get(url, auth=client.auth, timeout=60)
        assert got.status_code == 200, url
        assert len(got.content) > 0
        if url.endswith(".tif"):
                check_cog(got.content, tmp_path, url)
        else:  # the TXT file export is a zip with r.colors.out's rules
            with zipfile.ZipFile(io.BytesIO(got.content)) as archive:
                rules = archive.read(archive.namelist()[0]).decode()
            assert "nv" in rules and len(rules.splitlines()) > 2

    # a successful iteration removes the job's interim results
    assert not interim_dir(deployment, USER[0], status_url).exists()


def run_ls_job(client, path, missing_dir):
    chain = load_chain("pc_error_not_in_pc", dir=missing_dir)
    failed = client.run_chain(path, chain)
    assert failed["status"] == "error", failed["message"]
    assert "ls" in failed["message"]
    return failed["urls"]["status"]


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_resume_without_body(deployment, missing_dir, content_type):
    """The spec's `ls /test` example: PUT with no body re-runs the stored
    chain from the failed step (with the spec curl's JSON content type and
    an empty body, and with no content type at all)."""
    client = deployment.client(USER)
    status_url = run_ls_job(client, "processing_async", missing_dir)
    missing_dir.mkdir()
    headers = {"Content-Type": content_type} if content_type else {}
    resp = client.put(status_url, data=b"", headers=headers)
    assert resp.status_code == 200, resp.text
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert [p["id"] for p in done["process_log"]][0] == "ls1"
    assert done["process_results"]["r_info_1"]["datatype"] == "CELL"
    assert float(done["process_results"]["univar_baum"]["max"]) == 5.0


def test_two_resumptions_in_a_row(deployment, missing_dir):
    client = deployment.client(USER)
    status_url = run_ls_job(client, "processing_async", missing_dir)
    # 2nd iteration still fails (dir still missing): interim results kept
    assert client.put(status_url).status_code == 200
    second = client.wait(status_url, iteration=2)
    assert second["status"] == "error"
    assert interim_dir(deployment, USER[0], status_url).exists()
    missing_dir.mkdir()
    assert client.put(status_url).status_code == 200
    third = client.wait(status_url, iteration=3)
    assert third["status"] == "finished", third["message"]
    assert third["resume"]["steps"][0] == {"id": "r_mapcalc",
                                           "action": "reused"}
    assert float(third["process_results"]["univar_baum"]["mean"]) == 5.0
    assert not interim_dir(deployment, USER[0], status_url).exists()


def test_ephemeral_endpoint_fixed_chain(deployment, missing_dir):
    """processing_async: PUT a fixed chain (the ls step replaced)."""
    client = deployment.client(USER)
    status_url = run_ls_job(client, "processing_async", missing_dir)
    fixed = load_chain("pc_error_not_in_pc", dir="/")
    fixed["list"][2]["inputs"][0]["value"] = "baum"
    resp = client.put(status_url, fixed)
    assert resp.status_code == 200, resp.text
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["steps"][0]["action"] == "reused"
    assert done["process_results"]["univar_baum"]["min"] == "5"


def test_persistent_endpoint(deployment, missing_dir):
    """…/mapsets/<m>/processing_async: the resumed job writes its mapset."""
    client = deployment.client(USER)
    mapset = f"resume_{uuid.uuid4().hex[:8]}"
    status_url = run_ls_job(
        client, f"mapsets/{mapset}/processing_async", missing_dir
    )
    missing_dir.mkdir()
    assert client.put(status_url).status_code == 200
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["steps"][0]["action"] == "reused"
    stats = univar_of(client, f"baum@{mapset}")
    assert float(stats["mean"]) == 5.0 and stats["n"] == "2025000"


def test_iterations_get_latest_all_and_one(stack_true, missing_dir):
    client = stack_true.client(USER)
    status_url = run_ls_job(client, "processing_async", missing_dir)
    assert client.put(status_url).status_code == 200
    client.wait(status_url, iteration=2)
    missing_dir.mkdir()
    assert client.put(status_url).status_code == 200
    client.wait(status_url, iteration=3)

    latest = client.request("GET", status_url).json()
    assert latest["iteration"] == 3 and latest["status"] == "finished"
    bare = status_url.replace("resource_id-", "")
    every = client.request("GET", bare).json()
    assert sorted(every) == ["1", "2", "3"]
    assert [every[k]["status"] for k in ("1", "2", "3")] == [
        "error", "error", "finished"]
    one = client.request("GET", f"{status_url}/2").json()
    assert one["2"]["status"] == "error"


# ---------------------------------------------------------------- refusals
def test_put_refused_when_finished(stack_true):
    client = stack_true.client(USER)
    doc = client.run_chain("processing_async", load_chain("mapcalc_info"))
    assert doc["status"] == "finished"
    resp = client.put(doc["urls"]["status"])
    assert resp.status_code == 404  # as actinia-core
    assert resp.json()["message"] == "Resource is finished PUT not possible"
    assert "ended with an error" in resp.json()["detail"]


def test_put_refused_when_unknown(stack_true):
    client = stack_true.client(USER)
    url = client.url(f"resources/{USER[0]}/resource_id-{uuid.uuid4()}")
    resp = client.put(url)
    assert resp.status_code == 404
    assert "does not exist" in resp.json()["message"]


def test_put_refused_for_other_user(stack_true, missing_dir):
    owner = stack_true.client(USER)
    status_url = run_ls_job(owner, "processing_async", missing_dir)
    other = owner.as_user("resume-userb", "resume-userb-pw")
    resp = other.put(status_url)
    assert resp.status_code == 401
    assert "permission" in resp.json()["message"]
    # the owner's job is untouched and still resumable
    assert owner.request("GET", status_url).json()["status"] == "error"


def test_put_refused_while_running_and_accepted(stack_true):
    client = stack_true.client(USER)
    resp = client.post_chain("processing_async",
                             load_chain("sleep", seconds=20))  # running seen after ~5 s
    status_url = resp.json()["urls"]["status"]
    early = client.put(status_url)  # accepted or running: both refused
    assert early.status_code == 404  # as actinia-core
    client.wait_status(status_url, "running")
    running = client.put(status_url)
    assert running.status_code == 404
    assert running.json()["message"] == (
        "Resource is running no restart possible")  # actinia's, verbatim
    assert "terminate it first" in running.json()["detail"]
    assert client.wait(status_url)["status"] == "finished"


def test_put_refused_when_interim_results_disabled(stack_false, missing_dir):
    client = stack_false.client(USER)
    status_url = run_ls_job(client, "processing_async", missing_dir)
    resp = client.put(status_url)
    assert resp.status_code == 404  # as actinia-core
    assert resp.json()["message"] == (
        "Interim results are not set in the configuration")
    assert not (stack_false.resource_dir / USER[0] / "interim").exists()


def test_put_rejects_bad_json(stack_true, missing_dir):
    client = stack_true.client(USER)
    status_url = run_ls_job(client, "processing_async", missing_dir)
    bad = client.put(status_url, data=b"{not json",
                     headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "JSON" in bad.json()["message"]
    no_chain = client.put(status_url, {"foo": 1})
    assert no_chain.status_code == 400
    # nothing lost: the job can still be resumed
    missing_dir.mkdir()
    assert client.put(status_url).status_code == 200
    assert client.wait(status_url, iteration=2)["status"] == "finished"


# ------------------------------------------------------- who does the work
def test_only_our_interim_results_are_written(stack_true, missing_dir):
    """actinia-core's own InterimResult (step<N>/tmpdir<N> folders) must not
    save anything while our plugin is loaded."""
    client = stack_true.client(USER)
    status_url = run_ls_job(client, "processing_async", missing_dir)
    root = interim_dir(stack_true, USER[0], status_url)
    names = sorted(p.name for p in root.iterdir())
    assert "steps" in names and "job.json" in names
    assert not [n for n in names if n.startswith(("step", "tmpdir"))
                and n != "steps"], names
    assert (root / "steps" / "000000" / "manifest.json").exists()
    log = stack_true.log()
    assert "Saving interim results of step" not in log


def test_put_by_admin_of_group_runs_as_owner(stack_true, missing_dir):
    """An admin of the owner's group may resume; the new iteration belongs
    to the owner. An admin of another group may not."""
    owner = stack_true.client(USER)
    status_url = run_ls_job(owner, "processing_async", missing_dir)
    other_admin = owner.as_user("resume-adminb", "resume-adminb-pw")
    assert other_admin.put(status_url).status_code == 401
    missing_dir.mkdir()
    admin = owner.as_user("resume-admin", "resume-admin-pw")
    resp = admin.put(status_url)
    assert resp.status_code == 200, resp.text
    assert resp.json()["user_id"] == USER[0]
    done = owner.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["user_id"] == USER[0]


def _parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def wait_dead(pid: int, timeout: float = 30) -> None:
    """Poll until ``pid`` is gone or a zombie (killed, not yet reaped)."""
    def dead():
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                return handle.read().rsplit(")", 1)[1].split()[0] in "ZX"
        except OSError:
            return True
    poll(dead, f"pid {pid} to die", timeout, 0.05)


def test_put_resumes_a_running_job_whose_worker_died(stack_true):
    """A job left `running` by a killed worker is provably dead at once (its
    recorded pid is gone), without actinia's 5 s time_delta guess."""
    client = stack_true.client(USER)
    resp = client.post_chain("processing_async",
                             load_chain("sleep", seconds=60))
    status_url = resp.json()["urls"]["status"]
    root = interim_dir(stack_true, USER[0], status_url)
    client.wait_status(status_url, "running")
    poll((root / "steps" / "000000" / "manifest.json").exists,
         "the interim result of step 0", 30)
    worker = json.loads((root / "job.json").read_text())["worker"]["pid"]
    queue_manager = _parent_pid(worker)
    # freeze actinia's queue manager so it cannot mark the job as failed,
    # then kill the worker: the job stays "running" without a worker
    os.kill(queue_manager, signal.SIGSTOP)
    try:
        os.kill(worker, signal.SIGKILL)
        wait_dead(worker)
        assert client.request("GET", status_url).json()["status"] == "running"
        fixed = load_chain("sleep", seconds=0)
        # a dry run plans but commits nothing (the job stays `running`)
        dry = client.put(status_url, fixed, params={"dry_run": "true"})
        assert dry.status_code == 200, dry.text
        assert client.request("GET", status_url).json()["status"] == "running"
        # accepted at the first try, with no 5 s sleep-and-compare (how
        # long the PUT takes is measured by scripts/benchmark)
        resp = client.put(status_url, fixed)
        assert resp.status_code == 200, resp.text
    finally:
        os.kill(queue_manager, signal.SIGCONT)
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["steps"][0] == {"id": "r_mapcalc",
                                          "action": "reused"}
    assert done["process_results"]["r_info_1"]["datatype"] == "CELL"
    first = client.request("GET", f"{status_url}/1").json()["1"]
    assert first["status"] == "error"


def test_concurrent_puts_start_one_iteration(stack_true, missing_dir):
    client = stack_true.client(USER)
    status_url = run_ls_job(client, "processing_async", missing_dir)
    missing_dir.mkdir()
    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(lambda _: client.put(status_url).status_code,
                                range(4)))
    # the losers meet the lock (409) or the new iteration, accepted (404)
    assert codes[0] == 200 and set(codes[1:]) <= {404, 409}, codes
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished"
    every = client.request("GET", status_url.replace("resource_id-", ""))
    assert sorted(every.json()) == ["1", "2"]


def test_failed_put_chain_loses_no_interim_result(stack_true, missing_dir):
    """A PUT whose chain fails early (here: a step that does not exist as
    a module) keeps the interim results a later, correct PUT reuses."""
    client = stack_true.client(USER)
    chain = load_chain("pc_error_not_in_pc", dir=missing_dir)
    chain["list"].insert(1, {"id": "calc2", "module": "r.mapcalc",
                             "inputs": [{"param": "expression",
                                         "value": "baum2=baum*2"}]})
    failed = client.run_chain("processing_async", chain)
    assert failed["status"] == "error"
    status_url = failed["urls"]["status"]
    # iteration 2: a typo in step 0 makes everything run again and fail
    typo = json.loads(json.dumps(chain))
    typo["list"][0]["inputs"][0]["value"] = "baum=5+"
    assert client.put(status_url, typo).status_code == 200
    assert client.wait(status_url, iteration=2)["status"] == "error"
    # iteration 3: the original chain, fixed environment: steps 0 and 1
    # come from interim results of iteration 1
    missing_dir.mkdir()
    plan = client.put(status_url + "?dry_run=true", chain).json()["plan"]
    assert plan["start"] == 2 and plan["restore_snapshot"] == 1
    assert client.put(status_url, chain).status_code == 200
    done = client.wait(status_url, iteration=3)
    assert done["status"] == "finished", done["message"]
    assert [s["action"] for s in done["resume"]["steps"]][:2] == [
        "reused", "reused"]
    assert float(done["process_results"]["univar_baum"]["mean"]) == 5.0


def test_put_rejects_steps_without_module(stack_true, missing_dir):
    client = stack_true.client(USER)
    status_url = run_ls_job(client, "processing_async", missing_dir)
    resp = client.put(status_url, {"version": "1", "list": [{"id": "x"}]})
    assert resp.status_code == 400
    assert "Step 0" in resp.json()["message"]


def test_failure_in_the_export_resumes_after_the_last_step(deployment):
    """When all steps ran and the export fails, the resumed iteration
    reuses every step that ran and only exports."""
    client = deployment.client(USER)
    chain = {"version": "1", "list": [
        {"id": "r_mapcalc", "module": "r.mapcalc",
         "inputs": [{"param": "expression", "value": "baum=5"}]},
        {"id": "r_univar", "module": "r.univar", "flags": "g",
         "inputs": [{"param": "map", "value": "baum"}],
         "stdout": {"id": "univar_baum", "format": "kv", "delimiter": "="}},
        {"id": "exporter_1", "module": "exporter", "outputs": [
            {"export": {"type": "raster", "format": "COG"},
             "param": "map", "value": "no_such_map"}]},
    ]}
    failed = client.run_chain("processing_async_export", chain)
    assert failed["status"] == "error"
    status_url = failed["urls"]["status"]
    # the same chain again: every step is reused, only the export reruns
    assert client.put(status_url).status_code == 200
    again = client.wait(status_url, iteration=2)
    assert again["status"] == "error"
    assert [s["action"] for s in again["resume"]["steps"]] == ["reused"] * 3
    assert again["process_log"] == [] or all(
        p["executable"] not in ("r.mapcalc", "r.univar")
        for p in again["process_log"])
    chain["list"][2]["outputs"][0]["value"] = "baum"
    plan = client.put(status_url + "?dry_run=true", chain).json()["plan"]
    if deployment.data.name == "true":
        assert (plan["start"], plan["restore_snapshot"]) == (2, 1)
        assert plan["actions"] == ["reused", "reused", "new"]
    else:
        # onError kept the state after the last step, but the edited
        # exporter is that step: nothing matches, and the plan says so
        assert (plan["start"], plan["restore_snapshot"]) == (0, None)
        assert "No snapshot after step 1" in plan["notice"]
    assert client.put(status_url, chain).status_code == 200
    done = client.wait(status_url, iteration=3)
    assert done["status"] == "finished", done["message"]
    assert float(done["process_results"]["univar_baum"]["mean"]) == 5.0
    tif = [u for u in done["urls"]["resources"] if u.endswith("baum.tif")]
    assert len(tif) == 1
    got = requests.get(tif[0], auth=client.auth, timeout=60)
    assert got.status_code == 200 and len(got.content) > 1000


def test_failure_after_the_last_step_of_processing_async(deployment):
    """processing_async saves its last step's interim result only when the
    job fails after it (actinia's parse of the stdout here: r.univar's
    lines without the kv delimiter); then a resume reruns nothing, and a success
    removes every interim result and renamed temporary database, also one
    a killed job left."""
    client = deployment.client(USER)
    chain = {"version": "1", "list": [
        {"id": "r_mapcalc", "module": "r.mapcalc",
         "inputs": [{"param": "expression", "value": "baum=5"}]},
        {"id": "r_univar", "module": "r.univar",  # no -g: no "=" lines
         "inputs": [{"param": "map", "value": "baum"}],
         "stdout": {"id": "univar_baum", "format": "kv", "delimiter": "="}},
    ]}
    failed = client.run_chain("processing_async", chain)
    assert failed["status"] == "error", failed["message"]
    status_url = failed["urls"]["status"]
    store = SnapshotStore(interim_dir(deployment, USER[0], status_url))
    assert store.steps()[-1:] == [1]  # the state after the last step
    # the same chain again: both steps are reused, only the parse reruns
    assert client.put(status_url).status_code == 200
    again = client.wait(status_url, iteration=2)
    assert again["status"] == "error"
    assert [s["action"] for s in again["resume"]["steps"]] == ["reused"] * 2
    assert again["process_log"] == []
    # what a job killed while removing its temporary database leaves
    temp_db = deployment.data / "workspace" / "temp_db"
    leftover = temp_db / f"{uuid.uuid4()}.removing-{uuid.uuid4().hex}"
    (leftover / "PERMANENT").mkdir(parents=True)
    (leftover / "PERMANENT" / "WIND").write_text("proj: 99\n")
    chain["list"][1]["flags"] = "g"
    assert client.put(status_url, chain).status_code == 200
    done = client.wait(status_url, iteration=3)
    assert done["status"] == "finished", done["message"]
    # onError kept only the state after the last step, the edited one
    first = "reused" if deployment.data.name == "true" else "rerun"
    assert [s["action"] for s in done["resume"]["steps"]] == [first, "new"]
    assert float(done["process_results"]["univar_baum"]["mean"]) == 5.0
    poll(lambda: not store.root.exists() and not [
        p for p in store.root.parent.iterdir()
        if p.name.startswith(f".{store.root.name}.deleted-")],
        "removal of the interim results after success")
    poll(lambda: not [p for p in temp_db.iterdir()
                      if ".removing-" in p.name],
         "removal of the renamed temporary databases, the leftover too")


def test_terminated_iteration_can_be_resumed(stack_true, missing_dir):
    """DELETE on the status URL terminates the running (resumed) iteration;
    a terminated job is resumed like a failed one."""
    client = stack_true.client(USER)
    status_url = run_ls_job(client, "processing_async", missing_dir)
    slow = load_chain("sleep", seconds=60)
    assert client.put(status_url, slow).status_code == 200
    client.wait_status(status_url, "running")
    resp = client.request("DELETE", status_url)
    assert resp.status_code == 200, resp.text
    stopped = client.wait(status_url, iteration=2, timeout=60)
    assert stopped["status"] == "terminated"
    assert client.put(status_url, load_chain("sleep", seconds=0)).ok
    done = client.wait(status_url, iteration=3)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["steps"][0] == {"id": "r_mapcalc",
                                          "action": "reused"}
