# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pack files (store/packs.py): the many small new objects of one save in
one file; read back verified, damage named, kept while needed, removed
when not, linked by a reusing job, never left behind by a failed save."""

import os

import pytest

from actinia_resume_plugin.store import (
    SnapshotDamaged,
    SnapshotStore,
    fsops,
    packs,
)
from tests.unit.store.helpers import (
    in_place_keeping_times,
    restored,
    write,
)

MAPS = 300  # more small new files than packs.PACK_MIN_OBJECTS


def many_maps(base, tag=b"v", count=MAPS):
    """A mapset with ``count`` small distinct files (cell_misc-like)."""
    for i in range(count):
        write(base / "cell_misc" / f"m{i}" / "range", tag + b"%d\n" % i,
              1_600_000_000_000_000_000)
    write(base / "WIND", "proj: 99\n", 1_600_000_000_000_000_000)
    return base


@pytest.fixture
def live(tmp_path):
    return {"mapset": many_maps(tmp_path / "live" / "mapset")}


def pack_files(store):
    return sorted(p for p in (store.root / "objects").glob("*.pack"))


def loose_files(store):
    return sorted(p for p in (store.root / "objects").glob("??/*"))


def flip_in_pack(store, step, rel):
    """Change one packed object's bytes in place, keeping the pack's times."""
    state, _ = store.state(step)
    path, offset, length = store.object_location(state["mapset"][rel].obj)

    def change(p):
        with open(p, "r+b") as handle:
            handle.seek(offset)
            handle.write(b"X" * length)
    in_place_keeping_times(path, change)


def test_a_save_of_many_small_files_writes_one_pack(store, live, tmp_path):
    info = store.save(0, live)
    assert info.meta["files_copied"] == MAPS + 1
    assert len(pack_files(store)) == 1 and loose_files(store) == []
    out = restored(store, 0, tmp_path)
    assert (out / "cell_misc" / "m7" / "range").read_bytes() == b"v7\n"
    assert (out / "WIND").read_text() == "proj: 99\n"
    SnapshotStore(store.root).verify(0)


def test_few_new_files_stay_loose(store, live):
    store.save(0, live)
    write(live["mapset"] / "cell_misc" / "m1" / "range", b"changed")
    store.save(1, live)
    assert len(pack_files(store)) == 1 and len(loose_files(store)) == 1


def test_a_changed_packed_object_is_never_restored(store, live, tmp_path):
    store.save(0, live)
    flip_in_pack(store, 0, "cell_misc/m3/range")
    fresh = SnapshotStore(store.root)
    assert fresh.damage(0) is None  # sizes agree: only the bytes differ
    assert "does not match" in fresh.damage(0, content=True)
    with pytest.raises(SnapshotDamaged, match="cell_misc/m3/range"):
        fresh.restore(0, {"mapset": tmp_path / "out"})
    assert not (tmp_path / "out").exists()


def test_a_pack_cut_short_makes_its_objects_missing_with_the_reason(
        store, live, tmp_path):
    store.save(0, live)
    (pack,) = pack_files(store)
    os.truncate(pack, os.path.getsize(pack) - 3)
    fresh = SnapshotStore(store.root)
    steps, damaged = fresh.survey()
    assert steps == [] and "has no index" in damaged[0]
    with pytest.raises(SnapshotDamaged, match="has no index"):
        fresh.restore(0, {"mapset": tmp_path / "out"})


def test_a_damaged_index_is_caught(store, live):
    store.save(0, live)
    (pack,) = pack_files(store)
    size = os.path.getsize(pack)
    with open(pack, "r+b") as handle:  # a byte inside the index
        handle.seek(size - 40)
        byte = handle.read(1)
        handle.seek(size - 40)
        handle.write(bytes([byte[0] ^ 1]))
    assert "damaged index" in SnapshotStore(store.root).damage(0)


def test_a_failed_save_leaves_no_pack(store, live, monkeypatch):
    calls = {"n": 0}
    real = fsops.read_small_hashing

    def crashing(src, *args):
        calls["n"] += 1
        if calls["n"] == MAPS // 2:
            raise RuntimeError("simulated crash")
        return real(src, *args)

    monkeypatch.setattr(fsops, "read_small_hashing", crashing)
    with pytest.raises(RuntimeError):
        store.save(0, live)
    assert store.steps() == []
    assert list((store.root / "objects").iterdir()) == []


def test_a_pack_no_manifest_names_is_collected(store, live, monkeypatch):
    monkeypatch.setattr(SnapshotStore, "_commit",
                        lambda *a: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError):
        store.save(0, live)
    assert len(pack_files(store)) == 1  # flushed before the manifest
    monkeypatch.undo()
    assert SnapshotStore(store.root).collect_garbage() == 1
    assert pack_files(store) == []


def test_a_pack_stays_while_any_interim_result_needs_a_blob(store, live,
                                                            tmp_path):
    store.save(0, live)
    first = pack_files(store)
    many_maps(live["mapset"], tag=b"w", count=MAPS - 1)  # all but one new
    store.save(1, live)
    assert len(pack_files(store)) == 2
    store.prune({1})
    store.collect_garbage()
    # m299 and WIND are still the bytes of step 0
    assert set(first) <= set(pack_files(store))
    out = restored(store, 1, tmp_path)
    assert (out / "cell_misc" / "m299" / "range").read_bytes() == b"v299\n"
    assert (out / "cell_misc" / "m5" / "range").read_bytes() == b"w5\n"
    write(live["mapset"] / "cell_misc" / "m299" / "range", b"w299\n")
    write(live["mapset"] / "WIND", "proj: 3\n")
    store.save(2, live)
    store.prune({2})
    store.collect_garbage()
    assert not set(first) & set(pack_files(store))
    SnapshotStore(store.root).verify(2)


def test_a_reusing_job_links_the_pack(store, live, tmp_path):
    store.save(0, live)
    other = SnapshotStore(store.root.parent / "job2")
    work = {"mapset": tmp_path / "b" / "mapset"}
    store.restore(0, work, into=other)
    write(work["mapset"] / "new", b"n")
    info = other.save(1, work)
    assert info.meta["files_copied"] == 1
    (theirs,) = pack_files(store)
    (mine,) = pack_files(other)
    assert os.stat(theirs).st_ino == os.stat(mine).st_ino
    store.delete_all()
    out = restored(other, 1, tmp_path)
    assert (out / "cell_misc" / "m9" / "range").read_bytes() == b"v9\n"
    SnapshotStore(other.root).verify(1)


def test_a_reusing_job_on_another_file_system_copies_verified_blobs(
        store, live, tmp_path, monkeypatch):
    store.save(0, live)
    other = SnapshotStore(store.root.parent / "job2")
    work = {"mapset": tmp_path / "b" / "mapset"}
    store.restore(0, work, into=other)
    monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(
        OSError(18, "Invalid cross-device link")))
    other.save(1, work)
    store.delete_all()
    out = restored(other, 1, tmp_path)
    assert (out / "cell_misc" / "m9" / "range").read_bytes() == b"v9\n"


def test_a_new_store_instance_sees_packs_another_process_wrote(store, live,
                                                               tmp_path):
    reader = SnapshotStore(store.root)
    assert reader.survey() == ([], {})
    store.save(0, live)
    assert reader.survey()[0] == [0]
    out = tmp_path / "out"
    reader.restore(0, {"mapset": out})
    assert (out / "cell_misc" / "m0" / "range").read_bytes() == b"v0\n"


def test_the_newer_copy_of_an_object_in_two_packs_is_read(store, live,
                                                          tmp_path):
    store.save(0, live)
    store.forget_live()  # the same bytes are packed again
    store.save(1, live, full=True)
    assert len(pack_files(store)) == 2
    flip_in_pack(store, 0, "cell_misc/m1/range")  # the newer copy
    with pytest.raises(SnapshotDamaged):
        SnapshotStore(store.root).restore(1, {"mapset": tmp_path / "o"})
    store.prune({1})
    store.collect_garbage()
    assert len(pack_files(store)) == 1


def test_pack_index_round_trip(tmp_path):
    writer = packs.PackWriter(str(tmp_path))
    writer.add("a" * 32, b"hello")
    writer.add("b" * 32, b"")
    ((path, blobs),) = writer.finish()
    st = os.stat(path)
    assert packs.read_index(path, st) == [["a" * 32, 0, 5], ["b" * 32, 5, 0]]
    index = packs.PackIndex(str(tmp_path))
    index.sync()
    assert index.locate("a" * 32) == packs.Blob(path, 0, 5)
