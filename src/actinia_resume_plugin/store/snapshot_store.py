"""Deduplicated, crash-safe snapshots of the interim results of one job.

After step N of a process chain has completed, the worker saves a snapshot of
several directories ("parts": the GRASS temporary mapset, the temporary file
directory, optionally further mapsets).  A later resume restores the snapshot
of some step into fresh directories and continues from step N + 1.

Layout below one job root (``{grass_resource_dir}/{user_id}/interim/{resource_id}``)::

    root/steps/000003/                 snapshot taken after step 3 (0-based execution order)
        parts/<part name>/...          one tree per part ("mapset", "tmpdir", "mapsets/x", ...)
        manifest.json                  written last; a step dir without it is invisible
    root/.staging-<host>-<pid>-<uuid>/ snapshot in progress, invisible to readers
    root/.trash-<host>-<pid>-<uuid>/   replaced/deleted snapshot, being removed
    root/job.json                      caller's job metadata (atomic write)
    root/baseline.json                 stat of the files written by the last restore()

Design rules (the *why*):

* Snapshots are immutable once committed, so an unchanged file may be shared
  between snapshots via a hard link **from the previous snapshot's file**.
  A snapshot never shares an inode with the live directories: GRASS rewrites
  WIND, VAR, sqlite.db and raster support files *in place*, which would
  silently change the content of an "immutable" snapshot.
* Change detection is by stat only (no hashing): size, mtime_ns, ino,
  ctime_ns and mode must equal the previous manifest entry.  The "racy git"
  problem (a file rewritten within the timestamp granularity after we looked
  at it keeps an identical stat) is handled by marking entries whose mtime is
  too close to the moment of the save as *racy*; a racy entry is never trusted
  on stat alone (see :func:`_racy_margin_ns` and ``_plan_part``).
* Crash safety: a snapshot is assembled in a staging dir, its manifest is
  written and fsynced last and the dir is renamed into ``steps/`` in one
  atomic ``rename``.  Readers only see step dirs with a valid manifest.
* The store assumes one writer per job root at a time (a job is processed by
  one worker); readers may run concurrently.

Only the Python standard library is used.
"""

from __future__ import annotations

import errno
import json
import os
from concurrent.futures import ThreadPoolExecutor
import re
import shutil
import socket
import stat
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Union

__all__ = [
    "SnapshotStore",
    "SnapshotInfo",
    "SnapshotError",
    "SnapshotBudgetExceeded",
    "SnapshotNotFound",
    "interim_root",
    "list_job_roots",
    "EXCLUDED_FILE_NAMES",
    "EXCLUDED_DIR_NAMES",
]

PathLike = Union[str, "os.PathLike[str]"]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
JOB_FILE = "job.json"
BASELINE_FILE = "baseline.json"
STEPS_DIR = "steps"
PARTS_DIR = "parts"
STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"

#: Never snapshotted: the GRASS mapset lock belongs to the running session,
#: restoring it would make GRASS believe the mapset is in use.
EXCLUDED_FILE_NAMES = frozenset({".gislock"})
#: GRASS' per-session scratch directories (``<mapset>/.tmp/<host>/...``).
EXCLUDED_DIR_NAMES = frozenset({".tmp"})

#: Staging/trash dirs of another host (shared resource dir) or of a live pid
#: are only removed once older than this many seconds.
STALE_SECONDS = 300
#: Staging dirs of a *live* local pid (could be pid reuse) are removed after this.
STALE_LIVE_PID_SECONDS = 24 * 3600

_STEP_DIR_RE = re.compile(r"^[0-9]{6,}$")
_TEMP_NAME_RE = re.compile(r"^\.(?:staging|trash)-(?P<host>.*)-(?P<pid>[0-9]+)-[0-9a-f]{32}$")
_COPY_CHUNK = 1 << 30
# Threads copying files during a restore (copy_file_range drops the GIL).
COPY_THREADS = 4
_CMP_CHUNK = 1 << 20

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
    """Saving would copy more new bytes than allowed; nothing was written."""

    def __init__(self, needed: int, budget: int):
        super().__init__(needed, budget)
        self.needed = needed
        self.budget = budget

    def __str__(self) -> str:
        return (
            f"snapshot needs {self.needed} bytes of new storage, "
            f"budget is {self.budget} bytes"
        )


