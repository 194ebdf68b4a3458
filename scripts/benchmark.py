#!/usr/bin/env python3
"""Benchmark: actinia-core's built-in interim results vs actinia-resume-plugin.

Runs one workload on three real stacks started one after the other on this
machine (scripts/stack.py):

  nosave   actinia-core without plugins, save_interim_results = False
  builtin  actinia-core without plugins, save_interim_results = True
  ours     actinia-core + actinia_resume_plugin, save_interim_results = True

Workload (one process chain, ephemeral processing_async): g.region to a big
region, four random DCELL rasters (≥ 1 GB mapset; 6000x6000 → ~262 MB each),
g.region to a small region, ten random DCELL rasters of ~10 MB each, and a
failing r.univar step; then a PUT with the failing step fixed (a one-step
resume).

Measured:
  per-step overhead   start of step i+1 − start of step i − run_time of step i
                      (step starts seen in /proc, run_time from process_log),
                      median over the steps, minus the same for `nosave`
  chain wall time     start of the first step → the job's final timestamp
  interim on disk     bytes below the resource dir after the failed iteration
                      (hard-linked files counted once)
  peak extra disk     maximum of that during the whole run (polled)
  PUT→step running    PUT request → the resumed r.univar process exists
  restore             ours: resume.restore_seconds; builtin: the same
                      interval minus the queue latency is not separable, so
                      PUT→step running is the comparable number
  PUT→finished        PUT request → iteration 2 final in the status store

Usage: scripts/benchmark [--small] [--data DIR] [--only ours,builtin,...]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests"))

import stack  # noqa: E402
from actinia_client import ActiniaClient  # noqa: E402

AUTH = ("actinia-gdi", "actinia-gdi")
EXTENT = {"n": 228500, "s": 215000, "w": 630000, "e": 645000}
MODES = {
    "nosave": ["--plugins", "", "--save-interim-results", "False"],
    "builtin": ["--plugins", "", "--save-interim-results", "True"],
    "ours": ["--save-interim-results", "True"],
}


# ------------------------------------------------------------- workload
def workload(big: int, small: int, fixed: bool) -> tuple[dict, list[str]]:
    """The process chain and, per step, a token unique to its command line."""
    steps, tokens = [], []

    def region(side):
        steps.append({"id": f"region_{side}", "module": "g.region", "inputs": [
            *({"param": k, "value": str(v)} for k, v in EXTENT.items()),
            {"param": "rows", "value": str(side)},
            {"param": "cols", "value": str(side)}]})
        tokens.append(f"rows={side}")

    def rand(name):
        steps.append({"id": name, "module": "r.mapcalc", "flags": "s",
                      "inputs": [{"param": "expression",
                                  "value": f"{name} = rand(0.0, 1.0)"}]})
        tokens.append(f"{name} = rand")

    region(big)
    for i in range(1, 5):
        rand(f"big_{i}")
    region(small)
    for i in range(1, 11):
        rand(f"small_{i}")
    steps.append({"id": "univar", "module": "r.univar", "flags": "g",
                  "inputs": [{"param": "map", "value":
                              "small_10" if fixed else "no_such_map"}],
                  "stdout": {"id": "univar", "format": "kv",
                             "delimiter": "="}})
    tokens.append("map=small_10" if fixed else "map=no_such_map")
    return {"version": "1", "list": steps}, tokens


# ------------------------------------------------------------ measuring
def disk_usage(path: Path) -> tuple[int, int]:
    """(bytes counting hard links once, bytes counting every name)."""
    seen, unique, logical, stack_ = set(), 0, 0, [str(path)]
    while stack_:
        try:
            entries = list(os.scandir(stack_.pop()))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    stack_.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    logical += st.st_size
                    if (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        unique += st.st_size
            except OSError:
                continue
    return unique, logical


class DiskPoller(threading.Thread):
    def __init__(self, path: Path, interval: float = 0.2):
        super().__init__(daemon=True)
        self.path, self.interval = path, interval
        self.peak = 0
        self.stop_ = threading.Event()

    def run(self):
        while not self.stop_.is_set():
            self.peak = max(self.peak, disk_usage(self.path)[0])
            self.stop_.wait(self.interval)

    def stop(self):
        self.stop_.set()
        self.join()
        self.peak = max(self.peak, disk_usage(self.path)[0])


class ProcWatcher(threading.Thread):
    """Records when a process whose command line contains a token appears
    (GRASS modules started by the job)."""

    def __init__(self, tokens: list[str], interval: float = 0.005):
        super().__init__(daemon=True)
        self.tokens = list(tokens)
        self.interval = interval
        self.first_seen: dict[str, float] = {}
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
                            errors="replace")
                except OSError:
                    continue
                for tok in self.tokens:
                    if tok not in self.first_seen and tok in cmd:
                        self.first_seen[tok] = now
            self.stop_.wait(self.interval)

    def stop(self):
        self.stop_.set()
        self.join()


def kv_doc(kv, user: str, rid: str, iteration: int):
    key = f"RESOURCE-ID::{user}/{rid}" + ("" if iteration == 1
                                           else f"/{iteration}")
    raw = kv.get(key)
    return pickle.loads(raw)[1] if raw else None


def wait_final(kv, user, rid, iteration, timeout=1800) -> tuple[dict, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = kv_doc(kv, user, rid, iteration)
        if doc and doc.get("status") in ("finished", "error", "terminated"):
            return doc, time.monotonic()
        time.sleep(0.01)
    raise RuntimeError(f"iteration {iteration} of {rid} not final")


def copy_time(src: Path, scratch: Path) -> float:
    """Wall time of one plain copy of a directory (same file system)."""
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        started = time.monotonic()
        shutil.copytree(src, Path(tmp) / "copy")
        return time.monotonic() - started


def run_mode(mode: str, base: Path, sides: tuple[int, int]) -> dict:
    import valkey as kvmod  # valkey client shipped with actinia-core's deps

    data = base / mode
    if data.exists():
        stack.stop(data)
        shutil.rmtree(data)
    opts = stack.build_parser().parse_args(
        ["start", "--data", str(data), *MODES[mode]])
    state = stack.start(opts)
    try:
        kv = kvmod.Valkey(port=state["valkey_port"])
        client = ActiniaClient(state["url"], *AUTH)
        failing, tokens = workload(*sides, fixed=False)
        fixed, fixed_tokens = workload(*sides, fixed=True)
        resources = data / "resources"
        disk = DiskPoller(resources)
        disk.start()
        procs = ProcWatcher(tokens + fixed_tokens[-1:])
        procs.start()

        resp = client.post_chain("processing_async", failing)
        url = resp.json()["urls"]["status"]
        rid = url.rsplit("/", 1)[1]
        doc1, _ = wait_final(kv, AUTH[0], rid, 1)
        assert doc1["status"] == "error", doc1["message"]
        after_fail = disk_usage(resources)

        # step starts → per-step overhead
        runs = [p["run_time"] for p in doc1["process_log"]]
        starts = [procs.first_seen.get(t) for t in tokens]
        overheads = [
            starts[i + 1] - starts[i] - runs[i]
            for i in range(len(tokens) - 1)
            if starts[i] is not None and starts[i + 1] is not None
            and i < len(runs)
        ]
        # a start seen out of order (token matched another process) is noise
        overheads = [o for o in overheads if o > -0.5]
        wall = (doc1["timestamp"] - doc1["start_timestamp"])

        result = {
            "mode": mode,
            "steps": len(tokens) - 1,
            "overheads": overheads,
            "overhead_median": statistics.median(overheads)
            if overheads else None,
            "chain_wall": wall,
            "run_time_sum": sum(runs),
            "interim_bytes": after_fail[0],
            "interim_logical_bytes": after_fail[1],
        }
        if mode == "ours":
            snaps = sorted((resources / AUTH[0] / "interim" / rid / "steps")
                           .iterdir())
            last = snaps[-1] / "parts" / "mapset"
            result["mapset_bytes"] = disk_usage(last)[1]
            result["save_seconds"] = [
                json.loads((s / "manifest.json").read_text())["meta"]
                ["seconds"] for s in snaps]
            result["copy_seconds"] = copy_time(last, data / "workspace")
        if mode == "nosave":
            disk.stop()
            procs.stop()
            result["peak_bytes"] = disk.peak
            return result

        put_token = fixed_tokens[-1]
        t_put, wall_put = time.monotonic(), time.time()
        resp = client.put(url, fixed, timeout=600)
        put_http = time.monotonic() - t_put
        assert resp.status_code == 200, resp.text
        doc2, t_done = wait_final(kv, AUTH[0], rid, 2)
        procs.stop()
        disk.stop()
        assert doc2["status"] == "finished", doc2["message"]
        mean = float(doc2["process_results"]["univar"]["mean"])
        assert 0.45 < mean < 0.55, mean
        seen = procs.first_seen.get(put_token)
        result.update(
            put_to_step=(seen - t_put) if seen else None,
            put_to_finished=t_done - t_put,
            put_http=put_http,
            put_to_worker=doc2["start_timestamp"] - wall_put,
            restore=(doc2.get("resume") or {}).get("restore_seconds"),
            resume=doc2.get("resume"),
            peak_bytes=disk.peak,
        )
        return result
    finally:
        stack.stop(data)
        shutil.rmtree(data, ignore_errors=True)


# ------------------------------------------------------------- printing
def gb(n):
    return f"{n / 1e9:.2f} GB"


def sec(x):
    return "n/a" if x is None else f"{x:.2f} s"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.1f}x"


def table(res: dict, sides) -> str:
    ns, bi, ou = res.get("nosave"), res.get("builtin"), res.get("ours")
    base = ns["overhead_median"] if ns else 0.0
    mapset = ou["mapset_bytes"] if ou else None
    target_disk = 1.1 * mapset if mapset else None

    def ov(r):
        return None if r is None else r["overhead_median"] - base

    rows = [
        ("per-step saving overhead (median)", ov(bi), ov(ou), sec,
         "≤ 0.20 s", ov(ou) is not None and ov(ou) <= 0.2),
        ("chain wall time (failed iteration)",
         bi and bi["chain_wall"], ou and ou["chain_wall"], sec,
         f"nosave {sec(ns and ns['chain_wall'])}", None),
        ("interim results on disk", bi and bi["interim_bytes"],
         ou and ou["interim_bytes"], gb,
         f"≤ {gb(target_disk)}" if target_disk else "",
         ou and target_disk and ou["interim_bytes"] <= target_disk),
        ("peak extra disk", bi and bi["peak_bytes"],
         ou and ou["peak_bytes"], gb,
         f"≤ {gb(target_disk)}" if target_disk else "",
         ou and target_disk and ou["peak_bytes"] <= target_disk),
        ("PUT → resumed step running", bi and bi["put_to_step"],
         ou and ou["put_to_step"], sec,
         f"≤ 1 copy = {sec(ou and ou['copy_seconds'])}",
         ou and ou["put_to_step"] is not None
         and ou["put_to_step"] <= ou["copy_seconds"]),
        ("  of which: PUT request (auth, plan, enqueue)",
         bi and bi["put_http"], ou and ou["put_http"], sec, "", None),
        ("  of which: PUT → job process started",
         bi and bi["put_to_worker"], ou and ou["put_to_worker"], sec, "",
         None),
        ("  of which: restore (resume.restore_seconds)", None,
         ou and ou["restore"], sec,
         f"≤ 1 copy = {sec(ou and ou['copy_seconds'])}",
         ou and ou["restore"] is not None
         and ou["restore"] <= ou["copy_seconds"]),
        ("PUT → finished (one-step resume)", bi and bi["put_to_finished"],
         ou and ou["put_to_finished"], sec,
         f"≤ 2 s + copy = {sec(ou and 2 + ou['copy_seconds'])}",
         ou and ou["put_to_finished"] <= 2 + ou["copy_seconds"]),
    ]
    out = [
        f"workload: {sides[0]}x{sides[0]} region, 4 DCELL rasters, "
        f"{sides[1]}x{sides[1]} region, 10 DCELL rasters, failing step; "
        f"mapset {gb(mapset) if mapset else '?'}; {os.cpu_count()} cores",
        "",
        "| measure | actinia built-in | ours | built-in/ours | target (ours) | met |",
        "|---|---|---|---|---|---|",
    ]
    for name, b, o, fmt, target, met in rows:
        out.append(
            f"| {name} | {'n/a' if b is None else fmt(b)} | "
            f"{'n/a' if o is None else fmt(o)} | {ratio(b, o)} | {target} | "
            f"{'' if met is None else ('yes' if met else 'NO')} |")
    if ou:
        saves = ou["save_seconds"]
        out.append("")
        out.append(
            f"ours: snapshot save per step median {statistics.median(saves):.3f} s "
            f"(max {max(saves):.3f} s); interim bytes counting every "
            f"hard link {gb(ou['interim_logical_bytes'])}")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="quick run: 2000x2000 + 400x400 rasters")
    parser.add_argument("--data", default=str(REPO / ".data" / "benchmark"))
    parser.add_argument("--only", default="nosave,builtin,ours")
    parser.add_argument("--json", help="also write the raw results here")
    opts = parser.parse_args(argv)
    sides = (2000, 400) if opts.small else (6000, 1150)
    base = Path(opts.data)
    base.mkdir(parents=True, exist_ok=True)
    results = {}
    for mode in opts.only.split(","):
        started = time.monotonic()
        print(f"[benchmark] {mode} ...", file=sys.stderr, flush=True)
        results[mode] = run_mode(mode, base, sides)
        print(f"[benchmark] {mode} done in {time.monotonic() - started:.0f} s",
              file=sys.stderr, flush=True)
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=1, default=str))
    print(table(results, sides))


if __name__ == "__main__":
    main()
