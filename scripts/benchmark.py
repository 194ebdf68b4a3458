#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: actinia-core's built-in interim results vs actinia-resume-plugin.

Three arms, each a real stack (scripts/stack.py) on this machine, all
loading the same plugins apart from ours:

  nosave   actinia-core + actinia_module_plugin, save_interim_results = False
  builtin  actinia-core + actinia_module_plugin, save_interim_results = True
  ours     actinia-core + actinia_module_plugin + actinia_resume_plugin,
           save_interim_results = True (the resume adopts the kept mapset)
  fallback the same stack as ours; the failed job's kept mapset is removed
           before the PUT (another host, retention, quota): the resume
           restores from the store

Two workloads (ephemeral processing_async, each a failing chain and then a
PUT that fixes the last step: a one-step resume):

  big    g.region 6000x6000, four random DCELL rasters (a 1.15 GB mapset),
         g.region 1150x1150, ten random DCELL rasters (~10 MB each), a
         failing r.univar.
  many   g.region 4x4, ONE `exe` step (/bin/sh) running r.mapcalc with 200
         expressions per call (file=-) until 10,200 FCELL maps exist
         (10 files + 1 dir each: >= 102,000 files), then eight steps that
         each add one tiny CELL raster (7 files + 1 dir), a failing
         r.univar; the PUT reads one of the 10,200 maps back.

Rounds are interleaved (round 1: nosave, builtin, ours; round 2: ...); every
figure is the median over the rounds with the spread (min-max). Page cache:
before each compared operation (every PUT, the `cp -a` it is compared to) the
cache is dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) when permitted,
else both are measured warm (the same data read just before by both).

Measured (per workload):
  per-step overhead   start(i+1) - start(i) - run_time(i) (step starts seen
                      in /proc, run_time from process_log), median over the
                      measured steps, minus the same for `nosave` in the
                      same round ("no baseline" without the nosave arm)
  names per snapshot  ours: new objects + new object fan dirs + step dir +
                      manifest.json (from the manifests; their sum is checked
                      against a walk of the interim root); built-in: the
                      names of its (whole-mapset) interim copy
  restore vs cp -a    ours' resume.restore_seconds vs `cp -a` of the same
                      mapset (reconstructed from the last interim result)
  PUT -> finished     PUT request -> iteration 2 final in the status store
  peak RSS growth     of the job process (parent of the step processes):
                      peak VmHWM - VmRSS when its first step started
  resource_storage    GET /resource_storage time; its `used` vs an
                      independent walk (README's definition of `used`)

Usage: scripts/benchmark [--small] [--rounds N] [--workloads big,many]
                         [--only nosave,builtin,ours] [--many-builtin-rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "src"))

import stack  # noqa: E402
from actinia_client import ActiniaClient  # noqa: E402
from disk_usage import used_bytes  # noqa: E402

from actinia_resume_plugin.store import SnapshotStore  # noqa: E402
from actinia_resume_plugin.store.snapshot_store import (  # noqa: E402
    MANIFEST_NAME,
    STEPS_DIR,
)

AUTH = ("actinia-gdi", "actinia-gdi")
EXTENT = {"n": 228500, "s": 215000, "w": 630000, "e": 645000}
ARMS = {
    "nosave": ["--plugins", "actinia_module_plugin",
               "--save-interim-results", "False"],
    "builtin": ["--plugins", "actinia_module_plugin",
                "--save-interim-results", "True"],
    "ours": ["--plugins", "actinia_module_plugin,actinia_resume_plugin",
             "--save-interim-results", "True"],
}
ARMS["fallback"] = ARMS["ours"]
#: arms that run on another arm's stack
SHARED = {"fallback": "ours"}
#: PUT -> resumed step running, with a kept mapset (issue 23)
PUT_TO_STEP_TARGET = {"big": 0.4, "many": 1.5}
MB = 1024 * 1024


# ------------------------------------------------------------ workloads
@dataclass
class Workload:
    """A failing chain, its fix (last step changed) and what to measure."""

    name: str
    description: str
    failing: dict
    fixed: dict
    tokens: list  # per step of the failing chain: unique cmdline text
    put_token: str  # the fixed last step's cmdline text
    measured: list  # step indices whose overhead is "the per-step overhead"
    overhead_target: float
    check: Callable[[dict], None]  # checks the resumed job's results
    poll_disk: bool = True
    big_step: int | None = None  # a step that adds most of the mapset


def _region(side: int) -> tuple[dict, str]:
    return ({"id": f"region_{side}", "module": "g.region", "inputs": [
        *({"param": k, "value": str(v)} for k, v in EXTENT.items()),
        {"param": "rows", "value": str(side)},
        {"param": "cols", "value": str(side)}]}, f"rows={side} ")


def _mapcalc(name: str, expression: str, flags: str = "") -> dict:
    step = {"id": name, "module": "r.mapcalc", "inputs": [
        {"param": "expression", "value": f"{name} = {expression}"}]}
    if flags:
        step["flags"] = flags
    return step


def _univar(raster: str) -> tuple[dict, str]:
    return ({"id": "univar", "module": "r.univar", "flags": "g",
             "inputs": [{"param": "map", "value": raster}],
             "stdout": {"id": "univar", "format": "kv", "delimiter": "="}},
            f"map={raster}")


def _chains(steps, tokens, failing_map, fixed_map):
    bad, bad_token = _univar(failing_map)
    good, good_token = _univar(fixed_map)
    failing = {"version": "1", "list": [*steps, bad]}
    fixed = {"version": "1", "list": [*steps, good]}
    return failing, fixed, [*tokens, bad_token], good_token


