# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""File-system primitives (store/fsops.py): the verified copy with and
without copy_file_range, and the atomic sealed write."""

import errno
import os

import pytest

from actinia_resume_plugin.store import (
    SnapshotDamaged,
    SnapshotStore,
    fsops,
)
from tests.unit.store.helpers import (
    OLD_NS,
    in_place_keeping_times,
    obj_of,
    restored,
    write,
)


def test_copy_fallback_without_copy_file_range(store, live, tmp_path, monkeypatch):
    store.save(0, live)

    def nope(*a):
        raise OSError(errno.EXDEV, "cross device")

    monkeypatch.setattr(fsops.os, "copy_file_range", nope)
    out = restored(store, 0, tmp_path)
    assert (out / "cell" / "elev").read_bytes() == b"\x01" * 1000
    assert os.stat(out / "cell" / "elev").st_mtime_ns == OLD_NS


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
