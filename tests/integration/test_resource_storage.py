# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue #4: /resource_storage — see, clean and bound what interim results
cost (real stack over HTTP).

- GET before/after a failing job, breakdown per job: test_get_*
- GET speed with 10,000 files: test_get_is_fast_for_10000_files
- DELETE (all, olderthan, whole units): test_delete_*
- running/accepted jobs are kept: test_running_and_accepted_jobs_survive_delete
- bad parameters: test_bad_parameters_*
- permission matrix: test_permissions_*
- retention ([MISC] interim_results_ttl_days): test_retention_*
- quota (grass_resource_quota): test_quota_exceeded_*
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
import stack
from disk_usage import used_bytes
from polling import poll

from actinia_resume_plugin.store.kept_mapset import KeptMapset

from .chains import chain, gate, mapcalc, sleep

PASSWORDS = {user: pw for user, pw, _, _ in stack.USERS}
DAY = 86400


#: A path that exists nowhere (a fixed name like /nonexistent may be made
#: by anyone on a shared machine, and the failing step would succeed).
MISSING = f"/nonexistent-{uuid.uuid4().hex}"


def failing_chain() -> dict:
    """Two saved steps, then a step that fails."""
    return chain(
        mapcalc("mapcalc1", "baum=5"),
        mapcalc("mapcalc2", "baum2=baum*2"),
        gate(MISSING, "ls_missing"),
    )


def sleeping_chain(seconds: int) -> dict:
    return chain(
        mapcalc("mapcalc1", "baum=5"),
        sleep("sleep_1", seconds),
        {"id": "r_info1", "module": "r.info", "flags": "g",
         "inputs": [{"param": "map", "value": "baum"}]},
    )


def rid_of(status_url: str) -> str:
    return status_url.rstrip("/").rsplit("/", 1)[1]


def age_tree(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (t, t),
                     follow_symlinks=False)
    os.utime(path, (t, t))


class FinalDocument:
    """The final status document of an async DELETE, shaped like a
    response (``status_code``, ``json()``, ``text``)."""

    def __init__(self, status_code: int, doc: dict):
        self.status_code = status_code
        self.doc = doc
        self.text = json.dumps(doc)

    def json(self) -> dict:
        return self.doc


class Storage:
    """A deployment seen by one user."""

    def __init__(self, deployment, user: str):
        self.dep = deployment
        self.user = user
        self.client = deployment.client((user, PASSWORDS[user]))

    @property
    def dir(self) -> Path:
        return self.dep.resource_dir / self.user

    def interim(self, rid: str) -> Path:
        return self.dir / "interim" / rid

    def get(self, **params):
        return self.client.request("GET", "resource_storage", params=params)

    def delete(self, **params):
        """DELETE and, when accepted, the job's final document (actinia's
        async answer: ``accepted`` with ``resource_id`` and ``urls.status``,
        then the status URL reaches ``finished``)."""
        resp = self.client.request("DELETE", "resource_storage",
                                   params=params)
        if resp.status_code != 200:
            return resp
        accepted = resp.json()
        assert accepted["status"] == "accepted", accepted
        assert accepted["resource_id"].startswith("resource_id-")
        status_url = accepted["urls"]["status"]
        assert status_url.endswith(
            f"/resources/{self.user}/{accepted['resource_id']}")
        final = self.client.wait(status_url)
        return FinalDocument(
            self.client.request("GET", status_url).status_code, final)

    def failed_job(self) -> str:
        doc = self.client.run_chain("processing_async", failing_chain())
        assert doc["status"] == "error", doc
        return doc["resource_id"]

    def results(self) -> dict:
        resp = self.get()
        assert resp.status_code == 200, resp.text
        return resp.json()["process_results"]

    def interim_entry(self, rid: str) -> dict | None:
        for entry in self.results()["interim_results"]:
            if entry["resource_id"] == rid:
                return entry
        return None


@pytest.fixture(scope="module")
def storage_stack(stacks):
    return stacks.get("storage", "--save-interim-results", "True")


@pytest.fixture
def user_storage(storage_stack):
    """resume-user's storage, emptied before the test."""
    s = Storage(storage_stack, "resume-user")
    assert s.delete().status_code == 200
    return s


