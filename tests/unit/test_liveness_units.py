# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests: liveness decisions and grouping processes into steps."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from types import SimpleNamespace

from actinia_resume_plugin import keys
from actinia_resume_plugin.worker import liveness
from actinia_resume_plugin.worker.units import group_processes


class FakeKvdb(dict):
    def set(self, key, value, ex=None):
        self[key] = value

    def delete(self, key):
        self.pop(key, None)

    def pipeline(self, transaction=True):
        kvdb = self

        class Pipe:
            def __init__(self):
                self.calls = []

            def set(self, *args, **kwargs):
                self.calls.append((args, kwargs))

            def execute(self):
                for args, kwargs in self.calls:
                    kvdb.set(*args, **kwargs)

        return Pipe()


class BrokenKvdb:
    def set(self, *args, **kwargs):
        raise ConnectionError("kvdb down")

    delete = get = set

    def pipeline(self, transaction=True):
        raise ConnectionError("kvdb down")


def here(pid, pid_start="1"):
    """An identity in our own pid space."""
    return {**liveness.pid_space(), "pid": pid, "pid_start": pid_start}


def test_no_heartbeat_means_dead():
    assert not liveness.job_is_alive(FakeKvdb(), "u", "r")


def test_heartbeat_of_living_worker_means_alive():
    kvdb = FakeKvdb()
    with liveness.Heartbeat(kvdb, "u", "r", 2):
        assert liveness.job_is_alive(kvdb, "u", "r")
    assert not liveness.job_is_alive(kvdb, "u", "r")  # removed on exit


def test_heartbeat_of_killed_worker_on_this_host_means_dead():
    proc = subprocess.Popen(["sleep", "30"])
    identity = here(proc.pid, liveness.process_start_time(proc.pid))
    kvdb = FakeKvdb({liveness.heartbeat_key("u", "r"): json.dumps(identity)})
    assert liveness.job_is_alive(kvdb, "u", "r")
    proc.kill()
    proc.wait()
    assert not liveness.job_is_alive(kvdb, "u", "r")


def test_recycled_pid_is_not_the_worker():
    identity = liveness.worker_identity()
    identity["pid_start"] = "1"  # another process's start time
    assert liveness.identity_is_dead(identity)
    assert not liveness.identity_is_dead(liveness.worker_identity())


def test_other_host_is_never_proven_dead():
    identity = {**here(os.getpid()), "host": "elsewhere"}
    assert not liveness.identity_is_dead(identity)


def test_same_host_other_pid_namespace_or_boot_is_never_judged_by_pid():
    """Containers share host names: only the same boot and pid namespace
    make a pid comparable; records without them are judged by TTL only."""
    for other in ({"pidns": "4026531836x"}, {"boot_id": "another-boot"},
                  {"pidns": None}, {"boot_id": None}):
        identity = {**here(os.getpid()), **other}
        assert identity["host"] == socket.gethostname()
        assert not liveness.identity_is_dead(identity), other
    legacy = {"host": socket.gethostname(), "pid": os.getpid(),
              "pid_start": "1"}
    assert not liveness.identity_is_dead(legacy)
    assert liveness.identity_is_dead(here(os.getpid()))


def test_heartbeat_marks_the_iteration_picked_up():
    kvdb = FakeKvdb()
    with liveness.Heartbeat(kvdb, "u", "r", None):
        picked = json.loads(kvdb[keys.picked("u", "r", 1)])
        assert picked["pid"] == os.getpid() and picked["iteration"] == 1
    assert keys.picked("u", "r", 1) in kvdb  # kept after the job ended
    assert keys.heartbeat("u", "r") not in kvdb


def test_heartbeat_failures_are_logged_not_raised(caplog):
    with caplog.at_level("WARNING", logger="actinia_resume_plugin"):
        with liveness.Heartbeat(BrokenKvdb(), "u", "r", 3) as beat:
            beat._set()
            assert beat.failures >= 1
    text = caplog.text
    assert "picked up" in text and "could not be written" in text
    assert "not removed" in text


def judge(kvdb, status, record=None, iteration=2):
    return liveness.judge_job(kvdb, "u", "r", iteration, status, record)[0]


def test_judge_accepted_job_never_picked_up_is_waiting():
    assert judge(FakeKvdb(), "accepted") is liveness.JobState.WAITING
    # job.json of the previous iteration says nothing about this one
    old = {"status": "running", "iteration": 1, "worker": here(1)}
    assert judge(FakeKvdb(), "accepted", old) is liveness.JobState.WAITING


def test_judge_picked_up_job_without_heartbeat_is_dead_whatever_status():
    kvdb = FakeKvdb({keys.picked("u", "r", 2): json.dumps(here(1))})
    for status in ("accepted", "running"):
        assert judge(kvdb, status) is liveness.JobState.DEAD
    record = {"status": "running", "iteration": 2, "worker": here(1)}
    assert judge(FakeKvdb(), "accepted", record) is liveness.JobState.DEAD


def test_judge_heartbeat_of_this_iteration():
    beat = {**liveness.worker_identity(), "iteration": 2}
    kvdb = FakeKvdb({keys.heartbeat("u", "r"): json.dumps(beat)})
    assert judge(kvdb, "accepted") is liveness.JobState.ALIVE
    dead = {**here(os.getpid()), "iteration": 2}
    kvdb = FakeKvdb({keys.heartbeat("u", "r"): json.dumps(dead)})
    assert judge(kvdb, "running") is liveness.JobState.DEAD
    elsewhere = {**dead, "pidns": "other"}
    kvdb = FakeKvdb({keys.heartbeat("u", "r"): json.dumps(elsewhere)})
    assert judge(kvdb, "running") is liveness.JobState.ALIVE


