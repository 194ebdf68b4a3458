# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 20: a mask or a reclass map survives an ephemeral resume, and
steps that share an id run in list order (real stack).

An interim result restored into the next iteration's temporary mapset (a
new name) used to keep the old name in ``cellhd/<map>`` reclass headers
(``r.reclass``, ``MASK`` of ``r.mask``) and ``cell_misc/<base>/reclassed_to``:
every raster read failed after the resume. Persistent jobs keep their
mapset's name and are checked alongside.
"""

from __future__ import annotations

import uuid

import pytest

from .chains import box_region, gate, mapcalc, univar


def region():
    return box_region(20, 20)


def mask_chain(tmp_path, missing):
    rules = tmp_path / "rules.txt"
    rules.write_text("1 thru 10 = 1\n11 thru 20 = 2\nend\n")
    return {"version": "1", "list": [
        region(),
        mapcalc("a", "a = row()"),
        {"id": "reclass", "module": "r.reclass", "inputs": [
            {"param": "input", "value": "a"},
            {"param": "output", "value": "r"},
            {"param": "rules", "value": str(rules)}]},
        {"id": "mask", "module": "r.mask", "inputs": [
            {"param": "raster", "value": "a"},
            {"param": "maskcats", "value": "1 thru 5"}]},
        gate(missing),
        univar("univar_a", "a"),
        univar("univar_r", "r"),
    ]}


PATHS = {"ephemeral": "processing_async",
         "persistent": "mapsets/{mapset}/processing_async"}


@pytest.mark.parametrize("mode", ["True", "onError"])
@pytest.mark.parametrize("endpoint", sorted(PATHS))
def test_mask_and_reclass_survive_a_resume(stack_true, stack_onerror, mode,
                                           endpoint, tmp_path):
    dep = stack_true if mode == "True" else stack_onerror
    client = dep.client()
    missing = tmp_path / "appears-later"
    path = PATHS[endpoint].format(mapset=f"mask_{uuid.uuid4().hex[:8]}")
    failed = client.run_chain(path, mask_chain(tmp_path, missing))
    assert failed["status"] == "error", failed["message"]
    missing.mkdir()
    status_url = failed["urls"]["status"]
    assert client.put(status_url).status_code == 200
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["start_step"] == 4, done["resume"]
    a = done["process_results"]["univar_a"]
    r = done["process_results"]["univar_r"]
    # MASK keeps rows 1..5 (of 20 x 20); r is 1 there
    assert (a["n"], float(a["mean"])) == ("100", 3.0), a
    assert (r["n"], float(r["mean"])) == ("100", 1.0), r


def repeated_ids(missing=None):
    steps = [mapcalc("x", "a = 1"), mapcalc("y", "b = a * 2"),
             univar("x", "b")]
    if missing is not None:
        steps.insert(2, gate(missing))
    return {"version": "1", "list": [region(), *steps]}


def test_repeated_step_ids_run_in_list_order(stack_true):
    client = stack_true.client()
    done = client.run_chain("processing_async", repeated_ids())
    assert done["status"] == "finished", done["message"]
    assert float(done["process_results"]["x"]["mean"]) == 2.0
    assert [p["id"] for p in done["process_log"]][-3:] == ["x", "y", "x"]


@pytest.mark.parametrize("mode", ["True", "onError"])
def test_repeated_step_ids_in_every_iteration(stack_true, stack_onerror,
                                              mode, tmp_path):
    dep = stack_true if mode == "True" else stack_onerror
    client = dep.client()
    missing = tmp_path / "later"
    failed = client.run_chain("processing_async", repeated_ids(missing))
    assert failed["status"] == "error", failed["message"]
    missing.mkdir()
    status_url = failed["urls"]["status"]
    assert client.put(status_url).status_code == 200
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert float(done["process_results"]["x"]["mean"]) == 2.0
    assert [s["action"] for s in done["resume"]["steps"]] == [
        "reused", "reused", "reused", "rerun", "rerun"]
