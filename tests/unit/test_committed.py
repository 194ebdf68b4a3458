# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""``GET /resource_storage`` and a PUT agree on which interim results
exist, also when manifests or objects are damaged: the listing's
``steps`` (the store's survey, from the walk the listing makes) are
exactly the steps the PUT's damage check accepts and a restore can
restore, and the plan restores the newest of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actinia_resume_plugin import inputs, plans
from actinia_resume_plugin.planner import step_fingerprints
from actinia_resume_plugin.store import (
    SnapshotError,
    SnapshotStore,
    interim_root,
    read_job_record,
    scan_user_storage,
)
from tests.unit.test_plans_for_jobs import chain

USER = "alice"
RID = "resource_id-agree"
PROJECT = "nc"


FAILING = chain("a = 1", "b = a", "c = b", "d = nosuchmap")
FIXED = chain("a = 1", "b = a", "c = b", "d = c")


@pytest.fixture
def job(tmp_path) -> SnapshotStore:
    """A job that failed at step 3 with interim results after steps 0-2:
    step 0 writes ``a`` and ``shared``, step 1 adds ``b``, step 2 adds
    ``c`` and rewrites ``shared`` (so step 0's object of it is in the
    states of steps 0 and 1, not in step 2's)."""
    (tmp_path / "db" / PROJECT).mkdir(parents=True)
    store = SnapshotStore(interim_root(tmp_path / "resources", USER, RID))
    live = tmp_path / "live" / "mapset"
    live.mkdir(parents=True)
    fps = step_fingerprints(FAILING["list"])
    files = {0: {"a": b"a" * 100, "shared": b"0" * 50}, 1: {"b": b"b" * 100},
             2: {"c": b"c" * 100, "shared": b"2" * 70}}
    for step, written in files.items():
        for name, data in written.items():
            (live / name).write_bytes(data)
            os.utime(live / name, ns=(10**18 + step, 10**18 + step))
        store.save(step, {"mapset": str(live)},
                   {"fingerprints": fps[:step + 1]})
    store.write_job({
        "status": "error", "failed_step": 3, "fingerprints": fps,
        "chain": FAILING, "project": PROJECT,
        "core_class": "AsyncEphemeralResource",
        "inputs": inputs.job_inputs(FAILING["list"],
                                    [str(tmp_path / "db" / PROJECT)])})
    return store


def listed(store: SnapshotStore) -> tuple[list[int], list[int]]:
    """What GET /resource_storage says: committed and damaged steps."""
    unit = next(u for u in scan_user_storage(
        store.root.parent.parent.parent, USER).units if u.name == RID)
    doc = unit.to_dict()
    assert doc["steps"] == len(unit.steps)
    return unit.steps, [d["step"] for d in doc.get("damaged_steps", [])]


def restorable(store: SnapshotStore, step: int, tmp_path: Path) -> bool:
    try:
        SnapshotStore(store.root).restore(
            step, {"mapset": tmp_path / f"restore-{step}"})
    except SnapshotError:
        return False
    return True


def damage_manifest(store, step):
    path = store.step_path(step) / "manifest.json"
    path.write_bytes(path.read_bytes().replace(b'"step":', b'"step": ', 1))


def object_of(store, step, rel):
    state, _ = store.state(step)
    return Path(store.object_path(state["mapset"][rel].obj))


def damage_base_manifest(store):
    damage_manifest(store, 0)


def damage_delta(store):
    damage_manifest(store, 2)


def truncate_object(store):
    os.truncate(object_of(store, 1, "b"), 10)


def remove_object(store):
    object_of(store, 2, "c").unlink()


def remove_replaced_object(store):
    """An object steps 0 and 1 hold and step 2 replaced: step 2, whose
    chain names it in step 0's delta, is intact (a restore never reads
    it)."""
    object_of(store, 0, "shared").unlink()


def missing_manifest(store):
    (store.step_path(1) / "manifest.json").unlink()


@pytest.mark.parametrize("damage, committed", [
    (None, [0, 1, 2]),
    (damage_base_manifest, []),
    (damage_delta, [0, 1]),
    (truncate_object, [0]),
    (remove_object, [0, 1]),
    (remove_replaced_object, [2]),
    (missing_manifest, [0]),
])
def test_listing_and_put_agree(job, tmp_path, damage, committed):
    if damage is not None:
        damage(job)
    steps, damaged = listed(job)
    assert steps == committed
    assert sorted(steps + damaged) == [
        s for s in (0, 1, 2) if job.step_path(s).is_dir()]
    fresh = SnapshotStore(job.root)
    assert fresh.survey()[0] == committed  # without the listing's walk
    for step in (0, 1, 2):
        accepted = fresh.damage(step) is None
        assert accepted == (step in committed), step
        assert restorable(job, step, tmp_path) == accepted, step
    for dry_run in (False, True):
        plan = plans.plan_for_job(FIXED, read_job_record(job.root),
                                  SnapshotStore(job.root),
                                  verify_content=dry_run)
        assert plan.restore_interim_result == (
            max(committed) if committed else None)
