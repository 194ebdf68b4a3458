# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 23: a resume continues in the failed job's own mapset (real stack).

- the failed step's changes are undone (a file modified in place with its
  size and mtime put back, files added, files removed), the resumed job
  ends exactly as a fresh run of the fixed chain:
  test_failed_steps_changes_are_undone_in_the_kept_mapset (True),
  test_on_error_adopts_the_state_at_the_failure (onError)
- fallback when the kept mapset is gone or damaged:
  test_fallback_when_the_kept_mapset_is_gone
- kill -9 during the adoption: test_kill_during_adoption_falls_back
- quota and retention remove kept mapsets: test_quota_removes_kept_mapsets_first,
  test_retention_removes_kept_mapsets
- a persistent job: test_persistent_job_adopts_its_temporary_mapset
- reuse across jobs restores from the store: test_reuse_restores_from_the_store
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from polling import poll

from actinia_resume_plugin.store import SnapshotStore

from .chains import box_region, mapcalc, sh, univar
from .deployments import SUPERADMIN
from .jobs import put_until_not

REGION = box_region(60, 80)

#: The failed step: modifies cell/a in place (and sets its mtime back: only
#: the ctime tells), adds the raster `extra`, removes the raster `b`.
DESTRUCTIVE = (
    'eval "$(g.gisenv)"; M="$GISDBASE/$LOCATION_NAME/$MAPSET"; '
    'mkdir -p "$M/.tmp"; cp -p "$M/cell/a" "$M/.tmp/ref"; '
    "printf '\\377\\377\\377\\377' | dd of=\"$M/cell/a\" bs=1 seek=8 "
    'conv=notrunc 2>/dev/null; touch -r "$M/.tmp/ref" "$M/cell/a"; '
    'r.mapcalc expression="extra = 7" || exit 2; '
    'g.remove -f type=raster name=b || exit 2; exit 1')


def chain(middle: dict) -> dict:
    """region, a, b, ``middle``, then what a fresh run is compared by:
    r.univar of a, b, c and the rasters of the mapset."""
    return {"version": "1", "list": [
        REGION,
        mapcalc("a", "a = row() * 3 + col()"),
        mapcalc("b", "b = col() * 2"),
        middle,
        univar("univar_a", "a"), univar("univar_b", "b"),
        univar("univar_c", "c"),
        {"id": "rasters", "module": "g.list",
         "inputs": [{"param": "type", "value": "raster"},
                    {"param": "mapset", "value": "."}],
         "stdout": {"id": "rasters", "format": "list",
                    "delimiter": "\n"}},
    ]}


FIXED = chain(mapcalc("c", "c = a + b"))


def rid_of(status_url: str) -> str:
    return status_url.rstrip("/").rsplit("/", 1)[1]


def kept_dir(dep, user: str, status_url: str) -> Path:
    return dep.resource_dir / user / "kept_mapsets" / rid_of(status_url)


def fresh_results(client, path: str = "processing_async") -> dict:
    doc = client.run_chain(path, FIXED)
    assert doc["status"] == "finished", doc["message"]
    return doc["process_results"]


def fail(client, middle: dict, path: str = "processing_async") -> str:
    doc = client.run_chain(path, chain(middle))
    assert doc["status"] == "error", doc
    return doc["urls"]["status"]


def resume(client, status_url: str, iteration: int = 2) -> dict:
    resp = client.put(status_url, FIXED)
    assert resp.status_code == 200, resp.text
    doc = client.wait(status_url, iteration=iteration)
    assert doc["status"] == "finished", doc["message"]
    return doc


def kept_units(client) -> dict:
    doc = client.request("GET", "resource_storage").json()["process_results"]
    return {u["resource_id"]: u for u in doc["kept_mapsets"]}


