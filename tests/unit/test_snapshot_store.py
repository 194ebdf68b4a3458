# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the content-addressed, delta-manifest snapshot store."""

import errno
import json
import os
import time

import pytest

from actinia_resume_plugin.store import (
    SnapshotBudgetExceeded,
    SnapshotDamaged,
    SnapshotNoSpace,
    SnapshotNotFound,
    SnapshotStore,
    entry,
    fsops,
    interim_root,
    job_record,
    layout,
    live_listing,
)
from actinia_resume_plugin.store import snapshot_store as ss

OLD_NS = 1_600_000_000_123_456_789  # 2020: far from "now", never racy
SIZES = len("proj: 99\n") + len("DB_DRIVER: sqlite\n") + 1000 + len("rows: 10\n") + 4096


def write(path, data, mtime_ns=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def make_mapset(base, old=True, tag=b"\x01"):
    """A small GRASS-like mapset; files get an old mtime (not racy) by default."""
    t = OLD_NS if old else None
    write(base / "WIND", "proj: 99\n", t)
    write(base / "VAR", "DB_DRIVER: sqlite\n", t)
    write(base / "cell" / "elev", tag * 1000, t)
    write(base / "cellhd" / "elev", "rows: 10\n", t)
    write(base / "sqlite" / "sqlite.db", b"S" * 4096, t)
    return base


@pytest.fixture(autouse=True, params=["find", "python"])
def lister(request, monkeypatch):
    """Every store test runs with both ways of listing the live dirs: GNU
    find (the fast path) and the Python walk (its fallback)."""
    if request.param == "python":
        monkeypatch.setattr(live_listing, "_find_command", lambda *a: None)
    return request.param


@pytest.fixture
def live(tmp_path):
    return {"mapset": make_mapset(tmp_path / "live" / "mapset"),
            "tmpdir": make_mapset(tmp_path / "live" / "tmpdir", tag=b"\x07")}


@pytest.fixture
def store(tmp_path):
    return SnapshotStore(tmp_path / "res" / "user" / "interim" / "job1")


def restored(store, step, tmp_path, part="mapset"):
    """Restore one part of a snapshot into a fresh dir with a fresh store
    (another process), return the dir."""
    out = tmp_path / f"restored-{step}-{time.monotonic_ns()}"
    SnapshotStore(store.root).restore(step, {part: out})
    return out


def manifest(store, step):
    return json.loads((store.step_path(step) / "manifest.json").read_text())


def object_files(store):
    return sorted(p for p in (store.root / "objects").rglob("*") if p.is_file())


def obj_of(store, step, rel, part="mapset"):
    state, _ = store.state(step)
    return store.object_path(state[part][rel].obj)


# ------------------------------------------------------------------ basics


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


def test_nested_part_names(store, live, tmp_path):
    store.save(0, {"mapsets/test_tmp_a": live["mapset"]})
    out = tmp_path / "out"
    assert store.restore(0, {"mapsets/test_tmp_a": out}) == ["mapsets/test_tmp_a"]
    assert (out / "WIND").read_text() == "proj: 99\n"


# ------------------------------------------------------------------ deltas


def test_objects_never_share_an_inode_with_live(store, live):
    store.save(0, live)
    live_inodes = {os.lstat(p).st_ino for p in live["mapset"].rglob("*")}
    assert not live_inodes & {os.lstat(p).st_ino for p in object_files(store)}


def test_a_step_writes_only_what_it_changed(store, live, tmp_path):
    store.save(0, live)
    objects_before = object_files(store)
    write(live["mapset"] / "cell" / "elev", b"\x02" * 2000)  # changed
    write(live["mapset"] / "cell" / "slope", b"\x03" * 500)  # new
    (live["mapset"] / "VAR").unlink()  # removed
    i1 = store.save(1, live)
    assert i1.meta["files_copied"] == 2 and i1.meta["bytes_copied"] == 2500
    assert i1.meta["entries_written"] == 3
    delta = manifest(store, 1)["parts"]["mapset"]
    assert sorted(delta["changed"]) == ["cell/elev", "cell/slope"]
    assert delta["removed"] == ["VAR"]
    assert manifest(store, 1)["parts"]["tmpdir"]["changed"] == {}
    assert len(object_files(store)) == len(objects_before) + 2
    out0, out1 = restored(store, 0, tmp_path), restored(store, 1, tmp_path)
    assert (out0 / "cell" / "elev").read_bytes() == b"\x01" * 1000
    assert (out0 / "VAR").exists()
    assert (out1 / "cell" / "elev").read_bytes() == b"\x02" * 2000
    assert (out1 / "cell" / "slope").read_bytes() == b"\x03" * 500
    assert not (out1 / "VAR").exists()


def test_unchanged_steps_write_empty_deltas(store, live):
    store.save(0, live)
    for step in (1, 2):
        info = store.save(step, live)
        assert info.meta["files_copied"] == 0 and info.meta["entries_written"] == 0


def test_many_files_cost_only_the_change(store, tmp_path):
    mapset = tmp_path / "big"
    for i in range(3000):
        write(mapset / "cell" / f"m{i}", f"{i}".encode(), OLD_NS)
    store.save(0, {"mapset": mapset})
    write(mapset / "cell" / "new", b"new")
    info = store.save(1, {"mapset": mapset})
    assert info.meta["files_copied"] == 1 and info.meta["entries_written"] == 1
    assert info.meta["files_unchanged"] == 3000
    assert len(os.listdir(store.step_path(1))) == 1  # just the manifest


def test_mode_change_is_a_change(store, live, tmp_path):
    store.save(0, live)
    os.chmod(live["mapset"] / "WIND", 0o600)
    store.save(1, live)
    assert os.stat(restored(store, 1, tmp_path) / "WIND").st_mode & 0o777 == 0o600
    assert os.stat(restored(store, 0, tmp_path) / "WIND").st_mode & 0o777 != 0o600


def test_replaced_file_same_size_same_mtime_detected_by_inode(store, live, tmp_path):
    """Atomic replace (new inode) with same size and forced equal mtime."""
    p = live["mapset"] / "WIND"
    store.save(0, live)
    tmp = p.with_name("WIND.new")
    write(tmp, "proj: 42\n", OLD_NS)
    os.replace(tmp, p)
    store.save(1, live)
    assert (restored(store, 1, tmp_path) / "WIND").read_text() == "proj: 42\n"


# ------------------------------------------------------------------ racy rule


def test_same_size_rewrite_in_place_is_detected(store, live, tmp_path):
    """sqlite.db rewritten in place, same size, same (forced) mtime."""
    db = live["mapset"] / "sqlite" / "sqlite.db"
    write(db, b"A" * 4096)
    mtime = os.stat(db).st_mtime_ns
    store.save(0, live)
    with open(db, "r+b") as f:  # in place: same inode
        f.write(b"B" * 4096)
    os.utime(db, ns=(mtime, mtime))  # coarse timestamp: mtime unchanged
    store.save(1, live)
    assert (restored(store, 1, tmp_path) / "sqlite" / "sqlite.db").read_bytes() == b"B" * 4096
    assert (restored(store, 0, tmp_path) / "sqlite" / "sqlite.db").read_bytes() == b"A" * 4096


@pytest.fixture
def coarse_fs(monkeypatch):
    """A file system whose inode and ctime tell nothing (as after a same-tick
    in-place rewrite): only (size, mtime, mode) remain, so a same-size
    rewrite with an equal mtime has an identical stat key and only the racy
    rule can catch it."""
    monkeypatch.setattr(
        entry, "live_key", lambda st: (st.st_size, st.st_mtime_ns, 0, 0, st.st_mode))
    monkeypatch.setattr(live_listing, "KEY_FORMAT", "%y %m %s %T@ 0 0")


def rewrite_same_stat(path, data):
    mtime = os.stat(path).st_mtime_ns
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(mtime, mtime))


