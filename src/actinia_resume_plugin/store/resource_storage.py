# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""A user's resource storage: list, size and prune it in whole units.

The resource storage of a user is ``{grass_resource_dir}/{user_id}/``. It
holds

* ``interim/<resource_id>/``: the interim results (snapshots) of one job,
  written by our worker (see :mod:`.snapshot_store`);
* ``kept_mapsets/<resource_id>/``: the failed iteration's own mapset of
  one job, kept for its resume (see :mod:`.kept_mapset`);
* ``<resource_id>/``: the exported results of one job (actinia's
  ``ResourceStorageFilesystem``);
* anything else an operator or another tool left there.

Each of those is one **unit**. Cleaning only ever removes whole units: a
unit is first renamed to a hidden ``.<name>.deleted-<uuid>`` sibling (one
atomic ``rename``; readers see the whole unit or nothing) and only then
removed. actinia-core's ``find -mtime +N -delete`` deletes single files and
can leave half a saved mapset behind; the age of a unit here is the age of
its *newest* entry, so a unit with any recent content is kept whole.

Sizing walks the tree with :func:`os.scandir` (one ``lstat`` per entry, no
subprocess). ``used`` has one definition that does not depend on the
machine's ``du`` (coreutils 9.1 on Debian 12 counts directory sizes, 9.7 on
Debian 13 does not): the apparent bytes of regular files and symlinks, each
inode (hard links) counted once; directories are not counted. Plain
Python, no Flask, no actinia imports: whether a job is still running is
decided by a callback the caller passes in.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .fsops import rmtree
from .job_record import read_job_record
from .kept_mapset import kept_resource_id
from .layout import (
    DELETED_MARK,
    INTERIM_DIR,
    KEPT_DIR,
    OBJECTS_DIR,
    RESOURCE_PREFIX,
    deleted_name,
    user_storage_dir,
)
from .snapshot_store import SnapshotStore

__all__ = [
    "MAX_OLDERTHAN_DAYS",
    "RemovalResult",
    "StorageReport",
    "StorageUnit",
    "clean_user_storage",
    "evict_kept_mapsets",
    "evict_unused_interim_results",
    "expire_interim_results",
    "parse_olderthan",
    "remove_units",
    "scan_user_storage",
    "storage_usage",
]

DAY = 86400.0
#: Larger ``olderthan`` values are refused (100 years: surely a mistake).
MAX_OLDERTHAN_DAYS = 36500

KIND_INTERIM = "interim_results"
KIND_KEPT = "kept_mapset"
KIND_RESOURCE = "resource"
KIND_OTHER = "other"
KIND_TRASH = "trash"

_DIGITS_RE = re.compile(r"^[0-9]+$")

#: ``protect(user_id, resource_ids) -> {resource_id: reason}``: the jobs
#: whose units must not be removed (running, accepted) and why.
ProtectFn = Callable[[str, list], Mapping[str, str]]


def parse_olderthan(value) -> int | None:
    """``olderthan`` from a query string: whole days, 0 … 36500.

    ``None`` (parameter absent) stays ``None``; anything else that is not a
    plain non-negative integer raises :class:`ValueError` with a message
    meant for the API client.
    """
    if value is None:
        return None
    text = str(value)
    if not _DIGITS_RE.match(text):
        raise ValueError(
            f"olderthan must be a whole number of days between 0 and "
            f"{MAX_OLDERTHAN_DAYS}, got {text!r}")
    days = int(text)
    if days > MAX_OLDERTHAN_DAYS:
        raise ValueError(
            f"olderthan = {days} days is more than {MAX_OLDERTHAN_DAYS} days "
            "(100 years); refusing a value that is most likely a mistake")
    return days


# --------------------------------------------------------------------------
# sizing
# --------------------------------------------------------------------------


@dataclass
class _Tally:
    bytes: int = 0
    files: int = 0
    dirs: int = 0
    newest_mtime: float = 0.0


