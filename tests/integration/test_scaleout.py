# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 12: scale-out with actinia's kvdb queue (rq ``actinia-worker``s).

Deployments (scripts/stack.py, as an operator would run them):
- ``kvdb``: ``[QUEUE] queue_type = kvdb``, two ``actinia-worker job_queue_<i>``
  processes with ``DEFAULT_CONFIG_PATH`` (jobs go round-robin to them);
- ``kvdb_pidns``: one worker in its own pid namespace (as in a container):
  the API cannot see its pids and judges it by the heartbeat alone;
- ``per_job``: one queue per job, a burst worker started per iteration.

Behaviour -> test:
- fail on one worker, resume on the other, values checked:
  test_fail_on_one_worker_resume_on_the_other
- ``kill -9`` of the job's process (rq's work-horse) while ``running``:
  test_killed_running_job_resumes_at_once
- ... while actinia still shows ``accepted`` (short steps): resumed from the
  last complete interim result; resource_storage no longer protects it:
  test_killed_accepted_job_resumes_from_last_interim_result,
  test_killed_accepted_job_is_not_protected_by_resource_storage
- a job waiting in the queue is refused, a worker in another pid namespace
  is judged by its heartbeat: test_worker_in_own_pid_namespace
- 10 concurrent PUTs -> one iteration: test_ten_concurrent_puts_one_iteration
- per_job queues: test_per_job_queue_resume
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import stack
import valkey
from polling import poll

from actinia_resume_plugin import keys
from actinia_resume_plugin.store import SnapshotStore
from actinia_resume_plugin.worker import liveness

from .chains import chain, load_chain, mapcalc, sleep, univar
from .deployments import USER
from .jobs import univar_of

USER2 = ("resume-user2", "resume-user2-pw")
#: These stacks test what a PUT does with a dead job: nothing continues it
#: by itself (test_continuation.py tests that).
MANUAL = ("--misc", "continue_after_worker_loss=0")


@pytest.fixture(scope="session")
def stack_kvdb(stacks):
    return stacks.get("kvdb", "--queue", "kvdb", "--workers", "2",
                      *MANUAL)


@pytest.fixture(scope="session")
def stack_kvdb_pidns(stacks):
    return stacks.get("kvdb_pidns", "--queue", "kvdb", "--workers", "1",
                      "--worker-pid-namespace", *MANUAL)


@pytest.fixture(scope="session")
def stack_per_job(stacks):
    return stacks.get("per_job", "--queue", "per_job", *MANUAL)


@pytest.fixture
def missing_dir(tmp_path):
    return tmp_path / f"test-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------ helpers
def kvdb(dep) -> valkey.Valkey:
    return valkey.Valkey(host="127.0.0.1", port=dep.state["valkey_port"])


def rid_of(status_url: str) -> str:
    return status_url.rstrip("/").rsplit("/", 1)[1]


def store_of(dep, user: str, status_url: str) -> SnapshotStore:
    return SnapshotStore(dep.resource_dir / user / "interim"
                         / rid_of(status_url))


def record(dep, key: str) -> dict | None:
    raw = kvdb(dep).get(key)
    return json.loads(raw) if raw is not None else None


def heartbeat_of(dep, user: str, status_url: str, iteration: int = 1):
    """The heartbeat value (worker identity) of a running iteration."""
    key = keys.heartbeat(user, rid_of(status_url))
    return poll(lambda: (lambda beat: beat if beat and beat["iteration"]
                         == iteration else None)(record(dep, key)),
                f"heartbeat of iteration {iteration}")


def picked_of(dep, user: str, status_url: str, iteration: int) -> dict:
    return record(dep, keys.picked(user, rid_of(status_url), iteration))


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def kill_and_wait(pid: int) -> None:
    """SIGKILL ``pid`` and wait until it is gone (or a zombie)."""
    start = liveness.process_start_time(pid)
    assert start is not None, f"process {pid} is not running"
    os.kill(pid, signal.SIGKILL)
    poll(lambda: liveness.process_start_time(pid) != start,
         f"process {pid} to die", 30)


