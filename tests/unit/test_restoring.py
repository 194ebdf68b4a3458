# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the restore an iteration starts from (worker/restoring.py):
real snapshot stores on a temp dir, real files, no GRASS and no actinia."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from actinia_resume_plugin import inputs
from actinia_resume_plugin.store import (
    KeptMapset,
    SnapshotStore,
    interim_root,
)
from actinia_resume_plugin.worker import report
from actinia_resume_plugin.worker.removals import DeferredRemovals
from actinia_resume_plugin.worker.restoring import (
    CannotRestore,
    Restorer,
    source_store,
)
from actinia_resume_plugin.worker.units import StepUnit

from .test_saving import FPS, Log, make_mapset, write

CHAIN = {"version": 1, "list": [{"id": f"s{i}", "module": "g.region"}
                                for i in range(4)]}
RECLASS = "reclass\nname: elev\nmapset: %s\n"
#: what the chain reads from outside, unchanged since it was recorded
INPUTS = inputs.job_inputs(CHAIN["list"], ["/nonexistent/grassdb"])


@pytest.fixture
def job(tmp_path):
    """A failed iteration: steps 0 and 1 saved (each with a stdout log),
    the job record says it failed at step 2."""
    res = tmp_path / "res"
    old = tmp_path / "db1" / "proj"
    mapset = make_mapset(old / "mapset_old")
    tmpdir = tmp_path / "db1" / ".tmp"
    write(tmpdir / "scratch", "x")
    store = SnapshotStore(interim_root(res, "u", "job1"))
    for step in (0, 1):
        write(mapset / "cell" / f"out{step}", bytes([step + 1]) * 100)
        write(mapset / "cellhd" / f"out{step}", RECLASS % "mapset_old")
        store.save(step, {"mapset": mapset, "tmpdir": tmpdir}, {
            "mapset_name": "mapset_old", "fingerprints": FPS[:step + 1],
            "process_logs": {f"p{step}": {"stdout": f"log {step}"}}})
    store.write_job({"chain": CHAIN, "fingerprints": FPS, "failed_step": 2,
                     "status": "error", "inputs": INPUTS})
    log = Log()
    return SimpleNamespace(
        tmp_path=tmp_path, res=res, store=store, old_mapset=mapset,
        old_tmpdir=tmpdir, kept=KeptMapset(res, "u", "job1"), log=log,
        removals=DeferredRemovals(log), new=tmp_path / "db2" / "proj",
        new_tmpdir=tmp_path / "db2" / ".tmp", renamed=[], planned=[],
        logs={})


def restorer(job, plan, store=None):
    return Restorer(
        plan, job.store, store or job.store, job.kept, job.removals,
        iteration=2, saving_enabled=True, log=job.log,
        for_client=lambda exc: report.for_client(exc, [job.tmp_path]),
        process_logs=job.logs, on_plan=job.planned.append,
        change_mapsetname=lambda *args: job.renamed.append(args))


UNITS = [StepUnit(i, i, f"s{i}", [SimpleNamespace(id=f"p{i}")])
         for i in range(4)]
RESUME = {"start": 2, "restore_snapshot": 1, "restore_interim_result": 1,
          "actions": ["reused", "reused", "rerun", "run"]}


def files(base):
    return {str(p.relative_to(base)): p.read_bytes()
            for p in sorted(base.rglob("*")) if p.is_file()}


def test_without_a_plan_everything_runs_and_nothing_is_restored(job):
    r = restorer(job, {})
    r.prepare(UNITS, FPS, INPUTS)
    assert (r.start, r.info, job.planned) == (0, None, [0])
    assert r.report == {
        "iteration": 2, "start_step": 0, "restored_interim_result": None,
        "steps": [{"id": f"s{i}", "action": "run"} for i in range(4)]}
    assert r.restore(str(job.new), "mapset_new", str(job.new_tmpdir)) is False
    assert not job.new.exists()


def test_the_planned_interim_result_is_restored_under_the_new_name(job):
    r = restorer(job, dict(RESUME))
    r.prepare(UNITS, FPS, INPUTS)
    assert (r.start, r.info.step, job.planned) == (2, 1, [2])
    # the logs of the reused steps are taken over from the interim result
    assert job.logs == {"p1": {"stdout": "log 1"}}
    assert r.restore(str(job.new), "mapset_new", str(job.new_tmpdir))
    restored = job.new / "mapset_new"
    assert files(restored) == {
        **files(job.old_mapset),
        "cellhd/out0": (RECLASS % "mapset_new").encode(),
        "cellhd/out1": (RECLASS % "mapset_new").encode()}
    assert files(job.new_tmpdir) == files(job.old_tmpdir)
    # no group, raster VRT or tgis dir: nothing for actinia's rewrite
    assert job.renamed == []
    assert r.report["restored_from"] == "interim_results"
    assert r.report["files_put_back"] == len(files(restored)) + 1
    assert r.report["verified_bytes"] > 0
    assert r.report["kept_mapset"]["adopted"] is False
    assert r.report["start_step"] == 2


