# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Verified, content-addressed snapshots of the interim results of one job.

After step N of a process chain has completed, the worker saves a snapshot
of several directories ("parts": the GRASS temporary mapset, the temporary
file directory, optionally further mapsets). A later resume restores the
snapshot of some step into fresh directories and continues from step N + 1.

Layout below one job root (``{grass_resource_dir}/{user_id}/interim/{resource_id}``)::

    root/objects/ab/cdef…            file contents, named by their xxh3-128 hash
    root/steps/000003/manifest.json  snapshot after step 3 (0-based execution
                                     order): a *delta* on its base snapshot
    root/.staging-<host>-<pid>-<hex>/ manifest being committed, invisible
    root/objects/.tmp-<host>-<pid>-<hex> object being written, invisible
    root/job.json                    the job record (atomic write)

Design rules (the *why*):

* **A step costs what it changed.** A snapshot's manifest lists only the
  entries that differ from its base snapshot (the one the same process saved
  or restored before), and only files whose content is new are written, once,
  as objects. Unchanged files cost one ``lstat`` in the walk and nothing on
  disk, whatever the mapset's size (restic/borg store data the same way).
  The walk is GNU ``find`` running beside this process
  (:mod:`.live_listing`); a Python walk is the fallback.
* **Exact change detection without hashing the mapset.** A live file is
  unchanged when its stat (size, mtime_ns, inode, ctime_ns, mode) equals the
  one recorded in memory when it was last saved or restored. A file written
  within the clock tick of that moment could be rewritten without a visible
  stat change ("racy git"); such entries are re-hashed (:func:`_is_racy`).
* **Never shared with the live mapset.** Objects are copies; GRASS rewrites
  WIND, VAR, sqlite.db in place, which would change an "immutable" snapshot.
* **Content, never timestamps, decides what is used.** A restore copies
  every object through this process and hashes its bytes as they pass
  (xxh3-128, the object's name): a byte that differs raises
  :class:`SnapshotDamaged` before anything is put into place, whatever the
  file's stat says (bit rot, ``cp -p`` or a backup restored over a stored
  file keep the mtime). Manifests and the job record are sealed JSON
  (:mod:`.layout`): their bytes are checked against their seal on every
  read. A cheap check (:meth:`SnapshotStore.damage`: manifests, and every
  object present with its recorded size) serves planning; the dry run
  reads every object once (``damage(step, content=True)``).
* **Crash safety.** Objects are written under temporary names, flushed, and
  renamed; a manifest is written, fsynced and its step dir renamed into
  ``steps/`` last. Readers only see snapshots whose manifest and whole base
  chain are valid. A killed save leaves only unreferenced objects and
  staging dirs, which :meth:`SnapshotStore.cleanup_stale` and
  :meth:`SnapshotStore.collect_garbage` remove.
* One writer per job root at a time (a job is run by one worker); readers
  may run concurrently.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import socket
import stat
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_IFDIR, S_IFLNK, S_ISDIR, S_ISLNK, S_ISREG
from typing import NamedTuple, Union

import xxhash

from . import live_listing
from .job_record import read_job_record
from .layout import (
    INTERIM_DIR,
    JOB_FILE,
    MANIFEST_NAME,
    OBJECTS_DIR,
    STEP_DIR_RE,
    STEPS_DIR,
    SealBroken,
    SealingWriter,
    unseal,
)

__all__ = [
    "SnapshotStore",
    "SnapshotInfo",
    "SnapshotError",
    "SnapshotBudgetExceeded",
    "SnapshotNoSpace",
    "SnapshotDamaged",
    "SnapshotNotFound",
    "interim_root",
    "list_job_roots",
    "EXCLUDED_FILE_NAMES",
    "EXCLUDED_DIR_NAMES",
    "INTERIM_DIR",
    "JOB_FILE",
    "MANIFEST_NAME",
    "STEPS_DIR",
    "OBJECTS_DIR",
]

PathLike = Union[str, "os.PathLike[str]"]

MANIFEST_VERSION = 2
STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"
OBJECT_TMP_PREFIX = ".tmp-"

#: Never snapshotted: the GRASS mapset lock belongs to the running session,
#: restoring it would make GRASS believe the mapset is in use.
EXCLUDED_FILE_NAMES = frozenset({".gislock"})
#: GRASS' per-session scratch directories (``<mapset>/.tmp/<host>/...``).
EXCLUDED_DIR_NAMES = frozenset({".tmp"})

#: Staging/temporary names of another host (shared resource dir) are only
#: removed once older than this many seconds.
STALE_SECONDS = 300
#: Those of a *live* local pid (could be pid reuse) after this.
STALE_LIVE_PID_SECONDS = 24 * 3600
#: Free space kept on the file system when saving (bytes, at most this and
#: at most 5 % of the file system): a snapshot never fills the disk the
#: running job (exports, other jobs) still writes to.
FREE_SPACE_RESERVE = 64 * 1024 * 1024

#: The reason of a step dir without manifest (a step never saved).
MISSING = "is missing"

#: Up to this many new objects are fsynced one by one, more with syncfs.
FSYNC_EACH_MAX = 64

_STEP_DIR_RE = STEP_DIR_RE
_TEMP_NAME_RE = re.compile(
    r"^\.(?:staging|trash|tmp)-(?P<host>.*)-(?P<pid>[0-9]+)-[0-9a-f]{32}$")
_CHUNK = 1 << 20
#: Threads copying files during a restore (the copy syscalls drop the GIL).
COPY_THREADS = 4

_HOST = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname() or "host")
# staging dirs currently being written by this process (never "stale")
_ACTIVE_TEMP_DIRS: set[str] = set()


# --------------------------------------------------------------------------
# errors and result types
# --------------------------------------------------------------------------


class SnapshotError(Exception):
    """Base class of snapshot store errors."""


class SnapshotNotFound(SnapshotError, KeyError):
    """The requested step has no (valid) snapshot."""

    def __init__(self, step: int):
        super().__init__(step)
        self.step = step

    def __str__(self) -> str:
        return f"no snapshot for step {self.step}"


class SnapshotBudgetExceeded(SnapshotError):
    """Saving would write more new bytes than allowed; nothing was written."""

    def __init__(self, needed: int, budget: int):
        super().__init__(needed, budget)
        self.needed = needed
        self.budget = budget

    def __str__(self) -> str:
        return (f"snapshot needs {self.needed} bytes of new storage, "
                f"budget is {self.budget} bytes")


class SnapshotNoSpace(SnapshotError):
    """The file system is (nearly) full; nothing of the snapshot remains."""

    def __str__(self) -> str:
        return f"no space left for the interim result: {self.args[0]}"


class SnapshotDamaged(SnapshotError):
    """A stored file does not match its record (missing, truncated,
    overwritten): the snapshot must not be restored."""

    def __init__(self, step: int, part: str, relpath: str, reason: str):
        super().__init__(step, part, relpath, reason)
        self.step, self.part, self.relpath, self.reason = (
            step, part, relpath, reason)

    def __str__(self) -> str:
        return (f"interim result of step {self.step} is damaged: "
                f"{self.part}/{self.relpath} {self.reason}")


@dataclass
class SnapshotInfo:
    """A committed (visible) snapshot."""

    step: int
    path: Path
    meta: dict
    created: float
    parts: list[str]
    id: str = ""


# --------------------------------------------------------------------------
# entries: what a manifest and the in-memory state record per path
# --------------------------------------------------------------------------