def host_pid(dep, ns_pid: int) -> int:
    """The host pid of the process that is ``ns_pid`` inside the pid
    namespace of the deployment's (only) worker (NSpid in /proc)."""
    worker = dep.state["workers"][0]["pid"]
    for pid in stack.descendants([worker]):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:"):
                ids = [int(x) for x in line.split()[1:]]
                if len(ids) > 1 and ids[-1] == ns_pid:
                    return pid
    raise AssertionError(f"no process {ns_pid} below worker {worker}")


def short_steps_chain(sleeps: int = 6) -> dict:
    """r.mapcalc, several 1 s sleeps, r.univar: every process ends before
    actinia's first status update (~5 s inside one process, or every 20th
    process), so the job stays `accepted` until it ends."""
    return chain(
        mapcalc("r_mapcalc", "baum=5"),
        *(sleep(f"sleep_{i}", 1) for i in range(sleeps)),
        univar("r_univar", "baum", "univar_baum"),
    )


def assert_baum_stats(stats: dict) -> None:
    """r.univar -g of baum = 5 on the 1500 x 1350 region."""
    assert stats["n"] == "2025000" and stats["null_cells"] == "0"
    assert float(stats["min"]) == float(stats["max"]) == 5.0
    assert float(stats["sum"]) == 5.0 * 2025000


def kill_accepted_job(dep, client, user: str, after_step: int = 2):
    """POST the short-steps chain, kill its work-horse once the interim
    result of ``after_step`` exists: the job is dead but `accepted`."""
    resp = client.post_chain("processing_async", short_steps_chain())
    status_url = resp.json()["urls"]["status"]
    store = store_of(dep, user, status_url)
    beat = heartbeat_of(dep, user, status_url)
    poll(lambda: after_step in store.steps(),
         f"interim result of step {after_step}")
    kill_and_wait(beat["pid"])
    return status_url, store


# -------------------------------------------------------------------- tests
def test_fail_on_one_worker_resume_on_the_other(stack_kvdb, missing_dir):
    """Iteration 1 fails on one worker; the PUT's iteration 2 lands on the
    other worker (round robin), restores the interim result written by
    the first and writes the persistent mapset."""
    client = stack_kvdb.client(USER)
    mapset = f"scaleout_{uuid.uuid4().hex[:8]}"
    failed = client.run_chain(f"mapsets/{mapset}/processing_async",
                              load_chain("pc_error_not_in_pc",
                                         dir=missing_dir))
    assert failed["status"] == "error", failed["message"]
    status_url = failed["urls"]["status"]
    missing_dir.mkdir()
    resp = client.put(status_url)
    assert resp.status_code == 200, resp.text
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]

    first = picked_of(stack_kvdb, USER[0], status_url, 1)
    second = picked_of(stack_kvdb, USER[0], status_url, 2)
    queues = {w["queue"] for w in stack_kvdb.state["workers"]}
    assert {first["queue"], second["queue"]} == queues  # both workers
    assert done["resume"]["steps"][0] == {"id": "r_mapcalc",
                                          "action": "reused"}
    assert done["resume"]["restored_interim_result"] == 0
    assert done["process_results"]["r_info_1"]["datatype"] == "CELL"
    assert_baum_stats(done["process_results"]["univar_baum"])
    assert_baum_stats(univar_of(client, f"baum@{mapset}"))