def big_workload(small: bool) -> Workload:
    big, side = (2000, 400) if small else (6000, 1150)
    steps, tokens = [], []
    for s, t in [_region(big)]:
        steps.append(s)
        tokens.append(t)
    for i in range(1, 5):
        steps.append(_mapcalc(f"big_{i}", "rand(0.0, 1.0)", "s"))
        tokens.append(f"big_{i} = rand")
    s, t = _region(side)
    steps.append(s)
    tokens.append(t)
    for i in range(1, 11):
        steps.append(_mapcalc(f"small_{i}", "rand(0.0, 1.0)", "s"))
        tokens.append(f"small_{i} = rand")
    failing, fixed, tokens, put_token = _chains(
        steps, tokens, "no_such_map", "small_10")

    def check(doc):
        mean = float(doc["process_results"]["univar"]["mean"])
        assert 0.45 < mean < 0.55, mean

    return Workload(
        name="big",
        description=(
            f"g.region {big}x{big}, 4 random DCELL rasters, g.region "
            f"{side}x{side}, 10 random DCELL rasters, failing r.univar; PUT "
            "fixes it"),
        failing=failing, fixed=fixed, tokens=tokens, put_token=put_token,
        measured=list(range(len(tokens) - 1)), overhead_target=0.2,
        check=check)


#: FCELL maps made by the "many" step per r.mapcalc call (each open output
#: map holds file descriptors; 200 stays far below ulimit -n 1024).
BATCH = 200


def many_workload(small: bool, tiny_steps: int = 8) -> Workload:
    batches = 10 if small else 51  # 2,000 / 10,200 FCELL maps
    script = (
        ": many_files_step; b=0; "
        f"while [ $b -lt {batches} ]; do i=0; "
        f"while [ $i -lt {BATCH} ]; do "
        f'echo "t_${{b}}_$i = float($b * {BATCH} + $i) / 3"; i=$((i+1)); '
        "done | r.mapcalc file=- --quiet || exit 1; b=$((b+1)); done")
    region, region_token = _region(4)
    steps = [region, {"id": "many_maps", "exe": "/bin/sh",
                      "params": ["-c", script]}]
    tokens = [region_token, "many_files_step"]
    for k in range(1, tiny_steps + 1):
        steps.append(_mapcalc(f"add_{k}", str(k)))
        tokens.append(f"add_{k} = {k}")
    probe_b, probe_i = batches - 3, 123
    failing, fixed, tokens, put_token = _chains(
        steps, tokens, "no_such_map", f"t_{probe_b}_{probe_i}")
    expected = float(probe_b * BATCH + probe_i) / 3

    def check(doc):
        stats = doc["process_results"]["univar"]
        assert int(stats["n"]) == 16, stats
        assert abs(float(stats["mean"]) - expected) < 1e-3, (stats, expected)

    return Workload(
        name="many",
        description=(
            f"g.region 4x4; one `exe` step (/bin/sh: r.mapcalc file=- with "
            f"{BATCH} expressions per call) makes {batches * BATCH:,} FCELL "
            f"maps (10 files + 1 dir each); {tiny_steps} steps that each add "
            "one tiny CELL raster (7 files + 1 dir); a failing r.univar; PUT "
            "fixes it (reads one of the many maps back)"),
        failing=failing, fixed=fixed, tokens=tokens, put_token=put_token,
        measured=list(range(2, 2 + tiny_steps)), overhead_target=0.5,
        check=check, poll_disk=False, big_step=1)


# ------------------------------------------------------------ measuring
def walk_counts(path: Path) -> dict:
    """Names, files, dirs and bytes below ``path`` (hard links once)."""
    seen, out = set(), {"names": 0, "files": 0, "dirs": 0, "bytes": 0,
                        "logical_bytes": 0}
    for dirpath, dirnames, filenames in os.walk(path):
        out["dirs"] += len(dirnames)
        out["names"] += len(dirnames) + len(filenames)
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            out["files"] += 1
            out["logical_bytes"] += st.st_size
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                out["bytes"] += st.st_size
    return out


def disk_bytes(path: Path) -> int:
    return walk_counts(path)["bytes"]


class DiskPoller(threading.Thread):
    """Peak bytes below a directory (only for workloads with few files:
    a walk of 100,000 files would compete with the job for the CPU)."""

    def __init__(self, path: Path, interval: float = 0.2):
        super().__init__(daemon=True)
        self.path, self.interval = path, interval
        self.peak = 0
        self.stop_ = threading.Event()

    def run(self):
        while not self.stop_.is_set():
            self.peak = max(self.peak, disk_bytes(self.path))
            self.stop_.wait(self.interval)

    def stop(self):
        self.stop_.set()
        self.join()
        self.peak = max(self.peak, disk_bytes(self.path))


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


