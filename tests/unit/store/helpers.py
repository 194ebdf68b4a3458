# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Live dirs and inspection helpers the store's unit tests share."""

import json
import os
import time

from actinia_resume_plugin.store import (
    SnapshotStore,
)

OLD_NS = 1_600_000_000_123_456_789  # 2020: far from "now", never racy

SIZES = len("proj: 99\n") + len("DB_DRIVER: sqlite\n") + 1000 + len("rows: 10\n") + 4096


def in_place_keeping_times(path, change):
    """Change a stored file in place and put its atime and mtime back (bit
    rot, ``cp -p``, a backup restored over it)."""
    st = os.stat(path)
    os.chmod(path, 0o644)
    change(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def make_mapset(base, old=True, tag=b"\x01"):
    """A small GRASS-like mapset; files get an old mtime (not racy) by default."""
    t = OLD_NS if old else None
    write(base / "WIND", "proj: 99\n", t)
    write(base / "VAR", "DB_DRIVER: sqlite\n", t)
    write(base / "cell" / "elev", tag * 1000, t)
    write(base / "cellhd" / "elev", "rows: 10\n", t)
    write(base / "sqlite" / "sqlite.db", b"S" * 4096, t)
    return base


def manifest(store, step):
    return json.loads((store.step_path(step) / "manifest.json").read_text())


def obj_of(store, step, rel, part="mapset"):
    state, _ = store.state(step)
    return store.object_path(state[part][rel].obj)


def object_files(store):
    return sorted(p for p in (store.root / "objects").rglob("*") if p.is_file())


def restored(store, step, tmp_path, part="mapset"):
    """Restore one part of a snapshot into a fresh dir with a fresh store
    (another process), return the dir."""
    out = tmp_path / f"restored-{step}-{time.monotonic_ns()}"
    SnapshotStore(store.root).restore(step, {part: out})
    return out


def reused_by_another_job(store, live, tmp_path):
    """Job 2 restores ``store``'s step 0 and saves: it hard links the
    objects, which changes their ctime (not their mtime)."""
    other = SnapshotStore(store.root.parent / "job2")
    work = {"mapset": tmp_path / "b" / "mapset", "tmpdir": tmp_path / "b" / "t"}
    store.restore(0, work, into=other)
    other.save(1, work)
    return other


def rewrite_same_stat(path, data):
    mtime = os.stat(path).st_mtime_ns
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(mtime, mtime))


def write(path, data, mtime_ns=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
