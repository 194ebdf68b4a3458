# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""``GET /resource_storage`` and a PUT agree on which interim results
exist, also with damaged manifests (real stack).

A job fails after three saved steps; one stored file is damaged (the base
manifest, the newest delta, an object, or a manifest removed). The listing
names every other step dir as damaged (or not at all), its newest step is
the one a dry run plans to restore and the one the PUT restores, and no
damaged step is ever restored: the job ends with the right value.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from actinia_resume_plugin.store import KeptMapset, SnapshotStore

from .deployments import SUPERADMIN

# the chain of the damage tests: region (step 0), ten (1), five (2), a gate
# that fails while its path is missing (3), r.univar of ten (4)
from .test_damage import chain


def break_seal(store: SnapshotStore, step: int) -> None:
    path = store.step_path(step) / "manifest.json"
    path.write_bytes(path.read_bytes().replace(b'"step":', b'"step": ', 1))


def truncate_new_object(store: SnapshotStore) -> None:
    """The object of the raster step 2 wrote (its size no longer matches)."""
    state = store.state(2)[0]["mapset"]
    path = Path(store.object_path(state["fcell/five"].obj))
    path.chmod(0o644)
    with open(path, "r+b") as handle:
        handle.truncate(1)


DAMAGE = {
    "base_manifest": (lambda store: break_seal(store, 0), []),
    "delta": (lambda store: break_seal(store, 2), [0, 1]),
    "object": (truncate_new_object, [0, 1]),
    "missing_manifest": (
        lambda store: (store.step_path(1) / "manifest.json").unlink(), [0]),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_listing_and_put_agree_on_damaged_interim_results(
        stack_true, kind, tmp_path):
    dep, user = stack_true, SUPERADMIN[0]
    client = dep.client()
    gate = tmp_path / "gate"
    failed = client.run_chain(
        f"mapsets/agree_{uuid.uuid4().hex[:8]}/processing_async", chain(gate))
    assert failed["status"] == "error", failed["message"]
    status_url = failed["urls"]["status"]
    rid = status_url.rstrip("/").rsplit("/", 1)[1]
    store = SnapshotStore(dep.resource_dir / user / "interim" / rid)
    assert store.steps() == [0, 1, 2]
    damage, committed = DAMAGE[kind]
    damage(store)
    # the resume restores from the store, not from the kept mapset
    KeptMapset(dep.resource_dir, user, rid).remove()

    listed = client.request("GET", "resource_storage")
    assert listed.status_code == 200, listed.text
    unit = next(u for u in listed.json()["process_results"]["interim_results"]
                if u["resource_id"] == rid)
    damaged = [d["step"] for d in unit.get("damaged_steps", [])]
    assert unit["steps"] == len(committed), unit
    assert unit["newest_step"] == (committed[-1] if committed else None)
    assert sorted(damaged) == [s for s in (0, 1, 2) if s not in committed]

    gate.mkdir()
    dry = client.put(status_url, params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    plan = dry.json()["plan"]
    assert plan["restore_interim_result"] == unit["newest_step"], plan
    assert plan["restore_interim_result"] not in damaged
    assert client.put(status_url).status_code == 200
    done = client.wait(status_url, iteration=2)
    assert done["status"] == "finished", done["message"]
    assert done["resume"]["restored_interim_result"] == unit["newest_step"]
    assert float(done["process_results"]["stats"]["mean"]) == 10.0
