# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The GNU find listing of a save sees exactly what the Python walk sees."""

import os

import pytest

from actinia_resume_plugin.store import SnapshotStore, entry, live_listing, scan

pytestmark = pytest.mark.skipif(
    live_listing._find_command(".", (), ()) is None,
    reason="no GNU find on this machine")

ODD_NAMES = ["with space", "new\nline", "tab\tname", "ünïcödé",
             os.fsdecode(b"latin1-\xe9"), "-dash", "a b\\c"]


def odd_tree(base):
    """Files, dirs and symlinks with awkward names, the excluded names in
    both roles, and a fifo (never listed)."""
    (base / "cell_misc" / "m 1").mkdir(parents=True)
    for name in ODD_NAMES:
        (base / name).write_bytes(os.fsencode(name))
        (base / "cell_misc" / "m 1" / name).write_bytes(b"sub " + os.fsencode(name))
    (base / ".gislock").write_text("lock")
    (base / ".tmp" / "host").mkdir(parents=True)
    (base / ".tmp" / "host" / "scratch").write_text("scratch")
    (base / "cell_misc" / ".tmp").write_text("a file named .tmp is kept")
    (base / "dir.gislock" / ".gislock").mkdir(parents=True)
    (base / "dir.gislock" / ".gislock" / "inside").write_text("never")
    (base / "link").symlink_to("with space")
    (base / "dangling").symlink_to("nowhere/at/all")
    os.mkfifo(base / "fifo")
    (base / "cell_misc" / "m 1").chmod(0o750)
    return base


def plan_state(tmp_path, src, use_find):
    plan = scan.SavePlan({}, {}, {}, [], 0)
    method = scan.plan_part_listed if use_find else scan.plan_part_walked
    plan.fresh["mapset"] = []
    entries = method("mapset", str(src), entry.now_coarse_ns(), {}, plan)
    return {rel: e.content() for rel, e in entries.items()}, plan


def test_find_lists_what_the_python_walk_sees(tmp_path):
    src = odd_tree(tmp_path / "live")
    listed, plan_f = plan_state(tmp_path, src, True)
    walked, plan_w = plan_state(tmp_path, src, False)
    assert listed == walked
    assert "cell_misc/m 1/new\nline" in listed
    assert "cell_misc/.tmp" in listed and ".gislock" not in listed
    assert not any(rel.startswith(".tmp") or "fifo" in rel
                   or rel.startswith("dir.gislock/") for rel in listed)
    assert listed["dangling"][0] == "l"
    assert sorted(plan_f.new_files) == sorted(plan_w.new_files)
    assert plan_f.bytes_needed == plan_w.bytes_needed


def test_unchanged_files_are_recognised_from_find_keys(tmp_path):
    src = odd_tree(tmp_path / "live")
    store = SnapshotStore(tmp_path / "store")
    store.save(0, {"mapset": src})
    (src / "with space").write_text("changed")
    info = store.save(1, {"mapset": src})
    assert info.meta["files_copied"] == 1
    assert isinstance(store.live_state().state["mapset"]["ünïcödé"].live, str)


def test_a_failing_find_falls_back_without_counting_twice(tmp_path, monkeypatch):
    """find lists one real file, then fails (as when a path vanishes): what
    it added to the plan is undone and the Python walk lists everything."""
    src = odd_tree(tmp_path / "live")
    key = "f 644 1 1.0 1 1.0"
    monkeypatch.setattr(live_listing, "_find_command", lambda *a: [
        "sh", "-c", f"printf '{key}\\0with space\\0'; exit 1"])
    plan = scan.plan_save({"mapset": src}, entry.now_coarse_ns(), None)
    files = [p for p in src.rglob("*") if p.is_file() and not p.is_symlink()
             and ".tmp/" not in str(p) and ".gislock" not in str(p)]
    assert sorted(rel for _, rel, _ in plan.new_files) == sorted(
        str(p.relative_to(src)) for p in files)
    assert plan.bytes_needed == sum(p.stat().st_size for p in files)
    assert len(plan.fresh["mapset"]) == len(set(plan.fresh["mapset"]))


