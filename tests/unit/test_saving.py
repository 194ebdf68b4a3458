# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the saving policy (worker/saving.py): a real snapshot
store on a temp dir, real files, no GRASS and no actinia."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from actinia_resume_plugin.config import ResumeConfig
from actinia_resume_plugin.store import (
    KeptMapset,
    SnapshotStore,
    interim_root,
    read_job_record,
    storage_usage,
)
from actinia_resume_plugin.worker import report
from actinia_resume_plugin.worker.removals import DeferredRemovals
from actinia_resume_plugin.worker.saving import (
    SavingPolicy,
    snapshot_meta,
    snapshot_parts,
)
from actinia_resume_plugin.worker.units import StepUnit

OLD_NS = 1_600_000_000_123_456_789  # 2020: never racy
FPS = ["fp0", "fp1", "fp2", "fp3"]


def write(path, data, mtime_ns=OLD_NS):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    os.utime(path, ns=(mtime_ns, mtime_ns))


def make_mapset(base, tag=b"\x01"):
    write(base / "WIND", "proj: 99\n")
    write(base / "cell" / "elev", tag * 1000)
    write(base / "cellhd" / "elev", "rows: 10\n")
    return base


class Log:
    """actinia's message logger, as far as the plain classes use it."""

    def __init__(self):
        self.lines = []

    def info(self, text):
        self.lines.append(("info", text))

    def warning(self, text):
        self.lines.append(("warning", text))

    def error(self, text):
        self.lines.append(("error", text))

    def text(self):
        return "\n".join(line for _, line in self.lines)


@pytest.fixture
def job(tmp_path):
    """One job's dirs: a temporary mapset and tmpdir in a project, its
    store in the user's resource storage."""
    res = tmp_path / "res"
    project = tmp_path / "db" / "proj"
    job = SimpleNamespace(
        tmp_path=tmp_path, res=res, project=project,
        mapset=make_mapset(project / "mapset_a"),
        tmpdir=tmp_path / "db" / ".tmp",
        store=SnapshotStore(interim_root(res, "u", "job1")),
        kept=KeptMapset(res, "u", "job1"), log=Log())
    write(job.tmpdir / "scratch", "x")
    job.removals = DeferredRemovals(job.log)
    return job


def policy(job, mode=True, quota_gb=100, reuse=False, plan=None,
           resource_id="job1"):
    config = ResumeConfig(save_interim_results=mode,
                          resource_dir=str(job.res),
                          resource_quota_gb=quota_gb,
                          reuse_interim_results=reuse)
    return SavingPolicy(
        config, job.store, user_id="u", resource_id=resource_id,
        iteration=2, plan=plan if plan is not None else {}, kept=job.kept,
        removals=job.removals, log=job.log,
        parts=lambda: snapshot_parts(job.mapset, job.tmpdir, job.project,
                                     None),
        meta=lambda position, at_failure: {
            "mapset_name": "mapset_a", "fingerprints": FPS[:position + 1],
            "taken_at_failure": at_failure},
        for_client=lambda exc: report.for_client(exc, [job.tmp_path]))


def other_job_kept(job, name="job0"):
    """Another failed job of the same user with its mapset kept."""
    mapset = make_mapset(job.tmp_path / "db2" / name / "mapset_x", b"\x09")
    store = SnapshotStore(interim_root(job.res, "u", name))
    store.save(0, {"mapset": mapset}, {"mapset_name": "mapset_x"})
    kept = KeptMapset(job.res, "u", name)
    live = store.live_state()
    kept.keep({"mapset": mapset}, live.state,
              {"step": live.step, "snapshot_id": live.id,
               "mapset_name": "mapset_x"})
    assert kept.exists()
    return kept


# ---------------------------------------------------------- parts, meta
def test_parts_are_the_mapset_tmpdir_and_matching_additional_mapsets(job):
    for name in ("job_a", "job_b", "other"):
        make_mapset(job.project / name)
    os.symlink(job.project / "job_a", job.project / "job_link")
    (job.project / "job_file").write_text("not a mapset")
    parts = snapshot_parts(str(job.mapset), str(job.tmpdir),
                           str(job.project), "job_*")
    assert parts == {"mapset": str(job.mapset), "tmpdir": str(job.tmpdir),
                     "mapsets/job_a": str(job.project / "job_a"),
                     "mapsets/job_b": str(job.project / "job_b")}


def test_parts_leave_out_what_is_not_a_directory(job):
    parts = snapshot_parts(str(job.mapset), str(job.tmp_path / "gone"),
                           str(job.project), None)
    assert parts == {"mapset": str(job.mapset)}


def test_meta_holds_the_steps_up_to_the_position_and_their_logs():
    units = [StepUnit(i, i, f"s{i}", [SimpleNamespace(id=f"p{i}")])
             for i in range(3)]
    logs = {"p0": {"stdout": "a"}, "p1": {"stdout": "b"},
            "p2": {"stdout": "c"}}
    meta = snapshot_meta(units, 1, logs, FPS, "mapset_a", 3, True)
    assert meta == {"mapset_name": "mapset_a", "fingerprints": FPS[:2],
                    "step_ids": ["s0", "s1"],
                    "process_logs": {"p0": {"stdout": "a"},
                                     "p1": {"stdout": "b"}},
                    "iteration": 3, "taken_at_failure": True}
    assert meta["process_logs"]["p0"] is not logs["p0"]  # a copy


