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
  stat change ("racy git"); such entries are re-hashed (:func:`.entry.is_racy`).
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

This module is the facade: a save is :mod:`.scan` (what changed) →
:mod:`.objects` (store the new contents) → :mod:`.manifest` (the delta) →
commit (one rename); a restore is :mod:`.manifest` (the chain, folded) →
:mod:`.restorer`. The names on disk and what a committed interim result is
are :mod:`.layout`'s, the record types :mod:`.entry`'s, the errors
:mod:`.errors`'.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Union

from . import entry, fsops, job_record, scan
from .bulk import without_gc
from .entry import Entry, LiveState
from .errors import (
    SnapshotBudgetExceeded,
    SnapshotDamaged,
    SnapshotError,
    SnapshotNoSpace,
    SnapshotNotFound,
)
from .layout import (
    HOST,
    MANIFEST_NAME,
    MISSING,
    OBJECTS_DIR,
    STAGING_PREFIX,
    STEPS_DIR,
    TEMP_NAME_RE,
    TRASH_PREFIX,
    check_part_names,
    deleted_name,
    step_dirname,
    survey_steps,
    temp_name,
)
from .manifest import (
    Manifest,
    ManifestReader,
    SnapshotInfo,
    delta,
    fold,
    manifest_doc,
    write_manifest,
)
from .objects import ObjectStore
from .restorer import Restorer, check_targets

__all__ = ["SnapshotStore"]

PathLike = Union[str, "os.PathLike[str]"]

#: Staging/temporary names of another host (shared resource dir) are only
#: removed once older than this many seconds.
STALE_SECONDS = 300
#: Those of a *live* local pid (could be pid reuse) after this.
STALE_LIVE_PID_SECONDS = 24 * 3600
#: Free space kept on the file system when saving (bytes, at most this and
#: at most 5 % of the file system): a snapshot never fills the disk the
#: running job (exports, other jobs) still writes to.
FREE_SPACE_RESERVE = 64 * 1024 * 1024

# staging dirs currently being written by this process (never "stale")
_ACTIVE_TEMP_DIRS: set[str] = set()


