# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22: jobs continue by themselves after worker loss and valkey
restarts (kvdb queue, two supervised actinia-workers, scripts/stack.py).

Behaviour -> test:
- kill -9 of a worker and its work-horse mid-step: the supervisor starts a
  replacement on the same queue, the job is continued from its newest
  interim result and finishes with the right values:
  test_worker_killed_mid_step_continues_by_itself
- the bound on attempts ([MISC] continue_after_worker_loss = 2): two
  continuations, then the job is left to a PUT:
  test_attempts_are_bounded
- a job its user asked to terminate is never continued:
  test_terminated_job_is_not_continued
- valkey kill -9 + restart during a running job, with queued and resumed
  jobs waiting: 503 + Retry-After (never 500) while it is down, all jobs
  end right afterwards: test_valkey_restart_during_jobs
- a worker in its own pid namespace (a container): judged by the
  heartbeat's TTL: test_worker_in_other_pid_namespace_lost
- per_job queues: test_per_job_worker_lost
- local queue, gunicorn's master killed: the port is free at once, the job
  that died with the API is continued when it starts again:
  test_api_master_lost_in_local_mode

Each test prints the time from the kill to ``finished`` (no wall-clock
asserts); every wait polls for its event with a bounded timeout.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import stack

from actinia_resume_plugin import continuation
from actinia_resume_plugin.worker import liveness
from integration.test_scaleout import (
    assert_baum_stats,
    heartbeat_of,
    host_pid,
    kill_and_wait,
    missing_dir,  # noqa: F401, F811 (a fixture)
    parent_pid,
    poll,
    rid_of,
    store_of,
)

from .chains import chain as chain_of
from .chains import load_chain, mapcalc, sleep, univar
from .deployments import USER

MAX_ATTEMPTS = 2


@pytest.fixture(scope="module")
def stack_cont(stacks):
    return stacks.get("kvdb_continue", "--queue", "kvdb", "--workers", "2",
                      "--misc",
                      f"continue_after_worker_loss={MAX_ATTEMPTS}",
                      "--misc", "continue_after_errors=killed")


def chain(long_sleep: int = 8) -> dict:
    """r.mapcalc, a 1 s sleep, a long sleep (the step that is killed),
    r.univar of the map."""
    return chain_of(
        mapcalc("r_mapcalc", "baum=5"),
        sleep("sleep_short", 1),
        sleep("sleep_long", long_sleep),
        univar("r_univar", "baum", "univar_baum"),
    )


def iterations(client, status_url) -> dict:
    every = client.request("GET", status_url.replace("resource_id-", ""))
    return {int(k): v for k, v in every.json().items()}


def wait_iteration_final(client, status_url, iteration, timeout=120.0):
    def final():
        docs = iterations(client, status_url)
        doc = docs.get(iteration)
        if doc and doc["status"] in ("finished", "error", "terminated"):
            return doc
        return None
    return poll(final, f"iteration {iteration} to end", timeout)


def start_job(dep, client, long_sleep: int = 8):
    """POST :func:`chain`; return once its work-horse runs the long sleep
    (the interim result of step 1 exists): ``(status_url, store, beat)``."""
    resp = client.post_chain("processing_async", chain(long_sleep))
    status_url = resp.json()["urls"]["status"]
    store = store_of(dep, USER[0], status_url)
    beat = heartbeat_of(dep, USER[0], status_url)
    poll(lambda: 1 in store.steps(), "interim result of step 1")
    return status_url, store, beat


def assert_continued_right(done: dict, attempt: int = 1, of: int = 3):
    """The continuation finished after its reused steps, values right."""
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["continued"] == continuation.attempt_text(
        attempt, of)
    assert done["resume"]["restored_interim_result"] >= 1
    assert_baum_stats(done["process_results"]["univar_baum"])


def wait_continued(client, status_url, iteration) -> float:
    """When iteration ``iteration`` (a continuation) appeared."""
    poll(lambda: iteration in iterations(client, status_url),
         f"iteration {iteration}", 120)
    return time.monotonic()


