# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 11: damaged stored records, hostile PUT bodies and query strings,
checks before side effects, a restarted valkey (real stack).

- every kind of damaged record -> GET resource_storage, PUT ?dry_run=true
  answer without 500, and a PUT with the complete chain then finishes:
  test_damaged_record_is_treated_as_missing
- PUT bodies nested thousands deep or with a lone surrogate -> 400:
  test_hostile_put_bodies_are_refused
- query typos -> 400, no iteration started: test_put_query_typos_are_refused
- a stranger's 401 never makes the owner's PUT fail with 409:
  test_stranger_racing_the_owner_never_blocks_the_owner
- "interim results are not set" only after authentication:
  test_disabled_interim_results_answer_after_authentication
- valkey restarted between POST and PUT: test_valkey_restart_keeps_users_and_jobs
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
import stack
from polling import poll

from actinia_resume_plugin.store import SnapshotStore

from .chains import chain as chain_of
from .chains import mapcalc, univar
from .deployments import USER

STRANGER = ("resume-userb", "resume-userb-pw")


def chain(fixed: bool) -> dict:
    """Two saved steps, then r.univar of a map that exists only when
    ``fixed``."""
    return chain_of(mapcalc("a", "a=5"), mapcalc("b", "b=a*2"),
                    univar("stats", "b" if fixed else "no_such_map"))


def interim_root(dep, status_url: str) -> Path:
    rid = status_url.rstrip("/").rsplit("/", 1)[1]
    return dep.resource_dir / USER[0] / "interim" / rid


def failed_job(client, dep) -> tuple[str, Path]:
    doc = client.run_chain("processing_async", chain(fixed=False))
    assert doc["status"] == "error", doc["message"]
    root = interim_root(dep, doc["urls"]["status"])
    assert (root / "job.json").is_file()
    return doc["urls"]["status"], root


def iterations(client, status_url: str) -> list[str]:
    every = client.request("GET", status_url.replace("resource_id-", ""))
    return sorted(every.json())


# ------------------------------------------------------------ damage kinds
def _job(root: Path) -> dict:
    return json.loads((root / "job.json").read_text())


def _set_job_field(key, value):
    def damage(root: Path):
        job = _job(root)
        job[key] = value
        (root / "job.json").write_text(json.dumps(job))
    return damage


def _set_chain_list(value):
    def damage(root: Path):
        job = _job(root)
        job["chain"]["list"] = value
        (root / "job.json").write_text(json.dumps(job))
    return damage


def _write_job(content: bytes):
    def damage(root: Path):
        (root / "job.json").write_bytes(content)
    return damage


def _manifest(root: Path, step: int) -> Path:
    return root / "steps" / f"{step:06d}" / "manifest.json"


def _set_meta(step: int, update):
    def damage(root: Path):
        path = _manifest(root, step)
        manifest = json.loads(path.read_text())
        manifest["meta"] = update(manifest["meta"])
        path.write_text(json.dumps(manifest))
    return damage


def _job_is_directory(root: Path):
    (root / "job.json").unlink()
    (root / "job.json" / "sub").mkdir(parents=True)


def _job_is_fifo(root: Path):
    (root / "job.json").unlink()
    os.mkfifo(root / "job.json")


def _job_is_symlink(root: Path):
    """A symlink to another file (here: a record claiming step 7 failed):
    never followed."""
    other = root.parent / "planted.json"
    job = _job(root)
    job["failed_step"] = 7
    other.write_text(json.dumps(job))
    (root / "job.json").unlink()
    os.symlink(other, root / "job.json")


def _steps_is_file(root: Path):
    (root / "steps").rename(root / "steps.moved")
    (root / "steps").write_text("not a directory")


def _manifest_truncated(root: Path):
    path = _manifest(root, 1)
    path.write_bytes(path.read_bytes()[:50])


def _manifest_created_text(root: Path):
    path = _manifest(root, 1)
    manifest = json.loads(path.read_text())
    manifest["created"] = "yesterday"
    path.write_text(json.dumps(manifest))


