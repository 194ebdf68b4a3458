# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Adopt a kept mapset: make the failed iteration's own dirs equal to the
interim result a resume starts from, putting back only what differs.

Why: a restore creates every file of the interim result again (100,000
inodes: seconds); the failed iteration's mapset (kept by
:mod:`.kept_mapset`) differs from it only by what the failed step (or
anything else) changed since the last save. One stat walk of the kept dirs
finds those files:

* a kept file is **unchanged** when its stat key (size, mtime, inode,
  ctime, mode) equals the one recorded at the last save or restore, that
  key was not racy (the store's racy rule: taken within a clock tick of a
  write), and the content recorded then (object, mode, size, mtime) is the
  planned interim result's for that path. Unchanged files stay where they
  are: their bytes were never read;
* anything else (changed in place, replaced by another inode, a changed
  ctime, a type change, a racy record, a file the record does not know) is
  **put back** from the store, each object checked against its record as
  in every restore; paths the planned interim result lacks are removed;
  directories get the planned modes.

When in doubt a file is put back: the result holds exactly the bytes,
modes and mtimes a restore of the same interim result would produce (so the
mapset-name fix-ups after it are the restore's). The plan may start from an
earlier step than the last save: then the comparison is with that step's
state, the same rules.

Where the kept record holds the very state the plan starts from (record
v3, the same snapshot id and parts) the decision needs nothing else: a
walked file is kept when its stat key is the record's trusted key, dirs
and symlinks when the record lists them, and what is put back is made
from the record's entries (each object still checked against its hash).
The manifests (100,000 entries: 0.5 s to parse and build) are read only
when a save or a keep first needs the live state (:func:`adopted_state`).

Crash safety: what to keep and what to put back is decided read-only on
the kept mapset where it is; it is then claimed by a rename
(:meth:`.KeptMapset.claim`) before anything changes, and the claimed dir
must be the one decided on (same inode). The repair happens in the
claimed dir, the parts are moved into the new iteration's dirs last. A killed adoption
leaves a claimed dir that no resume takes for a kept mapset: the next
iteration restores from the store and removes the leftover.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from . import entry, live_listing, scan
from .bulk import without_gc
from .entry import Entry
from .errors import SnapshotError
from .fsops import rmtree
from .kept_mapset import (
    KeptMapset,
    KeptRecord,
    content_string,
    entry_of_content,
    entry_of_layout,
    stat_key_string,
)
from .layout import EXCLUDED_DIR_NAMES, EXCLUDED_FILE_NAMES
from .snapshot_store import SnapshotStore

__all__ = ["AdoptionReport", "KeptListing", "NotAdoptable",
           "adopt_kept_mapset", "files_to_put_back"]


class NotAdoptable(Exception):
    """No kept mapset can be adopted (none, damaged, unknown state): the
    caller restores from the store."""


@dataclass
class AdoptionReport:
    """What an adoption did (for the job's ``resume`` section)."""

    files_kept: int = 0
    files_put_back: int = 0
    paths_removed: int = 0
    seconds: float = 0.0
    #: of ``seconds``: reading the record and comparing while the stat
    #: walk lists (read-only), then claiming, putting back and moving
    decide_seconds: float = 0.0
    repair_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"adopted": True, "files_kept": self.files_kept,
                "files_put_back": self.files_put_back,
                "paths_removed": self.paths_removed,
                "seconds": round(self.seconds, 3),
                "decide_seconds": round(self.decide_seconds, 3),
                "repair_seconds": round(self.repair_seconds, 3)}


@dataclass
class _Repair:
    """The decisions of the stat walk of one part (nothing changed yet).

    From the manifests' state: ``entries`` (rel -> Entry of the planned
    state kept as it is, files with the walk's live key). From the record
    (:func:`_compare_record`): ``keys`` (rel -> live key of each file kept)
    and ``entries`` the dirs and symlinks kept."""

    entries: dict
    remove_files: list
    remove_dirs: list
    chmod_dirs: list  # (rel, mode)
    keys: dict | None = None