def test_killed_running_job_resumes_at_once(stack_kvdb):
    """kill -9 of rq's work-horse while actinia says `running`: nothing
    updates the status, the PUT sees the recorded pid gone and resumes."""
    client = stack_kvdb.client(USER)
    resp = client.post_chain("processing_async",
                             load_chain("sleep", seconds=120))
    status_url = resp.json()["urls"]["status"]
    client.wait_status(status_url, "running")
    beat = heartbeat_of(stack_kvdb, USER[0], status_url)
    assert beat["pidns"] == liveness.pid_space()["pidns"]
    supervisors = {w["pid"] for w in stack_kvdb.state["workers"]}
    # a work-horse of an actinia-worker (below its supervisor), not the API
    assert parent_pid(parent_pid(beat["pid"])) in supervisors
    store = store_of(stack_kvdb, USER[0], status_url)
    poll(lambda: 0 in store.steps(), "interim result of step 0")
    kill_and_wait(beat["pid"])
    assert client.request("GET", status_url).json()["status"] == "running"

    resp = client.put(status_url, load_chain("sleep", seconds=0))
    assert resp.status_code == 200, resp.text
    first = client.request("GET", f"{status_url}/1").json()["1"]
    assert first["status"] == "error"
    assert "no longer alive" in first["message"]
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["restored_interim_result"] == 0
    actions = [s["action"] for s in done["resume"]["steps"]]
    assert actions[:2] == ["reused", "new"]  # sleep_1 was changed
    assert done["process_results"]["r_info_1"]["datatype"] == "CELL"


def test_killed_accepted_job_resumes_from_last_interim_result(stack_kvdb):
    """The issue's broken case: a job of short steps is still `accepted`
    when its process is killed; after its heartbeat expired a PUT resumes
    it after the last complete interim result, and a second PUT is refused
    while the new iteration waits or runs."""
    client = stack_kvdb.client(USER)
    status_url, store = kill_accepted_job(stack_kvdb, client, USER[0])
    # the dead process's heartbeat expires: only the picked-up marker (and
    # job.json) tell this job from one still waiting in the queue
    beat = keys.heartbeat(USER[0], rid_of(status_url))
    poll(lambda: not kvdb(stack_kvdb).exists(beat), "heartbeat to expire",
         liveness.HEARTBEAT_TTL_SECONDS + 30)
    assert client.request("GET", status_url).json()["status"] == "accepted"
    last = max(store.steps())
    assert last >= 2

    dry = client.put(status_url + "?dry_run=true")
    assert dry.status_code == 200, dry.text
    plan = dry.json()["plan"]
    assert (plan["restore_snapshot"], plan["start"]) == (last, last + 1)
    resp = client.put(status_url)
    assert resp.status_code == 200, resp.text
    again = client.put(status_url)  # iteration 2 waits or runs: refused
    assert again.status_code == 404, again.text  # as actinia-core
    first = client.request("GET", f"{status_url}/1").json()["1"]
    assert first["status"] == "error"
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    actions = [s["action"] for s in done["resume"]["steps"]]
    assert actions == ["reused"] * (last + 1) + ["rerun"] * (
        len(actions) - last - 1)
    assert done["resume"]["restored_interim_result"] == last
    assert_baum_stats(done["process_results"]["univar_baum"])
    every = client.request("GET", status_url.replace("resource_id-", ""))
    assert sorted(every.json()) == ["1", "2"]


def test_killed_accepted_job_is_not_protected_by_resource_storage(
        stack_kvdb):
    """resource_storage keeps units of living and waiting jobs only: the
    interim results of a dead `accepted` job (its heartbeat still names the
    killed pid) are removed by DELETE."""
    client = stack_kvdb.client(USER2)
    status_url, store = kill_accepted_job(stack_kvdb, client, USER2[0])
    assert client.request("GET", status_url).json()["status"] == "accepted"
    listed = client.request("GET", "resource_storage").json()
    units = {u["resource_id"]: u
             for u in listed["process_results"]["interim_results"]}
    assert units[rid_of(status_url)]["job_status"] == "accepted"
    resp = client.request("DELETE", "resource_storage")
    assert resp.status_code == 200, resp.text
    # answered as actinia's async DELETE: the final document lists it
    final = client.wait(resp.json()["urls"]["status"])
    assert final["status"] == "finished", final
    result = final["process_results"]
    assert rid_of(status_url) in {u.get("resource_id")
                                  for u in result["removed"]}, result
    assert not result["skipped"], result
    assert store.steps() == []