def test_failed_steps_changes_are_undone_in_the_kept_mapset(stack_true):
    client = stack_true.client(SUPERADMIN)
    expected = fresh_results(client)
    status_url = fail(client, sh("destroy", DESTRUCTIVE))
    kept = kept_dir(stack_true, SUPERADMIN[0], status_url)
    assert (kept / "live-record").is_file() and (kept / "mapset").is_dir()
    # disk the user pays for: its own kind in resource_storage
    unit = kept_units(client)[rid_of(status_url)]
    assert unit["kind"] == "kept_mapset" and unit["bytes"] > 0
    plan = client.put(status_url, FIXED, params={"dry_run": "true"}).json()
    assert plan["plan"]["resume_from"] == "kept_mapset"
    assert plan["plan"]["restore_snapshot"] == 2

    done = resume(client, status_url)
    report = done["resume"]
    print("resume section:", json.dumps(report))
    assert report["restored_from"] == "kept_mapset"
    assert report["kept_mapset"]["adopted"] is True
    # cell/a (modified in place) + the files of b (removed) are put back,
    # the files of `extra` removed; the other files stay
    assert report["files_put_back"] >= 2
    assert report["kept_mapset"]["paths_removed"] >= 2
    assert report["kept_mapset"]["files_kept"] > 0
    # where the time went: the adoption's two phases, the name rewrite
    adoption = report["kept_mapset"]
    assert adoption["decide_seconds"] + adoption["repair_seconds"] \
        == pytest.approx(adoption["seconds"], abs=0.002)
    assert 0 <= report["rename_seconds"] <= report["restore_seconds"]
    assert done["process_results"] == expected
    assert sorted(expected["rasters"]) == ["a", "b", "c"]
    poll(lambda: not kept.exists(), "kept mapset removed after success")
    assert rid_of(status_url) not in kept_units(client)


def test_on_error_adopts_the_state_at_the_failure(stack_onerror):
    client = stack_onerror.client(SUPERADMIN)
    expected = fresh_results(client)
    status_url = fail(client, {"id": "gate", "exe": "false"})
    assert (kept_dir(stack_onerror, SUPERADMIN[0], status_url)
            / "live-record").is_file()
    done = resume(client, status_url)
    report = done["resume"]
    assert report["restored_from"] == "kept_mapset", report
    # onError saved the state at the failure; nothing changed since
    assert report["files_put_back"] == 0
    assert done["process_results"] == expected


@pytest.mark.parametrize("how", ["removed", "damaged"])
def test_fallback_when_the_kept_mapset_is_gone(stack_true, how):
    client = stack_true.client(SUPERADMIN)
    expected = fresh_results(client)
    status_url = fail(client, sh("destroy", DESTRUCTIVE))
    kept = kept_dir(stack_true, SUPERADMIN[0], status_url)
    if how == "removed":  # e.g. another host, or an operator
        os.system(f"rm -rf '{kept}'")
        plan = client.put(status_url, FIXED, params={"dry_run": "true"})
        assert plan.json()["plan"]["resume_from"] == "interim_results"
    else:
        record = kept / "live-record"
        record.write_bytes(record.read_bytes()[:-5])
        plan = client.put(status_url, FIXED, params={"dry_run": "true"})
        assert plan.json()["plan"]["resume_from"] == "interim_results"
    done = resume(client, status_url)
    report = done["resume"]
    print("resume section:", json.dumps(report))
    assert report["restored_from"] == "interim_results"
    assert report["kept_mapset"]["adopted"] is False
    assert report["files_put_back"] > 0
    assert done["process_results"] == expected
    poll(lambda: not kept.exists() and not [
        n for n in os.listdir(kept.parent) if rid_of(status_url) in n],
        "no leftovers of the kept mapset")


def test_dry_run_and_put_agree_on_damage_the_adoption_does_not_read(
        stack_true):
    """A stored object of a file the failed step left alone is damaged
    (same size, same times). The resume in the kept mapset never reads it:
    the dry run says so (no fall back, the files it would put back), and
    the PUT does what it said and ends as a fresh run."""
    client = stack_true.client(SUPERADMIN)
    expected = fresh_results(client)
    status_url = fail(client, sh("destroy", DESTRUCTIVE))
    store = SnapshotStore(stack_true.resource_dir / SUPERADMIN[0] / "interim"
                          / rid_of(status_url))
    obj = Path(store.object_path(store.state(2)[0]["mapset"]["cellhd/a"].obj))
    before = obj.stat()
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[0] ^= 0xFF
    obj.write_bytes(bytes(data))
    os.utime(obj, ns=(before.st_atime_ns, before.st_mtime_ns))
    plan = client.put(status_url, FIXED, params={"dry_run": "true"}).json()
    print("plan:", json.dumps(plan["plan"]))
    assert plan["plan"]["resume_from"] == "kept_mapset"
    assert plan["plan"]["restore_interim_result"] == 2
    # the damage is named, and that the resume does not read it
    assert "cellhd/a" in plan["plan"]["notice"]
    assert "kept mapset" in plan["plan"]["notice"]
    put_back = plan["plan"]["files_to_put_back"]
    assert put_back >= 2  # cell/a and the files of b
    done = resume(client, status_url)
    assert done["resume"]["restored_from"] == "kept_mapset"
    assert done["resume"]["files_put_back"] == put_back
    assert done["process_results"] == expected


