# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of store/resource_storage.py: sizing, units, ages, pruning."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from disk_usage import used_bytes

from actinia_resume_plugin.store import SnapshotStore, interim_root
from actinia_resume_plugin.store import resource_storage as rs
from actinia_resume_plugin.store.layout import seal_text

DAY = 86400
USER = "alice"


def write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def age_tree(path: Path, days: float) -> None:
    """Set atime/mtime of ``path`` and everything below it ``days`` back."""
    t = time.time() - days * DAY
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (t, t), follow_symlinks=False)
    os.utime(path, (t, t))


def make_job(resources: Path, rid: str, steps: int, files_per_step: int = 3,
             size: int = 100) -> Path:
    """A job root with ``steps`` snapshots saved by the real SnapshotStore."""
    live = resources / "live" / rid
    store = SnapshotStore(interim_root(resources, USER, rid))
    for step in range(steps):
        for i in range(files_per_step):
            write(live / "mapset" / f"f{step}_{i}", bytes(size))
        store.save(step, {"mapset": str(live / "mapset")}, {"step": step})
    store.write_job({"status": "error", "failed_step": steps,
                     "step_ids": [f"s{i}" for i in range(steps + 1)]})
    return store.root


@pytest.fixture
def resources(tmp_path) -> Path:
    path = tmp_path / "resources"
    (path / USER).mkdir(parents=True)
    return path


# ------------------------------------------------------------------ olderthan
@pytest.mark.parametrize("value,days", [(None, None), ("0", 0), ("7", 7),
                                        ("36500", 36500)])
def test_parse_olderthan_accepts_whole_days(value, days):
    assert rs.parse_olderthan(value) == days


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "", " 3", "+3", "1e3",
                                   "36501", "99999999999999999999"])
def test_parse_olderthan_rejects(value):
    with pytest.raises(ValueError, match="olderthan"):
        rs.parse_olderthan(value)


@pytest.mark.parametrize("user", ["", ".", "..", "a/b", "a\\b", "a\0b"])
def test_user_id_cannot_escape(resources, user):
    with pytest.raises(ValueError):
        rs.scan_user_storage(resources, user)


# ------------------------------------------------------------------ sizing
def test_scan_breakdown_and_used_follow_the_definition(resources):
    root = make_job(resources, "resource_id-a", steps=3)
    write(resources / USER / "resource_id-b" / "out.tif", bytes(5000))
    write(resources / USER / "stray.bin", bytes(123))
    report = rs.scan_user_storage(resources, USER)
    assert report.used == used_bytes(resources / USER)
    kinds = {u.name: u.kind for u in report.units}
    assert kinds == {"resource_id-a": "interim_results",
                     "resource_id-b": "resource", "stray.bin": "other"}
    job = report.of_kind("interim_results")[0]
    assert job.steps == [0, 1, 2]
    assert job.bytes == used_bytes(root)
    doc = report.to_dict(10 * 1024**3)
    entry = doc["interim_results"][0]
    assert entry["resource_id"] == "resource_id-a"
    assert entry["steps"] == 3 and entry["newest_step"] == 2
    assert entry["newest_step_id"] == "s2" and entry["failed_step"] == 3
    assert entry["age_seconds"] < 60
    assert doc["resources"][0]["bytes"] >= 5000
    assert doc["other"][0]["name"] == "stray.bin"
    assert doc["quota"] == 10 * 1024**3
    assert doc["free"] == doc["quota"] - doc["used"]
    assert doc["free_percent"] == int(100 * doc["free"] / doc["quota"])


def test_used_counts_files_and_symlinks_once_not_directories(resources):
    """The definition on known numbers (the same on every coreutils):
    directories 0, a 3-byte file 3, its hard link 0 more, a symlink its
    target's path length, a FIFO 0."""
    user = resources / USER
    assert rs.storage_usage(user) == 0
    (user / "a" / "b" / "c").mkdir(parents=True)
    assert rs.storage_usage(user) == 0
    write(user / "a" / "b" / "c" / "three", b"abc")
    assert rs.storage_usage(user) == 3
    os.link(user / "a" / "b" / "c" / "three", user / "a" / "again")
    assert rs.storage_usage(user) == 3
    os.symlink("b/c/three", user / "a" / "link")   # 9 bytes of path
    assert rs.storage_usage(user) == 12
    os.mkfifo(user / "a" / "fifo")
    assert rs.storage_usage(user) == 12
    report = rs.scan_user_storage(resources, USER)
    assert report.used == 12 == used_bytes(user)
    assert report.units[0].bytes == 12 and report.units[0].files == 4