def test_output_is_cut_between_records_only():
    """Records that straddle read boundaries come out whole."""
    reads = [b"f 644 1 1.0 1 1.0\0a\0f 6", b"44 2 1.0 2 1.0\0b\xc3",
             b"\xa9 c\0", b"d 755 0 1.0 3 1.0\0dir\0"]
    chunks = list(live_listing._split_records(iter(reads)))
    flat = [field for chunk in chunks for field in chunk]
    assert flat == ["f 644 1 1.0 1 1.0", "a", "f 644 2 1.0 2 1.0", "bé c",
                    "d 755 0 1.0 3 1.0", "dir"]


def _flat(chunks):
    return [field for chunk in chunks for field in chunk]


def test_an_early_walk_lists_what_list_tree_lists(tmp_path):
    """The walk started early (spooled to memory while the caller does
    something else) gives the very records of the plain listing."""
    src = odd_tree(tmp_path / "m")
    excluded = (scan.EXCLUDED_FILE_NAMES, scan.EXCLUDED_DIR_NAMES)
    walk = live_listing.SpooledListing(str(src), *excluded)
    assert walk.identity == (src.stat().st_dev, src.stat().st_ino)
    early = _flat(walk.chunks())
    plain = _flat(live_listing.list_tree(str(src), *excluded))
    assert early == plain and "with space" in early


def test_an_early_walk_that_fails_says_so_at_its_end(tmp_path, monkeypatch):
    """A find that fails (here: it lists a dir it may not enter) makes
    the early walk raise after its records: the caller discards them."""
    src = tmp_path / "m"
    (src / "closed").mkdir(parents=True)
    (src / "closed" / "inside").write_text("x")
    (src / "closed").chmod(0)
    if os.access(src / "closed", os.R_OK):  # root reads anything
        monkeypatch.setattr(live_listing, "_find_command",
                            lambda *a: ["/bin/sh", "-c", "exit 3"])
    try:
        walk = live_listing.SpooledListing(str(src))
        with pytest.raises(live_listing.ListingUnavailable):
            _flat(walk.chunks())
    finally:
        (src / "closed").chmod(0o700)


def test_an_early_walk_not_read_is_stopped(tmp_path):
    src = odd_tree(tmp_path / "m")
    walk = live_listing.SpooledListing(str(src))
    procs = [proc for proc, _fd in walk._walks]
    walk.close()
    assert procs and all(proc.returncode is not None for proc in procs)
    assert walk._walks == []


@pytest.fixture
def sharded(monkeypatch):
    """Any tree with two top-level names is listed by two finds."""
    monkeypatch.setattr(live_listing, "SHARD_MIN_PATHS", 0)


def _pairs(chunks):
    flat = _flat(chunks)
    return list(zip(flat[::2], flat[1::2], strict=True))


def test_two_finds_list_what_one_find_lists(tmp_path, monkeypatch):
    """Odd top-level names (``-dash``, a newline, non-UTF-8), excluded
    names at the top, top-level symlinks (listed, not followed): the
    records of the two shards are those of one find; ``sharded=False``
    keeps one find's pre-order (each subtree whole, its dir first)."""
    src = odd_tree(tmp_path / "m")
    (src / "(").mkdir()
    (src / "(" / "inside").write_text("x")
    (src / "!").write_text("bang")
    (src / "dirlink").symlink_to("cell_misc")
    excluded = (scan.EXCLUDED_FILE_NAMES, scan.EXCLUDED_DIR_NAMES)
    assert live_listing._shards(str(src)) is None  # small: one find
    one = _pairs(live_listing.list_tree(str(src), *excluded))
    monkeypatch.setattr(live_listing, "SHARD_MIN_PATHS", 0)
    shards = live_listing._shards(str(src))
    assert len(shards) == 2 and all(shards)
    two = _pairs(live_listing.list_tree(str(src), *excluded))
    assert sorted(two) == sorted(one) and len(two) == len(one)
    rels = [rel for _, rel in two]
    assert "-dash" in rels and "(/inside" in rels and "!" in rels
    assert "dirlink" in rels and "dirlink/m 1" not in rels
    assert not any(rel.startswith(("./", ".tmp")) for rel in rels)
    ordered = [rel for _, rel in _pairs(live_listing.list_tree(
        str(src), *excluded, sharded=False))]
    start = ordered.index("cell_misc")
    assert ordered[start + 1:start + 1 + len(ODD_NAMES) + 2] == [
        rel for rel in ordered if rel.startswith("cell_misc/")]


