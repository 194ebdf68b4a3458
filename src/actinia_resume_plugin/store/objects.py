# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Content-addressed objects: ``objects/ab/cdef…``, one file's bytes named
by their xxh3-128 hash and written once.

Why: a step costs what it changed (a file whose content is stored already
costs nothing), objects are never links to the live mapset (GRASS rewrites
files in place), and every object can be checked against its name. An
object is written under a temporary name, hashed while it is copied,
flushed and renamed to its name (:meth:`ObjectStore.store_new_files`);
objects of another job's store are hard linked when a job reuses them
(:meth:`ObjectStore.take_over`); objects no manifest names are removed
(:meth:`ObjectStore.collect_garbage`).

A save that writes many small new objects puts them into pack files
instead (:mod:`.packs`: one file for thousands of objects, as git's
packfiles beside its loose objects); a reader asks :attr:`ObjectStore.packs`
first and falls back to the loose file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Mapping

from . import fsops
from .entry import Entry, LiveState
from .errors import SnapshotDamaged
from .layout import OBJECT_TMP_PREFIX, temp_name
from .packs import (
    PACK_MIN_OBJECTS,
    PackIndex,
    PackWriter,
    blob_problem,
    read_blob,
)

__all__ = ["FSYNC_EACH_MAX", "ObjectStore"]

#: Up to this many new objects are fsynced one by one, more with syncfs.
FSYNC_EACH_MAX = 64