class Entry(NamedTuple):
    """One path of a part.

    ``kind`` is ``f`` (file), ``d`` (directory) or ``l`` (symlink). Files
    record their content (``obj``: xxh3-128 hex of the bytes) and the stat
    the object had when it was stored (``oino``, ``octime``: kept in the
    format, never trusted: a timestamp cannot prove bytes are intact, the
    hash is checked on every restore). ``live`` is the stat key of
    the live file (in memory only, never written) and ``racy`` whether it
    was taken too close to a write to be trusted.
    """

    kind: str
    mode: int
    size: int = 0
    mtime_ns: int = 0
    obj: str = ""
    oino: int = 0
    octime: int = 0
    target: str = ""
    live: tuple = ()
    racy: bool = False

    def content(self) -> tuple:
        """What a restore reproduces: a change here belongs in a delta."""
        return (self.kind, self.mode, self.size, self.mtime_ns, self.obj,
                self.target)

    def to_json(self) -> list:
        if self.kind == "f":
            return ["f", self.mode, self.size, self.mtime_ns, self.obj,
                    self.oino, self.octime]
        if self.kind == "l":
            return ["l", self.mode, self.target]
        return ["d", self.mode]

    @classmethod
    def from_json(cls, doc) -> Entry:
        """Parse a manifest entry; ValueError for anything malformed."""
        if not isinstance(doc, list) or not doc:
            raise ValueError("entry is not a list")
        kind = doc[0]
        # ``type(v) is int`` (not isinstance): bool is no int here, and a
        # manifest of 100,000 entries is parsed in a fraction of a second
        if kind == "f" and len(doc) == 7:
            _, mode, size, mtime_ns, obj, oino, octime = doc
            if (type(mode) is int and type(size) is int  # noqa: E721
                    and type(mtime_ns) is int and type(oino) is int  # noqa: E721
                    and type(octime) is int  # noqa: E721
                    and _is_object_name(obj)):
                return cls("f", mode, size, mtime_ns, obj, oino, octime)
        if kind == "l" and len(doc) == 3 and _is_int(doc[1]) \
                and isinstance(doc[2], str):
            return cls("l", doc[1], target=doc[2])
        if kind == "d" and len(doc) == 2 and _is_int(doc[1]):
            return cls("d", doc[1])
        raise ValueError(f"malformed entry {doc!r:.80}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_object_name(value) -> bool:
    """32 hex digits: an object name can never point outside objects/."""
    return (isinstance(value, str) and len(value) == 32 and value.isascii()
            and value.isalnum())


#: part name -> {relpath: Entry}
State = dict


# --------------------------------------------------------------------------
# path helpers
# --------------------------------------------------------------------------


def _check_component(value: str, what: str) -> str:
    """Reject ids that could escape the resource dir (they come from URLs)."""
    value = str(value)
    if (not value or value in (".", "..") or "/" in value or "\\" in value
            or "\0" in value):
        raise ValueError(f"invalid {what}: {value!r}")
    return value


def interim_root(resource_dir: PathLike, user_id: str, resource_id: str) -> Path:
    """Job root ``{resource_dir}/{user_id}/interim/{resource_id}``."""
    return (Path(resource_dir) / _check_component(user_id, "user id")
            / INTERIM_DIR / _check_component(resource_id, "resource id"))


def list_job_roots(resource_dir: PathLike, user_id: str) -> list[Path]:
    """The job roots of a user (``{resource_dir}/{user_id}/interim/*``),
    sorted; hidden entries (being removed) and non-directories skipped."""
    base = Path(resource_dir) / _check_component(user_id, "user id") / INTERIM_DIR
    try:
        with os.scandir(base) as it:
            return sorted(Path(e.path) for e in it if not e.name.startswith(".")
                          and e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _check_part_names(names: Iterable[str]) -> None:
    names = sorted(names)
    for name in names:
        pieces = str(name).split("/")
        if not name or any(p in ("", ".", "..") or "\0" in p or "\\" in p
                           for p in pieces):
            raise ValueError(f"invalid part name: {name!r}")
    # "mapsets" and "mapsets/x" would nest one restored tree in the other
    for a in names:
        for b in names:
            if a != b and b.startswith(a + "/"):
                raise ValueError(f"part names {a!r} and {b!r} overlap")


def _step_dirname(step: int) -> str:
    if not _is_int(step) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    return f"{step:06d}"


# --------------------------------------------------------------------------
# clock / racy rule
# --------------------------------------------------------------------------

_CLOCK_COARSE = getattr(time, "CLOCK_REALTIME_COARSE", None)


def _now_coarse_ns() -> int:
    """Wall clock as the kernel uses it for file timestamps.

    Linux stamps files from the *coarse* realtime clock, which may lag
    ``time.time_ns()`` by up to one tick; reading the same clock avoids a
    file written "after" t0 getting an mtime that looks older than t0.
    """
    if _CLOCK_COARSE is not None:
        return time.clock_gettime_ns(_CLOCK_COARSE)
    return time.time_ns()


def _coarse_res_ns() -> int:
    if _CLOCK_COARSE is not None:
        return int(time.clock_getres(_CLOCK_COARSE) * 1e9)
    return 1_000_000


#: Minimum window before t0 in which an mtime is considered racy.
RACY_MIN_MARGIN_NS = 10_000_000
_RACY_MARGIN_NS = max(2 * _coarse_res_ns(), RACY_MIN_MARGIN_NS)


def _is_racy(mtime_ns: int, t0_ns: int) -> bool:
    """Could the file be rewritten later *without* its stat changing?

    ``t0_ns`` is read before any file of the save is stat-ed. A write after
    t0 gets an mtime >= t0 (same coarse clock), so only files whose mtime is
    within the clock's granularity of t0 (or in the future: clock skew on
    network file systems) can hide a later rewrite behind an identical stat.
    A timestamp that is a whole second suggests a file system with 1 s (or,
    FAT, 2 s) granularity; then a 2 s window is used in addition.
    """
    margin = _RACY_MARGIN_NS
    if mtime_ns % 1_000_000_000 == 0:
        margin += 2_000_000_000
    return mtime_ns >= t0_ns - margin


def _live_key(st: os.stat_result) -> tuple:
    """The stat fields that must be equal for a file to count as unchanged."""
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns,
            st.st_mode)


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


# --------------------------------------------------------------------------
# low level file operations (module level so tests can patch them)
# --------------------------------------------------------------------------


def _hash_file(path: str) -> str:
    """xxh3-128 of a file's bytes (hex)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashing(src: str, dst: str) -> str:
    """Copy ``src`` to the new file ``dst`` (mode 0o444), hashing the bytes
    as they pass: the content check costs no extra read."""
    digest = xxhash.xxh3_128()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(src, "rb", buffering=0) as fsrc:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            while n := fsrc.readinto(buf):
                digest.update(view[:n])
                done = 0
                while done < n:
                    done += os.write(fd, view[done:n])
        finally:
            os.close(fd)
    return digest.hexdigest()


_BUFFERS = threading.local()


def _copy_buffer() -> bytearray:
    """One copy buffer per thread (a new 1 MiB buffer per file would cost
    more than copying 100,000 small files)."""
    buf = getattr(_BUFFERS, "buf", None)
    if buf is None:
        buf = _BUFFERS.buf = bytearray(_CHUNK)
    return buf


def _copy_fd_hashing(fd_src: int, fd_dst: int | None
                     ) -> tuple[str, int, int]:
    """Copy the rest of ``fd_src`` to ``fd_dst`` through this process,
    hashing the bytes as they pass: the bytes written are the bytes
    hashed, so a restore checks every byte it puts into a live mapset for
    the cost of the copy (xxh3 runs at memory speed and drops the GIL).
    ``fd_dst=None`` only hashes (the read-back of a kernel copy).
    Returns ``(xxh3-128 hex, bytes, ns spent hashing)``."""
    digest = xxhash.xxh3_128()
    buf = _copy_buffer()
    view = memoryview(buf)
    total = hashing = 0
    clock = time.perf_counter_ns
    while n := os.readv(fd_src, [buf]):
        chunk = view[:n]
        started = clock()
        digest.update(chunk)
        hashing += clock() - started
        done = 0 if fd_dst is not None else n
        while done < n:
            done += os.write(fd_dst, chunk[done:])
        total += n
    started = clock()
    hexdigest = digest.hexdigest()
    return hexdigest, total, hashing + clock() - started


def _copy_fd_verified(fd_src: int, fd_dst: int, size: int
                      ) -> tuple[str, int, int]:
    """Copy ``fd_src`` to the new file ``fd_dst`` and hash the bytes the
    destination holds: small files through this process (one read, hashed
    as they pass), large ones in the kernel (``copy_file_range``, no copy
    through user space) and then read back from the page cache and hashed
    (the bytes now in the live mapset). Returns ``(xxh3-128 hex, bytes,
    ns spent hashing)``."""
    if size <= _CHUNK:
        return _copy_fd_hashing(fd_src, fd_dst)
    try:
        while os.copy_file_range(fd_src, fd_dst, 1 << 30):
            pass
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL,
                             errno.EOPNOTSUPP, errno.EBADF, errno.EPERM):
            raise
        os.lseek(fd_src, 0, os.SEEK_SET)
        os.lseek(fd_dst, 0, os.SEEK_SET)
        os.ftruncate(fd_dst, 0)
        return _copy_fd_hashing(fd_src, fd_dst)
    os.lseek(fd_dst, 0, os.SEEK_SET)
    return _copy_fd_hashing(fd_dst, None)


def _fsync_path(path: PathLike, directory: bool = False) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_LIBC = None


def _syncfs(path: PathLike) -> None:
    """Flush the file system holding ``path`` (one syscall instead of one
    fsync per new object: a step adding 10,000 small files stays fast)."""
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _LIBC.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _write_sealed(handle, data: dict, writer=None) -> None:
    """``data`` as sealed JSON (see :mod:`.layout`) into a text handle."""
    sealing = SealingWriter(handle)
    if writer is not None:
        writer(sealing, data)
    else:
        sealing.write(json.dumps(data, separators=(",", ":")))
    sealing.close_seal()


def _write_json_atomic(path: Path, data: dict, writer=None) -> None:
    """Write ``data`` as sealed JSON: tmp file in the same dir, fsync,
    os.replace."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            _write_sealed(handle, data, writer)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_path(path.parent, directory=True)


def rmtree(path: PathLike) -> None:
    """Remove a tree; read-only dirs (GRASS writes some) are made writable,
    entries removed concurrently are ignored."""

    def onexc(func, failed, exc):
        if isinstance(exc, FileNotFoundError):
            return
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            func(failed)
        except FileNotFoundError:
            pass

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onexc=onexc)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _unlink_quietly(path: PathLike) -> None:
    """Remove what a failed write left; it may not exist."""
    try:
        os.unlink(path)
    except OSError:
        pass