def _tally_entry(st: os.stat_result, tally: _Tally, seen: set) -> None:
    """Count one entry: see the module docstring for what ``bytes`` is."""
    if st.st_mtime > tally.newest_mtime:
        tally.newest_mtime = st.st_mtime
    if stat.S_ISDIR(st.st_mode):
        tally.dirs += 1
        return
    tally.files += 1
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        return
    if st.st_nlink > 1:
        key = (st.st_dev, st.st_ino)
        if key in seen:
            return
        seen.add(key)
    tally.bytes += st.st_size


def _scan_tree(path: str, seen: set, objects: dict | None = None) -> _Tally:
    """Apparent size, entry counts and newest mtime of ``path`` (a file or
    a directory tree, symlinks not followed). Entries vanishing during the
    walk are skipped. ``objects`` (a job root): collects ``{object name:
    size}`` of the regular files in ``objects/<fan>/``."""
    tally = _Tally()
    objects_dir = os.path.join(path, OBJECTS_DIR)
    try:
        st = os.lstat(path)
    except OSError:
        return tally
    _tally_entry(st, tally, seen)
    if not stat.S_ISDIR(st.st_mode):
        return tally
    stack = [path]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                _tally_entry(st, tally, seen)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                elif objects is not None and stat.S_ISREG(st.st_mode):
                    fan = os.path.dirname(entry.path)
                    if os.path.dirname(fan) == objects_dir:
                        objects[os.path.basename(fan) + entry.name] = \
                            st.st_size
    return tally


def storage_usage(path) -> int:
    """Bytes below ``path``: apparent sizes of regular files and symlinks,
    each inode once (hard links), directories not counted.

    The one definition of ``used``; independent of the coreutils version,
    unlike ``du -sb`` (9.1 counts directory sizes, 9.7 does not).
    Self-contained (the scans below apply the same rule per entry);
    symlinks are not followed, entries vanishing during the walk are
    skipped.
    """
    seen: set = set()
    total = 0
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            st = os.lstat(current)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            try:
                with os.scandir(current) as it:
                    stack.extend(entry.path for entry in it)
            except OSError:
                pass
            continue
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            continue
        if st.st_nlink > 1:
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
        total += st.st_size
    return total


def _snapshot_steps(root: str, object_sizes: dict | None = None
                    ) -> tuple[list[int], dict[int, str]]:
    """The committed interim results of a job root and the damaged step
    dirs with the reason, by the store's one definition
    (:meth:`.SnapshotStore.survey`): never a step a PUT cannot restore.
    ``object_sizes``: the objects the size walk saw (no second lstat)."""
    try:
        return SnapshotStore(root).survey(object_sizes)
    except OSError:
        return [], {}