def test_shards_are_about_even(tmp_path, sharded):
    """One big dir goes alone; the small ones fill the other shard."""
    src = tmp_path / "m"
    (src / "big").mkdir(parents=True)
    for i in range(400):
        (src / "big" / f"d{i}").mkdir()
    for name in ("a", "b", "c", "d"):
        (src / name).mkdir()
        for i in range(10):
            (src / name / f"s{i}").mkdir()
    assert sorted(live_listing._shards(str(src))) == [
        ["a", "b", "c", "d"], ["big"]]


def _shard_fails(monkeypatch, number: int) -> list:
    """The ``number``-th find command asked for (1-based) fails; returns
    the ``starts`` of every command asked for."""
    real = live_listing._find_command
    calls = []

    def command(src, files, dirs, starts=None):
        calls.append(starts)
        if len(calls) == number:
            return ["/bin/sh", "-c", "exit 3"]
        return real(src, files, dirs, starts)

    monkeypatch.setattr(live_listing, "_find_command", command)
    return calls


def test_a_failing_shard_fails_the_listing(tmp_path, sharded, monkeypatch):
    """When one of the two finds fails, the listing raises at its end
    (the caller discards all of it and walks in Python)."""
    src = odd_tree(tmp_path / "m")
    calls = _shard_fails(monkeypatch, 2)
    with pytest.raises(live_listing.ListingUnavailable):
        _flat(live_listing.list_tree(str(src)))
    assert len(calls) == 2 and all(calls)


def test_a_save_of_a_sharded_tree_is_the_python_walks(tmp_path, sharded):
    src = odd_tree(tmp_path / "live")
    listed, plan_f = plan_state(tmp_path, src, True)
    walked, plan_w = plan_state(tmp_path, src, False)
    assert listed == walked
    assert sorted(plan_f.new_files) == sorted(plan_w.new_files)


def test_a_find_still_ending_after_its_output_is_waited_for(
        tmp_path, monkeypatch):
    """The pipe's end comes before the process has exited: the listing
    waits for it (a find killed there would make every save fall back to
    the Python walk and hash every file again)."""
    key = "f 644 1 1.0 1 1.0"
    monkeypatch.setattr(live_listing, "_find_command", lambda *a: [
        "/bin/sh", "-c", f"printf '{key}\\0a\\0'; exec >&-; sleep 0.3"])
    assert _flat(live_listing.list_tree(str(tmp_path))) == [key, "a"]


def test_an_early_walk_of_two_shards_keeps_the_pre_order(tmp_path, sharded):
    """Spooled shards come one after the other, each subtree whole with
    its dir first (an adoption skips the contents of a dir it removes),
    and list what one find lists."""
    src = odd_tree(tmp_path / "m")
    (src / "(").mkdir()
    (src / "(" / "inside").write_text("x")
    excluded = (scan.EXCLUDED_FILE_NAMES, scan.EXCLUDED_DIR_NAMES)
    walk = live_listing.SpooledListing(str(src), *excluded)
    assert len(walk._walks) == 2
    early = _pairs(walk.chunks())
    one = _pairs(live_listing.list_tree(str(src), *excluded, sharded=False))
    assert sorted(early) == sorted(one) and len(early) == len(one)
    rels = [rel for _, rel in early]
    for top in ("cell_misc", "("):
        start = rels.index(top)
        inside = [rel for rel in rels if rel.startswith(top + "/")]
        assert rels[start + 1:start + 1 + len(inside)] == inside


def test_an_early_walk_with_a_failing_shard_says_so(tmp_path, sharded,
                                                    monkeypatch):
    src = odd_tree(tmp_path / "m")
    calls = _shard_fails(monkeypatch, 1)
    walk = live_listing.SpooledListing(str(src))
    with pytest.raises(live_listing.ListingUnavailable):
        _flat(walk.chunks())
    assert walk._walks == [] and len(calls) == 2 and all(calls)
