# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults of the resource storage (issue: full disks degrade, damaged
snapshots are caught), on the real stack.

- A full ``grass_resource_dir`` (a 60 MiB tmpfs): the job's own work goes on
  and succeeds when it can; saving stops with a note; interim results that
  fit stay; no staging leftovers. True, onError, persistent, and a disk that
  is full before the job starts.
- Damaged interim results (an object overwritten with the same size,
  truncated, missing): the plan says so and falls back to the nearest intact
  earlier interim result; the resumed job computes the right values.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from actinia_resume_plugin.store import SnapshotStore
from actinia_resume_plugin.store.kept_mapset import KeptMapset

from .chains import box_region, mapcalc, univar
from .chains import chain as chain_of
from .deployments import USER
from .jobs import univar_of

TMPFS_MB = 60


def chain(names_values, side: int, last: str) -> dict:
    """g.region side x side, one DCELL random raster per name (~8*side²
    bytes each), then r.univar of ``last``."""
    return chain_of(
        box_region(side, side),
        *(mapcalc(name, f"{name} = {value} + rand(0.0, 0.001)", "s")
          for name, value in names_values),
        univar("univar", last, "stats"))


BIG = [(f"big{i}", i) for i in range(1, 6)]  # 5 x ~18 MB > 60 MiB


def leftovers(root: Path) -> list[str]:
    """Staging dirs and temporary objects below a resource dir."""
    return [str(p) for p in root.rglob(".*")
            if p.name.startswith((".staging-", ".tmp-"))]


@pytest.fixture(scope="module")
def full_true(mounted_stacks):
    return mounted_stacks.get("full-true", "resources", f"tmpfs:{TMPFS_MB}m",
                              "--save-interim-results", "True")


@pytest.fixture(scope="module")
def full_onerror(mounted_stacks):
    return mounted_stacks.get("full-onerror", "resources",
                              f"tmpfs:{TMPFS_MB}m",
                              "--save-interim-results", "onError")


def interim(dep, status_url: str) -> SnapshotStore:
    rid = status_url.rstrip("/").rsplit("/", 1)[1]
    return SnapshotStore(dep.resource_dir / USER[0] / "interim" / rid)


def fail_on_full_disk(dep):
    """The big chain fails at its last step; saving stopped on the way."""
    client = dep.client(USER)
    failed = client.run_chain("processing_async",
                              chain(BIG, 1500, "no_such_map"), timeout=300)
    assert failed["status"] == "error"
    assert "no longer saved" in failed["message"], failed["message"]
    return client, failed


def test_full_disk_true_keeps_what_fits_and_resumes(full_true):
    client, failed = fail_on_full_disk(full_true)
    store = interim(full_true, failed["urls"]["status"])
    saved = store.steps()
    assert saved and max(saved) < len(BIG), saved  # what fitted is kept
    assert leftovers(full_true.resource_dir) == []

    status = failed["urls"]["status"]
    assert client.put(status, chain(BIG, 1500, "big5")).status_code == 200
    done = client.wait(status, iteration=2, timeout=300)
    assert done["status"] == "finished", done["message"]
    actions = [s["action"] for s in done["resume"]["steps"]]
    assert actions[: max(saved) + 1] == ["reused"] * (max(saved) + 1)
    assert 5.0 <= float(done["process_results"]["stats"]["mean"]) < 5.001
    assert leftovers(full_true.resource_dir) == []


def test_full_disk_onerror_job_goes_on(full_onerror):
    client, failed = fail_on_full_disk(full_onerror)
    assert interim(full_onerror, failed["urls"]["status"]).steps() == []
    assert leftovers(full_onerror.resource_dir) == []
    status = failed["urls"]["status"]
    assert client.put(status, chain(BIG, 1500, "big3")).status_code == 200
    done = client.wait(status, iteration=2, timeout=300)
    assert done["status"] == "finished", done["message"]
    assert 3.0 <= float(done["process_results"]["stats"]["mean"]) < 3.001


def test_full_disk_persistent_job_writes_its_mapset(full_true):
    client = full_true.client(USER)
    mapset = f"full_{uuid.uuid4().hex[:8]}"
    done = client.run_chain(f"mapsets/{mapset}/processing_async",
                            chain(BIG, 1500, "big2"), timeout=300)
    assert done["status"] == "finished", done["message"]
    assert "no longer saved" in done["message"]
    assert 4.0 <= float(univar_of(client, f"big4@{mapset}")["mean"]) < 4.001
    assert leftovers(full_true.resource_dir) == []


def test_disk_full_before_the_job_starts(full_true):
    filler = full_true.resource_dir / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        except OSError:
            pass
    try:
        client = full_true.client(USER)
        done = client.run_chain("processing_async",
                                chain(BIG[:1], 100, "big1"), timeout=300)
        assert done["status"] == "finished", done["message"]
        assert "no longer saved" in done["message"]
        assert 1.0 <= float(done["process_results"]["stats"]["mean"]) < 1.001
    finally:
        filler.unlink()


# ------------------------------------------------------------ damage

SMALL = [("ten", 10), ("five", 5), ("twenty", 20)]


def failed_small_job(dep):
    client = dep.client(USER)
    failed = client.run_chain("processing_async",
                              chain(SMALL, 50, "no_such_map"))
    assert failed["status"] == "error"
    store = interim(dep, failed["urls"]["status"])
    assert store.steps() == [0, 1, 2, 3]
    return client, failed["urls"]["status"], store


def object_of(store: SnapshotStore, step: int, rel: str) -> str:
    state, _ = store.state(step)
    return store.object_path(state["mapset"][rel].obj)


def damage_object(path: str, how: str, donor: str | None = None) -> None:
    os.chmod(path, 0o644)
    if how == "same-size":
        data = Path(donor).read_bytes() if donor and \
            os.path.getsize(donor) == os.path.getsize(path) else \
            bytes(b ^ 0xFF for b in Path(path).read_bytes())
        Path(path).write_bytes(data)
    elif how == "truncate":
        os.truncate(path, 0)
    else:
        os.unlink(path)


@pytest.mark.parametrize("how", ["same-size", "truncate", "missing"])
def test_damaged_interim_result_is_never_restored(stack_true, how):
    client, status, store = failed_small_job(stack_true)
    # the interim result after step 3 (twenty) holds fcell/ten; damage it
    # there: it is the one object all snapshots share
    target = object_of(store, 3, "fcell/ten")
    damage_object(target, how, donor=object_of(store, 3, "fcell/five"))
    # the resume restores from the store, not from the failed job's kept
    # mapset (which needs no stored object it does not put back)
    KeptMapset(stack_true.resource_dir, USER[0], store.root.name).remove()

    fixed = chain(SMALL, 50, "ten")
    plan = client.put(f"{status}?dry_run=true", fixed).json()["plan"]
    assert "damaged" in plan["notice"] and "fcell/ten" in plan["notice"]
    assert plan["restore_snapshot"] == 0  # before `ten` was made
    assert client.put(status, fixed).status_code == 200
    done = client.wait(status, iteration=2)
    assert done["status"] == "finished", done["message"]
    stats = done["process_results"]["stats"]
    assert 10.0 <= float(stats["mean"]) < 10.001
    assert "damaged" in done["resume"]["notice"]
    assert done["resume"]["restored_interim_result"] == 0
    assert done["resume"]["start_step"] == 1
