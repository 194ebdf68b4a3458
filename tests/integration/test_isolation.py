# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22: a normal user cannot read, change or delete another user's
interim results through the steps of a process chain.

All jobs run as the same system user and actinia checks no paths. The demo
and test deployments (scripts/stack.py) therefore give the `user` role no
shell, interpreter or file tool (``USER_FORBIDDEN``), and the plugin refuses
any argument that names a path in the resource storage for every role but
superadmin (worker/path_guard.py). Tried here: the attacks of the issue
(``grass --exec rm -rf``, ``cat``, ``touch``, ``mkdir``), shells and an
interpreter, and modules of actinia's default allow list that take a server
path (reading, writing, listing). The victim's interim results stay
byte-for-byte the same and still resume.
"""

from __future__ import annotations

import os

import pytest

from actinia_resume_plugin.store import SnapshotStore

from .chains import chain, mapcalc, univar
from .deployments import USER

VICTIM = ("resume-user2", "resume-user2-pw")


def victim_chain(last: str) -> dict:
    return chain(mapcalc("r_mapcalc", "secret = 42"),
                 univar("r_univar", last, "stats"))


def listing(root) -> dict:
    """Every path below ``root`` with its size and mtime."""
    found = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            found[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return found


def attacks(target: str) -> list[tuple[str, dict]]:
    job = f"{target}/job.json"
    return [
        ("grass --exec rm", {"exe": "grass", "params": [
            "--tmp-location", "XY", "--exec", "rm", "-rf", target]}),
        ("cat", {"exe": "cat", "params": [job]}),
        ("touch", {"exe": "touch", "params": [job]}),
        ("mkdir", {"exe": "mkdir", "params": [f"{target}/steps/99"]}),
        ("sh", {"exe": "/bin/sh", "params": ["-c", f"rm -rf {target}"]}),
        ("python3", {"exe": "/usr/bin/python3", "params": [
            "-c", f"import shutil; shutil.rmtree({target!r})"]}),
        ("ls (names)", {"exe": "ls", "params": ["-R", target]}),
        ("ls via ..", {"exe": "ls", "params": [
            f"{target}/../../../resume-user2"]}),
        ("r.colors.out rules= (write)", {"module": "r.colors.out", "inputs": [
            {"param": "map", "value": "elevation@PERMANENT"},
            {"param": "rules", "value": job}]}),
        ("r.out.png output= (write)", {"module": "r.out.png", "inputs": [
            {"param": "input", "value": "elevation@PERMANENT"},
            {"param": "output", "value": f"{target}/x.png"}]}),
        ("v.in.ascii input= (read)", {"module": "v.in.ascii", "inputs": [
            {"param": "input", "value": job},
            {"param": "output", "value": "stolen"}]}),
    ]


@pytest.fixture(scope="module")
def victim_job(stack_true):
    client = stack_true.client(VICTIM)
    failed = client.run_chain("processing_async", victim_chain("no_such"))
    assert failed["status"] == "error", failed["message"]
    status_url = failed["urls"]["status"]
    rid = status_url.rstrip("/").rsplit("/", 1)[1]
    root = stack_true.resource_dir / VICTIM[0] / "interim" / rid
    assert SnapshotStore(root).steps() == [0]
    return client, status_url, root


def test_normal_user_cannot_touch_other_users_interim_results(
        stack_true, victim_job):
    victim, status_url, root = victim_job
    before = listing(root)
    attacker = stack_true.client(USER)
    refused = {}
    for name, step in attacks(str(root)):
        chain = {"version": "1", "list": [{"id": "attack", **step}]}
        resp = attacker.request(
            "POST", attacker.project_url("processing_async"), json=chain)
        if resp.status_code == 200:
            doc = attacker.wait(resp.json()["urls"]["status"])
        else:
            doc = resp.json()
        assert doc["status"] == "error", (name, doc)
        assert "not supported" in doc["message"] or \
            "resource storage" in doc["message"], (name, doc["message"])
        assert not doc.get("process_log"), (name, doc["process_log"])
        assert listing(root) == before, name
        refused[name] = doc["message"]
    print("\n" + "\n".join(f"{k}: {v}" for k, v in refused.items()))

    store = SnapshotStore(root)
    assert all(store.damage(step) is None for step in store.steps())
    assert victim.put(status_url, victim_chain("secret")).status_code == 200
    done = victim.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["steps"][0]["action"] == "reused"
    assert done["process_results"]["stats"]["mean"] == "42"


def test_superadmin_keeps_its_powers(stack_true, tmp_path):
    """The path check is for normal users: a superadmin's step may name
    any path (as actinia allows)."""
    client = stack_true.client()
    done = client.run_chain("processing_async", {"version": "1", "list": [
        {"id": "ls", "exe": "ls", "params": [str(stack_true.resource_dir)]}]})
    assert done["status"] == "finished", done["message"]
