# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of kept mapsets (store/kept_mapset.py) and their adoption
(store/adoption.py): a resume puts back only what the failed step changed,
and the result is byte for byte what a restore of the same interim result
gives."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from actinia_resume_plugin.store import SnapshotDamaged, SnapshotStore, live_listing
from actinia_resume_plugin.store.adoption import (
    KeptListing,
    NotAdoptable,
    adopt_kept_mapset,
    files_to_put_back,
)
from actinia_resume_plugin.store.kept_mapset import (
    RECORD_NAME,
    KeptMapset,
    kept_resource_id,
    key_string,
    stat_key_string,
)

OLD_NS = 1_600_000_000_123_456_789  # 2020: never racy


def write(path, data, mtime_ns=OLD_NS):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def make_mapset(base):
    write(base / "WIND", "proj: 99\n")
    write(base / "VAR", "DB_DRIVER: sqlite\n")
    for i in range(20):
        write(base / "cell" / f"m{i}", bytes([i]) * 100)
        write(base / "cellhd" / f"m{i}", f"rows: {i}\n")
    (base / "cell_misc" / "m0").mkdir(parents=True)
    os.symlink("../cell/m0", base / "link")
    return base


@pytest.fixture(autouse=True, params=["find", "find-sharded", "python"])
def lister(request, monkeypatch):
    """Each walk: GNU find (one, or two over halves of the top-level
    names, as for a big tree) and the Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(live_listing, "_find_command", lambda *a: None)
    if request.param == "find-sharded":
        monkeypatch.setattr(live_listing, "SHARD_MIN_PATHS", 0)
    return request.param


@pytest.fixture
def job(tmp_path):
    """A failed job: step 0 saved from its live mapset, which is then kept
    (as the worker does at a failure). Returns (store, kept, tmp_path)."""
    live = make_mapset(tmp_path / "db" / "mapset_a")
    tmpdir = tmp_path / "db" / ".tmp"
    write(tmpdir / "scratch", "x")
    resources = tmp_path / "res"
    store = SnapshotStore(resources / "u" / "interim" / "job1")
    store.save(0, {"mapset": live, "tmpdir": tmpdir},
               {"mapset_name": "mapset_a"})
    return store, live, tmpdir, KeptMapset(resources, "u", "job1")


def damage_object(store, rel, step=0):
    """Overwrite the first byte of the stored object of ``mapset/rel``."""
    obj = store.object_path(store.state(step)[0]["mapset"][rel].obj)
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as f:
        f.write(b"X")


@pytest.fixture(autouse=True, params=["whole-record", "keys-only"])
def record_kind(request, monkeypatch):
    """Both ways an adoption learns the planned state: from a record that
    holds it (v3 with the parts' modes: no manifest is parsed) and from
    the manifests (a record without the whole state, like v2)."""
    monkeypatch.setattr(KEEP_MODES, "on", request.param == "whole-record")
    return request.param


class KEEP_MODES:  # noqa: N801 - a switch the fixture sets
    on = True


def keep(store, live, tmpdir, kept):
    current = store.live_state()
    kept.keep({"mapset": live, "tmpdir": tmpdir}, current.state,
              {"step": current.step, "snapshot_id": current.id,
               "mapset_name": "mapset_a"},
              current.modes if KEEP_MODES.on else None)


def tree(base):
    """Every path below ``base`` with its type, mode, mtime and bytes."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, base)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", st.st_mode)
            else:
                out[rel] = ("f", st.st_mode, st.st_mtime_ns,
                            open(path, "rb").read())
    return out


def restored(store, step, tmp_path, part="mapset"):
    out = tmp_path / f"restored-{step}-{part}"
    SnapshotStore(store.root).restore(step, {part: out})
    return out


def test_key_string_is_finds_text(tmp_path):
    """The on-disk key equals what GNU find prints (compared as text)."""
    path = tmp_path / "f"
    write(path, "abc", mtime_ns=None)
    out = subprocess.run(
        ["find", str(path), "-printf", live_listing.KEY_FORMAT],
        capture_output=True, text=True, check=True).stdout
    st = os.lstat(path)
    assert stat_key_string(st) == out
    assert key_string((st.st_size, st.st_mtime_ns, st.st_ino,
                       st.st_ctime_ns, st.st_mode)) == out
    assert key_string(out) == out