# ---------------------------------------------------------------------- GET
def test_get_before_and_after_a_failing_job(user_storage):
    s = user_storage
    before = s.results()
    assert before["interim_results"] == [] and before["resources"] == []
    assert before["quota"] == 100 * 1024**3
    # emptied: no files left (directories do not count, see README)
    assert before["used"] == used_bytes(s.dir) == 0
    assert before["free"] == before["quota"]
    assert before["free_percent"] == 100

    rid = s.failed_job()
    resp = s.get()
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["status"] == "finished" and doc["user_id"] == "resume-user"
    after = doc["process_results"]
    [entry] = after["interim_results"]
    assert entry["resource_id"] == rid
    assert entry["steps"] == 2, "two steps saved before the failing one"
    assert entry["newest_step"] == 1
    assert entry["newest_step_id"] == "mapcalc2"
    assert entry["failed_step"] == 2
    assert entry["job_status"] == "error"
    assert entry["bytes"] == used_bytes(s.interim(rid)) > 0
    assert 0 <= entry["age_seconds"] < 120
    assert after["used"] == used_bytes(s.dir)
    assert after["used"] > before["used"]
    assert after["interim_results_bytes"] == entry["bytes"]


def test_get_and_delete_over_10000_files(storage_stack):
    """Counts and removal at 10,000 files (the GET's speed at 100,000 files
    is measured by scripts/benchmark, not asserted here)."""
    s = Storage(storage_stack, "resume-user2")
    s.delete()
    for job in range(20):
        root = s.interim(f"resource_id-bench{job:02d}")
        for step in range(5):
            (root / "steps" / f"{step:06d}").mkdir(parents=True)
            objects = root / "objects" / f"{step:02d}"
            objects.mkdir(parents=True)
            for i in range(100):
                (objects / f"f{i}").write_bytes(b"abc")
    resp = s.get()
    assert resp.status_code == 200
    results = resp.json()["process_results"]
    assert results["files"] == 10000
    assert len(results["interim_results"]) == 20
    resp = s.delete()
    assert len(resp.json()["process_results"]["removed"]) == 20


# ------------------------------------------------------------------- DELETE
def test_delete_olderthan_removes_only_old_whole_units(user_storage):
    s = user_storage
    old, fresh, mixed = s.failed_job(), s.failed_job(), s.failed_job()
    age_tree(s.interim(old), 3)
    # one recent file keeps the whole unit (find -mtime would delete the
    # old files of the saved mapset and leave half of it behind)
    age_tree(s.interim(mixed), 3)
    manifest = s.interim(mixed) / "steps" / "000001" / "manifest.json"
    os.utime(manifest, None)
    export = s.dir / "resource_id-oldexport"
    export.mkdir()
    (export / "result.tif").write_bytes(bytes(4096))
    age_tree(export, 5)
    sizes = {e["resource_id"]: e["bytes"]
             for e in s.results()["interim_results"]}

    resp = s.delete(olderthan=2)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["status"] == "finished"
    assert doc["process_results"]["olderthan"] == 2
    removed = {(u["kind"], u["resource_id"]): u["bytes"]
               for u in doc["process_results"]["removed"]}
    assert set(removed) == {("interim_results", old),
                            ("resource", "resource_id-oldexport")}
    assert removed[("interim_results", old)] == sizes[old]
    assert doc["process_results"]["freed_bytes"] == sum(removed.values())
    assert f"{doc['process_results']['freed_bytes']} bytes freed" in \
        doc["message"]
    assert not s.interim(old).exists() and not export.exists()
    for rid in (fresh, mixed):
        entry = s.interim_entry(rid)
        assert entry["steps"] == 2 and entry["bytes"] == sizes[rid]
    # the job that survived is still resumable from its interim results
    plan = s.client.put(f"resources/resume-user/{mixed}",
                        params={"dry_run": "true"})
    assert plan.status_code == 200, plan.text
    assert plan.json()["plan"]["restore_snapshot"] == 1

    resp = s.delete(olderthan=0)
    removed = {(u["kind"], u["resource_id"]) for u in resp.json()[
        "process_results"]["removed"]}
    # and the failed jobs' kept mapsets (issue 23), a unit each
    assert removed == {("interim_results", fresh), ("interim_results", mixed)
                       } | {("kept_mapset", r) for r in (old, fresh, mixed)}


def test_delete_all_removes_the_storage(user_storage):
    s = user_storage
    rid = s.failed_job()
    (s.dir / "stray.bin").write_bytes(bytes(1000))
    used = s.results()["used"]
    resp = s.delete()
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["process_results"]["olderthan"] is None
    kinds = {(u["kind"], u.get("resource_id") or u.get("name"))
             for u in doc["process_results"]["removed"]}
    assert kinds == {("interim_results", rid), ("kept_mapset", rid),
                     ("other", "stray.bin")}
    assert doc["process_results"]["skipped"] == []
    assert s.dir.is_dir(), "the user directory is kept (actinia re-creates it)"
    assert sorted(p.name for p in s.dir.rglob("*")) == ["interim",
                                                        "kept_mapsets"]
    after = s.results()
    assert after["used"] == used_bytes(s.dir)
    assert doc["process_results"]["freed_bytes"] >= used - after["used"] - \
        2 * 4096
    # PUT finds nothing to resume from any more (runs from the start)
    plan = s.client.put(f"resources/resume-user/{rid}",
                        params={"dry_run": "true"}).json()
    assert plan["plan"]["restore_snapshot"] is None


