# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of planning a PUT, a POST with ``?reuse=``, the worker's
re-plan and a continuation after worker loss (plans.py) against real job
roots in a temp dir: no Flask, no actinia, no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from actinia_resume_plugin import inputs, plans
from actinia_resume_plugin.planner import step_fingerprints
from actinia_resume_plugin.store import SnapshotStore, interim_root
from actinia_resume_plugin.store.job_record import read_job_record

USER = "alice"
PROJECT = "nc"
CORE = "AsyncEphemeralResource"
WANTED = {"project": PROJECT, "core_class": CORE}


def chain(*expressions: str) -> dict:
    return {"version": "1", "list": [
        {"id": f"s{i}", "module": "r.mapcalc",
         "inputs": [{"param": "expression", "value": expr}]}
        for i, expr in enumerate(expressions)]}


FAILING = chain("a = 1", "b = a", "c = nosuchmap", "d = c")
FIXED = chain("a = 1", "b = a", "c = b", "d = c")


@pytest.fixture
def resources(tmp_path) -> Path:
    (tmp_path / "db" / PROJECT).mkdir(parents=True)
    return tmp_path


def failed_job(resources: Path, rid: str, saved=(0, 1), failed_step=2,
               record=None, the_chain=FAILING) -> SnapshotStore:
    """A job that failed at ``failed_step`` with interim results after
    ``saved``, recorded as our worker records it."""
    steps = the_chain["list"]
    fps = step_fingerprints(steps)
    store = SnapshotStore(interim_root(resources / "resources", USER, rid))
    live = resources / "live" / rid / "mapset"
    for step in saved:
        (live / f"map{step}").parent.mkdir(parents=True, exist_ok=True)
        (live / f"map{step}").write_text(str(step))
        store.save(step, {"mapset": str(live)},
                   {"fingerprints": fps[:step + 1]})
    store.write_job({
        "status": "error", "failed_step": failed_step, "fingerprints": fps,
        "chain": the_chain, "project": PROJECT, "core_class": CORE,
        "inputs": inputs.job_inputs(steps, [str(resources / "db" / PROJECT)]),
        **(record or {})})
    return store


def plan_put(store: SnapshotStore, the_chain=FIXED, from_step=None):
    return plans.plan_for_job(the_chain, read_job_record(store.root), store,
                              from_step)


# ------------------------------------------------------------------- PUT
def test_put_with_the_fixed_chain_starts_at_the_fixed_step(resources):
    plan = plan_put(failed_job(resources, "resource_id-a"))
    assert (plan.start, plan.restore_interim_result) == (2, 1)
    assert plan.actions == ["reused", "reused", "new", "new"]
    assert plan.step_ids == ["s0", "s1", "s2", "s3"]
    assert plan.forced_from is None and plan.notice is None
    doc = plan.to_json()
    assert doc["restore_snapshot"] == doc["restore_interim_result"] == 1
    assert set(doc) == {"start", "restore_interim_result", "restore_snapshot",
                        "actions", "notice", "steps_reused", "steps_to_run",
                        "forced_from", "step_ids"}


def test_put_from_step_by_id(resources):
    plan = plan_put(failed_job(resources, "resource_id-a"), from_step="s1")
    assert (plan.start, plan.restore_interim_result, plan.forced_from) == (
        1, 0, 1)


@pytest.mark.parametrize("ref, words", [
    ("nope", "unknown step 'nope'"), ("9", "out of range")])
def test_put_with_a_bad_step_reference_is_a_plan_error(resources, ref, words):
    with pytest.raises(plans.PlanError, match=words):
        plan_put(failed_job(resources, "resource_id-a"), from_step=ref)


def test_put_never_restores_a_damaged_interim_result(resources):
    store = failed_job(resources, "resource_id-a")
    # the object only step 1 added is cut short (a PUT checks sizes)
    obj = store.object_path(store.state(1)[0]["mapset"]["map1"].obj)
    open(obj, "wb").close()
    plan = plan_put(store)
    assert (plan.start, plan.restore_interim_result) == (1, 0)
    assert plan.notice.startswith(
        "The interim result of step 1 is damaged: mapset/map1 ")
    assert "It is not used: resuming after step 0." in plan.notice


def test_put_runs_again_from_a_step_whose_inputs_changed(resources):
    store = failed_job(resources, "resource_id-a")
    (resources / "db" / PROJECT / "PERMANENT").mkdir()
    plan = plan_put(store)
    assert (plan.start, plan.restore_interim_result) == (0, None)
    assert plan.inputs_changed and "PERMANENT" in plan.notice


def test_put_without_record_or_interim_results_says_so(resources):
    store = SnapshotStore(interim_root(resources / "resources", USER, "r"))
    plan = plan_put(store)
    assert (plan.start, plan.restore_interim_result) == (0, None)
    assert plan.notice.startswith("No interim results are stored")