class ObjectStore:
    """The ``objects/`` dir of one job root (it need not exist)."""

    def __init__(self, objects_dir: str):
        # str, not Path: path() runs once per file of a mapset
        self.dir = objects_dir
        self._fans: set[str] = set()  # fan-out dirs known to exist
        self.packs = PackIndex(objects_dir)

    def path(self, obj: str) -> str:
        return f"{self.dir}/{obj[:2]}/{obj[2:]}"

    # ------------------------------------------------------------- write
    def store_new_files(self, plan, live: LiveState | None
                        ) -> tuple[int, int, dict]:
        """Copy the new files of a save plan into objects, hashing while
        copying, and record their objects in ``plan.state``. Returns
        ``(files, bytes, known objects)``; on failure, removes what it
        wrote (and ``live``'s map of objects stays as it was)."""
        foreign = live.foreign if live else None
        known = dict(live.objects) if live and not foreign else {}
        created: list[str] = []
        written: list[str] = []  # new data, not links to durable objects
        pack = PackWriter(self.dir) if _worth_a_pack(plan) else None
        files = nbytes = 0
        try:
            if foreign:
                self.take_over(plan.state, foreign, known, created, written,
                               pack)
            for name, rel, src in plan.new_files:
                item = plan.state[name][rel]
                obj, oino, octime, fresh = self.put(src, known, pack)
                if fresh:
                    if oino:  # a loose object (a packed one has no inode)
                        created.append(obj)
                        written.append(obj)
                    files += 1
                    nbytes += item.size
                plan.state[name][rel] = item._replace(
                    obj=obj, oino=oino, octime=octime)
            self.flush(written, pack)
        except BaseException:
            if pack is not None:
                pack.abort()
            self.remove(created)
            raise
        return files, nbytes, known

    def put(self, src: str, known: dict, pack: PackWriter | None = None
            ) -> tuple[str, int, int, bool]:
        """Store one file: ``(object, inode, ctime, whether it is new)``.
        An object already in ``known`` (stored by this process) is not
        written again; a small file is hashed before anything is written,
        so such a file costs one read, and goes into ``pack`` if given
        (inode and ctime 0: a packed object has none of its own)."""
        small = fsops.read_small_hashing(src)
        if small is None:
            return self._put_copied(src, known)
        data, obj = small
        if obj in known:
            return obj, *known[obj], False
        if pack is not None:
            pack.add(obj, data)
            known[obj] = (0, 0)
            return obj, 0, 0, True
        final = self.path(obj)
        self._make_fan(obj)
        try:
            # straight to its name: a write cut short leaves an object that
            # no committed manifest names yet (the manifest follows the
            # flush); the next save of the same bytes replaces it, garbage
            # collection removes it, and every restore checks the hash
            st = fsops.write_new(final, data)
        except FileExistsError:
            # the same content from another lineage (unverified here):
            # replace it by this fresh copy, as for a large file
            st = self._replace_with(final, data)
        known[obj] = (st.st_ino, st.st_ctime_ns)
        return obj, st.st_ino, st.st_ctime_ns, True

    def _put_copied(self, src: str, known: dict
                    ) -> tuple[str, int, int, bool]:
        """:meth:`put` for a large file: copied to a temporary name while
        hashed, then renamed to its name."""
        tmp = os.path.join(self.dir, temp_name(OBJECT_TMP_PREFIX))
        os.makedirs(self.dir, exist_ok=True)
        try:
            obj = fsops.copy_hashing(src, tmp)
            if obj in known:
                os.unlink(tmp)
                return obj, *known[obj], False
            final = self.path(obj)
            self._make_fan(obj)
            # An object of the same content from another lineage may exist
            # (unverified here): replace it by this fresh copy. Snapshots
            # holding the old inode re-verify it by hash at restore.
            os.replace(tmp, final)
        except BaseException:
            fsops.unlink_quietly(tmp)
            raise
        st = os.lstat(final)
        known[obj] = (st.st_ino, st.st_ctime_ns)
        return obj, st.st_ino, st.st_ctime_ns, True

    def _replace_with(self, final: str, data: bytes) -> os.stat_result:
        """Replace the object ``final`` by ``data`` through a temporary
        name (a reader never sees it half written)."""
        tmp = os.path.join(self.dir, temp_name(OBJECT_TMP_PREFIX))
        try:
            fsops.write_new(tmp, data)
            os.replace(tmp, final)
        except BaseException:
            fsops.unlink_quietly(tmp)
            raise
        return os.lstat(final)

    def _make_fan(self, obj: str) -> None:
        """The fan-out dir ``objects/ab/`` of ``obj`` (256 at most: made
        once per store object, not once per file)."""
        fan = obj[:2]
        if fan not in self._fans:
            os.makedirs(f"{self.dir}/{fan}", exist_ok=True)
            self._fans.add(fan)

    def take_over(self, state: dict, foreign: str, known: dict,
                  created: list, written: list,
                  pack: PackWriter | None = None) -> None:
        """After a restore from another job's store (reuse across jobs):
        hard link the objects of the unchanged files from there (immutable;
        no copy of the mapset, and this job keeps them if that one is
        removed), a packed object by linking its pack. Adds the objects
        created here to ``created`` and those that had to be copied to
        ``written``: a link needs no fsync, its data is already on disk
        (the other job flushed it when it saved), and its name is ordered
        before the manifest as a new object's is."""
        theirs = PackIndex(foreign)
        theirs.sync()
        self.packs.sync()
        for entries in state.values():
            for rel, item in entries.items():
                if item.kind != "f" or not item.obj or item.obj in known:
                    continue
                blob = theirs.locate(item.obj)
                if blob is not None:
                    self._take_packed(theirs, blob, item, pack, created,
                                      written)
                    known[item.obj] = (0, 0)
                    entries[rel] = item._replace(oino=0, octime=0)
                    continue
                final = self.path(item.obj)
                os.makedirs(os.path.dirname(final), exist_ok=True)
                source = os.path.join(foreign, item.obj[:2], item.obj[2:])
                try:
                    os.link(source, final)
                except FileExistsError:
                    pass
                except OSError:  # another file system, too many links
                    if fsops.copy_hashing(source, final) != item.obj:
                        fsops.unlink_quietly(final)
                        raise _reused_damaged(rel) from None
                    written.append(item.obj)
                st = os.lstat(final)
                created.append(item.obj)
                known[item.obj] = (st.st_ino, st.st_ctime_ns)
                entries[rel] = item._replace(oino=st.st_ino,
                                             octime=st.st_ctime_ns)

    def _take_packed(self, theirs: PackIndex, blob, item: Entry,
                     pack: PackWriter | None, created: list,
                     written: list) -> None:
        """Take over a packed object of another store: its whole pack is
        hard linked (once); where a link cannot be made, the object's
        bytes are checked and stored here (into this save's pack, if it
        has one)."""
        mine = os.path.join(self.dir, os.path.basename(blob.pack))
        if mine in self.packs.packs():
            return
        os.makedirs(self.dir, exist_ok=True)
        try:
            os.link(blob.pack, mine)
        except FileExistsError:
            pass
        except OSError:  # another file system, too many links
            self._copy_packed(blob, item, pack, created, written)
            return
        created.append(mine)
        self.packs.added(mine, theirs.blobs_of(blob.pack))

    def _copy_packed(self, blob, item: Entry, pack: PackWriter | None,
                     created: list, written: list) -> None:
        data = read_blob(blob)
        if blob_problem(data, item.obj, item.size) is not None:
            raise _reused_damaged(item.obj)
        if pack is not None:
            pack.add(item.obj, data)
            return
        self._make_fan(item.obj)
        fsops.write_new(self.path(item.obj), data)
        created.append(item.obj)
        written.append(item.obj)

    def flush(self, created: list[str], pack: PackWriter | None = None
              ) -> None:
        """New objects reach the disk before a manifest names them: a few
        are fsynced one by one (only their data is written), many at once
        with one ``syncfs`` (100,000 fsyncs would take minutes); a pack is
        flushed and renamed to its name."""
        if pack is not None:
            for path, blobs in pack.finish():
                self.packs.added(path, blobs)
        if len(created) > FSYNC_EACH_MAX:
            fsops.syncfs(self.dir)
            return
        for obj in created:
            fsops.fsync_path(self.path(obj))

    def remove(self, objs: Iterable[str]) -> None:
        """Remove objects (and linked packs: their paths) a failed save
        wrote."""
        for obj in objs:
            fsops.unlink_quietly(obj if os.sep in obj else self.path(obj))

    # ------------------------------------------------------------- check
    def check(self, step: int, name: str, rel: str, item: Entry,
              content: bool) -> None:
        """Raise :class:`SnapshotDamaged` when the object of ``item`` (the
        file ``name/rel`` of snapshot ``step``) is missing, not a regular
        file or of another size, or, with ``content``, when its bytes do
        not match its hash (one read)."""
        problem = self.problem(item, content)
        if problem is not None:
            raise SnapshotDamaged(step, name, rel, problem)

    def problem(self, item: Entry, content: bool = False,
                sizes: Mapping[str, int] | None = None) -> str | None:
        """What is wrong with the object of ``item`` (None: intact).
        ``sizes`` (``{object: size}`` of the regular files below
        ``objects/``, from a walk the caller made anyway) saves the
        ``lstat``."""
        blob = self.packs.locate(item.obj)
        if blob is not None:
            return self._packed_problem(blob, item, content)
        if sizes is not None and not content:
            size = sizes.get(item.obj)
            if size == item.size:
                return None
            return "is missing" + self.packs.missing_reason() \
                if size is None else f"has {size} bytes, recorded {item.size}"
        path = self.path(item.obj)
        try:
            st = os.lstat(path)
        except OSError:
            return "is missing" + self.packs.missing_reason()
        if not stat.S_ISREG(st.st_mode) or st.st_size != item.size:
            return f"has {st.st_size} bytes, recorded {item.size}"
        if not content:
            return None
        try:
            intact = fsops.hash_file(path) == item.obj
        except OSError:
            intact = False
        return None if intact else "does not match its recorded hash"

    @staticmethod
    def _packed_problem(blob, item: Entry, content: bool) -> str | None:
        """:meth:`problem` for a packed object."""
        if blob.length != item.size:
            return f"has {blob.length} bytes, recorded {item.size}"
        if not content:
            return None
        try:
            data = read_blob(blob)
        except OSError:
            return "is missing (its pack cannot be read)"
        return blob_problem(data, item.obj, item.size)

    # ------------------------------------------------------------- gc
    def collect_garbage(self, referenced: set) -> int:
        """Remove every object not in ``referenced`` (left by pruning or a
        killed save) and every pack none of whose objects is referenced;
        returns how many files."""
        self.packs.sync()
        removed = 0
        for path in self.packs.unneeded(referenced):
            fsops.unlink_quietly(path)
            removed += 1
        try:
            fans = list(os.scandir(self.dir))
        except (FileNotFoundError, NotADirectoryError):
            return 0
        for fan in fans:
            if not fan.is_dir(follow_symlinks=False):
                continue
            with os.scandir(fan.path) as it:
                for item in it:
                    if fan.name + item.name not in referenced:
                        os.unlink(item.path)
                        removed += 1
        return removed


def _worth_a_pack(plan) -> bool:
    """Whether a save writes enough small new objects to pack them (the
    plan knows sizes, not contents: equal files still count)."""
    small = 0
    for name, rel, _src in plan.new_files:
        if plan.state[name][rel].size <= fsops.CHUNK:
            small += 1
            if small >= PACK_MIN_OBJECTS:
                return True
    return False


def _reused_damaged(rel: str) -> OSError:
    return OSError(errno.EIO, "an object of the reused interim result does "
                   "not match its hash", rel)
