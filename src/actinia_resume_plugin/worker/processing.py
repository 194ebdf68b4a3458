# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Worker side: actinia's processing classes, saving and restoring interim
results through our snapshot store.

:class:`InterimResultsMixin` goes in front of an ``actinia_processing_lib``
class. It keeps actinia's processing intact (``super()`` everywhere) and
holds only actinia's hooks (pinned in ``tests/unit/test_actinia_hooks.py``),
each reading actinia's state and handing it to a plain class:

* actinia-core's own ``InterimResult`` is switched off for the job, so
  nothing is saved twice;
* processes run step by step (a *step* is one entry of the process chain);
  what is saved when, within the quota, and the job record:
  ``worker/saving.py``;
* a resumed iteration restores the interim result the plan chose (or adopts
  the kept mapset) into the new temporary mapset before GRASS switches into
  it, and skips the steps it already contains: ``worker/restoring.py``;
* the ``resume`` section of the responses: ``worker/report.py``;
* a heartbeat tells the PUT handler whether the job is still alive
  (``worker/liveness.py``); clean-up waits until the final status was sent
  (``worker/removals.py``).
"""

from __future__ import annotations

import os
import pickle
from fnmatch import fnmatch

from actinia_core.core.mapset_merge_utils import change_mapsetname
from actinia_processing_lib.ephemeral_processing import EphemeralProcessing
from actinia_processing_lib.ephemeral_processing_with_export import (
    EphemeralProcessingWithExport,
)
from actinia_processing_lib.exceptions import AsyncProcessError
from actinia_processing_lib.persistent_processing import PersistentProcessing

from actinia_resume_plugin import continuation, inputs, planner
from actinia_resume_plugin.config import current_config
from actinia_resume_plugin.kvdb import kvdb_client
from actinia_resume_plugin.store import KeptMapset, SnapshotStore, interim_root
from actinia_resume_plugin.worker import path_guard, report, saving
from actinia_resume_plugin.worker.kvdb_retry import RetryingClient
from actinia_resume_plugin.worker.liveness import Heartbeat, worker_identity
from actinia_resume_plugin.worker.removals import DeferredRemovals
from actinia_resume_plugin.worker.restoring import (
    CannotRestore,
    Restorer,
    source_store,
)
from actinia_resume_plugin.worker.units import group_processes


class _ActiniaLog:
    """actinia's message logger for the plain classes: actinia makes it in
    ``_setup``, after ``__init__`` made them."""

    def __init__(self, job):
        self._job = job

    def __getattr__(self, level):
        return getattr(self._job.message_logger, level)


class InterimResultsMixin:
    """actinia's hooks, each handing over to the plain classes: the saving
    policy (worker/saving.py), the restore and the plan it runs
    (worker/restoring.py), the response (worker/report.py)."""

    #: Whether the interim result after the last step is saved when the
    #: step completes (see SavingPolicy.after_step): where work follows the
    #: last step that a resume skips (exports, the copy into the persistent
    #: mapset), and a worker lost in it continues after the last step.
    saves_last_step = True

    def __init__(self, rdc):
        super().__init__(rdc)
        # save_interim_results as the file says now: actinia reads it in
        # every job (its InterimResult, made by super().__init__, too)
        self.resume_config = config = current_config(fresh=True)
        # actinia-core's InterimResult reads the same config keys; with our
        # plugin loaded it must not save anything itself.
        self.interim_result.saving_interim_results = False
        # The planner's decision for this iteration (set by the PUT handler).
        plan = dict(getattr(rdc, "resume_plan", None) or {})
        # Make actinia's _execute take its plain (non-iteration) path; we do
        # the iteration handling. self.iteration keeps the number.
        self.rdc.iteration = None
        self.saving_enabled = bool(
            config.enabled and config.core_class_for(self.api_info["endpoint"]))
        self.store = SnapshotStore(interim_root(
            config.resource_dir, self.user_id, self.resource_id))
        # issue 23: the failed iteration's own dirs, kept for this one
        self.kept = KeptMapset(config.resource_dir, self.user_id,
                               self.resource_id)
        log = _ActiniaLog(self)
        self.removals = DeferredRemovals(log)
        self.saver = saving.SavingPolicy(
            config, self.store, user_id=self.user_id,
            resource_id=self.resource_id, iteration=self.iteration,
            plan=plan, kept=self.kept, removals=self.removals,
            log=log, parts=self._snapshot_parts,
            meta=self._snapshot_meta, for_client=self._for_client,
            saves_last_step=self.saves_last_step)
        # a POST with ?reuse= restores from another job of the same user
        self.restorer = Restorer(
            plan, self.store, source_store(
                plan, self.store, config.resource_dir, self.user_id),
            self.kept, self.removals, iteration=self.iteration,
            saving_enabled=self.saving_enabled, log=log,
            for_client=self._for_client,
            process_logs=self.module_output_dict, on_plan=self._plan_applied,
            change_mapsetname=change_mapsetname)
        self.step_units = []
        self.fingerprints = []
        self.input_fingerprints = None
        self.current_position = None
        self._all_processes = 0

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
            # issue 23: the kept mapset's stat walk goes on during
            # actinia's set-up and the plan check
            self.restorer.begin_walk()
            with heartbeat:
                super().run()
        finally:
            self.restorer.end_walk()
            self.removals.remove_all()

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
        self.removals.rename_away(self.temp_grass_data_base)
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
        steps = [chain_list[unit.chain_index] for unit in self.step_units]
        self.fingerprints = planner.step_fingerprints(steps)
        if self.saving_enabled:
            self.input_fingerprints = self._input_fingerprints(steps)
        self._all_processes = self.number_of_processes
        try:
            self.restorer.prepare(self.step_units, self.fingerprints,
                                   self.input_fingerprints)
        except CannotRestore as exc:
            raise AsyncProcessError(str(exc)) from None
        self._write_job_record(chain)
        return process_list

    def _plan_applied(self, start: int) -> None:
        """actinia's progress counts the processes left to run."""
        skipped = sum(len(u.processes) for u in self.step_units[:start])
        self.number_of_processes = self._all_processes - skipped
        self.progress["num_of_steps"] = self.number_of_processes

    def _execute_process_list(self, process_list):
        """Run the chain step by step, saving an interim result after each
        step when configured (save_interim_results = True)."""
        if not self.step_units:
            return super()._execute_process_list(process_list)
        last = self.step_units[-1]
        for unit in self.step_units[self.restorer.start:]:
            self.current_position = unit.position
            super()._execute_process_list(unit.processes)
            if self.saving_enabled:
                self.saver.after_step(unit.position, last=unit is last)
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
        if self.restorer.info is not None:
            try:
                if self.restorer.restore(self.temp_project_path,
                                          temp_mapset_name,
                                          self.temp_file_path):
                    source_mapset_name = None  # keep the restored WIND
            except CannotRestore as exc:
                raise AsyncProcessError(str(exc)) from None
        return super()._create_temporary_mapset(
            temp_mapset_name, source_mapset_name=source_mapset_name
        )

    # --------------------------------------------------------------- save
    def _snapshot_parts(self) -> dict | None:
        if self.temp_mapset_path is None:
            return None
        return saving.snapshot_parts(
            self.temp_mapset_path, self.temp_file_path,
            self.temp_project_path,
            self.resume_config.include_additional_mapset_pattern)

    def _snapshot_meta(self, position: int, at_failure: bool) -> dict:
        return saving.snapshot_meta(
            self.step_units, position, self.module_output_dict,
            self.fingerprints, os.path.basename(self.temp_mapset_path),
            self.iteration, at_failure)

    def _interim_results(self):
        """Called by actinia's run() when the job ends: clean up after
        success, save (onError) or keep interim results after a failure."""
        if not self.saving_enabled or not self.step_units:
            return
        if "success" in self.run_state:
            self.saver.job_succeeded()
        else:
            self.saver.job_failed(
                self.current_position, self.restorer.start,
                error="error" in self.run_state,
                mapset_name=os.path.basename(self.temp_mapset_path)
                if self.temp_mapset_path else None)

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

    def _write_job_record(self, chain):
        """job.json at the start of an iteration: what a later PUT needs
        to plan and run the resumption (the failure: saving.job_failed)."""
        if not self.saving_enabled:
            return
        self.saver.record(dict(
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
            reused_from=self.restorer.plan.get("source_resource_id"),
            status="running", iteration=self.iteration, failed_step=None,
        ))

    def _for_client(self, exc: Exception) -> str:
        return report.for_client(exc, [
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
        if self.restorer.report is not None or self.saver.note:
            http_code, model = pickle.loads(document)
            model = report.decorate(model, self.restorer.report,
                                    self.saver.note)
            document = pickle.dumps([http_code, model])
        return super()._send_to_database(document, final=final)


class ResumableEphemeralProcessing(InterimResultsMixin, EphemeralProcessing):
    """Ephemeral processing (``…/processing_async``). Only actinia's parse
    of the stdout follows the last step: its interim result is saved when
    the job fails after it, not before ``finished`` (a walk of the whole
    mapset, deleted unread after the success)."""

    saves_last_step = False


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
