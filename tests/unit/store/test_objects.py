# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Content-addressed objects (store/objects.py): written once, never
shared with the live mapset, removed when a save fails, taken over by a
reusing job, checked by content."""

import errno
import os

import pytest
import xxhash

from actinia_resume_plugin.store import (
    SnapshotDamaged,
    SnapshotNoSpace,
    SnapshotStore,
    fsops,
)
from tests.unit.store.helpers import (
    OLD_NS,
    in_place_keeping_times,
    make_mapset,
    manifest,
    obj_of,
    object_files,
    restored,
    reused_by_another_job,
    write,
)


def test_objects_never_share_an_inode_with_live(store, live):
    store.save(0, live)
    live_inodes = {os.lstat(p).st_ino for p in live["mapset"].rglob("*")}
    assert not live_inodes & {os.lstat(p).st_ino for p in object_files(store)}


def test_crash_during_copy_leaves_no_visible_snapshot_and_no_objects(
        store, live, monkeypatch, tmp_path):
    store.save(0, live)
    objects_before = object_files(store)
    write(live["mapset"] / "cell" / "elev", b"\x09" * 1000)
    write(live["mapset"] / "cell" / "new", b"\x08" * 1000)
    calls = {"n": 0}
    real = fsops.write_new  # small files: hashed first, then written

    def crashing_copy(dst, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return real(dst, data)

    monkeypatch.setattr(fsops, "write_new", crashing_copy)
    with pytest.raises(RuntimeError):
        store.save(1, live)
    assert store.steps() == [0]
    assert object_files(store) == objects_before
    assert (restored(store, 0, tmp_path) / "cell" / "elev").read_bytes() == b"\x01" * 1000
    monkeypatch.setattr(fsops, "write_new", real)
    store.save(1, live)
    assert store.steps() == [0, 1]
    assert (restored(store, 1, tmp_path) / "cell" / "elev").read_bytes() == b"\x09" * 1000


def test_enospc_while_writing_removes_what_was_written(store, live, monkeypatch):
    store.save(0, live)
    objects_before = object_files(store)
    write(live["mapset"] / "cell" / "a", b"a" * 100)
    write(live["mapset"] / "cell" / "b", b"b" * 100)
    real = os.write
    calls = {"n": 0}

    def full_disk(fd, data):  # the second object's write finds no space
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(fsops.os, "write", full_disk)
    with pytest.raises(SnapshotNoSpace):
        store.save(1, live)
    assert store.steps() == [0] and object_files(store) == objects_before
    assert not [p for p in (store.root / "objects").iterdir() if p.name.startswith(".tmp-")]


def test_same_size_overwrite_of_an_object_is_caught(store, live, tmp_path):
    store.save(0, live)
    obj = obj_of(store, 0, "cell/elev")
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:
        f.write(b"\x05" * 1000)
    with pytest.raises(SnapshotDamaged, match="cell/elev"):
        SnapshotStore(store.root).restore(0, {"mapset": tmp_path / "x"})
    with pytest.raises(SnapshotDamaged):
        store.verify(0)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("damage", ["truncate", "unlink"])
def test_truncated_or_missing_object_is_caught(store, live, tmp_path, damage):
    store.save(0, live)
    obj = obj_of(store, 0, "sqlite/sqlite.db")
    if damage == "truncate":
        os.truncate(obj, 0)
    else:
        os.unlink(obj)
    with pytest.raises(SnapshotDamaged, match="sqlite/sqlite.db"):
        store.verify(0)
    with pytest.raises(SnapshotDamaged):
        SnapshotStore(store.root).restore(0, {"mapset": tmp_path / "x"})


def test_copied_store_with_new_inodes_is_verified_by_hash(store, live, tmp_path):
    store.save(0, live)
    copy = tmp_path / "copied"
    os.system(f"cp -r {store.root} {copy}")  # new inodes and ctimes
    moved = SnapshotStore(copy)
    moved.verify(0)
    out = tmp_path / "o"
    moved.restore(0, {"mapset": out})
    assert (out / "cell" / "elev").read_bytes() == b"\x01" * 1000


def test_restore_into_another_jobs_store_takes_objects_over(store, live, tmp_path):
    """Reuse across jobs: job B restores job A's interim result; B's first
    save writes only what changed and links A's objects, so B stays whole
    when A is removed."""
    store.save(0, live)
    other = SnapshotStore(store.root.parent / "job2")
    work = {"mapset": tmp_path / "b" / "mapset", "tmpdir": tmp_path / "b" / "t"}
    store.restore(0, work, into=other)
    write(work["mapset"] / "cell" / "new", b"n" * 10)
    info = other.save(1, work)
    assert info.meta["files_copied"] == 1 and info.meta["bytes_copied"] == 10
    assert manifest(other, 1)["base"] is None  # self-contained
    store.delete_all()
    out = restored(other, 1, tmp_path)
    assert (out / "cell" / "elev").read_bytes() == b"\x01" * 1000
    assert (out / "cell" / "new").read_bytes() == b"n" * 10
    other.verify(1)
    assert other.save(2, work).meta["entries_written"] == 0


def test_verify_reads_every_object_whatever_its_stat(store, live, tmp_path, monkeypatch):
    """No stat fast path: a timestamp cannot prove bytes are intact."""
    store.save(0, live)
    other = reused_by_another_job(store, live, tmp_path)
    assert os.stat(obj_of(store, 0, "cell/elev")).st_nlink == 2
    hashed = []
    real = fsops.hash_file
    monkeypatch.setattr(fsops, "hash_file",
                        lambda path: hashed.append(path) or real(path))
    SnapshotStore(store.root).verify(0)
    other.verify(1)
    assert obj_of(store, 0, "cell/elev") in hashed
    hashed.clear()
    assert SnapshotStore(store.root).damage(0) is None  # cheap: no read
    assert hashed == []


def test_overwrite_of_a_linked_object_is_caught_in_both_jobs(store, live, tmp_path):
    store.save(0, live)
    other = reused_by_another_job(store, live, tmp_path)
    obj = obj_of(store, 0, "cell/elev")
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:  # same size, in place: both jobs' inode
        f.write(b"\x05" * 1000)
    with pytest.raises(SnapshotDamaged, match="cell/elev"):
        SnapshotStore(store.root).verify(0)
    with pytest.raises(SnapshotDamaged, match="cell/elev"):
        SnapshotStore(other.root).verify(1)


def test_object_changed_keeping_timestamps_is_never_restored(store, live, tmp_path):
    store.save(0, live)
    obj = obj_of(store, 0, "cell/elev")

    def flip(path):
        with open(path, "r+b") as f:
            f.seek(500)
            f.write(b"\x02")
    in_place_keeping_times(obj, flip)
    fresh = SnapshotStore(store.root)
    assert fresh.damage(0) is None  # the cheap check cannot see it
    assert "mapset/cell/elev does not match its recorded hash" in \
        fresh.damage(0, content=True)
    target = make_mapset(tmp_path / "target", tag=b"\x09")
    with pytest.raises(SnapshotDamaged, match="cell/elev"):
        fresh.restore(0, {"mapset": target, "tmpdir": tmp_path / "t"})
    # nothing was put into place: neither part
    assert (target / "cell" / "elev").read_bytes() == b"\x09" * 1000
    assert not (tmp_path / "t").exists()
    assert [p.name for p in tmp_path.iterdir() if ".restore-" in p.name] == []


def test_survey_names_missing_objects(store, live):
    store.save(0, live)
    write(live["mapset"] / "cell" / "new", b"n" * 10, OLD_NS)
    store.save(1, live)
    os.unlink(obj_of(store, 1, "cell/new"))
    steps, damaged = SnapshotStore(store.root).survey()
    assert steps == [0]
    assert "mapset/cell/new is missing" in damaged[1]


def test_equal_small_files_cost_one_object_and_no_temporary_file(
        store, live, monkeypatch):
    """Small files are hashed before anything is written: forty files of
    equal bytes are one object, written once, with no copy made and
    removed again."""
    for i in range(40):
        write(live["mapset"] / "cats" / f"map{i}", b"# 0 categories\n")
    writes = []
    real = fsops.write_new

    def counting(dst, data):
        writes.append(dst)
        return real(dst, data)

    monkeypatch.setattr(fsops, "write_new", counting)
    store.save(0, live)
    state = store.state(0)[0]["mapset"]
    objs = {state[f"cats/map{i}"].obj for i in range(40)}
    assert len(objs) == 1
    assert sum(1 for w in writes if os.path.basename(w) == next(iter(objs))[2:]) == 1
    assert not any(".tmp-" in w for w in writes)


def test_a_cut_short_object_left_by_a_killed_save_is_written_anew(
        store, live, tmp_path):
    """A killed save can leave a new small object cut short at its name
    (no committed manifest names it): the next save of the same bytes
    writes it anew instead of trusting the name, and restores are
    exact."""
    data = b"\x07" * 700
    write(live["mapset"] / "cell" / "fresh", data)
    obj = xxhash.xxh3_128_hexdigest(data)
    torn = store.root / "objects" / obj[:2] / obj[2:]
    torn.parent.mkdir(parents=True, exist_ok=True)
    torn.write_bytes(data[:100])
    store.save(0, live)
    assert torn.read_bytes() == data
    store.verify(0)
    assert (restored(store, 0, tmp_path) / "cell" / "fresh").read_bytes() == data
