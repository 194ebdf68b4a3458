# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22 without a stack: the continuation decision, the attempt bound,
the config key, the path guard, waiting for valkey, and forked children
that drop the API's listening socket."""

from __future__ import annotations

import json
import os
import pickle
import socket

import pytest
import valkey

from actinia_resume_plugin import continuation, keys
from actinia_resume_plugin.config import ConfigError, read_config
from actinia_resume_plugin.inherited_sockets import listening_fds, register
from actinia_resume_plugin.worker import kvdb_retry, liveness, path_guard


class FakeKvdb(dict):
    def get(self, key):
        return super().get(key)

    def set(self, key, value, ex=None, nx=False):
        if nx and key in self:
            return False
        self[key] = value
        return True

    def delete(self, key):
        self.pop(key, None)

    def exists(self, key):
        return key in self


class FakeLogger:
    def __init__(self, docs=None, terminated=()):
        self.docs = dict(docs or {})
        self.terminated = set(terminated)

    def get(self, user_id, resource_id, iteration=None):
        doc = self.docs.get(int(iteration or 1))
        return pickle.dumps(doc) if doc is not None else None

    def commit(self, user_id, resource_id, iteration, document):
        self.docs[int(iteration)] = pickle.loads(document)

    def get_termination(self, user_id, resource_id, iteration=None):
        return int(iteration or 1) in self.terminated


class FakeTarget:
    def __init__(self):
        self.again = None
        self.gave_up = False

    def stale(self, *args):
        return False

    def run_again(self, info):
        self.again = info

    def give_up(self):
        self.gave_up = True