@dataclass
class _Plan:
    """What an adoption makes the kept dirs equal to: snapshot ``step``'s
    state, from the manifests (``state``) or, where the kept record holds
    that very state (v3, same snapshot id), from the record alone
    (``state`` None: 100,000 entries are not parsed nor built)."""

    record: KeptRecord
    names: list  # the snapshot's parts
    modes: dict  # part -> mode of its top dir
    state: dict | None
    same: bool  # the kept state is the planned snapshot's

    def missing(self, name: str, repair: _Repair) -> list:
        """``[(rel, Entry)]`` of part ``name`` the walk did not keep."""
        if self.state is not None:
            kept = repair.entries
            return [(rel, e) for rel, e in self.state[name].items()
                    if rel not in kept]
        files = self.record.contents(name)
        layout = self.record.layout(name)
        try:
            return ([(rel, entry_of_content(files[rel]))
                     for rel in files.keys() - repair.keys.keys()]
                    + [(rel, entry_of_layout(layout[rel]))
                       for rel in layout.keys() - repair.entries.keys()])
        except ValueError as exc:
            raise NotAdoptable(f"the kept mapset's record: {exc}") from None


class KeptListing:
    """The stat walks of a kept mapset's parts, started when the resumed
    job starts: ``find`` runs on the other core while the job sets up,
    checks its plan and reads the kept record (at 100,000 files the walk
    is the adoption's longest part, 0.3-0.4 s).

    One early walk (:class:`.live_listing.SpooledListing`) per dir that
    may be a part (the dirs of the kept mapset, those below ``mapsets/``).
    The adoption takes a walk only for the very dir it compares (same
    device and inode, before the claim renames the parent); nothing
    writes in a kept mapset but its adoption, and the walk starts before
    any change the adoption makes. What is not taken is dropped by
    :meth:`close`. ``KeptListing(None)`` has no walks.

    ``t0``: the clock before the walks stat anything, for the racy rule
    (:func:`.entry.is_racy`) of the stat keys they give."""

    def __init__(self, kept: KeptMapset | None):
        self._walks: dict = {}
        self.t0 = entry.now_coarse_ns()
        for name in _part_dirs(kept.path) if kept is not None else ():
            try:
                self._walks[name] = live_listing.SpooledListing(
                    str(kept.path / name), EXCLUDED_FILE_NAMES,
                    EXCLUDED_DIR_NAMES)
            except (live_listing.ListingUnavailable, OSError):
                continue

    def take(self, name: str, top: str):
        """The walk of part ``name`` if it lists the dir ``top``, else
        None (the caller walks ``top`` itself)."""
        walk = self._walks.pop(name, None)
        if walk is None:
            return None
        try:
            st = os.stat(top)
        except OSError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != walk.identity:
            walk.close()
            return None
        return walk

    def wait(self) -> None:
        """Let the walks end (``find`` lists by path)."""
        for walk in self._walks.values():
            walk.wait()

    def close(self) -> None:
        for walk in self._walks.values():
            walk.close()
        self._walks.clear()


def _part_dirs(path: Path) -> list[str]:
    """Names of the dirs below a kept mapset that may be parts: its dirs,
    and for ``mapsets`` the dirs in it (``mapsets/<name>``)."""
    names = []
    for top in _subdirs(path):
        if top == "mapsets":
            names += [f"mapsets/{n}" for n in _subdirs(path / top)]
        else:
            names.append(top)
    return names


