# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the planning rules (plans.py): where an iteration starts
and which interim result it restores."""

import copy
import json

import pytest

from actinia_resume_plugin.planner import chain_fingerprints, step_fingerprints
from actinia_resume_plugin.plans import (
    ResumeNotPossible,
    ResumePlan,
    plan_from_interim_results,
    plan_resume,
    plan_with_intact_interim_results,
)

from .test_planner import CHAIN, importer, mod

# ------------------------------------------------------------------ plan_resume


def fps_with_change(at, chain=CHAIN):
    c = copy.deepcopy(chain)
    c[at]["flags"] = "g"
    return step_fingerprints(c)


OLD = step_fingerprints(CHAIN)
ALL_SNAPS = {0, 1, 2, 3}


def test_unchanged_chain_resumes_at_failed_step():
    plan = plan_resume(OLD, OLD, failed_step=3, snapshot_steps={0, 1, 2})
    assert plan.start == 3 and plan.restore_interim_result == 2
    assert plan.actions == ["reused", "reused", "reused", "rerun", "rerun"]
    assert plan.notice is None


def test_fixing_failed_step_resumes_there():
    new = fps_with_change(3)
    plan = plan_resume(new, OLD, failed_step=3, snapshot_steps={0, 1, 2})
    assert (plan.start, plan.restore_interim_result) == (3, 2)
    assert plan.actions == ["reused", "reused", "reused", "new", "new"]


def test_edit_earlier_step_and_fix_failed_step_resumes_at_earlier_step():
    c = copy.deepcopy(CHAIN)
    c[1]["flags"] = "g"  # earlier edit
    c[3]["flags"] = "o"  # the fix of the failed step
    plan = plan_resume(step_fingerprints(c), OLD, failed_step=3, snapshot_steps={0, 1, 2})
    assert (plan.start, plan.restore_interim_result) == (1, 0)
    assert plan.actions == ["reused", "new", "new", "new", "new"]
    assert plan.notice is None


def test_change_at_first_step_runs_from_scratch():
    plan = plan_resume(fps_with_change(0), OLD, failed_step=3, snapshot_steps=ALL_SNAPS)
    assert (plan.start, plan.restore_interim_result) == (0, None)
    assert plan.actions == ["new"] * 5
    assert plan.notice is None


def test_missing_snapshot_falls_back_to_earlier_with_notice():
    plan = plan_resume(OLD, OLD, failed_step=3, snapshot_steps={0})
    assert (plan.start, plan.restore_interim_result) == (1, 0)
    assert plan.actions == ["reused", "rerun", "rerun", "rerun", "rerun"]
    assert "No snapshot after step 2" in plan.notice
    assert "step 1" in plan.notice


def test_missing_snapshot_falls_back_to_start_with_notice():
    plan = plan_resume(OLD, OLD, failed_step=3, snapshot_steps=[])
    assert (plan.start, plan.restore_interim_result) == (0, None)
    assert plan.actions == ["rerun"] * 5
    assert "from the start" in plan.notice


def test_stale_snapshots_after_change_are_not_used():
    # snapshots 3 and 4 exist but describe the old steps 3, 4; change at 2
    plan = plan_resume(fps_with_change(2), OLD, failed_step=None, snapshot_steps={0, 3, 4})
    assert (plan.start, plan.restore_interim_result) == (1, 0)
    assert "No snapshot after step 1" in plan.notice


def test_from_step_with_snapshot():
    plan = plan_resume(OLD, OLD, failed_step=4, snapshot_steps=ALL_SNAPS, from_step=2)
    assert (plan.start, plan.restore_interim_result) == (2, 1)
    assert plan.actions == ["reused", "reused", "rerun", "rerun", "rerun"]
    assert plan.notice is None


def test_from_step_zero_runs_from_start():
    plan = plan_resume(OLD, OLD, failed_step=4, snapshot_steps=ALL_SNAPS, from_step=0)
    assert (plan.start, plan.restore_interim_result) == (0, None)


def test_from_step_without_snapshot_raises_with_earliest_step():
    with pytest.raises(ResumeNotPossible) as exc:
        plan_resume(OLD, OLD, failed_step=4, snapshot_steps={1, 3}, from_step=3)
    assert exc.value.earliest == 2
    assert exc.value.possible == [0, 2]
    assert "from step 3" in str(exc.value) and "no snapshot after step 2" in str(exc.value)
    assert "Earliest possible step: 2" in str(exc.value)
    # the same with snapshot 2 present works
    plan = plan_resume(OLD, OLD, failed_step=4, snapshot_steps={1, 2, 3}, from_step=3)
    assert (plan.start, plan.restore_interim_result) == (3, 2)


def test_from_step_without_any_snapshot_names_start():
    with pytest.raises(ResumeNotPossible) as exc:
        plan_resume(OLD, OLD, failed_step=4, snapshot_steps=set(), from_step=3)
    assert exc.value.earliest == 0
    assert "Earliest possible step: 0" in str(exc.value)
    assert "from the start" in str(exc.value)


def test_from_step_beyond_chain_length():
    with pytest.raises(ResumeNotPossible) as exc:
        plan_resume(OLD, OLD, failed_step=None, snapshot_steps=ALL_SNAPS, from_step=5)
    assert "only 5 step(s)" in str(exc.value)
    with pytest.raises(ResumeNotPossible):
        plan_resume([], [], failed_step=None, snapshot_steps=[], from_step=0)


def test_from_step_later_than_change_resumes_at_change():
    plan = plan_resume(fps_with_change(1), OLD, failed_step=None, snapshot_steps={0, 1, 2},
                       from_step=3)
    assert (plan.start, plan.restore_interim_result) == (1, 0)
    assert "requested step 3" in plan.notice and "changed" in plan.notice


def test_from_step_later_than_failed_step():
    plan = plan_resume(OLD, OLD, failed_step=1, snapshot_steps={0, 1, 2}, from_step=3)
    assert (plan.start, plan.restore_interim_result) == (1, 0)
    assert "failed" in plan.notice


def test_new_longer_chain():
    longer = CHAIN + [mod(5), mod(6)]
    new = step_fingerprints(longer)
    assert new[:5] == OLD
    # previous iteration completed (no failure): continue with the new steps
    plan = plan_resume(new, OLD, failed_step=None, snapshot_steps={0, 1, 2, 3, 4})
    assert (plan.start, plan.restore_interim_result) == (5, 4)
    assert plan.actions == ["reused"] * 5 + ["new", "new"]
    # previous iteration failed at 4: rerun 4, then the new steps
    plan = plan_resume(new, OLD, failed_step=4, snapshot_steps={0, 1, 2, 3})
    assert (plan.start, plan.restore_interim_result) == (4, 3)
    assert plan.actions == ["reused"] * 4 + ["rerun", "new", "new"]


def test_shorter_chain_after_failure_beyond_it():
    new = OLD[:3]
    plan = plan_resume(new, OLD, failed_step=4, snapshot_steps={0, 1, 2, 3})
    assert (plan.start, plan.restore_interim_result) == (3, 2)
    assert plan.actions == ["reused"] * 3


def test_unknown_failed_step_continues_after_latest_snapshot():
    plan = plan_resume(OLD, OLD, failed_step=None, snapshot_steps={0, 1})
    assert (plan.start, plan.restore_interim_result) == (2, 1)
    assert "unknown" in plan.notice
    plan = plan_resume(OLD, OLD, failed_step=None, snapshot_steps=[])
    assert (plan.start, plan.restore_interim_result) == (0, None)


def test_first_iteration_without_saved_fps():
    plan = plan_resume(OLD, [], failed_step=None, snapshot_steps=[])
    assert (plan.start, plan.restore_interim_result) == (0, None)
    assert plan.actions == ["new"] * 5
    assert plan.notice is None


def test_import_first_order_in_planning():
    chain = [mod(0), importer(1), mod(2)]
    old = chain_fingerprints(chain)
    changed = copy.deepcopy(chain)
    changed[0]["flags"] = "g"  # chain position 0 is execution position 1
    plan = plan_resume(chain_fingerprints(changed), old, failed_step=2, snapshot_steps={0, 1})
    assert (plan.start, plan.restore_interim_result) == (1, 0)
    assert plan.actions == ["reused", "new", "new"]


def test_to_json_is_json_serialisable_and_keeps_the_old_key():
    plan = plan_resume(OLD, OLD, failed_step=3, snapshot_steps={0})
    d = plan.to_json()
    assert json.loads(json.dumps(d)) == d
    assert d["start"] == 1 and d["restore_interim_result"] == 0
    assert d["restore_snapshot"] == 0  # the alias (CHANGELOG.md)
    assert d["actions"][0] == "reused" and d["notice"]
    assert d["steps_reused"] == 1 and d["steps_to_run"] == 4
    assert d["forced_from"] is None
    assert isinstance(plan, ResumePlan)


def test_from_json_reads_to_json_and_the_old_key():
    plan = plan_resume(OLD, OLD, failed_step=3, snapshot_steps={0})
    plan.step_ids, plan.source_resource_id = list("abcde"), "resource_id-x"
    assert ResumePlan.from_json(plan.to_json()) == plan
    old = {"start": 2, "restore_snapshot": 1, "actions": ["reused"] * 2,
           "steps_reused": 2, "notice": None}
    assert ResumePlan.from_json(old).restore_interim_result == 1


def test_a_plan_without_actions_has_only_the_keys_it_always_had():
    plan = ResumePlan(start=0, restore_interim_result=None, notice="n")
    assert plan.to_json() == {
        "start": 0, "restore_interim_result": None,
        "restore_snapshot": None, "notice": "n", "steps_reused": 0}


@pytest.mark.parametrize("kwargs", [
    {"failed_step": -1}, {"from_step": -2}, {"snapshot_steps": [-1]},
])
def test_negative_positions_rejected(kwargs):
    args = {"failed_step": None, "snapshot_steps": [], **kwargs}
    with pytest.raises(ValueError):
        plan_resume(OLD, OLD, **args)


def test_from_step_before_only_later_snapshot_names_that_snapshot():
    # onError kept only the snapshot before the failed step 4
    with pytest.raises(ResumeNotPossible) as exc:
        plan_resume(OLD, OLD, failed_step=4, snapshot_steps={3}, from_step=2)
    assert exc.value.earliest == 4
    assert exc.value.possible == [0, 4]
    assert "Earliest possible step: 4" in str(exc.value)
    assert "0 (from the start)" in str(exc.value)


# ---------------------------------------------------- plan_from_interim_results
def test_interim_results_of_an_earlier_iteration_are_reused_after_revert():
    original = step_fingerprints([{"id": s, "module": "m"} for s in "abcd"])
    broken = step_fingerprints([{"id": "x", "module": "m"}]
                               + [{"id": s, "module": "m"} for s in "bcd"])
    # iteration 1 saved steps 0 and 1 of the original chain; iteration 2
    # (broken chain) failed at step 0; the original chain comes back
    stored = {0: original[0], 1: original[1]}
    plan = plan_from_interim_results(original, broken, 0, stored)
    assert (plan.start, plan.restore_interim_result) == (2, 1)
    assert plan.actions == ["reused", "reused", "new", "new"]
    assert "earlier iteration" in plan.notice


def test_interim_results_of_another_chain_are_not_used():
    old = step_fingerprints([{"id": s, "module": "m"} for s in "abcd"])
    new = step_fingerprints([{"id": "a", "module": "m"},
                             {"id": "B", "module": "m"},
                             {"id": "c", "module": "m"},
                             {"id": "d", "module": "m"}])
    stored = {0: old[0], 1: old[1], 2: old[2]}
    plan = plan_from_interim_results(new, old, 3, stored)
    assert (plan.start, plan.restore_interim_result) == (1, 0)
    assert plan.actions[:2] == ["reused", "new"]


def test_from_step_is_not_overridden_by_later_interim_results():
    fps = step_fingerprints([{"id": s, "module": "m"} for s in "abcd"])
    stored = {0: fps[0], 1: fps[1], 2: fps[2]}
    plan = plan_from_interim_results(fps, fps, 3, stored, from_step=1)
    assert (plan.start, plan.restore_interim_result) == (1, 0)


# ------------------------------------------- plan_with_intact_interim_results
def test_damaged_interim_result_falls_back_to_nearest_intact_one():
    fps = [f"fp{i}" for i in range(5)]
    stored = {i: fps[i] for i in range(4)}
    damaged = {3: "The interim result of step 3 is damaged: mapset/x.",
               2: "The interim result of step 2 is damaged: mapset/y."}
    plan = plan_with_intact_interim_results(fps, fps, 4, stored, damaged.get)
    assert plan.restore_interim_result == 1 and plan.start == 2
    assert plan.actions == ["reused", "reused", "rerun", "rerun", "rerun"]
    assert "step 3 is damaged" in plan.notice
    assert "step 2 is damaged" in plan.notice
    assert "resuming after step 1" in plan.notice


def test_all_interim_results_damaged_runs_from_the_first_step():
    fps = ["a", "b", "c"]
    plan = plan_with_intact_interim_results(
        fps, fps, 2, {0: "a", 1: "b"}, lambda step: f"step {step} is gone.")
    assert plan.restore_interim_result is None and plan.start == 0
    assert "running from the first step" in plan.notice


def test_intact_interim_result_plans_as_before():
    fps = ["a", "b", "c"]
    plain = plan_from_interim_results(fps, fps, 2, {0: "a", 1: "b"})
    checked = plan_with_intact_interim_results(
        fps, fps, 2, {0: "a", 1: "b"}, lambda step: None)
    assert checked == plain
