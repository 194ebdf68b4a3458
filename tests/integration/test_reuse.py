# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 14: reuse across jobs (POST ?reuse=), never stale (real stack).

Issue's tests -> here:
- fail -> POST the fixed chain with reuse -> steps before the failure
  reused, values correct: test_post_fixed_chain_reuses_failed_job
- PERMANENT's elevation rewritten in between -> re-run from the first step
  that reads it (every step may read PERMANENT through the search path, so
  the first step): test_permanent_rewritten_runs_again (POST and PUT)
- importer source changed on the file server -> import step re-run:
  test_changed_import_source_runs_import_again
- another user's POST never reuses: test_other_users_never_reuse
- reuse off by default: test_reuse_is_off_by_default
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from actinia_resume_plugin.store import SnapshotStore

from .chains import chain, mapcalc, region, univar
from .deployments import DATA, SUPERADMIN, USER, serve
from .jobs import univar_of

ASYNC = "processing_async"
ADMIN = ("resume-admin", "resume-admin-pw")  # admin of USER's group


@pytest.fixture(scope="module")
def stack_reuse(stacks):
    """save_interim_results = True, reuse_interim_results = True"""
    return stacks.get("reuse", "--save-interim-results", "True",
                      "--misc", "reuse_interim_results=True")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A directory served over HTTP whose files the tests change."""
    root = tmp_path_factory.mktemp("served")
    server, url = serve(root)
    yield root, url
    server.shutdown()


# --------------------------------------------------------------- helpers
def chains(token: str, first_steps=()) -> tuple[dict, dict]:
    """A chain failing at its 4th own step, and the fixed chain. Map names
    carry ``token`` so that no other test's job matches."""
    dem, ten = f"dem_{token}", f"ten_{token}"
    head = [*first_steps,
            region(),
            mapcalc("dem", f"{dem} = elevation@PERMANENT * 2"),
            mapcalc("ten", f"{ten} = 10")]
    tail = [univar("univar_sum", "sum")]
    broken = head + [mapcalc("sum", f"sum = {dem} + no_such_map")] + tail
    fixed = head + [mapcalc("sum", f"sum = {dem} + {ten}")] + tail
    return chain(*broken), chain(*fixed)


def fail(client, chain, path=ASYNC) -> str:
    doc = client.run_chain(path, chain)
    assert doc["status"] == "error", doc["message"]
    return doc["urls"]["status"]


def rid(status_url: str) -> str:
    return status_url.rstrip("/").rsplit("/", 1)[1]


def post(client, chain, query: str, path=ASYNC):
    return client.request("POST", client.project_url(f"{path}?{query}"),
                          json=chain)


def plan_of(client, chain, reuse="latest", path=ASYNC) -> dict:
    resp = post(client, chain, f"reuse={reuse}&dry_run=true", path)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["status"] == "plan"
    return doc


def run_with_reuse(client, chain, reuse="latest", path=ASYNC) -> dict:
    resp = post(client, chain, f"reuse={reuse}", path)
    assert resp.status_code == 200, resp.text
    return client.wait(resp.json()["urls"]["status"])


def actions(doc: dict) -> dict:
    return {s["id"]: s["action"] for s in doc["resume"]["steps"]}


def reference_stats(client, chain) -> dict:
    """r.univar of the fixed chain run without reuse."""
    doc = client.run_chain(ASYNC, chain)
    assert doc["status"] == "finished", doc["message"]
    return doc["process_results"]["univar_sum"]


# ----------------------------------------------------------------- tests
def test_post_fixed_chain_reuses_failed_job(stack_reuse):
    client = stack_reuse.client(USER)
    broken, fixed = chains(uuid.uuid4().hex[:8])
    failed_url = fail(client, broken)

    dry = plan_of(client, fixed)
    assert dry["reused_from"] == rid(failed_url)
    assert dry["plan"]["start"] == 3 and dry["plan"]["steps_reused"] == 3
    explicit = plan_of(client, fixed, reuse=rid(failed_url))
    assert explicit["plan"]["start"] == 3

    done = run_with_reuse(client, fixed)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["reused_from"] == rid(failed_url)
    assert actions(done) == {"region": "reused", "dem": "reused",
                             "ten": "reused", "sum": "new",
                             "univar_sum": "new"}
    ran = {p["id"] for p in done["process_log"]}
    assert ran.isdisjoint({"region", "dem", "ten"}) and "sum" in ran
    stats = done["process_results"]["univar_sum"]
    assert stats == reference_stats(client, fixed)
    # elevation (55.6 .. 156.3) * 2 + 10
    assert 120 < float(stats["min"]) < float(stats["max"]) < 325
    # the earlier job keeps its interim results: it can still be resumed
    interim = stack_reuse.resource_dir / USER[0] / "interim" / rid(failed_url)
    assert SnapshotStore(interim).steps() == [0, 1, 2]


