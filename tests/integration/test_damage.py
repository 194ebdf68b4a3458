# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 20: damage that keeps the timestamps never yields a wrong value
(real stack).

Bit rot on a disk without data checksums, a ``cp -p`` or a backup restored
over a stored file change bytes while atime and mtime stay what they were.
Each test lets a job fail, changes one stored file *in place* and puts its
atime and mtime back (``os.utime`` with nanoseconds), resumes and checks
the value the job computes:

- an object (the bytes of ``fcell/ten`` become those of ``fcell/five``),
- the same in a pack file (one step makes ``ten``, ``five`` and 40 more
  maps: enough small new files for its interim result to be packed),
- a manifest (the entry of ``fcell/ten`` names the object of
  ``fcell/five``),
- the job record (its stored chain says ``ten = 17``; a PUT without body
  runs the stored chain),

on ephemeral, export and persistent jobs, with ``save_interim_results``
True and onError, and on a job that reuses another job's interim result.
The dry run must say "damaged" for objects and manifests, the job
record's damage must be named, and the job must end with ``mean 10``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from actinia_resume_plugin.store import SnapshotStore
from actinia_resume_plugin.store.kept_mapset import KeptMapset

from .chains import box_region, mapcalc, sh, univar
from .chains import chain as chain_of
from .chains import gate as gate_step
from .deployments import SUPERADMIN

ENDPOINTS = {
    "ephemeral": "processing_async",
    "export": "processing_async_export",
    "persistent": "mapsets/{mapset}/processing_async",
}


def chain(gate: Path, packed: bool = False) -> dict:
    """region, ten = 10, five = 5, a gate that fails while ``gate`` is
    missing, r.univar of ten. ``packed``: ten and five are made in one
    step with 40 more maps (their objects go into a pack file)."""
    maps = [mapcalc("ten", "ten = 10.0"), mapcalc("five", "five = 5.0")]
    if packed:
        maps = [sh("maps", "{ echo 'ten = 10.0'; echo 'five = 5.0'; i=0; "
                   "while [ $i -lt 40 ]; do echo \"f$i = $i\"; i=$((i+1)); "
                   "done; } | r.mapcalc file=- --quiet")]
    return chain_of(
        box_region(40, 40),
        *maps,
        gate_step(gate),
        univar("univar", "ten", "stats"),
    )


def keeping_times(path: Path, change) -> None:
    """Change ``path`` in place, then put atime and mtime back."""
    st = os.stat(path)
    os.chmod(path, 0o644)
    change(path)
    os.chmod(path, st.st_mode & 0o7777)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_mtime_ns, after.st_atime_ns) == (
        st.st_mtime_ns, st.st_atime_ns)


def store_of(dep, status_url: str) -> SnapshotStore:
    rid = status_url.rstrip("/").rsplit("/", 1)[1]
    return SnapshotStore(dep.resource_dir / SUPERADMIN[0] / "interim" / rid)


def newest_state(store: SnapshotStore) -> dict:
    steps = store.steps()
    assert steps, "no interim result was saved"
    return store.state(steps[-1])[0]["mapset"]


def damage_object(store: SnapshotStore) -> None:
    mapset = newest_state(store)
    ten, five = mapset["fcell/ten"], mapset["fcell/five"]
    assert ten.size == five.size, (ten, five)
    donor = Path(store.object_path(five.obj)).read_bytes()
    keeping_times(Path(store.object_path(ten.obj)),
                  lambda p: p.write_bytes(donor))


def damage_packed_object(store: SnapshotStore) -> None:
    mapset = newest_state(store)
    ten, five = mapset["fcell/ten"], mapset["fcell/five"]
    pack, at, length = store.object_location(ten.obj)
    donor_pack, donor_at, donor_length = store.object_location(five.obj)
    assert pack.endswith(".pack") and length == donor_length == five.size
    with open(donor_pack, "rb") as handle:
        donor = os.pread(handle.fileno(), donor_length, donor_at)

    def change(path):
        with open(path, "r+b") as handle:
            os.pwrite(handle.fileno(), donor, at)
    keeping_times(Path(pack), change)


def damage_manifest(store: SnapshotStore) -> None:
    mapset = newest_state(store)
    ten, five = mapset["fcell/ten"], mapset["fcell/five"]
    old = json.dumps(ten.to_json(), separators=(",", ":")).encode()
    new = json.dumps(five.to_json(), separators=(",", ":")).encode()
    changed = 0
    for step in store.steps():
        path = store.step_path(step) / "manifest.json"
        raw = path.read_bytes()
        if old in raw:
            keeping_times(path, lambda p, raw=raw: p.write_bytes(
                raw.replace(old, new)))
            changed += 1
    assert changed


def damage_record(store: SnapshotStore) -> None:
    path = store.root / "job.json"
    raw = path.read_bytes()
    assert b"ten = 10.0" in raw
    keeping_times(path, lambda p: p.write_bytes(
        raw.replace(b"ten = 10.0", b"ten = 17.0")))


