#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: POST of the fixed chain with ``?reuse=`` vs PUT (issue 14).

On one stack (ours, save_interim_results = True, reuse_interim_results =
True) the failing workload of scripts/benchmark.py runs twice (jobs A and
B, the same chain); then, ``--rounds`` times in alternating order:

  PUT→finished         PUT of the fixed chain on A → iteration final
  POST-reuse→finished  POST of the fixed chain ?reuse=<B> → new job final

(A's PUT is repeated on a fresh failed job each round, B stays the source
of every reusing POST: reuse copies, B is never changed.) Prints the
medians and their ratio; the issue asks for POST-reuse within 10 % of PUT.

Usage: .venv/bin/python scripts/benchmark_reuse.py [--small] [--rounds N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchmark  # noqa: E402
from actinia_client import ActiniaClient  # noqa: E402
from benchmark import AUTH, REPO, big_workload, stack, wait_final  # noqa: E402


def fail_job(client, kv, chain) -> tuple[str, str]:
    """POST the failing chain; (status URL, resource id) once it failed."""
    url = client.post_chain("processing_async", chain).json()["urls"]["status"]
    rid = url.rsplit("/", 1)[1]
    doc, _ = wait_final(kv, AUTH[0], rid, 1)
    assert doc["status"] == "error", doc["message"]
    return url, rid


BREAKDOWN = []


def breakdown(kind, started, wall, http_done, doc, done):
    """request, request → worker start, worker start → final, restore."""
    BREAKDOWN.append(
        f"{kind}: http {http_done - started:.3f} s, to worker "
        f"{doc['start_timestamp'] - wall:.3f} s, job "
        f"{doc['timestamp'] - doc['start_timestamp']:.3f} s, restore "
        f"{(doc.get('resume') or {}).get('restore_seconds')} s, total "
        f"{done - started:.3f} s")


def put_to_finished(client, kv, status_url: str, fixed: dict, check) -> float:
    rid = status_url.rsplit("/", 1)[1]
    started, wall = time.monotonic(), time.time()
    resp = client.put(status_url, fixed, timeout=600)
    http_done = time.monotonic()
    assert resp.status_code == 200, resp.text
    doc, done = wait_final(kv, AUTH[0], rid, 2)
    breakdown("PUT ", started, wall, http_done, doc, done)
    assert doc["status"] == "finished", doc["message"]
    assert doc["resume"]["steps"][0]["action"] == "reused", doc["resume"]
    check(doc)  # the resumed job's results are right
    return done - started


def post_reuse_to_finished(client, kv, fixed: dict, source_rid: str,
                           check) -> float:
    """POST the fixed chain reusing ``source_rid``'s interim results; seconds
    from the request to the new job's final status."""
    started, wall = time.monotonic(), time.time()
    resp = client.request(
        "POST", client.project_url(f"processing_async?reuse={source_rid}"),
        json=fixed, timeout=600)
    http_done = time.monotonic()
    assert resp.status_code == 200, resp.text
    rid = resp.json()["urls"]["status"].rsplit("/", 1)[1]
    doc, done = wait_final(kv, AUTH[0], rid, 1)
    breakdown("POST", started, wall, http_done, doc, done)
    assert doc["status"] == "finished", doc["message"]
    assert doc["resume"]["reused_from"] == source_rid, doc["resume"]
    check(doc)
    return done - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data",
                        default=str(REPO / ".data" / "benchmark-reuse"))
    opts = parser.parse_args(argv)
    import valkey

    data = Path(opts.data)
    if data.exists():
        stack.stop(data)
        shutil.rmtree(data)
    state = stack.start(stack.build_parser().parse_args(
        ["start", "--data", str(data), *benchmark.ARMS["ours"],
         "--misc", "reuse_interim_results=True"]))
    try:
        kv = valkey.Valkey(port=state["valkey_port"])
        client = ActiniaClient(state["url"], *AUTH)
        wl = big_workload(opts.small)
        failing, fixed = wl.failing, wl.fixed
        _, source = fail_job(client, kv, failing)
        puts, posts = [], []
        for round_ in range(opts.rounds):
            url, _ = fail_job(client, kv, failing)
            pair = [lambda url=url: puts.append(
                        put_to_finished(client, kv, url, fixed, wl.check)),
                    lambda: posts.append(post_reuse_to_finished(
                        client, kv, fixed, source, wl.check))]
            for measure in (pair if round_ % 2 == 0 else pair[::-1]):
                measure()
        put, post = statistics.median(puts), statistics.median(posts)
        print(f"PUT→finished        median {put:.2f} s  {puts}")
        print(f"POST-reuse→finished median {post:.2f} s  {posts}")
        print("\n".join(BREAKDOWN))
        print(f"POST-reuse / PUT = {post / put:.3f} (target ≤ 1.10)")
    finally:
        stack.stop(data)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