def test_hard_links_count_once(resources):
    data = resources / USER / "resource_id-a" / "big"
    write(data, bytes(100_000))
    before = rs.scan_user_storage(resources, USER)
    os.link(data, data.with_name("big-link"))
    after = rs.scan_user_storage(resources, USER)
    assert before.used == after.used == used_bytes(resources / USER)
    assert after.files == before.files + 1


def test_unchanged_snapshot_adds_no_data(resources):
    live = resources / "live" / "resource_id-a" / "mapset"
    write(live / "big", bytes(100_000))
    age_tree(live, 1)
    store = SnapshotStore(interim_root(resources, USER, "resource_id-a"))
    store.save(0, {"mapset": str(live)}, {})
    before = rs.scan_user_storage(resources, USER)
    store.save(1, {"mapset": str(live)}, {})
    after = rs.scan_user_storage(resources, USER)
    assert before.used > 100_000
    assert after.used - before.used < 1_000  # one small manifest
    assert after.used == used_bytes(resources / USER)


def test_sparse_file_counts_apparent_size(resources):
    with open(resources / USER / "sparse", "wb") as handle:
        handle.truncate(1024**3)
    report = rs.scan_user_storage(resources, USER)
    assert report.used >= 1024**3
    assert report.usage(1024**3)["free"] <= 0


def test_missing_user_dir_is_empty(resources):
    report = rs.scan_user_storage(resources, "nobody")
    assert report.used == 0 and report.units == []


def test_scan_counts_the_snapshots_of_many_jobs(resources):
    """10,000 files in 20 jobs (its speed is measured by scripts/benchmark)."""
    for job in range(20):
        base = resources / USER / "interim" / f"resource_id-{job}"
        for step in range(5):
            (base / "steps" / f"{step:06d}").mkdir(parents=True)
            (base / "steps" / f"{step:06d}" / "manifest.json").write_text(
                seal_text({"version": 2, "id": str(step), "step": step,
                           "base": None, "base_id": None, "created": 0,
                           "meta": {}, "parts": {}}))
            d = base / "objects" / f"{step:02d}"
            d.mkdir(parents=True)
            for i in range(100):
                (d / f"f{i}").write_bytes(b"abc")
    report = rs.scan_user_storage(resources, USER)
    assert report.files == 20 * 5 * 101
    assert sum(len(u.steps) for u in report.units) == 100
    assert report.used == used_bytes(resources / USER)


def test_listing_and_store_agree_on_committed_interim_results(resources, tmp_path):
    """One definition (SnapshotStore.survey): a step whose base manifest is
    damaged, or whose object is missing, is listed as damaged with the
    reason, never as an interim result a PUT could restore."""
    root = resources / USER / "interim" / "resource_id-d"
    store = SnapshotStore(root)
    live = tmp_path / "live"
    (live / "cell").mkdir(parents=True)
    (live / "cell" / "a").write_bytes(b"a" * 100)
    store.save(0, {"mapset": live})
    (live / "cell" / "b").write_bytes(b"b" * 100)
    store.save(1, {"mapset": live})
    (live / "cell" / "c").write_bytes(b"c" * 100)
    store.save(2, {"mapset": live})
    manifest = store.step_path(1) / "manifest.json"
    st = os.stat(manifest)
    manifest.write_bytes(manifest.read_bytes().replace(b'"step":1', b'"step":1 '))
    os.utime(manifest, ns=(st.st_atime_ns, st.st_mtime_ns))
    unit = next(u for u in rs.scan_user_storage(resources, USER).units
                if u.name == "resource_id-d")
    assert unit.steps == SnapshotStore(root).steps() == [0]
    doc = unit.to_dict()
    assert doc["steps"] == 1 and doc["newest_step"] == 0
    assert [d["step"] for d in doc["damaged_steps"]] == [1, 2]
    assert "steps/000001/manifest.json does not match its checksum" in \
        doc["damaged_steps"][1]["reason"]