def test_racy_entry_is_not_trusted(store, live, coarse_fs, tmp_path,
                                   monkeypatch):
    db = live["mapset"] / "sqlite" / "sqlite.db"
    write(db, b"A" * 4096)  # written "now": racy
    # the save starts in the clock tick of the write, however loaded the
    # machine (a real save within 10 ms of a write is what the rule is for)
    written = os.stat(db).st_mtime_ns
    monkeypatch.setattr(entry, "now_coarse_ns", lambda: written)
    store.save(0, live)
    rewrite_same_stat(db, b"B" * 4096)
    i1 = store.save(1, live)
    assert i1.meta["files_copied"] == 1
    assert (restored(store, 1, tmp_path) / "sqlite" / "sqlite.db").read_bytes() == b"B" * 4096
    assert (restored(store, 0, tmp_path) / "sqlite" / "sqlite.db").read_bytes() == b"A" * 4096


def test_same_stat_without_racy_rule_would_be_missed(store, live, coarse_fs, monkeypatch, tmp_path):
    """The simulation is real: with the racy rule off the rewrite is missed."""
    monkeypatch.setattr(entry, "is_racy", lambda mtime_ns, t0_ns: False)
    db = live["mapset"] / "sqlite" / "sqlite.db"
    write(db, b"A" * 4096)
    store.save(0, live)
    rewrite_same_stat(db, b"B" * 4096)
    store.save(1, live)
    assert (restored(store, 1, tmp_path) / "sqlite" / "sqlite.db").read_bytes() == b"A" * 4096