def test_put_says_when_the_interim_result_was_saved_at_a_failure(resources):
    store = failed_job(resources, "resource_id-a", saved=())
    live = resources / "live" / "onerror"
    live.mkdir(parents=True)
    store.save(1, {"mapset": str(live)},
               {"fingerprints": step_fingerprints(FAILING["list"])[:2],
                "taken_at_failure": True})
    plan = plan_put(store)
    assert plan.restore_interim_result == 1
    assert plan.notice == plans.at_failure_notice(1)


# ----------------------------------------------------------------- reuse
def reuse_of(resources, rid, wanted=WANTED):
    return plans.plan_reuse_of(resources / "resources", USER, rid, FIXED,
                               wanted)


def test_reuse_of_a_job_plans_as_its_put_and_names_the_source(resources):
    store = failed_job(resources, "resource_id-a")
    plan = reuse_of(resources, "resource_id-a")
    assert plan.source_resource_id == "resource_id-a"
    assert (plan.start, plan.restore_interim_result) == (2, 1)
    assert plan.to_json() == dict(plan_put(store).to_json(),
                                  source_resource_id="resource_id-a")


@pytest.mark.parametrize("rid, record, wanted, words", [
    ("resource_id-none", None, WANTED, "you have no interim results"),
    ("resource_id-a", {"status": "running"}, WANTED, "it is running"),
    ("resource_id-a", None, dict(WANTED, project="other"),
     "its project is 'nc', not 'other'"),
])
def test_reuse_of_an_unusable_job_is_refused(resources, rid, record, wanted,
                                             words):
    failed_job(resources, "resource_id-a", record=record)
    with pytest.raises(plans.ReuseRefused, match=words):
        reuse_of(resources, rid, wanted)


def test_reuse_best_takes_the_job_that_reuses_most(resources):
    failed_job(resources, "resource_id-one", saved=(0,), failed_step=1)
    failed_job(resources, "resource_id-two")
    failed_job(resources, "resource_id-project", record={"project": "x"})
    plan = plans.plan_reuse_best(resources / "resources", USER, FIXED, WANTED)
    assert plan.source_resource_id == "resource_id-two"
    assert plan.steps_reused == 2


def test_reuse_best_without_a_match_runs_from_the_first_step(resources):
    failed_job(resources, "resource_id-a",
               the_chain=chain("x = 2", "b = x", "c = 1", "d = c"))
    plan = plans.plan_reuse_best(resources / "resources", USER, FIXED, WANTED)
    assert plan.to_json() == {
        "start": 0, "restore_interim_result": None, "restore_snapshot": None,
        "steps_reused": 0,
        "notice": "No interim results of your earlier jobs match this "
                  "chain; it runs from the first step"}


# ---------------------------------------------------------------- worker
def test_replan_plans_from_what_is_intact(resources):
    store = failed_job(resources, "resource_id-a")
    store.damage = lambda step: "gone." if step == 1 else None
    fps = step_fingerprints(FIXED["list"])
    plan = plans.replan(fps, read_job_record(store.root), store)
    assert (plan.start, plan.restore_interim_result) == (1, 0)
    assert plan.to_json()["forced_from"] is None


def test_reuse_gone_runs_every_step():
    doc = plans.reuse_gone(3).to_json()
    assert doc["actions"] == ["run"] * 3 and doc["start"] == 0
    assert doc["restore_snapshot"] is None and "gone" in doc["notice"]


# ---------------------------------------------------------- continuation
def continuation_of(resources, rid="resource_id-a") -> dict:
    return plans.plan_continuation(resources / "resources", USER,
                                   rid).to_json()


def test_continuation_runs_the_same_chain_after_the_newest_interim_result(
        resources):
    failed_job(resources, "resource_id-a", failed_step=None)
    assert continuation_of(resources) == {
        "start": 2, "restore_interim_result": 1, "restore_snapshot": 1,
        "notice": None, "steps_reused": 2,
        "actions": ["reused", "reused", "rerun", "rerun"],
        "steps_to_run": 2, "forced_from": None}


def test_continuation_skips_a_damaged_interim_result(resources, monkeypatch):
    failed_job(resources, "resource_id-a", failed_step=None)
    monkeypatch.setattr(SnapshotStore, "damage", lambda self, step: (
        "Step 1 is damaged." if step == 1 else None))
    doc = continuation_of(resources)
    assert (doc["start"], doc["restore_interim_result"]) == (1, 0)
    assert doc["notice"].startswith("Step 1 is damaged. It is not used")


def test_continuation_without_job_record_runs_from_the_first_step(resources):
    assert continuation_of(resources) == {
        "start": 0, "restore_interim_result": None, "restore_snapshot": None,
        "notice": None, "steps_reused": 0}
