# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Restores (store/restorer.py): copies, never links; modes and times;
parts swapped into place only when whole."""

import os

import pytest

from tests.unit.store.helpers import (
    OLD_NS,
    obj_of,
    restored,
    write,
)


def test_nested_part_names(store, live, tmp_path):
    store.save(0, {"mapsets/test_tmp_a": live["mapset"]})
    out = tmp_path / "out"
    assert store.restore(0, {"mapsets/test_tmp_a": out}) == ["mapsets/test_tmp_a"]
    assert (out / "WIND").read_text() == "proj: 99\n"


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