@dataclass
class SnapshotInfo:
    """A committed (visible) snapshot."""

    step: int
    path: Path
    meta: dict
    created: float
    parts: list[str]
    id: str = ""

    def part_path(self, name: str) -> Path:
        """Directory holding the stored copy of part ``name``."""
        return self.path / PARTS_DIR / name


# --------------------------------------------------------------------------
# path helpers
# --------------------------------------------------------------------------


def _check_component(value: str, what: str) -> str:
    """Reject ids that could escape the resource dir (they come from URLs)."""
    value = str(value)
    if (
        not value
        or value in (".", "..")
        or "/" in value
        or "\\" in value
        or "\0" in value
    ):
        raise ValueError(f"invalid {what}: {value!r}")
    return value


def interim_root(resource_dir: PathLike, user_id: str, resource_id: str) -> Path:
    """Job root ``{resource_dir}/{user_id}/interim/{resource_id}``."""
    return (
        Path(resource_dir)
        / _check_component(user_id, "user id")
        / "interim"
        / _check_component(resource_id, "resource id")
    )


def list_job_roots(resource_dir: PathLike, user_id: str) -> list[Path]:
    """All job roots of a user (``{resource_dir}/{user_id}/interim/*``), sorted.

    Hidden entries are skipped; a missing interim dir yields ``[]``.
    """
    base = Path(resource_dir) / _check_component(user_id, "user id") / "interim"
    try:
        it = os.scandir(base)
    except FileNotFoundError:
        return []
    with it:
        roots = [
            Path(e.path)
            for e in it
            if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
        ]
    return sorted(roots)


def _check_part_name(name: str) -> str:
    parts = str(name).split("/")
    if not name or any(p in ("", ".", "..") or "\0" in p or "\\" in p for p in parts):
        raise ValueError(f"invalid part name: {name!r}")
    return name


def _check_part_names(names: Iterable[str]) -> None:
    names = sorted(names)
    for n in names:
        _check_part_name(n)
    # "mapsets" and "mapsets/x" would nest one stored tree inside the other
    for a in names:
        for b in names:
            if a != b and b.startswith(a + "/"):
                raise ValueError(f"part names {a!r} and {b!r} overlap")


def _step_dirname(step: int) -> str:
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    return f"{step:06d}"


# --------------------------------------------------------------------------
# clock / racy rule
# --------------------------------------------------------------------------

_CLOCK_COARSE = getattr(
    time, "CLOCK_REALTIME_COARSE", 5 if sys.platform.startswith("linux") else None
)


def _now_coarse_ns() -> int:
    """Wall clock as used by the kernel for file timestamps.

    Linux stamps files from the *coarse* realtime clock, which may lag
    ``time.time_ns()`` by up to one tick; reading the same clock avoids a
    file written "after" t0 getting an mtime that looks older than t0.
    """
    if _CLOCK_COARSE is not None:
        try:
            return time.clock_gettime_ns(_CLOCK_COARSE)
        except (OSError, AttributeError):
            pass
    return time.time_ns()


def _coarse_res_ns() -> int:
    if _CLOCK_COARSE is not None:
        try:
            return int(time.clock_getres(_CLOCK_COARSE) * 1e9)
        except (OSError, AttributeError):
            pass
    return 1_000_000


#: Minimum window before t0 in which an mtime is considered racy.
RACY_MIN_MARGIN_NS = 10_000_000


def _racy_margin_ns() -> int:
    """Margin for the racy rule: ``max(2 * coarse clock resolution, 10 ms)``."""
    return max(2 * _coarse_res_ns(), RACY_MIN_MARGIN_NS)


_RACY_MARGIN_NS = _racy_margin_ns()


