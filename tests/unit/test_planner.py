# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the resume planner."""

import copy
import hashlib
import json

import pytest

from actinia_resume_plugin.planner import (
    ResumeNotPossible,
    ResumePlan,
    canonical_step,
    chain_fingerprints,
    execution_order,
    is_import_step,
    plan_resume,
    resolve_step_ref,
    step_fingerprints,
)


def importer(i):
    return {
        "id": f"import_{i}",
        "module": "importer",
        "inputs": [{"import_descr": {"source": f"http://x/{i}.tif", "type": "raster"},
                    "param": "map", "value": f"in_{i}"}],
    }


def mod(i, expr="a = 1"):
    return {
        "id": f"step_{i}",
        "module": "r.mapcalc",
        "inputs": [{"param": "expression", "value": f"{expr} + {i}"}],
        "outputs": [],
        "flags": "",
    }


CHAIN = [mod(0), mod(1), mod(2), mod(3), mod(4)]


# ------------------------------------------------------------------ fingerprints


def test_fingerprints_are_chained_sha256():
    fps = step_fingerprints(CHAIN)
    assert len(fps) == 5 and len(set(fps)) == 5
    c0 = json.dumps(CHAIN[0], sort_keys=True, separators=(",", ":"))
    assert fps[0] == hashlib.sha256(c0.encode()).hexdigest()
    c1 = canonical_step(CHAIN[1])
    assert fps[1] == hashlib.sha256((fps[0] + c1).encode()).hexdigest()


def test_fingerprint_ignores_key_order_and_comment_only():
    a = {"module": "r.info", "id": "x", "inputs": [{"param": "map", "value": "e"}]}
    b = {"inputs": [{"value": "e", "param": "map"}], "id": "x", "module": "r.info",
         "comment": "just a note"}
    assert step_fingerprints([a]) == step_fingerprints([b])
    for key, value in (("flags", "g"), ("stdout", {"id": "s", "format": "kv"}),
                       ("outputs", [{"param": "o", "value": "x"}]), ("exe", "/bin/true"),
                       ("params", ["-a"]), ("id", "y")):
        c = dict(a, **{key: value})
        assert step_fingerprints([c]) != step_fingerprints([a]), key
    # nested "comment" keys are data, not ignored
    d = copy.deepcopy(a)
    d["inputs"][0]["comment"] = "x"
    assert step_fingerprints([d]) != step_fingerprints([a])


def test_change_invalidates_all_later_fingerprints():
    old = step_fingerprints(CHAIN)
    changed = copy.deepcopy(CHAIN)
    changed[2]["flags"] = "g"
    new = step_fingerprints(changed)
    assert new[:2] == old[:2]
    assert all(n != o for n, o in zip(new[2:], old[2:], strict=True))
    # same later steps after a changed step still differ (chained)
    assert canonical_step(changed[3]) == canonical_step(CHAIN[3])


def test_canonical_step_rejects_non_dict():
    with pytest.raises(TypeError):
        canonical_step(["r.info"])


# ------------------------------------------------------------------ execution order


def test_execution_order_imports_first():
    chain = [mod(0), importer(1), mod(2), importer(3), mod(4)]
    assert is_import_step(chain[1]) and not is_import_step(chain[0])
    assert execution_order(chain) == [1, 3, 0, 2, 4]
    assert execution_order([]) == []
    assert execution_order(CHAIN) == [0, 1, 2, 3, 4]


def test_non_importer_module_with_import_descr_counts_as_import():
    s = mod(7)
    s["inputs"].append({"import_descr": {"source": "http://x", "type": "raster"},
                        "param": "map", "value": "m"})
    assert execution_order([mod(0), s]) == [1, 0]


def test_chain_fingerprints_use_execution_order():
    chain = [mod(0), importer(1), mod(2)]
    assert chain_fingerprints(chain) == step_fingerprints([chain[1], chain[0], chain[2]])
    assert chain_fingerprints(chain) != step_fingerprints(chain)


# ------------------------------------------------------------------ plan_resume


def fps_with_change(at, chain=CHAIN):
    c = copy.deepcopy(chain)
    c[at]["flags"] = "g"
    return step_fingerprints(c)