def dead_here():
    """The identity of a process of ours that is gone."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    start = liveness.process_start_time(pid)
    os.waitpid(pid, 0)
    return {**liveness.pid_space(), "pid": pid, "pid_start": start or "1",
            "iteration": 1}


def sweeper(docs, attempt=0, terminated=(), tmp_path="/nonexistent"):
    kvdb = FakeKvdb({keys.heartbeat("u", "r"): json.dumps(dead_here()),
                     keys.picked("u", "r", 1): json.dumps(dead_here())})
    logger = FakeLogger(docs, terminated)
    sweep = continuation.Sweeper(kvdb, kvdb, logger, 2, str(tmp_path))
    info = {"user_id": "u", "resource_id": "r", "iteration": 1,
            "attempt": attempt}
    return sweep, logger, info


RUNNING = {1: (200, {"status": "running", "message": "Running"})}


def test_lost_job_is_continued_as_a_new_iteration(tmp_path):
    sweep, logger, info = sweeper(RUNNING, tmp_path=tmp_path)
    target = FakeTarget()
    outcome = sweep._locked(info, False, target)
    assert outcome["action"] == "continued"
    assert logger.docs[1][1]["status"] == "error"
    assert continuation.attempt_text(1, 2) in logger.docs[1][1]["message"]
    assert logger.docs[2][1]["status"] == "accepted"
    assert target.again["iteration"] == 2
    assert target.again["continued"]["attempt"] == 1
    assert keys.put_lock("u", "r") not in sweep.kvdb  # released


def test_attempt_bound_leaves_the_job_to_a_put(tmp_path):
    sweep, logger, info = sweeper(RUNNING, attempt=2, tmp_path=tmp_path)
    target = FakeTarget()
    assert sweep._locked(info, False, target)["action"] == "bound reached"
    assert target.gave_up and target.again is None
    assert "used up" in logger.docs[1][1]["message"]
    assert 2 not in logger.docs


def test_terminated_job_is_never_continued(tmp_path):
    sweep, logger, info = sweeper(RUNNING, terminated={1}, tmp_path=tmp_path)
    target = FakeTarget()
    assert sweep._locked(info, False, target)["action"] == "terminated"
    assert logger.docs[1][1]["status"] == "terminated"
    assert target.again is None


@pytest.mark.parametrize("status", ["error", "finished", "terminated"])
def test_jobs_that_ended_are_not_touched(status, tmp_path):
    sweep, logger, info = sweeper({1: (200, {"status": status})},
                                  tmp_path=tmp_path)
    assert sweep._locked(info, True, FakeTarget()) is None
    assert list(logger.docs) == [1]


def test_a_put_holding_the_lock_wins(tmp_path):
    sweep, logger, info = sweeper(RUNNING, tmp_path=tmp_path)
    sweep.kvdb.set(keys.put_lock("u", "r"), "1")
    assert sweep._locked(info, False, FakeTarget()) is None
    assert 2 not in logger.docs


def test_missing_heartbeat_waits_for_the_grace(tmp_path, monkeypatch):
    """Without heartbeat (e.g. right after a valkey restart) a job is lost
    only after GRACE_SECONDS of sweeps; a living heartbeat resets it."""
    sweep, logger, info = sweeper(RUNNING, tmp_path=tmp_path)
    sweep.kvdb.delete(keys.heartbeat("u", "r"))
    clock = [100.0]
    monkeypatch.setattr(continuation.time, "monotonic", lambda: clock[0])
    assert sweep._locked(info, False, FakeTarget()) is None
    clock[0] += continuation.GRACE_SECONDS + 0.1
    assert sweep._locked(info, False, FakeTarget())["action"] == "continued"


def test_opted_in_transient_failure(tmp_path):
    killed = {"status": "error", "process_log": [{"return_code": 0},
                                                 {"return_code": -9}]}
    assert continuation.transient_failure(killed, ("killed",)) == "killed"
    assert continuation.transient_failure(killed, ()) is None
    own = {"status": "error", "process_log": [{"return_code": 1}]}
    assert continuation.transient_failure(own, ("killed",)) is None
    sweep, logger, info = sweeper({1: (200, killed)}, tmp_path=tmp_path)
    target = FakeTarget()
    outcome = sweep._locked(info, False, target, transient="killed")
    assert outcome["action"] == "continued"
    assert "transient" in logger.docs[1][1]["message"]
    assert target.again["transient"] is None
    sweep, logger, info = sweeper({1: (200, own)}, tmp_path=tmp_path)
    assert sweep._locked(info, False, FakeTarget(),
                         transient="killed") is None


def test_config_key_default_and_bounds(tmp_path):
    cfg = tmp_path / "a.cfg"
    cfg.write_text("[MISC]\nsave_interim_results = True\n")
    assert read_config(cfg).continue_after_worker_loss == 3
    cfg.write_text("[MISC]\ncontinue_after_worker_loss = 0\n")
    assert read_config(cfg).continue_after_worker_loss == 0
    cfg.write_text("[MISC]\ncontinue_after_errors = killed\n")
    assert read_config(cfg).continue_after_errors == ("killed",)
    cfg.write_text("[MISC]\ncontinue_after_errors = everything\n")
    with pytest.raises(ConfigError):
        read_config(cfg)
    for bad in ("-1", "many", "1000"):
        cfg.write_text(f"[MISC]\ncontinue_after_worker_loss = {bad}\n")
        with pytest.raises(ConfigError):
            read_config(cfg)


def test_path_guard(tmp_path):
    root = tmp_path / "resources"
    (root / "other").mkdir(parents=True)
    (tmp_path / "link").symlink_to(root)
    bad = [str(root / "other" / "job.json"), f"rules={root}/other/x",
           "resources/other", f"{tmp_path}/link/other", f"{root}/../resources",
           f"a,{root}"]
    for arg in bad:
        assert path_guard.forbidden_argument([arg], str(root),
                                             str(tmp_path)) == arg, arg
    for arg in ("expression=baum=5", "/tmp/x", "map=a@PERMANENT", "../x"):
        assert path_guard.forbidden_argument([arg], str(root),
                                             str(tmp_path / "w")) is None

    class Process:
        executable = "r.out.png"
        executable_params = [f"output={root}/other/x.png"]

    assert "resource storage" in path_guard.check_processes(
        [Process()], "user", str(root))
    assert str(root) not in path_guard.check_processes(
        [Process()], "admin", str(root))
    assert path_guard.check_processes([Process()], "superadmin",
                                      str(root)) is None


def test_job_waits_for_valkey(monkeypatch):
    monkeypatch.setattr(kvdb_retry, "RETRY_SECONDS", 0)
    calls = []

    class Logger:
        name = "x"

        def commit(self, value):
            calls.append(value)
            if len(calls) < 3:
                raise valkey.exceptions.ConnectionError("down")
            return "ok"

    client = kvdb_retry.RetryingClient(Logger())
    assert client.commit(1) == "ok" and len(calls) == 3
    assert client.name == "x"
    gives_up = kvdb_retry.RetryingClient(Logger(), outage_seconds=0)
    calls.clear()
    with pytest.raises(valkey.exceptions.ConnectionError):
        gives_up.commit(1)


def test_forked_children_drop_listening_sockets():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        assert server.fileno() in listening_fds()
        register()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if not listening_fds() else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert server.fileno() in listening_fds()  # the parent keeps it
    finally:
        server.close()


def test_demo_and_test_users_get_no_shell():
    """scripts/stack.py: the `user` role's allow list (its own part and
    what it keeps of actinia's default) holds no forbidden executable."""
    import stack

    allowed = set(stack.USER_MODULES.split(","))
    forbidden = set(stack.USER_FORBIDDEN.split(","))
    assert not allowed & forbidden
    assert {"grass", "cat", "touch", "mkdir", "sh", "bash"} <= forbidden


def test_compose_restarts_what_valkey_takes_down():
    """An actinia-worker exits when valkey goes away: the compose file
    must restart it (and the API and valkey)."""
    from pathlib import Path

    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[2]
                              / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        assert service.get("restart") in ("always", "unless-stopped"), name