def many_maps_step(count: int) -> dict:
    """One exe step making ``count`` CELL maps m_0 … (7 files + 1 dir
    each), 200 expressions per r.mapcalc call."""
    script = (f"i=0; while [ $i -lt {count} ]; do j=0; "
              "while [ $j -lt 200 ]; do echo \"m_$((i+j)) = $((i+j))\"; "
              "j=$((j+1)); done | r.mapcalc file=- || exit 1; "
              "i=$((i+200)); done")
    return sh("many", script)


def test_kill_during_adoption_falls_back(stack_true):
    """kill -9 of the job process while it adopts (every file of the kept
    mapset was touched by the failed step: all are put back, a window of
    seconds): the next PUT restores from the store and ends right."""
    client = stack_true.client(SUPERADMIN)
    touch_all = ('eval "$(g.gisenv)"; '
                 'find "$GISDBASE/$LOCATION_NAME/$MAPSET" -type f '
                 '-exec touch {} +; exit 1')

    def kill_chain(last):
        return {"version": "1", "list": [
            {**REGION, "inputs": REGION["inputs"][:4] + [
                {"param": "rows", "value": "4"},
                {"param": "cols", "value": "4"}]},
            many_maps_step(2000), last,
            univar("univar_m", "m_1234")]}

    status_url = client.run_chain("processing_async", kill_chain(
        sh("touch_all", touch_all)))["urls"]["status"]
    kept = kept_dir(stack_true, SUPERADMIN[0], status_url)
    assert kept.is_dir()
    resp = client.put(status_url, kill_chain({"id": "ok", "exe": "true"}))
    assert resp.status_code == 200, resp.text

    def claimed():
        return [n for n in os.listdir(kept.parent)
                if n.startswith(f".{kept.name}.adopting-")]

    poll(claimed, "the adoption's claim", 120)
    root = stack_true.resource_dir / SUPERADMIN[0] / "interim" / kept.name
    pid = json.loads((root / "job.json").read_text())["worker"]["pid"]
    stack = json.loads((stack_true.data / "run" / "stack.json").read_text())
    assert os.getpgid(pid) in set(stack["pids"])  # only ours
    os.kill(pid, signal.SIGKILL)
    assert claimed(), "killed after the adoption: widen the window"

    resp = put_until_not(client, status_url,
                         kill_chain({"id": "ok", "exe": "true"}), 409, 60, 0.5)
    assert resp.status_code == 200, resp.text
    done = client.wait(status_url, iteration=3, timeout=300)
    assert done["status"] == "finished", done["message"]
    report = done["resume"]
    print("resume section:", json.dumps(report))
    assert report["restored_from"] == "interim_results"
    assert report["kept_mapset"] == {"adopted": False,
                                     "reason": "no kept mapset"}
    assert done["process_results"]["univar_m"]["mean"] == "1234"
    poll(lambda: not claimed(), "the killed adoption's leftover removed")


def test_persistent_job_adopts_its_temporary_mapset(stack_true):
    """The kept mapset of a persistent job is its temporary mapset, never
    the user's target mapset (written only when the job succeeds)."""
    client = stack_true.client(SUPERADMIN)
    expected = fresh_results(client)
    mapset = f"kept_{uuid.uuid4().hex[:8]}"
    path = f"mapsets/{mapset}/processing_async"
    status_url = fail(client, sh("destroy", DESTRUCTIVE), path)
    assert (kept_dir(stack_true, SUPERADMIN[0], status_url)
            / "live-record").is_file()
    done = resume(client, status_url)
    assert done["resume"]["restored_from"] == "kept_mapset", done["resume"]
    assert done["process_results"] == expected
    check = {"version": "1", "list": [
        REGION, univar("univar_c", f"c@{mapset}"),
        {"id": "rasters", "module": "g.list",
         "inputs": [{"param": "type", "value": "raster"},
                    {"param": "mapset", "value": mapset}],
         "stdout": {"id": "rasters", "format": "list", "delimiter": "\n"}}]}
    doc = client.run_chain("processing_async", check)
    assert doc["status"] == "finished", doc["message"]
    assert doc["process_results"]["univar_c"] == expected["univar_c"]
    assert sorted(doc["process_results"]["rasters"]) == ["a", "b", "c"]