class ProcWatcher(threading.Thread):
    """Records when a process whose command line contains a token appears
    (the step processes of the job), and the job process: the parent of
    the first step process seen."""

    def __init__(self, tokens: list[str], interval: float = 0.005):
        super().__init__(daemon=True)
        self.tokens = list(tokens)
        self.interval = interval
        self.first_seen: dict[str, float] = {}
        self.matched: dict[str, str] = {}  # token -> the command it was in
        self.job_pid: int | None = None
        self.stop_ = threading.Event()
        self._checked: dict[int, float] = {}

    def run(self):
        while not self.stop_.is_set():
            now = time.monotonic()
            for name in os.listdir("/proc"):
                if not name.isdigit():
                    continue
                pid = int(name)
                seen = self._checked.setdefault(pid, now)
                if now - seen > 1.0:  # fork+exec done long ago
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        cmd = fh.read().replace(b"\0", b" ").decode(
                            errors="replace") + " "
                except OSError:
                    continue
                for tok in self.tokens:
                    if tok not in self.first_seen and tok in cmd:
                        self.first_seen[tok] = now
                        self.matched[tok] = cmd.strip()[:120]
                        # only the FIRST step marks the job process: a
                        # later one would give a baseline taken too late
                        if self.job_pid is None and tok == self.tokens[0]:
                            self.job_pid = _ppid(pid)
            self.stop_.wait(self.interval)

    def stop(self):
        self.stop_.set()
        self.join()


