# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The facade SnapshotStore (store/snapshot_store.py): save, list, the
commit, budget and full disk, stale leftovers, prune, delete, the job
record."""

import os
import time

import pytest

from actinia_resume_plugin.store import (
    SnapshotBudgetExceeded,
    SnapshotNoSpace,
    SnapshotNotFound,
    fsops,
    interim_root,
    job_record,
    layout,
)
from actinia_resume_plugin.store import snapshot_store as ss
from tests.unit.store.helpers import (
    SIZES,
    in_place_keeping_times,
    manifest,
    object_files,
    restored,
    write,
)


def test_interim_root(tmp_path):
    root = interim_root(tmp_path, "user", "resource_id-1")
    assert root == tmp_path / "user" / "interim" / "resource_id-1"


@pytest.mark.parametrize("bad", ["..", ".", "", "a/b", "a\\b"])
def test_interim_root_rejects_path_traversal(tmp_path, bad):
    with pytest.raises(ValueError):
        interim_root(tmp_path, "user", bad)
    with pytest.raises(ValueError):
        interim_root(tmp_path, bad, "job")


def test_empty_store(store):
    assert store.list() == []
    assert store.steps() == []
    assert store.latest() is None
    assert store.get(0) is None
    assert store.read_job() is None
    with pytest.raises(SnapshotNotFound):
        store.restore(0, {})


def test_save_layout_meta_and_listing(store, live, tmp_path):
    info = store.save(3, live, {"fp": "abc"})
    assert info.step == 3
    assert info.path == store.root / "steps" / "000003"
    assert info.parts == ["mapset", "tmpdir"]
    assert info.meta["fp"] == "abc"
    assert info.meta["files_copied"] == 6 and info.meta["files_unchanged"] == 0
    # the two parts share the identical files once (content addressed)
    assert len(object_files(store)) == 6
    assert info.meta["bytes_copied"] == 2 * SIZES - (SIZES - 1000)
    assert (info.path / "manifest.json").is_file()
    assert (restored(store, 3, tmp_path) / "cell" / "elev").read_bytes() == b"\x01" * 1000
    store.save(1, live, {"fp": "x"})
    assert store.steps() == [1, 3]
    assert [i.step for i in store.list()] == [1, 3]
    assert store.latest().step == 3
    got = store.get(3)
    assert got.meta["fp"] == "abc" and got.created == pytest.approx(info.created)
    assert got.id == info.id


def test_part_names_validated(store, live):
    with pytest.raises(ValueError):
        store.save(0, {"../x": live["mapset"]})
    with pytest.raises(ValueError):
        store.save(0, {"mapsets": live["mapset"], "mapsets/a": live["tmpdir"]})
    with pytest.raises(ValueError):
        store.save(-1, live)
    with pytest.raises(FileNotFoundError):
        store.save(0, {"mapset": live["mapset"] / "nope"})
    assert store.list() == []


def test_read_job_treats_damage_as_missing(store, tmp_path):
    store.write_job({"status": "error"})
    for text in ["{trunc", "[1, 2]", '"x"', "[" * 5000 + "]" * 5000]:
        (store.root / "job.json").write_text(text)
        assert store.read_job() is None
    (store.root / "job.json").unlink()
    (tmp_path / "elsewhere.json").write_text('{"a": 1}')
    os.symlink(tmp_path / "elsewhere.json", store.root / "job.json")
    assert store.read_job() is None


def test_killed_process_leftovers_are_ignored_and_cleaned(store, live):
    """A hard kill leaves a staging dir, a temporary object, maybe a step
    dir without manifest."""
    store.save(0, live)
    dead_pid = 2 ** 22 + 12345  # above pid_max default: never alive
    staging = store.root / f".staging-{layout.HOST}-{dead_pid}-{'a' * 32}"
    write(staging / "manifest.json", "partial")
    tmp_obj = store.root / "objects" / f".tmp-{layout.HOST}-{dead_pid}-{'c' * 32}"
    write(tmp_obj, "partial")
    foreign = store.root / f".staging-otherhost-1-{'b' * 32}"
    write(foreign / "x", "in progress elsewhere")
    write(store.root / "steps" / "000005" / "junk", "partial")
    write(store.root / "steps" / "000006" / "manifest.json", "{not json")
    assert store.steps() == [0]
    assert store.get(5) is None and store.get(6) is None
    store.save(1, live)
    assert not staging.exists() and not tmp_obj.exists()
    assert foreign.exists()  # other host, young: may still be running
    old = time.time() - 3600
    os.utime(foreign, (old, old))
    store.save(2, live)
    assert not foreign.exists()
    assert store.steps() == [0, 1, 2]


def test_fsync_of_manifest_before_commit(store, live, monkeypatch):
    order = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        order.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def rename(a, b):
        order.append(("rename", str(a), str(b)))
        return real_rename(a, b)

    monkeypatch.setattr(ss.os, "fsync", fsync)
    monkeypatch.setattr(ss.os, "rename", rename)
    store.save(0, live)
    commit = next(i for i, o in enumerate(order) if o[0] == "rename" and o[2].endswith("000000"))
    synced = [o[1] for o in order[:commit] if o[0] == "fsync"]
    assert any(p.endswith("/manifest.json") for p in synced)


def test_budget_exceeded_before_writing(store, live, monkeypatch):
    store.save(0, live)
    write(live["mapset"] / "cell" / "big", b"b" * 10_000)
    objects_before = object_files(store)
    with pytest.raises(SnapshotBudgetExceeded) as exc:
        store.save(1, live, budget_bytes=9_999)
    assert exc.value.needed == 10_000 and exc.value.budget == 9_999
    assert store.steps() == [0] and object_files(store) == objects_before
    info = store.save(1, live, budget_bytes=10_000)  # exactly at the budget: ok
    assert info.meta["bytes_copied"] == 10_000


def test_too_little_free_space_is_refused_before_writing(store, live, monkeypatch):
    store.save(0, live)
    write(live["mapset"] / "cell" / "big", b"b" * 10_000)
    real = os.statvfs

    class Full:
        f_bavail, f_frsize, f_blocks = 10, 4096, 10**6

    monkeypatch.setattr(ss.os, "statvfs", lambda p: Full())
    with pytest.raises(SnapshotNoSpace):
        store.save(1, live)
    monkeypatch.setattr(ss.os, "statvfs", real)
    assert store.steps() == [0]


def test_prune_keeps_dependents_valid_and_collects_garbage(store, live, tmp_path):
    store.save(0, live)
    write(live["mapset"] / "cell" / "s1", b"1" * 100)
    store.save(1, live)
    write(live["mapset"] / "cell" / "s2", b"2" * 100)
    (live["mapset"] / "cell" / "s1").unlink()
    store.save(2, live)
    assert store.prune({2}) == [0, 1]
    assert store.steps() == [2]
    assert manifest(store, 2)["base"] is None  # rewritten self-contained
    removed = store.collect_garbage()
    assert removed == 1  # s1's content
    out = restored(store, 2, tmp_path)
    assert (out / "cell" / "s2").read_bytes() == b"2" * 100
    assert not (out / "cell" / "s1").exists()
    assert (out / "WIND").read_text() == "proj: 99\n"
    store.verify(2)


def test_delete_delete_all_and_discard(store, live):
    for s in range(3):
        store.save(s, live)
    assert store.delete(1) is True
    assert store.delete(1) is False
    assert store.steps() == [0, 2]
    store.write_job({"x": 1})
    trash = store.discard()
    assert not store.root.exists() and trash.exists()
    assert trash.name.startswith(".job1.deleted-")
    fsops.rmtree(trash)
    assert store.list() == []
    store.delete_all()  # idempotent


def test_job_record_changed_keeping_timestamps_is_missing(store):
    store.write_job({"status": "error", "failed_step": 3})
    path = store.root / "job.json"
    in_place_keeping_times(path, lambda p: p.write_bytes(
        p.read_bytes().replace(b'"failed_step":3', b'"failed_step":1')))
    assert store.read_job() is None
    record = job_record.read_job_record(store.root)
    assert "does not match its checksum" in record.notice()
