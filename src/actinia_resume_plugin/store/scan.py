# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""What changed in the live dirs since the last save: the save plan.

Every save stats every path of the live dirs, so this is the hot loop of
the store. A file is unchanged when its stat key equals the one recorded at
the last save or restore and that key was not racy (:mod:`.entry`); it
then costs a dict lookup and keeps its entry object, and only the paths
that got a new entry object are candidates for the manifest's delta
(``SavePlan.fresh``). The stat walk is GNU ``find`` (:mod:`.live_listing`)
where it can list the tree, else the Python walk :func:`walk_tree`, which
is also the walk an adoption makes where ``find`` cannot (one walk, one set
of excluded names).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from stat import S_IFDIR, S_IFLNK, S_ISDIR, S_ISLNK, S_ISREG

from . import entry, fsops, live_listing
from .entry import Entry, LiveState
from .layout import EXCLUDED_DIR_NAMES, EXCLUDED_FILE_NAMES

__all__ = ["SavePlan", "plan_save", "plan_part_listed", "plan_part_walked",
           "walk_tree"]


@dataclass
class SavePlan:
    """What a save will store: the full state of the live dirs, and the
    files whose content is not known to be stored yet."""

    state: dict
    modes: dict
    sources: dict
    new_files: list  # (part, rel, src path)
    bytes_needed: int
    # part -> paths whose entry is not the object of the previous state
    fresh: dict = field(default_factory=dict)
    files: int = 0


def plan_save(parts: Mapping[str, os.PathLike], t0: int,
              live: LiveState | None) -> SavePlan:
    """Walk the live dirs; reuse the entries of files whose stat is
    unchanged since ``live`` (the last save/restore of this store)."""
    plan = SavePlan({}, {}, {}, [], 0)
    for name in sorted(parts):
        src = os.fspath(parts[name])
        if not os.path.isdir(src):
            raise FileNotFoundError(
                errno.ENOENT, f"part {name!r}: not a directory", src)
        real = os.path.realpath(src)
        known = {}
        if live is not None and live.sources.get(name) == real:
            known = live.state.get(name, {})
        plan.modes[name] = os.stat(src).st_mode
        plan.sources[name] = real
        plan.state[name] = _plan_part(name, src, t0, known, plan)
        plan.files += sum(e.kind == "f" for e in plan.state[name].values())
    return plan


def _plan_part(name, src, t0, known, plan) -> dict:
    """Walk one live dir with GNU find, or in Python where find cannot
    list it; what ``find`` added to ``plan`` before failing is undone
    first."""
    fresh = plan.fresh.setdefault(name, [])
    undo = (len(fresh), len(plan.new_files), plan.bytes_needed)
    try:
        return plan_part_listed(name, src, t0, known, plan)
    except live_listing.ListingUnavailable:
        del fresh[undo[0]:]
        del plan.new_files[undo[1]:]
        plan.bytes_needed = undo[2]
        return plan_part_walked(name, src, t0, known, plan)


def plan_part_listed(name, src, t0, known, plan) -> dict:
    """The hot loop of every save at many files: ``find`` stats, this
    process compares. An unchanged file (equal stat key, not racy) costs
    a dict lookup and a string comparison and reuses its entry object;
    anything else goes through :func:`_listed_file`."""
    entries = {}
    fresh = plan.fresh[name]
    get = known.get
    listing = live_listing.list_tree(src, EXCLUDED_FILE_NAMES,
                                     EXCLUDED_DIR_NAMES)
    try:
        for chunk in listing:
            for key, rel in zip(chunk[::2], chunk[1::2], strict=True):
                kind = key[0]
                prev = get(rel)
                if kind == "f":
                    if prev is not None and prev.live == key \
                            and not prev.racy:
                        entries[rel] = prev
                    else:
                        _listed_file(name, src, rel, key, prev, t0, plan,
                                     entries)
                elif kind == "d":
                    _add_dir(entries, fresh, rel, prev,
                             S_IFDIR | int(key.split(" ", 2)[1], 8))
                elif kind == "l":
                    _add_link(entries, fresh, rel, os.path.join(src, rel),
                              S_IFLNK | int(key.split(" ", 2)[1], 8))
    finally:
        listing.close()
    return entries


