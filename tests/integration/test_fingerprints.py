# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue #6: resume what changed, keep every step cheaply.

All tests run against the real stack (valkey + gunicorn actinia + our
plugin, see conftest.py) over HTTP and assert values of GRASS results
(r.univar / v.db.select stdout in ``process_results``), not only statuses.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from polling import poll

from .chains import chain, load_chain, mapcalc, region, univar
from .jobs import put_until_not

ASYNC = "processing_async"


# --------------------------------------------------------------- helpers
def steps_by_action(doc: dict) -> dict:
    return {s["id"]: s["action"] for s in doc["resume"]["steps"]}


def all_iterations_url(client, status_url: str) -> str:
    """GET …/resources/<user>/<id without resource_id-> lists iterations."""
    base, rid = status_url.rsplit("/", 1)
    return f"{base}/{rid[len('resource_id-'):]}"


def interim_dir(dep, status_url: str) -> Path:
    user, rid = status_url.rstrip("/").split("/")[-2:]
    return dep.resource_dir / user / "interim" / rid


def put_and_wait(client, status_url: str, body=None, params: str = "",
                 iteration=None, timeout: float = 300) -> dict:
    resp = client.put(status_url + params, body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "accepted", resp.text
    return client.wait(status_url, iteration=iteration, timeout=timeout)


def failing_job(client, body: dict) -> tuple[str, dict]:
    doc = client.run_chain(ASYNC, body)
    assert doc["status"] == "error", doc
    return doc["urls"]["status"], doc


# --------------------------------------------------------- 1. edit + fix
def edit_chain(a_value: int, fixed: bool) -> dict:
    return chain(
        region(),
        mapcalc("a", f"a = {a_value}"),
        mapcalc("b", "b = a + 10"),
        mapcalc("c", "c = b * 2" if fixed else "c = no_such_map * 2"),
        univar("univar_c", "c"),
    )


def test_edit_earlier_step_and_fix_failed_one(stack_true):
    client = stack_true.client()
    url, _ = failing_job(client, edit_chain(1, fixed=False))

    doc = put_and_wait(client, url, edit_chain(3, fixed=True), iteration=2)
    assert doc["status"] == "finished", doc["message"]
    # the edited step (a = 3, not the stale a = 1) is in the result
    stats = doc["process_results"]["univar_c"]
    assert float(stats["min"]) == float(stats["max"]) == (3 + 10) * 2
    assert int(stats["null_cells"]) == 0
    resume = doc["resume"]
    assert resume["iteration"] == 2 and resume["start_step"] == 1
    assert resume["restored_interim_result"] == 0
    assert steps_by_action(doc) == {
        "region": "reused", "a": "new", "b": "new", "c": "new",
        "univar_c": "new"}
    # the run steps really ran, the reused one did not
    ran = {p["id"] for p in doc["process_log"] if "id" in p}
    assert {"a", "b", "c", "univar_c"} <= ran


def test_fix_only_failed_step_reuses_everything_before(stack_true):
    client = stack_true.client()
    url, _ = failing_job(client, edit_chain(5, fixed=False))
    doc = put_and_wait(client, url, edit_chain(5, fixed=True), iteration=2)
    assert doc["status"] == "finished", doc["message"]
    assert float(doc["process_results"]["univar_c"]["mean"]) == 30
    assert steps_by_action(doc) == {
        "region": "reused", "a": "reused", "b": "reused", "c": "new",
        "univar_c": "new"}
    assert doc["resume"]["restored_interim_result"] == 2


# ---------------------------------------------------------- 2. dry run
def test_dry_run_matches_put_and_changes_nothing(stack_true):
    client = stack_true.client()
    url, first = failing_job(client, edit_chain(2, fixed=False))
    all_url = all_iterations_url(client, url)
    before = client.request("GET", all_url).json()
    assert list(before) == ["1"]
    store = interim_dir(stack_true, url)
    snapshots_before = sorted(os.listdir(store / "steps"))
    job_before = (store / "job.json").read_text()

    body = edit_chain(4, fixed=True)
    plans = []
    for _ in range(2):
        resp = client.put(url + "?dry_run=true", body)
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        assert doc["status"] == "plan" and doc["iteration"] == 2
        plans.append(doc["plan"])
    assert plans[0] == plans[1]
    plan = plans[0]
    assert plan["actions"] == ["reused", "new", "new", "new", "new"]
    assert plan["start"] == 1 and plan["restore_snapshot"] == 0

    # nothing changed: no new iteration, same latest doc, same store
    after = client.request("GET", all_url).json()
    assert list(after) == ["1"]
    latest = client.request("GET", url).json()
    assert latest["status"] == "error" and latest.get("iteration") in (1, None)
    assert latest["resource_id"] == first["resource_id"]
    assert sorted(os.listdir(store / "steps")) == snapshots_before
    assert (store / "job.json").read_text() == job_before

    # the real PUT does what the dry run said
    doc = put_and_wait(client, url, body, iteration=2)
    assert doc["status"] == "finished", doc["message"]
    assert [s["action"] for s in doc["resume"]["steps"]] == plan["actions"]
    assert [s["id"] for s in doc["resume"]["steps"]] == plan["step_ids"]
    assert doc["resume"]["start_step"] == plan["start"]
    assert doc["resume"]["restored_interim_result"] == plan["restore_snapshot"]
    assert float(doc["process_results"]["univar_c"]["mean"]) == (4 + 10) * 2
    assert sorted(client.request("GET", all_url).json()) == ["1", "2"]


def test_dry_run_with_from_step_and_stored_chain(stack_true):
    """An empty PUT body plans with the stored chain; from_step is honoured
    in the plan exactly as in the real run."""
    client = stack_true.client()
    failing = edit_chain(6, fixed=False)
    url, _ = failing_job(client, failing)
    plan = client.put(url + "?dry_run=true&from_step=b").json()["plan"]
    assert plan["start"] == 2 and plan["restore_snapshot"] == 1
    assert plan["actions"] == ["reused", "reused", "rerun", "rerun", "rerun"]
    doc = put_and_wait(client, url, params="?from_step=b", iteration=2)
    assert doc["status"] == "error"  # the stored chain still fails
    assert [s["action"] for s in doc["resume"]["steps"]] == plan["actions"]


# -------------------------------------------------------- 3. from_step
def from_step_chain(fixed: bool) -> dict:
    return chain(
        region(),
        mapcalc("a", "a = 2"),
        mapcalc("b", "b = a * 5"),
        mapcalc("c", "c = b + 1"),
        mapcalc("d", "d = c + a" if fixed else "d = no_such_map + 1"),
        univar("univar_d", "d"),
    )


def test_from_step_true_mode_reruns_unchanged_steps(stack_true):
    client = stack_true.client()
    url, _ = failing_job(client, from_step_chain(fixed=False))
    doc = put_and_wait(client, url, from_step_chain(fixed=True),
                       params="?from_step=b", iteration=2)
    assert doc["status"] == "finished", doc["message"]
    assert float(doc["process_results"]["univar_d"]["mean"]) == 2 * 5 + 1 + 2
    assert doc["resume"]["start_step"] == 2
    assert doc["resume"]["restored_interim_result"] == 1
    assert steps_by_action(doc) == {
        "region": "reused", "a": "reused", "b": "rerun", "c": "rerun",
        "d": "new", "univar_d": "new"}
    ran = [p["id"] for p in doc["process_log"] if "id" in p]
    assert "b" in ran and "c" in ran and "a" not in ran


def test_from_step_by_number(stack_true):
    client = stack_true.client()
    url, _ = failing_job(client, from_step_chain(fixed=False))
    plan = client.put(url + "?dry_run=true&from_step=1",
                      from_step_chain(fixed=True)).json()["plan"]
    assert plan["start"] == 1 and plan["restore_snapshot"] == 0


def test_from_step_onerror_mode(stack_onerror):
    client = stack_onerror.client()
    url, _ = failing_job(client, from_step_chain(fixed=False))
    store = interim_dir(stack_onerror, url)
    # onError keeps only the snapshot before the failed step (d, position 4)
    assert sorted(os.listdir(store / "steps")) == ["000003"]

    resp = client.put(url + "?from_step=b", from_step_chain(fixed=True))
    assert resp.status_code == 400, resp.text
    message = resp.json()["message"]
    assert "Earliest possible step: 4" in message, message
    # nothing was enqueued
    all_url = all_iterations_url(client, url)
    assert list(client.request("GET", all_url).json()) == ["1"]

    # unknown step: a clear 400 too
    resp = client.put(url + "?from_step=nope", from_step_chain(fixed=True))
    assert resp.status_code == 400 and "unknown step" in resp.json()["message"]

    # from the kept snapshot it works; the plan says that it was saved at
    # the failure (the failed step may have written part of its outputs)
    plan = client.put(url + "?dry_run=true&from_step=d",
                      from_step_chain(fixed=True)).json()["plan"]
    assert "saved when step 4 failed (onError)" in plan["notice"], plan
    doc = put_and_wait(client, url, from_step_chain(fixed=True),
                       params="?from_step=d", iteration=2)
    assert doc["status"] == "finished", doc["message"]
    assert float(doc["process_results"]["univar_d"]["mean"]) == 13
    assert doc["resume"]["restored_interim_result"] == 3
    assert doc["resume"]["notice"] == plan["notice"]


def test_onerror_edit_before_kept_snapshot_gives_notice(stack_onerror):
    """An edit before the only kept snapshot: the plan says so and the
    chain runs from the start (with the edit in effect)."""
    client = stack_onerror.client()
    url, _ = failing_job(client, from_step_chain(fixed=False))
    body = from_step_chain(fixed=True)
    body["list"][1] = mapcalc("a", "a = 4")
    resp = client.put(url + "?dry_run=true", body)
    plan = resp.json()["plan"]
    assert plan["start"] == 0 and plan["restore_snapshot"] is None
    assert plan["notice"] and "from the start" in plan["notice"]
    doc = put_and_wait(client, url, body, iteration=2)
    assert doc["status"] == "finished", doc["message"]
    assert doc["resume"]["notice"] == plan["notice"]
    assert float(doc["process_results"]["univar_d"]["mean"]) == 4 * 5 + 1 + 4


# --------------------------------------- 4. same-second in-place rewrite
MAPSET_FILE = (
    "import os; g = dict(l.split(': ', 1) for l in "
    "open(os.environ['GISRC']).read().splitlines() if ': ' in l); "
    "p = os.path.join(g['GISDBASE'], g['LOCATION_NAME'], g['MAPSET'], "
    "'rewritten.dat'); ")


def python_step(step_id: str, code: str, **extra) -> dict:
    return {"id": step_id, "exe": "/usr/bin/python3",
            "params": ["-c", MAPSET_FILE + code], **extra}


def same_second_chain(fixed: bool) -> dict:
    """Step `write_a` writes 4 KiB right after a second boundary; the save
    after it runs within that second; step `write_b` rewrites the file in
    place with other bytes of the same size, still in that second. On a
    file system with 1 s timestamps the two states have the very same stat
    (size, mtime, inode, ctime, mode)."""
    return {"version": "1", "list": [
        region("region", n=228500, s=215000, w=630000, e=645000,
               rows=10, cols=10),
        python_step("write_a",
                    "import time; time.sleep(1.02 - time.time() % 1); "
                    "open(p, 'wb').write(b'A' * 4096)"),
        python_step("write_b",
                    "f = open(p, 'r+b'); f.write(b'B' * 4096); f.close()"),
        {"id": "gate", "exe": "echo" if fixed else "false", "params": ["ok"]},
        python_step("read", "print(open(p).read(1))"),
    ]}


@pytest.fixture(scope="module")
def coarse_stack(mounted_stacks):
    """The temporary GRASS database on ext4 with 128-byte inodes: 1 s
    timestamps, so an in-place rewrite within the second of the previous
    save has the very same stat; only the racy rule sees it."""
    return mounted_stacks.get("coarse", "workspace/temp_db", "ext4-1s:512M",
                              "--save-interim-results", "True")


def test_same_second_rewrite_is_detected(coarse_stack):
    client = coarse_stack.client()
    url, first = failing_job(client, same_second_chain(fixed=False))
    store = interim_dir(coarse_stack, url)
    assert sorted(os.listdir(store / "steps")) == [
        f"{i:06d}" for i in range(3)]

    doc = put_and_wait(client, url, same_second_chain(fixed=True),
                       iteration=2)
    assert doc["status"] == "finished", doc["message"]
    assert doc["resume"]["restored_interim_result"] == 2
    read = [p for p in doc["process_log"] if p.get("id") == "read"]
    assert read and read[-1]["stdout"].strip() == "B", read


def test_same_second_sqlite_rewrite_is_detected(stack_true):
    """GRASS's own in-place rewrites (v.db.update on sqlite.db) between
    snapshots are all seen."""
    client = stack_true.client()
    url, first = failing_job(client, sqlite_chain(fixed=False))
    store = interim_dir(stack_true, url)
    steps = sorted(os.listdir(store / "steps"))
    # snapshots after every step before the failing one (positions 0..4)
    assert steps == [f"{i:06d}" for i in range(5)], steps

    doc = put_and_wait(client, url, sqlite_chain(fixed=True), iteration=2)
    assert doc["status"] == "finished", doc["message"]
    assert doc["resume"]["restored_interim_result"] == 4
    rows = parse_vdb_select(doc["process_results"]["select"])
    assert len(rows) == 30
    assert {r["score"] for r in rows} == {"2"}, rows[:3]


def sqlite_chain(fixed: bool) -> dict:
    return load_chain("sqlite_rewrite",
                      FINAL="echo" if fixed else "false")


def parse_vdb_select(table) -> list[dict]:
    """v.db.select output parsed by actinia (stdout format "table")."""
    rows = [row for row in table if row and any(c.strip() for c in row)]
    header = rows[0]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


# ----------------------------------------- 5. worker killed mid-snapshot
def kill_chain() -> dict:
    return chain(
        region("region", n=228500, s=215000, w=630000, e=645000,
               rows=4000, cols=4000),
        mapcalc("a", "a = 7"),
        # ~128 MB of incompressible doubles: its snapshot takes a while
        {**mapcalc("big", "big = rand(0.0, 1.0) + a"), "flags": "s"},
        mapcalc("c", "c = a * 3"),
        univar("univar_big", "big"),
        univar("univar_c", "c"),
    )


def _stack_pgids(dep) -> set[int]:
    state = json.loads((dep.data / "run" / "stack.json").read_text())
    return set(state["pids"])


def test_worker_killed_mid_snapshot(stack_true):
    client = stack_true.client()
    body = kill_chain()
    resp = client.post_chain(ASYNC, body)
    url = resp.json()["urls"]["status"]
    store = interim_dir(stack_true, url)

    # wait for a save in progress after snapshot 1 exists (i.e. of "big")
    victim = None
    deadline = time.monotonic() + 180
    while victim is None and time.monotonic() < deadline:
        try:
            names = os.listdir(store)
            done = os.listdir(store / "steps")
        except FileNotFoundError:
            names, done = [], []
        if "000001" in done:
            # a save in progress: its new objects (then its manifest) are
            # written under names that carry the worker's pid
            try:
                names += os.listdir(store / "objects")
            except FileNotFoundError:
                pass
            for name in names:
                if name.startswith((".staging-", ".tmp-")):
                    victim = int(name.split("-")[-2])
                    break
        if victim is None:
            time.sleep(0.002)
    assert victim is not None, "no snapshot save of step 2 was observed"
    # only ever kill a process of the stack we started
    assert os.getpgid(victim) in _stack_pgids(stack_true)
    os.kill(victim, signal.SIGKILL)
    complete = sorted(os.listdir(store / "steps"))

    doc = client.wait(url, timeout=60)
    assert doc["status"] == "error", doc
    # the half-written snapshot is invisible
    assert all((store / "steps" / s / "manifest.json").exists()
               for s in os.listdir(store / "steps"))
    last = int(max(complete))

    # if the job still shows as running, the PUT waits for the heartbeat
    resp = put_until_not(client, url)
    assert resp.status_code == 200, resp.text
    doc = client.wait(url, iteration=2, timeout=300)
    assert doc["status"] == "finished", doc["message"]
    assert doc["resume"]["restored_interim_result"] == last
    assert doc["resume"]["start_step"] == last + 1
    # after success the interim results are removed, after `finished`
    poll(lambda: not store.exists() and not [
        p for p in store.parent.iterdir()
        if p.name.startswith(f".{store.name}.deleted-")],
        "removal of the interim results after success")
    stats = doc["process_results"]["univar_big"]
    assert 7.0 <= float(stats["min"]) and float(stats["max"]) <= 8.0
    assert int(stats["n"]) == 4000 * 4000
    assert 7.45 < float(stats["mean"]) < 7.55
    c = doc["process_results"]["univar_c"]
    assert float(c["min"]) == float(c["max"]) == 21


# ------------------------------------------------ 6. iterations past 9
def test_more_than_nine_iterations(stack_true, tmp_path):
    client = stack_true.client()
    missing = tmp_path / "appears-later"
    body = chain(
        region(),
        mapcalc("a", "a = 11"),
        {"id": "ls", "exe": "ls", "params": [str(missing)]},
        univar("univar_a", "a"),
    )
    url, _ = failing_job(client, body)
    for iteration in range(2, 12):
        doc = put_and_wait(client, url, iteration=iteration)
        assert doc["status"] == "error", doc
        assert doc["iteration"] == iteration
        assert doc["resume"]["start_step"] == 2
    missing.mkdir()
    doc = put_and_wait(client, url, iteration=12)
    assert doc["status"] == "finished", doc["message"]
    assert doc["iteration"] == 12
    assert float(doc["process_results"]["univar_a"]["mean"]) == 11

    latest = client.request("GET", url).json()
    assert latest["iteration"] == 12 and latest["status"] == "finished"
    every = client.request("GET", all_iterations_url(client, url)).json()
    assert list(every) == [str(n) for n in range(1, 13)]
    assert every["10"]["status"] == "error"
    assert every["12"]["status"] == "finished"
    one = client.request("GET", f"{all_iterations_url(client, url)}/10")
    assert one.status_code == 200, one.text