def test_actinia_rewrites_the_dirs_that_may_name_the_mapset(job):
    """actinia's change_mapsetname gets group and tgis when the restored
    state has them, cell_misc only when a raster VRT is in it."""
    write(job.old_mapset / "group" / "g" / "REF", "elev mapset_old\n")
    write(job.old_mapset / "cell_misc" / "elev" / "f_range", b"1")
    write(job.old_mapset / "cell_misc" / "v" / "vrt", "elev@mapset_old\n")
    job.store.save(1, {"mapset": job.old_mapset, "tmpdir": job.old_tmpdir},
                   {"mapset_name": "mapset_old", "fingerprints": FPS[:2]})
    r = restorer(job, dict(RESUME))
    r.prepare(UNITS, FPS, INPUTS)
    assert r.restore(str(job.new), "mapset_new", str(job.new_tmpdir))
    assert [(os.path.basename(path), d, old, new)
            for path, d, old, new in job.renamed] == [
        ("group", "group", "mapset_old", "mapset_new"),
        ("cell_misc", "cell_misc", "mapset_old", "mapset_new")]


def test_logs_the_job_has_are_not_replaced(job):
    job.logs["p1"] = {"stdout": "this iteration's"}
    restorer(job, dict(RESUME)).prepare(UNITS, FPS, INPUTS)
    assert job.logs == {"p1": {"stdout": "this iteration's"}}


def test_an_interim_result_removed_since_the_put_is_planned_again(job):
    job.store.prune({0})
    r = restorer(job, dict(RESUME))
    r.prepare(UNITS, FPS, INPUTS)
    assert (r.start, r.info.step) == (1, 0)
    assert r.plan["restore_interim_result"] == 0
    assert r.report["steps"][1] == {"id": "s1", "action": "rerun"}
    assert job.planned == [1]


def test_damage_found_while_restoring_falls_back_to_an_intact_one(job):
    r = restorer(job, dict(RESUME))
    r.prepare(UNITS, FPS, INPUTS)
    # same size, other bytes: only the restore's hash check sees it
    obj = next(p for p in (job.store.root / "objects").rglob("*")
               if p.is_file() and p.read_bytes() == b"\x02" * 100)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"\x03" * 100)
    assert r.restore(str(job.new), "mapset_new", str(job.new_tmpdir))
    assert (r.start, r.info.step, job.planned) == (1, 0, [2, 1])
    assert "damaged" in r.report["notice"]
    assert str(job.tmp_path) not in r.report["notice"]
    restored = files(job.new / "mapset_new")
    assert "cell/out0" in restored and "cell/out1" not in restored
    assert job.logs == {"p0": {"stdout": "log 0"}}  # step 1's log dropped


def test_a_kept_mapset_is_adopted(job):
    live = job.store.live_state()
    job.kept.keep({"mapset": job.old_mapset, "tmpdir": job.old_tmpdir},
                  live.state, {"step": live.step, "snapshot_id": live.id,
                               "mapset_name": "mapset_old"})
    r = restorer(job, dict(RESUME))
    r.prepare(UNITS, FPS, INPUTS)
    assert r.kept_mapset_usable()
    assert r.restore(str(job.new), "mapset_new", str(job.new_tmpdir))
    assert r.report["restored_from"] == "kept_mapset"
    assert r.report["kept_mapset"]["adopted"] is True
    assert r.report["files_put_back"] == 0
    assert files(job.new / "mapset_new")["cellhd/out1"] == \
        (RECLASS % "mapset_new").encode()
    assert not job.kept.exists()