def test_permanent_rewritten_runs_again(stack_reuse):
    client = stack_reuse.client(USER)
    broken, fixed = chains(uuid.uuid4().hex[:8])
    failed_url = fail(client, broken)
    assert plan_of(client, fixed)["plan"]["start"] == 3

    # rewrite elevation's header in PERMANENT (same content, new file)
    header = stack_reuse.data / "grassdb/nc_spm_08/PERMANENT/cellhd/elevation"
    copy = header.with_name(".elevation.new")
    shutil.copy2(header, copy)
    os.replace(copy, header)

    dry = plan_of(client, fixed, reuse=rid(failed_url))
    assert dry["plan"]["start"] == 0, dry
    assert "PERMANENT" in dry["plan"]["notice"]
    # a PUT on the failed job checks the same input fingerprints
    put = client.put(failed_url, fixed, params={"dry_run": "true"})
    assert put.status_code == 200, put.text
    assert put.json()["plan"]["start"] == 0
    assert "PERMANENT" in put.json()["plan"]["notice"]

    done = run_with_reuse(client, fixed, reuse=rid(failed_url))
    assert done["status"] == "finished", done["message"]
    assert "reused" not in actions(done).values()
    assert {"region", "dem", "ten"} <= {p["id"] for p in done["process_log"]}
    assert done["process_results"]["univar_sum"] == reference_stats(
        client, fixed)


def test_changed_import_source_runs_import_again(stack_reuse, served):
    root, url = served
    token = uuid.uuid4().hex[:8]
    source = root / f"points_{token}.json"
    points = json.loads((DATA / "points.json").read_text())
    source.write_text(json.dumps(points))
    os.utime(source, (1_600_000_000, 1_600_000_000))
    importer = {"id": "import", "module": "importer", "inputs": [{
        "import_descr": {"source": f"{url}/{source.name}", "type": "vector"},
        "param": "map", "value": "points"}]}
    v_info = {"id": "v_info", "module": "v.info", "flags": "t",
              "inputs": [{"param": "map", "value": "points"}],
              "stdout": {"id": "v_info", "format": "kv", "delimiter": "="}}
    broken, fixed = chains(token, [importer, v_info])
    client = stack_reuse.client(USER)
    failed_url = fail(client, broken)
    assert plan_of(client, fixed)["plan"]["start"] == 5  # the fixed step

    # the server now has other content (one point more, other date)
    points["features"].append(points["features"][0])
    source.write_text(json.dumps(points))
    os.utime(source, (1_600_000_100, 1_600_000_100))

    dry = plan_of(client, fixed, reuse=rid(failed_url))
    assert dry["plan"]["start"] == 0, dry  # the import step
    assert "import source of step 0" in dry["plan"]["notice"]
    done = run_with_reuse(client, fixed, reuse=rid(failed_url))
    assert done["status"] == "finished", done["message"]
    assert actions(done)["import"] != "reused"
    # actinia logs the importer's processes under ids of its own
    assert any(source.name in p["id"] for p in done["process_log"])
    assert int(done["process_results"]["v_info"]["points"]) == len(
        points["features"])


def test_persistent_job_reuses_only_for_its_target_mapset(stack_reuse):
    """Persistent jobs: same target mapset only; the reusing job writes
    correct maps into it."""
    client = stack_reuse.client(USER)
    token = uuid.uuid4().hex[:8]
    broken, fixed = chains(token)
    mapset, other = f"reuse_{token}", f"other_{token}"
    path = f"mapsets/{mapset}/processing_async"
    failed_url = fail(client, broken, path)
    other_plan = plan_of(client, fixed, path=f"mapsets/{other}/processing_async")
    assert other_plan["reused_from"] is None
    assert plan_of(client, fixed)["reused_from"] is None  # ephemeral
    resp = post(client, fixed, f"reuse={rid(failed_url)}&dry_run=true")
    assert resp.status_code == 400 and "core_class" in resp.json()["message"]

    done = run_with_reuse(client, fixed, path=path)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["reused_from"] == rid(failed_url)
    assert actions(done)["ten"] == "reused"
    assert univar_of(client, f"ten_{token}@{mapset}")["mean"] == "10"
    stats = univar_of(client, f"sum@{mapset}")
    assert stats == done["process_results"]["univar_sum"]


def test_other_users_never_reuse(stack_reuse):
    owner = stack_reuse.client(USER)
    broken, fixed = chains(uuid.uuid4().hex[:8])
    failed_url = fail(owner, broken)
    assert plan_of(owner, fixed)["reused_from"] == rid(failed_url)
    for user in (ADMIN, SUPERADMIN):
        other = stack_reuse.client(user)
        assert plan_of(other, fixed)["reused_from"] is None
        resp = post(other, fixed, f"reuse={rid(failed_url)}&dry_run=true")
        assert resp.status_code == 400, resp.text
        assert "no interim results" in resp.json()["message"]
        done = run_with_reuse(other, fixed)
        assert done["status"] == "finished", done["message"]
        assert "reused" not in actions(done).values()
        assert "reused_from" not in done["resume"]


@pytest.mark.parametrize("query, message", [
    ("reuse=", "latest"),
    ("reuse=../other", "expected 'latest'"),
    ("reuse=resource_id-00000000-0000-0000-0000-000000000000",
     "no interim results"),
    ("reuse=latest&dry_run=maybe", "dry_run"),
])
def test_bad_reuse_values_are_refused(stack_reuse, query, message):
    client = stack_reuse.client(USER)
    _, fixed = chains(uuid.uuid4().hex[:8])
    resp = post(client, fixed, query)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["message"]


def test_reuse_is_off_by_default(stack_true):
    client = stack_true.client(USER)
    broken, fixed = chains(uuid.uuid4().hex[:8])
    fail(client, broken)
    resp = post(client, fixed, "reuse=latest")
    assert resp.status_code == 400, resp.text
    assert "disabled" in resp.json()["message"]
    assert "reuse_interim_results" in resp.json()["message"]
