"""Unit tests: liveness decisions and grouping processes into steps."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from types import SimpleNamespace

from actinia_resume_plugin.worker import liveness
from actinia_resume_plugin.worker.units import group_processes


class FakeKvdb(dict):
    def set(self, key, value, ex=None):
        self[key] = value

    def delete(self, key):
        self.pop(key, None)


def test_no_heartbeat_means_dead():
    assert not liveness.job_is_alive(FakeKvdb(), "u", "r")


def test_heartbeat_of_living_worker_means_alive():
    kvdb = FakeKvdb()
    with liveness.Heartbeat(kvdb, "u", "r", 2):
        assert liveness.job_is_alive(kvdb, "u", "r")
    assert not liveness.job_is_alive(kvdb, "u", "r")  # removed on exit


def test_heartbeat_of_killed_worker_on_this_host_means_dead():
    proc = subprocess.Popen(["sleep", "30"])
    identity = {"host": socket.gethostname(), "pid": proc.pid,
                "pid_start": liveness.process_start_time(proc.pid)}
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
    identity = {"host": "elsewhere", "pid": os.getpid(), "pid_start": "1"}
    assert not liveness.identity_is_dead(identity)


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