def _is_no_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------


@dataclass
class _Manifest:
    """A parsed, validated manifest: the delta of one snapshot."""

    step: int
    id: str
    base: int | None
    base_id: str | None
    created: float
    meta: dict
    # part -> (mode, {rel: Entry} changed, [rel] removed)
    parts: dict
    path: Path

    def info(self) -> SnapshotInfo:
        return SnapshotInfo(step=self.step, path=self.path, meta=dict(self.meta),
                            created=self.created, parts=sorted(self.parts),
                            id=self.id)


def _parse_manifest(doc, step: int, path: Path) -> _Manifest:
    """Validate a manifest document; ValueError for anything damaged."""
    if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION:
        raise ValueError("not a manifest of this version")
    if doc.get("step") != step:
        raise ValueError("manifest of another step")
    base, base_id = doc.get("base"), doc.get("base_id")
    if base is not None and not (_is_int(base) and 0 <= base < step
                                 and isinstance(base_id, str)):
        raise ValueError("malformed base")
    meta, parts = doc.get("meta"), doc.get("parts")
    if not isinstance(meta, dict) or not isinstance(parts, dict):
        raise ValueError("meta or parts is not an object")
    parsed = {}
    for name, part in parts.items():
        if not isinstance(part, dict) or not _is_int(part.get("mode")):
            raise ValueError(f"part {name!r} is malformed")
        changed, removed = part.get("changed"), part.get("removed", [])
        if not isinstance(changed, dict) or not isinstance(removed, list):
            raise ValueError(f"part {name!r} is malformed")
        entries = {str(rel): Entry.from_json(e) for rel, e in changed.items()}
        parsed[name] = (part["mode"], entries, [str(r) for r in removed])
    _check_part_names(parsed)
    return _Manifest(step=step, id=str(doc.get("id") or ""), base=base,
                     base_id=base_id, created=float(doc.get("created") or 0),
                     meta=meta, parts=parsed, path=path)


#: Entries encoded per ``json.dumps`` call when a manifest is written.
_MANIFEST_CHUNK = 4096


def _write_manifest(handle, manifest: dict) -> None:
    """Write a manifest whose parts hold :class:`Entry` objects, encoding
    the entries in chunks: a step that adds 100,000 files never holds their
    JSON (lists, then one 12 MB string) in memory at once."""
    head = {k: v for k, v in manifest.items() if k != "parts"}
    handle.write(json.dumps(head, separators=(",", ":"))[:-1])
    handle.write(',"parts":{')
    for number, (name, part) in enumerate(manifest["parts"].items()):
        handle.write(("," if number else "") + json.dumps(name) + ':{"mode":'
                     + str(part["mode"]) + ',"removed":'
                     + json.dumps(part["removed"]) + ',"changed":{')
        items = list(part["changed"].items())
        for start in range(0, len(items), _MANIFEST_CHUNK):
            chunk = {rel: e.to_json()
                     for rel, e in items[start:start + _MANIFEST_CHUNK]}
            handle.write(("," if start else "")
                         + json.dumps(chunk, separators=(",", ":"))[1:-1])
        handle.write("}}")
    handle.write("}}")


def _delta(old: dict, new: dict, fresh=None) -> tuple[dict, list]:
    """Entries of ``new`` whose content differs from ``old``, and the paths
    ``old`` has that ``new`` lacks. ``fresh``: the only paths of ``new``
    that may differ (the others hold ``old``'s very entry objects)."""
    candidates = new if fresh is None else fresh
    changed = {rel: e for rel in candidates
               if (prev := old.get(rel)) is not (e := new[rel])
               and (prev is None or prev.content() != e.content())}
    removed = sorted(old.keys() - new.keys())
    return changed, removed