# ------------------------------------------------------------------ removal
def test_delete_all_removes_everything_but_protected(resources):
    make_job(resources, "resource_id-a", steps=2)
    make_job(resources, "resource_id-run", steps=1)
    write(resources / USER / "resource_id-run" / "out.tif", b"data")
    write(resources / USER / "resource_id-c" / "out.tif", b"data")
    calls = []

    def protect(user_id, rids):
        calls.append((user_id, rids))
        return {"resource_id-run": "job is running"}

    result = rs.clean_user_storage(resources, USER, protect=protect)
    assert calls == [(USER, ["resource_id-a", "resource_id-c",
                             "resource_id-run"])]
    removed = {(u["kind"], u["resource_id"]) for u in result.removed}
    assert removed == {("interim_results", "resource_id-a"),
                       ("resource", "resource_id-c")}
    skipped = {(u["kind"], u["resource_id"], u["reason"])
               for u in result.skipped}
    assert skipped == {("interim_results", "resource_id-run", "job is running"),
                       ("resource", "resource_id-run", "job is running")}
    assert result.freed_bytes == sum(u["bytes"] for u in result.removed) > 0
    left = rs.scan_user_storage(resources, USER)
    assert {u.name for u in left.units} == {"resource_id-run"}
    assert len(left.units) == 2
    # nothing hidden left behind
    assert not [p for p in (resources / USER).rglob(".*deleted-*")]


def test_olderthan_removes_whole_units_by_newest_content(resources):
    old = make_job(resources, "resource_id-old", steps=2)
    mixed = make_job(resources, "resource_id-mixed", steps=2)
    age_tree(old, 10)
    age_tree(mixed, 10)
    # one fresh file in an otherwise old unit keeps the whole unit
    os.utime(next(mixed.rglob("manifest.json")), None)
    old_export = write(resources / USER / "resource_id-x" / "a.tif", b"1")
    age_tree(old_export.parent, 3)
    result = rs.clean_user_storage(resources, USER, olderthan_days=5)
    assert [u["resource_id"] for u in result.removed] == ["resource_id-old"]
    assert result.kept == 2
    assert not old.exists()
    assert SnapshotStore(mixed).steps() == [0, 1]
    result = rs.clean_user_storage(resources, USER, olderthan_days=2)
    assert [u["resource_id"] for u in result.removed] == ["resource_id-x"]
    result = rs.clean_user_storage(resources, USER, olderthan_days=0)
    assert [u["resource_id"] for u in result.removed] == ["resource_id-mixed"]


def test_leftover_trash_is_always_removed(resources):
    trash = write(resources / USER / "interim" / ".resource_id-a.deleted-123"
                  / "steps" / "x", b"zz")
    result = rs.clean_user_storage(resources, USER, olderthan_days=100)
    assert [u["kind"] for u in result.removed] == ["trash"]
    assert not trash.parent.parent.exists()


def test_expire_interim_results_only_touches_old_interim(resources):
    old = make_job(resources, "resource_id-old", steps=1)
    fresh = make_job(resources, "resource_id-fresh", steps=1)
    running = make_job(resources, "resource_id-run", steps=1)
    export = write(resources / USER / "resource_id-old" / "out.tif", b"1")
    for path in (old, running, export.parent):
        age_tree(path, 3)
    other_user = resources / "bob"
    bob_old = write(other_user / "interim" / "resource_id-b" / "job.json",
                    b"{}").parent
    age_tree(bob_old, 3)
    results = rs.expire_interim_results(
        resources, 2, protect=lambda user, rids: {
            r: "running" for r in rids if r == "resource_id-run"})
    assert set(results) == {USER, "bob"}
    assert [u["resource_id"] for u in results[USER].removed] == [
        "resource_id-old"]
    assert [u["resource_id"] for u in results[USER].skipped] == [
        "resource_id-run"]
    assert not old.exists() and not bob_old.exists()
    assert fresh.exists() and running.exists()
    assert export.exists(), "exported resources are not interim results"


def test_failed_removal_is_reported(resources, monkeypatch):
    make_job(resources, "resource_id-a", steps=1)

    def boom(*args):
        raise PermissionError("denied")

    monkeypatch.setattr(rs.os, "rename", boom)
    result = rs.clean_user_storage(resources, USER)
    assert result.removed == [] and result.freed_bytes == 0
    assert result.errors[0]["resource_id"] == "resource_id-a"
    assert "denied" in result.errors[0]["error"]


