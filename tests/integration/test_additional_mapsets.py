# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue #5: ``include_additional_mapset_pattern``.

Step 0 of the chain creates the mapset ``test_tmp_a`` next to the job's
temporary mapset (``g.mapset -c`` in an ``exe`` step) and writes ``x = 42``
into it, step 1 fails, step 2 reads ``x@test_tmp_a``. The interim result
saved on error holds ``test_tmp_a``; the PUT restores it into the new
iteration's temporary project, so step 2 finds the map without re-running
step 0.
"""

from __future__ import annotations

import json

import pytest

from actinia_resume_plugin.store import SnapshotStore, interim_root

from .chains import load_chain

N_CELLS = 1350 * 1500


@pytest.fixture(scope="module")
def stack_addmapsets(stacks):
    return stacks.get("addmapsets", "--save-interim-results", "onError",
                      "--misc", "include_additional_mapset_pattern=test_tmp_*")


def test_additional_mapset_saved_and_restored(stack_addmapsets):
    client = stack_addmapsets.client()
    resp = client.post_chain("processing_async",
                             load_chain("additional_mapset_error"))
    status = resp.json()["urls"]["status"]
    first = client.wait(status)
    assert first["status"] == "error", first["message"]
    assert "created x@test_tmp_a" in json.dumps(first["process_log"])
    # onError: one interim result, after step 0, with the extra mapset
    store = SnapshotStore(interim_root(
        stack_addmapsets.resource_dir, first["user_id"],
        first["resource_id"]))
    assert store.steps() == [0]
    info = store.get(0)
    assert "mapsets/test_tmp_a" in info.parts
    assert "mapset" in info.parts

    resp = client.put(status, load_chain("additional_mapset_fixed"))
    assert resp.status_code == 200, resp.text
    doc = client.wait(status, iteration=2)
    assert doc["status"] == "finished", doc["message"]
    steps = {s["id"]: s["action"] for s in doc["resume"]["steps"]}
    assert steps == {"make_test_tmp_a": "reused", "r_info_elevation": "new",
                     "r_univar_x": "new"}
    assert doc["resume"]["restored_interim_result"] == 0
    # step 0 did not run again: the map comes from the restored mapset
    assert "bash" not in [p.get("executable") for p in doc["process_log"]]
    univar = doc["process_results"]["univar_x"]
    assert int(univar["n"]) == N_CELLS
    assert float(univar["mean"]) == 42.0
    assert float(univar["min"]) == float(univar["max"]) == 42.0
    assert doc["process_results"]["r_info_elevation"]["rows"] == "1350"
    # finished: interim results are removed
    assert store.steps() == []


def test_without_pattern_the_chain_cannot_start(stack_onerror):
    """Control: without include_additional_mapset_pattern actinia requires
    ``test_tmp_a`` (named by ``x@test_tmp_a``) to exist before the job
    starts, so the chain fails before its first step and nothing is saved."""
    client = stack_onerror.client()
    resp = client.post_chain("processing_async",
                             load_chain("additional_mapset_error"))
    first = client.wait(resp.json()["urls"]["status"])
    assert first["status"] == "error"
    assert "Missing or un-accessible mapset <test_tmp_a>" in first["message"]
    assert first["process_log"] == []
    store = SnapshotStore(interim_root(
        stack_onerror.resource_dir, first["user_id"], first["resource_id"]))
    assert store.steps() == []
