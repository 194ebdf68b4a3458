# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Restoring the planned interim result into an iteration's new temporary
mapset, and the plan the iteration then runs.

- Before the job starts (:meth:`Restorer.prepare`) the planned interim
  result is checked cheaply (manifests, objects' presence and sizes); one
  damaged or removed since the PUT planned it is planned again from what is
  intact (:meth:`Restorer.replan`). An earlier job's interim result (reuse
  across jobs) is not planned again: the job then runs from the first step.
- The restore (:meth:`Restorer.restore`) adopts the failed iteration's
  kept mapset when there is an intact one (``store/adoption.py``: only what
  differs is put back), else copies the interim result from the store,
  every byte checked against its hash. One found damaged is never used:
  the plan falls back to the nearest intact earlier one (or the first
  step) and the notice says what was damaged where.
- The restored mapsets may name the old temporary mapset; those names are
  rewritten (``worker/mapset_names.py`` and actinia's
  ``change_mapsetname``, given as a callback).
- What was restored, from where and what it cost goes into the iteration's
  report (:attr:`Restorer.report`, the ``resume`` of its responses).

Plain Python: actinia's state comes in as arguments and callbacks; no
actinia import. A restore that cannot go on raises :class:`CannotRestore`,
which the worker's hook turns into actinia's process error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from actinia_resume_plugin import inputs, plans
from actinia_resume_plugin.store import (
    KeptListing,
    KeptMapset,
    NotAdoptable,
    SnapshotDamaged,
    SnapshotError,
    SnapshotStore,
    adopt_kept_mapset,
    interim_root,
    read_job_record,
)
from actinia_resume_plugin.worker.mapset_names import rename_mapset_references
from actinia_resume_plugin.worker.removals import DeferredRemovals
from actinia_resume_plugin.worker.report import resume_report
from actinia_resume_plugin.worker.saving import ADDITIONAL_PART

# Directories whose files name their mapset (group REF, raster VRT, tgis);
# they are rewritten on the restored copy only, as are the places
# worker/mapset_names.py knows (reclass headers and MASK, reclassed_to,
# subgroups, group targets, database paths written out in full).
MAPSET_NAME_DIRS = ("group", "cell_misc", "tgis")


class CannotRestore(Exception):
    """The iteration cannot start as planned; the message is the client's."""


def source_store(plan: dict, store: SnapshotStore, resource_dir,
                 user_id: str) -> SnapshotStore:
    """Where the plan's interim result is: this job's store, or (reuse
    across jobs) the store of the caller's earlier job. Restores copy, so
    the two jobs share nothing."""
    source = plan.get("source_resource_id")
    if not source:
        return store
    return SnapshotStore(interim_root(resource_dir, user_id, source))