OLD = step_fingerprints(CHAIN)
ALL_SNAPS = {0, 1, 2, 3}


def test_unchanged_chain_resumes_at_failed_step():
    plan = plan_resume(OLD, OLD, failed_step=3, snapshot_steps={0, 1, 2})
    assert plan.start == 3 and plan.restore_snapshot == 2
    assert plan.actions == ["reused", "reused", "reused", "rerun", "rerun"]
    assert plan.notice is None


def test_fixing_failed_step_resumes_there():
    new = fps_with_change(3)
    plan = plan_resume(new, OLD, failed_step=3, snapshot_steps={0, 1, 2})
    assert (plan.start, plan.restore_snapshot) == (3, 2)
    assert plan.actions == ["reused", "reused", "reused", "new", "new"]


def test_edit_earlier_step_and_fix_failed_step_resumes_at_earlier_step():
    c = copy.deepcopy(CHAIN)
    c[1]["flags"] = "g"  # earlier edit
    c[3]["flags"] = "o"  # the fix of the failed step
    plan = plan_resume(step_fingerprints(c), OLD, failed_step=3, snapshot_steps={0, 1, 2})
    assert (plan.start, plan.restore_snapshot) == (1, 0)
    assert plan.actions == ["reused", "new", "new", "new", "new"]
    assert plan.notice is None


def test_change_at_first_step_runs_from_scratch():
    plan = plan_resume(fps_with_change(0), OLD, failed_step=3, snapshot_steps=ALL_SNAPS)
    assert (plan.start, plan.restore_snapshot) == (0, None)
    assert plan.actions == ["new"] * 5
    assert plan.notice is None


def test_missing_snapshot_falls_back_to_earlier_with_notice():
    plan = plan_resume(OLD, OLD, failed_step=3, snapshot_steps={0})
    assert (plan.start, plan.restore_snapshot) == (1, 0)
    assert plan.actions == ["reused", "rerun", "rerun", "rerun", "rerun"]
    assert "No snapshot after step 2" in plan.notice
    assert "step 1" in plan.notice


def test_missing_snapshot_falls_back_to_start_with_notice():
    plan = plan_resume(OLD, OLD, failed_step=3, snapshot_steps=[])
    assert (plan.start, plan.restore_snapshot) == (0, None)
    assert plan.actions == ["rerun"] * 5
    assert "from the start" in plan.notice


def test_stale_snapshots_after_change_are_not_used():
    # snapshots 3 and 4 exist but describe the old steps 3, 4; change at 2
    plan = plan_resume(fps_with_change(2), OLD, failed_step=None, snapshot_steps={0, 3, 4})
    assert (plan.start, plan.restore_snapshot) == (1, 0)
    assert "No snapshot after step 1" in plan.notice


def test_from_step_with_snapshot():
    plan = plan_resume(OLD, OLD, failed_step=4, snapshot_steps=ALL_SNAPS, from_step=2)
    assert (plan.start, plan.restore_snapshot) == (2, 1)
    assert plan.actions == ["reused", "reused", "rerun", "rerun", "rerun"]
    assert plan.notice is None


def test_from_step_zero_runs_from_start():
    plan = plan_resume(OLD, OLD, failed_step=4, snapshot_steps=ALL_SNAPS, from_step=0)
    assert (plan.start, plan.restore_snapshot) == (0, None)


def test_from_step_without_snapshot_raises_with_earliest_step():
    with pytest.raises(ResumeNotPossible) as exc:
        plan_resume(OLD, OLD, failed_step=4, snapshot_steps={1, 3}, from_step=3)
    assert exc.value.earliest == 2
    assert exc.value.possible == [0, 2]
    assert "from step 3" in str(exc.value) and "no snapshot after step 2" in str(exc.value)
    assert "Earliest possible step: 2" in str(exc.value)
    # the same with snapshot 2 present works
    plan = plan_resume(OLD, OLD, failed_step=4, snapshot_steps={1, 2, 3}, from_step=3)
    assert (plan.start, plan.restore_snapshot) == (3, 2)


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
    assert (plan.start, plan.restore_snapshot) == (1, 0)
    assert "requested step 3" in plan.notice and "changed" in plan.notice