@dataclass
class StorageUnit:
    """One removable unit of a user's resource storage."""

    kind: str
    name: str
    path: str
    bytes: int = 0
    files: int = 0
    newest_mtime: float = 0.0
    steps: list[int] = field(default_factory=list)
    damaged: dict = field(default_factory=dict)  # step -> why
    job: dict = field(default_factory=dict)

    @property
    def resource_id(self) -> str | None:
        """The job the unit belongs to (interim results, exported files)."""
        if self.kind in (KIND_INTERIM, KIND_RESOURCE):
            return self.name
        if self.kind == KIND_KEPT:
            return kept_resource_id(self.name)
        return None

    def age_seconds(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        return max(0.0, now - self.newest_mtime)

    def to_dict(self, now: float | None = None) -> dict:
        doc = {
            "kind": self.kind,
            "bytes": self.bytes,
            "files": self.files,
            "newest_mtime": _iso(self.newest_mtime),
            "age_seconds": round(self.age_seconds(now), 1),
        }
        if self.resource_id:
            doc["resource_id"] = self.resource_id
        else:
            doc["name"] = self.name
        if self.kind == KIND_INTERIM:
            newest = self.steps[-1] if self.steps else None
            step_ids = self.job.get("step_ids") or []
            doc.update(
                steps=len(self.steps),
                newest_step=newest,
                newest_step_id=(step_ids[newest] if newest is not None
                                and newest < len(step_ids) else None),
                failed_step=self.job.get("failed_step"),
            )
            if self.damaged:
                doc["damaged_steps"] = [
                    {"step": step, "reason": f"The {why}."}
                    for step, why in sorted(self.damaged.items())]
        elif self.kind == KIND_KEPT:
            # ".<rid>.keeping-…"/".<rid>.adopting-…": in use by its job
            doc["state"] = "kept" if self.name == self.resource_id else (
                self.name.rsplit(".", 1)[-1].split("-", 1)[0])
        return doc


def _iso(timestamp: float) -> str | None:
    if not timestamp:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


@dataclass
class StorageReport:
    """The result of :func:`scan_user_storage`."""

    user_id: str
    path: str
    used: int
    files: int
    units: list[StorageUnit]
    scan_seconds: float
    scanned_at: float

    def usage(self, quota_bytes: int) -> dict:
        """``used``/``free``/``quota``/``free_percent`` exactly as actinia's
        StorageModel (free may be negative when the quota is exceeded)."""
        free = quota_bytes - self.used
        return {
            "used": self.used,
            "free": free,
            "quota": quota_bytes,
            "free_percent": int(100 * free / quota_bytes) if quota_bytes
            else 0,
        }

    def of_kind(self, kind: str) -> list[StorageUnit]:
        return [u for u in self.units if u.kind == kind]

    def to_dict(self, quota_bytes: int) -> dict:
        now = self.scanned_at
        interim = self.of_kind(KIND_INTERIM)
        kept = self.of_kind(KIND_KEPT)
        return {
            **self.usage(quota_bytes),
            "files": self.files,
            "interim_results_bytes": sum(u.bytes for u in interim),
            "interim_results": [u.to_dict(now) for u in interim],
            "kept_mapsets_bytes": sum(u.bytes for u in kept),
            "kept_mapsets": [u.to_dict(now) for u in kept],
            "resources": [u.to_dict(now)
                          for u in self.of_kind(KIND_RESOURCE)],
            "other": [u.to_dict(now) for u in self.units
                      if u.kind in (KIND_OTHER, KIND_TRASH)],
            "scan_seconds": round(self.scan_seconds, 4),
        }


def _unit_kind(name: str) -> str:
    return KIND_RESOURCE if name.startswith(RESOURCE_PREFIX) else KIND_OTHER


def scan_user_storage(resource_dir, user_id: str) -> StorageReport:
    """Size the resource storage of ``user_id`` and split it into units."""
    started = time.monotonic()
    path = user_storage_dir(resource_dir, user_id)
    seen: set = set()
    units: list[StorageUnit] = []
    used = files = 0
    try:
        top_stat = os.lstat(path)
    except OSError:
        top_stat = None
    if top_stat is not None and stat.S_ISDIR(top_stat.st_mode):
        with os.scandir(path) as it:
            top = sorted(it, key=lambda e: e.name)
        for entry in top:
            if entry.name == INTERIM_DIR and entry.is_dir(
                    follow_symlinks=False):
                try:
                    with os.scandir(entry.path) as it:
                        jobs = sorted(it, key=lambda e: e.name)
                except OSError:
                    jobs = []
                for job in jobs:
                    kind = KIND_INTERIM
                    if job.name.startswith("."):
                        kind = (KIND_TRASH if DELETED_MARK in job.name
                                else KIND_OTHER)
                    elif not job.is_dir(follow_symlinks=False):
                        kind = KIND_OTHER
                    units.append(_unit(kind, job.name, job.path, seen))
                continue
            if entry.name == KEPT_DIR and entry.is_dir(follow_symlinks=False):
                units.extend(_kept_units(entry.path, seen))
                continue
            kind = _unit_kind(entry.name)
            if entry.name.startswith(".") and DELETED_MARK in entry.name:
                kind = KIND_TRASH
            elif kind == KIND_RESOURCE and not entry.is_dir(
                    follow_symlinks=False):
                kind = KIND_OTHER
            units.append(_unit(kind, entry.name, entry.path, seen))
    for unit in units:
        used += unit.bytes
        files += unit.files
    return StorageReport(
        user_id=user_id, path=path, used=used, files=files, units=units,
        scan_seconds=time.monotonic() - started, scanned_at=time.time(),
    )


def _kept_units(path: str, seen: set) -> list[StorageUnit]:
    """The units below ``kept_mapsets/``: one per job (also one being kept
    or adopted: it belongs to its job, which protects it while running),
    trash, and anything else."""
    try:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return []
    units = []
    for entry in entries:
        if kept_resource_id(entry.name) is not None:
            kind = KIND_KEPT
        elif entry.name.startswith(".") and DELETED_MARK in entry.name:
            kind = KIND_TRASH
        else:
            kind = KIND_OTHER
        units.append(_unit(kind, entry.name, entry.path, seen))
    return units


def _unit(kind: str, name: str, path: str, seen: set) -> StorageUnit:
    objects: dict | None = {} if kind == KIND_INTERIM else None
    tally = _scan_tree(path, seen, objects)
    unit = StorageUnit(kind=kind, name=name, path=path, bytes=tally.bytes,
                       files=tally.files, newest_mtime=tally.newest_mtime)
    if kind == KIND_INTERIM:
        unit.steps, unit.damaged = _snapshot_steps(path, objects)
        # the intact fields (one rule for every reader: :mod:`.job_record`)
        unit.job = read_job_record(path).data
    return unit


# --------------------------------------------------------------------------
# removal
# --------------------------------------------------------------------------


@dataclass
class RemovalResult:
    """What a cleaning removed, skipped and freed."""

    removed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    freed_bytes: int = 0
    kept: int = 0

    def to_dict(self) -> dict:
        return {
            "removed": self.removed,
            "skipped": self.skipped,
            "errors": self.errors,
            "freed_bytes": self.freed_bytes,
            "kept": self.kept,
        }


def remove_unit(unit: StorageUnit) -> None:
    """Remove a whole unit: rename it away (atomic), then delete it."""
    if unit.kind == KIND_TRASH:
        target = unit.path
    else:
        parent, name = os.path.split(unit.path)
        target = os.path.join(parent, deleted_name(name))
        os.rename(unit.path, target)
    if os.path.isdir(target) and not os.path.islink(target):
        rmtree(target)
    else:
        try:
            os.unlink(target)
        except FileNotFoundError:
            pass


def remove_units(
    user_id: str,
    units: Iterable[StorageUnit],
    *,
    older_than_seconds: float | None = None,
    protect: ProtectFn | None = None,
    now: float | None = None,
) -> RemovalResult:
    """Remove ``units`` whose newest content is older than
    ``older_than_seconds`` (all of them for ``None``), except the units of
    jobs ``protect`` names (running or accepted jobs)."""
    now = time.time() if now is None else now
    units = list(units)
    candidates = [
        u for u in units
        if u.kind == KIND_TRASH or older_than_seconds is None
        or u.age_seconds(now) > older_than_seconds
    ]
    result = RemovalResult(kept=len(units) - len(candidates))
    rids = sorted({u.resource_id for u in candidates if u.resource_id})
    protected = dict(protect(user_id, rids)) if (protect and rids) else {}
    for unit in candidates:
        reason = protected.get(unit.resource_id) if unit.resource_id else None
        doc = unit.to_dict(now)
        if reason:
            doc["reason"] = reason
            result.skipped.append(doc)
            continue
        try:
            remove_unit(unit)
        except FileNotFoundError:
            continue  # removed concurrently (e.g. the retention thread)
        except OSError as exc:
            doc["error"] = str(exc)
            result.errors.append(doc)
            continue
        result.removed.append(doc)
        result.freed_bytes += unit.bytes
    return result


def clean_user_storage(
    resource_dir,
    user_id: str,
    *,
    olderthan_days: int | None = None,
    protect: ProtectFn | None = None,
    kinds: Iterable[str] | None = None,
    now: float | None = None,
) -> RemovalResult:
    """DELETE of the resource storage: remove the user's units (of
    ``kinds``, default all), or only those older than ``olderthan_days``;
    units of protected jobs stay. The user directory itself stays (actinia
    re-creates it after ``rm -rf``)."""
    report = scan_user_storage(resource_dir, user_id)
    units = report.units
    if kinds is not None:
        kinds = set(kinds)
        units = [u for u in units if u.kind in kinds]
    older = None if olderthan_days is None else olderthan_days * DAY
    result = remove_units(user_id, units, older_than_seconds=older,
                          protect=protect, now=now)
    return result


def list_users(resource_dir) -> list[str]:
    """User directories below the resource dir."""
    try:
        with os.scandir(str(resource_dir)) as it:
            return sorted(e.name for e in it if not e.name.startswith(".")
                          and e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def expire_interim_results(
    resource_dir,
    ttl_days: float,
    *,
    protect: ProtectFn | None = None,
    now: float | None = None,
) -> dict[str, RemovalResult]:
    """Retention (``[MISC] interim_results_ttl_days``): remove every user's
    interim results whose newest content is older than ``ttl_days``, except
    those of running/accepted jobs. Exported resources are not touched.
    Returns the users for which something was removed, skipped or failed."""
    results = {}
    for user_id in list_users(resource_dir):
        result = _expire_user(resource_dir, user_id, ttl_days, protect, now)
        if result.removed or result.skipped or result.errors:
            results[user_id] = result
    return results


def _expire_user(resource_dir, user_id, ttl_days, protect, now):
    report = scan_user_storage(resource_dir, user_id)
    units = [u for u in report.units
             if u.kind in (KIND_INTERIM, KIND_KEPT)
             or (u.kind == KIND_TRASH
                 and os.path.basename(os.path.dirname(u.path))
                 in (INTERIM_DIR, KEPT_DIR))]
    result = remove_units(user_id, units, older_than_seconds=ttl_days * DAY,
                          protect=protect, now=now)
    # a kept mapset whose job has no interim results left is of no use
    removed = {(d["kind"], d.get("resource_id")) for d in result.removed}
    interim = {u.name for u in report.of_kind(KIND_INTERIM)
               if (KIND_INTERIM, u.name) not in removed}
    orphans = [u for u in report.of_kind(KIND_KEPT)
               if u.name == u.resource_id and u.name not in interim
               and (KIND_KEPT, u.name) not in removed]
    if orphans:
        more = remove_units(user_id, orphans, protect=protect, now=now)
        result.removed += more.removed
        result.skipped += more.skipped
        result.errors += more.errors
        result.freed_bytes += more.freed_bytes
    return result


def evict_kept_mapsets(resource_dir, user_id: str, need_bytes: int,
                       keep: Iterable[str] = ()) -> RemovalResult:
    """Make room for ``need_bytes`` by removing the user's kept mapsets
    (never those of the jobs in ``keep``, never one being kept or adopted),
    the oldest first. The first thing to go when space is needed: a kept
    mapset only saves a resume the copy of what the store holds anyway."""
    keep = set(keep)
    report = scan_user_storage(resource_dir, user_id)
    candidates = sorted(
        (u for u in report.of_kind(KIND_KEPT)
         if u.name == u.resource_id and u.name not in keep),
        key=lambda u: u.newest_mtime)
    return _remove_oldest(candidates, need_bytes)


def evict_unused_interim_results(resource_dir, user_id: str, need_bytes: int,
                                 keep: Iterable[str] = ()) -> RemovalResult:
    """Make room for ``need_bytes`` of interim results of ``user_id`` by
    removing the interim results of the user's *ended* jobs (job record
    status ``error``), the least recently used first, never those named in
    ``keep`` (the job saving, the job it reuses). Interim results that
    serve reuse across jobs are a cache: when space is needed, the oldest
    unused go first."""
    keep = set(keep)
    report = scan_user_storage(resource_dir, user_id)
    candidates = sorted(
        (u for u in report.of_kind(KIND_INTERIM)
         if u.name not in keep and u.job.get("status") == "error"),
        key=lambda u: u.newest_mtime)
    return _remove_oldest(candidates, need_bytes)


def _remove_oldest(candidates: list[StorageUnit],
                   need_bytes: int) -> RemovalResult:
    """Remove ``candidates`` in order until ``need_bytes`` are freed (the
    one eviction loop of kept mapsets and of unused interim results). A
    unit gone meanwhile (adopted, removed by another sweep) is skipped."""
    result = RemovalResult()
    for unit in candidates:
        if result.freed_bytes >= need_bytes:
            break
        try:
            remove_unit(unit)
        except FileNotFoundError:
            continue
        except OSError as exc:
            result.errors.append({**unit.to_dict(), "error": str(exc)})
            continue
        result.removed.append(unit.to_dict())
        result.freed_bytes += unit.bytes
    return result