def _fold(chain: list[_Manifest]) -> tuple[dict, dict]:
    """Apply a chain of deltas (oldest first): ``({part: {rel: Entry}},
    {part: mode})``. A part missing from a manifest is gone from then on."""
    state: dict = {}
    modes: dict = {}
    for manifest in chain:
        for name in list(state):
            if name not in manifest.parts:
                del state[name], modes[name]
        for name, (mode, changed, removed) in manifest.parts.items():
            entries = state.setdefault(name, {})
            entries.update(changed)
            for rel in removed:
                entries.pop(rel, None)
            modes[name] = mode
    return state, modes


# --------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------


@dataclass
class _Live:
    """What the writing process knows about the live dirs: the full state
    of the snapshot it last saved or restored (its base for the next
    delta), with the live stat of each file then."""

    step: int
    id: str
    state: dict  # part -> {rel: Entry}
    modes: dict  # part -> mode of the part's top dir
    sources: dict  # part -> realpath of the live dir
    objects: dict = field(default_factory=dict)  # obj -> (oino, octime)
    # objects dir of another job's store the state's objects are in (a
    # restore for reuse across jobs); the next save takes them over
    foreign: str | None = None


@dataclass
class _SavePlan:
    state: dict
    modes: dict
    sources: dict
    new_files: list  # (part, rel, src path)
    bytes_needed: int
    # part -> paths whose entry is not the object of the previous state
    fresh: dict = field(default_factory=dict)
    files: int = 0