def test_running_and_accepted_jobs_survive_delete(storage_stack):
    s = Storage(storage_stack, "resume-userb")
    other = Storage(storage_stack, "resume-user2")
    s.delete()
    waiting = s.failed_job()
    # occupy both workers (number_of_workers = 2): a running job of ours
    # with a saved step, and a job of another user
    running = s.client.post_chain("processing_async", sleeping_chain(12)
                                  ).json()["urls"]["status"]
    blocker = other.client.post_chain("processing_async", sleeping_chain(12)
                                      ).json()["urls"]["status"]
    running_rid = rid_of(running)
    manifest = s.interim(running_rid) / "steps" / "000000" / "manifest.json"
    poll(manifest.exists, "the running job's first interim result")
    poll(lambda: other.client.request("GET", blocker).json()[
        "status"] == "running", "second worker busy")
    # resuming the failed job: its new iteration waits in the queue
    resp = s.client.put(f"resources/resume-userb/{waiting}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "accepted"
    age_tree(s.interim(running_rid), 3)
    (s.dir / "stray.bin").write_bytes(b"x")

    for params in ({}, {"olderthan": 0}):
        resp = s.delete(**params)
        assert resp.status_code == 200, resp.text
        doc = resp.json()["process_results"]
        skipped = {u["resource_id"]: u["reason"] for u in doc["skipped"]}
        assert set(skipped) == {running_rid, waiting}, doc
        assert "running" in skipped[running_rid]
        assert "accepted" in skipped[waiting]
        assert manifest.exists()
        assert (s.interim(waiting) / "steps" / "000001").is_dir()
    assert not (s.dir / "stray.bin").exists()
    assert "kept" in resp.json()["message"]

    assert s.client.wait(running)["status"] == "finished"
    other.client.wait(blocker)
    resumed = s.client.wait(f"resources/resume-userb/resource_id-"
                            f"{waiting.removeprefix('resource_id-')}",
                            iteration=2)
    # the resumed iteration restored the kept interim result (and failed
    # again at the ls step, as the chain is unchanged)
    assert resumed["resume"]["restored_interim_result"] == 1, resumed


# --------------------------------------------------------- bad parameters
@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "36501", "", "1e3"])
def test_bad_parameters_olderthan(user_storage, value):
    s = user_storage
    rid = s.failed_job()
    age_tree(s.interim(rid), 40000)
    resp = s.delete(olderthan=value)
    assert resp.status_code == 400, resp.text
    assert "olderthan" in resp.json()["message"]
    assert "nothing was deleted" in resp.json()["message"]
    assert s.interim(rid).is_dir()


@pytest.mark.parametrize("caller", ["actinia-gdi", "resume-admin"])
def test_bad_parameters_unknown_user(storage_stack, caller):
    s = Storage(storage_stack, caller)
    for method in (s.get, s.delete):
        resp = method(user_id="no-such-user")
        assert resp.status_code == 400, resp.text
        assert "does not exist" in resp.json()["message"]


def test_bad_parameters_unknown_query_parameter(user_storage):
    s = user_storage
    rid = s.failed_job()
    resp = s.delete(olderthen=3)  # typo must not delete everything
    assert resp.status_code == 400
    assert "olderthen" in resp.json()["message"]
    assert s.interim(rid).is_dir()


# ------------------------------------------------------------ permissions
MATRIX = [
    # caller, target, allowed
    ("resume-user", "resume-user", True),
    ("resume-user", "resume-user2", False),
    ("resume-userb", "resume-user", False),
    ("resume-admin", "resume-user2", True),
    ("resume-admin", "resume-admin", True),
    ("resume-admin", "resume-userb", False),
    ("resume-admin", "actinia-gdi", False),
    ("resume-adminb", "resume-userb", True),
    ("resume-adminb", "resume-user", False),
    ("actinia-gdi", "resume-userb", True),
    ("actinia-gdi", "resume-admin", True),
]