def test_racy_but_identical_content_is_not_copied(store, live, coarse_fs):
    write(live["mapset"] / "sqlite" / "sqlite.db", b"A" * 4096)
    store.save(0, live)
    assert store.save(1, live).meta["files_copied"] == 0


def test_racy_rule_boundaries():
    t0 = 1_700_000_000_500_000_000
    margin = entry.RACY_MARGIN_NS
    assert margin >= 10_000_000
    assert entry.is_racy(t0, t0)
    assert entry.is_racy(t0 + 5_000_000_000, t0)  # future mtime (clock skew)
    assert entry.is_racy(t0 - margin + 1, t0)
    assert not entry.is_racy(t0 - margin - 1_000_001, t0)
    assert not entry.is_racy(t0 - 60_000_000_000 + 1, t0)
    # whole-second mtime: file system with 1-2 s granularity -> wider window
    assert entry.is_racy(1_700_000_000_000_000_000, 1_700_000_001_500_000_000)
    assert not entry.is_racy(1_700_000_000_000_000_000, 1_700_000_010_000_000_000)


def test_t0_is_read_before_stat(store, live, monkeypatch, coarse_fs, tmp_path):
    """A file whose mtime equals t0 is racy: its same-stat rewrite is seen."""
    fixed = os.stat(live["mapset"] / "WIND").st_mtime_ns
    monkeypatch.setattr(entry, "now_coarse_ns", lambda: fixed)
    store.save(0, live)
    rewrite_same_stat(live["mapset"] / "WIND", b"proj: 77\n")
    store.save(1, live)
    assert (restored(store, 1, tmp_path) / "WIND").read_text() == "proj: 77\n"


# ------------------------------------------------------------------ restore


def test_restore_copies_and_snapshot_stays_unchanged(store, live, tmp_path):
    store.save(0, live)
    out = {"mapset": tmp_path / "new" / "mapset", "tmpdir": tmp_path / "new" / "tmp"}
    assert store.restore(0, out) == ["mapset", "tmpdir"]
    target = out["mapset"] / "cell" / "elev"
    stored = obj_of(store, 0, "cell/elev")
    assert target.read_bytes() == b"\x01" * 1000
    assert os.lstat(target).st_ino != os.lstat(stored).st_ino
    assert os.stat(target).st_nlink == 1 and not target.is_symlink()
    with open(target, "r+b") as f:  # GRASS modifies in place
        f.write(b"\xff" * 10)
    assert open(stored, "rb").read() == b"\x01" * 1000
    assert (restored(store, 0, tmp_path) / "cell" / "elev").read_bytes() == b"\x01" * 1000


def test_restore_skips_parts_not_in_targets(store, live, tmp_path):
    store.save(0, live)
    assert store.restore(0, {"tmpdir": tmp_path / "t", "unknown": tmp_path / "u"}) == ["tmpdir"]
    assert (tmp_path / "t" / "WIND").exists()
    assert not (tmp_path / "u").exists()