# name -> (damage, the plan's notice names the job record)
DAMAGE = {
    "job_truncated": (_write_job(b'{"chain": {"version": "1", "li'), True),
    "job_not_object": (_write_job(b"[1, 2, 3]"), True),
    "job_empty": (_write_job(b""), True),
    "job_not_utf8": (_write_job(b'{"status": "\xff\xfe"}'), True),
    "job_nested_deep": (_write_job(b"[" * 100000), True),
    "job_is_directory": (_job_is_directory, True),
    "job_is_fifo": (_job_is_fifo, True),
    "job_is_symlink": (_job_is_symlink, True),
    "failed_step_string": (_set_job_field("failed_step", "2"), True),
    "failed_step_negative": (_set_job_field("failed_step", -3), True),
    "fingerprints_not_list": (_set_job_field("fingerprints", "abc"), True),
    "fingerprints_of_numbers": (_set_job_field("fingerprints", [1, 2, 3]),
                                True),
    "step_ids_object": (_set_job_field("step_ids", {"2": "x"}), True),
    "chain_not_object": (_set_job_field("chain", "r.mapcalc"), True),
    "chain_list_not_list": (_set_chain_list({"0": "x"}), True),
    "chain_steps_not_objects": (_set_chain_list([1, 2]), True),
    "core_class_list": (_set_job_field("core_class", ["x"]), True),
    "request_url_number": (_set_job_field("request_url", 5), True),
    "worker_not_object": (_set_job_field("worker", "pid 1"), True),
    "manifest_meta_not_object": (_set_meta(1, lambda m: "meta"), False),
    "manifest_fingerprints_text": (
        _set_meta(1, lambda m: {**m, "fingerprints": "ab"}), False),
    "manifest_process_logs_list": (
        _set_meta(1, lambda m: {**m, "process_logs": [1]}), False),
    "manifest_truncated": (_manifest_truncated, False),
    "manifest_created_text": (_manifest_created_text, False),
    "steps_is_file": (_steps_is_file, False),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_record_is_treated_as_missing(stack_true, kind):
    damage, names_record = DAMAGE[kind]
    client = stack_true.client(USER)
    status_url, root = failed_job(client, stack_true)
    damage(root)

    storage = client.request("GET", "resource_storage")
    assert storage.status_code == 200, storage.text
    units = {u["resource_id"]: u for u in
             storage.json()["process_results"]["interim_results"]}
    unit = units[root.name]
    assert unit["failed_step"] in (2, None)  # a planted record is not read

    for body in (None, chain(fixed=True)):
        dry = client.put(status_url, body, params={"dry_run": "true"})
        assert dry.status_code == 200, (body, dry.text)
        plan = dry.json()["plan"]
        if names_record:
            assert "job.json" in (plan["notice"] or ""), plan
    assert plan["restore_snapshot"] in (None, 0, 1)
    assert iterations(client, status_url) == ["1"]  # dry runs change nothing

    resp = client.put(status_url, chain(fixed=True))
    assert resp.status_code == 200, resp.text
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert float(done["process_results"]["stats"]["mean"]) == 10.0
    assert str(stack_true.data) not in json.dumps(done)


def test_missing_interim_file_fails_without_server_paths(stack_true):
    """Missing stored files are reported by their names in the mapset,
    never by absolute server paths, and the job still resumes."""
    client = stack_true.client(USER)
    status_url, root = failed_job(client, stack_true)
    store = SnapshotStore(root)
    state, _ = store.state(1)
    victims = [rel for rel, entry in state["mapset"].items()
               if entry.kind == "f" and rel.startswith("cell/")]
    assert victims, sorted(state["mapset"])
    for rel in victims:
        os.unlink(store.object_path(state["mapset"][rel].obj))
    plan = client.put(f"{status_url}?dry_run=true",
                      chain(fixed=True)).json()["plan"]
    assert "damaged" in plan["notice"] and "mapset/cell/" in plan["notice"]
    assert client.put(status_url, chain(fixed=True)).status_code == 200
    doc = client.wait(status_url, iteration=2)
    assert doc["status"] == "finished", doc["message"]
    assert str(stack_true.data) not in json.dumps(doc), doc["message"]


# ------------------------------------------------------ bodies and queries
DEEP = b'{"version": "1", "list": ' + b"[" * 5000 + b"]" * 5000 + b"}"
SURROGATE = (b'{"version": "1", "list": [{"id": "a\\ud800", '
             b'"module": "r.info"}]}')
NESTED_STEP = json.dumps({"version": "1", "list": [
    {"id": "a", "module": "r.info", "x": json.loads(
        "[" * 150 + "]" * 150)}]}).encode()


@pytest.mark.parametrize("body, words", [
    (DEEP, "nested"), (SURROGATE, "Unicode"), (NESTED_STEP, "nested"),
    (b"[" * 100000, "nested"), (b'"\\udc80"', "process chain"),
])
def test_hostile_put_bodies_are_refused(stack_true, body, words):
    client = stack_true.client(USER)
    status_url, _ = failed_job(client, stack_true)
    for params in ({}, {"dry_run": "true"}):
        resp = client.put(status_url, data=body, params=params,
                          headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, resp.text
        assert words in resp.json()["message"]
    assert iterations(client, status_url) == ["1"]


@pytest.mark.parametrize("query, named", [
    ("dryrun=true", "dryrun"), ("dry_run=ture", "ture"),
    ("dry-run=1", "dry-run"), ("DRY_RUN=true", "DRY_RUN"),
    ("dry_run=true&dry_run=false", "dry_run"), ("from_step=", "from_step"),
    ("dry_run=", "dry_run"), ("fromstep=b", "fromstep"),
])
def test_put_query_typos_are_refused(stack_true, query, named):
    client = stack_true.client(USER)
    status_url, root = failed_job(client, stack_true)
    before = (root / "job.json").read_bytes()
    resp = client.put(f"{status_url}?{query}", chain(fixed=True))
    assert resp.status_code == 400, resp.text
    assert named in resp.json()["message"]
    assert iterations(client, status_url) == ["1"]
    assert (root / "job.json").read_bytes() == before


# ------------------------------------------------ checks before changes
def test_stranger_racing_the_owner_never_blocks_the_owner(stack_true):
    """Another user's PUTs (401) run while the owner plans and resumes:
    the owner never gets 409 because of them."""
    owner = stack_true.client(USER)
    stranger = owner.as_user(*STRANGER)
    status_url, _ = failed_job(owner, stack_true)
    stop = threading.Event()
    stranger_codes = []

    def hammer():
        while not stop.is_set():
            for params in ({}, {"dry_run": "true"}):
                stranger_codes.append(
                    stranger.put(status_url, params=params).status_code)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        owner_codes = [owner.put(status_url, params={"dry_run": "true"})
                       .status_code for _ in range(30)]
        for number in (2, 3, 4):  # real PUTs: each starts an iteration
            owner_codes.append(owner.put(status_url).status_code)
            assert owner.wait(status_url, iteration=number)["status"] \
                == "error"
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    print(f"race: owner {len(owner_codes)} PUTs, stranger "
          f"{len(stranger_codes)} PUTs")
    assert owner_codes == [200] * 33
    assert stranger_codes and set(stranger_codes) == {401}


def test_disabled_interim_results_answer_after_authentication(stack_false):
    owner = stack_false.client(USER)
    doc = owner.run_chain("processing_async", chain(fixed=False))
    status_url = doc["urls"]["status"]
    assert owner.as_user(*STRANGER).put(status_url).status_code == 401
    assert owner.as_user(USER[0], "wrong").put(status_url).status_code == 401
    resp = owner.put(status_url)
    assert resp.status_code == 404  # as actinia-core
    assert "not set in the configuration" in resp.json()["message"]


# ------------------------------------------------------------ valkey restart
def _restart_valkey(dep) -> None:
    """Stop valkey (SIGTERM: it writes its append-only file) and start it
    again with the stack's own command line, data dir and port."""
    state_path = dep.data / stack.STATE_FILE
    state = json.loads(state_path.read_text())
    old = state["pids"][0]
    os.killpg(old, signal.SIGTERM)
    poll(lambda: not stack.process_running(old), "valkey to stop", 20)
    env = dict(os.environ)
    pid = stack.spawn(stack.valkey_command(dep.data, state["valkey_port"]),
                      dep.data / "logs" / "valkey.log", env, dep.data)
    state["pids"][0] = pid
    state_path.write_text(json.dumps(state))
    stack.wait_for(lambda: stack.valkey_ping(state["valkey_port"]),
                   "valkey", 20, pid=pid)


def test_valkey_restart_keeps_users_and_jobs(stacks):
    dep = stacks.get("valkey-restart", "--save-interim-results", "True")
    client = dep.client(USER)
    status_url, root = failed_job(client, dep)
    assert (dep.data / "valkey").is_dir()
    _restart_valkey(dep)
    # users and the job record survived: the owner is known, the job too
    latest = client.request("GET", status_url)
    assert latest.status_code != 401, latest.text  # the user is known
    assert latest.json()["status"] == "error"  # the job's record is kept
    plan = client.put(status_url, chain(fixed=True),
                      params={"dry_run": "true"}).json()["plan"]
    assert (plan["start"], plan["restore_snapshot"]) == (2, 1)
    assert client.put(status_url, chain(fixed=True)).status_code == 200
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["steps"][0]["action"] == "reused"
    assert float(done["process_results"]["stats"]["mean"]) == 10.0
    assert not root.exists()