# ------------------------------------------------------------- saving
def test_true_saves_after_every_step_on_error_does_not(job):
    saving = policy(job, mode=True)
    saving.after_step(0)
    saving.after_step(1)
    assert job.store.steps() == [0, 1]
    other = SnapshotStore(interim_root(job.res, "u", "job2"))
    on_error = policy(job, mode="onError")
    on_error.store = other
    on_error.after_step(0)
    assert other.steps() == []


def test_the_last_step_is_saved_only_when_the_job_fails_after_it(job):
    """processing_async (saves_last_step off): the last step's interim
    result waits for the job's end; a success saves nothing more, a
    failure after the last step saves it as it would have been saved."""
    saving = policy(job)
    saving.saves_last_step = False
    saving.after_step(0)
    saving.after_step(1, last=True)
    assert job.store.steps() == [0]
    saving.job_failed(2, 0, error=True, mapset_name="mapset_a")
    assert job.store.steps() == [0, 1]
    assert not job.store.get(1).meta["taken_at_failure"]


def test_a_failure_in_the_last_step_does_not_save_it(job):
    saving = policy(job)
    saving.saves_last_step = False
    saving.after_step(0)
    saving.job_failed(1, 0, error=True, mapset_name="mapset_a")
    assert job.store.steps() == [0]


def test_the_last_step_is_saved_at_once_where_work_follows_it(job):
    saving = policy(job)  # saves_last_step on: exports, persistent
    saving.after_step(0, last=True)
    assert job.store.steps() == [0]


def test_the_first_save_drops_later_interim_results_of_an_earlier_iteration(
        job):
    saving = policy(job)
    for step in (0, 1, 2):
        saving.save(step)
    again = policy(job)  # the next iteration, resumed after step 0
    again.save(1)
    assert job.store.steps() == [0, 1]
    # not only unlisted (its base changed): gone from the disk
    assert not job.store.step_path(2).exists()
    again.save(2)
    assert job.store.steps() == [0, 1, 2]
    assert again.last_saved_position == 2


def test_the_first_save_reads_no_manifest_when_nothing_is_to_go(
        job, monkeypatch):
    """A resume after the last interim result: the first save must not
    parse every manifest (100,000 entries in a big mapset) to find that no
    later interim result exists."""
    saving = policy(job)
    saving.save(0)
    saving.save(1)
    again = policy(job)
    reads = []
    real = job.store._manifests.load
    monkeypatch.setattr(job.store._manifests, "load",
                        lambda step, *a: reads.append(step) or real(step, *a))
    again.save(2)
    assert reads == []
    assert job.store.steps() == [0, 1, 2]


def test_the_quota_stops_saving_with_a_reason_and_the_job_goes_on(job):
    saving = policy(job, quota_gb=500 / 1024**3)  # 500 bytes
    assert saving.save(0) is None
    assert job.store.steps() == []
    assert "grass_resource_quota" in saving.note
    assert saving.note.startswith(
        "Interim results are no longer saved after step 0")
    job.mapset.joinpath("cell", "elev").write_bytes(b"")
    assert saving.save(1) is None  # stopped: not tried again
    assert job.store.steps() == []
    assert ("warning", saving.note) in job.log.lines


def test_the_budget_counts_what_the_user_stores_and_what_a_save_adds(job):
    quota = 10_000
    saving = policy(job, quota_gb=quota / 1024**3)
    assert saving.budget() == quota
    info = saving.save(0)
    assert saving.budget() == quota - info.meta["bytes_copied"]
    fresh = policy(job, quota_gb=quota / 1024**3)
    assert fresh.budget() == quota - storage_usage(job.res / "u")


def test_room_is_made_by_removing_another_jobs_kept_mapset(job):
    other = other_job_kept(job)
    used = storage_usage(job.res / "u")
    saving = policy(job, quota_gb=(used + 500) / 1024**3)
    assert saving.save(0) is not None
    assert not other.exists()
    assert job.store.steps() == [0]
    assert "Removed 1 kept mapset(s)" in job.log.text()
    assert saving.note is None


def test_unused_interim_results_go_only_with_reuse_on(job):
    ended = SnapshotStore(interim_root(job.res, "u", "job0"))
    ended.save(0, {"mapset": make_mapset(job.tmp_path / "old", b"\x05")},
               {"mapset_name": "m"})
    ended.write_job({"status": "error"})
    used = storage_usage(job.res / "u")
    quota = (used + 500) / 1024**3
    off = policy(job, quota_gb=quota)
    assert off.save(0) is None and ended.steps() == [0]
    assert "grass_resource_quota" in off.note
    on = policy(job, quota_gb=quota, reuse=True)
    assert on.save(0) is not None
    assert not ended.root.exists()
    assert "unused interim result(s)" in job.log.text()


