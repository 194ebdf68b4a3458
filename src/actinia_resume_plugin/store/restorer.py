# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The restore side: a verified copy of an interim result's state into
temporary dirs beside the targets, swapped into place only when whole.

Why: the restored dirs are live GRASS data that will be modified in place,
so files are always *copied* out of the objects, never linked; every byte
is hashed as it passes (xxh3-128, the object's name), so a byte that
differs raises :class:`.SnapshotDamaged` before anything is put into
place, whatever the file's stat says. Copies run on :data:`COPY_THREADS`
threads (the copy syscalls drop the GIL).

The restorer only writes the targets; what the live dirs now hold
(:class:`.entry.LiveState`) is handed back to the caller, which tells the
store that will save next.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import entry, fsops
from .entry import Entry
from .errors import SnapshotDamaged
from .objects import ObjectStore
from .packs import blob_problem, read_blob

__all__ = ["COPY_THREADS", "Restorer", "check_targets"]

#: Threads copying files during a restore (the copy syscalls drop the GIL).
COPY_THREADS = 4
#: Fewer files than this are copied on the calling thread.
_THREADED_MIN_FILES = 64


def check_targets(targets: Mapping[str, os.PathLike], names: list[str],
                  replace: bool) -> None:
    """Without ``replace``, a non-empty target is refused before anything
    is copied (:class:`FileExistsError`)."""
    for name in names:
        target = Path(targets[name])
        if not replace and target.exists() and (
                not target.is_dir() or any(target.iterdir())):
            raise FileExistsError(errno.EEXIST, "restore target is not empty",
                                  str(target))


class Restorer:
    """Restores the files of one job root's objects."""

    def __init__(self, objects: ObjectStore):
        self.objects = objects
        # ns spent hashing per restored file (the copy threads append)
        self.hash_ns: list[int] = []
        self._pack_fds: dict[str, int] = {}  # pack path -> fd (copy_files)
        self._pack_lock = threading.Lock()

    def restore_parts(self, step: int, state: dict, modes: dict,
                      targets: Mapping[str, os.PathLike], names: list[str],
                      t0: int) -> dict:
        """Assemble every part of ``names`` beside its target and rename
        them into place only when all are intact: each target is either
        the old or the complete restored tree. Returns ``{part: {rel:
        Entry}}`` with the restored files' live stat."""
        self.hash_ns = []
        live_state, staged = {}, []
        try:
            for name in names:
                target = Path(os.path.abspath(targets[name]))
                tmp, live_state[name] = self._assemble_part(
                    step, name, state[name], modes[name], target, t0)
                staged.append((tmp, target))
            while staged:
                tmp, target = staged.pop(0)
                swap_into_place(tmp, target)
        finally:
            for tmp, _target in staged:
                fsops.rmtree(tmp)
        return live_state

    def stats(self, state: dict, names: list[str]) -> dict:
        """What the last restore verified: ``{"files", "bytes",
        "verify_seconds"}`` (CPU time hashing, summed over the threads)."""
        return {
            "files": len(self.hash_ns),
            "bytes": sum(e.size for n in names for e in state[n].values()
                         if e.kind == "f"),
            "verify_seconds": round(sum(self.hash_ns) / 1e9, 4)}

    def _assemble_part(self, step, name, entries, mode, target: Path, t0):
        """Build one part in a temp dir beside ``target``; returns the temp
        dir and ``{rel: Entry}`` with the restored files' live stat."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.restore-{uuid.uuid4().hex}"
        try:
            tmp.mkdir(0o700)
            tmp_s = str(tmp)
            dirs, files = [], []
            for rel, item in entries.items():
                dst = os.path.join(tmp_s, rel)
                (dirs if item.kind == "d" else files).append((rel, dst, item))
            for _rel, dst, _item in sorted(dirs, key=lambda d: d[0].count("/")):
                os.makedirs(dst, 0o700, exist_ok=True)
            restored = self.copy_files(step, name, files, t0)
            for rel, dst, item in dirs:
                os.chmod(dst, stat.S_IMODE(item.mode))
                restored[rel] = item
            os.chmod(tmp, stat.S_IMODE(mode))
        except BaseException:
            fsops.rmtree(tmp)
            raise
        return tmp, restored

    def copy_files(self, step, name, files, t0) -> dict:
        """Restore files and symlinks (``[(rel, dst, Entry)]``, ``dst`` not
        existing) on several threads; returns ``{rel: Entry}`` with the
        restored files' live stat. Also what an adoption puts back."""
        if not files:
            # an adoption that puts nothing back: no pack index to load
            # (100,000 packed objects: a fifth of a second)
            return {}
        files.sort(key=lambda f: -f[2].size)
        shards = [files[i::COPY_THREADS] for i in range(COPY_THREADS)]

        def work(shard):
            return [(rel, self._restore_file(step, name, rel, dst, item, t0))
                    for rel, dst, item in shard]

        restored = {}
        self.objects.packs.sync()
        try:
            if len(files) < _THREADED_MIN_FILES:
                results = [work(files)]
            else:
                with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
                    results = list(pool.map(work, shards))
        finally:
            self._close_packs()
        for result in results:
            restored.update(result)
        return restored

    def _restore_file(self, step, name, rel, dst, item: Entry, t0) -> Entry:
        """Copy one object to ``dst`` with its mode and mtime, checking
        its size before and every byte while it is copied."""
        if item.kind == "l":
            os.symlink(item.target, dst)
            return item
        blob = self.objects.packs.locate(item.obj)
        if blob is not None:
            return self._restore_packed(step, name, rel, dst, item, blob, t0)
        try:
            src_fd = os.open(self.objects.path(item.obj), os.O_RDONLY)
        except FileNotFoundError:
            raise SnapshotDamaged(step, name, rel, "is missing"
                                  + self.objects.packs.missing_reason()
                                  ) from None
        try:
            st = os.fstat(src_fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != item.size:
                raise SnapshotDamaged(
                    step, name, rel, f"has {st.st_size} bytes, recorded "
                    f"{item.size}")
            fd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                digest, copied, hash_ns = fsops.copy_fd_verified(
                    src_fd, fd, item.size)
                self.hash_ns.append(hash_ns)
                if digest != item.obj or copied != item.size:
                    raise SnapshotDamaged(
                        step, name, rel, "does not match its recorded hash")
                os.fchmod(fd, stat.S_IMODE(item.mode))
                os.utime(fd, ns=(item.mtime_ns, item.mtime_ns))
                st = os.fstat(fd)
            finally:
                os.close(fd)
        finally:
            os.close(src_fd)
        return item._replace(live=entry.live_key(st),
                             racy=entry.is_racy(st.st_mtime_ns, t0))

    def _restore_packed(self, step, name, rel, dst, item: Entry, blob,
                        t0) -> Entry:
        """:meth:`_restore_file` for an object in a pack: one ``pread``
        from the pack, hashed, then written."""
        try:
            data = read_blob(blob, self._pack_fd(blob.pack))
        except OSError:
            raise SnapshotDamaged(step, name, rel, "is missing (its pack "
                                  "cannot be read)") from None
        started = time.perf_counter_ns()
        problem = blob_problem(data, item.obj, item.size)
        self.hash_ns.append(time.perf_counter_ns() - started)
        if problem is not None:
            raise SnapshotDamaged(step, name, rel, problem)
        fd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fsops.write_all(fd, data)
            os.fchmod(fd, stat.S_IMODE(item.mode))
            os.utime(fd, ns=(item.mtime_ns, item.mtime_ns))
            st = os.fstat(fd)
        finally:
            os.close(fd)
        return item._replace(live=entry.live_key(st),
                             racy=entry.is_racy(st.st_mtime_ns, t0))

    def _pack_fd(self, path: str) -> int:
        """One open fd per pack for all copy threads (``pread`` needs no
        shared offset)."""
        with self._pack_lock:
            fd = self._pack_fds.get(path)
            if fd is None:
                fd = self._pack_fds[path] = os.open(
                    path, os.O_RDONLY | os.O_CLOEXEC)
            return fd

    def _close_packs(self) -> None:
        with self._pack_lock:
            for fd in self._pack_fds.values():
                os.close(fd)
            self._pack_fds = {}


def swap_into_place(tmp: Path, target: Path) -> None:
    """Rename an assembled part to its target; an existing target goes
    (an empty dir is just dropped, anything else renamed away first)."""
    if os.path.lexists(target):
        if target.is_dir() and not target.is_symlink():
            try:
                target.rmdir()  # empty dir: just drop it
                os.rename(tmp, target)
                return
            except OSError:
                pass
        trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
        os.rename(target, trash)
        os.rename(tmp, target)
        fsops.rmtree(trash)
    else:
        os.rename(tmp, target)
