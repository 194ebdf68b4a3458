"""Unit tests of the deduplicated, crash-safe snapshot store."""

import json
import os
import time

import pytest

from actinia_resume_plugin.store import (
    SnapshotBudgetExceeded,
    SnapshotNotFound,
    SnapshotStore,
    interim_root,
    list_job_roots,
)
from actinia_resume_plugin.store import snapshot_store as ss

OLD_NS = 1_600_000_000_123_456_789  # 2020: far from "now", never racy


def write(path, data, mtime_ns=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def make_mapset(base, old=True):
    """A small GRASS-like mapset; files get an old mtime (not racy) by default."""
    t = OLD_NS if old else None
    write(base / "WIND", "proj: 99\n", t)
    write(base / "VAR", "DB_DRIVER: sqlite\n", t)
    write(base / "cell" / "elev", b"\x01" * 1000, t)
    write(base / "cellhd" / "elev", "rows: 10\n", t)
    write(base / "sqlite" / "sqlite.db", b"S" * 4096, t)
    return base


@pytest.fixture
def live(tmp_path):
    return {"mapset": make_mapset(tmp_path / "live" / "mapset"),
            "tmpdir": make_mapset(tmp_path / "live" / "tmpdir")}


@pytest.fixture
def store(tmp_path):
    return SnapshotStore(tmp_path / "res" / "user" / "interim" / "job1")


def snap_file(info, part, rel):
    return info.path / "parts" / part / rel


def ino(p):
    return os.lstat(p).st_ino


# ------------------------------------------------------------------ basics


def test_interim_root_and_list_job_roots(tmp_path):
    root = interim_root(tmp_path, "user", "resource_id-1")
    assert root == tmp_path / "user" / "interim" / "resource_id-1"
    assert list_job_roots(tmp_path, "user") == []
    for rid in ("b", "a"):
        (tmp_path / "user" / "interim" / rid).mkdir(parents=True)
    (tmp_path / "user" / "interim" / ".hidden").mkdir()
    (tmp_path / "user" / "interim" / "afile").write_text("x")
    assert list_job_roots(tmp_path, "user") == [
        tmp_path / "user" / "interim" / "a", tmp_path / "user" / "interim" / "b"]


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
    assert store.disk_usage() == 0
    assert store.newest_mtime() is None
    with pytest.raises(SnapshotNotFound):
        store.restore(0, {})


def test_save_layout_meta_and_listing(store, live):
    info = store.save(3, live, {"fp": "abc"})
    assert info.step == 3
    assert info.path == store.root / "steps" / "000003"
    assert info.parts == ["mapset", "tmpdir"]
    assert info.meta["fp"] == "abc"
    for key in ("bytes_copied", "files_copied", "files_linked", "seconds"):
        assert key in info.meta
    assert info.meta["files_copied"] == 10 and info.meta["files_linked"] == 0
    assert info.meta["bytes_copied"] == 2 * (len("proj: 99\n") + len("DB_DRIVER: sqlite\n")
                                             + 1000 + len("rows: 10\n") + 4096)
    assert (info.path / "manifest.json").is_file()
    assert (snap_file(info, "mapset", "cell/elev")).read_bytes() == b"\x01" * 1000
    m = json.loads((info.path / "manifest.json").read_text())
    e = m["parts"]["mapset"]["entries"]["cell/elev"]
    st = os.stat(live["mapset"] / "cell" / "elev")
    assert (e["size"], e["mtime_ns"], e["ino"], e["ctime_ns"], e["mode"]) == (
        st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_mode)
    assert e["racy"] is False

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
    info = store.save(0, {"mapsets/test_tmp_a": live["mapset"]})
    assert snap_file(info, "mapsets/test_tmp_a", "WIND").is_file()
    out = tmp_path / "out"
    assert store.restore(0, {"mapsets/test_tmp_a": out}) == ["mapsets/test_tmp_a"]
    assert (out / "WIND").read_text() == "proj: 99\n"


# ------------------------------------------------------------------ dedup


def test_snapshot_never_shares_inode_with_live(store, live):
    i0 = store.save(0, live)
    i1 = store.save(1, live)
    for info in (i0, i1):
        for rel in ("WIND", "VAR", "cell/elev", "cellhd/elev", "sqlite/sqlite.db"):
            assert ino(live["mapset"] / rel) != ino(snap_file(info, "mapset", rel))


def test_unchanged_files_are_linked_changed_copied(store, live):
    i0 = store.save(0, live)
    write(live["mapset"] / "cell" / "elev", b"\x02" * 2000)  # changed
    write(live["mapset"] / "cell" / "slope", b"\x03" * 500)  # new
    i1 = store.save(1, live)
    for rel in ("WIND", "VAR", "cellhd/elev", "sqlite/sqlite.db"):
        assert ino(snap_file(i0, "mapset", rel)) == ino(snap_file(i1, "mapset", rel))
    assert ino(snap_file(i0, "mapset", "cell/elev")) != ino(snap_file(i1, "mapset", "cell/elev"))
    assert snap_file(i0, "mapset", "cell/elev").read_bytes() == b"\x01" * 1000
    assert snap_file(i1, "mapset", "cell/elev").read_bytes() == b"\x02" * 2000
    assert snap_file(i1, "mapset", "cell/slope").read_bytes() == b"\x03" * 500
    assert i1.meta["files_copied"] == 2
    assert i1.meta["bytes_copied"] == 2500
    assert i1.meta["files_linked"] == 9


def test_unchanged_chain_links_from_previous_snapshot(store, live):
    i0 = store.save(0, live)
    i1 = store.save(1, live)
    i2 = store.save(2, live)
    assert i2.meta["files_copied"] == 0
    assert ino(snap_file(i0, "tmpdir", "WIND")) == ino(snap_file(i2, "tmpdir", "WIND"))
    assert os.stat(snap_file(i1, "tmpdir", "WIND")).st_nlink == 3


def test_mode_change_is_a_change(store, live):
    i0 = store.save(0, live)
    os.chmod(live["mapset"] / "WIND", 0o600)
    i1 = store.save(1, live)
    assert ino(snap_file(i0, "mapset", "WIND")) != ino(snap_file(i1, "mapset", "WIND"))
    assert os.stat(snap_file(i1, "mapset", "WIND")).st_mode & 0o777 == 0o600


def test_replaced_file_same_size_same_mtime_detected_by_inode(store, live):
    """Atomic replace (new inode) with same size and forced equal mtime."""
    p = live["mapset"] / "WIND"
    store.save(0, live)
    tmp = p.with_name("WIND.new")
    write(tmp, "proj: 42\n", OLD_NS)
    os.replace(tmp, p)
    i1 = store.save(1, live)
    assert snap_file(i1, "mapset", "WIND").read_text() == "proj: 42\n"


# ------------------------------------------------------------------ racy rule


def test_same_size_rewrite_immediately_is_detected(store, live, tmp_path):
    """sqlite.db rewritten in place, same size, same (forced) mtime."""
    db = live["mapset"] / "sqlite" / "sqlite.db"
    write(db, b"A" * 4096)
    mtime = os.stat(db).st_mtime_ns
    store.save(0, live)
    with open(db, "r+b") as f:  # in place: same inode
        f.write(b"B" * 4096)
    os.utime(db, ns=(mtime, mtime))  # coarse timestamp: mtime unchanged
    store.save(1, live)
    out = tmp_path / "restored"
    store.restore(1, {"mapset": out})
    assert (out / "sqlite" / "sqlite.db").read_bytes() == b"B" * 4096
    store.restore(0, {"mapset": out})
    assert (out / "sqlite" / "sqlite.db").read_bytes() == b"A" * 4096


@pytest.fixture
def coarse_fs(monkeypatch):
    """Simulate a file system whose ctime does not change within a tick.

    Only (size, mtime, mode) remain, so an in-place same-size rewrite with an
    equal mtime yields an identical stat key: only the racy rule can catch it.
    """
    monkeypatch.setattr(
        ss, "_stat_key", lambda st: (st.st_size, st.st_mtime_ns, 0, 0, st.st_mode))
    monkeypatch.setattr(
        ss, "_entry_key", lambda e: (e.get("size"), e.get("mtime_ns"), 0, 0, e.get("mode")))


def test_racy_entry_is_not_trusted(store, live, coarse_fs):
    db = live["mapset"] / "sqlite" / "sqlite.db"
    write(db, b"A" * 4096)  # written "now": racy
    i0 = store.save(0, live)
    e0 = store.manifest(0)["parts"]["mapset"]["entries"]["sqlite/sqlite.db"]
    assert e0["racy"] is True
    mtime = os.stat(db).st_mtime_ns
    with open(db, "r+b") as f:
        f.write(b"B" * 4096)
    os.utime(db, ns=(mtime, mtime))
    i1 = store.save(1, live)
    assert snap_file(i1, "mapset", "sqlite/sqlite.db").read_bytes() == b"B" * 4096
    assert snap_file(i0, "mapset", "sqlite/sqlite.db").read_bytes() == b"A" * 4096
    assert i1.meta["files_copied"] == 1


def test_same_stat_without_racy_rule_would_be_missed(store, live, coarse_fs, monkeypatch):
    """Sanity check of the simulation: with racy disabled the rewrite is missed."""
    monkeypatch.setattr(ss, "_is_racy", lambda mtime_ns, t0_ns: False)
    db = live["mapset"] / "sqlite" / "sqlite.db"
    write(db, b"A" * 4096)
    store.save(0, live)
    mtime = os.stat(db).st_mtime_ns
    with open(db, "r+b") as f:
        f.write(b"B" * 4096)
    os.utime(db, ns=(mtime, mtime))
    i1 = store.save(1, live)
    assert snap_file(i1, "mapset", "sqlite/sqlite.db").read_bytes() == b"A" * 4096


def test_racy_but_identical_content_is_linked(store, live, coarse_fs):
    db = live["mapset"] / "sqlite" / "sqlite.db"
    write(db, b"A" * 4096)
    i0 = store.save(0, live)
    assert store.manifest(0)["parts"]["mapset"]["entries"]["sqlite/sqlite.db"]["racy"]
    i1 = store.save(1, live)
    assert ino(snap_file(i0, "mapset", "sqlite/sqlite.db")) == ino(
        snap_file(i1, "mapset", "sqlite/sqlite.db"))
    assert i1.meta["files_copied"] == 0


def test_racy_rule_boundaries():
    t0 = 1_700_000_000_500_000_000
    margin = ss._racy_margin_ns()
    assert margin >= 10_000_000
    assert ss._is_racy(t0, t0)
    assert ss._is_racy(t0 + 5_000_000_000, t0)  # future mtime (clock skew)
    assert ss._is_racy(t0 - margin + 1, t0)
    assert not ss._is_racy(t0 - margin - 1_000_001, t0)
    assert not ss._is_racy(t0 - 60_000_000_000 + 1, t0)
    # whole-second mtime: file system with 1-2 s granularity -> wider window
    assert ss._is_racy(1_700_000_000_000_000_000, 1_700_000_001_500_000_000)
    assert not ss._is_racy(1_700_000_000_000_000_000, 1_700_000_010_000_000_000)


def test_t0_is_read_before_stat(store, live, monkeypatch):
    """A file whose mtime equals t0 must be marked racy."""
    fixed = os.stat(live["mapset"] / "WIND").st_mtime_ns
    monkeypatch.setattr(ss, "_now_coarse_ns", lambda: fixed)
    store.save(0, live)
    assert store.manifest(0)["parts"]["mapset"]["entries"]["WIND"]["racy"] is True


# ------------------------------------------------------------------ restore


def test_restore_copies_and_snapshot_stays_unchanged(store, live, tmp_path):
    info = store.save(0, live)
    out = {"mapset": tmp_path / "new" / "mapset", "tmpdir": tmp_path / "new" / "tmp"}
    assert store.restore(0, out) == ["mapset", "tmpdir"]
    restored = out["mapset"] / "cell" / "elev"
    stored = snap_file(info, "mapset", "cell/elev")
    assert restored.read_bytes() == b"\x01" * 1000
    assert ino(restored) != ino(stored)
    assert os.stat(restored).st_nlink == 1
    assert not restored.is_symlink()
    with open(restored, "r+b") as f:  # GRASS modifies in place
        f.write(b"\xff" * 10)
    (out["mapset"] / "WIND").write_text("changed")
    assert stored.read_bytes() == b"\x01" * 1000
    assert snap_file(info, "mapset", "WIND").read_text() == "proj: 99\n"


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
    # no temp dirs left next to the target
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_first_save_after_restore_links_from_restored_snapshot(store, live, tmp_path):
    """Restored files have new inodes; the restore baseline avoids a full copy."""
    i0 = store.save(0, live)
    store.save(1, live)
    work = {"mapset": tmp_path / "w" / "mapset", "tmpdir": tmp_path / "w" / "tmp"}
    store.restore(0, work)
    write(work["mapset"] / "cell" / "new", b"n" * 10)
    i1 = store.save(1, work)  # re-save step 1 in a new iteration
    assert i1.meta["files_copied"] == 1 and i1.meta["bytes_copied"] == 10
    assert ino(snap_file(i0, "mapset", "WIND")) == ino(snap_file(i1, "mapset", "WIND"))
    assert ino(snap_file(i1, "mapset", "WIND")) != ino(work["mapset"] / "WIND")
    # restored file rewritten in place with the same size -> copied, not linked
    p = work["mapset"] / "VAR"
    st = os.stat(p)
    with open(p, "r+b") as f:
        f.write(b"X")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    i2 = store.save(2, work)
    assert snap_file(i2, "mapset", "VAR").read_text().startswith("XB_DRIVER")
    assert snap_file(i0, "mapset", "VAR").read_text() == "DB_DRIVER: sqlite\n"


def test_restore_for_another_job_links_its_first_save(store, live, tmp_path):
    """Reuse across jobs: job2 restores job1's snapshot; job2's first save
    links the unchanged files (no full copy) and job1's root is untouched."""
    i0 = store.save(0, live)
    job2 = SnapshotStore(tmp_path / "res" / "user" / "interim" / "job2")
    work = {"mapset": tmp_path / "w2" / "mapset"}
    store.restore(0, work, baseline_store=job2)
    assert not (store.root / "baseline.json").exists()
    write(work["mapset"] / "cell" / "new", b"n" * 10)
    i1 = job2.save(1, work)
    assert i1.meta["files_copied"] == 1 and i1.meta["bytes_copied"] == 10
    assert ino(snap_file(i1, "mapset", "WIND")) == ino(
        snap_file(i0, "mapset", "WIND"))
    store.delete_all()  # job1 removed: job2's snapshot stays complete
    assert snap_file(i1, "mapset", "cell/elev").read_bytes() == b"\x01" * 1000


def test_baseline_ignored_for_other_source_dir(store, live, tmp_path):
    store.save(0, live)
    store.restore(0, {"mapset": tmp_path / "a"})
    store.restore(0, {"mapset": tmp_path / "b"})  # baseline now points to b
    info = store.save(1, {"mapset": tmp_path / "a"})
    assert info.meta["files_linked"] == 0


# ------------------------------------------------------------------ exclusions, symlinks


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
    info = store.save(0, live)
    base = info.path / "parts" / "mapset"
    assert not (base / ".gislock").exists()
    assert not (base / ".tmp").exists()
    assert not (base / "sub" / ".tmp").exists()
    assert not (base / "sub" / ".gislock").exists()
    assert (base / ".tmpfile").read_text() == "kept"
    assert (base / "empty" / "deeper").is_dir()
    assert os.readlink(base / "link_rel") == "cell/elev"
    assert os.readlink(base / "link_dangling") == "/nonexistent/target"

    out = tmp_path / "out"
    store.restore(0, {"mapset": out})
    assert (out / "empty" / "deeper").is_dir()
    assert not (out / ".gislock").exists() and not (out / ".tmp").exists()
    assert (out / "link_rel").is_symlink() and os.readlink(out / "link_rel") == "cell/elev"
    assert (out / "link_rel").read_bytes() == b"\x01" * 1000
    assert os.readlink(out / "link_dangling") == "/nonexistent/target"
    # symlinks kept across dedup saves, link target change detected
    os.unlink(m / "link_rel")
    os.symlink("WIND", m / "link_rel")
    store.save(1, live)
    assert os.readlink(store.get(1).path / "parts" / "mapset" / "link_rel") == "WIND"


def test_symlinked_file_is_not_followed(store, live, tmp_path):
    secret = tmp_path / "outside.txt"
    write(secret, "outside")
    os.symlink(secret, live["mapset"] / "ext")
    info = store.save(0, live)
    p = info.path / "parts" / "mapset" / "ext"
    assert p.is_symlink()
    assert info.meta["files_copied"] == 10  # symlink target not copied


# ------------------------------------------------------------------ crash safety


def test_crash_during_copy_leaves_no_visible_snapshot(store, live, monkeypatch):
    i0 = store.save(0, live)
    write(live["mapset"] / "cell" / "elev", b"\x09" * 1000)
    write(live["mapset"] / "cell" / "new", b"\x08" * 1000)
    calls = {"n": 0}
    real = ss._copy_file

    def crashing_copy(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        real(src, dst)

    monkeypatch.setattr(ss, "_copy_file", crashing_copy)
    with pytest.raises(RuntimeError):
        store.save(1, live)
    assert store.steps() == [0]
    assert snap_file(store.get(0), "mapset", "cell/elev").read_bytes() == b"\x01" * 1000
    assert not [p for p in store.root.iterdir() if p.name.startswith(".staging-")]
    monkeypatch.setattr(ss, "_copy_file", real)
    i1 = store.save(1, live)
    assert store.steps() == [0, 1]
    assert snap_file(i1, "mapset", "cell/elev").read_bytes() == b"\x09" * 1000
    assert ino(snap_file(i0, "mapset", "WIND")) == ino(snap_file(i1, "mapset", "WIND"))


def test_killed_process_leftovers_are_ignored_and_cleaned(store, live):
    """A hard kill leaves a staging dir and maybe a step dir without manifest."""
    store.save(0, live)
    dead_pid = 2 ** 22 + 12345  # above pid_max default: never alive
    staging = store.root / f".staging-{ss._HOST}-{dead_pid}-{'a' * 32}"
    write(staging / "parts" / "mapset" / "WIND", "partial")
    foreign = store.root / f".staging-otherhost-1-{'b' * 32}"
    write(foreign / "x", "in progress elsewhere")
    broken = store.root / "steps" / "000005"
    write(broken / "parts" / "mapset" / "WIND", "partial")
    write(store.root / "steps" / "000006" / "manifest.json", "{not json")
    assert store.steps() == [0]
    assert store.latest().step == 0
    assert store.get(5) is None and store.get(6) is None
    store.save(1, live)
    assert not staging.exists()
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


def test_resave_step_replaces_atomically(store, live):
    i_old = store.save(1, live, {"iteration": 1})
    write(live["mapset"] / "WIND", "proj: 3\n")
    i_new = store.save(1, live, {"iteration": 2})
    assert store.steps() == [1]
    assert store.get(1).meta["iteration"] == 2
    assert i_new.id != i_old.id
    assert snap_file(i_new, "mapset", "WIND").read_text() == "proj: 3\n"
    assert snap_file(i_new, "mapset", "VAR").read_text() == "DB_DRIVER: sqlite\n"
    assert i_new.meta["files_copied"] == 1  # linked from the replaced snapshot
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


# ------------------------------------------------------------------ budget


def test_budget_exceeded_before_copying(store, live, monkeypatch):
    store.save(0, live)
    write(live["mapset"] / "cell" / "big", b"b" * 10_000)
    before = store.disk_usage()
    copies = []
    monkeypatch.setattr(ss, "_copy_file", lambda s, d: copies.append(s))
    with pytest.raises(SnapshotBudgetExceeded) as exc:
        store.save(1, live, budget_bytes=9_999)
    assert exc.value.needed == 10_000 and exc.value.budget == 9_999
    assert copies == []
    assert store.steps() == [0]
    assert store.disk_usage() == before
    assert not [p for p in store.root.iterdir() if p.name.startswith(".staging-")]
    monkeypatch.undo()
    info = store.save(1, live, budget_bytes=10_000)  # exactly at the budget: ok
    assert info.meta["bytes_copied"] == 10_000


def test_budget_counts_only_new_bytes(store, live):
    with pytest.raises(SnapshotBudgetExceeded):
        store.save(0, live, budget_bytes=100)
    store.save(0, live)
    assert store.save(1, live, budget_bytes=0).meta["bytes_copied"] == 0


# ------------------------------------------------------------------ deletion, accounting


def test_disk_usage_counts_shared_inodes_once(store, live):
    def manifests():
        return sum((i.path / "manifest.json").stat().st_size for i in store.list())

    i0 = store.save(0, live)
    data = i0.meta["bytes_copied"]
    assert store.disk_usage() == data + manifests()
    store.save(1, live)
    assert store.disk_usage() == data + manifests()  # no new data bytes
    write(live["mapset"] / "cell" / "big", b"b" * 5000)
    store.save(2, live)
    assert store.disk_usage() == data + 5000 + manifests()
    store.write_job({"a": 1})
    job = (store.root / "job.json").stat().st_size
    assert store.disk_usage() == data + 5000 + manifests() + job
    naive = sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
    assert naive == store.disk_usage() + 2 * data  # steps 1 and 2 share step 0's data
    assert store.disk_usage(allocated=True) > 0


def test_delete_prune_keep_only_latest_delete_all(store, live):
    for s in range(4):
        store.save(s, live)
    assert store.delete(1) is True
    assert store.delete(1) is False
    assert store.steps() == [0, 2, 3]
    assert store.prune({0, 3}) == [2]
    assert store.steps() == [0, 3]
    # shared files survive deletion of the snapshot they were linked from
    assert store.keep_only_latest() == [0]
    assert store.steps() == [3]
    assert snap_file(store.get(3), "mapset", "WIND").read_text() == "proj: 99\n"
    store.write_job({"x": 1})
    store.delete_all()
    assert not store.root.exists()
    assert store.list() == []
    store.delete_all()  # idempotent


def test_job_json_atomic(store, monkeypatch):
    store.write_job({"status": "error", "n": [1, 2]})
    assert store.read_job() == {"status": "error", "n": [1, 2]}

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ss.os, "replace", boom)
    with pytest.raises(OSError):
        store.write_job({"status": "other"})
    monkeypatch.undo()
    assert store.read_job() == {"status": "error", "n": [1, 2]}
    assert [p.name for p in store.root.iterdir()] == ["job.json"]


def test_newest_mtime(store, live):
    store.write_job({})
    t1 = store.newest_mtime()
    assert t1 is not None and abs(t1 - time.time()) < 60
    old = time.time() - 10_000
    for p in (store.root, store.root / "job.json"):
        os.utime(p, (old, old))
    assert store.newest_mtime() == pytest.approx(old)
    store.save(0, live)
    assert store.newest_mtime() > old + 9_000


def test_copy_file_fallback_without_copy_file_range(tmp_path, monkeypatch):
    src = tmp_path / "src"
    write(src, os.urandom(300_000), OLD_NS)

    def nope(*a):
        raise OSError(ss.errno.EXDEV, "cross device")

    monkeypatch.setattr(ss.os, "copy_file_range", nope)
    ss._copy_file(str(src), str(tmp_path / "dst"))
    assert (tmp_path / "dst").read_bytes() == src.read_bytes()
    assert os.stat(tmp_path / "dst").st_mtime_ns == OLD_NS


def test_restore_keeps_file_and_dir_modes(store, live, tmp_path):
    os.chmod(live["mapset"] / "WIND", 0o640)
    os.chmod(live["mapset"] / "cellhd", 0o750)
    os.chmod(live["mapset"], 0o711)
    store.save(0, live)
    out = tmp_path / "o"
    store.restore(0, {"mapset": out})
    assert os.stat(out / "WIND").st_mode & 0o7777 == 0o640
    assert os.stat(out / "cellhd").st_mode & 0o7777 == 0o750
    assert os.stat(out).st_mode & 0o7777 == 0o711
    assert os.stat(out / "WIND").st_mtime_ns == OLD_NS  # times preserved