def test_restore_into_existing_dir(store, live, tmp_path):
    store.save(0, live)
    empty = tmp_path / "empty"
    empty.mkdir()
    store.restore(0, {"mapset": empty})
    assert sorted(p.name for p in empty.iterdir()) == ["VAR", "WIND", "cell", "cellhd", "sqlite"]
    full = tmp_path / "full"
    write(full / "junk", "x")
    with pytest.raises(FileExistsError):
        store.restore(0, {"mapset": full}, replace=False)
    assert (full / "junk").exists()
    store.restore(0, {"mapset": full})
    assert not (full / "junk").exists()
    assert (full / "WIND").read_text() == "proj: 99\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_restore_keeps_file_and_dir_modes_and_times(store, live, tmp_path):
    os.chmod(live["mapset"] / "WIND", 0o640)
    os.chmod(live["mapset"] / "cellhd", 0o750)
    os.chmod(live["mapset"], 0o711)
    store.save(0, live)
    out = tmp_path / "o"
    store.restore(0, {"mapset": out})
    assert os.stat(out / "WIND").st_mode & 0o7777 == 0o640
    assert os.stat(out / "cellhd").st_mode & 0o7777 == 0o750
    assert os.stat(out).st_mode & 0o7777 == 0o711
    assert os.stat(out / "WIND").st_mtime_ns == OLD_NS


def test_first_save_after_restore_writes_only_the_change(store, live, tmp_path):
    """Restored files have new inodes; the restore's own stat is the base."""
    store.save(0, live)
    store.save(1, live)
    work = {"mapset": tmp_path / "w" / "mapset", "tmpdir": tmp_path / "w" / "tmp"}
    resumed = SnapshotStore(store.root)  # a new job process
    resumed.restore(0, work)
    write(work["mapset"] / "cell" / "new", b"n" * 10)
    i1 = resumed.save(1, work)  # re-save step 1 in a new iteration
    assert i1.meta["files_copied"] == 1 and i1.meta["bytes_copied"] == 10
    assert i1.meta["entries_written"] == 1
    assert manifest(store, 1)["base"] == 0
    # restored file rewritten in place with the same size and mtime
    p = work["mapset"] / "VAR"
    st = os.stat(p)
    with open(p, "r+b") as f:
        f.write(b"X")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    resumed.save(2, work)
    assert (restored(store, 2, tmp_path) / "VAR").read_text().startswith("XB_DRIVER")
    assert (restored(store, 0, tmp_path) / "VAR").read_text() == "DB_DRIVER: sqlite\n"


def test_base_ignored_for_other_source_dir(store, live, tmp_path):
    store.save(0, live)
    store.restore(0, {"mapset": tmp_path / "a"})
    store.restore(0, {"mapset": tmp_path / "b"})  # base now describes b
    info = store.save(1, {"mapset": tmp_path / "a"})
    assert info.meta["files_unchanged"] == 0  # all re-read (dedup by hash)
    assert info.meta["files_copied"] == 0


def test_exclusions_symlinks_and_empty_dirs(store, live, tmp_path):
    m = live["mapset"]
    write(m / ".gislock", "123")
    write(m / ".tmp" / "host" / "1.0", "scratch")
    write(m / "sub" / ".tmp" / "x", "scratch")
    write(m / "sub" / ".gislock", "1")
    write(m / ".tmpfile", "kept")  # only the .tmp *directory* is excluded
    (m / "empty" / "deeper").mkdir(parents=True)
    os.symlink("cell/elev", m / "link_rel")
    os.symlink("/nonexistent/target", m / "link_dangling")
    store.save(0, live)
    out = restored(store, 0, tmp_path)
    assert not (out / ".gislock").exists() and not (out / ".tmp").exists()
    assert not (out / "sub" / ".tmp").exists() and not (out / "sub" / ".gislock").exists()
    assert (out / ".tmpfile").read_text() == "kept"
    assert (out / "empty" / "deeper").is_dir()
    assert os.readlink(out / "link_rel") == "cell/elev"
    assert (out / "link_rel").read_bytes() == b"\x01" * 1000
    assert os.readlink(out / "link_dangling") == "/nonexistent/target"
    os.unlink(m / "link_rel")
    os.symlink("WIND", m / "link_rel")
    store.save(1, live)
    assert os.readlink(restored(store, 1, tmp_path) / "link_rel") == "WIND"


def test_symlinked_file_is_not_followed(store, live, tmp_path):
    secret = tmp_path / "outside.txt"
    write(secret, "outside")
    os.symlink(secret, live["mapset"] / "ext")
    info = store.save(0, live)
    assert info.meta["files_copied"] == 6  # symlink target not stored
    assert (restored(store, 0, tmp_path) / "ext").is_symlink()


# ------------------------------------------------------------------ damage


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


@pytest.mark.parametrize("doc", [
    "{not json", "[]", '{"version": 2}', "null",
])
def test_damaged_manifest_is_invisible(store, live, doc):
    store.save(0, live)
    store.save(1, live)
    (store.step_path(0) / "manifest.json").write_text(doc)
    assert store.steps() == []  # step 1 is a delta on the damaged step 0