def test_unchanged_mapset_is_adopted_without_copying(job, tmp_path):
    store, live, tmpdir, kept = job
    keep(store, live, tmpdir, kept)
    assert kept.exists() and not live.exists()
    inode = os.lstat(kept.path / "mapset" / "cell" / "m3").st_ino
    target = tmp_path / "db2" / "mapset_b"
    fresh = SnapshotStore(store.root)  # the next iteration's process
    report = adopt_kept_mapset(kept, fresh, 0, {
        "mapset": target, "tmpdir": tmp_path / "db2" / ".tmp"})
    assert report.files_put_back == 0 and report.paths_removed == 0
    assert report.files_kept == 43  # 42 in the mapset, 1 in tmpdir
    # the two phases make up the whole (what the resume section reports)
    phases = report.to_dict()
    assert phases["decide_seconds"] > 0 and phases["repair_seconds"] > 0
    assert report.decide_seconds + report.repair_seconds == pytest.approx(
        report.seconds, abs=1e-3)
    assert os.lstat(target / "cell" / "m3").st_ino == inode
    assert tree(target) == tree(restored(store, 0, tmp_path))
    assert not kept.exists() and kept.leftovers() == []
    # the store knows the adopted files: a save writes nothing new
    info = fresh.save(1, {"mapset": target,
                          "tmpdir": tmp_path / "db2" / ".tmp"})
    assert info.meta["files_copied"] == 0
    assert info.meta["entries_written"] == 0


def test_changes_of_the_failed_step_are_undone(job, tmp_path):
    store, live, tmpdir, kept = job
    # the failed step: modifies a file in place (same size), adds files and
    # a dir, removes files, changes a dir's mode, replaces a symlink
    with open(live / "cell" / "m1", "r+b") as f:
        f.write(b"\xff")
    write(live / "cell" / "new", "added")
    write(live / "cell_misc" / "new" / "range", "1 2")
    (live / "cellhd" / "m2").unlink()
    (live / "cell" / "m4").unlink()
    os.chmod(live / "cell_misc", 0o700)
    (live / "link").unlink()
    os.symlink("elsewhere", live / "link")
    write(live / ".gislock", "lock")
    write(live / ".tmp" / "host" / "x", "scratch")
    keep(store, live, tmpdir, kept)
    target = tmp_path / "db2" / "mapset_b"
    fresh = SnapshotStore(store.root)
    report = adopt_kept_mapset(kept, fresh, 0, {
        "mapset": target, "tmpdir": tmp_path / "db2" / ".tmp"})
    assert report.files_put_back == 3  # m1, m2, m4 (+ the symlink)
    assert tree(target) == tree(restored(store, 0, tmp_path))
    info = fresh.save(1, {"mapset": target,
                          "tmpdir": tmp_path / "db2" / ".tmp"})
    assert info.meta["files_copied"] == 0


def test_walks_started_before_the_adoption_are_used(job, tmp_path, lister,
                                                  monkeypatch):
    """The worker starts the stat walks of the kept dirs before it parses
    the manifests (KeptListing); the adoption uses them and ends as
    without them."""
    store, live, tmpdir, kept = job
    with open(live / "cell" / "m1", "r+b") as f:
        f.write(b"\xff")
    write(live / "cell" / "new", "added")
    keep(store, live, tmpdir, kept)
    listing = KeptListing(kept)
    if lister == "find":  # no walk but the ones started before
        monkeypatch.setattr(live_listing, "list_tree", _no_walk)
    target = tmp_path / "db2" / "mapset_b"
    report = adopt_kept_mapset(kept, SnapshotStore(store.root), 0, {
        "mapset": target, "tmpdir": tmp_path / "db2" / ".tmp"}, listing)
    # m1 goes and comes back from the store, the added file goes
    assert (report.files_put_back, report.paths_removed) == (1, 2)
    assert tree(target) == tree(restored(store, 0, tmp_path))


def _no_walk(*args):
    raise AssertionError("walked again")


def test_a_walk_of_another_dir_is_not_used(job, tmp_path):
    """A kept dir replaced after its walk started (another inode) is
    walked again: the early walk never stands for other files."""
    store, live, tmpdir, kept = job
    keep(store, live, tmpdir, kept)
    listing = KeptListing(kept)
    part = kept.path / "mapset"
    os.rename(part, tmp_path / "old")
    shutil.copytree(tmp_path / "old", part, symlinks=True)
    write(part / "cell" / "m1", b"\xff" * 100)  # same size, same mtime
    target = tmp_path / "db2" / "mapset_b"
    adopt_kept_mapset(kept, SnapshotStore(store.root), 0, {
        "mapset": target, "tmpdir": tmp_path / "db2" / ".tmp"}, listing)
    assert tree(target) == tree(restored(store, 0, tmp_path))