DAMAGE = {"object": damage_object, "packed_object": damage_packed_object,
          "manifest": damage_manifest, "record": damage_record}


def failed_job(dep, endpoint: str, gate: Path, packed: bool = False):
    client = dep.client()
    path = ENDPOINTS[endpoint].format(mapset=f"dmg_{uuid.uuid4().hex[:8]}")
    failed = client.run_chain(path, chain(gate, packed))
    assert failed["status"] == "error", failed["message"]
    return client, failed["urls"]["status"]


def check_resumed(client, status_url: str, kind: str) -> dict:
    dry = client.put(status_url, params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    notice = dry.json()["plan"]["notice"] or ""
    where = {"record": "job.json", "manifest": "manifest.json",
             "object": "fcell/ten", "packed_object": "fcell/ten"}[kind]
    assert where in notice, notice
    if kind != "record":
        assert "damaged" in notice, notice
    assert client.put(status_url).status_code == 200
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert float(done["process_results"]["stats"]["mean"]) == 10.0, done[
        "process_results"]
    return done


@pytest.fixture(params=["True", "onError"])
def deployment(request, stack_true, stack_onerror):
    return stack_true if request.param == "True" else stack_onerror


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damage_keeping_timestamps_never_gives_a_wrong_value(
        deployment, endpoint, kind, tmp_path):
    gate = tmp_path / "gate"
    client, status_url = failed_job(deployment, endpoint, gate,
                                    packed=kind == "packed_object")
    DAMAGE[kind](store_of(deployment, status_url))
    # the resume restores from the store, not from the failed job's kept
    # mapset (which needs no stored object it does not put back; see
    # test_kept_mapsets.py)
    KeptMapset(deployment.resource_dir, SUPERADMIN[0],
               status_url.rstrip("/").rsplit("/", 1)[1]).remove()
    if kind == "manifest":
        listed = client.request("GET", "resource_storage").json()
        rid = status_url.rstrip("/").rsplit("/", 1)[1]
        unit = next(u for u in listed["process_results"]["interim_results"]
                    if u["resource_id"] == rid)
        # never listed as restorable; listed as damaged with the reason
        assert unit["damaged_steps"], unit
        assert all("manifest.json" in d["reason"]
                   for d in unit["damaged_steps"]), unit
        restorable = set(store_of(deployment, status_url).steps())
        assert unit["steps"] == len(restorable)
    gate.mkdir()
    done = check_resumed(client, status_url, kind)
    if kind != "record":
        assert "damaged" in done["resume"].get("notice", ""), done["resume"]


@pytest.fixture(scope="module")
def stack_reuse(stacks):
    """save_interim_results = True, reuse_interim_results = True"""
    return stacks.get("reuse", "--save-interim-results", "True",
                      "--misc", "reuse_interim_results=True")


@pytest.mark.parametrize("kind", ["object", "manifest"])
def test_reusing_job_never_uses_damaged_data(stack_reuse, kind, tmp_path):
    """A POST with ?reuse= restores another job's interim result: damage
    there (timestamps kept) is never used."""
    gate = tmp_path / "gate"
    client, status_url = failed_job(stack_reuse, "ephemeral", gate)
    DAMAGE[kind](store_of(stack_reuse, status_url))
    gate.mkdir()
    url = client.project_url("processing_async")
    rid = status_url.rstrip("/").rsplit("/", 1)[1]
    dry = client.request("POST", f"{url}?reuse={rid}&dry_run=true",
                         json=chain(gate))
    assert dry.status_code == 200, dry.text
    assert "damaged" in (dry.json()["plan"].get("notice") or ""), dry.json()
    resp = client.request("POST", f"{url}?reuse={rid}", json=chain(gate))
    assert resp.status_code == 200, resp.text
    done = client.wait(resp.json()["urls"]["status"])
    assert done["status"] == "finished", done["message"]
    assert float(done["process_results"]["stats"]["mean"]) == 10.0


def test_job_reusing_another_then_resumed(stack_reuse, tmp_path):
    """Job B reuses job A, fails later, and its interim results (objects
    hard linked from A's) are damaged in place: B's PUT never uses them."""
    gate_a, gate_b = tmp_path / "a", tmp_path / "b"
    client, status_a = failed_job(stack_reuse, "ephemeral", gate_a)
    gate_a.mkdir()
    body = chain(gate_a)
    body["list"].insert(4, {"id": "gate_b", "exe": "ls",
                            "params": [str(gate_b)]})
    url = client.project_url("processing_async")
    rid = status_a.rstrip("/").rsplit("/", 1)[1]
    resp = client.request("POST", f"{url}?reuse={rid}", json=body)
    assert resp.status_code == 200, resp.text
    status_b = resp.json()["urls"]["status"]
    failed = client.wait(status_b)
    assert failed["status"] == "error", failed["message"]
    assert failed["resume"]["reused_from"] == rid
    damage_object(store_of(stack_reuse, status_b))
    gate_b.mkdir()
    check_resumed(client, status_b, "object")
