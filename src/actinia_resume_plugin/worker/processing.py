# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Worker side: actinia's processing classes, saving and restoring interim
results through our snapshot store.

:class:`InterimResultsMixin` goes in front of an ``actinia_processing_lib``
class. It keeps actinia's processing intact (``super()`` everywhere) and
changes four things:

* actinia-core's own ``InterimResult`` is switched off for the job, so
  nothing is saved twice;
* processes run step by step (a *step* is one entry of the process chain);
  with ``save_interim_results = True`` an interim result (snapshot) is saved
  after every step, with ``onError`` only when a step fails;
* a resumed iteration restores the snapshot the resume planner chose into
  the new temporary mapset before GRASS switches into it, and skips the
  steps that snapshot already contains;
* a heartbeat tells the PUT handler whether the job is still alive.
"""

from __future__ import annotations

import os
import pickle
import re
import time
import uuid
from fnmatch import fnmatch

from actinia_core.core.mapset_merge_utils import change_mapsetname
from actinia_processing_lib.ephemeral_processing import EphemeralProcessing
from actinia_processing_lib.ephemeral_processing_with_export import (
    EphemeralProcessingWithExport,
)
from actinia_processing_lib.exceptions import AsyncProcessError
from actinia_processing_lib.persistent_processing import PersistentProcessing

from actinia_resume_plugin import continuation, inputs, planner, plans
from actinia_resume_plugin.config import current_config
from actinia_resume_plugin.kvdb import kvdb_client
from actinia_resume_plugin.store import (
    KeptMapset,
    NotAdoptable,
    SnapshotBudgetExceeded,
    SnapshotDamaged,
    SnapshotError,
    SnapshotNoSpace,
    SnapshotStore,
    adopt_kept_mapset,
    evict_kept_mapsets,
    evict_unused_interim_results,
    interim_root,
    read_job_record,
    rmtree,
    storage_usage,
)
from actinia_resume_plugin.worker import path_guard
from actinia_resume_plugin.worker.kvdb_retry import RetryingClient
from actinia_resume_plugin.worker.liveness import Heartbeat, worker_identity
from actinia_resume_plugin.worker.mapset_names import rename_mapset_references
from actinia_resume_plugin.worker.units import group_processes

# Directories whose files name their mapset (group REF, raster VRT, tgis);
# they are rewritten on the restored copy only, as are the places
# worker/mapset_names.py knows (reclass headers and MASK, reclassed_to,
# subgroups, group targets, database paths written out in full).
MAPSET_NAME_DIRS = ("group", "cell_misc", "tgis")
ADDITIONAL_PART = "mapsets/"
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~-])/[^\s'\",;:]+")


def relative_paths(text: str, roots) -> str:
    """``text`` with absolute server paths made relative to the first of
    ``roots`` that holds them (else the file name): messages go to the
    client, who has no business knowing the server's directory layout."""
    def shorten(match):
        path = match.group(0)
        for root in roots:
            root = str(root or "").rstrip("/")
            if root and (path == root or path.startswith(root + "/")):
                return os.path.relpath(path, root)
        return os.path.basename(path.rstrip("/")) or path

    return _ABSOLUTE_PATH.sub(shorten, text)