def test_from_step_later_than_failed_step():
    plan = plan_resume(OLD, OLD, failed_step=1, snapshot_steps={0, 1, 2}, from_step=3)
    assert (plan.start, plan.restore_snapshot) == (1, 0)
    assert "failed" in plan.notice


def test_new_longer_chain():
    longer = CHAIN + [mod(5), mod(6)]
    new = step_fingerprints(longer)
    assert new[:5] == OLD
    # previous iteration completed (no failure): continue with the new steps
    plan = plan_resume(new, OLD, failed_step=None, snapshot_steps={0, 1, 2, 3, 4})
    assert (plan.start, plan.restore_snapshot) == (5, 4)
    assert plan.actions == ["reused"] * 5 + ["new", "new"]
    # previous iteration failed at 4: rerun 4, then the new steps
    plan = plan_resume(new, OLD, failed_step=4, snapshot_steps={0, 1, 2, 3})
    assert (plan.start, plan.restore_snapshot) == (4, 3)
    assert plan.actions == ["reused"] * 4 + ["rerun", "new", "new"]


def test_shorter_chain_after_failure_beyond_it():
    new = OLD[:3]
    plan = plan_resume(new, OLD, failed_step=4, snapshot_steps={0, 1, 2, 3})
    assert (plan.start, plan.restore_snapshot) == (3, 2)
    assert plan.actions == ["reused"] * 3


def test_unknown_failed_step_continues_after_latest_snapshot():
    plan = plan_resume(OLD, OLD, failed_step=None, snapshot_steps={0, 1})
    assert (plan.start, plan.restore_snapshot) == (2, 1)
    assert "unknown" in plan.notice
    plan = plan_resume(OLD, OLD, failed_step=None, snapshot_steps=[])
    assert (plan.start, plan.restore_snapshot) == (0, None)


def test_first_iteration_without_saved_fps():
    plan = plan_resume(OLD, [], failed_step=None, snapshot_steps=[])
    assert (plan.start, plan.restore_snapshot) == (0, None)
    assert plan.actions == ["new"] * 5
    assert plan.notice is None


def test_import_first_order_in_planning():
    chain = [mod(0), importer(1), mod(2)]
    old = chain_fingerprints(chain)
    changed = copy.deepcopy(chain)
    changed[0]["flags"] = "g"  # chain position 0 is execution position 1
    plan = plan_resume(chain_fingerprints(changed), old, failed_step=2, snapshot_steps={0, 1})
    assert (plan.start, plan.restore_snapshot) == (1, 0)
    assert plan.actions == ["reused", "new", "new"]


def test_to_dict_is_json_serialisable():
    plan = plan_resume(OLD, OLD, failed_step=3, snapshot_steps={0})
    d = plan.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["start"] == 1 and d["restore_snapshot"] == 0
    assert d["actions"][0] == "reused" and d["notice"]
    assert d["steps_reused"] == 1 and d["steps_to_run"] == 4
    assert isinstance(plan, ResumePlan)


@pytest.mark.parametrize("kwargs", [
    {"failed_step": -1}, {"from_step": -2}, {"snapshot_steps": [-1]},
])
def test_negative_positions_rejected(kwargs):
    args = {"failed_step": None, "snapshot_steps": [], **kwargs}
    with pytest.raises(ValueError):
        plan_resume(OLD, OLD, **args)


# ------------------------------------------------------------------ resolve_step_ref

IDS = ["import_1", "r_mapcalc", "r_info", "3"]


def test_resolve_by_id_and_number():
    assert resolve_step_ref("r_mapcalc", IDS) == 1
    assert resolve_step_ref("0", IDS) == 0
    assert resolve_step_ref(" 2 ", IDS) == 2
    assert resolve_step_ref(2, IDS) == 2
    assert resolve_step_ref("3", IDS) == 3  # id "3" is also position 3


def test_resolve_id_takes_precedence_over_number():
    assert resolve_step_ref("1", ["a", "b", "1"]) == 2