def test_quota_removes_kept_mapsets_first(stacks):
    """A save that would exceed grass_resource_quota removes other jobs'
    kept mapsets first (their interim results stay); such a job then
    resumes from its interim results."""
    dep = stacks.get("quota", "--save-interim-results", "True",
                     "--quota", "1")
    client = dep.client(SUPERADMIN)
    user_dir = dep.resource_dir / SUPERADMIN[0]
    big = {"id": "big", "module": "r.mapcalc", "flags": "s", "inputs": [
        {"param": "expression", "value": "big = rand(0.0, 1.0)"}]}
    region = {**REGION, "inputs": REGION["inputs"][:4] + [
        {"param": "rows", "value": "1000"},
        {"param": "cols", "value": "1000"}]}
    first = client.run_chain("processing_async", {"version": "1", "list": [
        region, big, {"id": "gate", "exe": "false"}]})
    assert first["status"] == "error"
    first_url = first["urls"]["status"]
    kept = kept_dir(dep, SUPERADMIN[0], first_url)
    kept_bytes = kept_units(client)[rid_of(first_url)]["bytes"]
    assert kept_bytes > 4_000_000
    # nearly full: half the kept mapset's size left (a sparse file)
    used = client.request("GET", "resource_storage").json()[
        "process_results"]["used"]
    sparse = user_dir / "filler.sparse"
    with open(sparse, "wb") as handle:
        handle.truncate(1024**3 - used - kept_bytes // 2)
    try:
        second = client.run_chain("processing_async", {"version": "1",
                                  "list": [region, big, {
                                      "id": "gate", "exe": "false"}]})
        assert second["status"] == "error"
        assert "quota" not in second["message"], second["message"]
        assert not kept.exists()
        # the first job's interim results stay; it resumes from them
        assert (user_dir / "interim" / rid_of(first_url) / "steps").is_dir()
    finally:
        sparse.unlink()
    resp = client.put(first_url, {"version": "1", "list": [
        region, big, {"id": "gate", "exe": "true"}]})
    assert resp.status_code == 200, resp.text
    done = client.wait(first_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["restored_from"] == "interim_results"


def test_retention_removes_kept_mapsets(stacks):
    """Retention removes kept mapsets by age like interim results, and a
    kept mapset whose job's interim results are gone."""
    dep = stacks.get(
        "retention", "--save-interim-results", "True",
        "--misc", "interim_results_ttl_days=1",
        "--misc", "interim_results_ttl_check_seconds=1")
    client = dep.client(SUPERADMIN)
    old_kept = fail(client, {"id": "gate", "exe": "false"})
    orphan = fail(client, {"id": "gate", "exe": "false"})
    fresh = fail(client, {"id": "gate", "exe": "false"})
    user_dir = dep.resource_dir / SUPERADMIN[0]

    def age(path: Path, days: float) -> None:
        t = time.time() - days * 86400
        for dirpath, dirnames, filenames in os.walk(path):
            for name in filenames + dirnames:
                os.utime(os.path.join(dirpath, name), (t, t),
                         follow_symlinks=False)
        os.utime(path, (t, t))

    age(kept_dir(dep, SUPERADMIN[0], old_kept), 2)
    age(user_dir / "interim" / rid_of(orphan), 2)
    poll(lambda: not kept_dir(dep, SUPERADMIN[0], old_kept).exists()
             and not kept_dir(dep, SUPERADMIN[0], orphan).exists(),
             "retention of kept mapsets", 30)
    assert (user_dir / "interim" / rid_of(old_kept)).is_dir()
    assert kept_dir(dep, SUPERADMIN[0], fresh).is_dir()
    assert (user_dir / "interim" / rid_of(fresh)).is_dir()
    # DELETE /resource_storage removes kept mapsets too
    resp = client.request("DELETE", "resource_storage")
    assert resp.status_code == 200, resp.text
    assert not kept_dir(dep, SUPERADMIN[0], fresh).exists()


def test_terminated_or_deleted_job_has_no_kept_mapset(stack_true):
    """DELETE on the status URL of a failed job removes its kept mapset."""
    client = stack_true.client(SUPERADMIN)
    status_url = fail(client, {"id": "gate", "exe": "false"})
    kept = kept_dir(stack_true, SUPERADMIN[0], status_url)
    assert kept.is_dir()
    assert client.request("DELETE", status_url).status_code == 200
    assert not kept.exists()