def test_the_walk_begun_when_the_job_starts_is_the_one_compared(job):
    """The job begins the kept mapset's stat walk before actinia's set-up;
    the plan check and the adoption use that walk, no second one; a job
    that ends before its restore stops it."""
    live = job.store.live_state()
    job.kept.keep({"mapset": job.old_mapset, "tmpdir": job.old_tmpdir},
                  live.state, {"step": live.step, "snapshot_id": live.id,
                               "mapset_name": "mapset_old"})
    r = restorer(job, dict(RESUME))
    assert r.begin_walk()
    walk = r._kept_listing
    assert r.begin_walk() and r._kept_listing is walk  # once
    r.prepare(UNITS, FPS, INPUTS)
    assert r._kept_listing is walk
    assert r.restore(str(job.new), "mapset_new", str(job.new_tmpdir))
    assert r.report["restored_from"] == "kept_mapset"
    assert r._kept_listing is None
    # a job that fails before its restore: the walk is stopped
    other = restorer(job, dict(RESUME))
    job.kept.keep({"mapset": job.new / "mapset_new"}, live.state,
                  {"step": live.step, "snapshot_id": live.id,
                   "mapset_name": "mapset_new"})
    assert other.begin_walk()
    procs = [proc for walk in other._kept_listing._walks.values()
             for proc, _fd in walk._walks]
    other.end_walk()
    assert other._kept_listing is None
    assert procs and all(proc.returncode is not None for proc in procs)


def test_no_walk_begins_without_a_kept_mapset_to_continue_in(job):
    assert not restorer(job, dict(RESUME)).begin_walk()  # none kept
    live = job.store.live_state()
    job.kept.keep({"mapset": job.old_mapset}, live.state,
                  {"step": live.step, "snapshot_id": live.id,
                   "mapset_name": "mapset_old"})
    assert not restorer(job, {}).begin_walk()  # the plan restores nothing


def test_a_plan_that_starts_elsewhere_discards_the_kept_mapset(job):
    live = job.store.live_state()
    job.kept.keep({"mapset": job.old_mapset}, live.state,
                  {"step": live.step, "snapshot_id": live.id,
                   "mapset_name": "mapset_old"})
    restorer(job, {}).prepare(UNITS, FPS, INPUTS)
    assert not job.kept.exists()
    assert job.removals.paths


def test_from_step_drops_the_interim_results_declared_stale(job):
    plan = {"start": 1, "restore_snapshot": 0, "forced_from": 1,
            "actions": ["reused", "rerun", "rerun", "run"]}
    restorer(job, plan).prepare(UNITS, FPS, INPUTS)
    assert job.store.steps() == [0]


def test_changed_inputs_refuse_the_restore(job):
    job.store.write_job({"chain": CHAIN, "fingerprints": FPS,
                         "failed_step": 2, "status": "error"})
    with pytest.raises(CannotRestore, match="inputs of the interim result"):
        restorer(job, dict(RESUME)).prepare(UNITS, FPS, INPUTS)


def test_reuse_of_another_jobs_interim_result(job):
    mine = SnapshotStore(interim_root(job.res, "u", "job2"))
    plan = {**RESUME, "source_resource_id": "job1"}
    source = source_store(plan, mine, job.res, "u")
    assert source.root == job.store.root
    assert source_store({}, mine, job.res, "u") is mine
    r = Restorer(
        plan, mine, source, KeptMapset(job.res, "u", "job2"), job.removals,
        iteration=1, saving_enabled=True, log=job.log,
        for_client=str, process_logs=job.logs, on_plan=job.planned.append,
        change_mapsetname=lambda *args: None)
    r.prepare(UNITS, FPS, INPUTS)
    assert r.restore(str(job.new), "mapset_new", str(job.new_tmpdir))
    assert r.report["reused_from"] == "job1"
    assert r.report["restored_from"] == "interim_results"
    # the next save of job2 writes only what changes after the restore
    assert mine.live_state() is not None


def test_a_damaged_interim_result_to_reuse_runs_from_the_first_step(job):
    mine = SnapshotStore(interim_root(job.res, "u", "job2"))
    for manifest in (job.store.root / "steps").rglob("manifest.json"):
        manifest.write_text("{}")
    plan = {**RESUME, "source_resource_id": "job1"}
    r = Restorer(
        plan, mine, source_store(plan, mine, job.res, "u"),
        KeptMapset(job.res, "u", "job2"), job.removals, iteration=1,
        saving_enabled=True, log=job.log, for_client=str,
        process_logs=job.logs, on_plan=job.planned.append,
        change_mapsetname=lambda *args: None)
    r.prepare(UNITS, FPS, INPUTS)
    assert (r.start, r.info, r.restore_store) == (0, None, mine)
    assert r.plan["source_resource_id"] is None
    assert "reuse" in r.report["notice"]
    assert "reused_from" not in r.report


def test_a_restore_that_fails_says_why_without_server_paths(job):
    r = restorer(job, dict(RESUME))
    r.prepare(UNITS, FPS, INPUTS)
    job.new.parent.mkdir(parents=True)
    job.new.write_text("a file where the project goes")
    with pytest.raises(CannotRestore) as caught:
        r.restore(str(job.new), "mapset_new", str(job.new_tmpdir))
    assert "could not be restored" in str(caught.value)
    assert str(job.tmp_path) not in str(caught.value)
