# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Manifests (store/manifest.py): deltas on their base, sealed, and
invisible when damaged (also their dependents)."""

import json
import os

import pytest

from actinia_resume_plugin.store import (
    SnapshotStore,
)
from actinia_resume_plugin.store.layout import seal_text
from actinia_resume_plugin.store.manifest import ManifestReader
from tests.unit.store.helpers import (
    OLD_NS,
    in_place_keeping_times,
    manifest,
    object_files,
    restored,
    write,
)


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


def test_a_resume_reads_the_heads_of_the_manifests(store, live):
    """SnapshotStore.head: ids, bases, meta and part names from what is in
    front of the parts (the seal still over every byte), equal to get()."""
    store.save(0, live, {"mapset_name": "a"})
    write(live["mapset"] / "cell" / "new", b"n")
    store.save(1, live, {"mapset_name": "a"})
    doc = manifest(store, 1)
    assert doc["part_names"] == sorted(doc["parts"])
    fresh = SnapshotStore(store.root)
    chain = fresh._manifests.chain(1, head=True)
    assert [m.parts for m in chain] == [None, None]
    head, full = fresh.head(1), fresh.get(1)
    assert (head.step, head.id, head.parts, head.meta) == \
        (full.step, full.id, full.parts, full.meta)


def test_a_manifest_without_part_names_is_read_whole(store, live):
    """Manifests written before the head named the parts are parsed whole
    for a head."""
    store.save(0, live)
    path = store.step_path(0) / "manifest.json"
    doc = manifest(store, 0)
    del doc["part_names"], doc["xxh3_128"]
    path.write_text(seal_text(doc))
    ManifestReader.clear()
    chain = SnapshotStore(store.root)._manifests.chain(0, head=True)
    assert chain[0].parts is not None
    assert SnapshotStore(store.root).head(0).parts == ["mapset", "tmpdir"]


def test_a_head_is_refused_where_the_whole_would_be(store, live):
    """A changed byte anywhere (in the parts too) breaks the seal of the
    head; part names that are not the parts make the whole invalid."""
    store.save(0, live)
    path = store.step_path(0) / "manifest.json"
    raw = path.read_bytes()
    at = raw.index(b'"parts"') + 20
    path.write_bytes(raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1:])
    ManifestReader.clear()
    assert SnapshotStore(store.root).head(0) is None
    doc = json.loads(raw)
    doc.pop("xxh3_128")
    doc["part_names"] = ["mapset"]
    path.write_text(seal_text(doc))
    ManifestReader.clear()
    assert SnapshotStore(store.root).head(0).parts == ["mapset"]
    assert SnapshotStore(store.root).get(0) is None  # the whole is invalid