def test_same_stat_but_other_inode_or_ctime_is_put_back(job, tmp_path):
    store, live, tmpdir, kept = job
    # same size and mtime, new inode (written and renamed over)
    write(live / "cell" / ".new", bytes([5]) * 99 + b"\xee")
    os.rename(live / "cell" / ".new", live / "cell" / "m5")
    # same inode, size, mtime restored by utime: the ctime tells
    with open(live / "cell" / "m6", "r+b") as f:
        f.write(b"\xee")
    os.utime(live / "cell" / "m6", ns=(OLD_NS, OLD_NS))
    keep(store, live, tmpdir, kept)
    target = tmp_path / "db2" / "mapset_b"
    report = adopt_kept_mapset(kept, SnapshotStore(store.root), 0,
                               {"mapset": target})
    assert report.files_put_back == 2
    assert (target / "cell" / "m5").read_bytes() == bytes([5]) * 100
    assert (target / "cell" / "m6").read_bytes() == bytes([6]) * 100


def test_racy_records_are_put_back(tmp_path):
    """A file written within the clock tick of the save could change with
    an equal stat: its record is racy, it is put back."""
    live = tmp_path / "db" / "m"
    write(live / "fresh", "just written", mtime_ns=None)
    write(live / "old", "old")
    store = SnapshotStore(tmp_path / "res" / "u" / "interim" / "j")
    store.save(0, {"mapset": live})
    assert store.live_state().state["mapset"]["fresh"].racy
    kept = KeptMapset(tmp_path / "res", "u", "j")
    kept.keep({"mapset": live}, store.live_state().state, {"step": 0})
    report = adopt_kept_mapset(kept, SnapshotStore(store.root), 0,
                               {"mapset": tmp_path / "x"})
    assert (report.files_kept, report.files_put_back) == (1, 1)


def test_plan_from_an_earlier_step(job, tmp_path):
    """The plan starts from step 0 although step 1 was saved last: the
    kept mapset is made equal to step 0."""
    store, live, tmpdir, kept = job
    write(live / "cell" / "m7", "step 1 rewrote it")
    write(live / "cell" / "later", "made by step 1")
    store.save(1, {"mapset": live, "tmpdir": tmpdir})
    keep(store, live, tmpdir, kept)
    target = tmp_path / "db2" / "mapset_b"
    report = adopt_kept_mapset(kept, SnapshotStore(store.root), 0,
                               {"mapset": target})
    assert report.files_put_back == 1 and report.paths_removed == 2
    assert tree(target) == tree(restored(store, 0, tmp_path))


def test_missing_or_damaged_kept_mapset_is_not_adoptable(job, tmp_path):
    store, live, tmpdir, kept = job
    with pytest.raises(NotAdoptable):
        adopt_kept_mapset(kept, store, 0, {"mapset": tmp_path / "x"})
    keep(store, live, tmpdir, kept)
    record = kept.path / RECORD_NAME
    record.write_bytes(record.read_bytes()[:-3])
    with pytest.raises(NotAdoptable, match="damaged|truncated"):
        adopt_kept_mapset(kept, store, 0, {"mapset": tmp_path / "x"})
    # the claim is gone with it: a damaged kept mapset is tried once
    assert not kept.exists() and kept.leftovers() == []
    assert not (tmp_path / "x").exists()


def test_a_damaged_object_to_put_back_is_never_used(job, tmp_path):
    store, live, tmpdir, kept = job
    write(live / "WIND", "changed by the failed step")
    keep(store, live, tmpdir, kept)
    damage_object(store, "WIND")
    with pytest.raises(SnapshotDamaged):
        adopt_kept_mapset(kept, SnapshotStore(store.root), 0,
                          {"mapset": tmp_path / "x"})
    assert not kept.exists()


def test_interrupted_keep_and_adoption_are_not_kept_mapsets(job, tmp_path):
    """A keep killed before its last rename, and an adoption killed after
    its claim, leave names no resume takes for a kept mapset; the job's
    next keep (or removal) cleans them up."""
    store, live, tmpdir, kept = job
    keep(store, live, tmpdir, kept)
    claimed = kept.claim()  # an adoption killed right after its claim
    assert claimed is not None and not kept.exists()
    assert kept.leftovers() == [claimed]
    assert kept_resource_id(claimed.name) == "job1"
    with pytest.raises(NotAdoptable):
        adopt_kept_mapset(kept, store, 0, {"mapset": tmp_path / "x"})
    half = kept.base / ".job1.keeping-" f"{'0' * 32}"
    half.mkdir()
    assert kept_resource_id(half.name) == "job1"
    kept.remove()
    assert kept.leftovers() == [] and os.listdir(kept.base) == []