def test_damaged_manifest_fields_are_invisible(store, live):
    store.save(0, live)
    path = store.step_path(0) / "manifest.json"
    good = json.loads(path.read_text())
    for key, bad in [("meta", []), ("parts", "x"), ("step", "0"), ("base", 5)]:
        path.write_text(json.dumps({**good, key: bad}))
        assert store.steps() == [], key
    entry = {**good}
    escape = "../../etc/passwd" + "0" * 16
    entry["parts"]["mapset"]["changed"]["WIND"] = ["f", 0, 1, 1, escape, 0, 0]
    path.write_text(json.dumps(entry))
    assert store.steps() == []


def test_read_job_treats_damage_as_missing(store, tmp_path):
    store.write_job({"status": "error"})
    for text in ["{trunc", "[1, 2]", '"x"', "[" * 5000 + "]" * 5000]:
        (store.root / "job.json").write_text(text)
        assert store.read_job() is None
    (store.root / "job.json").unlink()
    (tmp_path / "elsewhere.json").write_text('{"a": 1}')
    os.symlink(tmp_path / "elsewhere.json", store.root / "job.json")
    assert store.read_job() is None


# ------------------------------------------------------------------ crash safety


def test_crash_during_copy_leaves_no_visible_snapshot_and_no_objects(
        store, live, monkeypatch, tmp_path):
    store.save(0, live)
    objects_before = object_files(store)
    write(live["mapset"] / "cell" / "elev", b"\x09" * 1000)
    write(live["mapset"] / "cell" / "new", b"\x08" * 1000)
    calls = {"n": 0}
    real = fsops.copy_hashing

    def crashing_copy(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return real(src, dst)

    monkeypatch.setattr(fsops, "copy_hashing", crashing_copy)
    with pytest.raises(RuntimeError):
        store.save(1, live)
    assert store.steps() == [0]
    assert object_files(store) == objects_before
    assert (restored(store, 0, tmp_path) / "cell" / "elev").read_bytes() == b"\x01" * 1000
    monkeypatch.setattr(fsops, "copy_hashing", real)
    store.save(1, live)
    assert store.steps() == [0, 1]
    assert (restored(store, 1, tmp_path) / "cell" / "elev").read_bytes() == b"\x09" * 1000


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


def test_manifest_step_mismatch_is_invalid(store, live):
    store.save(0, live)
    os.rename(store.step_path(0), store.step_path(7))  # e.g. manual copy
    assert store.steps() == []


def test_resave_step_replaces_atomically_and_orphans_its_dependents(store, live, tmp_path):
    store.save(1, live, {"iteration": 1})
    store.save(2, live, {"iteration": 1})
    work = tmp_path / "w"
    again = SnapshotStore(store.root)
    again.restore(1, {"mapset": work})
    write(work / "WIND", "proj: 3\n")
    i_new = again.save(2, {"mapset": work}, {"iteration": 2})
    assert store.get(2).meta["iteration"] == 2 and store.get(2).id == i_new.id
    assert (restored(store, 2, tmp_path) / "WIND").read_text() == "proj: 3\n"
    assert not [p for p in store.root.iterdir() if p.name.startswith(".trash-")]


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


# ------------------------------------------------------------------ budget, full disk


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


def test_enospc_while_writing_removes_what_was_written(store, live, monkeypatch):
    store.save(0, live)
    objects_before = object_files(store)
    write(live["mapset"] / "cell" / "a", b"a" * 100)
    write(live["mapset"] / "cell" / "b", b"b" * 100)
    real = fsops.copy_hashing
    calls = {"n": 0}

    def full_disk(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(fsops, "copy_hashing", full_disk)
    with pytest.raises(SnapshotNoSpace):
        store.save(1, live)
    assert store.steps() == [0] and object_files(store) == objects_before
    assert not [p for p in (store.root / "objects").iterdir() if p.name.startswith(".tmp-")]


# ------------------------------------------------------------------ deletion


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


def test_job_json_atomic(store, monkeypatch):
    store.write_job({"status": "error", "n": [1, 2]})
    assert store.read_job() == {"status": "error", "n": [1, 2]}

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(fsops.os, "replace", boom)
    with pytest.raises(OSError):
        store.write_job({"status": "other"})
    monkeypatch.undo()
    assert store.read_job() == {"status": "error", "n": [1, 2]}
    assert [p.name for p in store.root.iterdir()] == ["job.json"]


def test_copy_fallback_without_copy_file_range(store, live, tmp_path, monkeypatch):
    store.save(0, live)

    def nope(*a):
        raise OSError(errno.EXDEV, "cross device")

    monkeypatch.setattr(fsops.os, "copy_file_range", nope)
    out = restored(store, 0, tmp_path)
    assert (out / "cell" / "elev").read_bytes() == b"\x01" * 1000
    assert os.stat(out / "cell" / "elev").st_mtime_ns == OLD_NS


# ------------------------------------------------------------------ reuse


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


def reused_by_another_job(store, live, tmp_path):
    """Job 2 restores ``store``'s step 0 and saves: it hard links the
    objects, which changes their ctime (not their mtime)."""
    other = SnapshotStore(store.root.parent / "job2")
    work = {"mapset": tmp_path / "b" / "mapset", "tmpdir": tmp_path / "b" / "t"}
    store.restore(0, work, into=other)
    other.save(1, work)
    return other


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


# ------------------------------------------- damage that keeps timestamps


def in_place_keeping_times(path, change):
    """Change a stored file in place and put its atime and mtime back (bit
    rot, ``cp -p``, a backup restored over it)."""
    st = os.stat(path)
    os.chmod(path, 0o644)
    change(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


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


def test_manifest_changed_keeping_timestamps_is_damaged(store, live):
    store.save(0, live)
    write(live["mapset"] / "cell" / "elev", b"\x03" * 1000, OLD_NS + 1)
    store.save(1, live)
    path = store.step_path(0) / "manifest.json"
    in_place_keeping_times(path, lambda p: p.write_bytes(
        p.read_bytes().replace(b'"DB_DRIVER', b'"DB_DRIVEX', 1)
        if b'"DB_DRIVER' in p.read_bytes() else
        p.read_bytes().replace(b"[\"f\",", b"[\"f\", ", 1)))
    fresh = SnapshotStore(store.root)
    assert fresh.steps() == []
    steps, damaged = fresh.survey()
    assert steps == []
    assert "steps/000000/manifest.json does not match its checksum" in \
        damaged[0]
    assert "step 1" in damaged[1] and "000000" in damaged[1]
    why = fresh.damage(1)
    assert "damaged" in why and "000000/manifest.json" in why


def test_job_record_changed_keeping_timestamps_is_missing(store):
    store.write_job({"status": "error", "failed_step": 3})
    path = store.root / "job.json"
    in_place_keeping_times(path, lambda p: p.write_bytes(
        p.read_bytes().replace(b'"failed_step":3', b'"failed_step":1')))
    assert store.read_job() is None
    record = job_record.read_job_record(store.root)
    assert "does not match its checksum" in record.notice()


def test_survey_names_missing_objects(store, live):
    store.save(0, live)
    write(live["mapset"] / "cell" / "new", b"n" * 10, OLD_NS)
    store.save(1, live)
    os.unlink(obj_of(store, 1, "cell/new"))
    steps, damaged = SnapshotStore(store.root).survey()
    assert steps == [0]
    assert "mapset/cell/new is missing" in damaged[1]


def test_large_object_copied_in_kernel_is_read_back_and_checked(store, live, tmp_path):
    """Files above one chunk are copied with copy_file_range and hashed
    from the destination: intact ones restore, a flipped byte is caught."""
    write(live["mapset"] / "cell" / "big", os.urandom(3 << 20), OLD_NS)
    store.save(0, live)
    out = restored(store, 0, tmp_path)
    assert (out / "cell" / "big").read_bytes() == \
        (live["mapset"] / "cell" / "big").read_bytes()
    fresh = SnapshotStore(store.root)
    assert fresh.last_restore == {}
    obj = obj_of(store, 0, "cell/big")

    def flip(path):
        with open(path, "r+b") as f:
            f.seek(2 << 20)
            byte = f.read(1)
            f.seek(2 << 20)
            f.write(bytes([byte[0] ^ 0xFF]))
    in_place_keeping_times(obj, flip)
    with pytest.raises(SnapshotDamaged, match="cell/big does not match"):
        fresh.restore(0, {"mapset": tmp_path / "again"})
    assert not (tmp_path / "again").exists()