def test_worker_killed_mid_step_continues_by_itself(stack_cont):
    dep = stack_cont
    client = dep.client(USER)
    status_url, _, beat = start_job(dep, client)
    horse = beat["pid"]
    worker = parent_pid(horse)  # the actinia-worker (rq), below its supervisor
    supervisors = {w["pid"] for w in dep.state["workers"]}
    assert parent_pid(worker) in supervisors
    killed_at = time.monotonic()
    os.kill(worker, signal.SIGKILL)  # a lost pod: worker and work-horse
    kill_and_wait(horse)

    continued = wait_continued(client, status_url, 2) - killed_at
    done = wait_iteration_final(client, status_url, 2)
    elapsed = time.monotonic() - killed_at
    print(f"\nworker kill -9 mid-step -> continued {continued:.1f} s, "
          f"-> finished {elapsed:.1f} s (the 8 s step runs again)")
    assert_continued_right(done, 1, MAX_ATTEMPTS)
    assert done["resume"]["continued_from_iteration"] == 1
    actions = [s["action"] for s in done["resume"]["steps"]]
    assert actions[:2] == ["reused", "reused"]
    first = iterations(client, status_url)[1]
    assert first["status"] == "error"
    assert continuation.REASON in first["message"]
    # the job ran on the replacement the supervisor started
    assert all(stack.worker_pid(w) != worker for w in current_workers(dep))


def current_workers(dep) -> list[dict]:
    return json.loads((dep.data / stack.STATE_FILE).read_text())["workers"]


def test_attempts_are_bounded(stack_cont):
    """kill -9 of the work-horse (OOM-killer style) in every iteration:
    continued MAX_ATTEMPTS times, then left to a PUT, which finishes it."""
    dep = stack_cont
    client = dep.client(USER)
    resp = client.post_chain("processing_async", chain(long_sleep=120))
    status_url = resp.json()["urls"]["status"]
    store = store_of(dep, USER[0], status_url)
    for iteration in range(1, MAX_ATTEMPTS + 2):
        beat = heartbeat_of(dep, USER[0], status_url, iteration)
        poll(lambda: 1 in store.steps(), "interim result of step 1")
        killed_at = time.monotonic()
        kill_and_wait(beat["pid"])
        ended = wait_iteration_final(client, status_url, iteration)
        print(f"\nwork-horse kill -9 in iteration {iteration} -> "
              f"decided: {time.monotonic() - killed_at:.1f} s")
        assert ended["status"] == "error", ended
        if iteration <= MAX_ATTEMPTS:
            assert continuation.attempt_text(iteration, MAX_ATTEMPTS) in \
                ended["message"]
    assert "used up" in ended["message"], ended["message"]
    docs = iterations(client, status_url)
    assert sorted(docs) == list(range(1, MAX_ATTEMPTS + 2))
    assert docs[2]["resume"]["continued"] == continuation.attempt_text(
        1, MAX_ATTEMPTS)
    # nothing continues it any more: a PUT does
    resp = client.put(status_url, chain(long_sleep=0))
    assert resp.status_code == 200, resp.text
    done = client.wait(status_url, iteration=MAX_ATTEMPTS + 2)
    assert done["status"] == "finished", done["message"]
    assert "continued" not in done["resume"]
    assert_baum_stats(done["process_results"]["univar_baum"])


def test_killed_step_is_continued_when_opted_in(stack_cont):
    """[MISC] continue_after_errors = killed: a step's process killed by
    SIGKILL (the OOM killer's choice) ends the iteration with an error of
    its own, which is continued like a lost worker."""
    dep = stack_cont
    client = dep.client(USER)
    status_url, _, beat = start_job(dep, client, long_sleep=12)
    sleeping = poll(lambda: [p for p in stack.descendants([beat["pid"]])
                             if _comm(p) == "sleep"], "the long sleep step")
    killed_at = time.monotonic()
    os.kill(sleeping[0], signal.SIGKILL)
    first = wait_iteration_final(client, status_url, 1)
    assert first["status"] == "error"
    continued = wait_continued(client, status_url, 2) - killed_at
    done = wait_iteration_final(client, status_url, 2)
    print(f"\nstep process kill -9 -> continued {continued:.1f} s, -> "
          f"finished {time.monotonic() - killed_at:.1f} s")
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["continued"] == continuation.attempt_text(
        1, MAX_ATTEMPTS, continuation.TRANSIENT_FAILURES["killed"])
    assert done["resume"]["restored_interim_result"] == 1
    assert_baum_stats(done["process_results"]["univar_baum"])


def test_own_error_is_not_continued(stack_cont, missing_dir):  # noqa: F811
    client = stack_cont.client(USER)
    failed = client.run_chain("processing_async",
                              load_chain("pc_error_not_in_pc",
                                         dir=missing_dir))
    assert failed["status"] == "error"
    deadline = time.monotonic() + 3 * continuation.SWEEP_SECONDS
    while time.monotonic() < deadline:
        assert sorted(iterations(client, failed["urls"]["status"])) == [1]
        time.sleep(0.5)