def test_worker_in_own_pid_namespace(stack_kvdb_pidns):
    """One worker in its own pid namespace. A job queued behind a running
    one is refused as waiting; the killed running job is judged by its
    heartbeat alone (the API cannot see the worker's pids), so the PUT is
    refused while the heartbeat lives and accepted once it expired."""
    dep = stack_kvdb_pidns
    client = dep.client(USER)
    running = client.post_chain("processing_async",
                                load_chain("sleep", seconds=120))
    running_url = running.json()["urls"]["status"]
    beat = heartbeat_of(dep, USER[0], running_url)
    assert beat["pidns"] != liveness.pid_space()["pidns"]
    store = store_of(dep, USER[0], running_url)
    poll(lambda: 0 in store.steps(), "interim result of step 0")

    waiting = client.post_chain("processing_async",
                                load_chain("mapcalc_info"))
    waiting_url = waiting.json()["urls"]["status"]
    refused = client.put(waiting_url)
    assert refused.status_code == 404  # as actinia-core
    assert refused.json()["message"] == "Resource is accepted PUT not possible"
    assert "waiting in the queue" in refused.json()["detail"]

    kill_and_wait(host_pid(dep, beat["pid"]))
    heartbeat = keys.heartbeat(USER[0], rid_of(running_url))
    fixed = load_chain("sleep", seconds=0)
    refusals = 0
    deadline = time.monotonic() + 60
    while True:
        alive_before = kvdb(dep).exists(heartbeat)
        resp = client.put(running_url, fixed)
        alive_after = kvdb(dep).exists(heartbeat)
        if resp.status_code == 200:
            assert not alive_after, "resumed while the heartbeat lived"
            break
        assert resp.status_code == 404, resp.text  # as actinia-core
        if alive_before and alive_after:
            refusals += 1
            assert "alive" in resp.json()["detail"]
        assert time.monotonic() < deadline, "heartbeat never expired"
        time.sleep(0.2)
    assert refusals >= 1, "the pid was judged: no refusal while beating"
    assert client.wait(waiting_url)["status"] == "finished"
    done = client.wait(running_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["steps"][0] == {"id": "r_mapcalc",
                                          "action": "reused"}
    assert done["process_results"]["r_info_1"]["datatype"] == "CELL"


def test_ten_concurrent_puts_one_iteration(stack_kvdb, missing_dir):
    client = stack_kvdb.client(USER)
    failed = client.run_chain("processing_async",
                              load_chain("pc_error_not_in_pc",
                                         dir=missing_dir))
    status_url = failed["urls"]["status"]
    missing_dir.mkdir()
    with ThreadPoolExecutor(10) as pool:
        codes = sorted(pool.map(lambda _: client.put(status_url).status_code,
                                range(10)))
    # the losers meet the lock (409) or the new iteration, accepted (404)
    assert codes[0] == 200 and set(codes[1:]) <= {404, 409}, codes
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert_baum_stats(done["process_results"]["univar_baum"])
    every = client.request("GET", status_url.replace("resource_id-", ""))
    assert sorted(every.json()) == ["1", "2"]


def test_per_job_queue_resume(stack_per_job, missing_dir):
    """queue_type = per_job: each job has its queue job_queue_<resource_id>
    (one burst worker per iteration here); the resumed iteration uses the
    same queue and its interim results."""
    dep = stack_per_job
    client = dep.client(USER)
    resp = client.post_chain("processing_async",
                             load_chain("pc_error_not_in_pc",
                                        dir=missing_dir))
    status_url = resp.json()["urls"]["status"]
    queue = f"job_queue_{rid_of(status_url)}"
    stack.start_worker(dep.data, queue, burst=True)
    failed = client.wait(status_url)
    assert failed["status"] == "error", failed["message"]
    missing_dir.mkdir()
    assert client.put(status_url).status_code == 200
    stack.start_worker(dep.data, queue, burst=True)
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert picked_of(dep, USER[0], status_url, 2)["queue"] == queue
    assert done["resume"]["steps"][0] == {"id": "r_mapcalc",
                                          "action": "reused"}
    assert_baum_stats(done["process_results"]["univar_baum"])