@pytest.mark.parametrize("caller,target,allowed", MATRIX)
def test_permissions_matrix(storage_stack, caller, target, allowed):
    s = Storage(storage_stack, caller)
    marker = storage_stack.resource_dir / target / "marker.bin"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_bytes(b"m")
    params = {} if caller == target else {"user_id": target}
    resp = s.get(**params)
    assert resp.status_code == (200 if allowed else 401), resp.text
    if allowed:
        assert resp.json()["user_id"] == target
        names = [u.get("name") for u in resp.json()["process_results"][
            "other"]]
        assert "marker.bin" in names
    resp = s.delete(**params)
    assert resp.status_code == (200 if allowed else 401), resp.text
    assert marker.exists() is not allowed
    marker.unlink(missing_ok=True)


def test_permissions_need_valid_credentials(storage_stack):
    s = Storage(storage_stack, "resume-user")
    marker = s.dir / "marker.bin"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_bytes(b"m")
    bad = s.client.as_user("resume-user", "wrong")
    assert bad.request("GET", "resource_storage").status_code == 401
    assert bad.request("DELETE", "resource_storage").status_code == 401
    assert marker.exists()
    marker.unlink()


# --------------------------------------------------------------- retention
def test_retention_removes_expired_interim_results_only(stacks):
    dep = stacks.get(
        "retention", "--save-interim-results", "True",
        "--misc", "interim_results_ttl_days=1",
        "--misc", "interim_results_ttl_check_seconds=1")
    s = Storage(dep, "resume-user")
    old, old2, fresh = s.failed_job(), s.failed_job(), s.failed_job()
    export = s.dir / "resource_id-oldexport"
    export.mkdir()
    (export / "result.tif").write_bytes(b"x")
    age_tree(export, 5)
    # a running job whose interim results look old is kept
    # (sleeps long enough to outlast the waits below on a loaded machine)
    running = s.client.post_chain("processing_async", sleeping_chain(25)
                                  ).json()["urls"]["status"]
    running_root = s.interim(rid_of(running))
    poll((running_root / "steps" / "000000" / "manifest.json").exists,
             "first interim result of the running job")
    age_tree(running_root, 3)
    age_tree(s.interim(old), 2)
    poll(lambda: not s.interim(old).exists(), "retention", 15)
    # one more whole retention round: expire another job and see it go
    age_tree(s.interim(old2), 2)
    poll(lambda: not s.interim(old2).exists(), "a later retention round",
             15)
    assert s.client.request("GET", running).json()["status"] in (
        "accepted", "running")
    assert running_root.is_dir()
    assert s.interim(fresh).is_dir()
    assert export.is_dir(), "retention removes interim results only"
    assert s.client.wait(running)["status"] == "finished"


# ------------------------------------------------------------------ quota
def test_quota_exceeded_stops_saving_and_keeps_snapshots(stacks):
    dep = stacks.get("quota", "--save-interim-results", "True",
                     "--quota", "1")
    s = Storage(dep, "resume-user")
    s.delete()
    earlier = s.failed_job()
    # interim results only: the failed job's kept mapset would be evicted
    # first under the quota (test_kept_mapset.py tests that)
    KeptMapset(dep.resource_dir, "resume-user", earlier).remove()
    manifests = sorted((s.interim(earlier) / "steps").glob("*/manifest.json"))
    assert len(manifests) == 2
    stats = {m: (m.stat().st_mtime_ns, m.read_bytes()) for m in manifests}
    earlier_bytes = s.interim_entry(earlier)["bytes"]

    # nearly full: 512 KiB left (a sparse file: st_size counts, no disk used)
    used = s.results()["used"]
    sparse = s.dir / "filler.sparse"
    with open(sparse, "wb") as handle:
        handle.truncate(1024**3 - used - 512 * 1024)
    chain = {"version": "1", "list": [
        mapcalc("small", "baum=5"),
        mapcalc("big", "big=rand(0,1000000000)", flags="s"),
        {"id": "ls_missing", "exe": "ls", "params": [MISSING]},
    ]}
    doc = s.client.run_chain("processing_async", chain)
    assert doc["status"] == "error"
    assert "grass_resource_quota = 1 GB" in doc["message"], doc["message"]
    assert "after step 1" in doc["message"]
    entry = s.interim_entry(doc["resource_id"])
    assert entry["steps"] == 1 and entry["newest_step_id"] == "small"
    # earlier snapshots are intact
    assert {m: (m.stat().st_mtime_ns, m.read_bytes())
            for m in manifests} == stats
    assert s.interim_entry(earlier)["bytes"] == earlier_bytes
    results = s.results()
    assert results["free"] < 512 * 1024
    plan = s.client.put(f"resources/resume-user/{earlier}",
                        params={"dry_run": "true"}).json()
    assert plan["plan"]["restore_snapshot"] == 1
    sparse.unlink()