def test_terminated_job_is_not_continued(stack_cont):
    dep = stack_cont
    client = dep.client(USER)
    resp = client.post_chain("processing_async", chain(long_sleep=120))
    status_url = resp.json()["urls"]["status"]
    beat = heartbeat_of(dep, USER[0], status_url)
    assert client.request("DELETE", status_url).status_code == 200
    kill_and_wait(beat["pid"])
    ended = wait_iteration_final(client, status_url, 1)
    assert ended["status"] == "terminated", ended
    # a few sweeps later there is still no second iteration
    deadline = time.monotonic() + 3 * continuation.SWEEP_SECONDS
    while time.monotonic() < deadline:
        assert sorted(iterations(client, status_url)) == [1]
        time.sleep(0.5)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _no_500_while_down(dep, client, status_url) -> list[int]:
    """Requests to our endpoints while valkey is down: 503 with
    Retry-After, never 500."""
    codes = []
    for method, url, kwargs in (
            ("PUT", status_url + "?dry_run=true", {}),
            ("PUT", status_url, {}),
            ("GET", "resource_storage", {}),
            ("DELETE", "resource_storage?olderthan=30", {}),
            ("POST", client.project_url("processing_async"),
             {"json": chain()}),
            ("GET", status_url, {})):
        resp = client.request(method, url, timeout=30, **kwargs)
        codes.append(resp.status_code)
        if method != "GET" or "resource_storage" in url:
            assert resp.status_code == 503, (method, url, resp.text)
            assert int(resp.headers["Retry-After"]) > 0
            assert "valkey" in resp.json()["message"]
        assert resp.status_code != 500, (method, url, resp.text)
    return codes


def test_valkey_restart_during_jobs(stack_cont, missing_dir):  # noqa: F811
    dep = stack_cont
    client = dep.client(USER)
    # a failed job, resumed just before the outage: its iteration waits
    failed = client.run_chain("processing_async",
                              load_chain("pc_error_not_in_pc",
                                         dir=missing_dir))
    assert failed["status"] == "error"
    missing_dir.mkdir()
    running = [client.post_chain("processing_async", chain(long_sleep=6))
               .json()["urls"]["status"] for _ in range(3)]
    store = store_of(dep, USER[0], running[0])
    beat = heartbeat_of(dep, USER[0], running[0])
    poll(lambda: 1 in store.steps(), "interim result of step 1")
    sleeping = poll(lambda: [p for p in stack.descendants([beat["pid"]])
                             if _comm(p) == "sleep"], "the long sleep step")
    assert client.put(failed["urls"]["status"]).status_code == 200

    valkey_pid = json.loads(
        (dep.data / stack.STATE_FILE).read_text())["valkey_pid"]
    killed_at = time.monotonic()
    os.kill(valkey_pid, signal.SIGKILL)
    poll(lambda: not stack.process_running(valkey_pid), "valkey to die")
    codes = _no_500_while_down(dep, client, running[0])
    # down until the running step has ended: its job must write its status
    # (and its heartbeat) while valkey is away
    poll(lambda: not any(stack.process_running(p) for p in sleeping),
         "the step running during the outage to end", 60)
    codes += _no_500_while_down(dep, client, running[0])
    print(f"\nwhile valkey was down: {codes}")
    stack.start_valkey(dep.data)
    restarted_at = time.monotonic()

    ends = {}
    for url in [*running, failed["urls"]["status"]]:
        def final(url=url):
            docs = iterations(client, url)
            doc = docs[max(docs)]
            return doc if doc["status"] in ("finished", "error",
                                            "terminated") else None
        doc = poll(final, f"{url} to end", 180)
        assert doc["status"] == "finished", doc["message"]
        ends[rid_of(url)] = (time.monotonic() - killed_at,
                             max(iterations(client, url)))
        if "univar_baum" in doc.get("process_results", {}):
            assert_baum_stats(doc["process_results"]["univar_baum"])
    print(f"valkey down for {restarted_at - killed_at:.1f} s; kill -> "
          "finished (s, iteration): "
          + ", ".join(f"{t:.1f} ({n})" for t, n in ends.values()))


@pytest.fixture(scope="module")
def stack_pidns_cont(stacks):
    return stacks.get("kvdb_pidns_continue", "--queue", "kvdb", "--workers",
                      "1", "--worker-pid-namespace")