class SnapshotStore:
    """Snapshots of one job (one actinia resource id) below ``root``.

    ``root`` need not exist; it is created by the first write.
    """

    def __init__(self, root: PathLike):
        self.root = Path(root)
        self._live: LiveState | None = None
        self._manifests = ManifestReader(self.root / STEPS_DIR)
        self._objects = ObjectStore(os.path.join(os.fspath(self.root),
                                                 OBJECTS_DIR))
        self._restorer = Restorer(self._objects)
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
        return self.steps_dir / step_dirname(step)

    def object_path(self, obj: str) -> str:
        """The file of a loose object (see :meth:`object_location`)."""
        return self._objects.path(obj)

    def object_location(self, obj: str) -> tuple[str, int, int | None]:
        """``(file, offset, length)`` of the bytes of object ``obj``: in its
        pack, or the whole loose file (length None)."""
        self._objects.packs.sync()
        blob = self._objects.packs.locate(obj)
        if blob is not None:
            return blob
        return self._objects.path(obj), 0, None

    # ------------------------------------------------------------- readers
    def list(self) -> list[SnapshotInfo]:
        """All committed snapshots sorted by step.

        Staging dirs, step dirs without a valid manifest (crash, damage) and
        snapshots whose base chain is broken are ignored.
        """
        cache: dict = {}
        out = []
        for step in self._manifests.candidate_steps():
            chain = self._manifests.chain(step, cache)
            if chain is not None:
                out.append(chain[-1].info())
        return out

    def steps(self) -> list[int]:
        """Steps with a committed snapshot, ascending."""
        return [info.step for info in self.list()]

    def get(self, step: int) -> SnapshotInfo | None:
        """Snapshot taken after ``step`` or ``None``."""
        chain = self._manifests.chain(step)
        return None if chain is None else chain[-1].info()

    def head(self, step: int) -> SnapshotInfo | None:
        """:meth:`get` from the heads of the manifests (ids, bases, meta,
        part names; every seal checked): what a resume reads before it
        restores, without parsing 100,000 entries (0.3-0.5 s). The entries
        are parsed, and checked, by whatever reads the state."""
        chain = self._manifests.chain(step, head=True)
        return None if chain is None else chain[-1].info()

    def latest(self) -> SnapshotInfo | None:
        """Snapshot with the highest step or ``None``."""
        cache: dict = {}
        for step in reversed(self._manifests.candidate_steps()):
            chain = self._manifests.chain(step, cache)
            if chain is not None:
                return chain[-1].info()
        return None

    def state(self, step: int) -> tuple[dict, dict]:
        """The full state of snapshot ``step``: ``({part: {rel: Entry}},
        {part: mode})``, folded from its chain of deltas."""
        return fold(self._chain_or_raise(step))

    def _chain_or_raise(self, step: int) -> list[Manifest]:
        chain = self._manifests.chain(step)
        if chain is None:
            raise SnapshotNotFound(step)
        return chain

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

    @without_gc
    def survey(self, object_sizes: Mapping[str, int] | None = None
               ) -> tuple[list[int], dict[int, str]]:
        """The committed steps (ascending) and ``{step: why}`` for every
        other step dir, by the one definition of a *committed interim
        result* (:func:`.layout.survey_steps`), shared with
        :meth:`damage` and the resource storage listing. Objects' bytes
        are checked when restored (and by a dry run).

        ``object_sizes`` (``{object name: size}`` of the regular files
        below ``objects/``, from a walk the caller makes anyway) saves the
        ``lstat`` per object."""
        cache: dict = {}
        self._objects.packs.sync()
        # (object, size) -> problem: files of equal content share an
        # object (100,000 files, 40,000 objects: one lstat each)
        checked: dict = {}

        def problem(item: Entry) -> str | None:
            key = (item.obj, item.size)
            if key not in checked:
                checked[key] = self._objects.problem(item, sizes=object_sizes)
            return checked[key]

        def delta_problems(manifest: Manifest) -> list[tuple]:
            return [(name, rel, why)
                    for name, (_mode, changed, _removed)
                    in manifest.parts.items()
                    for rel, item in changed.items() if item.kind == "f"
                    and (why := problem(item))]

        return survey_steps(
            self._manifests.candidate_steps(),
            lambda step: self._manifests.chain_checked(step, cache),
            delta_problems)

    # ------------------------------------------------------------- job record
    def write_job(self, record: dict) -> None:
        """Atomically replace ``job.json`` (see :mod:`.job_record`)."""
        job_record.write_job_record(self.root, record)

    def read_job(self) -> dict | None:
        """The intact fields of ``job.json`` (see :mod:`.job_record`: a
        damaged record or field counts as missing), ``None`` without one."""
        record = job_record.read_job_record(self.root)
        return record.data if record.found and record.data else None

    # ------------------------------------------------------------- save
    @without_gc
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
        self._manifests.clear()
        dirname = step_dirname(step)
        check_part_names(parts)
        meta = dict(meta or {})
        json.dumps(meta)  # fail early on non-serialisable meta
        t0 = entry.now_coarse_ns()  # before any stat (racy rule)
        plan = scan.plan_save(parts, t0, self._built_live())
        if budget_bytes is not None and plan.bytes_needed > budget_bytes:
            raise SnapshotBudgetExceeded(plan.bytes_needed, budget_bytes)
        self._check_free_space(plan.bytes_needed)
        with _no_space_as_snapshot_error():
            self.root.mkdir(parents=True, exist_ok=True)
            self.cleanup_stale()
            written = self._objects.store_new_files(plan, self._live)
        # the paths of 100,000 new files are no longer needed: free them
        # before the manifest is built (the job's peak memory)
        new_files = len(plan.new_files)
        plan.new_files = []
        base = self._live
        if full or base is None or base.step >= step or base.foreign:
            base = None  # a self-contained manifest
        manifest = self._delta_doc(step, plan, base, meta)
        meta.update(
            bytes_copied=written[1], files_copied=written[0],
            files_unchanged=plan.files - new_files,
            entries_written=sum(len(p["changed"]) + len(p["removed"])
                                for p in manifest["parts"].values()),
        )
        meta["seconds"] = round(time.monotonic() - started, 6)
        manifest["meta"] = meta
        with _no_space_as_snapshot_error():
            self._commit(manifest, dirname)
        self._live = LiveState(step, manifest["id"], plan.state, plan.modes,
                               plan.sources, written[2])
        return SnapshotInfo(step=step, path=self.step_path(step), meta=meta,
                            created=manifest["created"],
                            parts=sorted(plan.state), id=manifest["id"])

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

    @staticmethod
    def _delta_doc(step, plan: scan.SavePlan, base: LiveState | None,
                   meta) -> dict:
        """The manifest of a save: each part as a delta on ``base`` (only
        the plan's fresh paths are compared while the part's source dir
        is the base's), or whole without a base."""
        parts = {}
        for name, entries in plan.state.items():
            old = base.state.get(name, {}) if base else {}
            changed, removed = delta(
                old, entries, plan.fresh.get(name)
                if base and plan.sources[name] == base.sources.get(name)
                else None)
            parts[name] = {
                "mode": plan.modes[name], "changed": changed,
                "removed": removed,
            }
        return manifest_doc(step, parts, base.step if base else None,
                            base.id if base else None, meta)

    def _commit(self, manifest: dict, dirname: str) -> None:
        """Write the manifest into a staging dir and rename it into steps/
        (the one atomic step that makes the snapshot visible)."""
        staging = self.root / temp_name(STAGING_PREFIX)
        _ACTIVE_TEMP_DIRS.add(str(staging))
        try:
            staging.mkdir()
            with open(staging / MANIFEST_NAME, "w", encoding="utf-8") as handle:
                fsops.write_sealed(handle, manifest, write_manifest)
                handle.flush()
                os.fsync(handle.fileno())
            fsops.fsync_path(staging, directory=True)
            self.steps_dir.mkdir(exist_ok=True)
            final = self.steps_dir / dirname
            trash = None
            if os.path.lexists(final):
                trash = self._trash_name()
                os.rename(final, trash)
            os.rename(staging, final)
            fsops.fsync_path(self.steps_dir, directory=True)
            if trash is not None:
                fsops.rmtree(trash)
        finally:
            _ACTIVE_TEMP_DIRS.discard(str(staging))
            if os.path.lexists(staging):
                fsops.rmtree(staging)

    def _trash_name(self) -> Path:
        return self.root / temp_name(TRASH_PREFIX)

    # ------------------------------------------------------------- restore
    def damage_of_files(self, step: int, files: Iterable) -> str | None:
        """:meth:`damage` with ``content`` for only some files of snapshot
        ``step``, ``[(part, rel, entry)]``: those a restore would read (a
        dry run of a resume in a kept mapset reads what it would put
        back)."""
        checked: set = set()
        self._objects.packs.sync()
        try:
            for name, rel, item in files:
                if item.obj not in checked:
                    self._objects.check(step, name, rel, item, True)
                    checked.add(item.obj)
        except SnapshotDamaged as exc:
            return f"The {exc}."
        return None

    def verify(self, step: int, content: bool = True) -> None:
        """Check snapshot ``step``: its manifests (sealed), every object's
        presence and size and, with ``content``, every object's bytes
        against its hash. Raises :class:`SnapshotNotFound` (no manifest)
        or :class:`SnapshotDamaged`."""
        chain, problem = self._manifests.chain_checked(step)
        if chain is None:
            if problem.reason == MISSING:
                raise SnapshotNotFound(step)
            raise problem
        checked: dict = {}  # object -> size found intact (each once)
        self._objects.packs.sync()
        for name, entries in fold(chain)[0].items():
            for rel, item in entries.items():
                if item.kind == "f" and checked.get(item.obj) != item.size:
                    self._objects.check(step, name, rel, item, content)
                    checked[item.obj] = item.size

    @without_gc
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
        chain = self._chain_or_raise(step)
        state, modes = fold(chain)
        check_part_names(targets)
        names = [n for n in sorted(targets) if n in state]
        check_targets(targets, names, replace)
        t0 = entry.now_coarse_ns()
        live_state = self._restorer.restore_parts(step, state, modes,
                                                  targets, names, t0)
        self.last_restore = self._restorer.stats(state, names)
        self._manifests.clear()
        owner = self if into is None else into
        owner.take_live_state(LiveState(
            step, chain[-1].id, live_state, {n: modes[n] for n in names},
            {name: os.path.realpath(os.path.abspath(targets[name]))
             for name in names},
            None,  # the objects: from the state when a save needs them
            None if owner.root == self.root else str(self.objects_dir)))
        return names

    # ------------------------------------------- kept mapsets (adoption.py)
    def live_state(self) -> LiveState | None:
        """What this store knows about the live dirs (read only): the state
        it last saved, restored or adopted with each file's live stat, or
        ``None``. A failed job keeps it next to its mapset
        (:mod:`.kept_mapset`), so that the next iteration can tell the files
        the failed step changed from those it did not."""
        return self._live

    def _built_live(self) -> LiveState | None:
        """The live state with its state built (an adoption defers it);
        ``None`` when it cannot be built (its manifests are gone or
        damaged): the save then hashes every file and writes a
        self-contained manifest, as after no restore at all."""
        try:
            if self._live is not None:
                self._live.state.keys()  # built here, if it is not yet
        except SnapshotError:
            self._live = None
        return self._live

    def take_live_state(self, live: LiveState) -> None:
        """Take ``live`` as what the live dirs hold, as after a save of
        this store: its next :meth:`save` writes only what changes from
        here on. A restore from another job's store (reuse) hands its
        result to the reusing job's store this way (``live.foreign``: the
        objects dir the state's objects are in)."""
        self._live = live

    def put_back(self, step: int, part: str, files: list, t0: int) -> dict:
        """Restore single files (and symlinks) of snapshot ``step``'s
        ``part``: ``files`` is ``[(rel, dst, Entry)]`` with paths ``dst``
        that do not exist. Each object is checked against its record first,
        as in every restore (:class:`SnapshotDamaged`). Returns ``{rel:
        Entry}`` with the live stat of the new files. An adoption puts back
        only what the failed step changed."""
        return self._restorer.copy_files(step, part, list(files), t0)

    @without_gc
    def adopt_live(self, step: int, state: dict | None, modes: dict,
                   sources: dict, *, snapshot_id: str | None = None,
                   load=None, view=None) -> None:
        """Take ``state`` (part -> {rel: Entry} with live stats) as the live
        dirs' state after snapshot ``step``, as :meth:`restore` does for
        the dirs it restores: the next :meth:`save` writes only what
        changes from here on. ``load`` and ``view`` instead of ``state``
        (with the snapshot's ``snapshot_id``): the state is built when it
        is first needed (:class:`.entry.LiveState`)."""
        if snapshot_id is None:
            snapshot_id = self._chain_or_raise(step)[-1].id
        self._manifests.clear()
        self.take_live_state(LiveState(step, snapshot_id, state, dict(modes),
                                       dict(sources), load=load, view=view))

    # ------------------------------------------------------------- deletion
    def delete(self, step: int) -> bool:
        """Delete the snapshot of ``step``; returns whether it existed.

        Snapshots based on it are first rewritten as self-contained
        manifests (same id, same state), so they stay valid. Objects are
        left for :meth:`collect_garbage`.
        """
        return bool(self.prune(set(self._manifests.candidate_steps())
                               - {step}))

    def prune(self, keep: Iterable[int]) -> list[int]:
        """Delete all snapshots whose step is not in ``keep``; returns the
        deleted steps. Kept snapshots whose base is deleted are rewritten
        as self-contained manifests first."""
        keep = set(keep)
        candidates = self._manifests.candidate_steps()
        doomed = [s for s in candidates if s not in keep]
        if not doomed:
            return []
        cache: dict = {}
        for step in candidates:
            if step not in keep:
                continue
            chain = self._manifests.chain(step, cache)
            if chain is not None and any(m.step not in keep for m in chain):
                self._rewrite_full(chain)
        self._remove_steps(doomed)
        return doomed

    def _remove_steps(self, doomed: list[int]) -> None:
        """Rename the step dirs ``doomed`` away (each at once invisible),
        then delete them; objects are left for :meth:`collect_garbage`."""
        for step in doomed:
            trash = self._trash_name()
            try:
                os.rename(self.step_path(step), trash)
            except FileNotFoundError:
                continue
            fsops.rmtree(trash)
        if self._live is not None and self._live.step in doomed:
            self._live = None

    def prune_after(self, step: int) -> list[int]:
        """Delete the snapshots of the steps after ``step`` (left by an
        earlier iteration); returns the deleted steps. Reads no manifest
        when there is none: the first save of a resumed iteration would
        otherwise parse every manifest (100,000 entries each in a mapset
        of that size) to learn that nothing is to go."""
        doomed = [s for s in self._manifests.candidate_steps() if s > step]
        # a delta's base is always an earlier step (see save), so no
        # snapshot up to ``step`` rests on one of these: nothing to rewrite
        self._remove_steps(doomed)
        return doomed

    @staticmethod
    def _rewrite_full(chain: list[Manifest]) -> None:
        """Rewrite the last manifest of ``chain`` as a self-contained one
        (same id, same state) before its base goes."""
        manifest = chain[-1]
        state, modes = fold(chain)
        doc = manifest_doc(
            manifest.step,
            {name: {"mode": modes[name], "removed": [], "changed": entries}
             for name, entries in state.items()},
            None, None, manifest.meta, id=manifest.id,
            created=manifest.created)
        fsops.write_json_atomic(manifest.path / MANIFEST_NAME, doc,
                                writer=write_manifest)

    def collect_garbage(self) -> int:
        """Remove objects no committed snapshot refers to (left by pruning
        or a killed save); returns how many. The manifests it parses are
        not kept afterwards (a job's maintenance, not a plan)."""
        referenced = set()
        try:
            for step in self._manifests.candidate_steps():
                manifest = self._manifests.read(step)
                if manifest is None:
                    continue
                for _mode, changed, _removed in manifest.parts.values():
                    referenced.update(e.obj for e in changed.values()
                                      if e.kind == "f")
        finally:
            self._manifests.clear()
        return self._objects.collect_garbage(referenced)

    def forget_live(self) -> None:
        """Drop what this process knows about the live dirs (the stat of
        every file): a job that ends no longer saves, and at 100,000 files
        it is tens of MB that :meth:`collect_garbage` would add to."""
        self._live = None

    def delete_all(self) -> None:
        """Remove the whole job root (snapshots, objects, job record)."""
        trash = self.discard()
        if trash is not None:
            fsops.rmtree(trash)

    def discard(self) -> Path | None:
        """Rename the job root away at once (a resume no longer sees it)
        and return the renamed dir, for removal when nobody waits for it."""
        self._live = None
        if not os.path.lexists(self.root):
            return None
        trash = self.root.parent / deleted_name(self.root.name)
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
            for item in entries:
                if _is_stale(item, now, max_age):
                    fsops.rmtree(item.path)
                    removed.append(item.name)
        return removed


def _is_stale(item: os.DirEntry, now: float, max_age: float) -> bool:
    """A temporary name whose writer is gone (see :meth:`cleanup_stale`)."""
    match = TEMP_NAME_RE.match(item.name)
    if match is None or item.path in _ACTIVE_TEMP_DIRS:
        return False
    try:
        age = now - item.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return False
    if match.group("host") == HOST:
        pid = int(match.group("pid"))
        if pid == os.getpid() or not fsops.pid_alive(pid):
            return True
        return age > STALE_LIVE_PID_SECONDS  # pid was probably reused
    return age > max_age


@contextlib.contextmanager
def _no_space_as_snapshot_error():
    """A full disk while writing a snapshot is :class:`SnapshotNoSpace`
    (the job goes on without this interim result)."""
    try:
        yield
    except OSError as exc:
        if fsops.is_no_space(exc):
            raise SnapshotNoSpace(str(exc)) from exc
        raise