def _listed_file(name, src, rel, key, prev, t0, plan, entries) -> None:
    """A file whose listed stat key is not known as unchanged: compare
    by the Python stat key (entries restored or walked in Python), by
    content (racy entries), or take it as new."""
    path = os.path.join(src, rel)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not S_ISREG(st.st_mode):
        raise live_listing.ListingUnavailable(f"{rel} changed its type")
    racy = entry.is_racy(st.st_mtime_ns, t0)
    if prev is not None and prev.kind == "f" and (
            prev.live == key or prev.live == entry.live_key(st)) and (
            not prev.racy or _racy_unchanged(src, rel, prev)):
        entries[rel] = prev._replace(live=key, racy=racy)
        return
    _add_new_file(plan, entries, name, rel, path, st, key, racy)


def walk_tree(top: str, rel_dir: str = "") -> Iterator[tuple]:
    """The Python stat walk: ``(rel, path, lstat)`` of every path below
    ``top`` in pre-order (a dir right before its contents), never
    ``.gislock`` files or ``.tmp`` dirs (with their contents). Paths that
    vanish during the walk are skipped; a missing ``top`` raises."""
    try:
        with os.scandir(os.path.join(top, rel_dir) if rel_dir else top) as it:
            items = list(it)
    except FileNotFoundError:
        if not rel_dir:
            raise
        return
    prefix = rel_dir + "/" if rel_dir else ""
    for item in items:
        if item.name in EXCLUDED_FILE_NAMES:
            continue
        try:
            st = item.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        is_dir = S_ISDIR(st.st_mode)
        if is_dir and item.name in EXCLUDED_DIR_NAMES:
            continue
        rel = prefix + item.name
        yield rel, item.path, st
        if is_dir:
            yield from walk_tree(top, rel)


def plan_part_walked(name, src, t0, known, plan) -> dict:
    """Plan one live dir from :func:`walk_tree` (where GNU find cannot
    list it): the same decisions as :func:`plan_part_listed`, by the
    Python stat key."""
    entries = {}
    fresh = plan.fresh.setdefault(name, [])
    live_key, is_racy, get = entry.live_key, entry.is_racy, known.get
    for rel, path, st in walk_tree(src):
        mode = st.st_mode
        if S_ISREG(mode):
            key = live_key(st)
            racy = is_racy(st.st_mtime_ns, t0)
            prev = get(rel)
            if prev is not None and prev.live == key and (
                    not prev.racy or _racy_unchanged(src, rel, prev)):
                entries[rel] = prev if prev.racy == racy \
                    else prev._replace(racy=racy)
                continue
            _add_new_file(plan, entries, name, rel, path, st, key, racy)
        elif S_ISDIR(mode):
            _add_dir(entries, fresh, rel, get(rel), mode)
        elif S_ISLNK(mode):
            _add_link(entries, fresh, rel, path, mode)
    return entries


def _racy_unchanged(src: str, rel: str, prev: Entry) -> bool:
    """A racy entry with an equal stat is compared by content: exact,
    and only reads (no copy of a big raster written just before the last
    save)."""
    try:
        return fsops.hash_file(os.path.join(src, rel)) == prev.obj
    except OSError:
        return False


# What both walks of a save (find listing, Python walk) record per path; a
# path whose entry is a new object is a delta candidate (``fresh``).


def _add_new_file(plan, entries, name, rel, path, st, key, racy) -> None:
    """A file not known as unchanged: its content is to be stored."""
    entries[rel] = Entry("f", st.st_mode, st.st_size, st.st_mtime_ns,
                         live=key, racy=racy)
    plan.fresh[name].append(rel)
    plan.new_files.append((name, rel, path))
    plan.bytes_needed += st.st_size


def _add_dir(entries, fresh, rel, prev, mode) -> None:
    """The previous entry while the directory's mode is unchanged."""
    if prev is not None and prev.kind == "d" and prev.mode == mode:
        entries[rel] = prev
    else:
        entries[rel] = Entry("d", mode)
        fresh.append(rel)


def _add_link(entries, fresh, rel, path, mode) -> None:
    """A symlink is recorded with its target (read each time: cheap, and
    symlinks are rare in mapsets); one that vanished is skipped."""
    try:
        target = os.readlink(path)
    except OSError:
        return
    entries[rel] = Entry("l", mode, target=target)
    fresh.append(rel)