class InterimResultsMixin:
    """Saves and restores interim results of a process chain, step by step."""

    def __init__(self, rdc):
        super().__init__(rdc)
        # save_interim_results as the file says now: actinia reads it in
        # every job (its InterimResult, made by super().__init__, too)
        self.resume_config = current_config(fresh=True)
        # actinia-core's InterimResult reads the same config keys; with our
        # plugin loaded it must not save anything itself.
        self.interim_result.saving_interim_results = False
        # The planner's decision for this iteration (set by the PUT handler).
        self.resume_plan = dict(getattr(rdc, "resume_plan", None) or {})
        self.resume_start = int(self.resume_plan.get("start", 0))
        self.restore_info = None  # the interim result the plan restores
        # Make actinia's _execute take its plain (non-iteration) path; we do
        # the iteration handling. self.iteration keeps the number.
        self.rdc.iteration = None
        self.saving_enabled = bool(
            self.resume_config.enabled
            and self.resume_config.core_class_for(self.api_info["endpoint"])
        )
        self.store = SnapshotStore(
            interim_root(
                self.resume_config.resource_dir,
                self.user_id,
                self.resource_id,
            )
        )
        # a POST with ?reuse= restores from another job of the same user
        self.restore_store = self._restore_store()
        # issue 23: the failed iteration's own dirs, kept for this one
        self.kept = KeptMapset(self.resume_config.resource_dir,
                               self.user_id, self.resource_id)
        self.step_units = []
        self.fingerprints = []
        self.input_fingerprints = None
        self.current_position = None
        self.last_saved_position = None
        self.snapshot_note = None
        self.resume_report = None
        self._storage_budget = None
        self._removals = []  # dirs removed once the final status is sent
        self._all_processes = 0
        self._taken_logs = []  # stdout logs taken over from the restore
        # step -> why: interim results a restore found damaged
        self._damaged = {}

    # ------------------------------------------------------------ running
    def run(self):
        """Run the job while holding the heartbeat (see liveness); remove
        what is no longer needed only after the final status was sent, so
        clean-up never delays ``finished``."""
        heartbeat = Heartbeat(
            kvdb_client(self.config), self.user_id, self.resource_id,
            self.iteration,
        )
        try:
            with heartbeat:
                super().run()
        finally:
            for path in self._removals:
                rmtree(path)

    def _setup(self, *args, **kwargs):
        """--- hook (issue 22, worker/kvdb_retry.py): the job's valkey
        clients (made here by actinia) wait for valkey to come back instead
        of failing the job."""
        result = super()._setup(*args, **kwargs)
        for name in ("resource_logger", "lock_interface"):
            client = getattr(self, name, None)
            if client is not None and not isinstance(client, RetryingClient):
                setattr(self, name, RetryingClient(client))
        return result

    def _cleanup(self):
        """actinia removes the temporary database before it sends the final
        status; with thousands of maps that is seconds. Rename it away here
        (instant) and remove it after the status is sent."""
        base = self.temp_grass_data_base
        if base and os.path.isdir(base) and not os.path.islink(base):
            trash = f"{base.rstrip('/')}.removing-{uuid.uuid4().hex}"
            try:
                os.rename(base, trash)
                self._removals.append(trash)
            except OSError:
                pass
        super()._cleanup()

    def _validate_process_chain(self, process_chain=None,
                                skip_permission_check=False,
                                old_process_chain=None, pc_step=None):
        """Convert the whole chain as actinia does (exports, stdout parsers,
        permissions), then split the processes into steps and apply the
        resume plan."""
        process_list = super()._validate_process_chain(
            process_chain=process_chain,
            skip_permission_check=skip_permission_check,
        )
        # --- hook (issue 22): no paths into other users' interim results
        refused = path_guard.check_processes(
            process_list, self.user_credentials.get("user_role"),
            self.resume_config.resource_dir)
        if refused:
            raise AsyncProcessError(refused)
        chain = process_chain if process_chain is not None else self.request_data
        chain_list = chain.get("list", []) if isinstance(chain, dict) else []
        if not chain_list:
            return process_list
        self.step_units = group_processes(chain_list, process_list)
        order = [unit.chain_index for unit in self.step_units]
        self.fingerprints = planner.step_fingerprints(
            [chain_list[i] for i in order]
        )
        if self.saving_enabled:
            self.input_fingerprints = self._input_fingerprints(
                [chain_list[i] for i in order])
        self._prepare_resume()
        self._write_job_record(chain, status="running")
        return process_list

    def _prepare_resume(self) -> None:
        """Check the planned interim result (cheaply: manifests, objects'
        presence and sizes; the restore checks every byte it copies), then
        apply the plan."""
        restore = self.resume_plan.get("restore_snapshot")
        # with a kept mapset (issue 23) only the files put back are read
        # from the store, each checked as it is copied: no check of all
        if restore is not None and (
                self.restore_store.get(int(restore)) is None
                if self._kept_mapset_usable()
                else self.restore_store.damage(int(restore))):
            self._replan()
        self._all_processes = self.number_of_processes
        self._apply_plan()

    def _apply_plan(self) -> None:
        """Take over stdout logs of reused steps; after ``from_step`` drop
        the interim results the user declared stale. Run again when the
        restore finds the interim result damaged and the plan falls back."""
        restore = self.resume_plan.get("restore_snapshot")
        start = self.resume_start
        skipped = sum(len(u.processes) for u in self.step_units[:start])
        self.number_of_processes = self._all_processes - skipped
        self.progress["num_of_steps"] = self.number_of_processes
        for pid in self._taken_logs:
            self.module_output_dict.pop(pid, None)
        self._taken_logs = []
        self.restore_info = None
        if restore is not None:
            self.restore_info = self.restore_store.get(int(restore))
        if self.restore_info is not None:
            changed = inputs.check_restore(
                read_job_record(self.restore_store.root).get("inputs"),
                self.input_fingerprints, start)
            if changed:
                raise AsyncProcessError(changed)
            logs = self.restore_info.meta.get("process_logs")
            for pid, log in (logs if isinstance(logs, dict) else {}).items():
                if pid not in self.module_output_dict:
                    self.module_output_dict[pid] = log
                    self._taken_logs.append(pid)
        if self.saving_enabled and (
                self.resume_plan.get("forced_from") is not None
                or self.resume_plan.get("inputs_changed")):
            # from_step: the user says the results from there on are stale;
            # changed inputs: they are.
            self.store.prune({s for s in self.store.steps() if s < start})
        self.resume_report = self._report()
        if restore is None or self.restore_store is not self.store:
            # issue 23: this iteration does not start from the kept state
            self._discard_kept_mapset()

    def _report(self) -> dict:
        """What this iteration does (the ``resume`` of its responses)."""
        report = {
            "iteration": self.iteration or 1,
            "start_step": self.resume_start,
            "restored_interim_result": self.resume_plan.get(
                "restore_interim_result",
                self.resume_plan.get("restore_snapshot")),
            "steps": [
                {"id": u.step_id, "action": action}
                for u, action in zip(
                    self.step_units,
                    self.resume_plan.get(
                        "actions", ["run"] * len(self.step_units)
                    ),
                    strict=False,
                )
            ],
            "notice": self.resume_plan.get("notice"),
            "reused_from": self.resume_plan.get("source_resource_id"),
        }
        # --- hook (issue 22, continuation.py): say why this iteration runs
        continued = self.resume_plan.get("continued")
        if continued:
            report["continued"] = continuation.attempt_text(
                continued["attempt"], continued["max_attempts"],
                continued.get("reason", continuation.REASON))
            report["continued_from_iteration"] = continued[
                "previous_iteration"]
            report["worker_lost"] = continued["why"]
        return {k: v for k, v in report.items()
                if v is not None or k in ("restored_interim_result",)}

    def _damage(self, step: int) -> str | None:
        return self._damaged.get(step) or self.store.damage(step)

    def _replan(self):
        """The planned interim result was damaged or removed since the PUT
        planned it (e.g. by retention), or the restore found a byte that
        does not match its hash: plan again from what is intact. An
        earlier job's interim result (reuse) is not planned again: the job
        runs from the first step."""
        if self.restore_store is not self.store:
            restore = self.resume_plan.get("restore_snapshot")
            why = self._damaged.get(restore) if restore is not None else None
            why = why or (self.restore_store.damage(int(restore))
                          if restore is not None else None)
            self.restore_store = self.store
            self.resume_plan.update(
                plans.reuse_gone(len(self.step_units), why).to_json(),
                source_resource_id=None)
            self.resume_start = 0
            self._damaged = {}
            return
        job = read_job_record(self.store.root)
        plan = plans.replan(self.fingerprints, job, self.store, self._damage)
        self.resume_plan.update(plan.to_json())
        self.resume_start = plan.start
        self.message_logger.warning(plan.notice or "re-planned")

    def _execute_process_list(self, process_list):
        """Run the chain step by step, saving an interim result after each
        step when configured (save_interim_results = True)."""
        if not self.step_units:
            return super()._execute_process_list(process_list)
        for unit in self.step_units[self.resume_start:]:
            self.current_position = unit.position
            super()._execute_process_list(unit.processes)
            if self.saving_enabled and self.resume_config.save_every_step:
                self._save_interim_result(unit.position)
        # All steps ran; a failure from here on (e.g. in the export) is
        # "after the last step", so a resume only redoes what follows.
        self.current_position = len(self.step_units)

    # ------------------------------------------------------------ restore
    def _create_temp_database(self, mapsets=None):
        """Do not link job-local mapsets.

        actinia requires every ``map@mapset`` of the chain to exist in the
        project before the job starts (and adds it to the search path).
        Mapsets matching ``include_additional_mapset_pattern`` that do not
        exist there are created by the chain itself (or restored from an
        interim result), so they are dropped from ``mapsets`` in place (it
        is ``self.required_mapsets``, also used for the search path).
        """
        pattern = self.resume_config.include_additional_mapset_pattern
        if pattern and mapsets:
            roots = [getattr(self, "global_project_path", None),
                     getattr(self, "user_project_path", None)]
            mapsets[:] = [
                m for m in mapsets
                if not fnmatch(m, pattern) or any(
                    r and os.path.isdir(os.path.join(r, m)) for r in roots)
            ]
        return super()._create_temp_database(mapsets)

    def _create_temporary_mapset(self, temp_mapset_name,
                                 source_mapset_name=None,
                                 interim_result_mapset=None,
                                 interim_result_file_path=None):
        """Restore the planned interim result into the new temporary mapset
        before actinia creates/switches into it (so the new chain's mapset
        search path and db connection are set on top of it)."""
        if self.restore_info is not None and \
                self._restore_interim_result(temp_mapset_name):
            source_mapset_name = None  # keep the restored WIND
        return super()._create_temporary_mapset(
            temp_mapset_name, source_mapset_name=source_mapset_name
        )

    def _restore_interim_result(self, temp_mapset_name: str) -> bool:
        """Restore the planned interim result (every byte checked against
        its hash as it is copied). One found damaged is never used: the
        plan falls back to the nearest intact earlier interim result (or
        the first step) and the notice says what was damaged where.
        Returns whether an interim result was restored."""
        started = time.monotonic()
        while self.restore_info is not None:
            try:
                self._restore_planned(temp_mapset_name)
                break
            except SnapshotDamaged as exc:
                step = self.restore_info.step
                self.message_logger.warning(
                    f"The interim result of step {step} is damaged: {exc}")
                self._damaged[step] = f"The {self._for_client(exc)}."
                self._replan()
                self._apply_plan()
        if self.restore_info is None:
            return False
        self.resume_report["restore_seconds"] = round(
            time.monotonic() - started, 3
        )
        # every restored byte was hashed as it was copied: what it cost
        verified = self.restore_store.last_restore
        self.resume_report["verified_bytes"] = verified.get("bytes")
        self.resume_report["verify_seconds"] = verified.get("verify_seconds")
        return True

    def _restore_planned(self, temp_mapset_name: str) -> None:
        info = self.restore_info
        step = info.step
        mapset_path = os.path.join(self.temp_project_path, temp_mapset_name)
        targets = {"mapset": mapset_path, "tmpdir": self.temp_file_path}
        for part in info.parts:
            if part.startswith(ADDITIONAL_PART):
                name = part[len(ADDITIONAL_PART):]
                targets[part] = os.path.join(self.temp_project_path, name)
        try:
            if not self._adopt_kept_mapset(step, targets):
                # the next save of this job's store writes only what
                # changes after the restore, also when the interim result
                # is another job's (reuse across jobs)
                self.restore_store.restore(step, targets, into=self.store)
                self.resume_report["restored_from"] = "interim_results"
                self.resume_report["files_put_back"] = sum(
                    e.kind == "f" for entries in
                    self.store.live_state().state.values()
                    for e in entries.values())
            if self.restore_store is not self.store:
                # reused: recently used for retention and for eviction
                os.utime(self.restore_store.root)
        except SnapshotDamaged:
            raise
        except (OSError, SnapshotError) as exc:
            self.message_logger.error(
                f"Restoring the interim result of step {step} failed: {exc}")
            raise AsyncProcessError(
                f"The interim result of step {step} could not be restored "
                f"({self._for_client(exc)}); resume with PUT again to get a "
                "new plan") from None
        old_name = info.meta.get("mapset_name")
        if old_name and old_name != temp_mapset_name:
            # the temporary mapset and the job-local mapsets restored with
            # it may name the old temporary mapset
            mapsets = [mapset_path] + [
                path for part, path in targets.items()
                if part.startswith(ADDITIONAL_PART)]
            for path in mapsets:
                for directory in MAPSET_NAME_DIRS:
                    change_mapsetname(
                        os.path.join(path, directory), directory,
                        old_name, temp_mapset_name,
                    )
                rename_mapset_references(path, old_name, temp_mapset_name)
        self.message_logger.info(
            f"Restored interim result of step {step} into {mapset_path}"
        )

    # ------------------------------------------- kept mapsets (issue 23)
    def _adopt_kept_mapset(self, step: int, targets: dict) -> bool:
        """Continue in the failed iteration's own dirs, kept at its failure
        (store/adoption.py): only what differs from the planned interim
        result is put back. False (restore from the store instead) when
        there is no intact kept mapset or the interim result is another
        job's (reuse across jobs)."""
        if self.restore_store is not self.store:
            return False
        try:
            report = adopt_kept_mapset(self.kept, self.store, step, targets)
        except NotAdoptable as exc:
            self.resume_report["kept_mapset"] = {
                "adopted": False, "reason": str(exc)}
            return False
        except (OSError, SnapshotError) as exc:
            self.message_logger.warning(
                f"Adopting the kept mapset failed ({exc}); restoring the "
                "interim result instead")
            self.resume_report["kept_mapset"] = {
                "adopted": False, "reason": self._for_client(exc)}
            return False
        self.resume_report["kept_mapset"] = report.to_dict()
        self.resume_report["restored_from"] = "kept_mapset"
        self.resume_report["files_put_back"] = report.files_put_back
        self.message_logger.info(
            f"Adopted the kept mapset: {report.files_put_back} file(s) put "
            f"back, {report.paths_removed} removed, {report.files_kept} kept")
        return True

    def _kept_mapset_usable(self) -> bool:
        return self.restore_store is self.store and self.kept.exists()

    def _keep_mapset(self) -> None:
        """At a failure, keep the iteration's dirs with the live state the
        store knows (instead of letting actinia remove them), so that the
        next iteration adopts them. Not for a state the store does not know
        (nothing saved or restored, or restored from another job), not
        beyond grass_resource_quota (other jobs' kept mapsets go first),
        and not when grass_tmp_database is on another file system than
        grass_resource_dir (a rename is all keeping may cost)."""
        live = self.store.live_state()
        if live is None or live.foreign or not self.temp_mapset_path:
            return
        parts = self._snapshot_parts()
        if "mapset" not in parts:
            return
        size = sum(storage_usage(path) for path in parts.values())
        budget = self._budget()
        if size > budget:
            evict_kept_mapsets(self.resume_config.resource_dir, self.user_id,
                               size - budget, keep={self.resource_id})
            self._storage_budget = None
            if size > self._budget():
                self.message_logger.info(
                    "The failed mapset is not kept: grass_resource_quota")
                return
        try:
            self.kept.keep(parts, live.state, {
                "step": live.step, "snapshot_id": live.id,
                "mapset_name": os.path.basename(self.temp_mapset_path),
                "iteration": self.iteration})
        except OSError as exc:
            self.message_logger.info(f"The failed mapset is not kept: {exc}")

    def _discard_kept_mapset(self) -> None:
        """The kept mapset is of no use any more: renamed away now, removed
        after the final status was sent."""
        try:
            self._removals.extend(self.kept.discard_all())
        except OSError as exc:
            self.message_logger.warning(f"Kept mapset clean-up: {exc}")

    # --------------------------------------------------------------- save
    def _snapshot_parts(self) -> dict:
        parts = {"mapset": self.temp_mapset_path,
                 "tmpdir": self.temp_file_path}
        pattern = self.resume_config.include_additional_mapset_pattern
        if pattern and self.temp_project_path:
            for name in sorted(os.listdir(self.temp_project_path)):
                path = os.path.join(self.temp_project_path, name)
                if (fnmatch(name, pattern) and os.path.isdir(path)
                        and not os.path.islink(path)
                        and path != self.temp_mapset_path):
                    parts[ADDITIONAL_PART + name] = path
        return {k: v for k, v in parts.items() if v and os.path.isdir(v)}

    def _snapshot_meta(self, position: int, at_failure: bool) -> dict:
        ids = {str(getattr(p, "id", None))
               for u in self.step_units[: position + 1] for p in u.processes}
        logs = {pid: dict(log) for pid, log in self.module_output_dict.items()
                if pid in ids}
        return {
            "mapset_name": os.path.basename(self.temp_mapset_path),
            "fingerprints": self.fingerprints[: position + 1],
            "step_ids": [u.step_id for u in self.step_units[: position + 1]],
            "process_logs": logs,
            "iteration": self.iteration,
            # onError: the failed step may have written part of its outputs
            "taken_at_failure": at_failure,
        }

    def _budget(self) -> int:
        """Bytes the next snapshot may add within grass_resource_quota."""
        if self._storage_budget is None:
            user_dir = os.path.join(self.resume_config.resource_dir,
                                    self.user_id)
            self._storage_budget = (self.resume_config.resource_quota_bytes
                                    - storage_usage(user_dir))
        return max(self._storage_budget, 0)

    def _save(self, position: int, at_failure: bool):
        return self.store.save(
            position, self._snapshot_parts(),
            self._snapshot_meta(position, at_failure),
            # at a failure (onError) the others are pruned: self-contained
            budget_bytes=self._budget(), full=at_failure,
        )

    def _save_making_room(self, position: int, at_failure: bool):
        """Kept mapsets of failed jobs are a cache of what their stores
        hold: when the quota is reached they are removed first (issue 23;
        never this job's). With reuse across jobs on, interim results of
        ended jobs are a cache too: the least recently used of them go next
        (never this job's or the one it reuses). The save is tried again
        after each removal."""
        try:
            return self._save(position, at_failure)
        except SnapshotBudgetExceeded as exc:
            refused = exc
        evicted = evict_kept_mapsets(
            self.resume_config.resource_dir, self.user_id,
            refused.needed - refused.budget, keep={self.resource_id})
        if evicted.removed:
            self.message_logger.info(
                f"Removed {len(evicted.removed)} kept mapset(s) "
                f"({evicted.freed_bytes} bytes) to make room")
            self._storage_budget = None
            try:
                return self._save(position, at_failure)
            except SnapshotBudgetExceeded as exc:
                refused = exc
        if not self.resume_config.reuse_interim_results:
            raise refused
        keep = {self.resource_id, self.resume_plan.get("source_resource_id")}
        evicted = evict_unused_interim_results(
            self.resume_config.resource_dir, self.user_id,
            refused.needed - refused.budget, keep=keep)
        if not evicted.removed:
            raise refused
        self.message_logger.info(
            f"Removed {len(evicted.removed)} unused interim result(s) "
            f"({evicted.freed_bytes} bytes) to make room")
        self._storage_budget = None
        return self._save(position, at_failure)

    def _save_interim_result(self, position: int, at_failure: bool = False):
        """Save the interim result after ``position``. A full quota or disk
        stops saving for the rest of the job (the job itself goes on) and
        says so in its final message; earlier interim results stay."""
        if self.temp_mapset_path is None or self.snapshot_note:
            return None
        try:
            info = self._save_making_room(position, at_failure)
        except SnapshotBudgetExceeded as exc:
            quota = self.resume_config.resource_quota_gb
            self._stop_saving(
                f"after step {position}: the resource storage quota "
                f"(grass_resource_quota = {quota} GB) would be exceeded "
                f"({exc})")
            return None
        except (SnapshotNoSpace, OSError) as exc:
            # a full disk or a damaged job root (e.g. steps/ is a file)
            self.message_logger.warning(
                f"Saving the interim result of step {position} failed: {exc}")
            self._stop_saving(f"after step {position}: {self._for_client(exc)}")
            return None
        self._storage_budget -= int(info.meta.get("bytes_copied", 0))
        if self.last_saved_position is None:
            # Interim results of later steps stem from an earlier iteration
            # that ran these steps on another state: no longer trustworthy.
            self.store.prune({s for s in self.store.steps() if s <= position})
        self.last_saved_position = position
        return info

    def _stop_saving(self, reason: str) -> None:
        self.snapshot_note = (
            f"Interim results are no longer saved {reason}; the job goes on "
            "and earlier interim results are kept")
        self.message_logger.warning(self.snapshot_note)

    def _interim_results(self):
        """Called by actinia's run() when the job ends: clean up after
        success, save (onError) or keep interim results after a failure."""
        if not self.saving_enabled or not self.step_units:
            return
        if "success" in self.run_state:
            trash = self.store.discard()
            if trash is not None:
                self._removals.append(trash)
            self._discard_kept_mapset()
            return
        failed = self.current_position
        if (self.resume_config.save_interim_results == "onError"
                and failed is not None and failed > self.resume_start):
            # onError keeps one interim result: the state at the failure
            # (the failed step may have written part of its outputs),
            # recorded as "after the last step that completed".
            if self._save_interim_result(failed - 1, at_failure=True):
                self.store.prune({failed - 1})
        if "error" in self.run_state:
            self._keep_mapset()
        else:  # terminated, time limit: not kept (issue 23)
            self._discard_kept_mapset()
        self._write_job_record(None, status="error", failed_step=failed)
        try:
            self.store.collect_garbage()
        except OSError as exc:
            self.message_logger.warning(f"Interim result clean-up: {exc}")

    # ------------------------------------------------------ reuse, inputs
    def _restore_store(self) -> SnapshotStore:
        """Where the plan's interim result is: this job's store, or (reuse
        across jobs) the store of the caller's earlier job. Restores copy,
        so the two jobs share nothing."""
        source = self.resume_plan.get("source_resource_id")
        if not source:
            return self.store
        return SnapshotStore(interim_root(
            self.resume_config.resource_dir, self.user_id, source))

    def _input_fingerprints(self, steps) -> dict:
        """The mapsets and importer sources the chain reads, as they are
        at the start of this iteration (see inputs.py)."""
        return inputs.job_inputs(
            steps,
            [getattr(self, "global_project_path", None),
             getattr(self, "user_project_path", None)],
            target_mapset=getattr(self, "target_mapset_name", None),
            job_local_pattern=(
                self.resume_config.include_additional_mapset_pattern),
        )

    # ---------------------------------------------------------- job record
    def _write_job_record(self, chain, status, failed_step=None):
        """job.json: what a later PUT needs to plan and run the resumption."""
        if not self.saving_enabled:
            return
        # a damaged record (or field) counts as missing, as for the PUT
        record = read_job_record(self.store.root).data
        if chain is not None:
            record.update(
                chain=chain,
                fingerprints=self.fingerprints,
                step_ids=[u.step_id for u in self.step_units],
                endpoint=self.api_info["endpoint"],
                core_class=self.resume_config.core_class_for(
                    self.api_info["endpoint"]),
                request_url=self.api_info.get("request_url"),
                project=self.project_name,
                mapset=self.mapset_name,
                worker=worker_identity(),
                inputs=self.input_fingerprints,
                reused_from=self.resume_plan.get("source_resource_id"),
            )
        record.update(status=status, iteration=self.iteration,
                      failed_step=failed_step, updated=time.time())
        try:
            self.store.write_job(record)
        except OSError as exc:
            # a full disk or a damaged job root must not fail the job's
            # own work
            self.message_logger.warning(f"Job record not written: {exc}")
            if not self.snapshot_note:
                self._stop_saving(
                    f"(the job record cannot be written: "
                    f"{self._for_client(exc)})")

    def _for_client(self, exc: Exception) -> str:
        """An error message without absolute server paths."""
        return relative_paths(str(exc), [
            self.store.root, getattr(self, "temp_project_path", None),
            self.resume_config.resource_dir])

    # -------------------------------------------------------- responses
    def _send_to_database(self, document, final=False):
        """Add what the resumption did (reused/run steps) to the response."""
        if final and self.resume_config.continue_after_errors:
            # --- hook (issue 22): an opted-in transient failure
            _, model = pickle.loads(document)
            kind = model.get("status") == "error" and \
                continuation.transient_failure(
                    model, self.resume_config.continue_after_errors)
            if kind:
                continuation.mark_transient(self.iteration, kind)
        if self.resume_report is not None or self.snapshot_note:
            http_code, model = pickle.loads(document)
            if self.resume_report is not None:
                model["resume"] = self.resume_report
            if self.snapshot_note and model.get("status") in (
                    "finished", "error"):
                model["message"] = f"{model.get('message')}. " \
                    f"{self.snapshot_note}"
            document = pickle.dumps([http_code, model])
        return super()._send_to_database(document, final=final)


class ResumableEphemeralProcessing(InterimResultsMixin, EphemeralProcessing):
    """Ephemeral processing (``…/processing_async``)."""


class ResumableEphemeralProcessingWithExport(
    InterimResultsMixin, EphemeralProcessingWithExport
):
    """Ephemeral processing with export (``…/processing_async_export``)."""


class ResumablePersistentProcessing(InterimResultsMixin, PersistentProcessing):
    """Persistent processing (``…/mapsets/<mapset>/processing_async``)."""


# --- hook (issue 22): continuation.adopt() records the rq job's iteration
# and turns a job requeued after worker loss into its new iteration.
def start_ephemeral_job(rdc):
    continuation.adopt(rdc, start_ephemeral_job)
    ResumableEphemeralProcessing(rdc).run()


def start_ephemeral_export_job(rdc):
    continuation.adopt(rdc, start_ephemeral_export_job)
    ResumableEphemeralProcessingWithExport(rdc).run()


def start_persistent_job(rdc):
    continuation.adopt(rdc, start_persistent_job)
    ResumablePersistentProcessing(rdc).run()