class Restorer:
    """The plan of one iteration and the restore it starts from.

    ``plan`` is the planner's decision (JSON, set by the PUT handler),
    updated in place when the worker plans again. ``process_logs`` is the
    job's stdout logs by process id: the logs of reused steps are taken
    over from the interim result. ``on_plan(start)`` is called whenever a
    plan is applied (the worker counts the processes left to run).
    ``change_mapsetname(path, directory, old, new)`` rewrites mapset names
    in one directory of a mapset (actinia's)."""

    def __init__(self, plan: dict, store: SnapshotStore,
                 restore_store: SnapshotStore, kept: KeptMapset,
                 removals: DeferredRemovals, *, iteration,
                 saving_enabled: bool, log,
                 for_client: Callable[[Exception], str],
                 process_logs: dict,
                 on_plan: Callable[[int], None],
                 change_mapsetname: Callable[[str, str, str, str], object]):
        self.plan = plan
        self.store = store
        self.restore_store = restore_store
        self.kept = kept
        self.removals = removals
        self.iteration = iteration
        self.saving_enabled = saving_enabled
        self.log = log
        self.for_client = for_client
        self.process_logs = process_logs
        self.on_plan = on_plan
        self.change_mapsetname = change_mapsetname
        self.start = int(plan.get("start", 0))
        self.info = None  # the interim result the plan restores
        self.report: dict | None = None
        self.step_units: Sequence = []
        self.fingerprints: Sequence[str] = []
        self.input_fingerprints = None
        self._taken_logs: list = []  # stdout logs taken over
        self._damaged: dict = {}  # step -> why: found damaged by a restore
        self._kept_listing: KeptListing | None = None

    # --------------------------------------------------------------- plan
    def prepare(self, step_units: Sequence, fingerprints: Sequence[str],
                input_fingerprints=None) -> None:
        """Check the planned interim result (cheaply: manifests, objects'
        presence and sizes; the restore checks every byte it copies), then
        apply the plan."""
        self.step_units = step_units
        self.fingerprints = fingerprints
        self.input_fingerprints = input_fingerprints
        restore = self.plan.get("restore_snapshot")
        adopting = self.begin_walk()
        try:
            # with a kept mapset (issue 23) only the files put back are
            # read from the store, each checked as it is copied: no check
            # of all
            if restore is not None and (
                    self.restore_store.head(int(restore)) is None
                    if adopting else self.restore_store.damage(int(restore))):
                self.replan()
            self.apply()
        except BaseException:
            self._drop_kept_listing()  # no restore follows
            raise

    def begin_walk(self) -> bool:
        """Start the stat walk of the kept dirs if the plan continues in
        the kept mapset (once; the job calls it when it starts, before
        actinia's set-up): it runs on the other core while the job sets
        up and checks the plan. Whether it is walked."""
        if self._kept_listing is None and \
                self.plan.get("restore_snapshot") is not None and \
                self.kept_mapset_usable():
            self._kept_listing = KeptListing(self.kept)
        return self._kept_listing is not None

    def end_walk(self) -> None:
        """The job ends: a walk no restore took is stopped."""
        self._drop_kept_listing()

    def kept_mapset_usable(self) -> bool:
        return self.restore_store is self.store and self.kept.exists()

    def apply(self) -> None:
        """Take over stdout logs of reused steps; after ``from_step`` drop
        the interim results the user declared stale. Run again when the
        restore finds the interim result damaged and the plan falls back."""
        restore = self.plan.get("restore_snapshot")
        start = self.start
        self.on_plan(start)
        for pid in self._taken_logs:
            self.process_logs.pop(pid, None)
        self._taken_logs = []
        self.info = None
        if restore is not None:
            self.info = self.restore_store.head(int(restore))
        if self.info is not None:
            changed = inputs.check_restore(
                read_job_record(self.restore_store.root).get("inputs"),
                self.input_fingerprints, start)
            if changed:
                raise CannotRestore(changed)
            logs = self.info.meta.get("process_logs")
            for pid, log in (logs if isinstance(logs, dict) else {}).items():
                if pid not in self.process_logs:
                    self.process_logs[pid] = log
                    self._taken_logs.append(pid)
        if self.saving_enabled and (
                self.plan.get("forced_from") is not None
                or self.plan.get("inputs_changed")):
            # from_step: the user says the results from there on are stale;
            # changed inputs: they are.
            self.store.prune({s for s in self.store.steps() if s < start})
        self.report = resume_report(self.plan, start, self.iteration,
                                    [u.step_id for u in self.step_units])
        if restore is None or self.restore_store is not self.store:
            # issue 23: this iteration does not start from the kept state
            self._drop_kept_listing()
            self.removals.discard_kept(self.kept)

    def _damage(self, step: int) -> str | None:
        return self._damaged.get(step) or self.store.damage(step)

    def replan(self) -> None:
        """The planned interim result was damaged or removed since the PUT
        planned it (e.g. by retention), or the restore found a byte that
        does not match its hash: plan again from what is intact. An
        earlier job's interim result (reuse) is not planned again: the job
        runs from the first step."""
        if self.restore_store is not self.store:
            restore = self.plan.get("restore_snapshot")
            why = self._damaged.get(restore) if restore is not None else None
            why = why or (self.restore_store.damage(int(restore))
                          if restore is not None else None)
            self.restore_store = self.store
            self.plan.update(
                plans.reuse_gone(len(self.step_units), why).to_json(),
                source_resource_id=None)
            self.start = 0
            self._damaged = {}
            return
        job = read_job_record(self.store.root)
        plan = plans.replan(self.fingerprints, job, self.store, self._damage)
        self.plan.update(plan.to_json())
        self.start = plan.start
        self.log.warning(plan.notice or "re-planned")

    # ------------------------------------------------------------ restore
    def restore(self, project_path: str, mapset_name: str,
                tmpdir: str) -> bool:
        """Restore the planned interim result as ``mapset_name`` of
        ``project_path`` (and the job's ``tmpdir``). One found damaged is
        never used: the plan falls back and the next is tried. Returns
        whether an interim result was restored."""
        started = time.monotonic()
        try:
            self._restore_until_intact(project_path, mapset_name, tmpdir)
        finally:
            self._drop_kept_listing()
        if self.info is None:
            return False
        self.report["restore_seconds"] = round(time.monotonic() - started, 3)
        # every restored byte was hashed as it was copied: what it cost
        verified = self.restore_store.last_restore
        self.report["verified_bytes"] = verified.get("bytes")
        self.report["verify_seconds"] = verified.get("verify_seconds")
        return True

    def _restore_until_intact(self, project_path: str, mapset_name: str,
                              tmpdir: str) -> None:
        """Restore the planned interim result; one found damaged makes the
        plan fall back, and the next is tried."""
        while self.info is not None:
            try:
                self._restore_planned(project_path, mapset_name, tmpdir)
                break
            except SnapshotDamaged as exc:
                step = self.info.step
                self.log.warning(
                    f"The interim result of step {step} is damaged: {exc}")
                self._damaged[step] = f"The {self.for_client(exc)}."
                self.replan()
                self.apply()

    def _drop_kept_listing(self) -> None:
        """The walks of the kept dirs are not needed (any more)."""
        if self._kept_listing is not None:
            self._kept_listing.close()
            self._kept_listing = None

    def _restore_planned(self, project_path: str, mapset_name: str,
                         tmpdir: str) -> None:
        info = self.info
        step = info.step
        mapset_path = os.path.join(project_path, mapset_name)
        targets = {"mapset": mapset_path, "tmpdir": tmpdir}
        for part in info.parts:
            if part.startswith(ADDITIONAL_PART):
                name = part[len(ADDITIONAL_PART):]
                targets[part] = os.path.join(project_path, name)
        try:
            if not self._adopt_kept_mapset(step, targets):
                # the next save of this job's store writes only what
                # changes after the restore, also when the interim result
                # is another job's (reuse across jobs)
                self.restore_store.restore(step, targets, into=self.store)
                self.report["restored_from"] = "interim_results"
                self.report["files_put_back"] = sum(
                    e.kind == "f" for entries in
                    self.store.live_state().state.values()
                    for e in entries.values())
            if self.restore_store is not self.store:
                # reused: recently used for retention and for eviction
                os.utime(self.restore_store.root)
        except SnapshotDamaged:
            raise
        except (OSError, SnapshotError) as exc:
            self.log.error(
                f"Restoring the interim result of step {step} failed: {exc}")
            raise CannotRestore(
                f"The interim result of step {step} could not be restored "
                f"({self.for_client(exc)}); resume with PUT again to get a "
                "new plan") from None
        old_name = info.meta.get("mapset_name")
        if old_name and old_name != mapset_name:
            # the temporary mapset and the job-local mapsets restored with
            # it may name the old temporary mapset
            renaming = time.monotonic()
            self.rename_mapsets(
                {part: path for part, path in targets.items()
                 if part == "mapset" or part.startswith(ADDITIONAL_PART)},
                old_name, mapset_name)
            self.report["rename_seconds"] = round(
                time.monotonic() - renaming, 3)
        self.log.info(
            f"Restored interim result of step {step} into {mapset_path}")

    def rename_mapsets(self, paths: dict, old_name: str,
                       new_name: str) -> None:
        """Rewrite ``old_name`` to ``new_name`` wherever the mapsets at
        ``paths`` (part -> dir) name their own (or the old temporary)
        mapset. The state the store just restored or adopted tells which
        files are there and what they hold: only places that exist are
        looked at, and files sharing an object are read once
        (:func:`rename_mapset_references`)."""
        live = self.store.live_state()
        for part, path in paths.items():
            # an adopted state is not built for this (the record's view)
            entries = live.entries_of(part) if live is not None else None
            for directory in MAPSET_NAME_DIRS:
                if entries is None or _may_name_mapsets(entries, directory):
                    self.change_mapsetname(os.path.join(path, directory),
                                           directory, old_name, new_name)
            rename_mapset_references(path, old_name, new_name, entries)

    def _adopt_kept_mapset(self, step: int, targets: dict) -> bool:
        """Continue in the failed iteration's own dirs, kept at its failure
        (store/adoption.py): only what differs from the planned interim
        result is put back. False (restore from the store instead) when
        there is no intact kept mapset or the interim result is another
        job's (reuse across jobs)."""
        if self.restore_store is not self.store:
            return False
        try:
            listing, self._kept_listing = self._kept_listing, None
            report = adopt_kept_mapset(self.kept, self.store, step, targets,
                                       listing)
        except NotAdoptable as exc:
            self.report["kept_mapset"] = {
                "adopted": False, "reason": str(exc)}
            return False
        except (OSError, SnapshotError) as exc:
            self.log.warning(
                f"Adopting the kept mapset failed ({exc}); restoring the "
                "interim result instead")
            self.report["kept_mapset"] = {
                "adopted": False, "reason": self.for_client(exc)}
            return False
        self.report["kept_mapset"] = report.to_dict()
        self.report["restored_from"] = "kept_mapset"
        self.report["files_put_back"] = report.files_put_back
        self.log.info(
            f"Adopted the kept mapset: {report.files_put_back} file(s) put "
            f"back, {report.paths_removed} removed, {report.files_kept} kept")
        return True


def _may_name_mapsets(entries: dict, directory: str) -> bool:
    """Does actinia's ``change_mapsetname`` have anything to do in
    ``directory`` of a mapset whose state is ``entries``? For
    ``cell_misc`` only raster VRTs (``cell_misc/<map>/vrt``) are rewritten
    (10,000 rasters are 10,000 dirs to look into otherwise); ``group`` and
    ``tgis`` are handed over whenever the dir is there."""
    if directory != "cell_misc":
        return directory in entries
    return any(rel.endswith("/vrt") and rel.startswith("cell_misc/")
               and rel.count("/") == 2 for rel in entries)