def _subdirs(path: Path) -> list[str]:
    try:
        with os.scandir(path) as it:
            return sorted(e.name for e in it
                          if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def adopt_kept_mapset(kept: KeptMapset, store: SnapshotStore, step: int,
                      targets: dict, listing: KeptListing | None = None
                      ) -> AdoptionReport:
    """Adopt the kept mapset of ``kept``'s job as the state of snapshot
    ``step`` of ``store`` in the dirs ``targets`` (part -> path; a target
    may exist if it is empty, like actinia's fresh temporary file dir).
    Afterwards ``store`` knows the adopted files' stat (its next save
    writes only what changes after the adoption).

    Raises :class:`NotAdoptable` before anything was changed in
    ``targets`` when there is no intact kept mapset; after any other error
    (e.g. :class:`.SnapshotDamaged` of an object to put back) the kept
    mapset is gone and a restore replaces whatever is in the targets.
    ``listing``: the walks of the kept dirs, started before (closed here,
    taken or not)."""
    started = time.monotonic()
    listing = listing or KeptListing(None)
    try:
        return _adopt(kept, store, step, targets, listing, started)
    finally:
        listing.close()


@without_gc
def _adopt(kept: KeptMapset, store: SnapshotStore, step: int, targets: dict,
           listing: KeptListing, started: float) -> AdoptionReport:
    """:func:`adopt_kept_mapset` with its walks: everything is decided on
    the kept mapset where it is (read only, while ``find`` still walks it),
    then it is claimed and repaired."""
    try:
        before = os.stat(kept.path)
    except FileNotFoundError:
        raise NotAdoptable("no kept mapset") from None
    try:
        plan = _planned(kept, kept.path, store, step)
        names = sorted(n for n in targets if n in plan.names)
        # before any stat: the walks' if they started earlier
        t0 = min(entry.now_coarse_ns(), listing.t0)
        repairs = _plan_repairs(kept.path, names, plan, t0, listing)
        missing = {name: plan.missing(name, repairs[name]) for name in names}
    except NotAdoptable:
        listing.wait()
        _remove_claimed(kept)  # tried once: the next resume restores
        raise
    listing.wait()  # a walk must not see the claim's rename of its parent
    decided = time.monotonic()
    claimed = kept.claim()
    if claimed is None:
        raise NotAdoptable("no kept mapset")
    try:
        after = os.stat(claimed)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            # kept again meanwhile: what was read is not what was claimed
            raise NotAdoptable("the kept mapset was replaced")
        report = AdoptionReport()
        put_back = {}
        for name in names:
            put_back[name] = _repair_part(
                store, step, name, claimed / name, missing[name],
                plan.modes[name], repairs[name], t0, report)
        sources = {}
        for name in names:
            target = Path(os.path.abspath(targets[name]))
            _move_into_place(claimed / name, target)
            sources[name] = os.path.realpath(target)
        _take_live(store, step, plan, names, repairs, put_back, t0, sources)
    finally:
        rmtree(claimed)
    ended = time.monotonic()
    report.seconds = ended - started
    report.decide_seconds = decided - started
    report.repair_seconds = ended - decided
    return report


def _remove_claimed(kept: KeptMapset) -> None:
    claimed = kept.claim()
    if claimed is not None:
        rmtree(claimed)


def _take_live(store: SnapshotStore, step: int, plan: _Plan, names: list,
               repairs: dict, put_back: dict, t0: int, sources: dict
               ) -> None:
    """Tell ``store`` what the adopted dirs hold: the entries now, or
    (from the record) a state built from the manifests when a save or a
    keep first needs it."""
    modes = {n: plan.modes[n] for n in names}
    if plan.state is not None:
        live_state = {n: repairs[n].entries | put_back[n] for n in names}
        store.adopt_live(step, live_state, modes, sources)
        return
    record = plan.record
    keys = {n: repairs[n].keys for n in names}
    store.adopt_live(
        step, None, modes, sources, snapshot_id=record.snapshot_id,
        load=lambda: adopted_state(store.state(step)[0], names, keys,
                                   put_back, record, t0),
        view=lambda part: record.entries(part) if part in names else None)


def adopted_state(state: dict, names: list, keys: dict, put_back: dict,
                  record: KeptRecord, t0: int) -> dict:
    """The live state of dirs adopted from the record: the snapshot's
    ``state`` (from its manifests, the store's truth) with the live key of
    each file the walk kept (``keys``) or put back (``put_back``).

    A file whose entry in ``state`` is not what the record said it held
    gets no live key: the next save hashes it, so a record that disagrees
    with its manifests can never make a save store a wrong state."""
    new, is_racy = tuple.__new__, entry.is_racy
    out = {}
    for name in names:
        entries = out[name] = dict(state.get(name, {}))
        files = record.contents(name)
        for rel, key in keys[name].items():
            item = entries.get(rel)
            if item is not None and item.kind == "f" \
                    and files.get(rel) == content_string(item):
                entries[rel] = new(Entry, item[:8] + (
                    key, is_racy(item.mtime_ns, t0)))
        for rel, got in put_back[name].items():
            item = entries.get(rel)
            if item is not None and got.content() == item.content():
                entries[rel] = item._replace(live=got.live, racy=got.racy)
    return out


def _plan_repairs(path: Path, names: list, plan: _Plan, t0: int,
                  listing: KeptListing) -> dict:
    """``{part: repair}``: the one stat walk of each part of the
    kept mapset at ``path`` against the planned state (nothing is
    changed). A part the kept mapset lacks is all put back."""
    repairs = {}
    record = plan.record
    for name in names:
        top = str(path / name)
        walk = listing.take(name, top)
        if not os.path.isdir(top):
            if walk is not None:
                walk.close()
            repairs[name] = _Repair({}, [], [], [], {})
            continue
        known = record.keys.get(name, {})
        if plan.state is None:
            repairs[name] = _walked(top, walk, _compare_record, known,
                                    record.layout(name))
        else:
            repairs[name] = _walked(
                top, walk, _compare, plan.state[name], known,
                None if plan.same else record.contents(name), t0)
    return repairs


@without_gc
def files_to_put_back(kept: KeptMapset, store: SnapshotStore, step: int
                      ) -> list[tuple[str, str, Entry]]:
    """What an adoption of ``kept`` as snapshot ``step`` would put back from
    the store, ``[(part, rel, entry)]``, read-only: the same stat walk and
    rules as :func:`adopt_kept_mapset`, on the kept dir where it is (not
    claimed, nothing changed).

    Why: a dry run reports the way the real PUT takes; with a kept mapset
    only these objects are read from the store, so only these decide
    whether stored damage matters. Raises :class:`NotAdoptable` when there
    is no intact kept mapset (the PUT would restore from the store)."""
    if not kept.exists():
        raise NotAdoptable("no kept mapset")
    plan = _planned(kept, kept.path, store, step)
    repairs = _plan_repairs(kept.path, plan.names, plan,
                            entry.now_coarse_ns(), KeptListing(None))
    return [(name, rel, item) for name, repair in repairs.items()
            for rel, item in plan.missing(name, repair) if item.kind == "f"]


def _planned(kept: KeptMapset, directory: Path, store: SnapshotStore,
             step: int) -> _Plan:
    """What the kept dir ``directory`` is to be made equal to: snapshot
    ``step``, from the record alone where it holds that very state (v3,
    same snapshot id, the same parts; the manifests' heads are read, with
    their seals), else from the manifests. ``same``: the kept state is the
    planned snapshot's own, so its recorded keys alone tell an unchanged
    file (else the contents are compared). :class:`NotAdoptable` when
    the record or the snapshot cannot be read."""
    try:
        record = kept.read_record(directory)
    except ValueError as exc:
        raise NotAdoptable(f"the kept mapset's record: {exc}") from None
    try:
        info = store.head(step)
        if info is None:
            raise NotAdoptable(f"no interim result of step {step}")
        same = info.id == record.snapshot_id
        if same and record.holds_state() \
                and sorted(record.parts) == sorted(info.parts):
            return _Plan(record, list(info.parts), dict(record.modes), None,
                         True)
        state, modes = store.state(step)
    except SnapshotError as exc:
        raise NotAdoptable(str(exc)) from None
    return _Plan(record, sorted(state), modes, state, same)


def _walked(top: str, walk, compare, *args) -> _Repair:
    """``compare(listing, top, *args)`` on the stat walk of ``top``: the
    one started before (``walk``, a :class:`.live_listing.SpooledListing`
    of ``top``), else GNU find, else the Python walk."""
    if walk is not None:
        try:
            return compare(walk.chunks(), top, *args)
        except live_listing.ListingUnavailable:
            pass
    try:
        return compare(live_listing.list_tree(
            top, EXCLUDED_FILE_NAMES, EXCLUDED_DIR_NAMES, sharded=False),
            top, *args)
    except live_listing.ListingUnavailable:
        return compare(_walk(top), top, *args)


def _move_into_place(src: Path, target: Path) -> None:
    """Rename an adopted part to its target; an existing target (an empty
    dir actinia made, or anything a restore would replace as well) goes."""
    if os.path.lexists(target):
        try:
            target.rmdir()
        except OSError:
            trash = target.parent / f".{target.name}.old-{os.getpid()}"
            os.rename(target, trash)
            rmtree(trash)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(src, target)


def _repair_part(store, step, name: str, part_dir: Path, missing: list,
                 mode: int, repair: _Repair, t0: int,
                 report: AdoptionReport) -> dict:
    """Make ``part_dir`` equal to the planned state as ``repair`` (its
    stat walk) says, creating what it did not keep (``missing``: ``[(rel,
    Entry)]``); returns ``{rel: Entry}`` of what was created, files with
    their live stat."""
    part_dir.mkdir(parents=True, exist_ok=True)  # a part the record lacks
    top = str(part_dir)
    for excluded in EXCLUDED_FILE_NAMES:  # GRASS' lock of the old session
        try:
            os.unlink(os.path.join(top, excluded))
        except FileNotFoundError:
            pass
    for excluded in EXCLUDED_DIR_NAMES:  # its scratch dir
        path = os.path.join(top, excluded)
        if os.path.isdir(path) and not os.path.islink(path):
            rmtree(path)
    entries = repair.entries
    writable = _Writable()
    for rel in repair.remove_files:
        writable.parent_of(top, rel)
        try:
            os.unlink(os.path.join(top, rel))
        except FileNotFoundError:
            pass
    for rel in repair.remove_dirs:
        writable.parent_of(top, rel)
        rmtree(os.path.join(top, rel))
    report.paths_removed += len(repair.remove_files) + len(repair.remove_dirs)
    new_dirs = sorted(((rel, e) for rel, e in missing if e.kind == "d"),
                      key=lambda item: item[0].count("/"))
    created = {}
    for rel, item in new_dirs:
        writable.parent_of(top, rel)
        os.mkdir(os.path.join(top, rel), 0o700)
        created[rel] = item
    files = []
    for rel, item in missing:
        if item.kind != "d":
            writable.parent_of(top, rel)
            files.append((rel, os.path.join(top, rel), item))
    report.files_kept += len(repair.keys) if repair.keys is not None else \
        sum(1 for e in entries.values() if e.kind == "f")
    report.files_put_back += sum(1 for f in files if f[2].kind == "f")
    created.update(store.put_back(step, name, files, t0))
    writable.restore()
    for rel, item in new_dirs:
        os.chmod(os.path.join(top, rel), stat.S_IMODE(item.mode))
    for rel, dir_mode in repair.chmod_dirs:
        os.chmod(os.path.join(top, rel), stat.S_IMODE(dir_mode))
    os.chmod(top, stat.S_IMODE(mode))
    return created


def _compare(listing, top: str, planned: dict, known: dict,
             contents: dict | None, t0: int) -> _Repair:
    """The one stat walk: which kept paths stay, go, or get a new mode.
    Paths of ``planned`` not kept as they are end up missing from
    ``entries``: they are put back. ``known``: the trusted stat keys of
    the record; ``contents``: what each file held, when the plan starts
    from another snapshot than the kept state's (``None``: the same)."""
    repair = _Repair({}, [], [], [])
    entries = repair.entries
    get, key_of, new, is_racy = (planned.get, known.get, tuple.__new__,
                                 entry.is_racy)
    skip = None  # a removed dir: its contents go with it
    try:
        for chunk in listing:
            for key, rel in zip(chunk[::2], chunk[1::2], strict=True):
                if skip is not None:
                    if rel.startswith(skip):
                        continue
                    skip = None
                kind = key[0]
                want = get(rel)
                if kind == "f":
                    if (key_of(rel) == key and want is not None
                            and want.kind == "f" and (
                                contents is None or contents.get(rel)
                                == content_string(want))):
                        # Entry(..., live=key, racy=...) without _replace's
                        # cost (100,000 files)
                        entries[rel] = new(Entry, want[:8] + (
                            key, is_racy(want.mtime_ns, t0)))
                    else:
                        repair.remove_files.append(rel)
                elif kind == "d":
                    if want is None or want.kind != "d":
                        repair.remove_dirs.append(rel)
                        skip = rel + "/"
                    else:
                        entries[rel] = want
                        if int(key.split(" ", 2)[1], 8) != stat.S_IMODE(
                                want.mode):
                            repair.chmod_dirs.append((rel, want.mode))
                elif kind == "l" and want is not None and want.kind == "l" \
                        and _readlink(os.path.join(top, rel)) == want.target:
                    entries[rel] = want
                else:  # a changed symlink, a special file
                    repair.remove_files.append(rel)
    finally:
        close = getattr(listing, "close", None)
        if close is not None:
            close()
    return repair


def _compare_record(listing, top: str, known: dict, layout: dict
                    ) -> _Repair:
    """:func:`_compare` against the state the record holds (v3, the
    planned snapshot's own): a file is kept when its walked stat key is
    the trusted key the record has for it (the record's keys are only
    those of files holding the snapshot's content), a dir or symlink when
    the record lists it as one (a symlink with its target). One dict
    lookup per file; nothing of the manifests is read."""
    repair = _Repair({}, [], [], [], {})
    kept, rest, get = repair.keys, [], known.get
    try:
        for chunk in listing:
            for key, rel in zip(chunk[::2], chunk[1::2], strict=True):
                if get(rel) == key:
                    kept[rel] = key
                else:
                    rest.append((key, rel))
    finally:
        close = getattr(listing, "close", None)
        if close is not None:
            close()
    skip = None  # a removed dir: its contents go with it
    for key, rel in rest:
        if skip is not None:
            if rel.startswith(skip):
                continue
            skip = None
        kind, want = key[0], layout.get(rel)
        if kind == "d":
            if want is None or want[0] != "d":
                repair.remove_dirs.append(rel)
                skip = rel + "/"
                continue
            item = entry_of_layout(want)
            repair.entries[rel] = item
            if int(key.split(" ", 2)[1], 8) != stat.S_IMODE(item.mode):
                repair.chmod_dirs.append((rel, item.mode))
        elif kind == "l" and want is not None and want[0] == "l" \
                and _readlink(os.path.join(top, rel)) \
                == entry_of_layout(want).target:
            repair.entries[rel] = entry_of_layout(want)
        else:  # a changed or new file or symlink, a special file
            repair.remove_files.append(rel)
    return repair


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _walk(top: str):
    """The Python walk where GNU find cannot list (busybox): the save's
    walk (:func:`.scan.walk_tree`, a dir right before its contents) as the
    same ``[key, rel, …]`` chunk ``find`` gives, keys from ``lstat`` in
    ``find``'s text form."""
    yield [field for rel, _path, st in scan.walk_tree(top)
           for field in (stat_key_string(st), rel)]


class _Writable:
    """Dirs of a kept mapset may be read-only (GRASS makes some): make a
    parent writable while paths in it are removed or put back, and give it
    its mode again afterwards."""

    def __init__(self):
        self.changed: dict[str, int] = {}

    def parent_of(self, top: str, rel: str) -> None:
        parent = os.path.dirname(os.path.join(top, rel))
        if parent in self.changed:
            return
        try:
            mode = os.stat(parent).st_mode
        except FileNotFoundError:
            return
        if mode & 0o700 != 0o700:
            os.chmod(parent, stat.S_IMODE(mode) | 0o700)
            self.changed[parent] = mode

    def restore(self) -> None:
        for path, mode in self.changed.items():
            os.chmod(path, stat.S_IMODE(mode))
        self.changed.clear()
