# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a save sees as changed (store/scan.py): stat keys, modes, inodes,
excluded names and symlinks, with both listers."""

import os

from actinia_resume_plugin.store import (
    SnapshotStore,
)
from tests.unit.store.helpers import (
    OLD_NS,
    manifest,
    restored,
    write,
)


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