def test_judge_ignores_a_stale_heartbeat_of_an_earlier_iteration():
    """Iteration 1 died, a PUT queued iteration 2; the dying beat of 1 must
    not make iteration 2 look dead (a second PUT would start iteration 3)."""
    dead = {**here(os.getpid()), "iteration": 1}
    kvdb = FakeKvdb({keys.heartbeat("u", "r"): json.dumps(dead)})
    assert judge(kvdb, "accepted") is liveness.JobState.WAITING


def test_judge_running_without_any_record_is_unproven():
    assert judge(FakeKvdb(), "running") is liveness.JobState.UNPROVEN


def proc(executable, pid=None):
    return SimpleNamespace(executable=executable, id=pid)


def test_group_processes_puts_imports_first_and_splits_them():
    chain = [
        {"id": "imp1", "module": "importer",
         "inputs": [{"import_descr": {"type": "vector"}, "value": "a"}]},
        {"id": "calc", "module": "r.mapcalc", "inputs": []},
        {"id": "imp2", "module": "importer",
         "inputs": [{"import_descr": {"type": "raster"}, "value": "b"},
                    {"import_descr": {"type": "vector"}, "value": "c"}]},
        {"id": "exp", "module": "exporter", "outputs": []},
        {"id": "info", "module": "r.info"},
    ]
    processes = [
        proc("/usr/bin/wget"), proc("/bin/mv"), proc("v.import", "v_import_a"),
        proc("/usr/bin/wget"), proc("r.import", "r_import_b"),
        proc("v.import", "v_import_c"),
        proc("r.mapcalc", "calc"), proc("r.info", "info"),
    ]
    units = group_processes(chain, processes)
    assert [u.step_id for u in units] == ["imp1", "imp2", "calc", "exp",
                                          "info"]
    assert [len(u.processes) for u in units] == [3, 3, 1, 0, 1]
    assert units[1].processes[-1].id == "v_import_c"
    assert [u.position for u in units] == [0, 1, 2, 3, 4]


def test_group_processes_falls_back_to_one_import_unit():
    chain = [
        {"id": "imp1", "module": "importer",
         "inputs": [{"import_descr": {"type": "landsat"}, "value": "a"}]},
        {"id": "imp2", "module": "importer",
         "inputs": [{"import_descr": {"type": "sentinel2"}, "value": "b"}]},
        {"id": "calc", "module": "r.mapcalc"},
    ]
    processes = [proc("/usr/bin/wget"), proc("i.landsat.import"),
                 proc("r.mapcalc", "calc")]
    units = group_processes(chain, processes)
    assert [len(u.processes) for u in units] == [2, 0, 1]


class FakeResourceLogger:
    """actinia's resource logger: ``user/rid`` (iteration 1), ``user/rid/n``."""

    def __init__(self, docs):
        import pickle

        self.docs = {k: pickle.dumps([200, {"status": v}])
                     for k, v in docs.items()}
        self.db = SimpleNamespace(get_keys_from_pattern=lambda p: list(
            self.docs))

    def get(self, user, rid, number):
        key = f"{user}/{rid}" if number == 1 else f"{user}/{rid}/{number}"
        return self.docs.get(key)


def test_resource_storage_protects_living_and_waiting_jobs_only(tmp_path):
    from actinia_resume_plugin.api.resource_storage import make_protect

    logger = FakeResourceLogger({
        "u/resource_id-dead": "accepted",
        "u/resource_id-waiting": "accepted",
        "u/resource_id-waiting/2": "accepted",
        "u/resource_id-alive": "running",
        "u/resource_id-other": "running",
        "u/resource_id-done": "error",
    })
    beat = {**liveness.worker_identity(), "iteration": 1}
    kvdb = FakeKvdb({
        keys.picked("u", "resource_id-dead", 1): json.dumps(here(1)),
        keys.picked("u", "resource_id-waiting", 1): json.dumps(here(1)),
        keys.heartbeat("u", "resource_id-alive"): json.dumps(beat),
    })
    rids = ["resource_id-dead", "resource_id-waiting", "resource_id-alive",
            "resource_id-other", "resource_id-done"]
    reasons = make_protect(logger, kvdb, tmp_path)("u", rids)
    assert set(reasons) == {"resource_id-waiting", "resource_id-alive",
                            "resource_id-other"}
    assert "waiting in the queue" in reasons["resource_id-waiting"]
    assert "alive" in reasons["resource_id-alive"]


def test_group_processes_keeps_list_order_of_repeated_ids():
    """[x: a = 1, y: b = a * 2, x: r.univar b] runs in list order."""
    chain = [{"id": "x", "module": "r.mapcalc"},
             {"id": "y", "module": "r.mapcalc"},
             {"id": "x", "module": "r.univar"},
             {"id": "x", "module": "exporter"},
             {"id": "x", "module": "r.info"}]
    processes = [proc("r.mapcalc", "x"), proc("r.mapcalc", "y"),
                 proc("r.univar", "x"), proc("r.info", "x")]
    units = group_processes(chain, processes)
    assert [u.chain_index for u in units] == [0, 1, 2, 3, 4]
    assert [[p.executable for p in u.processes] for u in units] == [
        ["r.mapcalc"], ["r.mapcalc"], ["r.univar"], [], ["r.info"]]