def test_keep_moves_back_on_failure(job, tmp_path, monkeypatch):
    store, live, tmpdir, kept = job
    import actinia_resume_plugin.store.kept_mapset as km

    real = os.rename
    calls = []

    def failing(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(18, "Invalid cross-device link")
        return real(src, dst)

    monkeypatch.setattr(km.os, "rename", failing)
    with pytest.raises(OSError):
        keep(store, live, tmpdir, kept)
    monkeypatch.undo()
    assert live.is_dir() and tmpdir.is_dir()
    assert not kept.exists() and os.listdir(kept.base) == []


def test_files_to_put_back_names_what_the_adoption_reads_and_changes_nothing(
        job, tmp_path):
    """The dry run's view of an adoption: the same walk, read-only."""
    store, live, tmpdir, kept = job
    with open(live / "cell" / "m1", "r+b") as f:
        f.write(b"\xff")
    write(live / "cell" / "new", "added")
    (live / "cellhd" / "m2").unlink()
    keep(store, live, tmpdir, kept)
    before = tree(kept.path)
    files = files_to_put_back(kept, SnapshotStore(store.root), 0)
    assert sorted((part, rel) for part, rel, _ in files) == [
        ("mapset", "cell/m1"), ("mapset", "cellhd/m2")]
    assert tree(kept.path) == before and kept.exists()
    report = adopt_kept_mapset(kept, SnapshotStore(store.root), 0, {
        "mapset": tmp_path / "db2" / "m", "tmpdir": tmp_path / "db2" / ".t"})
    assert report.files_put_back == len(files)


def test_damage_the_adoption_does_not_read_does_not_count(job, tmp_path):
    """An object of a file the failed step left alone is damaged: a restore
    from the store would fall back, a resume in the kept mapset does not
    read it (and the dry run says so)."""
    store, live, tmpdir, kept = job
    write(live / "WIND", "changed by the failed step")
    keep(store, live, tmpdir, kept)
    damage_object(store, "cell/m3")
    fresh = SnapshotStore(store.root)
    files = files_to_put_back(kept, fresh, 0)
    assert [rel for _, rel, _ in files] == ["WIND"]
    assert fresh.damage_of_files(0, files) is None
    assert fresh.damage(0, content=True) is not None
    damage_object(store, "WIND")
    assert "WIND" in fresh.damage_of_files(0, files)


def test_no_kept_mapset_no_files_to_put_back(job):
    store, _live, _tmpdir, kept = job
    with pytest.raises(NotAdoptable):
        files_to_put_back(kept, store, 0)


def test_a_kept_mapset_replaced_before_the_claim_is_not_adopted(
        job, tmp_path, monkeypatch):
    """Everything is decided on the kept mapset where it is, before the
    claim; one replaced in between (kept again: another inode) is never
    repaired with what was decided for the other one."""
    from actinia_resume_plugin.store import adoption

    store, live, tmpdir, kept = job
    keep(store, live, tmpdir, kept)
    decide = adoption._plan_repairs

    def replaced_after_deciding(*args):
        repairs = decide(*args)
        other = tmp_path / "other"
        os.rename(kept.path, other)
        shutil.copytree(other, kept.path, symlinks=True)
        write(kept.path / "mapset" / "cell" / "m1", b"\xff" * 100)
        return repairs

    monkeypatch.setattr(adoption, "_plan_repairs", replaced_after_deciding)
    target = tmp_path / "db2" / "mapset_b"
    with pytest.raises(NotAdoptable, match="replaced"):
        adopt_kept_mapset(kept, SnapshotStore(store.root), 0,
                          {"mapset": target})
    assert not target.exists()
    assert not kept.exists() and kept.leftovers() == []


def _adopt_into(store, tmp_path, kept):
    fresh = SnapshotStore(store.root)  # the next iteration's process
    targets = {"mapset": tmp_path / "db2" / "mapset_b",
               "tmpdir": tmp_path / "db2" / ".tmp"}
    report = adopt_kept_mapset(kept, fresh, 0, targets)
    return fresh, targets, report


def test_a_whole_record_is_adopted_without_the_manifests(
        job, tmp_path, record_kind, lister, monkeypatch):
    """Record v3 holds the planned state: the adoption parses no manifest
    (only their heads) and builds no state; the first save builds it."""
    store, live, tmpdir, kept = job
    with open(live / "cell" / "m1", "r+b") as f:
        f.write(b"\xff")
    write(live / "cell" / "new", "added")
    (live / "cell_misc" / "m0").rmdir()
    keep(store, live, tmpdir, kept)
    assert kept.read_record(kept.path).holds_state() == \
        (record_kind == "whole-record")
    state_reads = []
    real_state = SnapshotStore.state
    monkeypatch.setattr(SnapshotStore, "state", lambda self, step: (
        state_reads.append(step), real_state(self, step))[1])
    fresh, targets, report = _adopt_into(store, tmp_path, kept)
    assert (report.files_put_back, report.paths_removed) == (1, 2)
    assert tree(targets["mapset"]) == tree(restored(store, 0, tmp_path))
    assert state_reads == ([] if record_kind == "whole-record" else [0])
    view = fresh.live_state().entries_of("mapset")
    assert sorted(view) == sorted(store.state(0)[0]["mapset"])
    assert view["cell/m3"].obj == store.state(0)[0]["mapset"]["cell/m3"].obj
    state_reads.clear()
    info = fresh.save(1, targets)
    assert info.meta["files_copied"] == 0
    assert info.meta["entries_written"] == 0
    if lister == "find":  # the Python walk's keys are tuples: hashed again
        assert info.meta["files_unchanged"] == 43


def test_a_record_that_disagrees_with_its_manifest_is_hashed_again(
        job, tmp_path, record_kind, lister):
    """The live state of a record-decided adoption is the manifests'
    state; a file the record says held something else gets no live key,
    so the next save reads it instead of trusting its stat."""
    store, live, tmpdir, kept = job
    current = store.live_state()
    other = dict(current.state)
    other["mapset"] = dict(other["mapset"])
    item = other["mapset"]["cell/m3"]
    other["mapset"]["cell/m3"] = item._replace(mtime_ns=item.mtime_ns + 1)
    kept.keep({"mapset": live, "tmpdir": tmpdir}, other,
              {"step": 0, "snapshot_id": current.id,
               "mapset_name": "mapset_a"},
              current.modes if record_kind == "whole-record" else None)
    fresh, targets, _report = _adopt_into(store, tmp_path, kept)
    info = fresh.save(1, targets)
    assert info.meta["files_copied"] == 0
    if record_kind == "whole-record" and lister == "find":
        assert info.meta["files_unchanged"] == 42  # cell/m3 hashed again
    assert tree(targets["mapset"]) == tree(restored(store, 1, tmp_path))


def test_a_state_that_cannot_be_built_makes_a_whole_save(
        job, tmp_path, record_kind, monkeypatch):
    """Manifests gone between the adoption and the first save: the save
    hashes every file and writes a self-contained manifest."""
    store, live, tmpdir, kept = job
    keep(store, live, tmpdir, kept)
    fresh, targets, _report = _adopt_into(store, tmp_path, kept)
    if record_kind != "whole-record":
        return  # its state was built by the adoption
    monkeypatch.setattr(SnapshotStore, "state", lambda self, step: (
        _ for _ in ()).throw(SnapshotDamaged(step, "steps", "x", "gone")))
    info = fresh.save(1, targets)
    monkeypatch.undo()
    assert manifest_base(fresh, 1) is None
    assert info.meta["files_unchanged"] == 0
    assert tree(targets["mapset"]) == tree(restored(store, 1, tmp_path))


def manifest_base(store, step):
    import json
    return json.loads((store.step_path(step) / "manifest.json")
                      .read_text())["base"]


def test_a_version_2_record_is_adopted_from_the_manifests(
        job, tmp_path, monkeypatch):
    """Kept mapsets of an earlier release (record v2: files only) are
    adopted as before."""
    from actinia_resume_plugin.store import kept_mapset

    store, live, tmpdir, kept = job
    with open(live / "cell" / "m1", "r+b") as f:
        f.write(b"\xff")
    monkeypatch.setattr(kept_mapset, "RECORD_VERSION", 2)
    monkeypatch.setattr(kept_mapset, "_record_layout", lambda *a: iter(()))
    keep(store, live, tmpdir, kept)
    monkeypatch.undo()
    record = kept.read_record(kept.path)
    assert not record.holds_state()
    fresh, targets, report = _adopt_into(store, tmp_path, kept)
    assert report.files_put_back == 1
    assert tree(targets["mapset"]) == tree(restored(store, 0, tmp_path))
    assert fresh.save(1, targets).meta["files_copied"] == 0
