#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The main job of actinia-resume-plugin, shown on the sample project.

A chain of seven steps (config/examples/pc_error.json) fails at its last
step because of a typo in a map name. The demo shows the failure, the plan
of a PUT with the fixed chain (config/examples/pc_noerror.json,
``?dry_run=true``), then resumes with that PUT and prints which steps were
reused and which ran, and how much time that saved compared with running
the whole chain again.

It is a plain client of actinia's HTTP API (scripts/actinia_client.py, the
client the tests use), the same calls as the README's curl examples:

    .venv/bin/python scripts/demo.py [BASE_URL] [--auth USER:PASSWORD]
                                     [--resource-dir DIR]

BASE_URL defaults to http://127.0.0.1:8088/api/v3 (scripts/start.sh runs
it at its end). --resource-dir (actinia's grass_resource_dir) only makes the
demo print where the interim results are on disk. Exit status 0 when the
resumed iteration finished and reused the steps before the fixed one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import requests
from actinia_client import ActiniaClient, project_url_part

EXAMPLES = Path(__file__).resolve().parent.parent / "config" / "examples"
PROJECT = "nc_spm_08"


class Actinia(ActiniaClient):
    """The shared client; :meth:`call` answers the JSON document and stops
    the demo with a message when actinia cannot be reached or refuses."""

    def call(self, method: str, url: str, **kwargs) -> dict:
        try:
            resp = self.request(method, url, **kwargs)
        except requests.ConnectionError as exc:
            raise SystemExit(f"cannot reach actinia at {url}: {exc}") from None
        doc = resp.json()
        if resp.status_code >= 400 and doc.get("status") != "error":
            raise SystemExit(f"{method} {url} -> {resp.status_code}: {doc}")
        return doc

    def projects_url(self) -> tuple[str, str]:
        """The GRASS version and the projects part of the URLs."""
        grass = self.call("GET", "version")["grass_version"]["version"]
        return grass, project_url_part(grass)


# ------------------------------------------------------------------ output
def show(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    show(f"\n== {text}")


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def run_times(doc: dict) -> dict[str, float]:
    """Run time per step id from an iteration's process_log."""
    times: dict[str, float] = {}
    for entry in doc.get("process_log") or []:
        step = str(entry.get("id"))
        times[step] = times.get(step, 0.0) + float(entry.get("run_time", 0))
    return times


def error_line(doc: dict) -> str:
    """The GRASS error of the failed step (its stderr's ERROR line)."""
    stderr = (doc.get("process_log") or [{}])[-1].get("stderr") or []
    errors = [line for line in stderr if "ERROR" in line]
    return (errors or [doc.get("message", "")])[0].strip()


def chain_changes(old: dict, new: dict) -> list[str]:
    """What the fix changes: step id and parameter, old -> new value."""
    changes = []
    for old_step, new_step in zip(old["list"], new["list"], strict=False):
        old_params = {i["param"]: i["value"] for i in old_step.get("inputs", [])}
        for item in new_step.get("inputs", []):
            before = old_params.get(item["param"])
            if before != item["value"]:
                changes.append(f"{new_step['id']}: {item['param']}="
                               f"{before} -> {item['param']}={item['value']}")
    return changes


def interim_entry(api: Actinia, resource_id: str) -> dict | None:
    """This job's entry in GET /resource_storage (None when it has none)."""
    storage = api.call("GET", "resource_storage")["process_results"]
    for entry in storage.get("interim_results", []):
        if entry["resource_id"] == resource_id:
            return entry
    return None


# ------------------------------------------------------------------ the job
def post_failing_chain(api: Actinia, projects: str, chain: dict) -> dict:
    heading("1. POST a chain that fails at its last step "
            "(config/examples/pc_error.json)")
    for step in chain["list"]:
        show(f"   {step['id']:<24} {step['module']:<15} "
             f"{step.get('comment', '')}")
    url = f"{projects}/{PROJECT}/processing_async"
    show(f"POST {api.base}/{url}")
    status_url = api.call("POST", url, json=chain)["urls"]["status"]
    show(f"status URL: {status_url}")
    show("waiting for the job ...")
    doc = api.wait(status_url, timeout=300)
    show(f"status: {doc['status']} after {doc.get('time_delta', 0):.1f} s: "
         f"{doc['message']}")
    failed = (doc.get("process_log") or [{}])[-1]
    show(f"failed step: {failed.get('id')} ({failed.get('executable')}): "
         f"{error_line(doc)}")
    return doc


def show_interim_results(api: Actinia, doc: dict, resource_dir: str | None):
    heading("2. The interim results kept for the resume "
            "(GET /resource_storage)")
    entry = interim_entry(api, doc["resource_id"])
    if entry is None:
        show("none for this job (save_interim_results = False?)")
        return
    where = (f"{resource_dir}/{doc['user_id']}" if resource_dir
             else f"<grass_resource_dir>/{doc['user_id']}")
    show(f"{entry['steps']} interim result(s), the newest after step "
         f"{entry['newest_step_id']}: {megabytes(entry['bytes'])} "
         "(files unchanged between steps are stored once)")
    show(f"in {where}/interim/{doc['resource_id']}/")


def show_plan(api: Actinia, status_url: str, fixed: dict, changes) -> dict:
    """The dry-run answer (an error document when actinia refuses)."""
    heading("3. Fix the chain and ask for the plan "
            "(PUT ?dry_run=true, nothing runs)")
    show("the fix (config/examples/pc_noerror.json): " + "; ".join(changes))
    answer = api.call("PUT", f"{status_url}?dry_run=true", json=fixed)
    if answer.get("status") != "plan":
        show(f"PUT refused: {answer.get('message')}")
        return answer
    plan = answer["plan"]
    ids, actions = plan["step_ids"], plan["actions"]
    reused = [i for i, a in zip(ids, actions, strict=False) if a == "reused"]
    to_run = [f"{i} ({a})" for i, a in zip(ids, actions, strict=False) if a != "reused"]
    show(f"plan for iteration {answer['iteration']} ({answer['message']}):")
    show(f"   reuse:   {', '.join(reused) or '-'}")
    show(f"   run:     {', '.join(to_run) or '-'}")
    if plan["start"]:
        show(f"   restore: the interim result after {ids[plan['start'] - 1]}")
    if plan.get("notice"):
        show(f"notice: {plan['notice']}")
    return answer


def resume(api: Actinia, status_url: str, fixed: dict) -> dict:
    heading("4. Resume: PUT the fixed chain on the status URL")
    answer = api.call("PUT", status_url, json=fixed)
    show(f"PUT {status_url} -> iteration {answer.get('iteration')} "
         f"{answer['status']}")
    doc = api.wait(status_url, timeout=300)
    show(f"status: {doc['status']} after {doc.get('time_delta', 0):.1f} s: "
         f"{doc['message']}")
    return doc


def show_steps(first: dict, resumed: dict) -> bool:
    """The resumed iteration's steps as a table, and the time saved."""
    heading("5. The resumed iteration, step by step")
    before, now = run_times(first), run_times(resumed)
    report = resumed.get("resume") or {}
    restore = report.get("restore_seconds") or 0.0
    whole_chain, resumed_cost = 0.0, restore
    show(f"   {'step':<24} {'iteration ' + str(report.get('iteration')):<16}"
         "run time")
    for step in report.get("steps", []):
        if step["action"] == "reused":
            seconds = before.get(step["id"], 0.0)
            show(f"   {step['id']:<24} {'reused':<16}{seconds:6.2f} s "
                 "(in iteration 1)")
        else:
            seconds = now.get(step["id"], 0.0)
            label = "run (changed)" if step["action"] == "new" else "run"
            show(f"   {step['id']:<24} {label:<16}{seconds:6.2f} s")
            resumed_cost += seconds
        whole_chain += seconds
    show(f"the whole chain again: {whole_chain:.2f} s of GRASS modules; "
         f"the resume: {resumed_cost - restore:.2f} s + {restore:.2f} s "
         f"restoring the interim result -> {whole_chain - resumed_cost:.2f} s "
         "saved")
    return (resumed["status"] == "finished"
            and any(s["action"] == "reused" for s in report.get("steps", [])))


def show_result(api: Actinia, doc: dict) -> None:
    heading("6. Result and resource storage")
    stats = (doc.get("process_results") or {}).get("green_slopes_stats")
    if stats:
        show(f"green, gentle slopes: {stats['n']} of {stats['cells']} cells")
    left = interim_entry(api, doc["resource_id"])
    show("interim results of this job: " + (
        "removed (the job finished)" if left is None
        else f"{left['steps']} step(s), {megabytes(left['bytes'])}"))
    show(f"all iterations: GET {doc['urls']['status'].replace('resource_id-', '')}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?",
                        default="http://127.0.0.1:8088/api/v3")
    parser.add_argument("--auth", default="actinia-gdi:actinia-gdi")
    parser.add_argument("--resource-dir", default=None,
                        help="actinia's grass_resource_dir (for the path)")
    args = parser.parse_args(argv)
    api = Actinia(args.url.rstrip("/"), *args.auth.split(":", 1))
    failing = json.loads((EXAMPLES / "pc_error.json").read_text())
    fixed = json.loads((EXAMPLES / "pc_noerror.json").read_text())

    grass, projects = api.projects_url()
    show(f"\nThe main job: a chain fails, is fixed and resumes "
         f"(GRASS {grass}: {api.base}/{projects}/{PROJECT}/...)")
    first = post_failing_chain(api, projects, failing)
    if first["status"] != "error":
        show("expected the first iteration to fail")
        return 1
    status_url = first["urls"]["status"]
    show_interim_results(api, first, args.resource_dir)
    plan = show_plan(api, status_url, fixed, chain_changes(failing, fixed))
    if plan.get("status") != "plan":
        # save_interim_results = False is a choice, not a failure of the demo
        return 0 if "save_interim_results" in plan.get("message", "") else 1
    resumed = resume(api, status_url, fixed)
    ok = show_steps(first, resumed)
    show_result(api, resumed)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