def test_worker_in_other_pid_namespace_lost(stack_pidns_cont):
    """The worker runs in a pid namespace of its own (a container): the
    API cannot see its pids, so the job is judged lost by its heartbeat's
    TTL (plus the sweep's grace)."""
    dep = stack_pidns_cont
    client = dep.client(USER)
    status_url, _, beat = start_job(dep, client, long_sleep=30)
    horse = host_pid(dep, beat["pid"])
    started = liveness.process_start_time(horse)
    killed_at = time.monotonic()
    # its actinia-worker is the namespace's init: the horse dies with it
    os.kill(parent_pid(horse), signal.SIGKILL)
    poll(lambda: liveness.process_start_time(horse) != started,
         "the work-horse to die")
    continued = wait_continued(client, status_url, 2) - killed_at
    done = wait_iteration_final(client, status_url, 2)
    print(f"\nworker in own pid namespace kill -9 -> continued "
          f"{continued:.1f} s (heartbeat TTL {liveness.HEARTBEAT_TTL_SECONDS}"
          f" s + grace {continuation.GRACE_SECONDS:.0f} s + sweep), -> "
          f"finished {time.monotonic() - killed_at:.1f} s")
    assert_continued_right(done)


@pytest.fixture(scope="module")
def stack_per_job_cont(stacks):
    return stacks.get("per_job_continue", "--queue", "per_job")


def test_per_job_worker_lost(stack_per_job_cont):
    """queue_type = per_job: an orchestrator starts a worker per job; the
    job's worker is lost mid-step, a new one on the job's queue continues
    it."""
    dep = stack_per_job_cont
    client = dep.client(USER)
    # the job waits for its worker: start it once the job is queued
    resp = client.post_chain("processing_async", chain())
    status_url = resp.json()["urls"]["status"]
    queue = f"job_queue_{rid_of(status_url)}"
    first = stack.start_worker(dep.data, queue, burst=True)
    beat = heartbeat_of(dep, USER[0], status_url)
    store = store_of(dep, USER[0], status_url)
    poll(lambda: 1 in store.steps(), "interim result of step 1")
    killed_at = time.monotonic()
    os.kill(first["pid"], signal.SIGKILL)
    kill_and_wait(beat["pid"])
    continued = wait_continued(client, status_url, 2) - killed_at
    stack.start_worker(dep.data, queue, burst=True)  # the orchestrator
    done = wait_iteration_final(client, status_url, 2)
    print(f"\nper_job worker kill -9 -> continued {continued:.1f} s, "
          f"-> finished {time.monotonic() - killed_at:.1f} s")
    assert_continued_right(done)


@pytest.fixture(scope="module")
def stack_local(stacks):
    return stacks.get("local_continue", "--save-interim-results", "True")


def port_free(port: int) -> bool:
    """True when a new API could bind ``port`` (as gunicorn does)."""
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_api_master_lost_in_local_mode(stack_local):
    """kill -9 of gunicorn's master (local queue): no process keeps the
    port, though actinia's queue child outlives the API; the job that died
    with the API is continued when the API is started again."""
    dep = stack_local
    client = dep.client(USER)
    status_url, _, beat = start_job(dep, client)
    state = json.loads((dep.data / stack.STATE_FILE).read_text())
    master = state["api_pid"]
    api_processes = stack.descendants([master])
    assert beat["pid"] in api_processes
    killed_at = time.monotonic()
    os.kill(master, signal.SIGKILL)
    poll(lambda: port_free(state["port"]), "the API's port to be free", 60)
    # gunicorn's worker sees its master gone and exits, and may end the
    # running job on its way out ("terminated by server shutdown");
    # whatever is left dies too (a lost container): the job died with the
    # API either way
    left = [p for p in api_processes if stack.process_running(p)]
    print(f"\nport free {time.monotonic() - killed_at:.1f} s after the "
          f"master's kill; {len(left)} of its processes still running")
    # the job dies with what is left of the API (a lost container or host)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    poll(lambda: not any(stack.process_running(p) for p in left),
         "the API's processes to die")
    stack.start_api(dep.data)
    continued = wait_continued(client, status_url, 2) - killed_at
    done = wait_iteration_final(client, status_url, 2)
    print(f"API master kill -9 -> continued {continued:.1f} s (API "
          f"restarted) -> finished {time.monotonic() - killed_at:.1f} s")
    assert_continued_right(done)