def test_eviction_removes_least_recently_used_ended_jobs_only(resources):
    """Interim results as a cache (reuse across jobs): room is made from the
    oldest ended jobs; running jobs and the ones named to keep stay."""
    sizes = {}
    for age, (rid, status) in enumerate([
            ("resource_id-old", "error"), ("resource_id-running", "running"),
            ("resource_id-kept", "error"), ("resource_id-new", "error")]):
        root = resources / USER / "interim" / rid
        write(root / "objects" / "ab" / "c", bytes(1000))
        write(root / "job.json", seal_text({"status": status}).encode())
        age_tree(root, 10 - age)
        sizes[rid] = used_bytes(root)
    result = rs.evict_unused_interim_results(
        resources, USER, 1500, keep={"resource_id-kept"})
    removed = [u["resource_id"] for u in result.removed]
    assert removed == ["resource_id-old", "resource_id-new"]
    assert result.freed_bytes == sizes["resource_id-old"] + sizes["resource_id-new"]
    left = sorted(p.name for p in (resources / USER / "interim").iterdir())
    assert left == ["resource_id-kept", "resource_id-running"]
    nothing = rs.evict_unused_interim_results(
        resources, USER, 10, keep={"resource_id-kept"})
    assert nothing.removed == [] and nothing.freed_bytes == 0


# ------------------------------------------------------------ kept mapsets
def make_kept(resources: Path, rid: str, size: int = 1000) -> Path:
    """A kept mapset (issue 23) as the worker leaves it at a failure."""
    from actinia_resume_plugin.store.kept_mapset import KeptMapset

    live = resources.parent / "tmpdb" / rid / "mapset"
    write(live / "cell" / "a", bytes(size))
    kept = KeptMapset(resources, USER, rid)
    kept.keep({"mapset": live}, {}, {"step": 0})
    return kept.path


def test_kept_mapsets_are_units_of_their_own(resources):
    make_job(resources, "resource_id-a", 1)
    kept = make_kept(resources, "resource_id-a", 5000)
    claimed = kept.parent / f".resource_id-b.adopting-{'1' * 32}"
    write(claimed / "mapset" / "x", bytes(10))
    write(kept.parent / f".resource_id-c.deleted-{'2' * 32}" / "y")
    report = rs.scan_user_storage(resources, USER)
    units = {(u.kind, u.resource_id or u.name): u for u in report.units}
    unit = units[("kept_mapset", "resource_id-a")]
    assert unit.bytes >= 5000
    assert unit.to_dict()["state"] == "kept"
    assert units[("kept_mapset", "resource_id-b")].to_dict()[
        "state"] == "adopting"
    assert any(k[0] == "trash" for k in units)
    doc = report.to_dict(10**9)
    assert sorted(u["resource_id"] for u in doc["kept_mapsets"]) == [
        "resource_id-a", "resource_id-b"]
    assert doc["kept_mapsets_bytes"] == unit.bytes + 10
    assert report.used == used_bytes(resources / USER)
    # a running job's claimed dir is protected like its interim results
    result = rs.clean_user_storage(
        resources, USER, protect=lambda user, rids: {
            r: "running" for r in rids if r == "resource_id-b"})
    assert claimed.is_dir() and not kept.exists()
    assert {(d["kind"], d["resource_id"]) for d in result.skipped} == {
        ("kept_mapset", "resource_id-b")}


def test_kept_mapsets_are_evicted_first_oldest_first(resources):
    for rid, days in (("resource_id-old", 3), ("resource_id-new", 1),
                      ("resource_id-mine", 5)):
        make_job(resources, rid, 1)
        age_tree(make_kept(resources, rid, 1000), days)
    result = rs.evict_kept_mapsets(resources, USER, 500,
                                   keep={"resource_id-mine"})
    assert [d["resource_id"] for d in result.removed] == ["resource_id-old"]
    report = rs.scan_user_storage(resources, USER)
    assert {u.resource_id for u in report.of_kind(rs.KIND_KEPT)} == {
        "resource_id-new", "resource_id-mine"}
    assert len(report.of_kind(rs.KIND_INTERIM)) == 3  # interim results stay


def test_retention_removes_old_and_orphaned_kept_mapsets(resources):
    make_job(resources, "resource_id-a", 1)
    age_tree(make_kept(resources, "resource_id-a"), 3)  # old kept mapset
    age_tree(make_job(resources, "resource_id-b", 1), 3)  # old interim
    make_kept(resources, "resource_id-b")  # fresh, but its job is gone
    make_job(resources, "resource_id-c", 1)
    make_kept(resources, "resource_id-c")
    rs.expire_interim_results(resources, 2)
    report = rs.scan_user_storage(resources, USER)
    assert {u.resource_id for u in report.of_kind(rs.KIND_KEPT)} == {
        "resource_id-c"}
    assert {u.name for u in report.of_kind(rs.KIND_INTERIM)} == {
        "resource_id-a", "resource_id-c"}