def _is_racy(mtime_ns: int, t0_ns: int) -> bool:
    """Could the file be rewritten later *without* its stat changing?

    ``t0_ns`` is read before any file of the save is stat-ed.  A write after
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


def _stat_key(st: os.stat_result) -> tuple:
    """The stat fields that must be equal for a file to count as unchanged."""
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_mode)


def _entry_key(entry: Mapping) -> tuple:
    return (
        entry.get("size"),
        entry.get("mtime_ns"),
        entry.get("ino"),
        entry.get("ctime_ns"),
        entry.get("mode"),
    )


def _file_entry(st: os.stat_result, t0_ns: int) -> dict:
    size, mtime_ns, ino, ctime_ns, mode = _stat_key(st)
    return {
        "type": "f",
        "size": size,
        "mtime_ns": mtime_ns,
        "ino": ino,
        "ctime_ns": ctime_ns,
        "mode": mode,
        "racy": _is_racy(st.st_mtime_ns, t0_ns),
    }


# --------------------------------------------------------------------------
# low level file operations (module level so tests can patch them)
# --------------------------------------------------------------------------


def _copy_file(src: str, dst: str) -> None:
    """Copy data + mode + times of a regular file; ``dst`` must not exist.

    Uses ``os.copy_file_range`` (in-kernel copy, reflink on btrfs/XFS, still a
    separate inode) and falls back to :func:`shutil.copyfile` (sendfile).
    Never links.
    """
    with open(src, "rb") as fsrc:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            done = False
            if hasattr(os, "copy_file_range"):
                try:
                    while os.copy_file_range(fsrc.fileno(), fd, _COPY_CHUNK):
                        pass
                    done = True
                except OSError as e:
                    if e.errno not in (
                        errno.EXDEV, errno.ENOSYS, errno.EINVAL,
                        errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF, errno.EPERM,
                    ):
                        raise
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.ftruncate(fd, 0)
                    fsrc.seek(0)
            if not done:
                with os.fdopen(os.dup(fd), "wb") as fdst:
                    shutil.copyfileobj(fsrc, fdst, _CMP_CHUNK)
        finally:
            os.close(fd)
    shutil.copystat(src, dst, follow_symlinks=False)


def _copy_files(pairs: list[tuple[str, str]]) -> None:
    """Copy many files; large ones on several threads at once.

    ``copy_file_range`` runs in the kernel without the GIL, so a restore of
    a mapset with several big rasters is not bound to one core's memcpy.
    """
    pairs = sorted(pairs, key=lambda p: -os.lstat(p[0]).st_size)
    if len(pairs) < 2:
        for src, dst in pairs:
            _copy_file(src, dst)
        return
    with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
        for future in [pool.submit(_copy_file, s, d) for s, d in pairs]:
            future.result()


def _link_file(src: str, dst: str) -> None:
    os.link(src, dst, follow_symlinks=False)


def _same_content(a: str, b: str) -> bool:
    """Byte-by-byte comparison (no hashing, stops at the first difference)."""
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                ba = fa.read(_CMP_CHUNK)
                bb = fb.read(_CMP_CHUNK)
                if ba != bb:
                    return False
                if not ba:
                    return True
    except OSError:
        return False


def _fsync_path(path: PathLike, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
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


def _write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` as JSON: tmp file in the same dir, fsync, os.replace."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, sort_keys=True, separators=(",", ":")))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_path(path.parent, directory=True)


def _rmtree(path: PathLike) -> None:
    def onerror(func, p, exc):  # make read-only dirs deletable, ignore races
        if isinstance(exc, FileNotFoundError):
            return
        try:
            os.chmod(os.path.dirname(p), 0o700)
            func(p)
        except FileNotFoundError:
            pass

    if not os.path.lexists(path):
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=onerror)
    else:  # pragma: no cover
        shutil.rmtree(path, onerror=lambda f, p, ei: onerror(f, p, ei[1]))


# --------------------------------------------------------------------------
# walking live dirs
# --------------------------------------------------------------------------


def _walk(root: str) -> Iterable[tuple[str, str, os.stat_result]]:
    """Yield ``(relpath, kind, lstat)`` below ``root`` (kind: f, d, l).

    Excludes ``.gislock`` files and ``.tmp`` directories at any depth and
    special files (sockets, fifos, devices).  Directories come before their
    content.  Entries vanishing during the walk are skipped.
    """
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        abs_dir = os.path.join(root, rel_dir) if rel_dir else root
        try:
            it = os.scandir(abs_dir)
        except FileNotFoundError:
            if not rel_dir:
                raise
            continue
        with it:
            entries = sorted(it, key=lambda e: e.name)
        subdirs = []
        for e in entries:
            if e.name in EXCLUDED_FILE_NAMES:
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                if e.name in EXCLUDED_DIR_NAMES:
                    continue
                yield rel, "d", st
                subdirs.append(rel)
            elif stat.S_ISREG(mode):
                yield rel, "f", st
            elif stat.S_ISLNK(mode):
                yield rel, "l", st
            # sockets, fifos, device files: not part of GRASS data
        stack.extend(reversed(subdirs))


# --------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------


@dataclass
class _Reference:
    """A manifest whose files may be linked: entries + where they are stored."""

    entries: Mapping[str, Mapping]
    stored_dir: str


@dataclass
class _PartPlan:
    name: str
    src: str
    mode: int = 0o755
    entries: dict = field(default_factory=dict)  # relpath -> manifest entry
    # (relpath, action, source path) for files; action "link" | "copy"
    files: list = field(default_factory=list)


class SnapshotStore:
    """Snapshots of one job (one actinia resource id) below ``root``.

    ``root`` need not exist; it is created by the first write.
    """

    def __init__(self, root: PathLike):
        self.root = Path(root)

    # ------------------------------------------------------------- paths
    @property
    def steps_dir(self) -> Path:
        return self.root / STEPS_DIR

    def step_path(self, step: int) -> Path:
        return self.steps_dir / _step_dirname(step)

    # ------------------------------------------------------------- readers
    def _read_manifest(self, step_dir: Path) -> dict | None:
        try:
            with open(step_dir / MANIFEST_NAME, encoding="utf-8") as f:
                m = json.load(f)
        except (OSError, ValueError):
            return None
        if (
            not isinstance(m, dict)
            or m.get("version") != MANIFEST_VERSION
            or not isinstance(m.get("parts"), dict)
            or m.get("step") != int(step_dir.name)
        ):
            return None
        return m

    def _info(self, step_dir: Path, m: dict) -> SnapshotInfo:
        return SnapshotInfo(
            step=m["step"],
            path=step_dir,
            meta=dict(m.get("meta") or {}),
            created=float(m.get("created") or 0.0),
            parts=sorted(m["parts"]),
            id=str(m.get("id") or ""),
        )

    def steps(self) -> list[int]:
        """Steps with a committed snapshot (valid manifest), ascending."""
        return [i.step for i in self.list()]

    def _candidate_steps(self) -> list[int]:
        try:
            it = os.scandir(self.steps_dir)
        except FileNotFoundError:
            return []
        with it:
            return sorted(
                int(e.name)
                for e in it
                if _STEP_DIR_RE.match(e.name) and e.is_dir(follow_symlinks=False)
            )

    def list(self) -> list[SnapshotInfo]:
        """All committed snapshots sorted by step.

        Staging dirs and step dirs without a valid manifest (crash during
        commit, manual tampering) are ignored.
        """
        out = []
        for step in self._candidate_steps():
            d = self.step_path(step)
            m = self._read_manifest(d)
            if m is not None:
                out.append(self._info(d, m))
        return out

    def get(self, step: int) -> SnapshotInfo | None:
        """Snapshot taken after ``step`` or ``None``."""
        d = self.step_path(step)
        m = self._read_manifest(d)
        return None if m is None else self._info(d, m)

    def latest(self) -> SnapshotInfo | None:
        """Snapshot with the highest step or ``None``."""
        for step in reversed(self._candidate_steps()):
            info = self.get(step)
            if info is not None:
                return info
        return None

    def manifest(self, step: int) -> dict:
        """Full manifest (including per-file entries) of a snapshot."""
        m = self._read_manifest(self.step_path(step))
        if m is None:
            raise SnapshotNotFound(step)
        return m

    # ------------------------------------------------------------- job meta
    def write_job(self, meta: dict) -> None:
        """Atomically replace ``job.json`` (tmp file + fsync + os.replace)."""
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.root / JOB_FILE, meta)

    def read_job(self) -> dict | None:
        """Contents of ``job.json`` or ``None`` if it was never written."""
        try:
            with open(self.root / JOB_FILE, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------- save
    def _references(self, step: int) -> list[tuple[str, Path, dict]]:
        """Snapshots whose stored files may be hard linked into snapshot ``step``.

        Order: the nearest snapshot before ``step`` (the usual predecessor),
        the snapshot of ``step`` being replaced, the newest one.  Linking from
        any committed snapshot is safe because snapshots are immutable.  The
        restore baseline is added per part in :meth:`_part_references`.
        """
        refs: list[tuple[str, Path, dict]] = []
        seen: set[int] = set()
        candidates = self._candidate_steps()
        order = [s for s in reversed(candidates) if s < step][:1]
        order += [s for s in candidates if s == step]
        order += list(reversed(candidates))[:1]
        for s in order:
            if s in seen:
                continue
            seen.add(s)
            d = self.step_path(s)
            m = self._read_manifest(d)
            if m is not None:
                refs.append(("snapshot", d, m))
        return refs

    def _part_references(self, name: str, src_real: str, refs, baseline) -> list[_Reference]:
        """References for one part; the restore baseline comes first.

        Files written by the last :meth:`restore` are copies of a snapshot
        with new inodes and ctimes, so they never match a manifest entry;
        without the baseline the first save after a resume would copy the
        whole mapset again.  The baseline only applies if the part is saved
        from the very directory it was restored into.
        """
        out = []
        if baseline is not None:
            bpart = baseline["parts"].get(name)
            if bpart and bpart.get("target") == src_real:
                out.append(
                    _Reference(bpart.get("entries") or {},
                               str(baseline["_dir"] / PARTS_DIR / name))
                )
        for _kind, d, m in refs:
            part = m["parts"].get(name)
            if part:
                out.append(_Reference(part.get("entries") or {}, str(d / PARTS_DIR / name)))
        return out

    def _load_baseline(self) -> dict | None:
        try:
            with open(self.root / BASELINE_FILE, encoding="utf-8") as f:
                b = json.load(f)
            step = int(b["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        # another job's snapshot when this job reused its interim result
        step_dir = Path(b.get("snapshot_dir") or self.step_path(step))
        m = self._read_manifest(step_dir)
        # the snapshot may have been replaced since the restore
        if m is None or m.get("id") != b.get("snapshot_id") or not isinstance(b.get("parts"), dict):
            return None
        b["_dir"] = step_dir
        return b

    def _plan_part(self, name: str, src: str, t0: int, refs: list[_Reference]) -> _PartPlan:
        """Walk + stat one live dir and decide link vs copy per file.

        A file is linked from a reference snapshot if its stat key equals the
        reference entry and that entry was not racy.  A racy entry with an
        equal key is compared byte-by-byte with the stored copy and linked if
        identical: the comparison only reads (no extra storage, no copy of a
        big raster that was merely written shortly before the last save),
        and the result is exact.  The new entry records the stat taken
        *before* the data is read, so a concurrent change shows up as a
        different stat next time.
        """
        plan = _PartPlan(name, src, mode=os.stat(src).st_mode)
        for rel, kind, st in _walk(src):
            if kind == "d":
                plan.entries[rel] = {"type": "d", "mode": st.st_mode}
                continue
            if kind == "l":
                try:
                    target = os.readlink(os.path.join(src, rel))
                except FileNotFoundError:
                    continue
                plan.entries[rel] = {"type": "l", "target": target, "mode": st.st_mode}
                continue
            entry = _file_entry(st, t0)
            key = _stat_key(st)
            action, source = "copy", os.path.join(src, rel)
            for ref in refs:
                prev = ref.entries.get(rel)
                if not prev or prev.get("type") != "f" or _entry_key(prev) != key:
                    continue
                stored = os.path.join(ref.stored_dir, rel)
                try:
                    sst = os.lstat(stored)
                except OSError:
                    continue
                if not stat.S_ISREG(sst.st_mode) or sst.st_size != st.st_size:
                    continue
                if prev.get("racy", True) and not _same_content(source, stored):
                    continue
                action, source = "link", stored
                break
            plan.entries[rel] = entry
            plan.files.append((rel, action, source, st.st_size))
        return plan

    def save(
        self,
        step: int,
        parts: Mapping[str, PathLike],
        meta: dict | None = None,
        *,
        budget_bytes: int | None = None,
    ) -> SnapshotInfo:
        """Snapshot the live dirs ``parts`` as the state after ``step``.

        Unchanged files are hard linked from earlier snapshots, changed/new
        files are copied.  If ``budget_bytes`` is given and the bytes to copy
        exceed it, :class:`SnapshotBudgetExceeded` is raised before anything
        is written.  Re-saving an existing step replaces it atomically.

        Returns the snapshot; ``meta`` additionally holds the statistics
        ``bytes_copied``, ``files_copied``, ``files_linked`` and ``seconds``.
        """
        started = time.monotonic()
        dirname = _step_dirname(step)
        _check_part_names(parts)
        meta = dict(meta or {})
        json.dumps(meta)  # fail early on non-serialisable meta

        # t0 must be read before any stat (racy rule)
        t0 = _now_coarse_ns()
        refs = self._references(step)
        baseline = self._load_baseline()
        plans = []
        for name in sorted(parts):
            src = os.fspath(parts[name])
            if not os.path.isdir(src):
                raise FileNotFoundError(errno.ENOENT, f"part {name!r}: not a directory", src)
            src_real = os.path.realpath(src)
            plans.append(
                self._plan_part(name, src, t0, self._part_references(name, src_real, refs, baseline))
            )
        needed = sum(size for p in plans for (_r, a, _s, size) in p.files if a == "copy")
        if budget_bytes is not None and needed > budget_bytes:
            raise SnapshotBudgetExceeded(needed, budget_bytes)

        self.root.mkdir(parents=True, exist_ok=True)
        self.cleanup_stale()
        staging = self.root / f"{STAGING_PREFIX}{_HOST}-{os.getpid()}-{uuid.uuid4().hex}"
        _ACTIVE_TEMP_DIRS.add(str(staging))
        try:
            staging.mkdir()
            stats = self._build(staging, plans)
            stats["bytes_planned"] = needed
            meta.update(stats)
            meta["seconds"] = round(time.monotonic() - started, 6)
            created = time.time()
            manifest = {
                "version": MANIFEST_VERSION,
                "id": uuid.uuid4().hex,
                "step": step,
                "created": created,
                "t0_ns": t0,
                "meta": meta,
                "parts": {
                    p.name: {"source": p.src, "mode": p.mode, "entries": p.entries}
                    for p in plans
                },
            }
            mpath = staging / MANIFEST_NAME
            with open(mpath, "w", encoding="utf-8") as f:
                # dumps() uses the C encoder; dump() to a file does not
                f.write(json.dumps(manifest, separators=(",", ":")))
                f.flush()
                os.fsync(f.fileno())
            _fsync_path(staging, directory=True)
            self._commit(staging, dirname)
        finally:
            _ACTIVE_TEMP_DIRS.discard(str(staging))
            if staging.exists():
                _rmtree(staging)
        meta["seconds"] = round(time.monotonic() - started, 6)
        return SnapshotInfo(
            step=step,
            path=self.steps_dir / dirname,
            meta=meta,
            created=created,
            parts=sorted(p.name for p in plans),
            id=manifest["id"],
        )

    def _build(self, staging: Path, plans: list[_PartPlan]) -> dict:
        bytes_copied = files_copied = files_linked = 0
        copied: list[str] = []
        for p in plans:
            base = staging / PARTS_DIR / p.name
            base.mkdir(parents=True)
            base_s = str(base)
            for rel, entry in p.entries.items():  # dirs come before content
                if entry["type"] == "d":
                    os.mkdir(os.path.join(base_s, rel), 0o700)
                elif entry["type"] == "l":
                    os.symlink(entry["target"], os.path.join(base_s, rel))
            for rel, action, source, size in p.files:
                dst = os.path.join(base_s, rel)
                if action == "link":
                    try:
                        _link_file(source, dst)
                        files_linked += 1
                        continue
                    except OSError as e:
                        # EMLINK (too many links), EXDEV, vanished: copy instead
                        if e.errno not in (errno.EMLINK, errno.EXDEV, errno.ENOENT, errno.EPERM):
                            raise
                    # copying the stored file keeps content == recorded stat
                _copy_file(source, dst)
                files_copied += 1
                bytes_copied += size
                copied.append(dst)
        # data of new files must be on disk before the manifest can claim them
        for path in copied:
            _fsync_path(path)
        return {
            "bytes_copied": bytes_copied,
            "files_copied": files_copied,
            "files_linked": files_linked,
        }

    def _commit(self, staging: Path, dirname: str) -> None:
        self.steps_dir.mkdir(exist_ok=True)
        final = self.steps_dir / dirname
        trash = None
        if os.path.lexists(final):
            trash = self._trash_name()
            os.rename(final, trash)
        os.rename(staging, final)
        _fsync_path(self.steps_dir, directory=True)
        if trash is not None:
            _rmtree(trash)

    def _trash_name(self) -> Path:
        return self.root / f"{TRASH_PREFIX}{_HOST}-{os.getpid()}-{uuid.uuid4().hex}"

    def cleanup_stale(self, max_age: float = STALE_SECONDS) -> list[str]:
        """Remove leftover staging/trash dirs of crashed saves.

        A dir is stale if it was created on this host by a pid that is dead
        (or by this process but is not in use), or if it is older than
        ``max_age`` seconds and belongs to another host (liveness unknown).
        Returns the removed names.
        """
        removed = []
        try:
            it = os.scandir(self.root)
        except FileNotFoundError:
            return removed
        now = time.time()
        with it:
            entries = list(it)
        for e in entries:
            if not (e.name.startswith(STAGING_PREFIX) or e.name.startswith(TRASH_PREFIX)):
                continue
            if e.path in _ACTIVE_TEMP_DIRS:
                continue
            try:
                age = now - e.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            m = _TEMP_NAME_RE.match(e.name)
            stale = False
            if m and m.group("host") == _HOST:
                pid = int(m.group("pid"))
                if pid == os.getpid() or not _pid_alive(pid):
                    stale = True
                elif age > STALE_LIVE_PID_SECONDS:
                    stale = True  # pid was probably reused
            elif age > max_age:
                stale = True
            if stale:
                _rmtree(e.path)
                removed.append(e.name)
        return removed

    # ------------------------------------------------------------- restore
    def restore(
        self,
        step: int,
        targets: Mapping[str, PathLike],
        *,
        replace: bool = True,
        baseline_store: "SnapshotStore | None" = None,
    ) -> list[str]:
        """Copy the parts of snapshot ``step`` into the dirs ``targets``.

        Files are always *copied* (never hard linked or symlinked to the
        snapshot): the restored dirs are live GRASS data that will be
        modified in place, while the snapshot must stay immutable.  Symlinks
        stored in the snapshot are recreated as symlinks.

        Each part is assembled in a sibling temp dir and renamed into place,
        so a target is either the old or the complete restored tree.  An
        existing non-empty target is replaced (``replace=True``) or rejected
        with :class:`FileExistsError`.  Snapshot parts not named in
        ``targets`` are skipped, as are target names the snapshot does not
        have.  Returns the names of the restored parts.

        The stat of the restored files is recorded in ``baseline.json`` so
        that the next :meth:`save` can link them from this snapshot instead
        of copying them again (restored copies have new inodes). With
        ``baseline_store`` (a job reusing another job's interim result) the
        baseline goes to that store: its next save links from this snapshot
        (immutable) instead of copying the whole mapset.
        """
        m = self.manifest(step)
        step_dir = self.step_path(step)
        _check_part_names(targets)
        names = [n for n in sorted(targets) if n in m["parts"]]
        for n in names:
            tgt = Path(targets[n])
            if not replace and tgt.exists() and (not tgt.is_dir() or any(tgt.iterdir())):
                raise FileExistsError(errno.EEXIST, "restore target is not empty", str(tgt))

        t0 = _now_coarse_ns()
        base_parts = {}
        for n in names:
            entries = m["parts"][n].get("entries") or {}
            tgt = Path(targets[n])
            self._restore_part(step_dir / PARTS_DIR / n, entries, tgt, m["parts"][n].get("mode"))
            real = os.path.realpath(tgt)
            # stat the restored files (t0 read before) for the baseline
            bentries = {}
            for rel, e in entries.items():
                if e.get("type") != "f":
                    continue
                try:
                    st = os.lstat(os.path.join(real, rel))
                except OSError:
                    continue
                bentries[rel] = _file_entry(st, t0)
            base_parts[n] = {"target": real, "entries": bentries}

        if names:
            owner = baseline_store or self
            old = owner._load_baseline()
            if old is not None and old.get("snapshot_id") == m.get("id"):
                merged = dict(old["parts"])
                merged.update(base_parts)
                base_parts = merged
            owner.root.mkdir(parents=True, exist_ok=True)
            _write_json_atomic(
                owner.root / BASELINE_FILE,
                {"step": step, "snapshot_id": m.get("id"), "parts": base_parts,
                 "snapshot_dir": str(step_dir), "created": time.time()},
            )
        return names

    def _restore_part(
        self, stored: Path, entries: Mapping[str, Mapping], target: Path, mode: int | None
    ) -> None:
        target = Path(os.path.abspath(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.restore-{uuid.uuid4().hex}"
        try:
            tmp.mkdir(0o700)
            tmp_s, stored_s = str(tmp), str(stored)
            dir_modes, copies = [], []
            for rel, e in entries.items():  # dirs come before their content
                t = e.get("type")
                dst = os.path.join(tmp_s, rel)
                if t == "d":
                    os.mkdir(dst, 0o700)
                    dir_modes.append((dst, e.get("mode")))
                elif t == "l":
                    os.symlink(e["target"], dst)
                elif t == "f":
                    copies.append((os.path.join(stored_s, rel), dst))
            _copy_files(copies)
            for dst, dmode in reversed(dir_modes):
                if dmode is not None:
                    os.chmod(dst, stat.S_IMODE(dmode))
            os.chmod(tmp, stat.S_IMODE(mode) if mode is not None else 0o755)
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
                _rmtree(trash)
            else:
                os.rename(tmp, target)
        finally:
            if tmp.exists():
                _rmtree(tmp)

    # ------------------------------------------------------------- deletion
    def delete(self, step: int) -> bool:
        """Delete the snapshot of ``step``; returns whether it existed.

        The step dir is first renamed away, so readers never see half of it.
        """
        d = self.step_path(step)
        if not os.path.lexists(d):
            return False
        trash = self._trash_name()
        os.rename(d, trash)
        _rmtree(trash)
        return True

    def prune(self, keep: Iterable[int]) -> list[int]:
        """Delete all snapshots whose step is not in ``keep``; returns deleted steps.

        Also removes invalid step dirs (no manifest) that are not kept.
        Storage of files shared with kept snapshots stays (hard links).
        """
        keep = set(keep)
        deleted = []
        for s in self._candidate_steps():
            if s not in keep and self.delete(s):
                deleted.append(s)
        return deleted

    def keep_only_latest(self) -> list[int]:
        """Delete all snapshots but the latest valid one."""
        latest = self.latest()
        return self.prune({latest.step} if latest else set())

    def delete_all(self) -> None:
        """Remove the whole job root (snapshots, job.json, baseline)."""
        if not os.path.lexists(self.root):
            return
        trash = self.root.parent / f".{self.root.name}.deleted-{uuid.uuid4().hex}"
        try:
            os.rename(self.root, trash)
        except OSError:
            trash = self.root
        _rmtree(trash)

    # ------------------------------------------------------------- accounting
    def disk_usage(self, *, allocated: bool = False) -> int:
        """Bytes used below ``root``, counting every inode once.

        Files hard linked between snapshots count once.  By default the
        apparent size (``st_size``) of files and symlinks is summed; with
        ``allocated=True`` the allocated blocks (``st_blocks * 512``) of all
        entries including directories.
        """
        seen: set[tuple[int, int]] = set()
        total = 0
        stack = [str(self.root)]
        while stack:
            d = stack.pop()
            try:
                it = os.scandir(d)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(e.path)
                        if allocated:
                            total += st.st_blocks * 512
                        continue
                    key = (st.st_dev, st.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                    total += st.st_blocks * 512 if allocated else st.st_size
        return total

    def newest_mtime(self) -> float | None:
        """Most recent modification time of the job (manifests, job.json, root).

        Used to decide when interim results of an abandoned job may be
        removed.  ``None`` if the root does not exist.
        """
        times = []
        paths = [self.root, self.root / JOB_FILE, self.root / BASELINE_FILE, self.steps_dir]
        paths += [self.step_path(s) / MANIFEST_NAME for s in self._candidate_steps()]
        for p in paths:
            try:
                times.append(os.stat(p).st_mtime)
            except OSError:
                pass
        return max(times) if times else None


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