def test_the_job_reused_is_never_evicted(job):
    ended = SnapshotStore(interim_root(job.res, "u", "job0"))
    ended.save(0, {"mapset": make_mapset(job.tmp_path / "old", b"\x05")},
               {"mapset_name": "m"})
    ended.write_job({"status": "error"})
    quota = (storage_usage(job.res / "u") + 500) / 1024**3
    saving = policy(job, quota_gb=quota, reuse=True,
                    plan={"source_resource_id": "job0"})
    assert saving.save(0) is None
    assert ended.steps() == [0]


def test_a_failing_save_stops_saving_without_server_paths(job):
    job.store.root.mkdir(parents=True)
    (job.store.root / "steps").write_text("a file, not a directory")
    saving = policy(job)
    assert saving.save(0) is None
    assert saving.note.startswith(
        "Interim results are no longer saved after step 0: ")
    assert str(job.tmp_path) not in saving.note
    assert "Saving the interim result of step 0 failed" in job.log.text()


# --------------------------------------------------------- job record
def test_the_record_keeps_what_it_had_and_adds_the_fields(job):
    saving = policy(job)
    chain = {"version": 1, "list": [{"id": "a", "module": "g.region"}]}
    saving.record({"chain": chain, "status": "running", "iteration": 1})
    saving.record({"status": "error", "failed_step": 2, "iteration": 1})
    record = read_job_record(job.store.root)
    assert record.get("chain") == chain
    assert record.get("status") == "error"
    assert record.get("failed_step") == 2
    assert isinstance(record.get("updated"), float)


def test_a_record_that_cannot_be_written_stops_saving(job):
    job.store.root.parent.mkdir(parents=True)
    job.store.root.write_text("a file where the job root belongs")
    saving = policy(job)
    saving.record({"status": "running"})
    assert "the job record cannot be written" in saving.note
    assert str(job.tmp_path) not in saving.note


# ------------------------------------------------------- the job's end
def test_on_error_keeps_the_state_at_the_failure_only(job):
    saving = policy(job, mode="onError")
    saving.job_failed(3, 0, error=True, mapset_name="mapset_a")
    assert job.store.steps() == [2]
    assert job.store.get(2).meta["taken_at_failure"] is True
    record = read_job_record(job.store.root)
    assert (record.get("status"), record.get("failed_step"),
            record.get("iteration")) == ("error", 3, 2)
    assert job.kept.exists()  # error: the dirs are kept for the resume
    assert not job.mapset.exists()


def test_on_error_saves_nothing_when_the_first_step_to_run_failed(job):
    saving = policy(job, mode="onError")
    saving.job_failed(1, 1, error=True, mapset_name="mapset_a")
    assert job.store.steps() == []
    assert not job.kept.exists()  # the store knows no state to keep
    assert read_job_record(job.store.root).get("failed_step") == 1


def test_terminated_jobs_are_not_kept(job):
    saving = policy(job)
    saving.save(0)
    saving.job_failed(1, 0, error=False, mapset_name="mapset_a")
    assert not job.kept.exists()
    assert job.mapset.exists()
    assert job.store.steps() == [0]


def saved_with_room(job, room: int) -> SavingPolicy:
    """Step 0 saved; a policy whose quota leaves ``room`` bytes now."""
    policy(job).save(0)
    return policy(job,
                  quota_gb=(storage_usage(job.res / "u") + room) / 1024**3)


def test_a_kept_mapset_stays_within_the_quota(job):
    saving = saved_with_room(job, 10)
    saving.job_failed(1, 0, error=True, mapset_name="mapset_a")
    assert not job.kept.exists()
    assert "not kept: grass_resource_quota" in job.log.text()


def test_a_kept_mapset_of_another_job_goes_first(job):
    other = other_job_kept(job)
    saving = saved_with_room(job, 500)
    saving.keep_mapset("mapset_a")
    assert job.kept.exists() and not other.exists()


def test_success_discards_the_interim_results_and_the_kept_mapset(job):
    saving = policy(job)
    saving.save(0)
    saving.job_failed(1, 0, error=True, mapset_name="mapset_a")
    assert job.kept.exists()
    again = policy(job)
    again.job_succeeded()
    assert not job.kept.exists()
    assert job.store.steps() == []
    assert len(job.removals.paths) >= 2
    job.removals.remove_all()
    assert all(not os.path.exists(p) for p in job.removals.paths)


def test_a_failed_job_forgets_the_live_state_before_its_garbage_collection(
        job, monkeypatch):
    """The stat of every file is dropped before the manifests are parsed
    for the garbage collection (at 100,000 files: 153 -> 90 MB peak)."""
    saving = policy(job)
    saving.save(0)
    seen = []
    real = job.store.collect_garbage

    def collect():
        seen.append(job.store.live_state())
        return real()

    monkeypatch.setattr(job.store, "collect_garbage", collect)
    saving.job_failed(1, 0, error=True, mapset_name="mapset_a")
    assert seen == [None]
    assert job.kept.exists()  # the kept mapset had what it needed