def _status_kb(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


class RssPoller(threading.Thread):
    """Peak memory of the job process: VmHWM (kernel high-water mark) minus
    VmRSS when the poller first saw it (its first step was starting)."""

    def __init__(self, procs: ProcWatcher, interval: float = 0.02):
        super().__init__(daemon=True)
        self.procs, self.interval = procs, interval
        self.baseline_kb = self.peak_kb = None
        self.stop_ = threading.Event()

    def run(self):
        while not self.stop_.is_set():
            pid = self.procs.job_pid
            if pid is not None:
                vals = _status_kb(pid)
                if "VmRSS" in vals:
                    if self.baseline_kb is None:
                        self.baseline_kb = vals["VmRSS"]
                    self.peak_kb = max(self.peak_kb or 0, vals["VmHWM"],
                                       vals["VmRSS"])
            self.stop_.wait(self.interval)

    def stop(self):
        self.stop_.set()
        self.join()

    @property
    def growth_mb(self) -> float | None:
        if self.baseline_kb is None:
            return None
        return (self.peak_kb - self.baseline_kb) / 1024


def kv_doc(kv, user: str, rid: str, iteration: int):
    key = f"RESOURCE-ID::{user}/{rid}" + ("" if iteration == 1
                                           else f"/{iteration}")
    raw = kv.get(key)
    return pickle.loads(raw)[1] if raw else None


def wait_final(kv, user, rid, iteration, timeout=3600) -> tuple[dict, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = kv_doc(kv, user, rid, iteration)
        if doc and doc.get("status") in ("finished", "error", "terminated"):
            return doc, time.monotonic()
        time.sleep(0.01)
    raise RuntimeError(f"iteration {iteration} of {rid} not final")


class PageCache:
    """Drops the page cache before compared operations (root only); if that
    is not permitted, both sides are measured warm instead."""

    def __init__(self, mode: str):
        self.cold = False
        if mode != "warm":
            self.cold = self._drop()

    @staticmethod
    def _drop() -> bool:
        try:
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as fh:
                fh.write("3\n")
            return True
        except OSError:
            return False

    def before(self) -> None:
        """Cold: drop the page cache. Warm: write back what is dirty (the
        restore and the `cp -a` copies made just before, 300,000 names at
        many), so that a measured operation never pays for the writes of
        the one before it."""
        if not self.cold:
            os.sync()
        elif not self._drop():
            raise RuntimeError("dropping the page cache stopped working")

    @property
    def state(self) -> str:
        return ("cold (sync; echo 3 > /proc/sys/vm/drop_caches before each "
                "compared operation)" if self.cold else
                "warm for both (the same data read just before each; sync "
                "before each compared operation)")


def cp_a_seconds(src: Path, scratch: Path, cache: PageCache) -> float:
    """Wall time of one `cp -a` of ``src`` (same file system)."""
    dst = scratch / "cp-a-copy"
    if not cache.cold:  # warm: read the source once, like the restore's
        subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
        shutil.rmtree(dst)
    cache.before()
    started = time.monotonic()
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    took = time.monotonic() - started
    shutil.rmtree(dst)
    return took


def interim_stats(root: Path) -> dict:
    """Per snapshot of ours: manifest meta and the names it created (new
    objects, new object fan dirs, new packs, its step dir and manifest),
    checked against a walk of the interim root."""
    per_step, fans, objects, packs = [], set(), set(), set()
    store = SnapshotStore(root)
    for step_dir in sorted((root / STEPS_DIR).iterdir()):
        doc = json.loads((step_dir / MANIFEST_NAME).read_text())
        new_objs = {e[4] for part in doc["parts"].values()
                    for e in part["changed"].values() if e[0] == "f"}
        new_objs -= objects
        objects |= new_objs
        # a packed object is no name of its own: its pack is one
        where = {o: store.object_location(o) for o in new_objs}
        new_packs = {w[0] for w in where.values() if w[2] is not None}
        new_objs = {o for o, w in where.items() if w[2] is None}
        new_fans = {o[:2] for o in new_objs} - fans
        fans |= new_fans
        new_objs |= new_packs - packs
        packs |= new_packs
        meta = doc["meta"]
        per_step.append({
            "step": doc["step"], "seconds": meta.get("seconds"),
            "files_copied": meta.get("files_copied"),
            "entries_written": meta.get("entries_written"),
            "bytes_copied": meta.get("bytes_copied"),
            "names_created": len(new_objs) + len(new_fans) + 2})
    walked = walk_counts(root)["names"]
    # root's own: objects/, steps/, job.json (+ names of the snapshots)
    accounted = 3 + sum(s["names_created"] for s in per_step)
    return {"steps": per_step, "walked_names": walked,
            "accounted_names": accounted}


def reconstruct(root: Path, scratch: Path) -> tuple[Path, dict]:
    """The mapset (and tmpdir) of the latest interim result, restored from
    the store: the directory a resume recreates."""
    store = SnapshotStore(root)
    info = store.latest()
    target = scratch / "reconstructed"
    targets = {name: target / name.replace("/", "_") for name in info.parts}
    store.restore(info.step, targets)
    return target, walk_counts(target / "mapset")


def resource_storage(client: ActiniaClient, user_dir: Path) -> dict:
    times, doc = [], None
    for _ in range(3):
        started = time.monotonic()
        resp = client.request("GET", "resource_storage", timeout=600)
        times.append(time.monotonic() - started)
        if resp.status_code == 200:
            doc = resp.json()
    used = None
    if doc is not None:
        used = (doc.get("process_results") or {}).get("used")
    # the README's definition, walked independently (coreutils' `du -sb`
    # counts directory sizes on Debian 12 and not on Debian 13)
    return {"get_seconds": statistics.median(times),
            "used": used, "du_sb": used_bytes(user_dir)}


def wait_cleaned(resources: Path, temp_db: Path, rid: str,
                 timeout: float = 600) -> float | None:
    """Until the interim root, its renamed (.deleted-) copy and renamed
    temp databases (.removing-) are gone; returns when that happened."""
    interim = resources / AUTH[0] / "interim"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = os.listdir(interim) if interim.exists() else []
        left = [n for n in names if n == rid or ".deleted-" in n]
        left += [n for n in os.listdir(temp_db) if ".removing-" in n]
        if not left:
            return time.monotonic()
        time.sleep(0.05)
    return None


# --------------------------------------------------------------- a run
@dataclass
class Deployment:
    arm: str
    data: Path
    state: dict
    kv: object = None
    client: ActiniaClient = None


def start_arm(arm: str, base: Path) -> Deployment:
    import valkey as kvmod  # valkey client shipped with actinia-core's deps

    data = base / arm
    if data.exists():
        stack.stop(data)
        shutil.rmtree(data)
    opts = stack.build_parser().parse_args(
        ["start", "--data", str(data), *ARMS[arm]])
    state = stack.start(opts)
    dep = Deployment(arm, data, state)
    dep.kv = kvmod.Valkey(port=state["valkey_port"])
    dep.client = token_client(state["url"])
    return dep


def token_client(url: str) -> ActiniaClient:
    """A client with actinia's own auth token (``GET /token``; actinia takes
    it as the basic-auth user name), for every request of every arm.

    Why: actinia checks a password with passlib on every request, about
    0.2 s of CPU here, the same in every arm and for every endpoint; a
    client that sends requests in a row uses a token, which actinia checks
    in microseconds. The PUT rows then measure the resume, not the
    password hash; ``auth_seconds`` prints what a password would add."""
    resp = ActiniaClient(url, *AUTH).request("GET", "token")
    assert resp.status_code == 200, resp.text
    return ActiniaClient(url, resp.json()["token"], "token")


def auth_seconds(url: str, client: ActiniaClient, rounds: int = 5) -> dict:
    """Median time of one authenticated request (``GET /users/<user>``,
    the user's own details) with a password and with the token."""
    path = f"users/{AUTH[0]}"
    out = {}
    for name, who in (("password", ActiniaClient(url, *AUTH)),
                      ("token", client)):
        times = []
        for _ in range(rounds):
            t0 = time.monotonic()
            resp = who.request("GET", path)
            times.append(time.monotonic() - t0)
            assert resp.status_code == 200, resp.text
        out[name] = statistics.median(times)
    return out


def overheads(tokens, first_seen, process_log, indices) -> list[float]:
    """start(i+1) - start(i) - run_time(i) for the steps ``indices``."""
    runs = [p["run_time"] for p in process_log]
    starts = [first_seen.get(t) for t in tokens]
    out = []
    for i in indices:
        if i + 1 < len(starts) and i < len(runs) and None not in (
                starts[i], starts[i + 1]):
            value = starts[i + 1] - starts[i] - runs[i]
            if value > -0.5:  # a start seen out of order is noise
                out.append(value)
    return out


def run_once(dep: Deployment, wl: Workload, cache: PageCache,
             scratch: Path, arm: str | None = None) -> dict:
    arm = arm or dep.arm
    client, kv = dep.client, dep.kv
    ours_like = arm in ("ours", "fallback")
    resources = dep.data / "resources"
    temp_db = dep.data / "workspace" / "temp_db"
    procs = ProcWatcher(wl.tokens)
    procs.start()
    rss = RssPoller(procs)
    rss.start()
    disk = DiskPoller(resources) if wl.poll_disk else None
    if disk:
        disk.start()

    resp = client.post_chain("processing_async", wl.failing)
    url = resp.json()["urls"]["status"]
    rid = url.rsplit("/", 1)[1]
    doc1, _ = wait_final(kv, AUTH[0], rid, 1)
    procs.stop()
    rss.stop()
    assert doc1["status"] == "error", doc1["message"]
    log = doc1["process_log"]
    result = {
        "arm": arm,
        "step_overheads": overheads(wl.tokens, procs.first_seen, log,
                                    wl.measured),
        "big_step_overhead": overheads(wl.tokens, procs.first_seen, log,
                                       [wl.big_step])
        if wl.big_step is not None else [],
        "chain_wall": doc1["timestamp"] - doc1["start_timestamp"],
        "run_time_sum": sum(p["run_time"] for p in log),
        "rss_growth_mb": rss.growth_mb,
        "rss_baseline_mb": rss.baseline_kb and rss.baseline_kb / 1024,
    }
    below = walk_counts(resources)
    job_interim = resources / AUTH[0] / "interim" / rid
    job_kept = resources / AUTH[0] / "kept_mapsets" / rid
    kept_bytes = walk_counts(job_kept)["bytes"] if job_kept.exists() else 0
    # a failed job awaiting resume: its interim results (+ kept mapset)
    result.update(resources_names=below["names"],
                  awaiting_bytes=below["bytes"],
                  interim_bytes=below["bytes"] - kept_bytes,
                  kept_bytes=kept_bytes,
                  interim_logical_bytes=below["logical_bytes"])
    if arm == "builtin" and job_interim.exists():
        result["names_per_snapshot"] = walk_counts(job_interim)["names"]
    result["storage"] = resource_storage(client, resources / AUTH[0])

    copy_src = None
    if ours_like:
        stats = interim_stats(job_interim)
        result["interim"] = stats
        measured = [s for s in stats["steps"] if s["step"] in wl.measured]
        result["names_per_snapshot"] = statistics.median(
            s["names_created"] for s in measured)
        result["entries_per_snapshot"] = statistics.median(
            s["entries_written"] for s in measured)
        result["save_seconds"] = [s["seconds"] for s in stats["steps"]]
        copy_src, mapset = reconstruct(job_interim, scratch)
        result["mapset"] = mapset
        result["cp_a"] = cp_a_seconds(copy_src, scratch, cache)
        shutil.rmtree(copy_src)

    if arm == "nosave":
        if disk:
            disk.stop()
            result["peak_bytes"] = disk.peak
        return result

    if arm == "fallback":  # the kept mapset is gone: restore from the store
        shutil.rmtree(job_kept)
    procs = ProcWatcher([wl.put_token, *wl.tokens[:1]])
    procs.start()
    rss = RssPoller(procs)
    rss.start()
    cache.before()
    t_put, wall_put = time.monotonic(), time.time()
    resp = client.put(url, wl.fixed, timeout=1800)
    put_http = time.monotonic() - t_put
    assert resp.status_code == 200, resp.text
    doc2, t_done = wait_final(kv, AUTH[0], rid, 2)
    procs.stop()
    rss.stop()
    if disk:
        disk.stop()
        result["peak_bytes"] = disk.peak
    assert doc2["status"] == "finished", doc2["message"]
    wl.check(doc2)
    seen = procs.first_seen.get(wl.put_token)
    result.update(
        put_to_step=(seen - t_put) if seen else None,
        put_step_command=procs.matched.get(wl.put_token),
        put_to_finished=t_done - t_put,
        run_last=sum(p["run_time"] for p in doc2.get("process_log", [])),
        put_http=put_http,
        put_to_worker=doc2["start_timestamp"] - wall_put,
        put_to_accepted=doc2["accept_timestamp"] - wall_put,
        auth=auth_seconds(dep.state["url"], client),
        restore=(doc2.get("resume") or {}).get("restore_seconds"),
        verify=(doc2.get("resume") or {}).get("verify_seconds"),
        verified_bytes=(doc2.get("resume") or {}).get("verified_bytes"),
        restored_from=(doc2.get("resume") or {}).get("restored_from"),
        files_put_back=(doc2.get("resume") or {}).get("files_put_back"),
        adoption=(doc2.get("resume") or {}).get("kept_mapset"),
        rename=(doc2.get("resume") or {}).get("rename_seconds"),
        resume_rss_growth_mb=rss.growth_mb,
    )
    expected = {"ours": "kept_mapset", "fallback": "interim_results"}
    if arm in expected:
        assert result["restored_from"] == expected[arm], doc2.get("resume")
    if ours_like:
        cleaned = wait_cleaned(resources, temp_db, rid)
        result["put_to_cleaned"] = cleaned - t_put if cleaned else None
    return result


# ------------------------------------------------------------- printing
def fmt_num(x, unit="s", digits=2):
    if x is None:
        return "n/a"
    if unit == "s":
        return f"{x:.{digits}f} s"
    if unit == "MB":
        return f"{x:.0f} MB"
    if unit == "GB":
        return f"{x / 1e9:.2f} GB"
    if unit == "x":
        return f"{x:.2f}x"
    return f"{x:,.0f}"


def summary(values, unit="s", digits=2) -> str:
    """median (min-max) over rounds."""
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    med = statistics.median(values)
    text = fmt_num(med, unit, digits)
    if len(values) > 1 and min(values) != max(values):
        lo, hi = fmt_num(min(values), unit, digits), fmt_num(
            max(values), unit, digits)
        unit_suffix = {"s": " s", "MB": " MB", "GB": " GB", "x": "x"}.get(
            unit, "")
        if unit_suffix and lo.endswith(unit_suffix):
            lo = lo[: -len(unit_suffix)]
        text += f" ({lo}–{hi})"
    return text


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def per_round_overhead(rounds, arm, key):
    """Per round: median over the steps of ``arm`` minus that of nosave."""
    out = []
    for rnd in rounds:
        r, base = rnd.get(arm), rnd.get("nosave")
        if r is None or base is None or not r[key] or not base[key]:
            continue
        out.append(statistics.median(r[key]) - statistics.median(base[key]))
    return out


def raw_overhead(rounds, arm, key):
    return [statistics.median(r[arm][key]) for r in rounds
            if arm in r and r[arm][key]]


def first_save_rows(wl: Workload, rounds: list[dict], rows: list,
                    have_base: bool) -> None:
    """Issue 23: the first save of the step that adds the many files
    against the `cp -a` of the same round: the store's own time (manifest
    meta ``seconds``) and the whole saving overhead in the job (minus
    nosave), whose ratio is the target."""
    store_ratio, job_ratio = [], []
    for rnd in rounds:
        ours = rnd.get("ours")
        if not ours or not ours.get("cp_a"):
            continue
        seconds = [s["seconds"] for s in ours["interim"]["steps"]
                   if s["step"] == wl.big_step and s.get("seconds")]
        if seconds:
            store_ratio.append(seconds[0] / ours["cp_a"])
        if have_base:
            job_ratio += [o / ours["cp_a"] for o in per_round_overhead(
                [rnd], "ours", "big_step_overhead")]
    rows.append((f"  first save of step {wl.big_step} / cp -a: the store "
                 "(manifest `seconds`)", {"ours": summary(store_ratio, "x")},
                 "", None))
    if job_ratio:
        rows.append((f"  first save of step {wl.big_step} / cp -a: saving "
                     "overhead in the job (minus nosave)",
                     {"ours": summary(job_ratio, "x")}, "≤ 0.50x",
                     med(job_ratio) <= 0.5))


def table(wl: Workload, rounds: list[dict], cache: PageCache) -> str:
    arms = [a for a in ARMS if any(a in r for r in rounds)]
    have_base = "nosave" in arms

    def col(arm, fn, unit="s", digits=2):
        vals = [fn(r[arm]) for r in rounds if arm in r]
        return summary(vals, unit, digits) if vals else "–"

    def ours_med(fn):
        return med([fn(r["ours"]) for r in rounds if "ours" in r])

    rows = []  # (measure, {arm: text}, target, met)

    def overhead_row(label, key, target):
        cells, met = {}, None
        for arm in ("builtin", "ours"):
            if arm not in arms:
                continue
            if have_base:
                cells[arm] = summary(per_round_overhead(rounds, arm, key))
            else:
                cells[arm] = "no baseline (raw " + summary(
                    raw_overhead(rounds, arm, key)) + ")"
        if "nosave" in arms:
            cells["nosave"] = "baseline " + summary(
                raw_overhead(rounds, "nosave", key))
        if target is not None and "ours" in arms and have_base:
            value = med(per_round_overhead(rounds, "ours", key))
            met = value is not None and value <= target
        rows.append((label, cells, f"≤ {target:.2f} s" if target else "",
                     met))

    overhead_row("per-step saving overhead, median over the "
                 f"{'tiny ' if wl.big_step is not None else ''}steps "
                 f"{wl.measured[0]}–{wl.measured[-1]} (minus nosave)",
                 "step_overheads", wl.overhead_target)
    if wl.big_step is not None:
        overhead_row(f"saving overhead after step {wl.big_step} (adds the "
                     "many files; minus nosave)", "big_step_overhead", None)
    rows.append(("chain wall time (failed iteration)",
                 {a: col(a, lambda r: r["chain_wall"]) for a in arms}, "",
                 None))
    rows.append(("names written per snapshot (tiny step median)"
                 if wl.big_step is not None else
                 "names written per snapshot (median)",
                 {a: col(a, lambda r: r.get("names_per_snapshot"), "n")
                  for a in arms if a != "nosave"},
                 "∝ files changed", None))
    if "ours" in arms:
        rows.append(("  ours: manifest entries / new objects per snapshot",
                     {"ours": col("ours", lambda r: r["entries_per_snapshot"],
                                  "n") + " / " +
                      col("ours", lambda r: med(
                          [s["files_copied"] for s in r["interim"]["steps"]
                           if s["step"] in wl.measured]), "n")},
                     "", None))
    rows.append(("names below grass_resource_dir (failed iteration)",
                 {a: col(a, lambda r: r["resources_names"], "n")
                  for a in arms}, "", None))
    rows.append(("interim results on disk",
                 {a: col(a, lambda r: r["interim_bytes"], "GB")
                  for a in arms}, "", None))
    rows.append(("  + kept mapset (renamed, not copied)",
                 {a: col(a, lambda r: r.get("kept_bytes"), "GB")
                  for a in arms if a in ("ours", "fallback")}, "", None))
    rows.append(("disk of a failed job awaiting resume (below "
                 "grass_resource_dir)",
                 {a: col(a, lambda r: r.get("awaiting_bytes"), "GB")
                  for a in arms}, "reported", None))
    if wl.poll_disk:
        rows.append(("peak extra disk",
                     {a: col(a, lambda r: r.get("peak_bytes"), "GB")
                      for a in arms}, "", None))
    if "ours" in arms or "fallback" in arms:
        rows.append(("resume: restored from / files put back",
                     {a: col(a, lambda r: r.get("files_put_back"), "n")
                      + " (" + str(rounds[-1].get(a, {}).get("restored_from"))
                      + ")" for a in arms if a in ("ours", "fallback")},
                     "∝ files the failed step changed", None))
    if "ours" in arms:
        ratio = ours_med(lambda r: r["restore"] / r["cp_a"]
                         if r.get("restore") and r.get("cp_a") else None)
        rows.append(("restore (resume.restore_seconds; ours: adoption)",
                     {a: col(a, lambda r: r.get("restore"))
                      for a in arms if a in ("ours", "fallback")},
                     "≤ 1.2 × cp -a", None))
        rows.append(("  time spent verifying: hashing every restored byte "
                     "(within the restore; CPU time summed over the copy "
                     "threads)",
                     {a: col(a, lambda r: r.get("verify"), "s", 3)
                      + " for " + col(a, lambda r: r.get(
                          "verified_bytes"), "GB")
                      for a in arms if a in ("ours", "fallback")},
                     "", None))
        rows.append(("`cp -a` of the same mapset",
                     {"ours": col("ours", lambda r: r.get("cp_a"))}, "",
                     None))
        if wl.big_step is not None:
            first_save_rows(wl, rounds, rows, have_base)
        cells = {"ours": col("ours", lambda r: r["restore"] / r["cp_a"]
                             if r.get("restore") and r.get("cp_a")
                             else None, "x")}
        if "fallback" in arms:
            # the restore from the interim results (issue 20's target),
            # against the `cp -a` of the same round (measured in ours)
            fallback = [rnd["fallback"]["restore"] / rnd["ours"]["cp_a"]
                        for rnd in rounds
                        if (rnd.get("fallback") or {}).get("restore")
                        and (rnd.get("ours") or {}).get("cp_a")]
            cells["fallback"] = summary(fallback, "x")
            if fallback:
                ratio = max(ratio or 0, med(fallback))
        rows.append(("restore / cp -a", cells,
                     "≤ 1.20x", ratio is not None and ratio <= 1.2))
    if any(a in arms for a in ("builtin", "ours")):
        put_arms = [a for a in arms if a != "nosave"]
        step_target = PUT_TO_STEP_TARGET.get(wl.name)
        step_value = ours_med(lambda r: r.get("put_to_step")) \
            if "ours" in arms else None
        rows.append(("PUT → resumed step running",
                     {a: col(a, lambda r: r.get("put_to_step"))
                      for a in put_arms},
                     f"≤ {step_target:.1f} s" if step_target else "",
                     None if step_value is None or step_target is None
                     else step_value <= step_target))
        rows.append(("  actinia's check of the request's credentials: "
                     "password / token (every arm uses the token)",
                     {a: col(a, lambda r: (r.get("auth") or {}).get(
                         "password"), "s", 3) + " / " + col(
                         a, lambda r: (r.get("auth") or {}).get("token"),
                         "s", 3) for a in put_arms}, "", None))
        rows.append(("  PUT → accepted (the PUT's plan and enqueue)",
                     {a: col(a, lambda r: r.get("put_to_accepted"))
                      for a in put_arms}, "", None))
        limit = ours_med(lambda r: 2 + r["run_last"]) \
            if "ours" in arms else None
        value = ours_med(lambda r: r.get("put_to_finished"))
        rows.append(("PUT → finished (one-step resume)",
                     {a: col(a, lambda r: r.get("put_to_finished"))
                      for a in put_arms},
                     f"≤ 2 s + run time of the resumed step = "
                     f"{fmt_num(limit)}" if limit else "",
                     None if limit is None else value <= limit))
    if "ours" in arms:
        rows.append(("PUT → interim results and temp mapset removed",
                     {"ours": col("ours", lambda r: r.get("put_to_cleaned"))},
                     "after finished", None))
    rows.append(("peak RSS growth of the job process (failed iteration)",
                 {a: col(a, lambda r: r["rss_growth_mb"], "MB")
                  for a in arms}, "≤ 150 MB",
                 None if "ours" not in arms else
                 (ours_med(lambda r: r["rss_growth_mb"]) or 0) <= 150))
    rows.append(("  same, resumed iteration (restore)",
                 {a: col(a, lambda r: r.get("resume_rss_growth_mb"), "MB")
                  for a in arms if a != "nosave"}, "", None))
    get_med = ours_med(lambda r: r["storage"]["get_seconds"]) \
        if "ours" in arms else None
    rows.append(("GET /resource_storage (interim results present)",
                 {a: col(a, lambda r: r["storage"]["get_seconds"])
                  for a in arms}, "≤ 1.00 s",
                 None if get_med is None else get_med <= 1.0))

    def used_diff(r):
        used, du = r["storage"]["used"], r["storage"]["du_sb"]
        return None if used is None or du is None else used - du

    diffs = [used_diff(r["ours"]) for r in rounds if "ours" in r]
    rows.append(("resource_storage `used` − bytes on disk (files and "
                 "symlinks, inodes once; an independent walk)",
                 {a: col(a, used_diff, "n") for a in arms}, "= 0",
                 None if "ours" not in arms else
                 all(d is not None and abs(d) <= 8192 for d in diffs)))

    header = f"| measure | {' | '.join(arms)} | target (ours) | met |"
    out = [header, "|" + "---|" * (len(arms) + 3)]
    for label, cells, target, met in rows:
        out.append(
            f"| {label} | "
            + " | ".join(cells.get(a, "–") for a in arms)
            + f" | {target} | {'' if met is None else ('yes' if met else 'NO')} |")
    return "\n".join(out)


def notes(wl: Workload, rounds: list[dict]) -> str:
    ours = [r["ours"] for r in rounds if "ours" in r]
    lines = []
    if ours:
        m = ours[0].get("mapset") or {}
        lines.append(
            f"mapset of the last interim result: {m.get('files', 0):,} files, "
            f"{m.get('dirs', 0):,} dirs, {m.get('bytes', 0) / 1e6:.1f} MB "
            "(counted with os.walk on the reconstructed mapset)")
        saves = [s for r in ours for s in r["save_seconds"]]
        first = [r["interim"] for r in ours]
        lines.append(
            "ours: snapshot save (manifest meta `seconds`) median "
            f"{statistics.median(saves):.3f} s, max {max(saves):.3f} s; "
            "names below the interim root walked / accounted from the "
            "manifests: " + ", ".join(
                f"{i['walked_names']:,}/{i['accounted_names']:,}"
                for i in first))
        per_step = ours[-1]["interim"]["steps"]
        lines.append("ours, last round, per snapshot (step: files copied, "
                     "entries written, names created, seconds): " + "; ".join(
                         f"{s['step']}: {s['files_copied']}, "
                         f"{s['entries_written']}, {s['names_created']}, "
                         f"{s['seconds']:.3f}" for s in per_step))
    adopted = [r["adoption"] for r in ours
               if (r.get("adoption") or {}).get("adopted")]
    if adopted:
        def phase(key):
            return fmt_num(med([a.get(key) for a in adopted]))
        lines.append(
            "ours, the adoption (median): deciding (record read, stat walk "
            f"and comparison) {phase('decide_seconds')}, putting back and "
            f"moving {phase('repair_seconds')}; the mapset-name rewrite "
            f"after it {fmt_num(med([r.get('rename') for r in ours]))}")
    seen = {r[a].get("put_step_command") for r in rounds for a in r
            if a in ("ours", "fallback")} - {None}
    if seen:
        lines.append("the process whose start is \"resumed step running\": "
                     + "; ".join(f"`{c}`" for c in sorted(seen)))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="quick run: 2000x2000 + 400x400 rasters, "
                             "2,000 maps")
    parser.add_argument("--data", default=str(REPO / ".data" / "benchmark"))
    parser.add_argument("--only", default="nosave,builtin,ours,fallback",
                        help="arms to run (without nosave: no baseline)")
    parser.add_argument("--workloads", default="big,many")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--many-builtin-rounds", type=int, default=0,
                        help="rounds of the built-in arm on the many-files "
                             "workload (it copies the whole mapset per "
                             "step: minutes per round); 0 skips it")
    parser.add_argument("--cache", choices=("cold", "warm"), default="cold",
                        help="cold: drop the page cache before each compared "
                             "operation (needs root), else warm for both")
    parser.add_argument("--json", help="also write the raw results here")
    opts = parser.parse_args(argv)
    started_all = time.monotonic()
    arms = [a for a in opts.only.split(",") if a]
    unknown = set(arms) - set(ARMS)
    if unknown:
        parser.error(f"unknown arms: {sorted(unknown)}")
    builders = {"big": big_workload, "many": many_workload}
    workloads = [builders[w](opts.small) for w in opts.workloads.split(",")]
    base = Path(opts.data)
    base.mkdir(parents=True, exist_ok=True)
    cache = PageCache(opts.cache)
    deps = {}
    results: dict[str, list[dict]] = {wl.name: [] for wl in workloads}
    try:
        for arm in arms:
            if arm in SHARED:
                deps[arm] = deps.get(SHARED[arm]) or start_arm(
                    SHARED[arm], base)
                deps.setdefault(SHARED[arm], deps[arm])
            else:
                deps.setdefault(arm, None)
                deps[arm] = deps[arm] or start_arm(arm, base)
        for rnd in range(1, opts.rounds + 1):
            for wl in workloads:
                this_round = {}
                for arm in arms:
                    if (arm == "builtin" and wl.name == "many"
                            and rnd > opts.many_builtin_rounds):
                        continue
                    t0 = time.monotonic()
                    print(f"[benchmark] round {rnd} {wl.name} {arm} ...",
                          file=sys.stderr, flush=True)
                    scratch = Path(tempfile.mkdtemp(
                        dir=deps[arm].data / "workspace"))
                    try:
                        this_round[arm] = run_once(deps[arm], wl, cache,
                                                   scratch, arm)
                    finally:
                        shutil.rmtree(scratch, ignore_errors=True)
                    print(f"[benchmark] round {rnd} {wl.name} {arm} done in "
                          f"{time.monotonic() - t0:.0f} s", file=sys.stderr,
                          flush=True)
                results[wl.name].append(this_round)
    finally:
        for dep in {id(d): d for d in deps.values() if d}.values():
            stack.stop(dep.data)
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=1, default=str))
    total = time.monotonic() - started_all
    print(f"{os.cpu_count()} cores; {opts.rounds} interleaved rounds "
          f"(built-in on `many`: {min(opts.many_builtin_rounds, opts.rounds)});"
          f" figures: median (min–max) over rounds; page cache: "
          f"{cache.state}; total run time {total / 60:.1f} min")
    if "nosave" not in arms:
        print("no baseline: the nosave arm did not run, so saving overheads "
              "are raw (not minus nosave)")
    if "builtin" in arms and "many" in opts.workloads and \
            opts.many_builtin_rounds < 1:
        print("built-in arm skipped on `many`: it copies the whole mapset "
              "per step (measured at 22,000 files: ~65 s per step, ~10 min "
              "per round); --many-builtin-rounds 1 runs it")
    for wl in workloads:
        print(f"\n### workload `{wl.name}`: {wl.description}\n")
        print(table(wl, results[wl.name], cache))
        print()
        print(notes(wl, results[wl.name]))


if __name__ == "__main__":
    main()
