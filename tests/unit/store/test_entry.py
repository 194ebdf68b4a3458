# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The racy rule and the live key (store/entry.py): a file whose stat
is unchanged is unchanged, unless its stat was taken within the clock tick
of a write."""

import os

import pytest

from actinia_resume_plugin.store import (
    entry,
    live_listing,
)
from actinia_resume_plugin.store.entry import Entry
from tests.unit.store.helpers import (
    restored,
    rewrite_same_stat,
    write,
)


@pytest.fixture
def coarse_fs(monkeypatch):
    """A file system whose inode and ctime tell nothing (as after a same-tick
    in-place rewrite): only (size, mtime, mode) remain, so a same-size
    rewrite with an equal mtime has an identical stat key and only the racy
    rule can catch it."""
    monkeypatch.setattr(
        entry, "live_key", lambda st: (st.st_size, st.st_mtime_ns, 0, 0, st.st_mode))
    monkeypatch.setattr(live_listing, "KEY_FORMAT", "%y %m %s %T@ 0 0")


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


OBJ = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("entry", [
    Entry("f", 0o100644, 5, 1_600_000_000_123_456_789, OBJ, 7, 9),
    Entry("d", 0o40755),
    Entry("l", 0o120777, target="../cell/m0"),
])
def test_manifest_form_round_trips(entry):
    parsed = Entry.from_json(entry.to_json())
    assert parsed == entry and type(parsed) is Entry
    assert parsed.live == () and parsed.racy is False and parsed.target == entry.target


@pytest.mark.parametrize("doc", [
    None, [], "f", ["f", 1, 2, 3, OBJ, 4],  # too short
    ["f", True, 2, 3, OBJ, 4, 5],  # bool is no int
    ["f", 1, 2.0, 3, OBJ, 4, 5],
    ["f", 1, 2, 3, OBJ[:-1], 4, 5],  # not an object name
    ["f", 1, 2, 3, "../../../../etc/passwd/xxxxxxxxx", 4, 5],  # 32 chars
    ["f", 1, 2, 3, 12345, 4, 5],
    ["d", "755"], ["l", 1, 2], ["x", 1],
])
def test_malformed_manifest_entries_are_refused(doc):
    with pytest.raises(ValueError):
        Entry.from_json(doc)