@pytest.mark.parametrize("ref, msg", [
    ("nope", "unknown step 'nope'"),
    ("4", "out of range"),
    ("-1", "out of range"),
    ("", "empty"),
    ("1.5", "unknown step"),
    (None, "invalid step reference"),
    (True, "invalid step reference"),
])
def test_resolve_errors(ref, msg):
    with pytest.raises(ValueError) as exc:
        resolve_step_ref(ref, IDS)
    assert msg in str(exc.value)


def test_resolve_ambiguous_id():
    with pytest.raises(ValueError, match="ambiguous"):
        resolve_step_ref("a", ["a", "b", "a"])


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
    from actinia_resume_plugin.planner import plan_from_interim_results

    original = step_fingerprints([{"id": s, "module": "m"} for s in "abcd"])
    broken = step_fingerprints([{"id": "x", "module": "m"}]
                               + [{"id": s, "module": "m"} for s in "bcd"])
    # iteration 1 saved steps 0 and 1 of the original chain; iteration 2
    # (broken chain) failed at step 0; the original chain comes back
    stored = {0: original[0], 1: original[1]}
    plan = plan_from_interim_results(original, broken, 0, stored)
    assert (plan.start, plan.restore_snapshot) == (2, 1)
    assert plan.actions == ["reused", "reused", "new", "new"]
    assert "earlier iteration" in plan.notice


def test_interim_results_of_another_chain_are_not_used():
    from actinia_resume_plugin.planner import plan_from_interim_results

    old = step_fingerprints([{"id": s, "module": "m"} for s in "abcd"])
    new = step_fingerprints([{"id": "a", "module": "m"},
                             {"id": "B", "module": "m"},
                             {"id": "c", "module": "m"},
                             {"id": "d", "module": "m"}])
    stored = {0: old[0], 1: old[1], 2: old[2]}
    plan = plan_from_interim_results(new, old, 3, stored)
    assert (plan.start, plan.restore_snapshot) == (1, 0)
    assert plan.actions[:2] == ["reused", "new"]


def test_from_step_is_not_overridden_by_later_interim_results():
    from actinia_resume_plugin.planner import plan_from_interim_results

    fps = step_fingerprints([{"id": s, "module": "m"} for s in "abcd"])
    stored = {0: fps[0], 1: fps[1], 2: fps[2]}
    plan = plan_from_interim_results(fps, fps, 3, stored, from_step=1)
    assert (plan.start, plan.restore_snapshot) == (1, 0)


# ------------------------------------------- plan_with_intact_interim_results
def test_damaged_interim_result_falls_back_to_nearest_intact_one():
    from actinia_resume_plugin.planner import plan_with_intact_interim_results

    fps = [f"fp{i}" for i in range(5)]
    stored = {i: fps[i] for i in range(4)}
    damaged = {3: "The interim result of step 3 is damaged: mapset/x.",
               2: "The interim result of step 2 is damaged: mapset/y."}
    plan = plan_with_intact_interim_results(fps, fps, 4, stored, damaged.get)
    assert plan.restore_snapshot == 1 and plan.start == 2
    assert plan.actions == ["reused", "reused", "rerun", "rerun", "rerun"]
    assert "step 3 is damaged" in plan.notice
    assert "step 2 is damaged" in plan.notice
    assert "resuming after step 1" in plan.notice


def test_all_interim_results_damaged_runs_from_the_first_step():
    from actinia_resume_plugin.planner import plan_with_intact_interim_results

    fps = ["a", "b", "c"]
    plan = plan_with_intact_interim_results(
        fps, fps, 2, {0: "a", 1: "b"}, lambda step: f"step {step} is gone.")
    assert plan.restore_snapshot is None and plan.start == 0
    assert "running from the first step" in plan.notice


def test_intact_interim_result_plans_as_before():
    from actinia_resume_plugin.planner import (
        plan_from_interim_results,
        plan_with_intact_interim_results,
    )

    fps = ["a", "b", "c"]
    plain = plan_from_interim_results(fps, fps, 2, {0: "a", 1: "b"})
    checked = plan_with_intact_interim_results(
        fps, fps, 2, {0: "a", 1: "b"}, lambda step: None)
    assert checked == plain