class SnapshotStore:
    """Snapshots of one job (one actinia resource id) below ``root``.

    ``root`` need not exist; it is created by the first write.
    """

    def __init__(self, root: PathLike):
        self.root = Path(root)
        self._live: _Live | None = None
        # (step, manifest stat) -> parsed manifest; dropped when saving and
        # after a restore so that it never adds to a job's RSS
        self._parsed: dict = {}
        # str, not Path: object_path() runs once per file of a mapset
        self._objects = os.path.join(os.fspath(self.root), OBJECTS_DIR)
        # ns spent hashing per restored file (the copy threads append)
        self._hash_ns: list[int] = []
        #: what the last restore verified: ``{"bytes", "files",
        #: "verify_seconds"}`` (CPU time hashing, summed over the threads)
        self.last_restore: dict = {}

    # ------------------------------------------------------------- paths
    @property
    def steps_dir(self) -> Path:
        return self.root / STEPS_DIR

    @property
    def objects_dir(self) -> Path:
        return self.root / OBJECTS_DIR

    def step_path(self, step: int) -> Path:
        return self.steps_dir / _step_dirname(step)

    def object_path(self, obj: str) -> str:
        return f"{self._objects}/{obj[:2]}/{obj[2:]}"

    # ------------------------------------------------------------- readers
    def _read_manifest(self, step: int) -> _Manifest | None:
        """The manifest of ``step`` or None (see :meth:`_manifest_problem`)."""
        manifest, _problem = self._load_manifest(step)
        return manifest

    def _load_manifest(self, step: int) -> tuple[_Manifest | None, str]:
        """Read, check the seal of and parse a manifest; parsed once per
        process while its *bytes* are the same (a PUT lists, verifies and
        plans from the same manifests). ``(None, why)`` when it is missing
        or damaged."""
        path = self.step_path(step)
        try:
            with open(path / MANIFEST_NAME, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None, MISSING
        except OSError as exc:
            return None, f"cannot be read ({exc.strerror})"
        key = (step, len(raw), xxhash.xxh3_128_hexdigest(raw))
        if key in self._parsed:
            return self._parsed[key], ""
        try:
            manifest = _parse_manifest(unseal(raw), step, path)
        except SealBroken as exc:
            return None, str(exc)
        except (ValueError, RecursionError, TypeError) as exc:
            return None, f"is not a valid manifest ({str(exc)[:80]})"
        self._parsed[key] = manifest
        return manifest, ""

    def _candidate_steps(self) -> list[int]:
        try:
            with os.scandir(self.steps_dir) as it:
                return sorted(int(e.name) for e in it
                              if _STEP_DIR_RE.match(e.name)
                              and e.is_dir(follow_symlinks=False))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _chain(self, step: int, cache: dict | None = None) -> list[_Manifest] | None:
        """The manifests from the full one up to ``step`` (oldest first), or
        None when any link is missing or does not match its base id."""
        return self._chain_checked(step, cache)[0]

    def _chain_checked(self, step: int, cache: dict | None = None
                       ) -> tuple[list[_Manifest] | None,
                                  SnapshotDamaged | None]:
        """:meth:`_chain` and, for None, what is wrong where (for notices;
        ``reason`` is :data:`MISSING` when the step has no manifest)."""
        cache = {} if cache is None else cache
        chain, want_id = [], None
        current: int | None = step
        while current is not None:
            if current not in cache:
                cache[current] = self._load_manifest(current)
            manifest, problem = cache[current]
            if manifest is None or (want_id is not None
                                    and manifest.id != want_id):
                if manifest is not None:
                    problem = ("is not the base this interim result was "
                               "saved on")
                elif problem == MISSING and current != step:
                    problem = "is missing (the base of this interim result)"
                return None, SnapshotDamaged(
                    step, STEPS_DIR, f"{_step_dirname(current)}/"
                    f"{MANIFEST_NAME}", problem)
            chain.append(manifest)
            current, want_id = manifest.base, manifest.base_id
        chain.reverse()
        return chain, None

    def list(self) -> list[SnapshotInfo]:
        """All committed snapshots sorted by step.

        Staging dirs, step dirs without a valid manifest (crash, damage) and
        snapshots whose base chain is broken are ignored.
        """
        cache: dict = {}
        out = []
        for step in self._candidate_steps():
            chain = self._chain(step, cache)
            if chain is not None:
                out.append(chain[-1].info())
        return out

    def steps(self) -> list[int]:
        """Steps with a committed snapshot, ascending."""
        return [info.step for info in self.list()]

    def get(self, step: int) -> SnapshotInfo | None:
        """Snapshot taken after ``step`` or ``None``."""
        chain = self._chain(step)
        return None if chain is None else chain[-1].info()

    def latest(self) -> SnapshotInfo | None:
        """Snapshot with the highest step or ``None``."""
        cache: dict = {}
        for step in reversed(self._candidate_steps()):
            chain = self._chain(step, cache)
            if chain is not None:
                return chain[-1].info()
        return None

    def state(self, step: int) -> tuple[dict, dict]:
        """The full state of snapshot ``step``: ``({part: {rel: Entry}},
        {part: mode})``, folded from its chain of deltas."""
        chain = self._chain(step)
        if chain is None:
            raise SnapshotNotFound(step)
        return _fold(chain)

    def fingerprints(self) -> dict[int, str]:
        """Step -> the chained fingerprint of the state its interim result
        holds (interim results without a complete record are ignored)."""
        result = {}
        for info in self.list():
            fps = info.meta.get("fingerprints")
            if isinstance(fps, list) and len(fps) == info.step + 1 \
                    and isinstance(fps[-1], str):
                result[info.step] = fps[-1]
        return result

    def damage(self, step: int, content: bool = False) -> str | None:
        """What is wrong with the interim result of ``step`` (``None``:
        intact), for plans that must not restore damaged data: its
        manifests (sealed, so always by content) and every object's
        presence and size; with ``content`` also every object's bytes
        against its hash (one read of the interim result: a dry run; a
        restore checks the bytes as it copies them)."""
        try:
            self.verify(step, content=content)
        except SnapshotError as exc:
            return f"The {exc}." if isinstance(exc, SnapshotDamaged) else \
                f"The interim result of step {step} is gone."
        return None

    def survey(self, object_sizes: Mapping[str, int] | None = None
               ) -> tuple[list[int], dict[int, str]]:
        """The one definition of a *committed interim result*, shared by
        the store's readers and the resource storage listing: a step dir
        whose manifest and whole base chain are sealed and valid and whose
        objects all exist with their recorded sizes. Returns the committed
        steps (ascending) and ``{step: why}`` for every other step dir.
        Objects' bytes are checked when restored (and by a dry run).

        Each manifest's own delta is checked once (a step's state is made
        of the deltas of its chain); ``object_sizes`` (``{object name:
        size}`` of the regular files below ``objects/``, from a walk the
        caller makes anyway) saves the ``lstat`` per object."""
        cache: dict = {}
        delta_problem: dict = {}  # manifest step -> SnapshotDamaged | None
        steps, damaged = [], {}
        for step in self._candidate_steps():
            chain, problem = self._chain_checked(step, cache)
            if chain is None:
                damaged[step] = str(problem)
                continue
            for manifest in chain:
                if manifest.step not in delta_problem:
                    delta_problem[manifest.step] = self._delta_problem(
                        manifest, object_sizes)
                problem = delta_problem[manifest.step]
                if problem is not None:
                    damaged[step] = str(SnapshotDamaged(
                        step, problem.part, problem.relpath, problem.reason))
                    break
            else:
                steps.append(step)
        return steps, damaged

    def _delta_problem(self, manifest: _Manifest, object_sizes
                       ) -> SnapshotDamaged | None:
        """The first object of a manifest's delta that is missing or of
        the wrong size, as :class:`SnapshotDamaged` (None: all present)."""
        for name, (_mode, changed, _removed) in manifest.parts.items():
            for rel, entry in changed.items():
                if entry.kind != "f":
                    continue
                if object_sizes is not None:
                    size = object_sizes.get(entry.obj)
                    if size == entry.size:
                        continue
                    return SnapshotDamaged(
                        manifest.step, name, rel, "is missing" if size is None
                        else f"has {size} bytes, recorded {entry.size}")
                try:
                    self._check_object(manifest.step, name, rel, entry,
                                       False)
                except SnapshotDamaged as exc:
                    return exc
        return None

    # ------------------------------------------------------------- job record
    def write_job(self, record: dict) -> None:
        """Atomically replace ``job.json`` (tmp file + fsync + os.replace)."""
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.root / JOB_FILE, record)

    def read_job(self) -> dict | None:
        """The intact fields of ``job.json`` (see :mod:`.job_record`: a
        damaged record or field counts as missing), ``None`` without one."""
        record = read_job_record(self.root)
        return record.data if record.found and record.data else None

    # ------------------------------------------------------------- save
    def save(
        self,
        step: int,
        parts: Mapping[str, PathLike],
        meta: dict | None = None,
        *,
        budget_bytes: int | None = None,
        full: bool = False,
    ) -> SnapshotInfo:
        """Snapshot the live dirs ``parts`` as the state after ``step``.

        Only files whose content is not stored yet are written (as objects);
        the manifest is a delta on the snapshot this store last saved or
        restored (``full=True``: a self-contained manifest). Raises
        :class:`SnapshotBudgetExceeded` (more new bytes than
        ``budget_bytes``) or :class:`SnapshotNoSpace` (file system full)
        with nothing of this snapshot left behind. Re-saving an existing
        step replaces it atomically.

        ``meta`` of the returned snapshot additionally holds the statistics
        ``bytes_copied``, ``files_copied``, ``files_unchanged``,
        ``entries_written`` and ``seconds``.
        """
        started = time.monotonic()
        self._parsed.clear()
        dirname = _step_dirname(step)
        _check_part_names(parts)
        meta = dict(meta or {})
        json.dumps(meta)  # fail early on non-serialisable meta
        t0 = _now_coarse_ns()  # before any stat (racy rule)
        plan = self._plan(parts, t0)
        if budget_bytes is not None and plan.bytes_needed > budget_bytes:
            raise SnapshotBudgetExceeded(plan.bytes_needed, budget_bytes)
        self._check_free_space(plan.bytes_needed)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.cleanup_stale()
            written = self._store_objects(plan)
        except OSError as exc:
            if _is_no_space(exc):
                raise SnapshotNoSpace(str(exc)) from exc
            raise
        # the paths of 100,000 new files are no longer needed: free them
        # before the manifest is built (the job's peak memory)
        new_files = len(plan.new_files)
        plan.new_files = []
        base = self._live
        if full or base is None or base.step >= step or base.foreign:
            base = None  # a self-contained manifest
        manifest = self._manifest_doc(step, plan, base, meta)
        meta.update(
            bytes_copied=written[1], files_copied=written[0],
            files_unchanged=plan.files - new_files,
            entries_written=sum(len(p["changed"]) + len(p["removed"])
                                for p in manifest["parts"].values()),
        )
        meta["seconds"] = round(time.monotonic() - started, 6)
        manifest["meta"] = meta
        try:
            self._commit(manifest, dirname)
        except OSError as exc:
            if _is_no_space(exc):
                raise SnapshotNoSpace(str(exc)) from exc
            raise
        self._live = _Live(step, manifest["id"], plan.state, plan.modes,
                           plan.sources, written[2])
        return SnapshotInfo(step=step, path=self.step_path(step), meta=meta,
                            created=manifest["created"],
                            parts=sorted(plan.state), id=manifest["id"])

    def _plan(self, parts: Mapping[str, PathLike], t0: int) -> _SavePlan:
        """Walk the live dirs; reuse the entries of files whose stat is
        unchanged since the last save/restore of this store."""
        plan = _SavePlan({}, {}, {}, [], 0)
        for name in sorted(parts):
            src = os.fspath(parts[name])
            if not os.path.isdir(src):
                raise FileNotFoundError(
                    errno.ENOENT, f"part {name!r}: not a directory", src)
            real = os.path.realpath(src)
            known = {}
            if self._live is not None and self._live.sources.get(name) == real:
                known = self._live.state.get(name, {})
            plan.modes[name] = os.stat(src).st_mode
            plan.sources[name] = real
            plan.state[name] = self._plan_part(name, src, t0, known, plan)
            plan.files += sum(e.kind == "f" for e in plan.state[name].values())
        return plan

    def _plan_part(self, name, src, t0, known, plan) -> dict:
        """Walk one live dir with GNU find (:mod:`.live_listing`), or in
        Python where find cannot list it; what ``find`` added to ``plan``
        before failing is undone first."""
        fresh = plan.fresh.setdefault(name, [])
        undo = (len(fresh), len(plan.new_files), plan.bytes_needed)
        try:
            return self._plan_part_listed(name, src, t0, known, plan)
        except live_listing.ListingUnavailable:
            del fresh[undo[0]:]
            del plan.new_files[undo[1]:]
            plan.bytes_needed = undo[2]
            return self._plan_part_walked(name, src, t0, known, plan)

    def _plan_part_listed(self, name, src, t0, known, plan) -> dict:
        """The hot loop of every save at many files: ``find`` stats, this
        process compares. An unchanged file (equal stat key, not racy) costs
        a dict lookup and a string comparison and reuses its entry object;
        anything else goes through :meth:`_listed_file`."""
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
                            self._listed_file(name, src, rel, key, prev, t0,
                                              plan, entries)
                    elif kind == "d":
                        _add_dir(entries, fresh, rel, prev,
                                 S_IFDIR | int(key.split(" ", 2)[1], 8))
                    elif kind == "l":
                        _add_link(entries, fresh, rel, os.path.join(src, rel),
                                  S_IFLNK | int(key.split(" ", 2)[1], 8))
        finally:
            listing.close()
        return entries

    def _listed_file(self, name, src, rel, key, prev, t0, plan, entries):
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
        racy = _is_racy(st.st_mtime_ns, t0)
        if prev is not None and prev.kind == "f" and (
                prev.live == key or prev.live == _live_key(st)) and (
                not prev.racy or self._racy_unchanged(src, rel, prev)):
            entries[rel] = prev._replace(live=key, racy=racy)
            return
        _add_new_file(plan, entries, name, rel, path, st, key, racy)

    def _plan_part_walked(self, name, src, t0, known, plan) -> dict:
        """Walk one live dir (its files, dirs and symlinks; never
        ``.gislock`` files, ``.tmp`` dirs or special files). This is the hot
        loop of every save, one ``lstat`` per path: an unchanged file costs
        a dict lookup and reuses its entry object; the paths that got a new
        entry object are the only candidates for the delta."""
        entries = {}
        fresh = plan.fresh.setdefault(name, [])
        live_key, is_racy, get = _live_key, _is_racy, known.get
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            prefix = rel_dir + "/" if rel_dir else ""
            try:
                with os.scandir(os.path.join(src, rel_dir) if rel_dir
                                else src) as it:
                    listing = list(it)
            except FileNotFoundError:
                if not rel_dir:
                    raise
                continue
            for item in listing:
                if item.name in EXCLUDED_FILE_NAMES:
                    continue
                try:
                    st = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                rel = prefix + item.name
                mode = st.st_mode
                if S_ISREG(mode):
                    key = live_key(st)
                    racy = is_racy(st.st_mtime_ns, t0)
                    prev = get(rel)
                    if prev is not None and prev.live == key and (
                            not prev.racy
                            or self._racy_unchanged(src, rel, prev)):
                        entries[rel] = prev if prev.racy == racy \
                            else prev._replace(racy=racy)
                        continue
                    _add_new_file(plan, entries, name, rel, item.path, st,
                                  key, racy)
                elif S_ISDIR(mode):
                    if item.name in EXCLUDED_DIR_NAMES:
                        continue
                    _add_dir(entries, fresh, rel, get(rel), mode)
                    stack.append(rel)
                elif S_ISLNK(mode):
                    _add_link(entries, fresh, rel, item.path, mode)
        return entries

    @staticmethod
    def _racy_unchanged(src: str, rel: str, prev: Entry) -> bool:
        """A racy entry with an equal stat is compared by content: exact,
        and only reads (no copy of a big raster written just before the last
        save)."""
        try:
            return _hash_file(os.path.join(src, rel)) == prev.obj
        except OSError:
            return False

    def _check_free_space(self, needed: int) -> None:
        """Refuse a snapshot that would leave less than the reserve free:
        the job's own outputs need the disk more than its interim results."""
        probe = self.root
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            vfs = os.statvfs(probe)
        except OSError:
            return
        free = vfs.f_bavail * vfs.f_frsize
        reserve = min(FREE_SPACE_RESERVE, vfs.f_blocks * vfs.f_frsize // 20)
        if needed + reserve > free:
            raise SnapshotNoSpace(
                f"{needed} bytes needed, {free} bytes free on the file "
                f"system of {probe} (keeping {reserve} free)")

    def _store_objects(self, plan: _SavePlan) -> tuple[int, int, dict]:
        """Copy the new files into objects, hashing while copying. Returns
        ``(files, bytes, known objects)``; on failure, removes what it
        wrote (and the store's own map of objects stays as it was)."""
        foreign = self._live.foreign if self._live else None
        known = dict(self._live.objects) if self._live and not foreign else {}
        created: list[str] = []
        written: list[str] = []  # new data, not links to durable objects
        files = nbytes = 0
        try:
            if foreign:
                self._take_over_objects(plan, foreign, known, created,
                                        written)
            for name, rel, src in plan.new_files:
                entry = plan.state[name][rel]
                obj, oino, octime, fresh = self._store_object(src, known)
                if fresh:
                    created.append(obj)
                    written.append(obj)
                    files += 1
                    nbytes += entry.size
                plan.state[name][rel] = entry._replace(
                    obj=obj, oino=oino, octime=octime)
            self._flush(written)
        except BaseException:
            for obj in created:
                _unlink_quietly(self.object_path(obj))
            raise
        return files, nbytes, known

    def _take_over_objects(self, plan: _SavePlan, foreign: str,
                           known: dict, created: list, written: list) -> None:
        """After a restore from another job's store (reuse across jobs):
        hard link the objects of the unchanged files from there (immutable;
        no copy of the mapset, and this job keeps them if that one is
        removed). Adds the objects created here to ``created`` and those
        that had to be copied to ``written``: a link needs no fsync, its
        data is already on disk (the other job flushed it when it saved),
        and its name is ordered before the manifest as a new object's is."""
        for entries in plan.state.values():
            for rel, entry in entries.items():
                if entry.kind != "f" or not entry.obj or entry.obj in known:
                    continue
                final = self.object_path(entry.obj)
                os.makedirs(os.path.dirname(final), exist_ok=True)
                source = os.path.join(foreign, entry.obj[:2], entry.obj[2:])
                try:
                    os.link(source, final)
                except FileExistsError:
                    pass
                except OSError:  # another file system, too many links
                    if _copy_hashing(source, final) != entry.obj:
                        _unlink_quietly(final)
                        raise OSError(
                            errno.EIO, "an object of the reused interim "
                            "result does not match its hash", rel) from None
                    written.append(entry.obj)
                st = os.lstat(final)
                created.append(entry.obj)
                known[entry.obj] = (st.st_ino, st.st_ctime_ns)
                entries[rel] = entry._replace(oino=st.st_ino,
                                              octime=st.st_ctime_ns)

    def _flush(self, created: list[str]) -> None:
        """New objects reach the disk before a manifest names them: a few
        are fsynced one by one (only their data is written), many at once
        with one ``syncfs`` (100,000 fsyncs would take minutes)."""
        if len(created) > FSYNC_EACH_MAX:
            _syncfs(self.objects_dir)
            return
        for obj in created:
            _fsync_path(self.object_path(obj))

    def _store_object(self, src: str, known: dict) -> tuple[str, int, int, bool]:
        tmp = os.path.join(
            self.objects_dir,
            f"{OBJECT_TMP_PREFIX}{_HOST}-{os.getpid()}-{uuid.uuid4().hex}")
        os.makedirs(self.objects_dir, exist_ok=True)
        try:
            obj = _copy_hashing(src, tmp)
            if obj in known:
                os.unlink(tmp)
                return obj, *known[obj], False
            final = self.object_path(obj)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            # An object of the same content from another lineage may exist
            # (unverified here): replace it by this fresh copy. Snapshots
            # holding the old inode re-verify it by hash at restore.
            os.replace(tmp, final)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        st = os.lstat(final)
        known[obj] = (st.st_ino, st.st_ctime_ns)
        return obj, st.st_ino, st.st_ctime_ns, True

    def _manifest_doc(self, step, plan, base: _Live | None, meta) -> dict:
        parts = {}
        for name, entries in plan.state.items():
            old = base.state.get(name, {}) if base else {}
            changed, removed = _delta(
                old, entries, plan.fresh.get(name)
                if base and plan.sources[name] == base.sources.get(name)
                else None)
            parts[name] = {
                "mode": plan.modes[name], "changed": changed,
                "removed": removed,
            }
        return {
            "version": MANIFEST_VERSION,
            "id": uuid.uuid4().hex,
            "step": step,
            "base": base.step if base else None,
            "base_id": base.id if base else None,
            "created": time.time(),
            "meta": meta,
            "parts": parts,
        }

    def _commit(self, manifest: dict, dirname: str) -> None:
        """Write the manifest into a staging dir and rename it into steps/
        (the one atomic step that makes the snapshot visible)."""
        staging = self.root / f"{STAGING_PREFIX}{_HOST}-{os.getpid()}-{uuid.uuid4().hex}"
        _ACTIVE_TEMP_DIRS.add(str(staging))
        try:
            staging.mkdir()
            with open(staging / MANIFEST_NAME, "w", encoding="utf-8") as handle:
                _write_sealed(handle, manifest, _write_manifest)
                handle.flush()
                os.fsync(handle.fileno())
            _fsync_path(staging, directory=True)
            self.steps_dir.mkdir(exist_ok=True)
            final = self.steps_dir / dirname
            trash = None
            if os.path.lexists(final):
                trash = self._trash_name()
                os.rename(final, trash)
            os.rename(staging, final)
            _fsync_path(self.steps_dir, directory=True)
            if trash is not None:
                rmtree(trash)
        finally:
            _ACTIVE_TEMP_DIRS.discard(str(staging))
            if os.path.lexists(staging):
                rmtree(staging)

    def _trash_name(self) -> Path:
        return self.root / f"{TRASH_PREFIX}{_HOST}-{os.getpid()}-{uuid.uuid4().hex}"

    # ------------------------------------------------------------- restore
    def verify(self, step: int, content: bool = True) -> None:
        """Check snapshot ``step``: its manifests (sealed), every object's
        presence and size and, with ``content``, every object's bytes
        against its hash. Raises :class:`SnapshotNotFound` (no manifest)
        or :class:`SnapshotDamaged`."""
        chain, problem = self._chain_checked(step)
        if chain is None:
            if problem.reason == MISSING:
                raise SnapshotNotFound(step)
            raise problem
        self._check_state(step, _fold(chain)[0], content, {})

    def _check_state(self, step, state, content, checked) -> None:
        """Check the objects of a folded state; ``checked`` maps the
        objects already found intact (a survey checks each once)."""
        for name, entries in state.items():
            for rel, entry in entries.items():
                if entry.kind == "f" and checked.get(entry.obj) != entry.size:
                    self._check_object(step, name, rel, entry, content)
                    checked[entry.obj] = entry.size

    def _check_object(self, step, name, rel, entry, content) -> None:
        path = self.object_path(entry.obj)
        try:
            st = os.lstat(path)
        except OSError:
            raise SnapshotDamaged(step, name, rel, "is missing") from None
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
            raise SnapshotDamaged(
                step, name, rel, f"has {st.st_size} bytes, recorded "
                f"{entry.size}")
        if not content:
            return
        try:
            intact = _hash_file(path) == entry.obj
        except OSError:
            intact = False
        if not intact:
            raise SnapshotDamaged(step, name, rel,
                                  "does not match its recorded hash")

    def restore(
        self,
        step: int,
        targets: Mapping[str, PathLike],
        *,
        replace: bool = True,
        into: SnapshotStore | None = None,
    ) -> list[str]:
        """Copy the parts of snapshot ``step`` into the dirs ``targets``.

        Files are always *copied* (never linked to the store): the restored
        dirs are live GRASS data that will be modified in place. Every
        file's bytes are hashed as they are copied and compared with the
        object's name (:class:`SnapshotDamaged`, every target untouched).
        All parts are assembled in sibling temp dirs first and renamed into
        place only when all are intact, so each target is either the old or
        the complete restored tree. An existing
        non-empty target is replaced (``replace=True``) or rejected with
        :class:`FileExistsError`. Snapshot parts not named in ``targets``
        are skipped, as are target names the snapshot lacks. Returns the
        names of the restored parts.

        Afterwards this store (or ``into``: the store of a job that reuses
        this job's interim result) knows the restored files' stat, so its
        next :meth:`save` writes only what the job changes after the
        restore; objects of another store are then hard linked, not copied.
        """
        chain = self._chain(step)
        if chain is None:
            raise SnapshotNotFound(step)
        state, modes = _fold(chain)
        manifest = chain[-1]
        _check_part_names(targets)
        names = [n for n in sorted(targets) if n in state]
        for name in names:
            target = Path(targets[name])
            if not replace and target.exists() and (
                    not target.is_dir() or any(target.iterdir())):
                raise FileExistsError(errno.EEXIST, "restore target is not empty",
                                      str(target))
        t0 = _now_coarse_ns()
        self._hash_ns = []
        live_state, staged = {}, []
        try:
            for name in names:
                target = Path(os.path.abspath(targets[name]))
                tmp, live_state[name] = self._assemble_part(
                    step, name, state[name], modes[name], target, t0)
                staged.append((tmp, target))
            while staged:
                tmp, target = staged.pop(0)
                self._swap_into_place(tmp, target)
        finally:
            for tmp, _target in staged:
                rmtree(tmp)
        sources = {name: os.path.realpath(os.path.abspath(targets[name]))
                   for name in names}
        self.last_restore = {
            "files": len(self._hash_ns),
            "bytes": sum(e.size for n in names for e in state[n].values()
                         if e.kind == "f"),
            "verify_seconds": round(sum(self._hash_ns) / 1e9, 4)}
        objects = {e.obj: (e.oino, e.octime) for entries in state.values()
                   for e in entries.values() if e.kind == "f"}
        self._parsed.clear()
        owner = self if into is None else into
        foreign = None if owner.root == self.root else str(self.objects_dir)
        owner._live = _Live(step, manifest.id, live_state,
                            {n: modes[n] for n in names}, sources, objects,
                            foreign)
        return names

    def _assemble_part(self, step, name, entries, mode, target: Path, t0):
        """Build one part in a temp dir beside ``target``; returns the temp
        dir and ``{rel: Entry}`` with the restored files' live stat."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.restore-{uuid.uuid4().hex}"
        try:
            tmp.mkdir(0o700)
            tmp_s = str(tmp)
            dirs, files = [], []
            for rel, entry in entries.items():
                dst = os.path.join(tmp_s, rel)
                (dirs if entry.kind == "d" else files).append(
                    (rel, dst, entry))
            for _rel, dst, _entry in sorted(dirs, key=lambda d: d[0].count("/")):
                os.makedirs(dst, 0o700, exist_ok=True)
            restored = self._copy_files(step, name, files, t0)
            for rel, dst, entry in dirs:
                os.chmod(dst, stat.S_IMODE(entry.mode))
                restored[rel] = entry
            os.chmod(tmp, stat.S_IMODE(mode))
        except BaseException:
            rmtree(tmp)
            raise
        return tmp, restored

    def _copy_files(self, step, name, files, t0) -> dict:
        """Restore files on several threads (the syscalls drop the GIL);
        returns ``{rel: Entry}`` with the restored files' live stat."""
        files.sort(key=lambda f: -f[2].size)
        shards = [files[i::COPY_THREADS] for i in range(COPY_THREADS)]

        def work(shard):
            return [(rel, self._restore_file(step, name, rel, dst, entry, t0))
                    for rel, dst, entry in shard]

        restored = {}
        if len(files) < 64:
            results = [work(files)]
        else:
            with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
                results = list(pool.map(work, shards))
        for result in results:
            restored.update(result)
        return restored

    def _restore_file(self, step, name, rel, dst, entry: Entry, t0) -> Entry:
        if entry.kind == "l":
            os.symlink(entry.target, dst)
            return entry
        try:
            src_fd = os.open(self.object_path(entry.obj), os.O_RDONLY)
        except FileNotFoundError:
            raise SnapshotDamaged(step, name, rel, "is missing") from None
        try:
            st = os.fstat(src_fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
                raise SnapshotDamaged(
                    step, name, rel, f"has {st.st_size} bytes, recorded "
                    f"{entry.size}")
            fd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                digest, copied, hash_ns = _copy_fd_verified(
                    src_fd, fd, entry.size)
                self._hash_ns.append(hash_ns)
                if digest != entry.obj or copied != entry.size:
                    raise SnapshotDamaged(
                        step, name, rel, "does not match its recorded hash")
                os.fchmod(fd, stat.S_IMODE(entry.mode))
                os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))
                st = os.fstat(fd)
            finally:
                os.close(fd)
        finally:
            os.close(src_fd)
        return entry._replace(live=_live_key(st),
                              racy=_is_racy(st.st_mtime_ns, t0))

    # ------------------------------------------- kept mapsets (adoption.py)
    def live_state(self) -> _Live | None:
        """What this store knows about the live dirs (read only): the state
        it last saved, restored or adopted with each file's live stat, or
        ``None``. A failed job keeps it next to its mapset
        (:mod:`.kept_mapset`), so that the next iteration can tell the files
        the failed step changed from those it did not."""
        return self._live

    def put_back(self, step: int, part: str, files: list, t0: int) -> dict:
        """Restore single files (and symlinks) of snapshot ``step``'s
        ``part``: ``files`` is ``[(rel, dst, Entry)]`` with paths ``dst``
        that do not exist. Each object is checked against its record first,
        as in every restore (:class:`SnapshotDamaged`). Returns ``{rel:
        Entry}`` with the live stat of the new files. An adoption puts back
        only what the failed step changed."""
        return self._copy_files(step, part, list(files), t0)

    def adopt_live(self, step: int, state: dict, modes: dict,
                   sources: dict) -> None:
        """Take ``state`` (part -> {rel: Entry} with live stats) as the live
        dirs' state after snapshot ``step``, as :meth:`restore` does for
        the dirs it restores: the next :meth:`save` writes only what
        changes from here on."""
        chain = self._chain(step)
        if chain is None:
            raise SnapshotNotFound(step)
        objects = {e.obj: (e.oino, e.octime) for entries in state.values()
                   for e in entries.values() if e.kind == "f"}
        self._parsed.clear()
        self._live = _Live(step, chain[-1].id, state, dict(modes),
                           dict(sources), objects)

    @staticmethod
    def _swap_into_place(tmp: Path, target: Path) -> None:
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
            rmtree(trash)
        else:
            os.rename(tmp, target)

    # ------------------------------------------------------------- deletion
    def delete(self, step: int) -> bool:
        """Delete the snapshot of ``step``; returns whether it existed.

        Snapshots based on it are first rewritten as self-contained
        manifests (same id, same state), so they stay valid. Objects are
        left for :meth:`collect_garbage`.
        """
        return bool(self.prune(set(self._candidate_steps()) - {step}))

    def prune(self, keep: Iterable[int]) -> list[int]:
        """Delete all snapshots whose step is not in ``keep``; returns the
        deleted steps. Kept snapshots whose base is deleted are rewritten
        as self-contained manifests first."""
        keep = set(keep)
        candidates = self._candidate_steps()
        doomed = [s for s in candidates if s not in keep]
        if not doomed:
            return []
        cache: dict = {}
        for step in candidates:
            if step not in keep:
                continue
            chain = self._chain(step, cache)
            if chain is not None and any(m.step not in keep for m in chain):
                self._rewrite_full(chain[-1])
        for step in doomed:
            trash = self._trash_name()
            try:
                os.rename(self.step_path(step), trash)
            except FileNotFoundError:
                continue
            rmtree(trash)
        if self._live is not None and self._live.step in doomed:
            self._live = None
        return doomed

    def _rewrite_full(self, manifest: _Manifest) -> None:
        state, modes = self.state(manifest.step)
        doc = {
            "version": MANIFEST_VERSION, "id": manifest.id,
            "step": manifest.step, "base": None, "base_id": None,
            "created": manifest.created, "meta": manifest.meta,
            "parts": {name: {"mode": modes[name], "removed": [],
                             "changed": entries}
                      for name, entries in state.items()},
        }
        _write_json_atomic(manifest.path / MANIFEST_NAME, doc,
                           writer=_write_manifest)

    def collect_garbage(self) -> int:
        """Remove objects no committed snapshot refers to (left by pruning
        or a killed save); returns how many."""
        referenced = set()
        for step in self._candidate_steps():
            manifest = self._read_manifest(step)
            if manifest is None:
                continue
            for _mode, changed, _removed in manifest.parts.values():
                referenced.update(e.obj for e in changed.values()
                                  if e.kind == "f")
        removed = 0
        try:
            fans = list(os.scandir(self.objects_dir))
        except (FileNotFoundError, NotADirectoryError):
            return 0
        for fan in fans:
            if not fan.is_dir(follow_symlinks=False):
                continue
            with os.scandir(fan.path) as it:
                for entry in it:
                    if fan.name + entry.name not in referenced:
                        os.unlink(entry.path)
                        removed += 1
        return removed

    def delete_all(self) -> None:
        """Remove the whole job root (snapshots, objects, job record)."""
        trash = self.discard()
        if trash is not None:
            rmtree(trash)

    def discard(self) -> Path | None:
        """Rename the job root away at once (a resume no longer sees it)
        and return the renamed dir, for removal when nobody waits for it."""
        self._live = None
        if not os.path.lexists(self.root):
            return None
        trash = self.root.parent / f".{self.root.name}.deleted-{uuid.uuid4().hex}"
        os.rename(self.root, trash)
        return trash

    def cleanup_stale(self, max_age: float = STALE_SECONDS) -> list[str]:
        """Remove leftover staging/trash dirs and temporary objects of
        crashed saves.

        A leftover is stale if it was created on this host by a pid that is
        dead (or by this process but is not in use), or if it is older than
        ``max_age`` seconds and belongs to another host (liveness unknown).
        Returns the removed names.
        """
        removed = []
        now = time.time()
        for directory in (self.root, self.objects_dir):
            try:
                with os.scandir(directory) as it:
                    entries = [e for e in it if e.name.startswith(".")]
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                if self._is_stale(entry, now, max_age):
                    rmtree(entry.path)
                    removed.append(entry.name)
        return removed

    @staticmethod
    def _is_stale(entry: os.DirEntry, now: float, max_age: float) -> bool:
        match = _TEMP_NAME_RE.match(entry.name)
        if match is None or entry.path in _ACTIVE_TEMP_DIRS:
            return False
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            return False
        if match.group("host") == _HOST:
            pid = int(match.group("pid"))
            if pid == os.getpid() or not _pid_alive(pid):
                return True
            return age > STALE_LIVE_PID_SECONDS  # pid was probably reused
        return age > max_age
